"""The network: an ordered stack of dense layers (docs/model.md §2).

Layers are numbered k = 0..L; layer 0 is the input vector (N_0 values) and
layer k = 1..L computes z_k = W_k y_{k-1} + b_k, y_k = f_k(z_k) (plus noise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from .activations import Activation, get_activation
from .utils.resources import check_memory
from .utils.validation import as_input, as_list, finite_number, positive_int, real_array

__all__ = ["Network", "WorkingPoint"]

ActivationSpec = Union[str, Activation]


@dataclass(frozen=True)
class WorkingPoint:
    """The noise-free operating point of every layer (see :meth:`Network.working_point`).

    Each field is a list indexed by layer k - 1 (k = 1..L) of arrays of shape
    (B, N_k) (``inputs``: (B, N_{k-1})), B the number of inputs.

    Attributes
    ----------
    inputs : list of ndarray
        y_{k-1}, the noise-free input of layer k (y_0 = x).
    zbar : list of ndarray
        zbar_k = W_k y_{k-1} + b_k, the noise-free pre-activation.
    output : list of ndarray
        y_k = f_k(zbar_k).
    slope : list of ndarray
        f_k'(zbar_k), the gain of small perturbations of z_k.
    batched : bool
        Whether the input was a batch (B, N_0) rather than one vector.
    """

    inputs: list
    zbar: list
    output: list
    slope: list
    batched: bool


class Network:
    """A fully connected feed-forward network of dense layers.

    Build it with ``Network(weights, biases, activations)`` (the same as
    :meth:`from_arrays`, which documents and validates the arguments) or :meth:`symmetric`.

    Attributes
    ----------
    weights : tuple of ndarray
        ``weights[k-1]`` is W_k, shape (N_k, N_{k-1}), for k = 1..L.
    biases : tuple of ndarray
        ``biases[k-1]`` is b_k, shape (N_k,).
    activations : tuple of Activation
        ``activations[k-1]`` is f_k.
    sizes : tuple of int
        (N_0, N_1, ..., N_L); N_0 is the input size.
    depth : int
        L, the number of layers after the input.
    """

    def __init__(
        self,
        weights: Sequence[np.ndarray],
        biases: "Sequence[np.ndarray] | None" = None,
        activations: "ActivationSpec | Sequence[ActivationSpec]" = "linear",
    ):
        """Validated copies of the arrays, as :meth:`from_arrays` describes (the caller's arrays are
        neither kept nor made read-only)."""
        weights, biases, activations = _validated_layers(weights, biases, activations)
        self.weights = tuple(weights)
        self.biases = tuple(biases)
        self.activations = tuple(activations)
        self.sizes = (self.weights[0].shape[1],) + tuple(w.shape[0] for w in self.weights)
        self.depth = len(self.weights)
        for array in self.weights + self.biases:
            array.setflags(write=False)

    @classmethod
    def from_arrays(
        cls,
        weights: Sequence[np.ndarray],
        biases: "Sequence[np.ndarray] | None" = None,
        activations: "ActivationSpec | Sequence[ActivationSpec]" = "linear",
    ) -> "Network":
        """Build a network from its weight matrices, biases and activations.

        Parameters
        ----------
        weights : sequence of array_like(float, ndim=2)
            W_1..W_L; W_k has shape (N_k, N_{k-1}).
        biases : sequence of array_like(float, ndim=1), optional
            b_1..b_L, shape (N_k,) each; zeros when omitted.
        activations : str, Activation or sequence of them, default "linear"
            One for every layer, or a single one for all.  Names: "linear"
            (slope 1), "sigmoid", "tanh", "relu", "erf", or specs with
            parameters such as "sigmoid(gain=2)".

        Raises
        ------
        ValueError
            Naming the layer and the shapes when they do not chain, and any
            non-finite entry.
        """
        return cls(weights, biases, activations)

    @classmethod
    def symmetric(
        cls,
        depth: int,
        width: int,
        weight: float,
        bias: float = 0.0,
        activation: ActivationSpec = "linear",
        n_inputs: "int | None" = None,
    ) -> "Network":
        """A symmetric network (docs/model.md §5): every weight and bias equal.

        Parameters
        ----------
        depth : int
            Number of layers L >= 1 after the input.
        width : int
            Neurons N per layer.
        weight, bias : float
            The value w of every weight and b of every bias; w = 1/N passes
            the mean unchanged through a linear layer.
        activation : str or Activation
            The activation of every layer.
        n_inputs : int, optional
            Input size N_0 (default: ``width``).
        """
        depth = positive_int("depth", depth)
        width = positive_int("width", width)
        n_inputs = width if n_inputs is None else positive_int("n_inputs", n_inputs)
        weight, bias = finite_number("weight", weight), finite_number("bias", bias)
        check_memory(8 * (width * (n_inputs + 1) + (depth - 1) * width * (width + 1)),
                     f"the weights of a symmetric network of depth {depth} and width {width}", "use a smaller depth or width")
        fan_ins = [n_inputs] + [width] * (depth - 1)
        weights = [np.full((width, n), weight) for n in fan_ins]
        biases = [np.full(width, bias) for _ in range(depth)]
        return cls.from_arrays(weights, biases, activation)

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Noise-free outputs y_0..y_L for one input (N_0,) or a batch (B, N_0)."""
        y, batched = as_input(x, self.sizes[0])
        outputs = [y]
        for w, b, f in zip(self.weights, self.biases, self.activations):
            y = f(y @ w.T + b)
            outputs.append(y)
        return outputs if batched else [y[0] for y in outputs]

    def working_point(self, x: np.ndarray) -> WorkingPoint:
        """The noise-free working point (y_{k-1}, zbar_k, f(zbar_k), f'(zbar_k)) of every layer.

        The one forward pass that linearisation, gains and design checks share;
        arrays are (B, N_k) whether ``x`` is one input (N_0,) or a batch (B, N_0).
        Overflowing values are left as inf/nan for the caller to name.
        """
        y, batched = as_input(x, self.sizes[0])
        inputs, zbars, outputs, slopes = [], [], [], []
        with np.errstate(over="ignore", invalid="ignore"):
            for w, b, f in zip(self.weights, self.biases, self.activations):
                zbar = y @ w.T + b
                inputs.append(y)
                y = f(zbar)
                zbars.append(zbar)
                outputs.append(y)
                slopes.append(f.derivative(zbar))
        return WorkingPoint(inputs, zbars, outputs, slopes, batched)

    @property
    def is_affine(self) -> bool:
        """True when every activation is affine (linear response is exact)."""
        return all(f.is_affine for f in self.activations)

    def __repr__(self) -> str:
        shape = "-".join(str(n) for n in self.sizes)
        acts = ", ".join(f.spec for f in self.activations)
        return f"Network({shape}; activations: {acts})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Network):
            return NotImplemented
        return (
            self.activations == other.activations
            and self.sizes == other.sizes
            and all(np.array_equal(a, b) for a, b in zip(self.weights, other.weights))
            and all(np.array_equal(a, b) for a, b in zip(self.biases, other.biases))
        )

    __hash__ = None  # mutable-looking arrays: not hashable




