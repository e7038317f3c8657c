"""Noise-mitigating network transformations that preserve the noise-free function.

Each transformation returns a :class:`MitigatedNetwork`: an ordinary
:class:`~noiseprop.model.Network` (so that ``predict``, ``simulate``,
``verify``, ``check_design`` and the accuracy studies apply unchanged) that
also remembers which original layer every layer comes from and which original
neuron every neuron copies.  Its noise-free output equals the original one up
to floating-point rounding (tested to 1e-12).

How each strategy maps onto the noise model (one :class:`~noiseprop.noise.Noise`
per layer; uncorrelated noise drawn per neuron, correlated noise drawn once per
layer and shared by all its neurons):

``pool(net, K)``
    Every neuron i of layer k becomes K neurons with the same input weights
    and bias (rows of W_k repeated); the next layer reads each copy with
    weight W_{k+1,ji} / K.  The copies lie in one layer: their uncorrelated
    noise is independent, their correlated draw is shared.  What layer k
    passes on has its uncorrelated variance divided by K exactly (affine
    activations; first order otherwise) and its correlated part unchanged.
    Cost: (K - 1) N_k neurons, (K - 1) N_k (N_{k-1} + N_{k+1}) connections.

``ghost_neurons(net)``
    One extra neuron per group in layer k with zero input weights and a
    constant bias b_g; it outputs the constant c = f_k(b_g) plus the layer's
    noise and shares the layer's correlated draw.  The next layer reads it
    with weight -S_jg = -sum_{i in group} W_{k+1,ji} and adds S_jg c to its
    bias, so the noise-free function is unchanged and the additive correlated
    term S_jg xi_AC cancels exactly (any activation, "post" placement; "pre"
    placement: exactly for affine activations).  What remains: the ghost's own
    uncorrelated noise, S_jg^2 (c^2 D_MU + D_AU), and the multiplicative
    correlated term (sum_i W_{k+1,ji} (m_i - c))^2 D_MC, which vanishes only
    when the group's outputs all equal c.  Cost: one neuron per group, N_{k+1}
    connections each.

``intra_layer(net, V)``
    A connection matrix V (N_k x N_k, invertible) inside layer k: a noise-free
    linear layer y' = V y is inserted after layer k (the coupling is assumed
    passive: it adds no noise of its own unless one is given to
    :meth:`MitigatedNetwork.noise_for`) and the next layer's weights become
    W_{k+1} V^-1, which keeps the function.  The coupled layer's covariance
    is V Sigma V^T: with V = (1 - a) I + a 11^T / N its uncorrelated part
    shrinks by (1 - a)^2 and becomes correlated (all of it at a = 1, the
    published "full suppression").  Because the next layer must undo V to keep
    the function, the noise that reaches it is exactly what it was without
    V: in this model a function-preserving, noise-free coupling gives no
    output SNR gain.  Cost: N_k^2 connections, no noisy neuron.

Output layer: pooling or ghost neurons in the output layer L need a further
layer to read the copies or subtract the ghost.  A noise-free linear
**read-out** layer is appended for that (hardware assumption: the final
averaging/subtraction is done without noise, e.g. digitally after the
read-out of the analog outputs).
"""
from __future__ import annotations

import operator
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..activations import Activation, Linear
from ..model import Network
from ..noise import Noise, NoiseSpec, per_layer_noise
from ..utils.validation import positive_int, require_network

__all__ = [
    "MitigatedNetwork",
    "pool",
    "pool_neurons",
    "ghost_neurons",
    "intra_layer",
    "READOUT",
    "COUPLING",
    "GHOST",
]

#: ``origin`` label of an appended noise-free read-out layer.
READOUT = "readout"
#: ``origin`` label of an inserted noise-free intra-layer coupling.
COUPLING = "coupling"
#: ``neurons`` label of a ghost neuron.
GHOST = -1
#: ``neurons`` label of a neuron of a coupling layer (a mixture of its layer's neurons).
_MIXED = -2
#: Largest condition number accepted for an intra-layer matrix.
_MAX_CONDITION = 1e8


