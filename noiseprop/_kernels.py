"""Compiled (numba) kernels of the Monte Carlo engine.

**These kernels do no checking.**  Shapes, dtypes, activation codes and
intensities are validated and converted by the public wrappers in
:mod:`noiseprop.montecarlo`; calling a kernel directly with bad arguments gives
wrong numbers or a crash, not an error message.

Random numbers are counter based: every realisation s (global sample index),
input b and layer k has its own stream key ``stream_key(seed_key, s, b, k)``
and draw n of that stream is the SplitMix64 finaliser of ``key + (n+1) G``
(G the golden-ratio increment), turned into a standard normal by Acklam's
inverse-CDF approximation (relative error < 1.2e-9).  No generator state is
carried from one realisation to the next, so the numbers depend on the seed
only, not on how realisations are split into chunks or spread over threads.

Sums are accumulated per *tile* (a block of realisations of one input) into
their own slot and added up afterwards in a fixed order, so that the result is
bit-for-bit the same for any number of threads.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "ACTIVATION_CODES",
    "NEURON_FIELDS",
    "ROW_FIELDS",
    "noisy_layer",
    "standard_normals",
]

#: Kernel codes of the activations (parameters p0, p1 in brackets):
#: linear (slope, offset), sigmoid (gain), tanh (gain), relu, erf (gain), heaviside.
ACTIVATION_CODES = {"linear": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "erf": 4, "heaviside": 5}

#: Per-neuron running sums, with d = y - shift and e = y_lin - shift:
#: plain: d, d^2, d^3, d^4; with the control variate also
#: e, e^2, (d - e)^2, d^2 - e^2, (d^2 - e^2)^2.
NEURON_FIELDS = {False: 4, True: 9}
#: Per-realisation (layer-level) running sums, with s = sum_i d_i, q = sum_i d_i^2
#: and p = (s^2 - q) / (N (N - 1)) (the mean off-diagonal product):
#: plain: s, s^2, p, p^2, q, q^2; with the control variate also
#: s_e, s_e^2, p - p_e, (p - p_e)^2, q - q_e, (q - q_e)^2.
ROW_FIELDS = {False: 6, True: 12}

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_INPUT_MIX = np.uint64(0xD1B54A32D192ED03)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53

# Acklam's rational approximation of the inverse normal CDF.
_A1, _A2, _A3 = -3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02
_A4, _A5, _A6 = 1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00
_B1, _B2, _B3 = -5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02
_B4, _B5 = 6.680131188771972e01, -1.328068155288572e01
_C1, _C2, _C3 = -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00
_C4, _C5, _C6 = -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00
_D1, _D2, _D3, _D4 = 7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00
_Q_CENTRAL = 0.47575  # |u - 1/2| up to which the central formula holds
_X_CENTRAL = 1.97  # just below |_central(_Q_CENTRAL)| = 1.97296


@njit(inline="always")
def _mix(z):
    """SplitMix64 finaliser: a bijective avalanche of 64 bits."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(inline="always")
def stream_key(seed_key, sample, inp, layer):
    """Key of the stream of realisation ``sample``, input ``inp``, layer ``layer``."""
    key = _mix(seed_key + np.uint64(sample + 1) * _GAMMA)
    key = _mix(key ^ (np.uint64(inp + 1) * _INPUT_MIX))
    return _mix(key + np.uint64(layer + 1) * _GAMMA)


@njit(inline="always")
def _uniform(key, n):
    """Draw n of a stream as a uniform number in the open interval (0, 1)."""
    bits = _mix(key + np.uint64(n + 1) * _GAMMA)
    return (float(bits >> np.uint64(11)) + 0.5) * _TO_UNIT


@njit(inline="always")
def _central(q):
    r = q * q
    num = (((((_A1 * r + _A2) * r + _A3) * r + _A4) * r + _A5) * r + _A6) * q
    return num / (((((_B1 * r + _B2) * r + _B3) * r + _B4) * r + _B5) * r + 1.0)


