"""Input validation shared by the public entry points.

Every check raises a ValueError whose message names the argument (and the
layer or field) at fault and what was expected, so that a user never meets a
traceback from deep inside NumPy.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "as_input",
    "as_labelled_data",
    "as_list",
    "as_vector",
    "check_confidence",
    "finite_number",
    "noise_overflow_message",
    "open_probability",
    "positive_int",
    "real_array",
    "require_classifier",
    "require_network",
]


def noise_overflow_message(what: str) -> str:
    """The message for ``what`` (e.g. "layer 2: the predicted noise variance") overflowing
    because of the noise: intensities are variances, so 1e300 squares to inf."""
    return f"{what} overflows (inf or nan): noise intensities are variances; use far smaller values"


def as_input(x, n_inputs: int) -> tuple[np.ndarray, bool]:
    """Validate an input: one vector (N_0,) or a batch (B, N_0).

    Returns the input as a float array of shape (B, N_0) and whether it was a
    batch.
    """
    try:
        array = real_array("input x", x)
    except (TypeError, ValueError) as err:
        if "complex" in str(err):
            raise
        raise ValueError(f"input x must be numeric, got {type(x).__name__}") from None
    if array.ndim not in (1, 2) or array.shape[-1] != n_inputs:
        raise ValueError(
            f"input x has shape {array.shape}; the network expects ({n_inputs},) "
            f"or a batch (B, {n_inputs})"
        )
    if array.size == 0:
        raise ValueError(f"input x is an empty batch (shape {array.shape}); give at least one input")
    if not np.all(np.isfinite(array)):
        raise ValueError("input x has non-finite entries (nan or inf)")
    batched = array.ndim == 2
    return array.reshape(-1, n_inputs), batched


def real_array(name: str, values) -> np.ndarray:
    """``values`` as a float array; a ValueError naming ``name`` for complex numbers.

    (``np.array(z, dtype=float)`` would drop the imaginary part with only a
    ComplexWarning.)  Other conversion errors propagate as TypeError or ValueError.
    """
    raw = np.asarray(values)
    if raw.dtype.kind == "c" or (raw.dtype.kind == "O" and any(isinstance(v, complex) for v in raw.ravel())):
        raise ValueError(f"{name} must be real numbers, got complex values")
    return np.array(raw, dtype=float)


def require_network(net) -> None:
    """A ValueError unless ``net`` is a :class:`~noiseprop.Network` (the entry points' first check)."""
    from ..model import Network  # the model imports this module

    if not isinstance(net, Network):
        raise ValueError(f"net must be a noiseprop.Network, got {type(net).__name__}")


def require_classifier(net) -> None:
    """:func:`require_network`, and at least two output neurons (one per class)."""
    require_network(net)
    if net.sizes[-1] < 2:
        raise ValueError(f"a classifier needs at least 2 output neurons, the network has {net.sizes[-1]}")


def as_labelled_data(X, y, n_features: "int | None" = None, n_classes: "int | None" = None,
                     part: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Validate a labelled data set: inputs X (B, n_features) and class indices y (B,).

    Parameters
    ----------
    X, y : array_like
        Finite inputs, one row each, and integer class labels >= 0.
    n_features : int, optional
        Required number of columns of X (the network's input size).
    n_classes : int, optional
        Labels must lie in 0..n_classes-1 (one class per output neuron).
    part : str
        Prefix of the messages, e.g. "training" or "test".

    Returns
    -------
    X : ndarray (B, n_features) of float
    y : ndarray (B,) of int64
    """
    prefix = f"{part} " if part else ""
    if n_features is None:
        try:
            X = real_array(f"{prefix}inputs X", X)
        except (TypeError, ValueError) as err:
            if "complex" in str(err):
                raise
            raise ValueError(f"{prefix}inputs X must be a numeric array (n_samples, n_features)") from None
        if X.ndim != 2 or 0 in X.shape:
            raise ValueError(f"{prefix}inputs X must have shape (n_samples, n_features), got {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{prefix}inputs X have non-finite entries (nan or inf)")
    else:
        X, _ = as_input(X, n_features)
    labels = np.asarray(y)
    integral = labels.dtype.kind in "iu" or (
        labels.dtype.kind == "f" and bool(np.all(np.isfinite(labels))) and bool(np.all(labels == np.round(labels)))
    )
    if labels.ndim != 1 or not integral:
        raise ValueError(
            f"{prefix}labels y must be a 1-D array of integer class indices, got shape {labels.shape} "
            f"dtype {labels.dtype}"
        )
    if labels.shape[0] != X.shape[0]:
        raise ValueError(f"{prefix}got {labels.shape[0]} labels for {X.shape[0]} inputs")
    labels = labels.astype(np.int64)
    if labels.min() < 0 or (n_classes is not None and labels.max() >= n_classes):
        allowed = f"0..{n_classes - 1} (one per output neuron)" if n_classes is not None else ">= 0"
        raise ValueError(f"{prefix}labels must lie in {allowed}, got {labels.min()}..{labels.max()}")
    return X, labels


def as_list(name: str, value, what: str) -> list:
    """``value`` as a list; a ValueError naming ``name`` unless it is a sequence."""
    if not isinstance(value, (str, bytes)):
        try:
            return list(value)
        except TypeError:
            pass
    raise ValueError(f"{name} must be a sequence ({what}), got {type(value).__name__}")


def as_vector(name: str, values) -> np.ndarray:
    """A non-empty 1-D array of finite floats, or a ValueError naming ``name``."""
    try:
        array = real_array(name, values)
    except (TypeError, ValueError) as err:
        if "complex" in str(err):
            raise
        raise ValueError(f"{name} must be numbers, got {values!r}") from None
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a non-empty 1-D list of finite numbers, got {values!r}")
    return array


def check_confidence(confidence) -> None:
    """A ValueError unless ``confidence`` (of an interval) lies strictly between 0 and 1."""
    open_probability("confidence", confidence)


def open_probability(name: str, value) -> float:
    """``value``, a probability strictly between 0 and 1 (a confidence level, a
    false-failure rate), as a float, or a ValueError naming ``name``."""
    if not (isinstance(value, (int, float)) and 0 < value < 1):
        raise ValueError(f"{name} must be a probability in (0, 1), got {value!r}")
    return float(value)


def finite_number(name: str, value) -> float:
    """``value`` as a finite float, or a ValueError naming ``name``."""
    try:
        if isinstance(value, complex) or getattr(getattr(value, "dtype", None), "kind", "") == "c":
            raise TypeError("complex")  # float() would drop the imaginary part
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    return number


def positive_int(name: str, value) -> int:
    """``value`` as an int >= 1 (bools refused), or a ValueError naming ``name``."""
    try:
        valid = not isinstance(value, bool) and int(value) == value and value >= 1
    except (TypeError, ValueError, OverflowError):
        valid = False
    if not valid:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
