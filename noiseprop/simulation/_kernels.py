"""Compiled (numba) kernels of the Monte Carlo engine.

**These kernels do no checking.**  Shapes, dtypes, activation codes and
intensities are validated and converted by the public wrappers in
:mod:`noiseprop.simulation.montecarlo`; calling a kernel directly with bad arguments gives
wrong numbers or a crash, not an error message.

Random numbers are counter based: every realisation s (global sample index),
input b and layer k has its own stream key ``stream_key(seed_key, s, b, k)``
and word j of that stream is the SplitMix64 finaliser of ``key + (j+1) G``
(G the golden-ratio increment); each word gives two 32-bit uniforms, each
turned into a standard normal by Acklam's inverse-CDF approximation (relative
error < 1.2e-9; the 32-bit uniforms reach 6.2 standard deviations, beyond
which lies a probability of 5e-10).  No generator state is
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

#: Per-neuron running sums, with d = (y - shift) / scale and e = (y_lin - shift) / scale
#: (``scale`` a power of two per layer and input that keeps d^4 in floating-point range):
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
_TO_UNIT = 1.0 / 4294967296.0  # 2**-32

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
def _word(key, j):
    """Word j of a stream: 64 random bits, two 32-bit draws."""
    return _mix(key + np.uint64(j + 1) * _GAMMA)


@njit(inline="always")
def _to_unit(bits32):
    """32 random bits as a uniform number in the open interval (0, 1)."""
    return (float(bits32) + 0.5) * _TO_UNIT


@njit(inline="always")
def _low(word):
    return word & np.uint64(0xFFFFFFFF)


@njit(inline="always")
def _high(word):
    return word >> np.uint64(32)


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
def _inverse_normal(u):
    """Acklam's inverse normal CDF of u in (0, 1)."""
    q = u - 0.5
    if abs(q) <= _Q_CENTRAL:
        return _central(q)
    return _tail(u)


@njit(inline="always")
def _normal_pair(key):
    """Word 0 of a stream as two standard normals (xi_MC, xi_AC)."""
    word = _word(key, 0)
    return _inverse_normal(_to_unit(_low(word))), _inverse_normal(_to_unit(_high(word)))


@njit(inline="always")
def _fill_unit(key, first, half, i):
    """The uniform behind out[i] of ``_fill_normals(key, first, out)``."""
    word = _word(key, first + (i if i < half else i - half))
    return _to_unit(_low(word) if i < half else _high(word))


@njit(inline="always")
def _fill_normals(key, first, out, tail_index):
    """out as standard normals from the words first, first + 1, ... of a stream:
    with h = ceil(len(out) / 2), out[i] from the low half of word first + i and
    out[h + i] from its high half.

    The first pass (the central formula for every draw, two per word)
    vectorises; the central formula is monotone with |x| < _X_CENTRAL exactly
    on the central region, so only draws beyond it (about 5 %) are redone,
    listed first in ``tail_index`` (scratch, len(out) int64) without a branch
    that the processor would mispredict.
    """
    n = out.shape[0]
    half = (n + 1) // 2
    for i in range(n - half):
        word = _word(key, first + i)
        out[i] = _central(_to_unit(_low(word)) - 0.5)
        out[half + i] = _central(_to_unit(_high(word)) - 0.5)
    if n % 2:
        out[half - 1] = _central(_to_unit(_low(_word(key, first + half - 1))) - 0.5)
    count = 0
    for i in range(n):
        tail_index[count] = i
        count += abs(out[i]) >= _X_CENTRAL
    for j in range(count):
        i = tail_index[j]
        u = _fill_unit(key, first, half, i)
        if abs(u - 0.5) > _Q_CENTRAL:
            out[i] = _tail(u)


@njit(cache=True, error_model="numpy")
def standard_normals(seed_key, sample, inp, layer, first, count):
    """``count`` standard normals from the words first, ... of one stream, as
    drawn by the kernel (for the tests)."""
    out = np.empty(count)
    _fill_normals(stream_key(seed_key, sample, inp, layer), first, out, np.empty(count, np.int64))
    return out


@njit(inline="always")
def _activate(code, p0, p1, z, zr, out, r, n):
    """out[r, :n] = f(z[zr, :n]) for the activation ``code`` with parameters p0, p1.

    Rows are indexed, not sliced: a row view costs reference counting per
    realisation, which is as expensive as the arithmetic on a narrow layer.
    """
    if code == 0:
        for i in range(n):
            out[r, i] = p0 * z[zr, i] + p1
    elif code == 1:
        for i in range(n):
            out[r, i] = 1.0 / (1.0 + _exp(-p0 * z[zr, i]))
    elif code == 2:
        for i in range(n):
            out[r, i] = math.tanh(p0 * z[zr, i])
    elif code == 3:
        for i in range(n):
            out[r, i] = max(z[zr, i], 0.0)
    elif code == 4:
        for i in range(n):
            out[r, i] = math.erf(p0 * z[zr, i])
    else:
        for i in range(n):
            out[r, i] = 1.0 if z[zr, i] > 0.0 else 0.0