class MitigatedNetwork(Network):
    """A :class:`~noiseprop.model.Network` produced by a mitigation transformation.

    Attributes
    ----------
    origin : tuple
        For every layer 1..L' of this network: the original layer number k
        (1..L) it implements, :data:`READOUT` for an appended noise-free
        read-out layer, :data:`COUPLING` for an inserted noise-free coupling.
    neurons : tuple of ndarray(int)
        For every layer 1..L': for each neuron, the index of the original
        neuron it copies, :data:`GHOST` (-1) for a ghost neuron, -2 for a
        neuron of a coupling layer.
    original_sizes : tuple of int
        (N_0, ..., N_L) of the original network.
    """

    def __init__(self, weights, biases, activations, origin, neurons, original_sizes):
        super().__init__(weights, biases, activations)
        self.origin = tuple(origin)
        self.neurons = tuple(np.asarray(n, dtype=int) for n in neurons)
        self.original_sizes = tuple(original_sizes)

    @property
    def original_depth(self) -> int:
        """L of the original network (the length of a per-layer noise list)."""
        return len(self.original_sizes) - 1

    def layer_of(self, k: int) -> int:
        """This network's layer that implements original layer ``k`` (1..L)."""
        return self.origin.index(k) + 1

    def noise_for(self, noise: NoiseSpec, coupling: "Noise | None" = None) -> list[Noise]:
        """One :class:`Noise` per layer of this network from the original spec.

        Parameters
        ----------
        noise : Noise or sequence of L Noise
            The noise of the original network (one per original layer 1..L, or
            one for all); a sequence of this network's L' layers is accepted
            as is.
        coupling : Noise, optional
            Noise of inserted coupling layers (default: noise-free, a passive
            coupling).  Read-out layers are always noise-free.
        """
        if not isinstance(noise, Noise) and isinstance(noise, Sequence) and len(noise) == self.depth:
            return list(per_layer_noise(noise, self.depth))
        layer_noise = per_layer_noise(noise, self.original_depth)
        placement = layer_noise[0].placement
        silent = Noise(placement=placement)
        coupling = silent if coupling is None else coupling
        if not isinstance(coupling, Noise):
            raise ValueError(f"coupling must be a Noise, got {type(coupling).__name__}")
        return [
            layer_noise[o - 1] if isinstance(o, int) else (coupling if o == COUPLING else silent)
            for o in self.origin
        ]

    @property
    def extra_neurons(self) -> int:
        """Noisy neurons added to the original network (copies and ghosts)."""
        return sum(self.sizes[t + 1] - self.original_sizes[o]
                   for t, o in enumerate(self.origin) if isinstance(o, int))

    @property
    def extra_connections(self) -> int:
        """Weights added (entries of all weight matrices, original ones subtracted)."""
        original = sum(a * b for a, b in zip(self.original_sizes[:-1], self.original_sizes[1:]))
        return sum(w.size for w in self.weights) - original

    def __repr__(self) -> str:
        shape = "-".join(str(n) for n in self.sizes)
        roles = ", ".join(str(o) for o in self.origin)
        return f"MitigatedNetwork({shape}; layers implement: {roles})"


# ----------------------------------------------------------------------------- public API


