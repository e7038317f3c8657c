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

Sums are accumulated per *tile* (a block of consecutive realisations) into
their own slot and added up afterwards in a fixed order, so that the result is
bit-for-bit the same for any number of threads.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

__all__ = [
    "ACTIVATION_CODES",
    "NEURON_FIELDS",
    "ROW_FIELDS",
    "simulate_chunk",
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


# exp(x) = 2^k e^r with r = x - k ln 2, |r| <= ln(2)/2: e^r by its Taylor series to r^12
# (truncation < 2e-16 relative), 2^k by writing the exponent bits.  Unlike math.exp
# (a libm call) this vectorises.
_LOG2E = 1.4426950408889634
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_EXP_TAYLOR = tuple(1.0 / math.factorial(n) for n in range(13))
_EXP_MAX, _EXP_MIN = 709.0, -708.0


@intrinsic
def _int_bits_as_float(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(inline="always")
def _exp(x):
    """exp(x) to about 1 ulp for x in [-708, 709] (clamped outside)."""
    x = min(max(x, _EXP_MIN), _EXP_MAX)
    k = math.floor(x * _LOG2E + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    c = _EXP_TAYLOR
    p = c[12]
    p = p * r + c[11]
    p = p * r + c[10]
    p = p * r + c[9]
    p = p * r + c[8]
    p = p * r + c[7]
    p = p * r + c[6]
    p = p * r + c[5]
    p = p * r + c[4]
    p = p * r + c[3]
    p = p * r + c[2]
    p = p * r + c[1]
    p = p * r + c[0]
    return p * _int_bits_as_float((np.int64(k) + 1023) << 52)


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


@njit(cache=True, error_model="numpy")
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
            out[i] = 1.0 / (1.0 + _exp(-p0 * z[i]))
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


@njit(parallel=True, cache=True, error_model="numpy")
def simulate_chunk(
    first, weights_t, biases, codes, params, sds, pre, zbar, slope, shift, cv,
    seed_key, sample0, n_samples, sample_blocks, offsets, acc, row_acc, accumulate, out,
):
    """Layers 1..L for a chunk of realisations, with running sums.

    The chunk is cut into ``sample_blocks`` tiles of consecutive
    realisations (all inputs); each tile runs through every layer on one
    thread: matrix product (BLAS), noise and activation, sums.

    Parameters (all validated by the caller)
    ----------------------------------------
    first : float64 (B, N_1)
        Layer 1's pre-activation, the same in every realisation (noise-free
        input); with post placement its f(z) (and ``codes[0]`` the identity).
    weights_t, biases : typed List of float64 (N_{k-1}, N_k), (N_k,)
        W_k^T and b_k for k = 1..L (entry 0 unused).
    codes : int64 (L,); params : float64 (L, 2)
        Activations (:data:`ACTIVATION_CODES`) and their parameters.
    sds : float64 (L, 4)
        Standard deviations sqrt(D) of AU, AC, MU, MC per layer.
    pre : bool (L,)
        Pre-activation placement per layer.
    zbar, slope, shift : typed List of float64 (B, N_k)
        Working point, slope f'(zbar) and mean f(zbar) of the linearised
        network per layer; ``shift`` is also the centre of the running sums.
    cv : bool
        Control variate: also propagate the linearised network, same draws.
    seed_key : uint64
    sample0, n_samples : int
        Global index of the chunk's first realisation; realisations in it.
    offsets : int64 (L+1,)
        Cumulative layer widths: layer k's neurons are offsets[k-1]:offsets[k].
    acc : float64 (sample_blocks, B, NEURON_FIELDS[cv] * offsets[L])
        Zeroed per-neuron sums; layer k's are the (fields, N_k) block starting
        at fields * offsets[k-1].
    row_acc : float64 (sample_blocks, B, L, ROW_FIELDS[cv])
        Zeroed per-realisation sums.
    accumulate : bool
    out : float64 (n_samples, B, N_L), or of size 0
        If not empty, receives the last layer's outputs.
    """
    n_inputs = first.shape[0]
    n_layers = codes.shape[0]
    fields = acc.shape[2] // offsets[n_layers]
    width = 0
    for k in range(n_layers):
        width = max(width, offsets[k + 1] - offsets[k], weights_t[k].shape[0])
    for block in prange(sample_blocks):
        start = block * n_samples // sample_blocks
        stop = (block + 1) * n_samples // sample_blocks
        rows = (stop - start) * n_inputs
        buffers = np.empty((4 if cv else 2, rows * width))
        z_buf = np.empty(rows * width)
        z_lin_buf = np.empty(rows * width if cv else 0)
        f = np.empty(width)
        g_mu = np.empty(width)
        g_au = np.empty(width)
        n_in = 0
        for k in range(n_layers):
            n = offsets[k + 1] - offsets[k]
            y = buffers[k % 2, : rows * n].reshape((rows, n))
            y_lin = buffers[2 + k % 2, : rows * n].reshape((rows, n)) if cv else y
            if k > 0:
                previous = buffers[(k - 1) % 2, : rows * n_in].reshape((rows, n_in))
                z = _affine(previous, weights_t[k], biases[k], z_buf[: rows * n].reshape((rows, n)))
                if cv:
                    previous_lin = buffers[2 + (k - 1) % 2, : rows * n_in].reshape((rows, n_in))
                    z_lin = _affine(previous_lin, weights_t[k], biases[k], z_lin_buf[: rows * n].reshape((rows, n)))
                else:
                    z_lin = z
            pairs = n * (n - 1)
            for r in range(rows):
                s, b = start + r // n_inputs, r % n_inputs
                z_row = first[b] if k == 0 else z[r]
                z_lin_row = first[b] if k == 0 else z_lin[r]
                key = stream_key(seed_key, sample0 + s, b, k + 1)
                _noisy_row(z_row, z_lin_row, codes[k], params[k, 0], params[k, 1], sds[k], pre[k], cv, key,
                           zbar[k][b], slope[k][b], shift[k][b], y[r], y_lin[r], f[:n], g_mu[:n], g_au[:n])
                if accumulate:
                    region = acc[block, b, fields * offsets[k]: fields * offsets[k + 1]].reshape((fields, n))
                    _accumulate(y[r], y_lin[r], shift[k][b], cv, pairs, region, row_acc[block, b, k])
            n_in = n
        if out.size > 0:
            last = buffers[(n_layers - 1) % 2, : rows * n_in].reshape((rows, n_in))
            for r in range(rows):
                for i in range(n_in):
                    out[start + r // n_inputs, r % n_inputs, i] = last[r, i]


@njit(cache=True)
def _affine(y, weight_t, bias, z):
    """z = y W^T + b for the rows of y (BLAS)."""
    np.dot(y, weight_t, z)
    for r in range(z.shape[0]):
        for i in range(z.shape[1]):
            z[r, i] += bias[i]
    return z


@njit(inline="always")
def _noisy_row(z, z_lin, code, p0, p1, sd, pre, cv, key, zbar, slope, shift, y, y_lin, f, g_mu, g_au):
    """One realisation of one layer: y from the pre-activation z (and, with
    ``cv``, y_lin of the linearised network from z_lin, with the same draws).

    Draw 0 of the stream is xi_MC, draw 1 xi_AC, draws 2.. the uncorrelated
    ones: with ``cv`` xi_MU (2..N+1) and xi_AU (N+2..2N+1) apart; without, the
    combined f xi_MU + xi_AU (or z xi_MU + xi_AU before the activation), one
    Gaussian per neuron.
    """
    n = y.shape[0]
    d_au, d_mu = sd[0] * sd[0], sd[2] * sd[2]
    e_mc = sd[3] * _normal(key, 0) if sd[3] > 0.0 else 0.0
    e_ac = sd[1] * _normal(key, 1) if sd[1] > 0.0 else 0.0
    if cv:
        _fill_normals(key, 2, g_mu)
        _fill_normals(key, 2 + n, g_au)
    elif d_mu > 0.0 or d_au > 0.0:
        _fill_normals(key, 2, g_mu)
    else:
        g_mu[:] = 0.0
    if not pre:
        _activate(code, p0, p1, z, f)
        if cv:
            for i in range(n):
                gain = 1.0 + sd[2] * g_mu[i] + e_mc
                add = sd[0] * g_au[i] + e_ac
                y[i] = f[i] * gain + add
                y_lin[i] = (shift[i] + slope[i] * (z_lin[i] - zbar[i])) * gain + add
        else:
            for i in range(n):
                y[i] = f[i] * (1.0 + e_mc) + e_ac + math.sqrt(f[i] * f[i] * d_mu + d_au) * g_mu[i]
    else:
        if cv:
            for i in range(n):
                gain = 1.0 + sd[2] * g_mu[i] + e_mc
                add = sd[0] * g_au[i] + e_ac
                f[i] = z[i] * gain + add
                y_lin[i] = shift[i] + slope[i] * (z_lin[i] * gain + add - zbar[i])
        else:
            for i in range(n):
                f[i] = z[i] * (1.0 + e_mc) + e_ac + math.sqrt(z[i] * z[i] * d_mu + d_au) * g_mu[i]
        _activate(code, p0, p1, f, y)


@njit(inline="always")
def _accumulate(row, row_lin, shift, cv, pairs, acc, row_acc):
    """Add one realisation's sums (see NEURON_FIELDS, ROW_FIELDS).

    The element-wise sums and the sums over neurons are separate loops so
    that the first vectorises (a float reduction does not, without fastmath).
    """
    n = row.shape[0]
    for i in range(n):
        d = row[i] - shift[i]
        d2 = d * d
        acc[0, i] += d
        acc[1, i] += d2
        acc[2, i] += d2 * d
        acc[3, i] += d2 * d2
    if cv:
        for i in range(n):
            d = row[i] - shift[i]
            e = row_lin[i] - shift[i]
            d2, e2 = d * d, e * e
            acc[4, i] += e
            acc[5, i] += e2
            acc[6, i] += (d - e) * (d - e)
            acc[7, i] += d2 - e2
            acc[8, i] += (d2 - e2) * (d2 - e2)
    s_a = 0.0
    q_a = 0.0
    s_e = 0.0
    q_e = 0.0
    for i in range(n):
        d = row[i] - shift[i]
        s_a += d
        q_a += d * d
    if cv:
        for i in range(n):
            e = row_lin[i] - shift[i]
            s_e += e
            q_e += e * e
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
