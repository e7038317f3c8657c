"""Neuron activation functions: the one place where an activation is declared.

Every activation is a small immutable object with a ``name``, its parameters
(``params``), the function ``f(z)`` (``__call__``), the slope ``f'(z)``
(``derivative``) and the curvature ``f''(z)`` (``second_derivative``), all
vectorised over NumPy arrays.  The text spec
(``"sigmoid(gain=2)"``) is what the ``.npz`` network format and the CLI use;
:func:`get_activation` turns a name, a spec or an object into an activation.

The class also declares what the rest of noiseprop needs of it: the
parameters of its Monte Carlo kernel branch (:meth:`Activation.kernel_params`),
its PyTorch counterpart (:meth:`Activation.torch_function`) and the names it
has in PyTorch (``torch_module``), ONNX (``onnx_op``) and scikit-learn
(``sklearn_name``) models.  Its Gaussian moments live in
:mod:`noiseprop.moments` under the same ``name`` and its kernel branch in
:mod:`noiseprop.simulation._kernels`; a parametrised test checks that every
registered activation has all of them.  Adding an activation therefore means:
a class here, its moment rule, its kernel branch.
"""
from __future__ import annotations

import math
import re
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "Activation",
    "Linear",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "Erf",
    "Heaviside",
    "ACTIVATIONS",
    "get_activation",
    "names_in",
]


class Activation:
    """Base class of the activation functions.

    Subclasses set ``name`` and implement :meth:`__call__`, :meth:`derivative`
    and :meth:`second_derivative`; their constructor arguments are the parameters.
    """

    name: ClassVar[str] = ""
    #: True when f(z) = a z + b exactly (linear-response propagation is exact).
    is_affine: ClassVar[bool] = False
    #: Class name in ``torch.nn`` of the module with the default parameters (None: none).
    torch_module: ClassVar["str | None"] = None
    #: ONNX operator with the default parameters (None: none).
    onnx_op: ClassVar["str | None"] = None
    #: scikit-learn MLP activation name (None: none).
    sklearn_name: ClassVar["str | None"] = None

    @property
    def params(self) -> dict[str, float]:
        """The parameters as ``{name: value}``, in constructor order."""
        return dict(vars(self))

    @property
    def spec(self) -> str:
        """Canonical text form, e.g. ``"sigmoid(gain=2.0)"``, listing the
        parameters that differ from their defaults; parsed back by
        :func:`get_activation`."""
        defaults = type(self)().params
        changed = {k: v for k, v in self.params.items() if v != defaults[k]}
        if not changed:
            return self.name
        args = ",".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{self.name}({args})"

    def __call__(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, z: np.ndarray) -> np.ndarray:
        """Slope f'(z), element-wise."""
        raise NotImplementedError

    def second_derivative(self, z: np.ndarray) -> np.ndarray:
        """Curvature f''(z), element-wise (0 at the kinks of relu and heaviside)."""
        raise NotImplementedError

    def kernel_params(self) -> tuple[float, float]:
        """The two parameters (p0, p1) of this activation's Monte Carlo kernel branch."""
        raise NotImplementedError

    def lipschitz(self) -> float:
        """sup |f'(z)| over all z (inf for a discontinuous f): how much a rounding
        error of z can grow through f (the float32 Monte Carlo error bound)."""
        raise NotImplementedError

    def torch_function(self, torch):
        """The same function on PyTorch tensors (for training), or a ValueError."""
        raise ValueError(
            f"activation {self.spec!r} cannot be trained by back-propagation "
            f"(its slope is zero almost everywhere); trainable: {', '.join(_trainable())}"
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params == other.params

    def __hash__(self) -> int:
        return hash((type(self), tuple(self.params.items())))

    def __setattr__(self, key: str, value: Any) -> None:
        if key in vars(self):
            raise AttributeError(f"{type(self).__name__} is immutable")
        object.__setattr__(self, key, value)


def _special():
    """scipy.special, imported on first use: it costs ~0.3 s, which ``noiseprop --help`` need not pay."""
    from scipy import special

    return special


def _finite_param(owner: str, field: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: parameter {field!r} must be finite, got {value}")
    return value


class Linear(Activation):
    """Affine activation f(z) = slope * z + offset."""

    name = "linear"
    is_affine = True
    sklearn_name = "identity"

    def __init__(self, slope: float = 1.0, offset: float = 0.0):
        self.slope = _finite_param("linear", "slope", slope)
        self.offset = _finite_param("linear", "offset", offset)

    def __call__(self, z):
        return self.slope * np.asarray(z, dtype=float) + self.offset

    def derivative(self, z):
        return np.full(np.shape(z), self.slope)

    def second_derivative(self, z):
        return np.zeros(np.shape(z))

    def kernel_params(self):
        return self.slope, self.offset

    def lipschitz(self):
        return abs(self.slope)

    def torch_function(self, torch):
        return lambda z: self.slope * z + self.offset


class Sigmoid(Activation):
    """Logistic sigmoid f(z) = 1 / (1 + exp(-gain * z)); slope gain/4 at z = 0."""

    name = "sigmoid"
    torch_module = "Sigmoid"
    onnx_op = "Sigmoid"
    sklearn_name = "logistic"

    def __init__(self, gain: float = 1.0):
        self.gain = _finite_param("sigmoid", "gain", gain)

    def __call__(self, z):
        return _special().expit(self.gain * np.asarray(z, dtype=float))

    def derivative(self, z):
        s = self(z)
        return self.gain * s * (1.0 - s)

    def second_derivative(self, z):
        s = self(z)
        return self.gain**2 * s * (1.0 - s) * (1.0 - 2.0 * s)

    def kernel_params(self):
        return self.gain, 0.0

    def lipschitz(self):
        return abs(self.gain) / 4

    def torch_function(self, torch):
        return lambda z: torch.sigmoid(self.gain * z)


class Tanh(Activation):
    """Hyperbolic tangent f(z) = tanh(gain * z); slope gain at z = 0."""

    name = "tanh"
    torch_module = "Tanh"
    onnx_op = "Tanh"
    sklearn_name = "tanh"

    def __init__(self, gain: float = 1.0):
        self.gain = _finite_param("tanh", "gain", gain)

    def __call__(self, z):
        return np.tanh(self.gain * np.asarray(z, dtype=float))

    def derivative(self, z):
        t = self(z)
        return self.gain * (1.0 - t * t)

    def second_derivative(self, z):
        t = self(z)
        return -2.0 * self.gain**2 * t * (1.0 - t * t)

    def kernel_params(self):
        return self.gain, 0.0

    def lipschitz(self):
        return abs(self.gain)

    def torch_function(self, torch):
        return lambda z: torch.tanh(self.gain * z)


class ReLU(Activation):
    """Rectifier f(z) = max(z, 0); slope 1 for z > 0, 0 otherwise (also at 0)."""

    name = "relu"
    torch_module = "ReLU"
    onnx_op = "Relu"
    sklearn_name = "relu"

    def __call__(self, z):
        return np.maximum(np.asarray(z, dtype=float), 0.0)

    def derivative(self, z):
        return (np.asarray(z, dtype=float) > 0.0).astype(float)

    def second_derivative(self, z):
        return np.zeros(np.shape(z))

    def kernel_params(self):
        return 0.0, 0.0

    def lipschitz(self):
        return 1.0

    def torch_function(self, torch):
        return torch.relu


class Erf(Activation):
    """Error function f(z) = erf(gain * z); slope 2 gain / sqrt(pi) at z = 0."""

    name = "erf"
    onnx_op = "Erf"

    def __init__(self, gain: float = 1.0):
        self.gain = _finite_param("erf", "gain", gain)

    def __call__(self, z):
        return _special().erf(self.gain * np.asarray(z, dtype=float))

    def derivative(self, z):
        gz = self.gain * np.asarray(z, dtype=float)
        return (2.0 * self.gain / math.sqrt(math.pi)) * np.exp(-gz * gz)

    def second_derivative(self, z):
        gz = self.gain * np.asarray(z, dtype=float)
        return (-4.0 * self.gain**2 / math.sqrt(math.pi)) * gz * np.exp(-gz * gz)

    def kernel_params(self):
        return self.gain, 0.0

    def lipschitz(self):
        return 2 * abs(self.gain) / math.sqrt(math.pi)

    def torch_function(self, torch):
        return lambda z: torch.erf(self.gain * z)


class Heaviside(Activation):
    """Step f(z) = 1 for z > 0, 0 otherwise (a binary neuron).

    The slope is 0 wherever it exists, so linear response carries no noise
    through it; use ``predict(..., method="moments")``, which averages over
    the distribution of z.
    """

    name = "heaviside"

    def __call__(self, z):
        return (np.asarray(z, dtype=float) > 0.0).astype(float)

    def derivative(self, z):
        return np.zeros(np.shape(z))

    def second_derivative(self, z):
        return np.zeros(np.shape(z))

    def kernel_params(self):
        return 0.0, 0.0

    def lipschitz(self):
        return math.inf


#: Activation classes by name.
ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Linear, Sigmoid, Tanh, ReLU, Erf, Heaviside)
}