def pool(net: Network, k: "int | Sequence[int]", layers: "int | Iterable[int] | None" = None) -> MitigatedNetwork:
    """Pooling: every neuron of the given layers becomes ``k`` noisy copies.

    The copies have the same input weights and bias; the next layer reads
    their average (its weights divided by ``k`` over the copies).  Uncorrelated
    noise passed on by a pooled layer drops by 1/k (exactly for affine
    activations); correlated noise does not.

    Parameters
    ----------
    net : Network
        Original or already transformed network.
    k : int or sequence of int
        Copies per neuron, >= 1 (1 returns an equal network).  A sequence
        gives every neuron of one layer its own number of copies
        (non-uniform pooling, see :func:`pool_neurons`); ``layers`` must then
        name that single layer and the sequence have one entry per neuron.
    layers : int or iterable of int, optional
        Layers of ``net`` to pool (1..L).  Default: every hidden layer
        (1..L-1) of the original network.  Listing the output layer L appends a
        noise-free read-out layer that averages its copies.

    Returns
    -------
    MitigatedNetwork

    Raises
    ------
    ValueError
        For k < 1 or not an integer, a layer out of range or a layer that is
        a noise-free read-out/coupling layer.
    """
    state = _State.of(net)
    chosen = _layers(state, layers)
    if np.ndim(k) == 0:
        k = positive_int("k (copies per neuron)", k)
        for layer in sorted(chosen, reverse=True):
            state.pool(layer, np.full(state.sizes[layer], k))
        return state.build()
    if len(chosen) != 1:
        raise ValueError(f"per-neuron copies k apply to one layer; layers names {len(chosen)} layers {chosen}")
    return pool_neurons(net, {chosen[0]: k})


def pool_neurons(net: Network, copies: "Mapping[int, Sequence[int]]") -> MitigatedNetwork:
    """Non-uniform pooling: neuron i of layer k becomes ``copies[k][i]`` noisy copies.

    The copies of neuron i have its input weights and bias and the next layer
    reads their average (weights W_{k+1,ji} / K_i over the copies), so the
    function is preserved.  The uncorrelated noise (AU, MU) that neuron i
    passes on drops by 1/K_i; correlated noise does not change.  Spending a
    neuron budget where the output is most sensitive to a neuron's own noise
    gains more than uniform pooling (:func:`~noiseprop.mitigation.allocation.allocate_copies`
    chooses the K_i).  Cost: sum_i (K_i - 1) neurons.

    Parameters
    ----------
    net : Network
        Original or already transformed network.
    copies : mapping layer -> sequence of int
        For each listed layer k (1..L of ``net``), one integer K_i >= 1 per
        neuron.  The output layer gets a noise-free read-out layer.

    Returns
    -------
    MitigatedNetwork

    Raises
    ------
    ValueError
        For a bad layer, a sequence of the wrong length, or a count < 1 or
        not an integer (naming the layer and the neuron).
    """
    if not isinstance(copies, Mapping) or not copies:
        raise ValueError("copies must be a non-empty mapping layer -> per-neuron copy counts")
    state = _State.of(net)
    chosen = _layers(state, list(copies))
    counts = {layer: _copies(copies[layer], state.sizes[layer], layer) for layer in chosen}
    for layer in sorted(chosen, reverse=True):
        state.pool(layer, counts[layer])
    return state.build()


