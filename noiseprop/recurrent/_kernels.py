"""Compiled (numba) kernel of the recurrent Monte Carlo simulation.

**No checking here**: shapes, dtypes and codes are validated by
:func:`noiseprop.recurrent.simulation.simulate`.

The kernel propagates the *deviations* of every realisation from the
noise-free trajectory (x-bar_t, z-bar_t = W x-bar_{t-1} + W_in u-bar_t + b,
o-bar_t = W_out x-bar_t + b_out, computed once by the caller):

    dz_t = W dx_{t-1} + W_in dy_{t-1}      (the second term in self-closed steps)
    f_t  = noisy F at z-bar_t + dz_t       (both placements, all four noise types)
    dx_t = (1 - a) dx_{t-1} + a (f_t - F(z-bar_t))
    dy_t = noisy output at o-bar_t + W_out dx_t, minus o-bar_t

Realisations are processed in tiles (blocks of rows), so that the recurrence
is one matrix-matrix product per step and tile (BLAS; sparse reservoirs in
compressed-row form, realisations along the vectorised inner loop).  The
deviations (the state dx, the products, the noise and the activation
deviation) are kept in the type of the weights: float32 with
``precision="mixed"`` (sgemm, twice the speed of dgemm, and eight lanes per
vector instead of four), float64 with ``"double"``.  Everything is written
as a deviation so that single precision rounds relative to the *noise*
(about 1e-7 of dx), never to the signal: the noisy post-activation minus
F(z-bar) is delta (1 + e_MC) + F(z-bar) e_MC + e_AC + sqrt(F^2 D_MU + D_AU) g
with delta = F(z-bar + dz) - F(z-bar); for tanh and sigmoid, delta comes from
the addition formula tanh(a + d) - tanh(a) = sech^2(a) E / (2 + (1 + tanh(a)) E)
with E = expm1(2 d) in float32 for the small deviation d (rows with a deviation
beyond |d| = 1 take F(z-bar + dz) - F(z-bar) in double precision), in one pass
over the row with the noise and the leak.  The noise-free trajectory, F(z-bar),
sech^2 and all sums are double precision.

It reuses the feed-forward engine's pieces (:mod:`noiseprop.simulation._kernels`): the
counter-based random streams (``stream_key``: here keyed by (seed,
realisation, time step, 1 for the reservoir / 2 for the output)), the normal
draws (word 0: xi_MC, xi_AC; words 1..: one combined Gaussian per neuron for
f xi_MU + xi_AU, as the feed-forward kernel without control variate) and the
fields of its unscaled running sums (``NEURON_FIELDS[False]``,
``ROW_FIELDS[False]``; here of the deviations, i.e. centred on the noise-free
trajectory), added per tile by :func:`_accumulate_tile`.  The double-precision
tanh is evaluated by a vectorised expm1 (below, within 4 ulp of libm; 5x
faster).  No generator state is carried between realisations, and sums are
kept per tile (a fixed block of realisations, independent of the thread count)
and added in a fixed order: the same seed
gives the same numbers with any number of threads.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numba.extending import overload

from ..simulation._kernels import (
    _LOG2E,
    LINEAR,
    N_D1,
    N_D2,
    N_D3,
    N_D4,
    SIGMOID,
    TANH,
    _activate,
    _add_row_sums,
    _fill_normals,
    _fma,
    _ln2_split,
    _normal_pair,
    _real,
    _row_sums,
    _times_pow2,
    stream_key,
)

__all__ = ["simulate_chunk", "tanh", "RESERVOIR_STREAM", "OUTPUT_STREAM", "TANH_CODE"]

#: Stream ("layer") numbers of the reservoir and the output noise.
RESERVOIR_STREAM, OUTPUT_STREAM = 1, 2
#: Activation code of tanh (noiseprop.simulation._kernels.ACTIVATION_CODES).
TANH_CODE = TANH

# expm1 needs one Taylor term more than exp's table (it keeps r^13 where exp stops at r^12).
_C = tuple(1.0 / math.factorial(k) for k in range(14))
_C32 = tuple(np.float32(1.0 / math.factorial(k)) for k in range(8))  # float32 expm1: to r^7
_TANH_ONE = 20.0  # tanh(20) = 1 - 8e-18 rounds to 1


def _expm1_series(r):
    """expm1(r) for |r| <= ln(2)/2 by its Taylor series, to the precision of r's type."""
    return math.expm1(r)


