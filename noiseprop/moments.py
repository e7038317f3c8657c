"""Gaussian moments of the activations: E[f(z)], Var[f(z)], E[f'(z)], E[f''(z)].

For a pre-activation z ~ N(mean, var) every activation has a small *rule*
that returns the mean and variance of f(z), the mean slope E[f'(z)] and the
mean curvature E[f''(z)]; the "moments" method of :func:`noiseprop.predict`
propagates these instead of the first-order f(zbar), f'(zbar)^2 var.  Rules
are closed forms where they exist and quadrature otherwise (every rule is
held against adaptive numerical integration to 1e-10 in the tests):

============  =================================================================
activation    rule
============  =================================================================
linear        exact: a mean + b, a^2 var, a, 0
erf           closed form (Owen's T function for the variance)
relu          closed form (rectified Gaussian)
heaviside     closed form (probit)
sigmoid       quadrature: Gauss-Hermite (16-128 nodes by width) where gain * sd < 1.5;
              beyond, step H(z) in closed form + Gauss-Laguerre remainder
tanh          from sigmoid: tanh(g z) = 2 sigmoid(2 g z) - 1
============  =================================================================

E[f'(z)] is what Stein's lemma needs: Cov(f(z), z) = var E[f'(z)] for a
Gaussian z, so it is the slope of the best linear fit of f over the
distribution of z (statistical linearisation).  E[f^(n)(z)] =
d^n E[f(z)] / d mean^n are the coefficients of Mehler's expansion of the
covariance of f(z_i) and f(z_j) for jointly Gaussian z_i, z_j:

    Cov = E[f'_i] E[f'_j] S_ij + E[f''_i] E[f''_j] S_ij^2 / 2 + ...

For relu and heaviside the derivatives are generalised functions (a step, a
delta, its derivative); their expectations are still well defined, e.g.
E[H'(z)] = phi(mean / sd) / sd although the pointwise slope is 0.

Where var = 0 every rule returns the point values f(mean), 0, f'(mean) and
f''(mean).
"""
from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import numpy as np
from scipy import special

from .activations import Activation, Sigmoid

__all__ = ["GaussianMoments", "gaussian_moments", "MOMENT_RULES", "mehler_covariance", "clamp_rounding",
           "largest_variance", "second_moment_derivatives", "third_moment"]

#: Gauss-Hermite nodes for sigmoid and tanh where the Gaussian is narrow.
_HERMITE_NODES = 128
#: Fewer nodes for narrower Gaussians: (nodes, largest gain * sd), each tier
#: within 1e-13 of a 256-node rule on the mean, variance (relative), slope
#: and curvature (measured over means in [-6, 6]); _HERMITE_NODES beyond.
#: The integrand's poles lie at distance pi / (sqrt(2) g sd) from the real
#: axis (standard units), so the error falls like exp(-c sqrt(n) / (g sd)).
_HERMITE_TIERS = ((16, 0.4), (32, 0.7), (48, 0.95), (64, 1.1))
#: Gauss-Laguerre nodes for sigmoid and tanh where the Gaussian is wide.
_LAGUERRE_NODES = 64
#: gain * sd of z from which sigmoid moments use the Gauss-Laguerre split.
_SIGMOID_WIDE = 1.5
#: Elements per block of the sigmoid quadrature (bounds its work arrays).
_BLOCK = 4096
#: Gauss-Legendre nodes for the small-correlation branch of the erf variance.
_LEGENDRE_NODES = 64
#: Below this correlation the erf variance is integrated (see _erf_rule).
_ERF_SMALL_RHO = 0.5


class GaussianMoments(NamedTuple):
    """Moments of f(z) for z ~ N(mean, var), element-wise.

    Attributes
    ----------
    mean : ndarray
        E[f(z)].
    var : ndarray
        Var[f(z)].
    slope : ndarray
        E[f'(z)], the statistical-linearisation slope Cov(f(z), z) / Var[z].
    curvature : ndarray
        E[f''(z)] = d slope / d mean.
    """

    mean: np.ndarray
    var: np.ndarray
    slope: np.ndarray
    curvature: np.ndarray


Rule = Callable[[Activation, np.ndarray, np.ndarray], GaussianMoments]

_GAUSS_RULES = {
    "hermite": np.polynomial.hermite.hermgauss,
    "laguerre": np.polynomial.laguerre.laggauss,
    "legendre": np.polynomial.legendre.leggauss,
}