@njit(inline="always")
def _tail(u):
    """Inverse normal CDF for u in a tail (|u - 1/2| > _Q_CENTRAL)."""
    lower = u < 0.5
    t = math.sqrt(-2.0 * math.log(u if lower else 1.0 - u))
    x = (((((_C1 * t + _C2) * t + _C3) * t + _C4) * t + _C5) * t + _C6) / (
        (((_D1 * t + _D2) * t + _D3) * t + _D4) * t + 1.0
    )
    return x if lower else -x


@njit(inline="always")
def _normal(key, n):
    """Draw n of a stream as a standard normal number."""
    u = _uniform(key, n)
    q = u - 0.5
    if abs(q) <= _Q_CENTRAL:
        return _central(q)
    return _tail(u)


@njit(inline="always")
def _fill_normals(key, first, out):
    """out[i] = draw first + i of the stream, as standard normals.

    Two passes so that the first (the central formula for every draw)
    vectorises; the central formula is monotone with |x| < _X_CENTRAL exactly
    on the central region, so only draws beyond it (about 5 %) are redone.
    """
    for i in range(out.shape[0]):
        out[i] = _central(_uniform(key, first + i) - 0.5)
    for i in range(out.shape[0]):
        if abs(out[i]) >= _X_CENTRAL:
            u = _uniform(key, first + i)
            if abs(u - 0.5) > _Q_CENTRAL:
                out[i] = _tail(u)


@njit(cache=True)
def standard_normals(seed_key, sample, inp, layer, first, count):
    """``count`` draws of one stream as standard normals (for the tests)."""
    out = np.empty(count)
    _fill_normals(stream_key(seed_key, sample, inp, layer), first, out)
    return out


@njit(inline="always")
def _activate(code, p0, p1, z, out):
    """out = f(z) for the activation ``code`` with parameters p0, p1."""
    n = z.shape[0]
    if code == 0:
        for i in range(n):
            out[i] = p0 * z[i] + p1
    elif code == 1:
        for i in range(n):
            out[i] = 1.0 / (1.0 + math.exp(-p0 * z[i]))
    elif code == 2:
        for i in range(n):
            out[i] = math.tanh(p0 * z[i])
    elif code == 3:
        for i in range(n):
            out[i] = max(z[i], 0.0)
    elif code == 4:
        for i in range(n):
            out[i] = math.erf(p0 * z[i])
    else:
        for i in range(n):
            out[i] = 1.0 if z[i] > 0.0 else 0.0


