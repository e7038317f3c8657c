"""noiseprop: how the noise of analog neurons propagates through deep networks.

Analytic prediction (:func:`predict`) of the mean, variance and SNR of every
neuron of a fully connected network of noisy neurons: additive and
multiplicative noise, each uncorrelated (one draw per neuron) or correlated
(one draw shared by a layer); intensities are variances; layers are numbered
0 (input) .. L (output).  Monte Carlo verification (:func:`simulate`,
:func:`verify`), design rules (:func:`check_design`), symbolic derivations
(:mod:`noiseprop.analysis.symbolic`) and robustness studies
(:mod:`noiseprop.studies`).

The package is organised by layers, each depending only on those above it:

- core: :mod:`~noiseprop.activations`, :mod:`~noiseprop.model`,
  :mod:`~noiseprop.noise`, :mod:`~noiseprop.statistics`,
  :mod:`~noiseprop.moments`, :mod:`~noiseprop.propagation`;
- :mod:`noiseprop.analysis`: gains, symbolic derivations, design rules;
- :mod:`noiseprop.simulation`: Monte Carlo engine and verification;
- :mod:`noiseprop.studies`: accuracy, walking noise, noise-aware training, sweeps;
- :mod:`noiseprop.io`: model files, importers, data sets, the shipped networks;
- :mod:`noiseprop.plotting`, :mod:`noiseprop.figures`, :mod:`noiseprop.cli`: presentation.

Importing the package is cheap: every name below is loaded on first use (no
NumPy-heavy, numba, matplotlib or sympy import happens at ``import noiseprop``).
"""
from __future__ import annotations

import importlib

__version__ = "0.2.0"

#: Public name -> module that defines it (loaded on first access).
_EXPORTS = {
    "ACTIVATIONS": "activations",
    "Activation": "activations",
    "Erf": "activations",
    "Heaviside": "activations",
    "Linear": "activations",
    "ReLU": "activations",
    "Sigmoid": "activations",
    "Tanh": "activations",
    "get_activation": "activations",
    "Network": "model",
    "NOISE_TYPES": "noise",
    "Noise": "noise",
    "LayerStatistics": "statistics",
    "Prediction": "propagation",
    "predict": "propagation",
    "Simulation": "simulation.montecarlo",
    "simulate": "simulation.montecarlo",
    "VerificationReport": "simulation.verification",
    "verify": "simulation.verification",
    "DesignReport": "analysis.design",
    "check_design": "analysis.design",
    "derive": "analysis.symbolic",
    "default_network": "io.builtin",
    "load_model": "io.networks",
    "load_network": "io.networks",
    "save_network": "io.networks",
    "accuracy": "studies.accuracy",
    "analytic_accuracy": "studies.accuracy",
    "walking_noise": "studies.walking",
    "noise_aware_training": "studies.noise_training",
    "sweep": "studies.sweeps",
}

#: Modules and subpackages reachable as attributes (``noiseprop.analysis`` ...).
_SUBMODULES = (
    "activations", "model", "noise", "statistics", "moments", "methods", "propagation", "positive_maps",
    "mixture", "output_statistics", "normal_cdf", "analysis", "simulation", "studies", "io", "utils", "plotting", "figures",
    "cli", "mitigation", "recurrent",
)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'noiseprop' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES))


__all__ = sorted(_EXPORTS) + ["__version__"]