@overload(_expm1_series, jit_options={"forceinline": True})
def _expm1_series_overload(r):
    # float64 to r^13 (truncation < 1e-17), float32 to r^7 (below 1e-8 relative); float32
    # in fused multiply-adds, as the feed-forward engine's float32 exp series
    if r.bitwidth == 32:
        c32 = _C32

        def single(r):
            p = c32[7]
            for j in range(6, 1, -1):  # constant trip count: unrolled
                p = _fma(p, r, c32[j])
            return _fma(p * r, r, r)

        return single
    c = _C
    last = len(c) - 1

    def double(r):
        p = c[last]
        for j in range(last - 1, 1, -1):  # constant trip count: unrolled, as written out by hand
            p = p * r + c[j]
        return p * r * r + r

    return double


@njit(inline="always")
def _expm1(y):
    """expm1(y) in y's type for y in [-40, 2] (float64 within a few ulp; float32 a few ulp)
    as 2^k (1 + p(r)) - 1, r = y - k ln 2, |r| <= ln(2)/2, p(r) = expm1(r) by its Taylor
    series: no cancellation near 0 (k = 0 there).  Branch-free (vectorises)."""
    k = np.floor(y * _real(_LOG2E, y) + _real(0.5, y))  # in [-58, 3]
    hi, lo = _ln2_split(y)
    r = (y - k * hi) - k * lo
    p = _expm1_series(r)
    one = _real(1.0, y)
    scale = _times_pow2(one, np.int32(k))  # 2^k (int32: the conversion vectorises, int64 does not on AVX2)
    return scale * p + (scale - one)


@njit(inline="always")
def _tanh(x):
    """tanh(x) in x's type (float64 within 4 ulp of libm; float32 a few ulp):
    tanh|x| = -e / (e + 2) with e = expm1(-2|x|) in (-1, 0].  Branch-free (vectorises)."""
    a = min(abs(x), _real(_TANH_ONE, x))
    e = _expm1(_real(-2.0, x) * a)
    t = -e / (e + _real(2.0, x))
    return t if x >= _real(0.0, x) else -t


@njit(cache=True, error_model="numpy")
def tanh(x):
    """The kernel's tanh of an array (for the tests)."""
    out = np.empty_like(x)
    for i in range(x.size):
        out.flat[i] = _tanh(x.flat[i])
    return out


@njit(inline="always")
def _activation(code, p0, p1, z, out):
    """out[0] = F(z[0]) for a (1, N) row; tanh by :func:`_tanh`."""
    if code == TANH_CODE:
        for i in range(z.shape[1]):
            out[0, i] = _tanh(p0 * z[0, i])
    else:
        _activate(code, p0, p1, z, 0, out, 0, z.shape[1])


# The deviation formula below takes the float32 expm1 of a small argument.
_SMALL = 1.0  # largest |c b| for the deviation formula (cancellation in its denominator <= 8x)


@njit(inline="always")
def _tanh_like(code, p0):
    """(c_in, c_out) with F(z) = c_out tanh(c_in z) + const for tanh and sigmoid, else (0, 0)."""
    if code == TANH_CODE:
        return p0, 1.0
    if code == SIGMOID:  # 1 / (1 + exp(-p0 z)) = (1 + tanh(p0 z / 2)) / 2
        return 0.5 * p0, 0.5
    return 0.0, 0.0