def _trainable() -> list[str]:
    return [name for name, cls in ACTIVATIONS.items() if cls.torch_function is not Activation.torch_function]


def names_in(field: str) -> dict[str, str]:
    """Map the names the activations have in another library (``field``: "torch_module",
    "onnx_op" or "sklearn_name") to their noiseprop names."""
    return {getattr(cls, field): name for name, cls in ACTIVATIONS.items() if getattr(cls, field)}


_SPEC = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*$")


def get_activation(spec: "str | Activation") -> Activation:
    """Return the activation named by ``spec``.

    Parameters
    ----------
    spec : str or Activation
        An :class:`Activation` (returned as is), a name from
        :data:`ACTIVATIONS` (default parameters, e.g. ``"linear"`` has slope 1)
        or a spec with keyword parameters such as ``"tanh(gain=0.5)"`` or
        ``"linear(slope=0.9, offset=0.1)"``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones) or bad
        parameters.
    """
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        raise ValueError(
            f"activation must be a name, a spec string or an Activation, got {spec!r}"
        )
    match = _SPEC.match(spec)
    if not match or match.group(1).lower() not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {spec!r}; known names: {', '.join(ACTIVATIONS)}"
            " (parameters as e.g. 'sigmoid(gain=2)')"
        )
    cls = ACTIVATIONS[match.group(1).lower()]
    kwargs = _parse_kwargs(spec, match.group(2) or "")
    try:
        return cls(**kwargs)
    except TypeError:
        allowed = list(cls().params) or "none"
        raise ValueError(
            f"activation {spec!r}: unknown parameter in {sorted(kwargs)}; "
            f"{cls.name} takes {allowed}"
        ) from None


def _parse_kwargs(spec: str, text: str) -> dict[str, float]:
    kwargs: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            kwargs[key.strip()] = float(value)
        except ValueError:
            raise ValueError(
                f"activation {spec!r}: parameters must be written key=number, got {item!r}"
            ) from None
    return kwargs
