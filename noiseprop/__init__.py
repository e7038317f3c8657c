"""noiseprop: how the noise of analog neurons propagates through deep networks.

Analytic prediction (:func:`predict`) of the mean, variance and SNR of every
neuron of a fully connected network of noisy neurons, following the model of
``shared/spec/noise-model.md``: additive and multiplicative noise, each
uncorrelated (per neuron) or correlated (shared by a layer); intensities are
variances; layers are numbered 0 (input) .. L (output).
"""
from . import robustness
from .activations import ACTIVATIONS, Activation, Erf, Heaviside, Linear, ReLU, Sigmoid, Tanh, get_activation
from .builtin import default_network
from .design import DesignReport, check_design
from .model import Network
from .montecarlo import Simulation, simulate
from .noise import NOISE_TYPES, Noise
from .propagation import Prediction, predict
from .sweep import sweep
from .verification import VerificationReport, verify

__version__ = "0.1.0"


def __getattr__(name: str):
    # noiseprop.symbolic imports sympy (slow): load it on first use only.
    if name == "symbolic":
        import importlib

        return importlib.import_module(".symbolic", __name__)
    raise AttributeError(f"module 'noiseprop' has no attribute {name!r}")


__all__ = [
    "ACTIVATIONS",
    "Activation",
    "DesignReport",
    "Erf",
    "Heaviside",
    "Linear",
    "NOISE_TYPES",
    "Network",
    "Noise",
    "Prediction",
    "ReLU",
    "Simulation",
    "Sigmoid",
    "Tanh",
    "VerificationReport",
    "check_design",
    "default_network",
    "get_activation",
    "predict",
    "robustness",
    "simulate",
    "sweep",
    "verify",
    "__version__",
]