def _validated_layers(weights, biases, activations) -> tuple[list, list, list]:
    """Weights, biases and activations of :meth:`Network.from_arrays` as float arrays and
    Activation objects; a ValueError naming the layer and shapes for anything else."""
    if isinstance(weights, np.ndarray) and weights.ndim == 2:
        weights = [weights]
    weights = as_list("weights", weights, "the weight matrices W_1..W_L")
    weights = [_as_matrix(w, k) for k, w in enumerate(weights, start=1)]
    if not weights:
        raise ValueError("a network needs at least one layer (got no weight matrices)")
    depth = len(weights)
    for k in range(1, depth):
        if weights[k].shape[1] != weights[k - 1].shape[0]:
            raise ValueError(
                f"layer {k + 1}: weights of shape {weights[k].shape} need "
                f"{weights[k].shape[1]} inputs, but layer {k} has "
                f"{weights[k - 1].shape[0]} neurons (weights {weights[k - 1].shape})"
            )
    if biases is None:
        biases = [np.zeros(w.shape[0]) for w in weights]
    biases = as_list("biases", biases, "the bias vectors b_1..b_L")
    if len(biases) != depth:
        raise ValueError(f"got {len(biases)} bias vectors for {depth} layers")
    biases = [_as_bias(b, w.shape[0], k) for k, (b, w) in enumerate(zip(biases, weights), 1)]
    if isinstance(activations, (str, Activation)):
        activations = [activations] * depth
    activations = as_list("activations", activations, "a name, an Activation or one per layer")
    if len(activations) != depth:
        raise ValueError(f"got {len(activations)} activations for {depth} layers")
    activations = [_layer_activation(a, k) for k, a in enumerate(activations, start=1)]
    return weights, biases, activations


def _as_matrix(w, k: int) -> np.ndarray:
    try:
        raw = np.asarray(w)
        complex_valued = raw.dtype.kind == "c"
        array = None if complex_valued else np.array(raw, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"layer {k}: weights must be a numeric matrix") from None
    if complex_valued:
        raise ValueError(f"layer {k}: weights must be real numbers, got a complex array")
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"layer {k}: weights must be a non-empty 2-D array (N_k, N_k-1), got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(f"layer {k}: weights have a non-finite entry at {bad}")
    return array


def _as_bias(b, n: int, k: int) -> np.ndarray:
    try:
        array = real_array(f"layer {k}: biases", b)
    except (TypeError, ValueError) as err:
        if "complex" in str(err):
            raise
        raise ValueError(f"layer {k}: biases must be numeric") from None
    if array.shape != (n,):
        raise ValueError(f"layer {k}: biases have shape {array.shape}, expected ({n},)")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"layer {k}: biases have a non-finite entry")
    return array


def _layer_activation(spec, k: int) -> Activation:
    try:
        return get_activation(spec)
    except ValueError as err:
        raise ValueError(f"layer {k}: {err}") from None
