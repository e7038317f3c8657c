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
the addition formula tanh(a + d) - tanh(a) = tanh(d) sech^2(a) / (1 + tanh(a)
tanh(d)) with a float32 tanh of the small deviation d (rows with a deviation
beyond |d| = 1 take F(z-bar + dz) - F(z-bar) in double precision).  The
noise-free trajectory, F(z-bar), sech^2 and all sums are double precision.

It reuses the feed-forward engine's pieces (:mod:`noiseprop.simulation._kernels`): the
counter-based random streams (``stream_key``: here keyed by (seed,
realisation, time step, 1 for the reservoir / 2 for the output)), the normal
draws (word 0: xi_MC, xi_AC; words 1..: one combined Gaussian per neuron for
f xi_MU + xi_AU, as the feed-forward kernel without control variate) and the
unscaled running sums ``_accumulate_unscaled`` (here of the deviations, i.e. centred on the
noise-free trajectory).  The double-precision tanh is evaluated by a
vectorised expm1 (below, within 4 ulp of libm; 5x faster).  No generator state is carried between
realisations, and sums are kept per tile (a fixed block of realisations,
independent of the thread count) and added in a fixed order: the same seed
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
    SIGMOID,
    TANH,
    _accumulate_unscaled,
    _activate,
    _fill_normals,
    _ln2_split,
    _normal_pair,
    _real,
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
    # float64 to r^13 (truncation < 1e-17), float32 to r^7 (below 1e-8 relative)
    c = _C32 if r.bitwidth == 32 else _C
    last = len(c) - 1

    def impl(r):
        p = c[last]
        for j in range(last - 1, 1, -1):  # constant trip count: unrolled, as written out by hand
            p = p * r + c[j]
        return p * r * r + r

    return impl


@njit(inline="always")
def _tanh(x):
    """tanh(x) in x's type (float64 within 4 ulp of libm; float32 a few ulp) from
    expm1(-2|x|) = 2^k (1 + p(r)) - 1, r = -2|x| - k ln 2, |r| <= ln(2)/2, p(r) =
    expm1(r) by its Taylor series: tanh|x| = -e / (e + 2) with e = expm1(-2|x|) in
    (-1, 0]; no cancellation near 0 (e = 2^0 p = p there).  Branch-free (vectorises)."""
    a = min(abs(x), _real(_TANH_ONE, x))
    y = _real(-2.0, x) * a
    k = np.floor(y * _real(_LOG2E, x) + _real(0.5, x))  # in [-58, 0]
    hi, lo = _ln2_split(x)
    r = (y - k * hi) - k * lo
    p = _expm1_series(r)
    one = _real(1.0, x)
    scale = _times_pow2(one, np.int32(k))  # 2^k (int32: the conversion vectorises, int64 does not on AVX2)
    e = scale * p + (scale - one)
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


# The deviation formula below takes the float32 _tanh of a small argument.
_SMALL = 1.0  # largest |c b| for the deviation formula (cancellation in its denominator <= 4x)
_F32 = np.float32


@njit(inline="always")
def _tanh_like(code, p0):
    """(c_in, c_out) with F(z) = c_out tanh(c_in z) + const for tanh and sigmoid, else (0, 0)."""
    if code == TANH_CODE:
        return p0, 1.0
    if code == SIGMOID:  # 1 / (1 + exp(-p0 z)) = (1 + tanh(p0 z / 2)) / 2
        return 0.5 * p0, 0.5
    return 0.0, 0.0


@njit(inline="always")
def _step_constants(code, p0, p1, zbar_t, fbar, zbar_r, fbar_r, ta, s2):
    """Per step (the same for every realisation): fbar (1, N) = F(z-bar_t) in float64,
    z-bar and F(z-bar) in the state's type, and for tanh-like F the tanh t_a = tanh(c z-bar)
    and sech^2(c z-bar) of the deviation formula (from e = exp(-2 c |z-bar|): no
    cancellation near saturation)."""
    _activation(code, p0, p1, zbar_t, fbar)
    c_in, _ = _tanh_like(code, p0)
    for i in range(zbar_t.shape[1]):
        zbar_r[i] = zbar_t[0, i]
        fbar_r[i] = fbar[0, i]
        x = c_in * zbar_t[0, i]
        e = math.exp(-2.0 * abs(x))
        t = (1.0 - e) / (1.0 + e)
        ta[i] = t if x >= 0.0 else -t
        s2[i] = 4.0 * e / ((1.0 + e) * (1.0 + e))