@njit(parallel=True, cache=True, error_model="numpy")
def simulate_chunk(
    first, weights_t, weight_offsets, biases, codes, params, sds, pre, zbar, slope, shift, inv_scale, cv,
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
    weights_t : float64, flat
        W_k^T (N_{k-1}, N_k) for k = 2..L, row-major, layer k's at
        weight_offsets[k-1]:weight_offsets[k] (layer 1's is not needed).
    weight_offsets : int64 (L+1,)
    biases : float64 (offsets[L],)
        b_k for k = 1..L, layer k's at offsets[k-1]:offsets[k].
    codes : int64 (L,); params : float64 (L, 2)
        Activations (:data:`ACTIVATION_CODES`) and their parameters.
    sds : float64 (L, 4)
        Standard deviations sqrt(D) of AU, AC, MU, MC per layer.
    pre : bool (L,)
        Pre-activation placement per layer.
    zbar, slope, shift : float64 (B * offsets[L],)
        Working point, slope f'(zbar) and mean f(zbar) of the linearised
        network per layer, layer k's a (B, N_k) block at B * offsets[k-1];
        ``shift`` is also the centre of the running sums.  (Flat arrays, not
        lists: a typed List costs milliseconds to build and pass.)
    inv_scale : float64 (B * offsets[L],)
        1/scale of the running sums, laid out like ``shift`` (powers of two:
        the scaling is exact).
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
        width = max(width, offsets[k + 1] - offsets[k])
    for block in prange(sample_blocks):
        start = block * n_samples // sample_blocks
        stop = (block + 1) * n_samples // sample_blocks
        rows = (stop - start) * n_inputs
        buffers = np.empty((4 if cv else 2, rows * width))
        z_buf = np.empty(rows * width)
        z_lin_buf = np.empty(rows * width if cv else 0)
        f = np.empty((1, width))
        g_mu = np.empty(width)
        g_au = np.empty(width)
        tail_index = np.empty(width, np.int64)
        n_in = 0
        for k in range(n_layers):
            n = offsets[k + 1] - offsets[k]
            y = buffers[k % 2, : rows * n].reshape((rows, n))
            y_lin = buffers[2 + k % 2, : rows * n].reshape((rows, n)) if cv else y
            z, z_lin = first, first  # layer 1: the same pre-activation (row b) in every realisation
            if k > 0:
                previous = buffers[(k - 1) % 2, : rows * n_in].reshape((rows, n_in))
                weight_t = weights_t[weight_offsets[k]: weight_offsets[k + 1]].reshape((n_in, n))
                bias = biases[offsets[k]: offsets[k + 1]]
                z = _affine(previous, weight_t, bias, z_buf[: rows * n].reshape((rows, n)))
                if cv:
                    previous_lin = buffers[2 + (k - 1) % 2, : rows * n_in].reshape((rows, n_in))
                    z_lin = _affine(previous_lin, weight_t, bias, z_lin_buf[: rows * n].reshape((rows, n)))
                else:
                    z_lin = z
            pairs = n * (n - 1)
            column = fields * offsets[k]
            lo, hi = n_inputs * offsets[k], n_inputs * offsets[k + 1]
            zbar_k = zbar[lo:hi].reshape((n_inputs, n))
            slope_k = slope[lo:hi].reshape((n_inputs, n))
            shift_k = shift[lo:hi].reshape((n_inputs, n))
            inv_k = inv_scale[lo:hi].reshape((n_inputs, n))
            sd_k = sds[k]
            code, p0, p1, pre_k = codes[k], params[k, 0], params[k, 1], pre[k]
            g_mu_n, g_au_n = g_mu[:n], g_au[:n]
            for b in range(n_inputs):
                # views made once per input, not per realisation: a view costs reference
                # counting, and the accumulation only vectorises on plain 2-D rows
                zbar_b, slope_b, shift_b, inv_b = zbar_k[b], slope_k[b], shift_k[b], inv_k[b]
                acc_b = acc[block, b, column: column + fields * n].reshape((fields, n))
                row_acc_b = row_acc[block, b, k]
                zr = b
                for r in range(b, rows, n_inputs):
                    if k > 0:
                        zr = r
                    key = stream_key(seed_key, sample0 + start + r // n_inputs, b, k + 1)
                    _noisy_row(z, z_lin, zr, code, p0, p1, sd_k, pre_k, cv, key, zbar_b, slope_b, shift_b,
                               y, y_lin, r, f, g_mu_n, g_au_n, tail_index)
                    if accumulate:
                        _accumulate(y, y_lin, r, shift_b, inv_b, n, cv, pairs, acc_b, row_acc_b)
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
def _noisy_row(z, z_lin, zr, code, p0, p1, sd, pre, cv, key, zbar, slope, shift, y, y_lin, r, f, g_mu, g_au,
               tail_index):
    """One realisation of one layer: y[r] from the pre-activation z[zr] (and,
    with ``cv``, y_lin[r] of the linearised network from z_lin[zr], with the
    same draws); zbar, slope and shift are the working point of this input.

    Word 0 of the stream gives xi_MC and xi_AC, words 1.. the uncorrelated
    draws (see _fill_normals): with ``cv`` xi_MU (words 1..h) and xi_AU (the
    next h words, h = ceil(N / 2)) apart; without, the combined
    f xi_MU + xi_AU (or z xi_MU + xi_AU before the activation), one Gaussian
    per neuron.  ``f`` is a (1, N) scratch row.
    """
    n = g_mu.shape[0]
    d_au, d_mu = sd[0] * sd[0], sd[2] * sd[2]
    xi_mc, xi_ac = _normal_pair(key) if sd[3] > 0.0 or sd[1] > 0.0 else (0.0, 0.0)
    e_mc, e_ac = sd[3] * xi_mc, sd[1] * xi_ac
    if cv:
        _fill_normals(key, 1, g_mu, tail_index)
        _fill_normals(key, 1 + (n + 1) // 2, g_au, tail_index)
    elif d_mu > 0.0 or d_au > 0.0:
        _fill_normals(key, 1, g_mu, tail_index)
    else:
        g_mu[:] = 0.0
    if not pre:
        _activate(code, p0, p1, z, zr, f, 0, n)
        if cv:
            for i in range(n):
                gain = 1.0 + sd[2] * g_mu[i] + e_mc
                add = sd[0] * g_au[i] + e_ac
                y[r, i] = f[0, i] * gain + add
                y_lin[r, i] = (shift[i] + slope[i] * (z_lin[zr, i] - zbar[i])) * gain + add
        else:
            for i in range(n):
                y[r, i] = f[0, i] * (1.0 + e_mc) + e_ac + math.sqrt(f[0, i] * f[0, i] * d_mu + d_au) * g_mu[i]
    else:
        if cv:
            for i in range(n):
                gain = 1.0 + sd[2] * g_mu[i] + e_mc
                add = sd[0] * g_au[i] + e_ac
                f[0, i] = z[zr, i] * gain + add
                y_lin[r, i] = shift[i] + slope[i] * (z_lin[zr, i] * gain + add - zbar[i])
        else:
            for i in range(n):
                f[0, i] = z[zr, i] * (1.0 + e_mc) + e_ac + math.sqrt(z[zr, i] * z[zr, i] * d_mu + d_au) * g_mu[i]
        _activate(code, p0, p1, f, 0, y, r, n)


@njit(inline="always")
def _accumulate(y, y_lin, r, shift, inv, n, cv, pairs, acc, row_acc):
    """Add realisation r's sums (see NEURON_FIELDS, ROW_FIELDS): per-neuron
    sums into acc (fields, N), layer sums into row_acc (fields,).

    The element-wise sums and the sums over neurons are separate loops so
    that the first vectorises (a float reduction does not, without fastmath).
    """
    for i in range(n):
        d = (y[r, i] - shift[i]) * inv[i]
        d2 = d * d
        acc[0, i] += d
        acc[1, i] += d2
        acc[2, i] += d2 * d
        acc[3, i] += d2 * d2
    if cv:
        for i in range(n):
            d = (y[r, i] - shift[i]) * inv[i]
            e = (y_lin[r, i] - shift[i]) * inv[i]
            d2, e2 = d * d, e * e
            acc[4, i] += e
            acc[5, i] += e2
            acc[6, i] += (d - e) * (d - e)
            acc[7, i] += d2 - e2
            acc[8, i] += (d2 - e2) * (d2 - e2)
    s_a, q_a = _shifted_sums(y, r, shift, inv, n)
    s_e, q_e = _shifted_sums(y_lin, r, shift, inv, n) if cv else (0.0, 0.0)
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


@njit(inline="always")
def _shifted_sums(y, r, shift, inv, n):
    """sum_i d_i and sum_i d_i^2 with d = (y[r] - shift) inv, in four interleaved
    partial sums: a single running sum is a chain of dependent additions (4
    cycles each) that the compiler may not reorder, so it would not vectorise."""
    s0 = s1 = s2 = s3 = 0.0
    q0 = q1 = q2 = q3 = 0.0
    quads = n - n % 4
    for i in range(0, quads, 4):
        d0 = (y[r, i] - shift[i]) * inv[i]
        d1 = (y[r, i + 1] - shift[i + 1]) * inv[i + 1]
        d2 = (y[r, i + 2] - shift[i + 2]) * inv[i + 2]
        d3 = (y[r, i + 3] - shift[i + 3]) * inv[i + 3]
        s0 += d0
        s1 += d1
        s2 += d2
        s3 += d3
        q0 += d0 * d0
        q1 += d1 * d1
        q2 += d2 * d2
        q3 += d3 * d3
    for i in range(quads, n):
        d = (y[r, i] - shift[i]) * inv[i]
        s0 += d
        q0 += d * d
    return (s0 + s1) + (s2 + s3), (q0 + q1) + (q2 + q3)
