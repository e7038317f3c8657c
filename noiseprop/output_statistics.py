"""Statistics of selected layers by adjoint (reverse-mode) linear response.

The full propagation of :func:`noiseprop.predict` carries the N_k x N_k
covariance of every layer for every input: O(N^3) time and O(N^2) memory per
layer and input.  When only some layers are wanted (a classifier's output,
for its accuracy) this module computes the covariance of a target layer t
directly as a sum over the noise sources, with the Jacobians from the target
back to every noise source built by matrix products, as in back-propagation:
O(N_t N^2) time and O(N_t N) memory per layer and input.

The linear-response recursion (docs/model.md §4), written with c_k = 1 + D_MC,k,
T_k = J_k W_k and the *source* Q_k of layer k::

    Sigma_k = c_k T_k Sigma_{k-1} T_k^T                  (propagated noise)
              + D_MU,k Diag(diag(T_k Sigma_{k-1} T_k^T))  (MU acting on it)
              + Q_k,
    Q_k     = D_MU,k Diag(a_k^2) + D_MC,k a_k a_k^T + D_AU,k I + D_AC,k 11^T,

with a_k = m_k for the "post" placement ("pre": the same with z in place of
y, a_k = zbar_k, and J_k applied after the noise).  Dropping the second line,
the recursion is linear in the sources and unrolls to::

    Sigma_t = sum_{k<=t} (prod_{k<j<=t} c_j) G_k Q_k G_k^T,
    G_k = d y_t / d (noise of layer k) = T_t T_{t-1} ... T_{k+1}  (J_k more for "pre"),

and G_{k-1} = G_k J_k W_k is one matrix product (N_t x N_k x N_{k-1}) per
layer, batched over the inputs as a single GEMM.  G_k Q_k G_k^T needs no
N_k x N_k matrix: G diag(q) G^T + D_MC (G a)(G a)^T + D_AC (G 1)(G 1)^T.

Which terms of the full recursion this keeps:

- every additive term (AU, AC) and the multiplicative terms acting on the
  signal (D_MU m^2, D_MC m m^T): exact, the same numbers as ``predict`` up to
  rounding;
- correlated multiplicative noise acting on propagated noise (the factor
  c_k = 1 + D_MC,k): exact (a scalar per layer);
- uncorrelated multiplicative noise acting on propagated noise,
  D_MU,k diag(T_k Sigma_{k-1} T_k^T): exact at the target layer itself and
  at layer 1 (noise-free input: the term is zero there), **dropped** at the
  hidden layers 1 < k < t.  It needs the variances of every hidden neuron,
  which cost O(N^3) per input (the price of the full propagation).  It is
  second order in the intensities (D_MU times the noise variance reaching
  layer k), so the result is the full linear response to first order in D;
  the relative shortfall of the target variance is at most about
  sum_k D_MU,k (measured in the tests and docs/scaling.md).

The means are those of the full "linear" propagation, m_k = f_k(zbar_k),
exact for every layer at O(N^2) per layer and input.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .model import Network
from .noise import Noise, NoiseSpec, per_layer_noise
from .propagation import Prediction, _check_finite_mean, add_noise_covariance
from .statistics import mean_off_diagonal
from .utils.threads import single_threaded_blas
from .utils.validation import as_input, require_network

__all__ = ["selected_layers", "layer_moments", "as_layers", "output_only_is_exact", "output_prediction", "CHUNK_BYTES"]

#: Bytes of one (inputs x N_t x N_k) Jacobian block; inputs are processed in
#: chunks of this size (peak memory: a few such blocks plus the results).
CHUNK_BYTES = 32 * 2**20


def as_layers(layers, depth: int) -> tuple[int, ...]:
    """Validate a layer selection: an int or a sequence of distinct ints in 0..depth.

    Returns the layers sorted; a ValueError names the culprit otherwise.
    """
    items = [layers] if _is_int(layers) else layers
    if isinstance(items, (str, bytes)) or not isinstance(items, (Sequence, np.ndarray)):
        raise ValueError(
            f"layers must be a layer index or a sequence of them (0..{depth}), got {type(layers).__name__}"
        )
    if len(items) == 0:
        raise ValueError(f"layers is empty; give at least one layer index in 0..{depth}")
    for item in items:
        if not _is_int(item):
            raise ValueError(f"layers must hold integer layer indices 0..{depth}, got {item!r}")
        if not 0 <= int(item) <= depth:
            raise ValueError(f"layer {int(item)} is out of range: the network has layers 0..{depth}")
    values = [int(item) for item in items]
    repeated = sorted({k for k in values if values.count(k) > 1})
    if repeated:
        raise ValueError(f"layers lists layer(s) {repeated} more than once")
    return tuple(sorted(values))


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def selected_layers(
    net: Network,
    noise: NoiseSpec,
    x,
    layers,
    full_covariance: bool = False,
    method: str = "linear",
) -> Prediction:
    """:func:`noiseprop.predict` restricted to the statistics of ``layers``.

    Parameters
    ----------
    net, noise, x, full_covariance, method :
        As for :func:`noiseprop.predict`.
    layers : int or sequence of int
        Layers (0..L) whose variance, correlated part and (if asked)
        covariance are computed.

    Returns
    -------
    Prediction
        ``.layers`` holds the computed layers.  For the others ``.var[k]``,
        ``.uncorrelated[k]``, ``.snr[k]`` are NaN arrays, ``.correlated[k]``
        and ``.layer_snr[k]`` NaN and ``.cov[k]`` None; ``.mean[k]`` is given
        for every layer ("linear": f_k(zbar_k), exact and cheap).

    Notes
    -----
    ``method="linear"`` uses the adjoint propagation (module docstring),
    O(N_t N^2) per layer and input and memory bounded by :data:`CHUNK_BYTES`
    per block.  Other methods need the variance of every hidden neuron; they
    run the full propagation and return only the selected layers.
    """
    from .propagation import predict  # the full path (predict dispatches here)

    require_network(net)
    chosen = as_layers(layers, net.depth)
    inputs, batched = as_input(x, net.sizes[0])
    if method != "linear":
        full = predict(net, noise, inputs, full_covariance=full_covariance, method=method)
        return _masked(net, full.mean, full.var, full.correlated, full.cov, chosen, batched, method)
    layer_noise = per_layer_noise(noise, net.depth)
    means = [np.empty((len(inputs), n)) for n in net.sizes]
    variances = {k: np.empty((len(inputs), net.sizes[k])) for k in chosen}
    correlated = {k: np.empty(len(inputs)) for k in chosen}
    covariances = {k: np.empty((len(inputs), net.sizes[k], net.sizes[k])) for k in chosen} if full_covariance else {}
    for part in _chunks(net, len(inputs), chosen):
        zbars, chunk_means = _forward(net, inputs[part])
        for k, m in enumerate(chunk_means):
            means[k][part] = m
        for k in chosen:
            cov = _target_covariance(net, layer_noise, zbars, chunk_means, k)
            variances[k][part] = np.diagonal(cov, axis1=1, axis2=2)
            correlated[k][part] = mean_off_diagonal(cov)
            if full_covariance:
                covariances[k][part] = cov
    return _masked(net, means, variances, correlated, covariances if full_covariance else None,
                   chosen, batched, method)


def output_only_is_exact(layer_noise: Sequence[Noise], method: str) -> bool:
    """Whether the output layer's statistics by the adjoint path equal those of
    the full :func:`noiseprop.predict` (to rounding): "linear" without
    uncorrelated multiplicative noise on a hidden layer 1 < k < L (the one
    term it drops, module docstring)."""
    return method == "linear" and not any(nz.MU for nz in layer_noise[1:-1])


def output_prediction(net: Network, noise: NoiseSpec, x, method: str, **options) -> Prediction:
    """:func:`noiseprop.predict` for callers that read only the output layer L.

    ``predict(net, noise, x, method=method, **options)``, with ``layers=[L]``
    where :func:`output_only_is_exact` (O(N_L N^2) per layer and input, inputs
    in memory-bounded chunks), the full propagation otherwise.  Either way the
    output layer's numbers are those of the full prediction (to rounding).
    """
    from .propagation import predict

    require_network(net)
    if output_only_is_exact(per_layer_noise(noise, net.depth), method):
        options = {**options, "layers": [net.depth]}
    return predict(net, noise, x, method=method, **options)


def _masked(net, means, variances, correlated, covariances, chosen, batched, method) -> Prediction:
    """A Prediction holding the statistics of ``chosen``, NaN (None for cov) elsewhere."""
    count = means[0].shape[0]
    var = [variances[k] if k in chosen else np.full((count, n), np.nan) for k, n in enumerate(net.sizes)]
    corr = [correlated[k] if k in chosen else np.full(count, np.nan) for k in range(net.depth + 1)]
    cov = None
    if covariances is not None:
        cov = [covariances[k] if k in chosen else None for k in range(net.depth + 1)]
    return Prediction(means, var, corr, batched, cov, method, layers=chosen)


def layer_moments(net: Network, noise: NoiseSpec, x, layer: "int | None" = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of one layer for every input (adjoint linear response).

    Parameters
    ----------
    net, noise, x :
        As for :func:`noiseprop.predict`.
    layer : int, optional
        Layer 0..L (default: the output layer L).

    Returns
    -------
    mean : ndarray (B, N_k)
    cov : ndarray (B, N_k, N_k)
        Always batched (B = 1 for a single input).  Memory: these arrays plus
        a few blocks of :data:`CHUNK_BYTES`; nothing of size B x N^2 for the
        hidden layers.
    """
    require_network(net)
    if layer is not None and not _is_int(layer):
        raise ValueError(f"layer must be one layer index 0..{net.depth}, got {layer!r}")
    target = net.depth if layer is None else as_layers(layer, net.depth)[0]
    layer_noise = per_layer_noise(noise, net.depth)
    inputs, _ = as_input(x, net.sizes[0])
    size = net.sizes[target]
    mean = np.empty((len(inputs), size))
    cov = np.empty((len(inputs), size, size))
    for part in _chunks(net, len(inputs), (target,)):
        zbars, means = _forward(net, inputs[part], upto=target)
        mean[part] = means[target]
        cov[part] = _target_covariance(net, layer_noise, zbars, means, target)
    return mean, cov


