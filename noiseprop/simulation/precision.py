"""When float32 Monte Carlo is as good as float64: the rule behind ``simulate(dtype="auto")``.

The float32 engine computes every product, noise draw and activation in float32
(unit roundoff u = 2^-24) and accumulates the moments in float64 (per-neuron
sums first in float32 over blocks of realisations, bounded below).  Its
uncorrelated noise comes from its own generator (a 32-bit hash and a float32
Box-Muller transform, :func:`noiseprop.simulation._kernels.fill_normals32`): each
pair of draws is the Box-Muller transform of two uniforms (31 and 32 bits) to a
relative error eta <= NORMAL_RTOL per draw, so a float32 run and the float64 run
of the same seed are two different, equally distributed realisations.  The
comparison behind the rule is therefore with the float64 computation driven by
the *float32 generator's uniforms* (a valid run: its draws are the exact
Box-Muller normals of those uniforms, independent standard normals up to
their 31- and 32-bit resolution): for one neuron let y be that value and
y + delta the float32 value, and let e >= sqrt(E[delta^2]) be a bound on the
RMS error.  Then, whatever delta's distribution,

- the mean is shifted by |E[delta]| <= e, against a standard error sigma / sqrt(R);
- the variance by |Var[y + delta] - Var[y]| <= 2 sigma e + e^2 (Cauchy-Schwarz),
  against a standard error of about sigma^2 sqrt(2 / R) (Gaussian outputs);
- a covariance (the layer's correlated part) by at most sigma_i e_j + sigma_j e_i + e_i e_j.

**Rule.** float32 is used when, for every neuron of every layer (and input),

    e <= C * sigma / sqrt(2 R),          C = FLOAT32_SAFETY = 0.1,

i.e. the rounding bias of every mean, variance and covariance is at most
about a tenth of its standard error (a z-score moves by at most ~0.1), and
float64 otherwise: always with the control variate (whose standard errors
are of order D^2 and below float32 rounding), a discontinuous activation
(heaviside: a rounding error can flip a neuron), or a noise-free neuron.

**The bound e** (:func:`float32_error_bound`) is a worst-case forward error
analysis layer by layer, in RMS terms (Minkowski's inequality), with r the
RMS value of a neuron, L the Lipschitz constant sup |f'| of the activation,
gamma_n = n u / (1 - n u) the bound of a length-n dot product in floating
point (any summation order, so any BLAS) and eta = NORMAL_RTOL the relative error
of a float32 normal draw against the exact normal of its uniform (tested; the
correlated draws xi_MC, xi_AC are the float64 generator's, rounded once: eta = u)::

    layer 1 (computed in float64, rounded once):   e_1 = u |f(z_1)|  (post)
    noise on a value v (error e_v, RMS r_v):       e <- sqrt(1 + D_MC) e_v
                 + (6u + eta) (sqrt(1 + D_MC) r_v + sqrt(D_AC) + sqrt(r_v^2 D_MU + D_AU))
    z_i = sum_j W_ij y_j + b_i:                    e_z <- gamma_{n+1} (|W| r_y + |b|) + |W| e_y
    activation:                                    e_f <- L e_z + 8u r_f

**The float32 block sums.**  A float32 run adds every neuron's d, d^2, d^3, d^4
(d = (y - c) / scale, c the noise-free value, scale a power of two near the RMS
deviation, so d = O(1)) in float32 over blocks of B = BLOCK_ROWS realisations and
each block sum to the float64 sums.  d is within about 2u |d| of its exact value
and a block sum of d^k within (B + 2k) u of the sum of |d|^k (recursive summation
of B terms, each rounded relative error (2k + 1) u); adding the block sums in
float64 costs nothing comparable.  With rho^2 = sigma^2 + m^2 (m the mean's distance
from c), the mean moves by at most (B + 2) u rho and the variance E[d^2] - E[d]^2
by at most (3B + 8) u rho^2, i.e. as much as an RMS error of

    e_acc = (3B + 8) u rho^2 / (2 sigma)      (:func:`block_sum_error`)

would move them (mean by e_acc >= (B + 2) u rho, variance by 2 sigma e_acc), which
is added to e.  (B = 32: 3.1e-6 rho^2 / sigma, below the rule's limit for up to
~1e8 realisations of a neuron whose mean is within sigma of c.)  The sums of d^3
and d^4 only enter the standard errors, to the same relative (B + 8) u.  The
correlated parts come from per-realisation sums s and q over the layer, float64 sums
of the same float32 d: its rounding (RMS <= 2u rho <= e_acc) is covered by e.

The RMS values and sigma come from the statistics themselves: before the run
from the noise-free forward pass and a lower estimate of each neuron's noise
variance (the noise its own layer injects, see :func:`noise_floor`); after a
float32 run the rule is checked again with the measured means and variances,
and the run is repeated in float64 if it no longer holds.
"""
from __future__ import annotations

import numpy as np

__all__ = ["FLOAT32_SAFETY", "UNIT_ROUNDOFF", "NORMAL_RTOL", "BLOCK_ROWS", "float32_error_bound",
           "block_sum_error", "noise_floor", "float32_suffices"]

#: C of the rule: the float32 rounding bias is at most C standard errors.
FLOAT32_SAFETY = 0.1
#: Unit roundoff of float32.
UNIT_ROUNDOFF = 2.0**-24
#: Bound on the relative error of a float32 standard normal draw against the exact
#: Box-Muller transform of its two uniforms (a float32 logarithm, square root, sine and
#: cosine: (1 + e_r)(1 + e_t)(1 + u) - 1 = 3.99e-7 with the largest errors of the radius,
#: 1.47e-7 over all 2^31 inputs, and of the cosine and sine, 1.92e-7 over all 2^29 angles:
#: benchmarks/float32_generator_error.py; the tests check a grid of a million pairs).
NORMAL_RTOL = 5e-7
#: Realisations per float32 block sum of the per-neuron moments (B of the block-sum bound):
#: long enough that the float64 additions are few, short enough that the float32 rounding
#: (B u relative) stays far below the statistical error.
BLOCK_ROWS = 32


