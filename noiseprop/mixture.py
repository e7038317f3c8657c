"""The shared-noise mixture closure: method "mixture" of :func:`noiseprop.predict`.

The Gaussian closure ("moments") takes every pre-activation z_k as Gaussian.
That is a good law for the part of the noise that is independent from
neuron to neuron (uncorrelated noise, summed over a layer's fan-in), but not
for the part that all neurons of a layer share: the correlated draws xi_AC,
xi_MC are one scalar per layer and realisation, so after a nonlinearity the
layer's whole output vector moves as a nonlinear function of a few scalars,
and no central limit theorem makes the next layer's pre-activations Gaussian
(a correlated multiplicative factor, for instance, makes them a random
*product* of (1 + xi) terms, nearly never negative, whereas a Gaussian of the
same variance is negative with a sizeable probability).

This closure treats the shared draws explicitly.  The law of a layer's
output is carried as a mixture of K components (weight w_c, mean vector
m_c, covariance S_c); inside one component the remaining randomness is
independent from neuron to neuron and is treated as Gaussian.  By the law
of total variance the mixture's mean and covariance are

    E[y]   = sum_c w_c m_c
    Cov[y] = sum_c w_c S_c + sum_c w_c (m_c - E[y]) (m_c - E[y])^T .

One layer, for every component:

1. z = W y + b has mean W m_c + b and covariance W S_c W^T.
2. Before a nonlinear activation every component is split along the two
   leading directions of its covariance W S_c W^T (3 Gauss-Hermite nodes
   each: 9 children, :func:`_principal_split`).  This is exact (a
   conditioning); it lets the activation act on the largest spreads by
   quadrature, so that the non-Gaussian law that the activation gives the
   next layer's pre-activations (a few upstream directions carrying most of
   the noise through a curved f) is carried by the components instead of
   being folded into one Gaussian.
3. The layer's shared draws are integrated by Gauss-Hermite quadrature:
   every component splits into one child per node (s, c) of (xi_MC, xi_AC)
   (7 nodes; a 5 x 5 tensor grid when both are present).  With the noise
   after the activation ("post") the child is f(z) (1 + s) + c, before it
   ("pre") the activation sees z (1 + s) + c.
4. The activation's moments come from the Gaussian rules of
   :mod:`noiseprop.moments` (per-neuron mean and variance exact for a
   Gaussian z; covariances between neurons by Mehler's expansion to second
   order, as in "moments").  Uncorrelated multiplicative noise before the
   activation, z (1 + s + u) with u = xi_MU independent per neuron, is not a
   Gaussian; there the per-neuron moments are averaged over u by
   Gauss-Hermite quadrature as well (each node gives a Gaussian z), and the
   Mehler coefficients are those of g(z) = E_u f(z (1 + s + u) + ...):
   E[g'] = E_u[(1 + s + u) f'], E[g''] = E_u[(1 + s + u)^2 f''].
   Uncorrelated noise after the activation adds its exact covariance.
5. Uncorrelated multiplicative noise gives a neuron a noise variance that
   follows its signal (after the activation: D_MU f(z_a)^2), so it
   co-varies with the other neurons' signals: the next layer's
   pre-activations have a co-skewness kappa(z_a, z_a, z_b) that a Gaussian
   component lacks, summed over N^2 pairs.  From the first layer with
   MU > 0 on, every component also carries K[a, b] = kappa(y_a, y_a, y_b)
   (diagonal: each neuron's third cumulant, that of a Gaussian z plus
   k_aaa E[g']^3), to second order in the noise; the joint cumulants of
   three distinct neurons are not carried.  Linear step
   (:func:`_skew_congruence`): every term of
   sum W_ai W_ai' W_bj kappa(y_i, y_i', y_j) with two equal indices, the
   diagonal by the same formula.  Activation: given z the outputs are
   independent with conditional mean g_a(z_a) and second moment about the
   component mean w_a(z_a), so K'[a, b] = Cov(w_a(z_a), g_b(z_b)):
   Mehler's expansion to second order plus the Edgeworth terms
   k_aab E[w_a''] E[g_b'] / 2 + k_abb E[w_a'] E[g_b''] / 2; the covariance
   gains k_aab E[g_a''] E[g_b'] / 2 + k_abb E[g_a'] E[g_b''] / 2, on the
   diagonal too (k_aaa E[g'] E[g''], the one-dimensional Edgeworth term:
   the same formula, so that identical neurons keep a covariance
   c 1 1^T + d I).  The principal split's children keep their parent's K:
   their terms, summed with the children's weights, are the parent's
   Edgeworth terms with E[g_a'' g_b'] averaged child by child.  The terms
   are a contribution to the merged covariance, not a covariance of their
   own; a merged covariance that they make indefinite is projected onto
   the positive semi-definite matrices (:func:`_positive_semidefinite`).
   Derivatives' expectations come from :mod:`noiseprop.moments`
   (:func:`~noiseprop.moments.second_moment_derivatives`,
   :func:`~noiseprop.moments.third_moment`).  Every term carries a factor
   g'' or is carried only in K, so affine networks stay exact.
6. The children are merged back to K components by divisive
   clustering: the group whose children's means spread most is cut in two
   along its own leading principal direction at its weighted median, until
   there are K groups; every group is replaced by the one component with
   its weight, mean and covariance (moment matching: the total mean and
   covariance are unchanged by the merge) and, where carried, its
   co-skewness (law of total cumulance: the children's own plus
   2 d_a S_ab + d_b S_aa + d_a^2 d_b of their means' deviations d).

Shared noise alone: until the first layer with uncorrelated noise, every
realisation's output is a deterministic function of the shared draws, so
the components are points (no covariance) and are not merged: the draws of
all those layers are integrated on a tensor Gauss-Hermite grid (7 nodes per
draw where the grid stays within POINT_COMPONENTS points, fewer, at least
3, for deeper networks: :func:`grid_nodes`), which is exact up to the
quadrature rule.  A later layer with uncorrelated noise merges the points
into K Gaussian components first.

For affine activations every step is exact, like linear response (no split
is made there).  Derivation, accuracy on the closure matrix
(``benchmarks/closure_matrix.py``) and cost: docs/closure.md.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from .moments import (
    clamp_rounding,
    gaussian_moments,
    largest_variance,
    mehler_covariance,
    second_moment_derivatives,
    third_moment,
)
from .noise import Noise

__all__ = ["Mixture", "MIXTURE_COMPONENTS", "SHARED_NODES", "UNCORRELATED_NODES",
           "initial_mixture", "propagate_mixture", "mixture_moments",
           "mixture_layers", "chunk_size", "step_bytes", "step_values", "layer_values",
           "layer_chunk", "carried"]

#: Components K kept after every layer.
MIXTURE_COMPONENTS = 16
#: Gauss-Hermite nodes per correlated noise type (xi_AC, xi_MC) and layer.
SHARED_NODES = 7
#: Nodes per type when a layer has both correlated types (a tensor grid).
GRID_NODES = 5
#: Gauss-Hermite nodes for uncorrelated multiplicative noise before the activation.
UNCORRELATED_NODES = 9
#: Largest number of point components (no covariance) kept without merging:
#: while no uncorrelated noise has acted, the law is a deterministic function
#: of the shared draws and is integrated on a tensor grid (:func:`grid_nodes`).
POINT_COMPONENTS = 1 << 16
#: Fewest nodes per shared draw for the tensor grid (below: the merged mixture).
GRID_MIN_NODES = 3
#: Leading directions of each component's pre-activation covariance that are
#: integrated by quadrature before a nonlinear activation (fewer where the
#: children's covariances would exceed about 8 M values per input).
SPLIT_DIRECTIONS = 2
#: Gauss-Hermite nodes per split direction.
SPLIT_NODES = 3
#: No split where the second order of the activation along the split
#: directions carries less than this share of the layer's variance
#: (:func:`_curved_share`).
SPLIT_SHARE = 1e-3


class Mixture(NamedTuple):
    """A layer's law as a mixture: weight (B, K), mean (B, K, N), cov (B, K, N, N)
    (None for the noise-free input) and co-skewness (B, K, N, N),
    skew[..., a, b] = kappa(y_a, y_a, y_b) within each component (the
    diagonal: each neuron's third cumulant), carried from the first layer
    with uncorrelated multiplicative noise on (None before: not carried)."""

    weight: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    skew: "np.ndarray | None" = None


@functools.lru_cache(maxsize=None)
def _hermite(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and probability weights of the standard normal, Gauss-Hermite."""
    nodes, weights = np.polynomial.hermite.hermgauss(count)
    return nodes * math.sqrt(2.0), weights / math.sqrt(math.pi)


def _normal_nodes(variance: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes and weights of N(0, variance); one node at 0 if variance = 0."""
    if variance == 0.0:
        return np.zeros(1), np.ones(1)
    nodes, weights = _hermite(count)
    return math.sqrt(variance) * nodes, weights


def _shared_nodes(noise: Noise, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes (scale s, shift c) and weights of the layer's correlated draws:
    ``count`` nodes for one correlated type, a GRID_NODES x GRID_NODES
    tensor grid when both are present."""
    if noise.MC and noise.AC:
        count = min(count, GRID_NODES)
    s, ws = _normal_nodes(noise.MC, count)
    c, wc = _normal_nodes(noise.AC, count)
    return (np.repeat(s, c.size), np.tile(c, s.size), np.outer(ws, wc).ravel())


def initial_mixture(x: np.ndarray) -> Mixture:
    """The noise-free input (B, N_0) as a one-component mixture (its zero
    covariance stands as None, so that a wide input costs no N_0^2 array)."""
    return Mixture(np.ones((x.shape[0], 1)), x[:, None, :].copy(), None)


def mixture_moments(mix: Mixture) -> tuple[np.ndarray, np.ndarray]:
    """Total mean (B, N) and covariance (B, N, N) of a mixture (law of total variance)."""
    mean = np.einsum("bk,bkn->bn", mix.weight, mix.mean)
    dev = mix.mean - mean[:, None, :]
    weighted = dev * np.sqrt(mix.weight)[:, :, None]
    between = np.swapaxes(weighted, 1, 2) @ weighted      # one BLAS product per input
    if mix.cov is None:
        return mean, between
    return mean, np.einsum("bk,bkij->bij", mix.weight, mix.cov) + between


def _children(mix: Mixture, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights (B, K*Q) of every component's children for the Q shared nodes
    (child m = component m // Q, node m % Q) and the parent index (K*Q,)."""
    b, k = mix.weight.shape
    q = weight.size
    return (mix.weight[:, :, None] * weight).reshape(b, k * q), np.repeat(np.arange(k), q)


def _activation(zbar, cov_z, activation, scale, shift, d_mu, d_au, count, skew_z=None,
                carry=False, d_post=0.0):
    """Mean, covariance and co-skewness of f(z (scale + u) + shift + e) per component.

    z ~ N(zbar, cov_z) (M, N), (M, N, N); scale, shift (M,); u ~ N(0, d_mu)
    and e ~ N(0, d_au) independent per neuron.  Per-neuron moments are
    averaged over u by quadrature (:func:`_neuron_moments`); the covariance
    between neurons is Mehler's expansion in cov_z to second order
    (:func:`_covariance`), plus the Edgeworth terms of the co-skewness
    skew_z[a, b] = kappa(z_a, z_a, z_b) (M, N, N) where given
    (:func:`_edgeworth`).  With ``carry`` also the output's co-skewness
    (:func:`_output_coskew`, :func:`_output_skewness`; None otherwise),
    with uncorrelated multiplicative noise of variance ``d_post`` after the
    activation, y = f (1 + xi) (its additive noise adds no third cumulant).
    """
    diagonal = np.arange(zbar.shape[-1])
    nodes = _quadrature_nodes(zbar, cov_z[:, diagonal, diagonal], activation, scale, shift, d_mu, d_au, count)
    mean, second, slope, curvature = _node_averages(*nodes)
    cov = _covariance(slope, curvature, second, cov_z)
    if skew_z is not None and np.any(curvature):
        # A contribution to the mixture's covariance (first order in the
        # co-skewness), not a covariance of its own: the merged components
        # are made positive semi-definite (:func:`_merge`).
        cov += _edgeworth(skew_z, slope, curvature, slope, curvature)
    if not carry:
        return mean, cov, None
    a, wu, node_mean, node_var, moments = nodes
    with np.errstate(over="ignore", invalid="ignore"):
        power_slope, power_curvature = second_moment_derivatives(activation, node_mean, node_var, moments)
        w1 = (1.0 + d_post) * ((a * power_slope) @ wu) - 2.0 * mean * slope
        w2 = (1.0 + d_post) * ((a * a * power_curvature) @ wu) - 2.0 * mean * curvature
        skew = _output_coskew(w1, w2, slope, curvature, cov_z, skew_z)
        skew[:, diagonal, diagonal] = _output_skewness(activation, node_mean, node_var, moments, mean, wu,
                                                       d_post)
        if skew_z is not None:   # the skewness of z, carried through the slope (first order)
            skew[:, diagonal, diagonal] += _weighted(skew_z[:, diagonal, diagonal], slope**3)
    return mean, cov, _finite(skew)


def _quadrature_nodes(zbar, var_z, activation, scale, shift, d_mu, d_au, count):
    """The quadrature over u of :func:`_activation` for z_i ~ N(zbar_i, var_z_i):
    the factors a = scale + u (M, 1, U), the weights (U,), and the Gaussian
    argument of every node, N(node_mean, node_var), with its moments."""
    u, wu = _normal_nodes(d_mu, count)
    a = scale[:, None, None] + u                                   # (M, 1, U)
    node_mean, node_var = zbar[..., None] * a + shift[:, None, None], var_z[..., None] * a * a + d_au
    return a, wu, node_mean, node_var, gaussian_moments(activation, node_mean, node_var)


def _node_averages(a, wu, node_mean, node_var, moments):
    """Per-neuron mean, variance, slope and curvature (M, N) of
    g(z) = E_u f(z (scale + u) + shift + e) from its quadrature
    (:func:`_quadrature_nodes`): the slope and curvature are the
    coefficients E[(scale + u) f'] and E[(scale + u)^2 f''] of Mehler's
    expansion (:func:`_covariance`)."""
    mean = moments.mean @ wu
    second = (moments.var + (moments.mean - mean[..., None]) ** 2) @ wu
    return mean, second, (a * moments.slope) @ wu, (a * a * moments.curvature) @ wu


def _neuron_moments(zbar, var_z, activation, scale, shift, d_mu, d_au, count):
    """:func:`_node_averages` of :func:`_quadrature_nodes` (the per-neuron moments only)."""
    return _node_averages(*_quadrature_nodes(zbar, var_z, activation, scale, shift, d_mu, d_au, count))


def _covariance(slope, curvature, second, cov_z):
    """Covariance (M, N, N) between the neurons of every component from its
    per-neuron moments (:func:`_node_averages`) and the covariance cov_z
    of z: Mehler's expansion to second order, the exact per-neuron variance
    ``second`` on the diagonal."""
    diagonal = np.arange(cov_z.shape[-1])
    cov = mehler_covariance(slope, curvature, cov_z)
    # The exact per-neuron variance on the diagonal; never below the Mehler
    # diagonal, so that the matrix stays positive semi-definite (a Schur
    # product of positive semi-definite matrices plus a non-negative diagonal).
    cov[:, diagonal, diagonal] = np.maximum(second, cov[:, diagonal, diagonal])
    return cov


def _finite(skew: np.ndarray) -> np.ndarray:
    """A co-skewness with its overflowing entries (an enormous noise, whose
    third cumulants exceed the floating-point range) set to 0: not carried."""
    return skew if np.all(np.isfinite(skew)) else np.where(np.isfinite(skew), skew, 0.0)


def _output_skewness(activation, node_mean, node_var, moments, mean, weights, d_post) -> np.ndarray:
    """Third central moment E[(y - m)^3] (M, N) of every neuron's output for
    a Gaussian z: averaged over the quadrature nodes of u (Gaussian
    arguments N(node_mean, node_var), their ``moments``), with noise after
    the activation y = f (1 + xi), xi ~ N(0, d_post):
    (1 + 3 D) E[f^3] - 3 m (1 + D) E[f^2] + 3 m^2 E[f] - m^3."""
    m = mean[..., None]
    power = moments.var + moments.mean**2
    third = third_moment(activation, node_mean, node_var, moments)
    return ((1.0 + 3.0 * d_post) * third - 3.0 * m * (1.0 + d_post) * power
            + 3.0 * m * m * moments.mean - m**3) @ weights


def _edgeworth(skew_z, f1, f2, g1, g2):
    """Edgeworth terms of Cov[F_a(z_a), G_b(z_b)] from the co-skewness
    k_aab = skew_z[a, b] of z (M, N, N), to second order in the noise:
    k_aab E[F_a''] E[G_b'] / 2 + k_abb E[F_a'] E[G_b''] / 2 with f1, f2 =
    E[F'], E[F''] and g1, g2 = E[G'], E[G''] (M, N), on the diagonal too
    (there k_aaa E[F'] E[G''] / 2 + k_aaa E[F''] E[G'] / 2: the limit of the
    same formula, so that identical neurons keep identical covariances;
    docs/closure.md)."""
    out = _weighted(skew_z, 0.5 * f2[:, :, None], g1[:, None, :])
    if np.any(g2):
        out += _weighted(np.swapaxes(skew_z, -1, -2), 0.5 * f1[:, :, None], g2[:, None, :])
    return out


def _weighted(values, *factors):
    """values x factors (broadcast), 0 wherever a factor is 0: an affine
    activation (no curvature) never meets 0 x inf where an enormous noise
    makes the co-skewness overflow."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = values
        for factor in factors:
            out = out * factor
    if np.all(np.isfinite(out)):
        return out
    nonzero = functools.reduce(np.logical_and, [factor != 0 for factor in factors])
    return np.where(nonzero, out, 0.0)


def _output_coskew(w1, w2, g1, g2, cov_z, skew_z):
    """Co-skewness K[a, b] = kappa(y_a, y_a, y_b) of the output off the
    diagonal (each neuron's own skewness, the diagonal, comes from
    :func:`_output_skewness`; 0 here).

    Given z, the outputs are independent, with conditional mean g_a(z_a)
    and second moment about the component mean w_a(z_a) = E[(y_a - m_a)^2 | z_a],
    so K[a, b] = Cov(w_a(z_a), g_b(z_b)) exactly; Mehler's expansion to
    second order plus the Edgeworth terms of the co-skewness of z:
    E[w'] E[g'] S + E[w''] E[g''] S^2 / 2 + k_aab E[w''] E[g'] / 2 + k_abb E[w'] E[g''] / 2,
    with w1, w2 = E[w'], E[w''] and g1, g2 = E[g'], E[g''] (M, N).
    """
    out = w1[:, :, None] * cov_z * g1[:, None, :]
    if np.any(w2) and np.any(g2):
        out += 0.5 * (w2[:, :, None] * cov_z) * (cov_z * g2[:, None, :])
    if skew_z is not None:
        out += _edgeworth(skew_z, w1, w2, g1, g2)
    diagonal = np.arange(out.shape[-1])
    out[:, diagonal, diagonal] = 0.0
    return out


def _pre_children(zbar, cov_z, parent, scale, shift, activation, noise: Noise, count):
    """Noise before the activation: the means (B, M, N) of the M children
    (child m: component parent[m] with the shared node scale[m], shift[m])
    and ``weighted_cov`` for :func:`_merge`, in two passes so that the
    children's covariances never exist all at once.

    The per-neuron moments come first (blocks of children of about
    BLOCK_VALUES values, the means being all that the merge's groups need);
    ``weighted_cov(onehot)`` then forms each child's covariance
    (:func:`_covariance`) in blocks of about BLOCK_VALUES values, in the
    order of their groups, and adds it to its group's sum as it comes
    (the sum over members per group by ``np.add.reduceat``): its work is
    one group sum per component plus a block, not M covariances.
    """
    b, k, n = zbar.shape
    m = parent.size
    diagonal = np.arange(n)
    rows = np.add.outer(np.arange(b) * k, parent).ravel()     # flat child -> flat parent component
    flat_zbar, flat_var = zbar.reshape(b * k, n), cov_z[:, :, diagonal, diagonal].reshape(b * k, n)
    scale, shift = np.tile(scale, b), np.tile(shift, b)
    moments = np.empty((4, b * m, n))                          # mean, second, slope, curvature
    step = max(1, BLOCK_VALUES // (n * (count if noise.MU else 1)))
    for start in range(0, b * m, step):
        block = slice(start, start + step)
        moments[:, block] = _neuron_moments(flat_zbar[rows[block]], flat_var[rows[block]], activation,
                                            scale[block], shift[block], noise.MU, noise.AU, count)
    flat_cov = cov_z.reshape(b * k, n, n)

    def weighted_cov(onehot):
        groups = onehot.shape[2]
        child, group = np.nonzero(onehot.reshape(b * m, groups))
        key = child // m * groups + group                       # (input, group) of every child
        order = np.argsort(key, kind="stable")
        child, key = child[order], key[order]
        weight = onehot.reshape(b * m, groups)[child, group[order]]
        out = np.zeros((b * groups, n, n))
        size = max(1, BLOCK_VALUES // (n * n))
        for start in range(0, child.size, size):
            block = slice(start, start + size)
            kids = child[block]
            cov = _covariance(moments[2, kids], moments[3, kids], moments[1, kids], flat_cov[rows[kids]])
            cov *= weight[block, None, None]
            first = np.flatnonzero(np.diff(key[block], prepend=-1))           # where each group starts
            out[key[block][first]] += np.add.reduceat(cov, first, axis=0)
        return out.reshape(b, groups, n, n)

    return moments[0].reshape(b, m, n), weighted_cov


def _leading_direction(rows: np.ndarray, iterations: int = 30) -> np.ndarray:
    """Approximate leading right singular vector of ``rows`` (M, N) by power
    iteration on rows^T rows, started from the longest row (only the order
    of the projections onto it is used, so a rough direction suffices).
    The rows are scaled to a largest entry of 1 first (the direction is the
    same): the squared norm of rows^T rows v grows as the sixth power of the
    entries and would overflow for spreads beyond ~1e51 (an affine network
    takes any finite noise)."""
    largest = float(np.max(np.abs(rows), initial=0.0))
    if largest > 0.0:
        rows = rows / largest
    lengths = np.einsum("mn,mn->m", rows, rows)
    v = rows[int(np.argmax(lengths))].copy()
    for _ in range(iterations):
        v = rows.T @ (rows @ v)
        norm = math.sqrt(v @ v)
        if norm == 0.0:
            break
        v /= norm
    return v


def _groups(weight: np.ndarray, mean: np.ndarray, components: int) -> np.ndarray:
    """Group labels (M,) of one input's M children: divisive clustering.

    Starting from one group, the group whose members' means spread most
    (weighted sum of squared distances to its centre) is cut in two along
    its own leading principal direction, at its weighted median, until there
    are ``components`` groups (or no group can be cut).
    """
    labels = np.zeros(weight.size, dtype=int)

    def spread(members):
        w = weight[members]
        dev = mean[members] - (w @ mean[members]) / w.sum()
        return float(w @ np.einsum("mn,mn->m", dev, dev)), dev

    pending = {0: spread(np.arange(weight.size))}
    for new in range(1, components):
        label = max(pending, key=lambda g: pending[g][0])
        if pending[label][0] <= 0.0:
            break
        members = np.flatnonzero(labels == label)
        dev = pending[label][1]
        direction = _leading_direction(dev * np.sqrt(weight[members])[:, None])
        t = dev @ direction
        order = np.argsort(t, kind="stable")
        cumulative = np.cumsum(weight[members][order])
        cut = int(np.searchsorted(cumulative, 0.5 * cumulative[-1]))
        cut = min(max(cut, 0), order.size - 2) + 1          # both halves non-empty
        upper = members[order[cut:]]
        labels[upper] = new
        pending[label] = spread(members[order[:cut]])
        pending[new] = spread(upper)
        if members.size == 2:
            pending[label] = (0.0, None)
            pending[new] = (0.0, None)
    return labels


def _merge(weight: np.ndarray, mean: np.ndarray, weighted_cov, components: int,
           weighted_skew=None, row_weighted_cov=None) -> Mixture:
    """At most ``components`` components from M children, by moment matching
    of groups (:func:`_groups`); the total mean and covariance are unchanged.

    weight (B, M), mean (B, M, N) of the children; ``weighted_cov(ow)``
    returns sum_m ow[b, m, g] cov_m (B, G, N, N) for group weights ow
    (B, M, G), so that the children's covariances need not exist one by one
    (after the activation they are the parents' scaled, :func:`propagate_mixture`).
    """
    b, m, n = mean.shape
    if m <= components:
        group = np.broadcast_to(np.arange(m), (b, m))
        count = m
    else:
        group = np.stack([_groups(weight[i], mean[i], components) for i in range(b)])
        count = components
    onehot = (group[:, :, None] == np.arange(count)) * weight[:, :, None]          # (B, M, G)
    total = onehot.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    centre = np.einsum("bmg,bmn->bgn", onehot, mean) / safe[:, :, None]
    cov = weighted_cov(onehot)
    if m > components:    # the spread of the children's means about their group's mean
        dev = (mean - np.take_along_axis(centre, group[:, :, None], axis=1)) * np.sqrt(weight)[:, :, None]
        for i in range(b):
            for g in range(count):
                members = dev[i, group[i] == g]
                cov[i, g] += members.T @ members
    cov /= safe[:, :, None, None]
    skew = None
    if weighted_skew is not None:
        cov = _positive_semidefinite(cov)
        skew = weighted_skew(onehot)
        if m > components:
            with np.errstate(over="ignore", invalid="ignore"):
                skew += _between_coskew(onehot, mean - np.take_along_axis(centre, group[:, :, None], axis=1),
                                        row_weighted_cov)
        skew = _finite(skew / safe[:, :, None, None])
    return Mixture(total, centre, cov, skew)


#: Smallest eigenvalue, relative to the largest, that counts as positive
#: semi-definite (rounding) in :func:`_positive_semidefinite`.
_DEFINITE_TOLERANCE = 1e-12


def _positive_semidefinite(cov: np.ndarray) -> np.ndarray:
    """Covariances (..., N, N) projected onto the positive semi-definite
    matrices where the Edgeworth terms (first order in the co-skewness, not
    a covariance of their own) made them indefinite: the negative
    eigenvalues set to 0, which is the nearest positive semi-definite matrix
    (Frobenius norm) and a continuous function of the matrix.  Matrices
    whose smallest eigenvalue is above -1e-12 of their largest are returned
    as they are."""
    lam = np.linalg.eigvalsh(cov)
    bad = lam[..., 0] < -_DEFINITE_TOLERANCE * np.maximum(np.abs(lam[..., -1]), np.finfo(float).tiny)
    if not np.any(bad):
        return cov
    lam, vec = np.linalg.eigh(cov[bad])
    out = cov.copy()
    out[bad] = (vec * np.maximum(lam, 0.0)[..., None, :]) @ np.swapaxes(vec, -1, -2)
    return out


def _between_coskew(onehot, dev, row_weighted_cov):
    """sum_m w_m [2 d_a S_m[a, b] + d_b S_m[a, a] + d_a^2 d_b] per group
    (B, G, N, N): the co-skewness that the spread of the children's means
    d (B, M, N) about their group's mean adds to the merged component (law
    of total cumulance; the children's own co-skewness is added apart).
    ``row_weighted_cov(c)`` returns sum_m c[b, m, g, a] S_m[a, b'] and the
    same with S_m's diagonal, (B, G, N, N) and (B, M, N)."""
    rows, own = row_weighted_cov(onehot[:, :, :, None] * dev[:, :, None, :])
    b, m, g = onehot.shape
    n = dev.shape[-1]
    left = (onehot[:, :, :, None] * (own + dev * dev)[:, :, None, :]).reshape(b, m, g * n)
    return 2.0 * rows + (np.swapaxes(left, 1, 2) @ dev).reshape(b, g, n, n)


def _row_weighted(coef: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """sum_m coef[b, m, g, a] cov[b, m, a, c] (B, G, N, N): one batched matrix
    product per neuron a."""
    out = np.transpose(coef, (0, 3, 2, 1)) @ np.transpose(cov, (0, 2, 1, 3))         # (B, N, G, N)
    return np.transpose(out, (0, 2, 1, 3))


def _largest_variance(mix: Mixture) -> np.ndarray:
    """(B, 1, 1): the largest variance of any neuron, in any component or in
    the whole mixture (the spread of the component means included): the scale
    from which the components' covariances were computed, which bounds their
    rounding errors (:func:`~noiseprop.moments.clamp_rounding`)."""
    within = largest_variance(mix.cov, axes=2)
    mean = np.einsum("bk,bkn->bn", mix.weight, mix.mean)
    between = np.einsum("bk,bkn->bn", mix.weight, (mix.mean - mean[:, None, :]) ** 2)
    return np.maximum(within, np.max(between, axis=1)[:, None, None])


def _congruence(weight: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """W S W^T for every symmetric S in cov (..., N, N), as two flat matrix
    products (one BLAS call each rather than one per component)."""
    n_out, n_in = weight.shape
    lead = cov.shape[:-2]
    right = (cov.reshape(-1, n_in) @ weight.T).reshape(*lead, n_in, n_out)       # S W^T
    out = np.swapaxes(right, -1, -2).reshape(-1, n_in) @ weight.T               # (W S W^T)^T
    return out.reshape(*lead, n_out, n_out)


def _shared_dimensions(noise: Noise) -> int:
    """Number of a layer's shared draws (0, 1 or 2)."""
    return int(noise.AC > 0) + int(noise.MC > 0)


def grid_nodes(layer_noise, width: int) -> tuple[int, int]:
    """(nodes per shared draw, largest number of point components) of the
    tensor grid for layers 1.. that no uncorrelated noise has reached yet
    ((SHARED_NODES, 0): no grid, the merged mixture from the start).

    Until the first layer with uncorrelated noise every realisation's
    output is a deterministic function of the shared draws, so the law is a
    set of points; they are integrated on a tensor Gauss-Hermite grid of
    Q nodes per draw, the largest Q (at most SHARED_NODES) for which the
    grid over all those draws has at most POINT_COMPONENTS points (fewer for
    very wide layers: about 8 M values per input), and only where Q >=
    GRID_MIN_NODES.
    """
    dims = 0
    for noise in layer_noise:
        if noise.has_uncorrelated:
            break
        dims += _shared_dimensions(noise)
    budget = min(POINT_COMPONENTS, max(CHUNK_VALUES // max(width, 1), 1))
    if dims == 0:
        return SHARED_NODES, 0
    nodes = min(SHARED_NODES, int(math.floor(budget ** (1.0 / dims) + 1e-9)))
    while nodes > 1 and nodes**dims > budget:      # guard the floating-point root
        nodes -= 1
    if nodes < GRID_MIN_NODES:
        return SHARED_NODES, 0
    return nodes, nodes**dims


def _propagate_points(mix: Mixture, weight, bias, activation, noise: Noise, nodes: int) -> Mixture:
    """One layer for point components (no covariance) and a layer without
    uncorrelated noise: every point splits into one point per node of the
    layer's shared draws, f(z) (1 + s) + c ("post") or f(z (1 + s) + c) ("pre")."""
    s, c, wq = _shared_nodes(noise, nodes)
    zbar = mix.mean @ weight.T + bias
    k = zbar.shape[1]
    child_weight, parent = _children(mix, wq)
    a, shift = np.tile(1.0 + s, k)[:, None], np.tile(c, k)[:, None]
    if noise.placement == "pre":
        mean = activation(zbar[:, parent] * a + shift)
    else:
        mean = activation(zbar)[:, parent] * a + shift
    return Mixture(child_weight, mean, None)


def _gaussian_components(mix: Mixture, components: int) -> Mixture:
    """Point components merged into at most ``components`` Gaussian ones
    (moment matching, :func:`_merge`); a Gaussian mixture unchanged."""
    if mix.cov is not None or mix.weight.shape[1] <= 1:
        return mix
    b, m, n = mix.mean.shape

    def weighted_cov(onehot):
        return np.zeros((b, onehot.shape[2], n, n))

    return _merge(mix.weight, mix.mean, weighted_cov, components)


def split_directions(components: int, shared: int, width: int) -> int:
    """Directions to split (at most SPLIT_DIRECTIONS): the most for which
    components x shared nodes x SPLIT_NODES^r children of ``width`` neurons
    keep their covariances within about 8 M values."""
    r = SPLIT_DIRECTIONS
    while r > 0 and components * shared * SPLIT_NODES**r * width * width > CHUNK_VALUES:
        r -= 1
    return r


def _leading_subspace(cov: np.ndarray, directions: int, iterations: int = 12):
    """Ritz values (..., r) and orthonormal Ritz vectors (..., N, r) of the
    ``directions`` leading eigenpairs of symmetric matrices cov (..., N, N):
    subspace iteration on r + 2 vectors started from the columns of the
    largest diagonal entries, then Rayleigh-Ritz (V^T cov V is diagonal
    with these values, whether or not the iteration has converged)."""
    n = cov.shape[-1]
    m = min(n, directions + 2)
    start = np.argsort(-np.diagonal(cov, axis1=-2, axis2=-1), axis=-1, kind="stable")[..., :m]
    vec = np.take_along_axis(cov, start[..., None, :], axis=-1)
    for _ in range(iterations):
        vec = cov @ np.linalg.qr(vec)[0]
    vec = np.linalg.qr(vec)[0]
    lam, rot = np.linalg.eigh(np.swapaxes(vec, -1, -2) @ cov @ vec)
    keep = min(directions, m)
    return lam[..., ::-1][..., :keep], vec @ rot[..., ::-1][..., :keep]


def _curved_share(zbar, cov_z, load, activation) -> np.ndarray:
    """(B, K): the share of the variance of f(z) that the second order of f
    along the split directions carries, sum_i (E[f''_i] |G_i|^2)^2 / 2 over
    sum_i Var f(z_i) (the power of the (t^2 - 1) terms of f expanded about
    the component in the coordinates t of the split): where it is tiny, the
    activation is nearly affine over those spreads and the split would not
    change the result."""
    diagonal = np.arange(zbar.shape[-1])
    moments = gaussian_moments(activation, zbar, cov_z[..., diagonal, diagonal])
    bent = moments.curvature * np.sum(load * load, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = 0.5 * np.sum(bent * bent, axis=-1) / np.sum(moments.var, axis=-1)
    return np.nan_to_num(share, nan=0.0, posinf=1.0)


def _principal_split(zbar: np.ndarray, cov_z: np.ndarray, weight: np.ndarray, directions: int,
                     nodes: int = SPLIT_NODES, activation=None):
    """Every Gaussian component z ~ N(zbar, S) split along the ``directions``
    leading eigenvectors V (Ritz values L, :func:`_leading_subspace`) of S
    into a tensor grid of Gauss-Hermite nodes t: children
    N(zbar + G t, S - G G^T) with G = S V L^(-1/2), weighted by the nodes'
    weights.  Exact (the children's law is the component's, conditioned on
    V^T z); it lets the
    activation act on the largest spreads by quadrature instead of through
    the Gaussian closure, so that the non-Gaussian law of the next layer's
    pre-activations is carried by the components.  Directions with no
    variance are not split.

    zbar (B, K, N), cov_z (B, K, N, N), weight (B, K) ->
    zbar (B, K P, N), cov_z (B, K P, N, N), weight (B, K P), P = nodes^r;
    None where no component has any variance.
    """
    b, k, n = zbar.shape
    if not np.all(np.isfinite(cov_z)):      # an overflowing variance: nothing to resolve
        return None
    lam, vec = _leading_subspace(cov_z, directions)
    directions = lam.shape[-1]
    scale = np.where(lam > 1e-12 * np.maximum(lam[..., :1], 0.0), lam, np.inf)
    if not np.any(np.isfinite(scale)):
        return None
    load = (cov_z @ vec) / np.sqrt(scale)[..., None, :]                          # G (B, K, N, r)
    if activation is not None and np.max(_curved_share(zbar, cov_z, load, activation)) < SPLIT_SHARE:
        return None
    t, wt = _hermite(nodes)
    index = np.indices((nodes,) * directions).reshape(directions, -1).T    # (P, r): the tensor grid's nodes
    grid, gw = t[index], np.prod(wt[index], axis=1)
    p = gw.size
    means = (zbar[:, :, None, :] + np.einsum("bknr,pr->bkpn", load, grid)).reshape(b, k * p, n)
    reduced = cov_z - load @ np.swapaxes(load, -1, -2)
    diagonal = np.arange(n)
    reduced[..., diagonal, diagonal] = np.maximum(reduced[..., diagonal, diagonal], 0.0)
    covs = np.repeat(reduced, p, axis=1)
    return means, covs, (weight[:, :, None] * gw).reshape(b, k * p)


def propagate_mixture(mix: Mixture, weight, bias, activation, noise: Noise, *,
                      components: int = MIXTURE_COMPONENTS, shared_nodes: int = SHARED_NODES,
                      uncorrelated_nodes: int = UNCORRELATED_NODES, points: int = 0) -> Mixture:
    """One layer of the mixture closure (module docstring).

    With ``points`` > 0, point components (``mix.cov`` None) entering a
    layer without uncorrelated noise stay points (the tensor grid of
    :func:`grid_nodes`, ``shared_nodes`` per draw) as long as there are at
    most ``points`` of them; otherwise they are first merged into
    ``components`` Gaussian components.
    """
    if (mix.cov is None and not noise.has_uncorrelated
            and mix.weight.shape[1] * _shared_nodes(noise, shared_nodes)[2].size <= points):
        return _propagate_points(mix, weight, bias, activation, noise, shared_nodes)
    mix = _gaussian_components(mix, components)
    pre = noise.placement == "pre"
    carry = mix.skew is not None or noise.MU > 0
    s, c, wq = _shared_nodes(noise, shared_nodes)
    zbar = mix.mean @ weight.T + bias
    skew_z = None if mix.skew is None else _skew_congruence(weight, mix.skew)
    if mix.cov is None:
        cov_z = np.zeros(zbar.shape + zbar.shape[-1:])
    else:
        cov_z = clamp_rounding(_congruence(weight, mix.cov), weight, _largest_variance(mix))
        directions = split_directions(mix.weight.shape[1], wq.size, weight.shape[0])
        split = (_principal_split(zbar, cov_z, mix.weight, directions, activation=activation)
                 if directions and activation.name != "linear" else None)
        if split is not None:
            zbar, cov_z, split_weight = split
            if skew_z is not None:       # the children keep their parent's co-skewness
                skew_z = np.repeat(skew_z, split_weight.shape[1] // mix.weight.shape[1], axis=1)
            mix = Mixture(split_weight, None, None)
    b, k, n = zbar.shape
    q = wq.size
    child_weight, parent = _children(mix, wq)
    a, shift = np.tile(1.0 + s, k), np.tile(c, k)                                    # (K*Q,)
    weighted_skew = row_weighted_cov = None
    if pre and not carry:   # every child through the activation: its own covariance, formed group by group
        mean, weighted_cov = _pre_children(zbar, cov_z, parent, a, shift, activation, noise, uncorrelated_nodes)
    elif pre:   # with the co-skewness: every child's covariance and co-skewness, held at once
        mean, cov, skew = _children_activation(zbar, cov_z, skew_z, parent, a, shift, activation, noise,
                                               uncorrelated_nodes, carry)

        def weighted_cov(onehot):
            return (np.swapaxes(onehot, 1, 2) @ cov).reshape(b, -1, n, n)

        def weighted_skew(onehot):
            return (np.swapaxes(onehot, 1, 2) @ skew).reshape(b, -1, n, n)

        def row_weighted_cov(coef):
            full = cov.reshape(b, k * q, n, n)
            return _row_weighted(coef, full), np.diagonal(full, axis1=2, axis2=3)
    else:     # after the activation: child = f (1 + s) + c, covariance (1 + s)^2 Cov f + noise
        ones = np.ones(b * k)
        f_mean, f_cov, f_skew = _activation(
            zbar.reshape(b * k, n), cov_z.reshape(b * k, n, n), activation, ones, 0.0 * ones, 0.0, 0.0,
            uncorrelated_nodes, None if skew_z is None else skew_z.reshape(b * k, n, n), carry, noise.MU)
        f_mean, f_cov = f_mean.reshape(b, k, n), f_cov.reshape(b, k, n * n)
        f_power = f_mean**2 + np.diagonal(f_cov.reshape(b, k, n, n), axis1=2, axis2=3)
        mean = f_mean[:, parent] * a[:, None] + shift[:, None]
        extra = noise.MU * f_power[:, parent] + noise.AU                             # (B, K*Q, N)
        diagonal = np.arange(n)

        def per_parent(onehot, power):
            return np.swapaxes((onehot * (a**power)[:, None]).reshape(b, k, q, -1).sum(axis=2), 1, 2)

        def weighted_cov(onehot):
            out = (per_parent(onehot, 2) @ f_cov).reshape(b, -1, n, n)
            out[:, :, diagonal, diagonal] += np.swapaxes(onehot, 1, 2) @ extra
            return out

        def weighted_skew(onehot):
            return (per_parent(onehot, 3) @ f_skew.reshape(b, k, n * n)).reshape(b, -1, n, n)

        def row_weighted_cov(coef):
            parents = (coef * (a * a)[:, None, None]).reshape(b, k, q, *coef.shape[2:]).sum(axis=2)
            out = _row_weighted(parents, f_cov.reshape(b, k, n, n))
            out[:, :, diagonal, diagonal] += np.einsum("bmga,bma->bga", coef, extra)
            own = (a * a)[:, None] * np.diagonal(f_cov.reshape(b, k, n, n), axis1=2, axis2=3)[:, parent] + extra
            return out, own
    return _merge(child_weight, mean, weighted_cov, components, weighted_skew if carry else None,
                  row_weighted_cov)


def _children_activation(zbar, cov_z, skew_z, parent, scale, shift, activation, noise, count, carry):
    """Noise before the activation: mean (B, C, N), covariance and co-skewness
    (B, C, N^2; None where not carried) of every child c (parent[c], node
    (scale[c], shift[c])) through :func:`_activation`, in blocks of children
    of about BLOCK_VALUES values each so that its work arrays stay small
    (only the results are held for all the children at once)."""
    b, k, n = zbar.shape
    per_input = parent.size
    rows = np.add.outer(np.arange(b) * k, parent).ravel()               # child -> row of the flat parents
    scale, shift = np.tile(scale, b), np.tile(shift, b)
    zbar, cov_z = zbar.reshape(b * k, n), cov_z.reshape(b * k, n, n)
    skew_z = None if skew_z is None else skew_z.reshape(b * k, n, n)
    mean = np.empty((b * per_input, n))
    cov = np.empty((b * per_input, n, n))
    skew = np.empty((b * per_input, n, n)) if carry else None
    step = max(1, BLOCK_VALUES // (n * n))
    for start in range(0, rows.size, step):
        block = slice(start, start + step)
        index = rows[block]
        child_skew = None if skew_z is None else skew_z[index] * (scale[block] ** 3)[:, None, None]
        mean[block], cov[block], block_skew = _activation(
            zbar[index], cov_z[index], activation, scale[block], shift[block], noise.MU, noise.AU, count,
            child_skew, carry)
        if carry:
            skew[block] = block_skew
    return (mean.reshape(b, per_input, n), cov.reshape(b, per_input, n * n),
            None if skew is None else skew.reshape(b, per_input, n * n))


def _skew_congruence(weight: np.ndarray, skew: np.ndarray) -> np.ndarray:
    """Co-skewness of z = W y + b from that of y (..., N_in, N_in), K[i, j] =
    kappa(y_i, y_i, y_j): of the sum over i, i', j of W_ai W_ai' W_bj
    kappa(y_i, y_i', y_j) the terms in which two indices coincide (the
    joint cumulants of three distinct neurons are not carried), each
    triple i = i' = j counted once:

        kappa(z_a, z_a, z_b) = sum_ij (W_ai^2 W_bj + 2 W_ai W_bi W_aj) K_ij
                               - 2 sum_i W_ai^2 W_bi K_ii ,

    the same formula on the diagonal (a = b: all three pairings), so that
    identical rows of W give identical rows of the result."""
    transposed = np.swapaxes(weight, -1, -2)
    with np.errstate(over="ignore", invalid="ignore"):
        right = np.matmul(skew, transposed)                                           # K W^T
        out = np.matmul(weight * weight, right)
        out += 2.0 * np.swapaxes(np.matmul(weight, transposed * right), -1, -2)
        own = np.diagonal(skew, axis1=-2, axis2=-1)[..., None, :] * (weight * weight)
        out -= 2.0 * np.matmul(own, transposed)
    return _finite(out)


def step_values(components: int, width_in: int, width: int, noise: Noise, gaussian: bool = True,
                batch: int = 1, blocks: bool = True, carry: bool = False) -> int:
    """Float64 values that one step of :func:`propagate_mixture` allocates at
    its peak for ``batch`` inputs at once, for ``components`` components of
    ``width_in`` neurons (``gaussian``: with covariances; False for points)
    into a layer of ``width`` neurons: an upper bound, within about 1.3x of the peak
    that tracemalloc measures where no principal split can be made (wider
    than about 100 to 160 neurons; tests/test_mixture_memory.py).

    With K components, Q shared nodes, P = SPLIT_NODES^r children of the
    principal split (:func:`split_directions`; assumed wherever it may be
    made, so that the bound is loose by up to that factor for layers under
    about 160 neurons), M = K P Q children, G merged components and
    N = ``width``, the largest of: the congruence W S W^T (K (2 N_in N +
    N^2); for points, their merge into at most MIXTURE_COMPONENTS zero
    covariances and the zero covariances of z); the split ((2 + P) K N^2);
    after the activation ("post") Mehler's expansion of the K P parents
    (four arrays of K P N^2), then their covariances and the G group sums,
    or before them the per-neuron quadrature of the K P parents
    (:func:`_quadrature_values`); before it ("pre") the K P parents' covariances with either the
    quadrature of one block of the children's per-neuron moments (of about
    BLOCK_VALUES Gaussians) or the G group sums and one
    block of children's covariances (about five arrays of
    max(N^2, BLOCK_VALUES) values, :func:`_pre_children`); plus the
    children's per-neuron arrays (M N values each) and 10 % for the small
    arrays not counted.  With the co-skewness carried (``carry``: from the
    first layer with uncorrelated multiplicative noise on) "post" adds the
    parents' co-skewness and its terms (2 K P N^2) and the merge's
    co-skewness terms (4 G N^2), and "pre" holds every child's covariance
    and co-skewness at once (:func:`_children_activation`; 3 M N^2 with the
    merge's copy) with one block of children's work and the merge's terms.
    """
    nodes = _shared_nodes(noise, SHARED_NODES)[2].size
    k = min(max(components, 1), MIXTURE_COMPONENTS)          # points are merged first
    square = width * width
    parents = k * (SPLIT_NODES ** split_directions(k, nodes, width) if gaussian else 1)
    children = parents * nodes
    groups = min(children, MIXTURE_COMPONENTS)
    linear = k * (2 * width_in * width + square) if gaussian else k * (width_in**2 + square)
    split = (2 * k + parents) * square if gaussian else 0
    # The blocks (quadrature, children before the activation) span the batch;
    # without ``blocks`` only the work that grows with the inputs is counted.
    quadrature = _quadrature_values if blocks else (lambda elements: 0)
    if noise.placement == "pre" and carry:
        # every child's covariance and co-skewness held at once (and a copy of the covariances in the
        # merge's row-weighted sums), the work of one block of children, the merged co-skewness terms
        block = 6 * min(batch * children * square, max(BLOCK_VALUES, square)) if blocks else 0
        activation = batch * (3 * children + 4 * groups) * square + block
    elif noise.placement == "pre":
        per_node = width * (UNCORRELATED_NODES if noise.MU else 1)
        moments = quadrature(min(batch * children * per_node, max(BLOCK_VALUES, per_node)))
        block = 5 * square * min(batch * children, max(1, BLOCK_VALUES // square)) if blocks else 0
        activation = batch * parents * square + max(moments, batch * groups * square + block)
    else:
        activation = max(batch * max(4 * parents, 2 * parents + groups + 1) * square,
                         batch * parents * square + quadrature(batch * parents * width))
        if carry:  # the parents' co-skewness and its terms, the merged co-skewness terms
            activation += batch * (2 * parents + 4 * groups) * square
    return (max(batch * linear, batch * split, activation) + 6 * batch * children * width) * 11 // 10


def _quadrature_values(elements: int) -> int:
    """Values of the work arrays of :func:`~noiseprop.moments.gaussian_moments`
    on ``elements`` Gaussians: about fourteen arrays of their size, and the
    (elements x nodes) arrays of its quadratures, in blocks of at most 4096
    elements and 128 nodes (a few arrays each)."""
    return 14 * elements + 6 * 128 * min(elements, 4096)


def step_bytes(mix: Mixture, width: int, noise: Noise) -> int:
    """Bytes that one step of :func:`propagate_mixture` allocates at its
    peak for the whole batch of ``mix`` at once into a layer of ``width``
    neurons (:func:`step_values`)."""
    batch, components = mix.weight.shape
    return 8 * step_values(components, mix.mean.shape[-1], width, noise, mix.cov is not None, batch,
                           carry=mix.skew is not None or noise.MU > 0)


#: Work-array budget (float64 values) of one chunk of inputs.
CHUNK_VALUES = 1 << 23
#: Values per block of the children's work arrays before the activation
#: (:func:`_pre_children`, :func:`_children_activation`).
BLOCK_VALUES = 1 << 20
#: The noises whose steps need the most memory, one per placement: the
#: bound of :func:`layer_values` where the noise is not given.
_WIDEST_NOISES = tuple(Noise(AU=1.0, AC=1.0, MU=1.0, MC=1.0, placement=p) for p in ("pre", "post"))


def carried(layer_noise) -> list:
    """For every layer, whether the mixture carries the co-skewness in it: from
    the first layer with uncorrelated multiplicative noise on (a noise None:
    any noise, so carried)."""
    flags = np.cumsum([nz is None or nz.MU > 0 for nz in layer_noise]) > 0
    return [bool(flag) for flag in flags]


def layer_values(width_in: int, width: int, noise: "Noise | None" = None, batch: int = 1,
                 blocks: bool = True, first: bool = False, carry: bool = True) -> int:
    """Float64 values of a prediction's layer at its peak for ``batch``
    inputs at once: the entering mixture's MIXTURE_COMPONENTS covariances
    (and co-skewness where carried from the layer before; ``first``: the
    noise-free input, one point) plus one step (:func:`step_values`;
    ``blocks``: with the work arrays of its blocks, which do not grow with
    the inputs; ``carry``: with the co-skewness, :func:`carried`);
    ``noise`` None: the largest over every noise."""
    noises = _WIDEST_NOISES if noise is None else (noise,)
    components = 1 if first else MIXTURE_COMPONENTS
    step = max(step_values(components, width_in, width, nz, not first, batch, blocks, carry) for nz in noises)
    entering = 0 if first else batch * components * width_in * width_in * (2 if carry else 1)
    return entering + step


def layer_chunk(width_in: int, width: int, noise: "Noise | None" = None, first: bool = False,
                carry: bool = True) -> int:
    """The most inputs (at least one) for which the work of a layer that
    grows with the inputs (:func:`layer_values` without the blocks) stays
    within CHUNK_VALUES (bisection: it grows with the inputs)."""

    def fits(batch):
        return layer_values(width_in, width, noise, batch, blocks=False, first=first, carry=carry) <= CHUNK_VALUES

    low, high = 1, 2
    while fits(high):
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def chunk_size(sizes, layer_noise) -> int:
    """Inputs per chunk so that every layer's work arrays
    (:func:`layer_chunk`) and the points of the tensor grid (at most
    POINT_COMPONENTS N values per input) stay within about 64 MB (one input
    per chunk where a single input needs more)."""
    flags = carried(layer_noise)
    layers = min(layer_chunk(m, n, nz, k == 0, flags[k])
                 for k, (m, n, nz) in enumerate(zip(sizes[:-1], sizes[1:], layer_noise)))
    points = grid_nodes(layer_noise, max(sizes[1:]))[1] * max(sizes[1:])
    return max(1, min(layers, CHUNK_VALUES // max(points, 1)))


def mixture_layers(net, layer_noise, x: np.ndarray, check=None, check_before=None) -> list:
    """Total (mean (B, N_k), cov (B, N_k, N_k)) of layers 1..L for inputs x
    (B, N_0); ``check(mean, k)`` is called after every layer (e.g. to stop
    on an overflowing signal) and ``check_before(mean, weight, bias,
    activation, k)`` before it, on the total mean of the layer below."""
    mix = initial_mixture(x)
    nodes, points = grid_nodes(layer_noise, max(net.sizes[1:]))
    out, mean = [], x
    for k, (w, b, f, nz) in enumerate(zip(net.weights, net.biases, net.activations, layer_noise), start=1):
        grid = mix.cov is None and points > 0
        if check_before is not None:
            check_before(mean, w, b, f, k)
        try:
            mix = propagate_mixture(mix, w, b, f, nz, shared_nodes=nodes if grid else SHARED_NODES,
                                    points=points)
        except ValueError as err:  # e.g. an overflowing variance: name the layer
            raise ValueError(f"layer {k}: {err}") from None
        mean, cov = mixture_moments(mix)
        if check is not None:
            check(mean, k)
        out.append((mean, cov))
    return out

