"""Where a neuron budget helps most: per-neuron sensitivities and non-uniform pooling.

Within linear response the output noise is a sum over noise sources.  The own
uncorrelated noise of neuron i of layer k (variance u_i: D_AU + D_MU (m_i^2 +
Sigma_ii) with "post" placement, the same at the pre-activation times
f'(zbar_i)^2 with "pre" placement) reaches the output through the column i of
the Jacobian G = d y_L / d y_k, so it contributes

    a_i = u_i * |P G_i|^2 / N_L          (batch-averaged)

to the output noise variance per neuron (P = I for the layer SNR, P = I - 11^T/N_L
for the differential SNR of a classifier).  Pooling neuron i into K_i copies
that the next layer averages divides this term by K_i exactly (affine
activations; first order otherwise) and costs K_i - 1 neurons.  Minimising
sum_i a_i / K_i under sum_i (K_i - 1) <= budget is a separable convex integer
problem: giving each extra neuron to the neuron with the largest marginal gain
a_i / (K_i (K_i + 1)) is optimal (:func:`allocate_copies`).  In the continuous
limit K_i is proportional to sqrt(a_i), and the best gain over no pooling with
M neurons in all (copies included) among n poolable neurons is

    sum_i a_i * M / (sum_i sqrt(a_i))^2 = (M / n) * H,   H = n sum a / (sum sqrt a)^2 >= 1,

so it exceeds the uniform factor M / n only by the heterogeneity H of the
contributions.  Correlated noise is untouched by pooling.
"""
from __future__ import annotations

import heapq
from typing import Optional

import numpy as np

from ..model import Network
from ..noise import Noise, NoiseSpec, per_layer_noise
from ..propagation import add_noise_covariance
from ..utils.validation import as_input, require_network

__all__ = ["neuron_contributions", "allocate_copies", "output_projector", "OBJECTIVES"]

#: Output noise measures: the layer SNR's, or the differential one (deviations from the outputs' mean).
OBJECTIVES = ("snr", "differential", "decision")


def output_projector(mean: np.ndarray, objective: str) -> np.ndarray:
    """Projector P (B, N, N) of the output noise that an objective counts, per input.

    "snr": the identity.  "differential": I - 11^T/N (noise common to all
    outputs cannot change an arg-max).  "decision": also without the
    direction of the noise-free output vector m: the arg-max of m is that of
    m + a 1 + b m (1 + b > 0), so to first order only noise orthogonal to 1
    and m can flip a decision.  The counted output noise per neuron is
    tr(P Sigma) / N.
    """
    batch, n = mean.shape
    if objective == "snr":
        return np.broadcast_to(np.eye(n), (batch, n, n))
    common = np.full(n, 1.0 / np.sqrt(n))
    projector = np.eye(n) - np.outer(common, common)
    projector = np.broadcast_to(projector, (batch, n, n))
    if objective == "differential":
        return projector
    spread = mean - mean.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(spread, axis=1, keepdims=True)
    direction = np.divide(spread, norm, out=np.zeros_like(spread), where=norm > 0)
    return projector - direction[:, :, None] * direction[:, None, :]


def _layer_noise(net: Network, noise: NoiseSpec) -> list:
    if hasattr(net, "noise_for"):
        return net.noise_for(noise)
    return list(per_layer_noise(noise, net.depth))