@functools.lru_cache(maxsize=None)
def _gauss_rule(kind: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of a Gauss quadrature rule, computed once (an
    eigenvalue problem: milliseconds per call) and returned read-only."""
    nodes, weights = _GAUSS_RULES[kind](count)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


def _normal_density(a: np.ndarray) -> np.ndarray:
    """The standard normal density phi(a)."""
    return np.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)


def _linear_rule(f: Activation, mean: np.ndarray, var: np.ndarray) -> GaussianMoments:
    """f = a z + b: exact, the same numbers as linear response."""
    return GaussianMoments(f(mean), f.slope**2 * var, f.derivative(mean), np.zeros_like(mean))


def _relu_rule(f: Activation, mean: np.ndarray, var: np.ndarray) -> GaussianMoments:
    """Rectified Gaussian, a = mean / sd: E = mean Phi(a) + sd phi(a),
    E[f'] = Phi(a), E[f''] = phi(a) / sd (the density of z at 0)."""
    sd = np.sqrt(var)
    a = mean / sd
    upper, lower = special.ndtr(a), special.ndtr(-a)
    density = _normal_density(a)
    # Var/var = P + a^2 P Q - a phi (P - Q) - phi^2 with P = Phi(a), Q = Phi(-a):
    # algebraically E[f^2] - E[f]^2, rearranged so that no large terms cancel.
    scaled_var = upper + a * a * upper * lower - a * density * (upper - lower) - density**2
    return GaussianMoments(mean * upper + sd * density, var * scaled_var, upper, density / sd)


def _heaviside_rule(f: Activation, mean: np.ndarray, var: np.ndarray) -> GaussianMoments:
    """Probit, a = mean / sd: E = Phi(a), Var = Phi(a) Phi(-a), E[f'] =
    phi(a) / sd and E[f''] = -a phi(a) / var (d/dmean of E[f'])."""
    sd = np.sqrt(var)
    a = mean / sd
    upper = special.ndtr(a)
    density = _normal_density(a)
    return GaussianMoments(upper, upper * special.ndtr(-a), density / sd, -a * density / var)


def _erf_rule(f: Activation, mean: np.ndarray, var: np.ndarray) -> GaussianMoments:
    """erf(g z) = 2 Phi(u) - 1 with u = sqrt(2) g z ~ N(m, v).

    E[Phi(u)] = Phi(h), h = m / sqrt(1 + v), and Var[Phi(u)] =
    Phi_2(h, h; rho) - Phi(h)^2 with rho = v / (1 + v), Phi_2 the bivariate
    normal CDF.  By Owen's identity this is 2 [T(h, 1) - T(h, a)],
    a = 1 / sqrt(1 + 2 v).  For small rho that difference cancels (relative
    error ~ eps / rho), so there the same quantity is integrated instead:
    d Phi_2 / d rho = phi_2(h, h; rho) gives
    Var = int_0^rho exp(-h^2 / (1 + r)) / (2 pi sqrt(1 - r^2)) dr, whose
    integrand is smooth on [0, 1/2] (Gauss-Legendre).
    """
    g = f.gain
    v = 2.0 * g * g * var
    spread = np.sqrt(1.0 + v)
    h = math.sqrt(2.0) * g * mean / spread
    rho = v / (1.0 + v)
    var_phi = np.empty_like(h)
    small = rho < _ERF_SMALL_RHO
    large = ~small
    var_phi[large] = 2.0 * (special.owens_t(h[large], 1.0)
                            - special.owens_t(h[large], 1.0 / np.sqrt(1.0 + 2.0 * v[large])))
    nodes, weights = _gauss_rule("legendre", _LEGENDRE_NODES)
    small_rho, small_h = rho[small], h[small]
    small_var = np.empty_like(small_rho)
    for start in range(0, small_rho.size, _BLOCK):    # (elements x nodes) work arrays of one block
        block = slice(start, start + _BLOCK)
        r = 0.5 * small_rho[block][:, None] * (1.0 + nodes)
        integrand = np.exp(-(small_h[block] ** 2)[:, None] / (1.0 + r)) / (2.0 * math.pi * np.sqrt(1.0 - r * r))
        small_var[block] = 0.5 * small_rho[block] * (integrand @ weights)
    var_phi[small] = small_var
    slope = (2.0 * g / math.sqrt(math.pi)) * np.exp(-g * g * mean * mean / (1.0 + v)) / spread
    curvature = -2.0 * g * g * mean / (1.0 + v) * slope
    return GaussianMoments(special.erf(g * mean / spread), 4.0 * var_phi, slope, curvature)


def _sigmoid_rule(f: Activation, mean: np.ndarray, var: np.ndarray) -> GaussianMoments:
    """sigma(g z): Gauss-Hermite where g sd < 1.5, Gauss-Laguerre beyond.

    Gauss-Hermite converges slowly once the Gaussian is much wider than the
    sigmoid's transition (poles of sigma at distance pi / (g sd) from the real
    axis in standard units).  There f is split into the step H(z), whose
    moments are closed forms, and a remainder that decays like exp(-g |z|)
    on either side of 0, integrated by Gauss-Laguerre in u = g |z|.  Elements
    are processed in blocks so that the (elements x nodes) work arrays stay
    small for large batches.
    """
    shape = mean.shape
    mean, var = mean.ravel(), var.ravel()
    width = abs(f.gain) * np.sqrt(var)
    is_wide = width >= _SIGMOID_WIDE
    out = GaussianMoments(*(np.empty_like(mean) for _ in GaussianMoments._fields))
    for start in range(0, mean.size, _BLOCK):
        block = slice(start, start + _BLOCK)
        for selected, moments in (
            *_hermite_tiers(width[block], ~is_wide[block]),
            (is_wide[block], _sigmoid_laguerre_moments),
        ):
            index = np.flatnonzero(selected) + start
            if index.size:
                for target, value in zip(out, moments(f.gain, mean[index], var[index])):
                    target[index] = value
    return GaussianMoments(*(array.reshape(shape) for array in out))


def _hermite_tiers(width: np.ndarray, narrow: np.ndarray) -> list:
    """(selection, rule) pairs: the elements of ``narrow`` split by their
    width g sd into the node counts of :data:`_HERMITE_TIERS`."""
    pairs, below = [], np.zeros_like(narrow)
    for nodes, largest in _HERMITE_TIERS:
        tier = narrow & ~below & (width <= largest)
        below |= tier
        pairs.append((tier, functools.partial(_sigmoid_hermite_moments, nodes=nodes)))
    pairs.append((narrow & ~below, _sigmoid_hermite_moments))
    return pairs


def _tanh_rule(f: Activation, mean: np.ndarray, var: np.ndarray) -> GaussianMoments:
    """tanh(g z) = 2 sigma(2 g z) - 1."""
    moments = _sigmoid_rule(Sigmoid(2.0 * f.gain), mean, var)
    return GaussianMoments(
        2.0 * moments.mean - 1.0, 4.0 * moments.var, 2.0 * moments.slope, 2.0 * moments.curvature
    )


def _sigmoid_hermite_moments(gain: float, mean: np.ndarray, var: np.ndarray,
                             nodes: int = _HERMITE_NODES) -> GaussianMoments:
    """Moments of sigma(g z) by Gauss-Hermite quadrature with ``nodes`` nodes
    (exact for polynomials of degree < 2 nodes).  The variance is summed about the computed
    mean (two passes) so that it does not come out as the difference of two
    nearly equal numbers."""
    nodes, weights = _gauss_rule("hermite", nodes)
    weights = weights / math.sqrt(math.pi)  # nodes: from here the abscissae
    s = special.expit(gain * (mean[:, None] + np.sqrt(2.0 * var)[:, None] * nodes))
    first = s @ weights
    centred = s - first[:, None]
    slope = gain * s * (1.0 - s)  # f' and f'' of the sigmoid from its value
    return GaussianMoments(
        first, (centred * centred) @ weights, slope @ weights, (gain * slope * (1.0 - 2.0 * s)) @ weights
    )


def _sigmoid_laguerre_moments(gain: float, mean: np.ndarray, var: np.ndarray) -> GaussianMoments:
    """Moments of sigma(g z) as step + remainder (see :func:`_sigmoid_rule`).

    With y = u / |g| >= 0, p(z) the density of z and s(u) = sigma(u):
        E[f]   = P + (1/|g|) int e^-u s(u) [p(-y) - p(y)] du
        E[f^2] = P + (1/|g|) int e^-u s(u) [s(-u) p(-y) - (1 + s(u)) p(y)] du
        E[f']  = int e^-u s(u)^2 [p(y) + p(-y)] du
        E[f''] = d E[f'] / d mean, with d p(y) / d mean = p(y) (y - mean) / sd^2
    for g > 0 with P = Phi(mean / sd); a negative gain mirrors z (f'
    changes sign, f'' does not).
    """
    nodes, weights = _gauss_rule("laguerre", _LAGUERRE_NODES)
    g = abs(gain)
    sign = math.copysign(1.0, gain)
    mean, sd = sign * mean[..., None], np.sqrt(var)[..., None]
    y = nodes / g

    def density(z):
        return np.exp(-0.5 * ((z - mean) / sd) ** 2) / (sd * math.sqrt(2.0 * math.pi))

    up, down = density(y), density(-y)
    s = special.expit(nodes)
    step = special.ndtr(mean[..., 0] / sd[..., 0])
    first = step + (s * (down - up)) @ weights / g
    second = step + (s * (special.expit(-nodes) * down - (1.0 + s) * up)) @ weights / g
    slope = (s * s * (up + down)) @ weights
    curvature = (s * s * (up * (y - mean) - down * (y + mean))) @ weights / sd[..., 0] ** 2
    return GaussianMoments(first, second - first * first, slope * sign, curvature)


#: The rule of every activation, by name.
MOMENT_RULES: dict[str, Rule] = {
    "linear": _linear_rule,
    "erf": _erf_rule,
    "relu": _relu_rule,
    "heaviside": _heaviside_rule,
    "sigmoid": _sigmoid_rule,
    "tanh": _tanh_rule,
}


def gaussian_moments(activation: Activation, mean, var) -> GaussianMoments:
    """Mean and variance of f(z), mean slope E[f'(z)] and mean curvature
    E[f''(z)] for z ~ N(mean, var).

    Parameters
    ----------
    activation : Activation
        f; its name must have a rule in :data:`MOMENT_RULES`.
    mean : array_like(float)
        Mean of z, any shape.
    var : array_like(float)
        Variance of z (>= 0), broadcastable with ``mean``.

    Returns
    -------
    GaussianMoments
        ``mean``, ``var``, ``slope``, ``curvature`` arrays of the broadcast
        shape.  Where var = 0: f(mean), 0, f'(mean) and f''(mean).

    Raises
    ------
    ValueError
        For an activation without a rule or a negative or non-finite variance.

    Examples
    --------
    >>> from noiseprop import ReLU
    >>> m = gaussian_moments(ReLU(), 0.0, 1.0)
    >>> round(float(m.mean), 6), round(float(m.var), 6), float(m.slope), round(float(m.curvature), 6)
    (0.398942, 0.340845, 0.5, 0.398942)
    """
    rule = MOMENT_RULES.get(activation.name)
    if rule is None:
        raise ValueError(
            f"no Gaussian-moment rule for activation {activation.spec!r}; "
            f"rules exist for: {', '.join(MOMENT_RULES)}"
        )
    mean, var = np.broadcast_arrays(np.asarray(mean, dtype=float), np.asarray(var, dtype=float))
    if not np.all(np.isfinite(var)) or np.any(var < 0):
        raise ValueError("variance of z must be finite and >= 0")
    noiseless = var == 0.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        moments = rule(activation, mean, np.where(noiseless, 1.0, var))
    return GaussianMoments(
        np.where(noiseless, activation(mean), moments.mean),
        np.where(noiseless, 0.0, moments.var),
        np.where(noiseless, activation.derivative(mean), moments.slope),
        np.where(noiseless, activation.second_derivative(mean), moments.curvature),
    )


#: Step of the central differences of :func:`second_moment_derivatives`, in units of sd.
_DIFFERENCE_STEP = 1e-3


def second_moment_derivatives(activation: Activation, mean, var,
                              moments: "GaussianMoments | None" = None) -> tuple[np.ndarray, np.ndarray]:
    """E[(f^2)'(z)] and E[(f^2)''(z)] for z ~ N(mean, var), element-wise.

    They are d/dmean and d^2/dmean^2 of E[f(z)^2] (as E[f'] and E[f''] are
    of E[f], :mod:`module docstring <noiseprop.moments>`): closed forms for
    linear (2 a (a mean + b), 2 a^2), relu (2 E[f], 2 E[f']) and heaviside
    (f^2 = f: E[f'], E[f'']); central differences of E[f^2] = Var + E[f]^2
    in the mean (five points, step 1e-3 max(sd, 1 / |gain|)) for the
    others (sigmoid, tanh, erf; error about 1e-9 relative).
    Where var = 0: the point values 2 f f' and 2 (f'^2 + f f'').  ``moments``:
    :func:`gaussian_moments` of the same Gaussians, if already computed.
    """
    mean, var = np.broadcast_arrays(np.asarray(mean, dtype=float), np.asarray(var, dtype=float))
    name = activation.name
    if name == "linear":
        a = activation.slope
        return 2.0 * a * activation(mean), np.full(mean.shape, 2.0 * a * a)
    moments = gaussian_moments(activation, mean, var) if moments is None else moments
    if name == "relu":
        return 2.0 * moments.mean, 2.0 * moments.slope
    if name == "heaviside":
        return moments.slope, moments.curvature
    # Steps of 1e-3 sd, but never below 1e-3 of f's own scale 1 / |gain|: a
    # second difference with a step near a tiny sd would be all rounding.
    # Five-point stencils (truncation error of order step^4).
    noiseless = var == 0.0
    step = _DIFFERENCE_STEP * np.where(noiseless, 1.0, np.maximum(np.sqrt(var), 1.0 / abs(activation.gain)))
    power = {}
    for shift in (-2, -1, 1, 2):
        shifted = gaussian_moments(activation, mean + shift * step, var)
        power[shift] = shifted.var + shifted.mean**2
    centre = moments.var + moments.mean**2
    first = (8.0 * (power[1] - power[-1]) - (power[2] - power[-2])) / (12.0 * step)
    second = (16.0 * (power[1] + power[-1]) - (power[2] + power[-2]) - 30.0 * centre) / (12.0 * step * step)
    f, f1, f2 = activation(mean), activation.derivative(mean), activation.second_derivative(mean)
    return np.where(noiseless, 2.0 * f * f1, first), np.where(noiseless, 2.0 * (f1 * f1 + f * f2), second)


#: Gauss-Legendre nodes per panel and the panels' extent (standard units) of
#: :func:`third_moment` for erf.
_PANEL_NODES = 48
_PANEL_EDGE = 9.0


def third_moment(activation: Activation, mean, var, moments: "GaussianMoments | None" = None) -> np.ndarray:
    """E[f(z)^3] for z ~ N(mean, var), element-wise.

    Closed forms: linear; relu ((m^3 + 3 m v) Phi(a) + sd (m^2 + 2 v) phi(a),
    a = m / sd); heaviside (E[f]); and from the rules' own moments, by the
    logistic equations f' = g f (1 - f) (sigmoid) and f' = g (1 - f^2)
    (tanh): sigmoid^3 = f - 3 f' / (2 g) + f'' / (2 g^2), tanh^3 = f + f'' / (2 g^2).
    erf: Gauss-Legendre quadrature over the standard normal variable t on
    [-9, 9] in three panels, the middle one over erf's transition
    (:func:`_transition_panels`).  ``moments``: :func:`gaussian_moments` of
    the same Gaussians, if already computed.
    """
    mean, var = np.broadcast_arrays(np.asarray(mean, dtype=float), np.asarray(var, dtype=float))
    name = activation.name
    if name == "linear":
        centre, spread = activation(mean), activation.slope**2 * var
        return centre**3 + 3.0 * centre * spread
    if name == "relu":
        sd = np.sqrt(var)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = mean / sd
            value = (mean**3 + 3.0 * mean * var) * special.ndtr(a) + sd * (mean**2 + 2.0 * var) * _normal_density(a)
        return np.where(sd == 0.0, np.maximum(mean, 0.0) ** 3, value)
    moments = gaussian_moments(activation, mean, var) if moments is None else moments
    if name == "heaviside":
        return moments.mean
    if name in ("sigmoid", "tanh"):
        g = activation.gain
        bent = moments.curvature / (2.0 * g * g)
        if name == "tanh":
            return moments.mean + bent
        return moments.mean - 1.5 * moments.slope / g + bent
    sd = np.sqrt(var)[..., None]
    total = np.zeros(mean.shape)
    nodes, weights = _gauss_rule("legendre", _PANEL_NODES)
    for lower, upper in _transition_panels(activation.gain, mean, sd[..., 0]):
        half = 0.5 * (upper - lower)[..., None]
        t = 0.5 * (upper + lower)[..., None] + half * nodes
        f = activation(mean[..., None] + sd * t)
        total += (f**3 * _normal_density(t) * half) @ weights
    return total


def _transition_panels(gain: float, mean: np.ndarray, sd: np.ndarray) -> list:
    """Three panels (lower, upper) of t = (z - mean) / sd covering [-9, 9]:
    the middle one 8 / (|gain| sd) wide about z = 0, where a sigmoid-like f
    changes (its width in t shrinks as the Gaussian widens), so that
    Gauss-Legendre on each panel integrates a smooth function."""
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = np.where(sd > 0, -mean / sd, 0.0)
        half = np.where(sd > 0, 4.0 / (abs(gain) * sd), 0.0)
    left = np.clip(centre - half, -_PANEL_EDGE, _PANEL_EDGE)
    right = np.clip(centre + half, -_PANEL_EDGE, _PANEL_EDGE)
    edge = np.full(mean.shape, _PANEL_EDGE)
    return [(-edge, left), (left, right), (right, edge)]


def mehler_covariance(slope: np.ndarray, curvature: np.ndarray, cov_z: np.ndarray) -> np.ndarray:
    """Mehler's expansion of Cov[f(z_i), f(z_j)] to second order, per input.

    E[f'_i] E[f'_j] S_ij + E[f''_i] E[f''_j] S_ij^2 / 2 for slope = E[f'] and
    curvature = E[f''] (..., N), S = cov_z (..., N, N).  The second term is
    formed as (c_i S_ij)(S_ij c_j / 2) and vanishes exactly where a curvature
    is 0: an affine activation never meets S^2 (which overflows at enormous
    noise while S itself is finite) nor 0 x inf.

    Returns
    -------
    ndarray (..., N, N)
    """
    cov = slope[..., :, None] * cov_z * slope[..., None, :]
    if np.any(curvature):
        with np.errstate(over="ignore", invalid="ignore"):
            bent = (curvature[..., :, None] * cov_z) * (cov_z * (0.5 * curvature)[..., None, :])
        if not np.all(np.isfinite(bent)):       # 0 x inf where a curvature vanishes
            curved = curvature != 0.0
            bent = np.where(curved[..., :, None] & curved[..., None, :], bent, 0.0)
        cov += bent
    return cov


#: Rounding allowance of a variance formed by cancellation, in units of
#: N eps (sum_j |W_ij|)^2 S_max (see :func:`clamp_rounding`).
_ROUNDING_FACTOR = 4.0


def clamp_rounding(cov_z: np.ndarray, weight: np.ndarray, largest: np.ndarray) -> np.ndarray:
    """cov_z = W S W^T (..., N_out, N_out) with diagonal negatives at rounding level set to 0, in place.

    A variance that cancels exactly (a ghost neuron subtracting the
    correlated noise of its group) comes out of the sum over W_ij S_jk W_ik
    as a rounding error of the size of its terms, sometimes below 0.  With
    ``largest`` = S_max (broadcastable to cov_z's leading shape plus one
    axis) the largest variance from which S was computed (for a mixture:
    over all its components), every term is bounded by
    scale_i = (sum_j |W_ij|)^2 S_max; values in [-4 N eps scale_i, 0)
    become 0.  Larger negative values (an invalid covariance, not rounding)
    are left for the caller's check to report.
    """
    diagonal = np.arange(cov_z.shape[-1])
    var = cov_z[..., diagonal, diagonal]
    if not np.any(var < 0.0):
        return cov_z
    scale = largest * np.sum(np.abs(weight), axis=1) ** 2
    allowance = _ROUNDING_FACTOR * weight.shape[1] * np.finfo(float).eps * scale
    cov_z[..., diagonal, diagonal] = np.where((var < 0.0) & (var >= -allowance), 0.0, var)
    return cov_z


def largest_variance(cov: np.ndarray, axes: int = 1) -> np.ndarray:
    """Largest diagonal entry of covariances (..., N, N) over the last ``axes``
    leading axes besides the matrix (kept as length-1 axes): S_max of
    :func:`clamp_rounding`."""
    diag = np.abs(np.diagonal(cov, axis1=-2, axis2=-1))
    return np.max(diag, axis=tuple(range(diag.ndim - axes, diag.ndim)), keepdims=True)
