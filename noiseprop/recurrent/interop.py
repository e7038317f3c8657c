"""Import an echo state network from reservoirpy (optional extra ``reservoir``).

reservoirpy's ``Reservoir`` node computes

    x_t = (1 - lr) x_{t-1} + lr f(W x_{t-1} + Win u_t + bias)

and its ``Ridge`` readout y_t = x_t Wout + bias (Wout of shape (N, N_out)):
the model of :mod:`noiseprop.recurrent.model` with leak = lr, W_in = Win,
W_out = Wout^T.  :func:`from_reservoirpy` copies the fitted weights (sparse
matrices become dense arrays); the activation must be one of reservoirpy's
``tanh``, ``sigmoid``, ``identity`` or ``relu``, the leak rate one number
(or the same for every neuron), and no feedback connection or input-to-readout
connection may be present (the readout must see the reservoir state alone).
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from ..utils.optional import require
from .model import RecurrentNetwork

__all__ = ["from_reservoirpy", "load_reservoirpy"]

_PURPOSE = "importing a reservoirpy echo state network"
#: reservoirpy activation function name -> noiseprop activation.
_ACTIVATIONS = {"tanh": "tanh", "sigmoid": "sigmoid", "identity": "linear", "relu": "relu"}


def from_reservoirpy(model, feedback: bool = False) -> RecurrentNetwork:
    """The :class:`RecurrentNetwork` of a fitted reservoirpy echo state network.

    Parameters
    ----------
    model : reservoirpy Model or (Reservoir, Ridge)
        ``reservoir >> ridge`` after ``fit`` (or the two nodes).
    feedback : bool, default False
        Mark the network for self-closed generation (u_t = y_{t-1}; needs
        as many outputs as inputs).

    Returns
    -------
    RecurrentNetwork

    Raises
    ------
    MissingDependency
        reservoirpy is not installed (the message gives the pip command).
    ValueError
        Not a Reservoir >> Ridge pair, not fitted, per-neuron leak rates,
        an unsupported activation, or inconsistent shapes.
    """
    rpy = require("reservoirpy", "reservoir", _PURPOSE)
    reservoir, ridge = _nodes(model, rpy)
    for node in (reservoir, ridge):
        if not getattr(node, "initialized", False):
            raise ValueError(f"reservoirpy node {node.name!r} is not initialised: fit the model first")
    if ridge.Wout is None:
        raise ValueError(f"reservoirpy node {ridge.name!r} has no Wout: fit the model first")
    W_in, W = _dense(reservoir.Win, "Reservoir.Win"), _dense(reservoir.W, "Reservoir.W")
    W_out = _dense(ridge.Wout, "Ridge.Wout").T
    bias = np.broadcast_to(_dense(reservoir.bias, "Reservoir.bias").ravel(), (W.shape[0],))
    out_bias = np.zeros(W_out.shape[0]) if ridge.bias is None else _dense(ridge.bias, "Ridge.bias").ravel()
    return RecurrentNetwork.from_arrays(W_in, W, W_out, bias, out_bias, leak=_leak(reservoir.lr),
                                        activation=_activation(reservoir.activation, rpy), feedback=feedback)


def load_reservoirpy(path: "str | os.PathLike", trust: bool = False, feedback: bool = False) -> RecurrentNetwork:
    """Read a pickled reservoirpy model (``pickle.dump(esn, file)``) and import it.

    Parameters
    ----------
    path : path
    trust : bool
        Must be True: unpickling runs code from the file (only for files you
        made or fully trust).  reservoirpy's own objects are pickles.
    feedback : bool
        As for :func:`from_reservoirpy`.

    Raises
    ------
    MissingDependency
        reservoirpy is not installed (checked first).
    ValueError
        Without ``trust``, or for a file that is not a pickled model.
    """
    require("reservoirpy", "reservoir", _PURPOSE)
    path = Path(path)
    if not trust:
        raise ValueError(
            f"{path}: a reservoirpy model is a pickle, which can run any code while it loads; "
            "read it only if you made it or fully trust it (--trust-pickle / trust=True)")
    try:
        with open(path, "rb") as handle:
            model = pickle.load(handle)  # noqa: S301 (explicitly trusted by the caller)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError) as err:
        raise ValueError(f"{path}: not a pickled reservoirpy model ({type(err).__name__}: {err})") from None
    return from_reservoirpy(model, feedback=feedback)


def _nodes(model, rpy):
    nodes_module = rpy.nodes
    Reservoir, Ridge = nodes_module.Reservoir, nodes_module.Ridge
    if isinstance(model, (tuple, list)):
        nodes, edges = list(model), None
    elif hasattr(model, "nodes"):
        nodes, edges = list(model.nodes), getattr(model, "edges", None)
    else:
        raise ValueError(f"expected a reservoirpy Model (Reservoir >> Ridge) or (Reservoir, Ridge), got "
                         f"{type(model).__name__}")
    kinds = [type(node).__name__ for node in nodes]
    reservoirs = [node for node in nodes if isinstance(node, Reservoir)]
    ridges = [node for node in nodes if isinstance(node, Ridge)]
    if len(nodes) != 2 or len(reservoirs) != 1 or len(ridges) != 1:
        raise ValueError(f"expected exactly one Reservoir and one Ridge node, got {kinds}")
    reservoir, ridge = reservoirs[0], ridges[0]
    if edges is not None:
        links = {(id(edge[0]), id(edge[-1])) for edge in edges}
        if links != {(id(reservoir), id(ridge))}:
            raise ValueError("the model must connect Reservoir >> Ridge only (no feedback or input-to-readout "
                             f"connections); its connections: {[(e[0].name, e[-1].name) for e in edges]}")
    return reservoir, ridge


def _dense(value, label: str) -> np.ndarray:
    if hasattr(value, "toarray"):
        value = value.toarray()
    try:
        return np.array(value, dtype=float, ndmin=1)
    except (TypeError, ValueError):
        raise ValueError(f"{label}: expected numbers, got {type(value).__name__}") from None


def _leak(lr) -> float:
    rates = np.unique(np.asarray(lr, dtype=float).ravel())
    if rates.size != 1:
        raise ValueError(f"Reservoir.lr: per-neuron leak rates ({rates.size} values) are not supported; "
                         "noiseprop's model has one leak rate")
    return float(rates[0])


def _activation(function, rpy) -> str:
    for name, ours in _ACTIVATIONS.items():
        if function is getattr(rpy.activationsfunc, name, None):
            return ours
    raise ValueError(f"Reservoir.activation {getattr(function, '__name__', function)!r} is not supported; "
                     f"use one of reservoirpy's {', '.join(_ACTIVATIONS)}")