@njit(inline="always")
def _step_constants(code, p0, p1, zbar_t, fbar, zbar_r, fbar_r, tp, s2):
    """Per step (the same for every realisation): fbar (1, N) = F(z-bar_t) in float64,
    z-bar and F(z-bar) in the state's type, and for tanh-like F = c_out tanh(c z) + const
    the constants of the deviation formula, 1 + tanh(c z-bar) and c_out sech^2(c z-bar)
    (from e = exp(-2 c |z-bar|): no cancellation near saturation)."""
    _activation(code, p0, p1, zbar_t, fbar)
    c_in, c_out = _tanh_like(code, p0)
    for i in range(zbar_t.shape[1]):
        zbar_r[i] = zbar_t[0, i]
        fbar_r[i] = fbar[0, i]
        x = c_in * zbar_t[0, i]
        e = math.exp(-2.0 * abs(x))
        tp[i] = 2.0 / (1.0 + e) if x >= 0.0 else 2.0 * e / (1.0 + e)
        s2[i] = c_out * 4.0 * e / ((1.0 + e) * (1.0 + e))


@njit(error_model="numpy", fastmath={"reassoc"})
def _count_beyond(b, c, bound):
    """How many |c b[i]| exceed ``bound``, counted in b's floating type (exact below 2^24):
    reassociation lets the compiler add eight lanes at a time, where an integer counter
    (64-bit in numba) would halve the vector width of the loop around it."""
    count = _real(0.0, b)
    for i in range(b.shape[0]):
        count += _real(1.0, b) if abs(c * b[i]) > bound else _real(0.0, b)
    return count


@njit(inline="always")
def _small_deviation(c2, tp, s2, d):
    """F(z-bar + d) - F(z-bar) in d's type (float32: used only there) for tanh-like F = c_out tanh(c z) + const and
    |c d| <= _SMALL, with c2 = 2 c, tp = 1 + tanh(c z-bar), s2 = c_out sech^2(c z-bar):
    with a = c z-bar, x = c d and E = expm1(2 x),
    tanh(a + x) - tanh(a) = sech^2(a) tanh(x) / (1 + tanh(a) tanh(x))
    = sech^2(a) E / (2 + (1 + tanh(a)) E)  (tanh(x) = E / (E + 2)): E's rounding is
    relative to the deviation (about 1e-7), not to F, and there is one division."""
    e = _expm1(c2 * d)
    return s2 * e / _fma(tp, e, _real(2.0, e))


@njit(inline="always")
def _activation_deviation(code, p0, p1, zbar_t, fbar, b, delta, z_row, f_row):
    """delta = F(z-bar + b) - F(z-bar) for one realisation (b, delta: (N,) in the state's
    type): p0 b for linear F, else F(z-bar + b) - F(z-bar) in double precision."""
    n = b.shape[0]
    if code == LINEAR:
        for i in range(n):
            delta[i] = p0 * b[i]
        return
    for i in range(n):
        z_row[0, i] = zbar_t[0, i] + b[i]
    _activation(code, p0, p1, z_row, f_row)
    for i in range(n):
        delta[i] = f_row[0, i] - fbar[0, i]


@njit(inline="always")
def _noisy_deviation(d, f_bar, one_mc, e_mc, e_ac, v_mu, v_au, g):
    """The deviation of the noisy value F (1 + e_MC) + e_AC + sqrt(F^2 D_MU + D_AU) g from
    F-bar, given the noise-free deviation d = F - F-bar (one_mc = 1 + e_MC): written as
    d (1 + e_MC) + F-bar e_MC + e_AC + sqrt(...) g, so that it rounds relative to the
    noise, never to the signal."""
    f = f_bar + d
    return d * one_mc + f_bar * e_mc + e_ac + math.sqrt(f * f * v_mu + v_au) * g


