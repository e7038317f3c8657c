"""Per-layer weight statistics and noise gains at the working point (spec 5, 6).

A noise that reaches layer k-1 is carried into layer k by the weights W_k
(N_k x N_{k-1}) and the activation slopes s_k,i = f_k'(zbar_k,i) at the
noise-free working point zbar_k = W_k y_{k-1} + b_k.  Two gains summarise how
much of the incoming *variance* arrives (dimensionless ratios of variances):

- uncorrelated gain  g_U = mean_i s_i^2 sum_j W_ij^2:  an uncorrelated variance
  u in layer k-1 (covariance u I) gives a mean variance g_U u in layer k;
- correlated gain    g_C = mean_i s_i^2 (sum_j W_ij)^2: a correlated variance c
  (covariance c 11^T) gives a mean variance g_C c.

Their statistics-only forms (spec 6) use only the mean slope power
<s^2> = mean_i s_i^2, the mean weight mu_k and the mean squared weight nu_k
(:func:`statistics_gains`): g_U ~ <s^2> N_{k-1} nu_k and
g_C ~ <s^2> E[(sum_j W_ij)^2] = <s^2> (N_{k-1}^2 mu_k^2 + N_{k-1} (nu_k - mu_k^2))
for weights drawn independently with that mean and mean square (the second
term, the variance of a row sum, dominates for trained layers with mu ~ 0);
both are exact for symmetric networks (spec 5: g_U = s^2 N w^2,
g_C = s^2 N^2 w^2).

:func:`layer_statistics` also gives the exact 2 x 2 ``transfer`` matrix of the
(uncorrelated, correlated) split of spec 3 through a layer, which the design
checks use for boundedness and deep-stack limits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import Network
from ..statistics import mean_off_diagonal_from_sums
from ..utils.validation import require_network

__all__ = ["LayerGains", "layer_statistics", "mean_off_diagonal_outer", "statistics_gains"]


@dataclass(frozen=True)
class LayerGains:
    """Weight statistics and noise gains of layer k at the working point.

    Quantities that depend on the input are floats for one input and arrays
    of shape (B,) for a batch of B inputs (``slope``: (N_k,) or (B, N_k)).
    Gains are ratios of variances (dimensionless); a gain below one shrinks
    the noise that enters the layer.

    Attributes
    ----------
    layer : int
        k, 1..L.
    fan_in : int
        N_{k-1}, the number of inputs of each neuron.
    size : int
        N_k, the number of neurons.
    mu : float
        mu_k, the mean of the entries of W_k.
    nu : float
        nu_k, the mean of the squared entries of W_k.
    slope : ndarray (N_k,) or (B, N_k)
        f_k'(zbar_k,i) of every neuron at the noise-free working point.
    slope_sq_mean : float or ndarray (B,)
        <s^2> = mean_i s_i^2.
    uncorrelated_gain : float or ndarray (B,)
        g_U = mean_i s_i^2 sum_j W_ij^2.
    correlated_gain : float or ndarray (B,)
        g_C = mean_i s_i^2 (sum_j W_ij)^2.
    uncorrelated_gain_stats : float or ndarray (B,)
        <s^2> N_{k-1} nu_k, the statistics-only form of g_U.
    correlated_gain_stats : float or ndarray (B,)
        <s^2> (N_{k-1}^2 mu_k^2 + N_{k-1} (nu_k - mu_k^2)), the
        statistics-only form of g_C (:func:`statistics_gains`).
    output_mean : float or ndarray (B,)
        mean_i f_k(zbar_k,i), the layer's mean noise-free output.
    signal_power : float or ndarray (B,)
        P_k = mean_i f_k(zbar_k,i)^2, the noise-free output power: a
        multiplicative intensity D adds the variance D P_k (its gain, in units
        of the output squared).
    transfer : ndarray (2, 2) or (B, 2, 2)
        Exact map of the split (u, c) of a covariance u I + c 11^T in layer
        k-1 to the split (u', c') of layer k's propagated covariance
        J W (u I + c 11^T) W^T J before layer k's own noise:
        ``[u', c'] = transfer @ [u, c]``.  Columns sum to (g_U, g_C).
    """

    layer: int
    fan_in: int
    size: int
    mu: float
    nu: float
    slope: np.ndarray
    slope_sq_mean: "float | np.ndarray"
    uncorrelated_gain: "float | np.ndarray"
    correlated_gain: "float | np.ndarray"
    uncorrelated_gain_stats: "float | np.ndarray"
    correlated_gain_stats: "float | np.ndarray"
    output_mean: "float | np.ndarray"
    signal_power: "float | np.ndarray"
    transfer: np.ndarray


def mean_off_diagonal_outer(v: np.ndarray) -> np.ndarray:
    """Mean off-diagonal entry of v v^T for each row v of (B, N); 0 if N = 1."""
    return mean_off_diagonal_from_sums(v.sum(axis=-1) ** 2, (v**2).sum(axis=-1), v.shape[-1])



def statistics_gains(slope_sq_mean, fan_in: int, mu: float, nu: float) -> tuple:
    """Statistics-only noise gains of a layer (spec 6).

    For weights drawn independently with mean ``mu`` and mean square ``nu``,
    a row sum sum_j W_ij has mean N mu and variance N (nu - mu^2), so

        g_U = <s^2> N nu,    g_C = <s^2> E[(sum_j W_ij)^2] = <s^2> (N^2 mu^2 + N (nu - mu^2)),

    with N = ``fan_in`` and <s^2> = ``slope_sq_mean`` (float or array).  The
    same complete form as the symbolic trained-network recursion of
    :mod:`noiseprop.analysis.symbolic`.

    Returns
    -------
    (g_U, g_C) : floats or arrays like ``slope_sq_mean``
    """
    return slope_sq_mean * fan_in * nu, slope_sq_mean * (fan_in**2 * mu**2 + fan_in * (nu - mu**2))


def layer_statistics(net: Network, x) -> list[LayerGains]:
    """Weight statistics and noise gains of every layer k = 1..L.

    Parameters
    ----------
    net : Network
    x : array_like(float), shape (N_0,) or (B, N_0)
        The input(s) fixing the working point (the noise-free forward pass).

    Returns
    -------
    list of LayerGains
        One per layer, ``result[k-1]`` for layer k.

    Examples
    --------
    >>> from noiseprop import Network
    >>> net = Network.symmetric(depth=2, width=4, weight=0.25, activation="linear(slope=0.5)")
    >>> g = layer_statistics(net, [1.0, 1.0, 1.0, 1.0])[1]
    >>> round(g.uncorrelated_gain, 6), round(g.correlated_gain, 6)
    (0.0625, 0.25)
    """
    require_network(net)
    point = net.working_point(x)
    layers = []
    for k, (w, slope, y) in enumerate(zip(net.weights, point.slope, point.output), start=1):
        with np.errstate(over="ignore", invalid="ignore"):
            gains = _layer_gains(k, w, slope, y, point.batched)
        _check_finite(gains)
        layers.append(gains)
    return layers


def _check_finite(gains: LayerGains) -> None:
    """A ValueError naming the layer when its working point or gains overflow."""
    values = (gains.mu, gains.nu, gains.slope, gains.uncorrelated_gain, gains.correlated_gain,
              gains.correlated_gain_stats, gains.signal_power, gains.transfer)
    if not all(np.all(np.isfinite(v)) for v in values):
        raise ValueError(
            f"layer {gains.layer}: the working point or the noise gains are not finite (overflow); "
            "rescale the weights, biases or input"
        )


def _layer_gains(k: int, w: np.ndarray, slope: np.ndarray, mean: np.ndarray, batched: bool) -> LayerGains:
    """Gains of one layer for slopes (B, N_k) and noise-free outputs (B, N_k)."""
    size, fan_in = w.shape
    mu, nu = np.float64(w.mean()), np.float64(np.mean(w**2))  # numpy scalars: overflow gives inf
    slope_sq = slope**2
    slope_sq_mean = slope_sq.mean(axis=-1)
    uncorrelated_gain = slope_sq @ (w**2).sum(axis=1) / size
    row_sums = w.sum(axis=1)
    correlated_gain = slope_sq @ row_sums**2 / size
    transfer = np.empty(slope.shape[:1] + (2, 2))
    # Uncorrelated input u I -> u J W W^T J: all its entries sum to |W^T s|^2,
    # its trace is sum_i s_i^2 |W_i|^2.
    off_u = mean_off_diagonal_from_sums(((slope @ w) ** 2).sum(axis=-1), size * uncorrelated_gain, size)
    # Correlated input c 11^T -> c v v^T with v = J W 1.
    off_c = mean_off_diagonal_outer(slope * row_sums)
    transfer[:, 0, 0] = uncorrelated_gain - off_u
    transfer[:, 1, 0] = off_u
    transfer[:, 0, 1] = correlated_gain - off_c
    transfer[:, 1, 1] = off_c

    stats_u, stats_c = statistics_gains(slope_sq_mean, fan_in, mu, nu)

    def out(a):
        return a if batched else a[0]

    def scalar(a):
        return a if batched else float(a[0])

    return LayerGains(
        layer=k,
        fan_in=fan_in,
        size=size,
        mu=float(mu),
        nu=float(nu),
        slope=out(slope),
        slope_sq_mean=scalar(slope_sq_mean),
        uncorrelated_gain=scalar(uncorrelated_gain),
        correlated_gain=scalar(correlated_gain),
        uncorrelated_gain_stats=scalar(stats_u),
        correlated_gain_stats=scalar(stats_c),
        output_mean=scalar(mean.mean(axis=-1)),
        signal_power=scalar((mean**2).mean(axis=-1)),
        transfer=out(transfer),
    )
