"""Multivariate normal CDFs of many small correlations at once (Genz's method, vectorised).

P(X <= b) for X ~ N(0, R), R a correlation matrix of dimension d (up to ~10),
for a batch of B (b, R) pairs: Genz's separation of variables (A. Genz,
"Numerical computation of multivariate normal probabilities", J. Comput.
Graph. Stat. 1, 1992) with his variable reordering, integrated by randomised
quasi-Monte-Carlo: the first n points of an unscrambled Sobol sequence, moved
by ``SHIFTS`` independent uniform random shifts per problem (modulo 1, then
the tent map |2u - 1|).  Every shifted estimate is unbiased; their spread gives
the standard error.  The points are doubled, only for the problems whose
3 standard errors still exceed ``abseps``, as :func:`scipy.stats.multivariate_normal.cdf`
(which runs the same algorithm one problem at a time, in Fortran) does.
"""
from __future__ import annotations

import numpy as np
from scipy import special
from scipy.stats import qmc

__all__ = ["SHIFTS", "normal_cdf"]

#: Independent random shifts per problem (the standard error has SHIFTS - 1 degrees of freedom).
SHIFTS = 32
#: Points per shift of the first round, and the most after doubling.
_FIRST_POINTS = 2**5
_MAX_POINTS = 2**16
#: Residual variance (of a unit variance) below which a variable is a function of the previous ones.
_SINGULAR = 1e-10
#: Problems x shifts x points evaluated together (bounds the memory: ~10 arrays of this many floats).
_VALUES_PER_BLOCK = 2**20
#: Uniform variates are kept this far inside (0, 1) so that their normal quantiles are finite.
_EDGE = 1e-300