@njit(inline="always")
def _activation_deviation(code, p0, p1, single, zbar_t, fbar, ta, s2, b, delta, z_row, f_row):
    """delta = F(z-bar + b) - F(z-bar) for one realisation (b, delta: (N,) in the state's type).

    Linear F: p0 b.  Single precision, tanh-like F = c_out tanh(c z) + const and
    |c b| <= _SMALL everywhere in the row: the addition formula
    tanh(a + d) - tanh(a) = tanh(d) sech^2(a) / (1 + tanh(a) tanh(d)), with tanh(d) of the
    small deviation d = c b in float32: its rounding is relative to the deviation (about
    1e-7), not to F.  Otherwise F(z-bar + b) - F(z-bar) in double precision.
    """
    n = b.shape[0]
    if code == LINEAR:
        for i in range(n):
            delta[i] = p0 * b[i]
        return
    c_in, c_out = _tanh_like(code, p0)
    if single and c_in != 0.0:
        c, scale = _F32(c_in), _F32(c_out)
        large = 0
        for i in range(n):
            large += abs(c * b[i]) > _F32(_SMALL)
        if large == 0:
            for i in range(n):
                tb = _tanh(_F32(c * b[i]))
                delta[i] = scale * tb * s2[i] / (_F32(1.0) + ta[i] * tb)
            return
    for i in range(n):
        z_row[0, i] = zbar_t[0, i] + b[i]
    _activation(code, p0, p1, z_row, f_row)
    for i in range(n):
        delta[i] = f_row[0, i] - fbar[0, i]


@njit(inline="always")
def _reservoir_row(code, p0, p1, single, sd, pre, key, zbar_t, fbar, zbar_r, fbar_r, ta, s2, dz, dz_in, closed,
                   r, keep, a, dx, b, delta, g, tail, z_row, f_row):
    """dx[r] = (1 - a) dx[r] + a (noisy F - F(z-bar)) for realisation r, from the
    deviation of its pre-activation dz[r] (+ dz_in[r] in self-closed steps).

    Everything is a deviation from the noise-free trajectory: post placement,
    F(z) (1 + e_MC) + e_AC + sqrt(F^2 D_MU + D_AU) g - F(z-bar) = delta (1 + e_MC)
    + F(z-bar) e_MC + e_AC + sqrt(...) g with delta = F(z) - F(z-bar); pre placement,
    the deviation of the noisy pre-activation is b = dz (1 + e_MC) + z-bar e_MC + e_AC
    + sqrt(z^2 D_MU + D_AU) g.  So the arithmetic in the state's type rounds relative to
    the noise, never to the signal.
    """
    n = b.shape[0]
    d_au, d_mu = sd[0] * sd[0], sd[2] * sd[2]
    e_mc64, e_ac64 = _normal_pair(key) if sd[3] > 0.0 or sd[1] > 0.0 else (0.0, 0.0)
    if sd[0] > 0.0 or sd[2] > 0.0:
        _fill_normals(key, 1, g, tail)
    else:
        g[:] = 0.0
    one = _real(1.0, b)
    e_mc, e_ac = _real(sd[3] * e_mc64, b), _real(sd[1] * e_ac64, b)
    v_au, v_mu = _real(d_au, b), _real(d_mu, b)
    for i in range(n):
        b[i] = dz[r, i]
    if closed:
        for i in range(n):
            b[i] += dz_in[r, i]
    if pre:
        for i in range(n):
            d = b[i]
            z = zbar_r[i] + d
            b[i] = d * (one + e_mc) + zbar_r[i] * e_mc + e_ac + math.sqrt(z * z * v_mu + v_au) * g[i]
    _activation_deviation(code, p0, p1, single, zbar_t, fbar, ta, s2, b, delta, z_row, f_row)
    if pre:
        for i in range(n):
            dx[r, i] = keep * dx[r, i] + a * delta[i]
    else:
        for i in range(n):
            d = delta[i]
            f = fbar_r[i] + d
            dev = d * (one + e_mc) + fbar_r[i] * e_mc + e_ac + math.sqrt(f * f * v_mu + v_au) * g[i]
            dx[r, i] = keep * dx[r, i] + a * dev


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
    zero_x, zero_y = np.zeros(n), np.zeros(n_out)
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
        zbar_r, fbar_r, ta, s2 = np.empty(n, real), np.empty(n, real), np.empty(n, real), np.empty(n, real)
        z_row, f_row = np.empty((1, n)), np.empty((1, n))
        fbar = np.empty((1, n))  # F(z-bar_t), with the kernel's activation
        o_row, y_row = np.empty((1, n_out)), np.empty((1, n_out))
        g_out = np.empty(n_out)
        tail = np.empty(max(n, n_out), np.int64)
        for t in range(total + 1):
            if t > 0:
                closed = t > n_drive
                zbar_t = zbar[t: t + 1]
                _step_constants(code, p0, p1, zbar_t, fbar, zbar_r, fbar_r, ta, s2)
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
                    _reservoir_row(code, p0, p1, single, sd, pre, key, zbar_t, fbar, zbar_r, fbar_r, ta, s2, dz,
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
                acc_x_k = acc_x[tile, slot].reshape((fields_x, n))
                acc_y_k = acc_y[tile, slot].reshape((fields_y, n_out))
                row_x_k, row_y_k = row_x[tile, slot], row_y[tile, slot]
                for r in range(rows):
                    _accumulate_unscaled(dx, r, zero_x, n, acc_x_k, row_x_k)
                    _accumulate_unscaled(dy, r, zero_y, n_out, acc_y_k, row_y_k)


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