def _copies(values, n: int, layer: int) -> np.ndarray:
    """Validated per-neuron copy counts of a layer of n neurons."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"layer {layer}: copies must be integers >= 1, got {values!r}") from None
    if array.shape != (n,):
        raise ValueError(f"layer {layer}: copies needs one count per neuron ({n}), got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array) | (array < 1) | (array != np.round(array)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"layer {layer}, neuron {i}: copies must be an integer >= 1, got {values[i]!r}")
    return array.astype(int)


def ghost_neurons(
    net: Network,
    layers: "int | Iterable[int] | None" = None,
    groups: int = 1,
    level: "float | Sequence[float] | None" = None,
) -> MitigatedNetwork:
    """Ghost neurons: one signal-free neuron per group that cancels correlated noise.

    Parameters
    ----------
    net : Network
    layers : int or iterable of int, optional
        Layers of ``net`` (1..L); default every hidden layer.  The output
        layer L gets a noise-free read-out layer that subtracts its ghost.
    groups : int, default 1
        Ghosts per layer; the layer's neurons are split into this many
        contiguous groups of (nearly) equal size, each with its own ghost.
    level : float or sequence of ``groups`` floats, optional
        The ghost's noise-free output c = f(b_g); default f(0) (bias 0).
        Additive correlated noise cancels for any c; the multiplicative
        correlated residual is smallest when c is near the group's outputs.

    Returns
    -------
    MitigatedNetwork

    Raises
    ------
    ValueError
        For a bad layer, a number of groups outside 1..N_k, or a level the
        layer's activation cannot output (naming the layer and the range).
    """
    groups = positive_int("groups", groups)
    state = _State.of(net)
    for layer in sorted(_layers(state, layers), reverse=True):
        state.ghost(layer, groups, level)
    return state.build()


def intra_layer(
    net: Network,
    matrix_or_kind: "np.ndarray | float | str" = "mean",
    layers: "int | Iterable[int] | None" = None,
) -> MitigatedNetwork:
    """Intra-layer connections: a coupling matrix V inside the given layers.

    A noise-free linear layer y' = V y is inserted after each layer k and the
    next layer's weights become W_{k+1} V^-1 (function preserved).

    Parameters
    ----------
    net : Network
    matrix_or_kind : ndarray (N_k, N_k), float a in [0, 1), "mean" or "copies"
        The coupling.  A float a gives V = (1 - a) I + a 11^T / N_k (each
        neuron keeps 1 - a of its own output and receives a / N_k of every
        neuron's); ``"mean"`` is a = 0.5.  ``"copies"`` (a pooled layer)
        averages every population of copies inside the layer: each row of V
        has K equal entries 1/K (the published "full suppression" row,
        squared mean = mean square) over the copies of one neuron.  It is
        singular, but the copies carry the same signal, so the function is
        kept with the next layer's weights unchanged (they are already equal
        over the copies); the noise passed on is exactly that of pooling.  A matrix applies to every listed
        layer (which must then all have N_k neurons) and must be invertible
        (condition number below 1e8).
    layers : int or iterable of int, optional
        Hidden layers of ``net``; default every hidden layer.  The output
        layer is refused (nothing follows it to undo the coupling).

    Returns
    -------
    MitigatedNetwork
    """
    state = _State.of(net)
    for layer in sorted(_layers(state, layers), reverse=True):
        if layer == state.depth:
            raise ValueError(
                f"layer {layer} is the output layer: an intra-layer coupling needs a following "
                "layer to undo it; choose hidden layers 1..{}".format(state.depth - 1)
            )
        if isinstance(matrix_or_kind, str) and matrix_or_kind == "copies":
            matrix, inverse = _copy_average(state, layer)
        else:
            matrix, inverse = _coupling(matrix_or_kind, state.sizes[layer], layer)
        state.couple(layer, matrix, inverse)
    return state.build()


# ----------------------------------------------------------------------------- internals


class _State:
    """Mutable lists of the layers being transformed (layers numbered 1..L)."""

    def __init__(self, weights, biases, activations, origin, neurons, original_sizes):
        self.weights = [np.array(w, dtype=float) for w in weights]
        self.biases = [np.array(b, dtype=float) for b in biases]
        self.activations = list(activations)
        self.origin = list(origin)
        self.neurons = [np.array(n, dtype=int) for n in neurons]
        self.original_sizes = tuple(original_sizes)

    @classmethod
    def of(cls, net: Network) -> "_State":
        require_network(net)
        if isinstance(net, MitigatedNetwork):
            return cls(net.weights, net.biases, net.activations, net.origin, net.neurons,
                       net.original_sizes)
        return cls(net.weights, net.biases, net.activations, range(1, net.depth + 1),
                   [np.arange(n) for n in net.sizes[1:]], net.sizes)

    @property
    def depth(self) -> int:
        return len(self.weights)

    @property
    def original_depth(self) -> int:
        return len(self.original_sizes) - 1

    @property
    def sizes(self) -> tuple:
        return (self.weights[0].shape[1],) + tuple(w.shape[0] for w in self.weights)

    def build(self) -> MitigatedNetwork:
        return MitigatedNetwork(self.weights, self.biases, self.activations, self.origin,
                                self.neurons, self.original_sizes)

    def _ensure_next(self, layer: int) -> None:
        """Append an identity read-out layer when ``layer`` is the last one."""
        if layer == self.depth:
            n = self.sizes[layer]
            self.weights.append(np.eye(n))
            self.biases.append(np.zeros(n))
            self.activations.append(Linear())
            self.origin.append(READOUT)
            self.neurons.append(self.neurons[layer - 1].copy())

    def pool(self, layer: int, k: np.ndarray) -> None:
        """Neuron i of ``layer`` becomes k[i] copies read as their average."""
        self._ensure_next(layer)
        i = layer - 1
        self.weights[i] = np.repeat(self.weights[i], k, axis=0)
        self.biases[i] = np.repeat(self.biases[i], k)
        self.neurons[i] = np.repeat(self.neurons[i], k)
        self.weights[i + 1] = np.repeat(self.weights[i + 1] / k, k, axis=1)

    def ghost(self, layer: int, groups: int, level) -> None:
        i = layer - 1
        n = self.sizes[layer]
        if groups > n:
            raise ValueError(f"layer {layer}: groups must be 1..{n} (its neurons), got {groups}")
        levels = _levels(level, groups, layer)
        f = self.activations[i]
        bias = np.array([_bias_for_level(f, c, layer) for c in levels])
        outputs = f(bias)                       # the ghosts' actual noise-free outputs
        self._ensure_next(layer)
        members = np.array_split(np.arange(n), groups)
        sums = np.stack([self.weights[i + 1][:, g].sum(axis=1) for g in members], axis=1)
        self.weights[i] = np.vstack([self.weights[i], np.zeros((groups, self.sizes[layer - 1]))])
        self.biases[i] = np.concatenate([self.biases[i], bias])
        self.neurons[i] = np.concatenate([self.neurons[i], np.full(groups, GHOST)])
        self.weights[i + 1] = np.hstack([self.weights[i + 1], -sums])
        self.biases[i + 1] = self.biases[i + 1] + sums @ outputs

    def couple(self, layer: int, matrix: np.ndarray, inverse: np.ndarray) -> None:
        i = layer - 1
        self.weights[i + 1] = self.weights[i + 1] @ inverse
        self.weights.insert(i + 1, matrix)
        self.biases.insert(i + 1, np.zeros(matrix.shape[0]))
        self.activations.insert(i + 1, Linear())
        self.origin.insert(i + 1, COUPLING)
        self.neurons.insert(i + 1, np.full(matrix.shape[0], _MIXED))


def _layers(state: _State, layers) -> list[int]:
    """Validated layer numbers of the network being transformed."""
    depth = state.depth
    if layers is None:
        chosen = [t for t in range(1, depth + 1)
                  if isinstance(state.origin[t - 1], int) and state.origin[t - 1] < state.original_depth]
        if not chosen:
            raise ValueError(
                "the network has no hidden layer; list the output layer explicitly "
                f"(layers=[{depth}]) to transform it with a noise-free read-out layer"
            )
        return chosen
    items = [layers] if not isinstance(layers, Iterable) or isinstance(layers, (str, bytes)) else list(layers)
    if not items:
        raise ValueError("layers is empty; give at least one layer 1..{}".format(depth))
    chosen = []
    for item in items:
        try:
            valid = not isinstance(item, bool) and 1 <= operator.index(item) <= depth
        except TypeError:
            valid = False
        if not valid:
            raise ValueError(f"layer {item!r} is out of range: the network has layers 1..{depth}")
        item = int(item)
        if not isinstance(state.origin[item - 1], int):
            raise ValueError(
                f"layer {item} is a noise-free {state.origin[item - 1]} layer added by a "
                "transformation: there is no noise to mitigate in it"
            )
        if item in chosen:
            raise ValueError(f"layer {item} is listed twice")
        chosen.append(item)
    return chosen


def _levels(level, groups: int, layer: int) -> np.ndarray:
    if level is None:
        return np.full(groups, np.nan)          # nan: bias 0
    values = np.atleast_1d(np.asarray(level, dtype=float))
    if values.size == 1:
        values = np.full(groups, values[0])
    if values.shape != (groups,) or not np.all(np.isfinite(values)):
        raise ValueError(
            f"layer {layer}: level must be one finite number or {groups} (one per group), got {level!r}"
        )
    return values


def _bias_for_level(f: Activation, level: float, layer: int) -> float:
    """A bias b with f(b) = level (nan level: b = 0)."""
    if np.isnan(level):
        return 0.0
    if isinstance(f, Linear):
        if f.slope == 0:
            raise ValueError(f"layer {layer}: a linear activation of slope 0 outputs only {f.offset}")
        return (level - f.offset) / f.slope
    low, high = -1.0, 1.0
    while f(np.array([low]))[0] > level and low > -1e6:
        low *= 2
    while f(np.array([high]))[0] < level and high < 1e6:
        high *= 2
    for _ in range(200):
        mid = 0.5 * (low + high)
        if f(np.array([mid]))[0] < level:
            low = mid
        else:
            high = mid
    bias = high
    reached = f(np.array([bias]))[0]
    if abs(reached - level) > 1e-9 * max(1.0, abs(level)):
        span = f(np.array([-1e6, 1e6]))
        raise ValueError(
            f"layer {layer}: activation {f.spec} cannot output the ghost level {level} "
            f"(its outputs lie in [{span[0]:g}, {span[1]:g}])"
        )
    return float(bias)


def _copy_average(state: "_State", layer: int) -> tuple[np.ndarray, np.ndarray]:
    """Block averaging over the copies of each neuron of a pooled layer, and the identity as
    the next layer's correction (its weights are equal over the copies, so W V = W)."""
    labels = state.neurons[layer - 1]
    n = labels.size
    same = (labels[:, None] == labels[None, :]) & (labels[:, None] >= 0)
    matrix = np.where(same, 1.0, 0.0)
    matrix[np.diag_indices(n)] = 1.0                  # ghosts and mixed neurons: kept as they are
    matrix /= matrix.sum(axis=1, keepdims=True)
    following = state.weights[layer]
    if not np.allclose(following @ matrix, following, rtol=1e-12, atol=1e-14):
        raise ValueError(
            f"layer {layer}: 'copies' coupling needs a pooled layer whose copies the next layer reads "
            "with equal weights (pool it first)"
        )
    if not np.any(same.sum(axis=1) > 1):
        raise ValueError(f"layer {layer} has no copies to average: pool it first (pool(net, k, layers={layer}))")
    return matrix, np.eye(n)