@njit(inline="always")
def _reservoir_row(code, p0, p1, single, sd, pre, key, zbar_t, fbar, zbar_r, fbar_r, tp, s2, dz, dz_in, closed,
                   r, keep, a, dx, b, delta, g, tail, z_row, f_row):
    """dx[r] = (1 - a) dx[r] + a (noisy F - F(z-bar)) for realisation r, from the
    deviation of its pre-activation dz[r] (+ dz_in[r] in self-closed steps).

    Everything is a deviation from the noise-free trajectory (:func:`_noisy_deviation`):
    post placement, the noise acts on delta = F(z) - F(z-bar); pre placement, the
    deviation of the noisy pre-activation is b = dz (1 + e_MC) + z-bar e_MC + e_AC
    + sqrt(z^2 D_MU + D_AU) g.  In single precision with tanh-like F and |c b| <= _SMALL
    in the whole row, delta (:func:`_small_deviation`), the noise and the leak are one
    pass over the row; otherwise delta comes from :func:`_activation_deviation` first.
    """
    n = b.shape[0]
    e_mc64, e_ac64 = _normal_pair(key) if sd[3] > 0.0 or sd[1] > 0.0 else (0.0, 0.0)
    if sd[0] > 0.0 or sd[2] > 0.0:
        _fill_normals(key, 1, g, tail)
    else:
        g[:] = 0.0
    e_mc, e_ac = _real(sd[3] * e_mc64, b), _real(sd[1] * e_ac64, b)
    one_mc = _real(1.0, b) + e_mc
    v_au, v_mu = _real(sd[0] * sd[0], b), _real(sd[2] * sd[2], b)
    src = dz[r]
    if closed or pre:
        for i in range(n):
            b[i] = dz[r, i]
        if closed:
            for i in range(n):
                b[i] += dz_in[r, i]
        if pre:
            for i in range(n):
                b[i] = _noisy_deviation(b[i], zbar_r[i], one_mc, e_mc, e_ac, v_mu, v_au, g[i])
        src = b
    c_in, _ = _tanh_like(code, p0)
    if single and c_in != 0.0 and _count_beyond(src, _real(c_in, b), _real(_SMALL, b)) == 0:
        c2 = _real(2.0 * c_in, b)
        if pre:
            for i in range(n):
                dx[r, i] = keep * dx[r, i] + a * _small_deviation(c2, tp[i], s2[i], src[i])
        else:
            for i in range(n):
                d = _small_deviation(c2, tp[i], s2[i], src[i])
                dx[r, i] = keep * dx[r, i] + a * _noisy_deviation(d, fbar_r[i], one_mc, e_mc, e_ac, v_mu, v_au, g[i])
        return
    _activation_deviation(code, p0, p1, zbar_t, fbar, src, delta, z_row, f_row)
    if pre:
        for i in range(n):
            dx[r, i] = keep * dx[r, i] + a * delta[i]
    else:
        for i in range(n):
            dx[r, i] = keep * dx[r, i] + a * _noisy_deviation(delta[i], fbar_r[i], one_mc, e_mc, e_ac, v_mu, v_au, g[i])


@njit(inline="always")
def _transpose(src, dst):
    """dst = src.T in 16 x 16 blocks (both stay in cache)."""
    rows, cols = src.shape
    for r0 in range(0, rows, 16):
        r1 = min(r0 + 16, rows)
        for c0 in range(0, cols, 16):
            c1 = min(c0 + 16, cols)
            for c in range(c0, c1):
                for r in range(r0, r1):
                    dst[c, r] = src[r, c]


@njit(inline="always")
def _sparse_product(x_t, indptr, indices, values, z_t):
    """z_t[:, r] = W x_t[:, r] for every realisation r, W in compressed-row form
    and the realisations along the rows of x_t (N, rows), z_t: the inner loop
    runs over realisations and vectorises."""
    for i in range(z_t.shape[0]):
        for r in range(z_t.shape[1]):
            z_t[i, r] = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            v, j = values[k], indices[k]
            for r in range(z_t.shape[1]):
                z_t[i, r] += v * x_t[j, r]