def block_sum_error(variances, offsets, block_rows: int = BLOCK_ROWS):
    """RMS-equivalent error e_acc = (3B + 8) u rho^2 / (2 sigma) of the float32 block sums.

    Parameters
    ----------
    variances : ndarray
        sigma^2 of each neuron.
    offsets : ndarray
        m, each neuron's mean minus the noise-free value the sums are centred on
        (same shape, same units as sqrt(variances)).
    block_rows : int
        B, realisations per block sum.

    Returns
    -------
    ndarray
        e_acc (inf where sigma = 0: no statistical error to compare with).
    """
    variances = np.maximum(np.asarray(variances, float), 0.0)
    rho2 = variances + np.asarray(offsets, float) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = (3 * block_rows + 8) * UNIT_ROUNDOFF * rho2 / (2.0 * np.sqrt(variances))
    return np.where(variances > 0, bound, np.inf)


def _noise_step(error, rms, intensities):
    """RMS error bound after applying one layer's noise to a value (error, rms)."""
    au, ac, mu, mc = (intensities[name] for name in ("AU", "AC", "MU", "MC"))
    gain = np.sqrt(1.0 + mc)
    scale = gain * rms + np.sqrt(ac) + np.sqrt(rms**2 * mu + au)
    return gain * error + (6 * UNIT_ROUNDOFF + NORMAL_RTOL) * scale


def float32_error_bound(net, layer_noise, x, means, variances, lipschitz) -> list:
    """Bound e on the RMS float32 rounding error of every neuron of layers 1..L.

    Parameters
    ----------
    net : Network
    layer_noise : sequence of Noise, one per layer 1..L
    x : ndarray (B, N_0)
        The (noise-free) inputs.
    means, variances : list of ndarray (B, N_k), k = 0..L
        The neurons' means and variances (estimates; the RMS value is
        sqrt(mean^2 + variance)).
    lipschitz : sequence of float
        sup |f'| of each layer's activation (inf: discontinuous).

    Returns
    -------
    list of ndarray (B, N_k), k = 1..L
    """
    u = UNIT_ROUNDOFF
    rms = [np.sqrt(np.asarray(m, float) ** 2 + np.maximum(v, 0.0)) for m, v in zip(means, variances)]
    bounds = []
    error = np.zeros_like(np.asarray(x, float))
    for k, (w, b, f, noise, lip) in enumerate(zip(net.weights, net.biases, net.activations, layer_noise,
                                                   lipschitz), start=1):
        n = w.shape[1] + 1
        gamma = n * u / (1 - n * u)
        z_bar = x @ w.T + b if k == 1 else None
        if k == 1:  # computed in float64 from the noise-free input, rounded to float32 once
            z_error = u * np.abs(z_bar)
            z_rms = np.abs(z_bar)
        else:
            z_error = gamma * (rms[k - 1] @ np.abs(w).T + np.abs(b)) + error @ np.abs(w).T
            z_rms = np.sqrt((means[k - 1] @ w.T + b) ** 2 + np.maximum(variances[k - 1], 0.0) @ (w**2).T)
        with np.errstate(invalid="ignore"):
            if noise.placement == "pre":
                noisy_z = _noise_step(z_error, z_rms, noise.intensities)
                error = lip * noisy_z + 8 * u * rms[k]
            else:
                f_error = u * rms[k] if k == 1 else lip * z_error + 8 * u * rms[k]
                error = _noise_step(f_error, rms[k], noise.intensities)
        error = np.where(np.isnan(error), np.inf, error)  # inf * 0 (a discontinuous f): no bound
        bounds.append(error)
    return bounds


def noise_floor(net, layer_noise, x) -> tuple[list, list]:
    """Noise-free means and a lower estimate of every neuron's variance, layers 0..L.

    The variance a layer's own noise adds (post placement: D_AU + D_AC +
    (D_MU + D_MC) f(zbar)^2; pre: f'(zbar)^2 (D_AU + D_AC + (D_MU + D_MC) zbar^2)),
    to first order, without the noise arriving from earlier layers.
    """
    means = net.forward(x)
    variances = [np.zeros_like(means[0])]
    for k, (w, b, f, noise) in enumerate(zip(net.weights, net.biases, net.activations, layer_noise), start=1):
        d = noise.intensities
        additive, multiplicative = d["AU"] + d["AC"], d["MU"] + d["MC"]
        if noise.placement == "pre":
            z_bar = means[k - 1] @ w.T + b
            variances.append(f.derivative(z_bar) ** 2 * (additive + multiplicative * z_bar**2))
        else:
            variances.append(additive + multiplicative * means[k] ** 2)
    return means, variances


def float32_suffices(bounds, variances, samples: int, safety: float = FLOAT32_SAFETY) -> bool:
    """The rule: every bound e <= safety * sigma / sqrt(2 R) (``variances``: layers 1..L),
    and no noise-free neuron (sigma = 0: no statistical error to hide the rounding in)."""
    limit_scale = safety / np.sqrt(2.0 * samples)
    for e, v in zip(bounds, variances):
        sigma = np.sqrt(np.maximum(v, 0.0))
        if not np.all((sigma > 0) & (e <= limit_scale * sigma)):
            return False
    return True