def _chunks(net: Network, count: int, targets: Sequence[int]):
    """Slices of the inputs such that one Jacobian block fits in CHUNK_BYTES."""
    widest_target = max(net.sizes[k] for k in targets)
    per_input = 8 * widest_target * max(net.sizes) + 8 * sum(net.sizes) * 2
    rows = max(1, CHUNK_BYTES // per_input)
    return [slice(start, start + rows) for start in range(0, count, rows)]


def _forward(net: Network, inputs: np.ndarray, upto: "int | None" = None):
    """Noise-free pre-activations zbar_k and means m_k = f_k(zbar_k), k = 0..upto."""
    upto = net.depth if upto is None else upto
    zbars, means = [None], [inputs]
    for k in range(1, upto + 1):
        zbar = means[-1] @ net.weights[k - 1].T + net.biases[k - 1]
        mean = net.activations[k - 1](zbar)
        _check_finite_mean(mean, k)
        zbars.append(zbar)
        means.append(mean)
    return zbars, means


def _target_covariance(net: Network, layer_noise: Sequence[Noise], zbars, means, target: int) -> np.ndarray:
    """Covariance (B, N_t, N_t) of layer ``target`` by the adjoint recursion.

    ``zbars[k]``, ``means[k]``: (B, N_k) for k <= target (module docstring).
    """
    count, size = means[target].shape
    if target == 0:
        return np.zeros((count, size, size))
    noisy = [k for k in range(1, target) if not layer_noise[k - 1].is_zero]
    lowest = min(noisy, default=target)
    own = layer_noise[target - 1]
    slope = net.activations[target - 1].derivative(zbars[target])
    cov = np.zeros((count, size, size))
    if lowest < target:
        # G: d (target before its own noise) / d y_{target-1}
        weight = net.weights[target - 1]
        jacobian = slope[:, :, None] * weight if own.placement == "post" else np.broadcast_to(weight, (count,) + weight.shape)
        scale = 1.0
        for k in range(target - 1, lowest - 1, -1):
            noise = layer_noise[k - 1]
            pre = noise.placement == "pre"
            if not noise.is_zero and not pre:
                _add_source(cov, jacobian, means[k], noise, scale)
            if k == lowest and not pre:
                break
            jacobian = jacobian * net.activations[k - 1].derivative(zbars[k])[:, None, :]  # d / d z_k
            if not noise.is_zero and pre:
                _add_source(cov, jacobian, zbars[k], noise, scale)
            if k > lowest:
                weight = net.weights[k - 1]
                jacobian = (jacobian.reshape(-1, jacobian.shape[-1]) @ weight).reshape(count, size, weight.shape[1])
            scale *= 1.0 + noise.MC
    if own.placement == "post":
        return add_noise_covariance(means[target], cov, own)
    cov = add_noise_covariance(zbars[target], cov, own)
    return slope[:, :, None] * cov * slope[:, None, :]


def _add_source(cov: np.ndarray, jacobian: np.ndarray, signal: np.ndarray, noise: Noise, scale: float) -> None:
    """cov += scale G Q G^T for the source Q = D_MU Diag(a^2) + D_AU I + D_MC a a^T + D_AC 11^T.

    ``jacobian`` G: (B, N_t, N_k); ``signal`` a: (B, N_k).
    """
    diagonal = noise.MU * signal**2 + noise.AU
    if noise.has_uncorrelated:
        with single_threaded_blas():  # one small product per input
            cov += scale * ((jacobian * diagonal[:, None, :]) @ jacobian.transpose(0, 2, 1))
    if noise.MC:
        image = np.einsum("bij,bj->bi", jacobian, signal)
        cov += (scale * noise.MC) * image[:, :, None] * image[:, None, :]
    if noise.AC:
        image = jacobian.sum(axis=2)
        cov += (scale * noise.AC) * image[:, :, None] * image[:, None, :]