@njit(inline="always")
def _accumulate_tile(d, rows, acc, row_acc):
    """Add the running sums (float64; ``NEURON_FIELDS[False]``, ``ROW_FIELDS[False]`` of
    noiseprop.simulation._kernels) of the deviations d[r] of the realisations r < rows:
    per neuron sum_r d^k (k = 1..4) into acc (4, N), per realisation s = sum_i d_i and
    q = sum_i d_i^2 into row_acc (6,).  Four realisations at a time: their powers are
    added in registers, so each of acc's sums is read and written once per four."""
    n = d.shape[1]
    quads = rows - rows % 4
    for r in range(0, quads, 4):
        for i in range(n):
            d0, d1, d2, d3 = np.float64(d[r, i]), np.float64(d[r + 1, i]), np.float64(d[r + 2, i]), np.float64(d[r + 3, i])
            q0, q1, q2, q3 = d0 * d0, d1 * d1, d2 * d2, d3 * d3
            acc[N_D1, i] += (d0 + d1) + (d2 + d3)
            acc[N_D2, i] += (q0 + q1) + (q2 + q3)
            acc[N_D3, i] += (q0 * d0 + q1 * d1) + (q2 * d2 + q3 * d3)
            acc[N_D4, i] += (q0 * q0 + q1 * q1) + (q2 * q2 + q3 * q3)
    for r in range(quads, rows):
        for i in range(n):
            d0 = np.float64(d[r, i])
            q0 = d0 * d0
            acc[N_D1, i] += d0
            acc[N_D2, i] += q0
            acc[N_D3, i] += q0 * d0
            acc[N_D4, i] += q0 * q0
    pairs = n * (n - 1)
    for r in range(rows):
        _add_row_sums(*_row_sums(d, r, n), pairs, row_acc)