def normal_cdf(upper, correlation, abseps: float = 1e-3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """P(X_j <= upper_j for all j) for X ~ N(0, correlation), for a batch of problems.

    Parameters
    ----------
    upper : array_like (B, d)
        Upper limits (in standard deviations); +inf drops a variable.
    correlation : array_like (B, d, d)
        Correlation matrices (unit diagonal, positive semi-definite; singular
        ones allowed: a variable that is a linear function of the others
        contributes an indicator).
    abseps : float, default 1e-3
        Error target per problem: points are doubled until 3 standard errors
        are at most ``abseps`` (or 2**16 points per shift are used).
    seed : int, default 0
        Seed of the random shifts; problem i gets shifts of its own (the
        estimates are independent between problems and do not depend on how
        the batch is split, as long as the problem keeps its index).

    Returns
    -------
    probability : ndarray (B,)
        Unbiased estimates.
    stderr : ndarray (B,)
        Their standard errors (0 where no integration was needed, d <= 1).
    """
    upper = np.array(upper, dtype=float, ndmin=2)
    correlation = np.array(correlation, dtype=float, ndmin=3)
    count, dims = upper.shape
    if correlation.shape != (count, dims, dims):
        raise ValueError(f"correlation must have shape {(count, dims, dims)}, got {correlation.shape}")
    if not abseps > 0:
        raise ValueError(f"abseps must be positive, got {abseps!r}")
    shifts = np.random.default_rng(seed).random((count, SHIFTS, max(dims - 1, 1)))
    limits, factor = _reordered_cholesky(upper, correlation)
    if dims <= 1:
        return _first_factor(limits, factor), np.zeros(count)
    points = qmc.Sobol(dims - 1, scramble=False).random_base2(int(np.log2(_MAX_POINTS)))
    return _integrate(limits, factor, shifts, points, abseps)


def _first_factor(limits: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """P(X_1 <= b_1) of one-dimensional problems."""
    if limits.shape[1] == 0:
        return np.ones(limits.shape[0])
    return _conditional_probability(limits[:, 0], factor[:, 0, 0])


def _conditional_probability(limit: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Phi(limit / scale), the indicator limit >= 0 where scale = 0 (a determined variable)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = limit / scale
    return np.where(scale > 0, special.ndtr(ratio), (limit >= 0).astype(float))


def _reordered_cholesky(upper: np.ndarray, correlation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Limits and lower Cholesky factors with the variables in Genz's order.

    Step i takes, among the remaining variables, the one least likely to
    satisfy its limit given the previous ones at their expected values
    (truncated-normal means), which puts the small factors first and makes
    the integrand smoother.  Returns limits (B, d) and factors (B, d, d).
    """
    count, dims = upper.shape
    rows = np.arange(count)
    limits, cov = upper.copy(), correlation.copy()
    factor = np.zeros_like(cov)
    expected = np.zeros((count, dims))
    for i in range(dims):
        residual = np.maximum(np.diagonal(cov, axis1=1, axis2=2)[:, i:] - np.einsum("bkj,bkj->bk", factor[:, i:, :i], factor[:, i:, :i]), 0)
        shifted = limits[:, i:] - np.einsum("bkj,bj->bk", factor[:, i:, :i], expected[:, :i])
        scale = np.where(residual > _SINGULAR, np.sqrt(residual), 0.0)
        pick = i + np.argmin(_conditional_probability(shifted, scale), axis=1)
        _swap(limits, cov, factor, rows, i, pick)
        residual[:, 0], shifted[:, 0], scale[:, 0] = (
            residual[rows, pick - i], shifted[rows, pick - i], scale[rows, pick - i]
        )
        factor[:, i, i] = scale[:, 0]
        below = cov[:, i + 1 :, i] - np.einsum("bkj,bj->bk", factor[:, i + 1 :, :i], factor[:, i, :i])
        with np.errstate(divide="ignore", invalid="ignore"):
            factor[:, i + 1 :, i] = np.where(scale[:, :1] > 0, below / scale[:, :1], 0.0)
        expected[:, i] = _truncated_mean(shifted[:, 0], scale[:, 0])
    return limits, factor


def _swap(limits: np.ndarray, cov: np.ndarray, factor: np.ndarray, rows: np.ndarray, i: int, pick: np.ndarray) -> None:
    """Exchange variables i and ``pick`` (per problem) in place."""
    limits[rows, i], limits[rows, pick] = limits[rows, pick], limits[rows, i].copy()
    for matrix in (cov, factor):
        first, second = matrix[rows, i].copy(), matrix[rows, pick].copy()
        matrix[rows, i], matrix[rows, pick] = second, first
    first, second = cov[rows, :, i].copy(), cov[rows, :, pick].copy()
    cov[rows, :, i], cov[rows, :, pick] = second, first


def _truncated_mean(limit: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """E[Y | Y <= limit / scale] for Y ~ N(0, 1); 0 for a determined variable."""
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(scale > 0, limit / scale, 0.0)
        mean = -np.exp(-0.5 * c**2 - 0.5 * np.log(2 * np.pi) - special.log_ndtr(c))
    return np.where(np.isfinite(mean), mean, 0.0)


def _integrate(limits, factor, shifts, points, abseps) -> tuple[np.ndarray, np.ndarray]:
    """Randomised QMC over Genz's unit cube, doubling the points of the unconverged problems."""
    count = limits.shape[0]
    sums = np.zeros((count, SHIFTS))
    active, done = np.arange(count), 0
    estimate, stderr = np.zeros(count), np.zeros(count)
    while active.size:
        new = _FIRST_POINTS if done == 0 else done
        block = max(1, _VALUES_PER_BLOCK // (SHIFTS * new))
        for start in range(0, active.size, block):
            part = active[start : start + block]
            sums[part] += _integrand_sums(limits[part], factor[part], shifts[part], points[done : done + new])
        done += new
        means = sums[active] / done
        estimate[active] = means.mean(axis=1)
        stderr[active] = means.std(axis=1, ddof=1) / np.sqrt(SHIFTS)
        active = active[(3 * stderr[active] > abseps) & (2 * done <= _MAX_POINTS)]
    return estimate, stderr


def _integrand_sums(limits, factor, shifts, points) -> np.ndarray:
    """Sum over ``points`` of Genz's integrand, per problem and shift: (b, SHIFTS)."""
    dims = limits.shape[1]
    value = np.ones((limits.shape[0], SHIFTS, points.shape[0]))
    quantiles = []
    for i in range(dims):
        limit = limits[:, i, None, None] - sum(factor[:, i, j, None, None] * quantiles[j] for j in range(i))
        step = _conditional_probability(limit, factor[:, i, i, None, None])
        value *= step
        if i < dims - 1:
            uniform = np.abs(2 * ((points[None, None, :, i] + shifts[:, :, i, None]) % 1.0) - 1)
            quantile = special.ndtri(np.clip(uniform * step, _EDGE, 1 - np.finfo(float).epsneg))
            quantiles.append(np.where(factor[:, i, i, None, None] > 0, quantile, 0.0))
    return value.sum(axis=2)