@njit(parallel=True, cache=True)
def noisy_layer(
    z, z_lin, code, p0, p1, sd, pre, cv, seed_key, sample0, layer,
    zbar, slope, shift, sample_blocks, y, y_lin, acc, row_acc, accumulate,
):
    """One noisy layer for a chunk of realisations, with running sums.

    Parameters (all validated by the caller)
    ----------------------------------------
    z : float64 (S or 1, B, N)
        Pre-activations (a leading 1: the same for every realisation).  With
        ``code`` linear(1, 0) and post placement, z may hold f(z) itself.
    z_lin : float64 (S or 1, B, N)
        Pre-activations of the linearised network (read only if ``cv``).
    code, p0, p1 : int, float, float
        Activation (:data:`ACTIVATION_CODES`) and its parameters.
    sd : float64 (4,)
        Standard deviations sqrt(D) of AU, AC, MU, MC.
    pre, cv : bool
        Pre-activation placement; control variate (also compute y_lin).
    seed_key : uint64
    sample0 : int
        Global index of the chunk's first realisation.
    layer : int
        Layer number k (part of the stream key).
    zbar, slope, shift : float64 (B, N)
        Working point zbar_k, slope f'(zbar_k) and mean f(zbar_k) of the
        linearised network; ``shift`` is also the centre of the running sums.
    sample_blocks : int
        Number of realisation blocks per input; tile t covers input
        t % B and block t // B.
    y, y_lin : float64 (S, B, N)
        Outputs (y_lin written only if ``cv``).
    acc : float64 (sample_blocks, NEURON_FIELDS[cv], B, N)
    row_acc : float64 (sample_blocks, ROW_FIELDS[cv], B)
        Zeroed running sums, one slot per tile (written only if ``accumulate``).
    accumulate : bool
    """
    n_samples, n_inputs, n = y.shape
    d_au, d_mu = sd[0] * sd[0], sd[2] * sd[2]
    pairs = n * (n - 1)
    for tile in prange(sample_blocks * n_inputs):
        block, b = tile // n_inputs, tile % n_inputs
        start = block * n_samples // sample_blocks
        stop = (block + 1) * n_samples // sample_blocks
        f = np.empty(n)
        u = np.empty(n)
        g_mu = np.empty(n)
        g_au = np.empty(n)
        for s in range(start, stop):
            zs = s if z.shape[0] > 1 else 0
            key = stream_key(seed_key, sample0 + s, b, layer)
            e_mc = sd[3] * _normal(key, 0) if sd[3] > 0.0 else 0.0
            e_ac = sd[1] * _normal(key, 1) if sd[1] > 0.0 else 0.0
            if cv:
                _fill_normals(key, 2, g_mu)
                _fill_normals(key, 2 + n, g_au)
            elif d_mu > 0.0 or d_au > 0.0:
                _fill_normals(key, 2, g_mu)
            else:
                g_mu[:] = 0.0
            row = y[s, b]
            if not pre:
                _activate(code, p0, p1, z[zs, b], f)
                if cv:
                    zl = z_lin[s if z_lin.shape[0] > 1 else 0, b]
                    for i in range(n):
                        gain = 1.0 + sd[2] * g_mu[i] + e_mc
                        add = sd[0] * g_au[i] + e_ac
                        row[i] = f[i] * gain + add
                        y_lin[s, b, i] = (shift[b, i] + slope[b, i] * (zl[i] - zbar[b, i])) * gain + add
                else:
                    for i in range(n):
                        row[i] = f[i] * (1.0 + e_mc) + e_ac + math.sqrt(f[i] * f[i] * d_mu + d_au) * g_mu[i]
            else:
                zrow = z[zs, b]
                if cv:
                    zl = z_lin[s if z_lin.shape[0] > 1 else 0, b]
                    for i in range(n):
                        gain = 1.0 + sd[2] * g_mu[i] + e_mc
                        add = sd[0] * g_au[i] + e_ac
                        u[i] = zrow[i] * gain + add
                        y_lin[s, b, i] = shift[b, i] + slope[b, i] * (zl[i] * gain + add - zbar[b, i])
                else:
                    for i in range(n):
                        u[i] = zrow[i] * (1.0 + e_mc) + e_ac + math.sqrt(zrow[i] * zrow[i] * d_mu + d_au) * g_mu[i]
                _activate(code, p0, p1, u, row)
            if accumulate:
                _accumulate(row, y_lin[s, b] if cv else row, shift[b], cv, pairs,
                            acc[block, :, b], row_acc[block, :, b])


@njit(inline="always")
def _accumulate(row, row_lin, shift, cv, pairs, acc, row_acc):
    """Add one realisation's sums (see NEURON_FIELDS, ROW_FIELDS)."""
    s_a = 0.0
    q_a = 0.0
    s_e = 0.0
    q_e = 0.0
    for i in range(row.shape[0]):
        d = row[i] - shift[i]
        d2 = d * d
        acc[0, i] += d
        acc[1, i] += d2
        acc[2, i] += d2 * d
        acc[3, i] += d2 * d2
        s_a += d
        q_a += d2
        if cv:
            e = row_lin[i] - shift[i]
            e2 = e * e
            acc[4, i] += e
            acc[5, i] += e2
            acc[6, i] += (d - e) * (d - e)
            acc[7, i] += d2 - e2
            acc[8, i] += (d2 - e2) * (d2 - e2)
            s_e += e
            q_e += e2
    p_a = (s_a * s_a - q_a) / pairs if pairs > 0 else 0.0
    row_acc[0] += s_a
    row_acc[1] += s_a * s_a
    row_acc[2] += p_a
    row_acc[3] += p_a * p_a
    row_acc[4] += q_a
    row_acc[5] += q_a * q_a
    if cv:
        p_e = (s_e * s_e - q_e) / pairs if pairs > 0 else 0.0
        row_acc[6] += s_e
        row_acc[7] += s_e * s_e
        row_acc[8] += p_a - p_e
        row_acc[9] += (p_a - p_e) * (p_a - p_e)
        row_acc[10] += q_a - q_e
        row_acc[11] += (q_a - q_e) * (q_a - q_e)