@njit(parallel=True, cache=True, error_model="numpy")
def simulate_chunk(
    W_t, single, sparse, indptr, indices, values, W_in_t, W_out_t, zbar, obar, n_drive, n_closed,
    leak, code, p0, p1, sd, pre, out_sd, seed_key, sample0, n_samples, tiles, record, acc_x, row_x, acc_y, row_y,
):
    """Run ``n_samples`` realisations through all time steps, with running sums.

    Parameters (validated by the caller)
    ------------------------------------
    W_t (N, N), W_in_t (N_in, N), W_out_t (N, N_out) : float32 or float64
        Transposed weights, all of one type: the type of the deviations (the
        state), the products and the per-neuron arithmetic (sums are float64).
    single : bool
        The weights are float32 (``precision="mixed"``).
    sparse : bool; indptr (N + 1,), indices, values (type of W_t) : W in compressed-row form
        With ``sparse`` the reservoir product uses them.
    zbar (T + 1, N), obar (T + 1, N_out) : float64
        Noise-free pre-activations (row 0 unused) and outputs.
    n_drive, n_closed : int
        Driven steps t = 1..n_drive, then self-closed steps (u_t = y_{t-1}).
    leak : float
    code, p0, p1 : activation code and parameters (``ACTIVATION_CODES``; checked
        by ``check_codes`` at set-up).
    sd, out_sd : float64 (4,)
        sqrt(D) of AU, AC, MU, MC for the reservoir and the output.
    pre : bool
        Reservoir noise before the activation.
    seed_key : uint64; sample0 : global index of the chunk's first realisation.
    tiles : int
        Blocks of realisations, one per parallel task.
    record : int64 (T + 1,)
        Slot of step t in the sums, or -1 when not recorded.
    acc_x (tiles, K, 4 N), row_x (tiles, K, 6), acc_y, row_y : float64, zeroed
        Sums of the deviations from the noise-free trajectory (see
        ``noiseprop.simulation._kernels.NEURON_FIELDS``).
    """
    n = W_t.shape[0]
    n_out = W_out_t.shape[1]
    real = W_t.dtype
    total = n_drive + n_closed
    fields_x = acc_x.shape[2] // n
    fields_y = acc_y.shape[2] // n_out
    a, keep = _real(leak, W_t), _real(1.0 - leak, W_t)
    for tile in prange(tiles):
        start = tile * n_samples // tiles
        stop = (tile + 1) * n_samples // tiles
        rows = stop - start
        dx = np.zeros((rows, n), real)
        dz = np.empty((rows, n), real)
        dz_in = np.empty((rows if n_closed > 0 else 0, n), real)
        dx_t = np.empty((n if sparse else 0, rows), real)  # sparse: realisations along rows
        dz_t = np.empty((n if sparse else 0, rows), real)
        dy = np.zeros((rows, n_out), real)
        do = np.empty((rows, n_out), real)
        b, delta, g = np.empty(n, real), np.empty(n, real), np.empty(n, real)
        zbar_r, fbar_r, tp, s2 = np.empty(n, real), np.empty(n, real), np.empty(n, real), np.empty(n, real)
        z_row, f_row = np.empty((1, n)), np.empty((1, n))
        fbar = np.empty((1, n))  # F(z-bar_t), with the kernel's activation
        o_row, y_row = np.empty((1, n_out)), np.empty((1, n_out))
        g_out = np.empty(n_out)
        tail = np.empty(max(n, n_out), np.int64)
        for t in range(total + 1):
            if t > 0:
                closed = t > n_drive
                zbar_t = zbar[t: t + 1]
                _step_constants(code, p0, p1, zbar_t, fbar, zbar_r, fbar_r, tp, s2)
                if sparse:
                    _transpose(dx, dx_t)
                    _sparse_product(dx_t, indptr, indices, values, dz_t)
                    _transpose(dz_t, dz)
                else:
                    np.dot(dx, W_t, dz)
                if closed:
                    np.dot(dy, W_in_t, dz_in)
                for r in range(rows):
                    key = stream_key(seed_key, sample0 + start + r, t, RESERVOIR_STREAM)
                    _reservoir_row(code, p0, p1, single, sd, pre, key, zbar_t, fbar, zbar_r, fbar_r, tp, s2, dz,
                                   dz_in, closed, r, keep, a, dx, b, delta, g, tail, z_row, f_row)
            slot = record[t]
            if slot >= 0 or t >= n_drive:  # the output is recorded or fed back next step
                np.dot(dx, W_out_t, do)
                for r in range(rows):
                    for j in range(n_out):
                        o_row[0, j] = obar[t, j] + do[r, j]
                    key = stream_key(seed_key, sample0 + start + r, t, OUTPUT_STREAM)
                    _noisy_output(out_sd, key, o_row, y_row, g_out, tail)
                    for j in range(n_out):
                        dy[r, j] = y_row[0, j] - obar[t, j]
            if slot >= 0:
                _accumulate_tile(dx, rows, acc_x[tile, slot].reshape((fields_x, n)), row_x[tile, slot])
                _accumulate_tile(dy, rows, acc_y[tile, slot].reshape((fields_y, n_out)), row_y[tile, slot])


@njit(inline="always")
def _noisy_output(sd, key, o, y, g, tail):
    """y[0] = the noisy output of the row o[0] (linear neurons, post placement), float64."""
    d_au, d_mu = sd[0] * sd[0], sd[2] * sd[2]
    xi_mc, xi_ac = _normal_pair(key) if sd[3] > 0.0 or sd[1] > 0.0 else (0.0, 0.0)
    if sd[0] > 0.0 or sd[2] > 0.0:
        _fill_normals(key, 1, g, tail)
    else:
        g[:] = 0.0
    e_mc, e_ac = sd[3] * xi_mc, sd[1] * xi_ac
    for j in range(o.shape[1]):
        v = o[0, j]
        y[0, j] = v * (1.0 + e_mc) + e_ac + math.sqrt(v * v * d_mu + d_au) * g[j]