def neuron_contributions(net: Network, noise: NoiseSpec, x, objective: str = "snr") -> list:
    """Output noise variance that each neuron's own uncorrelated noise contributes.

    Parameters
    ----------
    net : Network
        Any network (a transformed one takes the original noise spec, mapped
        by its ``noise_for``).
    noise : Noise or sequence of Noise
        Variances per layer.
    x : array_like (N_0,) or (B, N_0)
    objective : {"snr", "differential", "decision"}
        "snr": contribution to the mean output variance per output neuron;
        "differential": to the mean variance of the outputs' deviations from
        their average (what an arg-max depends on); "decision": of the part
        of the noise orthogonal to the noise-free output vector too
        (:func:`output_projector`).

    Returns
    -------
    list of ndarray
        Element k - 1 (k = 1..L) has shape (N_k,): a_i of every neuron of
        layer k, batch-averaged (0 for noise-free layers).  Linear response:
        exact for affine activations, first order in the noise otherwise.
    """
    require_network(net)
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    layer_noise = _layer_noise(net, noise)
    mean, _ = as_input(x, net.sizes[0])
    own, slopes, cov = [], [], np.zeros((mean.shape[0], net.sizes[0], net.sizes[0]))
    for w, b, f, nz in zip(net.weights, net.biases, net.activations, layer_noise):
        zbar = mean @ w.T + b
        cov_z = w @ cov @ w.T
        slope = f.derivative(zbar)
        uncorrelated = Noise(AU=nz.AU, MU=nz.MU, placement=nz.placement)
        if nz.placement == "pre":
            u = nz.AU + nz.MU * (zbar**2 + np.diagonal(cov_z, axis1=1, axis2=2))
            own.append(u * slope**2)
            cov_z = add_noise_covariance(zbar, cov_z, nz)
        mean = f(zbar)
        cov = slope[:, :, None] * cov_z * slope[:, None, :]
        if nz.placement == "post":
            own.append(np.diagonal(add_noise_covariance(mean, cov, uncorrelated) - cov, axis1=1, axis2=2))
            cov = add_noise_covariance(mean, cov, nz)
        slopes.append(slope)
    n = net.sizes[-1]
    jacobian = output_projector(mean, objective)
    result = [None] * net.depth
    for t in range(net.depth, 0, -1):
        result[t - 1] = np.mean((jacobian**2).sum(axis=1) * own[t - 1], axis=0) / n
        jacobian = (jacobian * slopes[t - 1][:, None, :]) @ net.weights[t - 1]
    return result


def allocate_copies(
    net: Network,
    noise: NoiseSpec,
    x,
    budget: int,
    objective: str = "snr",
    layers: Optional[list] = None,
) -> dict:
    """Copies per neuron that minimise the predicted output noise within ``budget`` extra neurons.

    Greedy marginal allocation on :func:`neuron_contributions`: each extra
    neuron goes to the neuron whose term a_i / K_i falls most,
    a_i / (K_i (K_i + 1)); optimal for this separable convex problem.

    Parameters
    ----------
    net : Network
    noise : Noise or sequence of Noise
    x : array_like (N_0,) or (B, N_0)
    budget : int
        Extra neurons (>= 0); never exceeded.  Neurons whose own noise does
        not reach the output get none, so fewer may be used.
    objective : {"snr", "differential", "decision"}
    layers : list of int, optional
        Layers of ``net`` that may be pooled; default every layer that
        implements an original layer (noise-free read-out and coupling layers
        are never pooled).

    Returns
    -------
    dict
        layer -> ndarray of copies per neuron (only layers that get copies),
        ready for :func:`~noiseprop.mitigation.transforms.pool_neurons`.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ValueError(f"budget must be an integer >= 0 (extra neurons), got {budget!r}")
    contributions = neuron_contributions(net, noise, x, objective)
    origin = getattr(net, "origin", range(1, net.depth + 1))
    if layers is None:
        layers = [t for t in range(1, net.depth + 1) if isinstance(origin[t - 1], int)]
    for t in layers:
        if not (isinstance(t, (int, np.integer)) and 1 <= t <= net.depth and isinstance(origin[t - 1], int)):
            raise ValueError(f"layer {t!r} cannot be pooled: choose among the noisy layers 1..{net.depth}")
    copies = {t: np.ones(net.sizes[t], dtype=int) for t in layers}
    heap = [(-a / 2.0, t, i) for t in layers for i, a in enumerate(contributions[t - 1]) if a > 0]
    heapq.heapify(heap)
    for _ in range(int(budget)):
        if not heap:
            break
        _, t, i = heapq.heappop(heap)
        copies[t][i] += 1
        k = copies[t][i]
        heapq.heappush(heap, (-contributions[t - 1][i] / (k * (k + 1.0)), t, i))
    return {t: c for t, c in copies.items() if np.any(c > 1)}
