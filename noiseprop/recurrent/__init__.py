"""Recurrent networks (echo state networks, leaky RNNs) of noisy neurons.

Noise propagation through time: analytic prediction (:func:`predict`), the
stationary noise level and its stability (:func:`stationary`), Monte Carlo
simulation and verification (:func:`simulate`, :func:`verify`; numba, loaded
on first use), the symbolic time recursion (:mod:`.symbolic`, sympy),
Mackey-Glass data and training (:mod:`.data`, :mod:`.training`), the
reservoirpy importer (:func:`from_reservoirpy`, extra ``reservoir``) and the
design check (:func:`check_recurrent`).  The model is in
:mod:`noiseprop.recurrent.model`.
"""
from __future__ import annotations

import importlib

from .model import (
    RecurrentNetwork,
    echo_state_network,
    is_recurrent_file,
    load_recurrent,
    save_recurrent,
)
from .propagation import RecurrentPrediction, predict
from .stationary_state import StationaryState, stationary, time_to_snr_below

_LAZY = {
    "simulate": ".simulation",
    "verify": ".simulation",
    "RecurrentSimulation": ".simulation",
    "RecurrentVerification": ".simulation",
    "check_recurrent": ".design",
    "RecurrentDesignReport": ".design",
    "mackey_glass": ".data",
    "ridge_readout": ".training",
    "nrmse": ".training",
    "from_reservoirpy": ".interop",
    "load_reservoirpy": ".interop",
}


def __getattr__(name: str):
    # numba (simulation), torch (training) and sympy (symbolic) load on first use only.
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    if name in ("symbolic", "simulation", "training", "data", "design", "interop"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'noiseprop.recurrent' has no attribute {name!r}")


__all__ = [
    "RecurrentNetwork",
    "RecurrentPrediction",
    "StationaryState",
    "echo_state_network",
    "is_recurrent_file",
    "load_recurrent",
    "predict",
    "save_recurrent",
    "stationary",
    "time_to_snr_below",
    *_LAZY,
]