def _coupling(spec, n: int, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """The coupling matrix V of a layer of n neurons and its inverse."""
    if isinstance(spec, str):
        if spec != "mean":
            raise ValueError(
                f"matrix_or_kind must be a matrix, a float in [0, 1), 'mean' or 'copies', got {spec!r}")
        spec = 0.5
    if np.ndim(spec) == 0:
        a = float(spec)
        if not 0.0 <= a < 1.0:
            raise ValueError(f"coupling fraction a must lie in [0, 1) (a = 1 is not invertible), got {a}")
        average = np.full((n, n), 1.0 / n)
        identity = np.eye(n)
        matrix = (1.0 - a) * identity + a * average
        inverse = (identity - average) / (1.0 - a) + average
        return matrix, inverse
    try:
        matrix = np.array(spec, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("the intra-layer matrix must be numeric") from None
    if matrix.shape != (n, n):
        raise ValueError(f"layer {layer}: the intra-layer matrix has shape {matrix.shape}, expected ({n}, {n})")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"layer {layer}: the intra-layer matrix has non-finite entries")
    condition = np.linalg.cond(matrix)
    if not condition < _MAX_CONDITION:
        raise ValueError(
            f"layer {layer}: the intra-layer matrix is singular or ill-conditioned (condition number "
            f"{condition:.3g}); the next layer could not undo it"
        )
    return matrix, np.linalg.inv(matrix)
