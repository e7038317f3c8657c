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
is one matrix-matrix product per step and tile (BLAS).  With
``single`` the product W dx of a dense reservoir is done in single
precision (sgemm, twice the speed of dgemm): its rounding error is relative
to the *noise* (about 1e-7 of dx), not to the signal, so it is far below the
Monte Carlo error at any noise level; everything else (the trajectory, the
activation, the leak, all sums) is double precision.  Sparse reservoirs are
multiplied in compressed-row form in double precision.

It reuses the feed-forward engine's pieces (:mod:`noiseprop.simulation._kernels`): the
counter-based random streams (``stream_key``: here keyed by (seed,
realisation, time step, 1 for the reservoir / 2 for the output)), the normal
draws (word 0: xi_MC, xi_AC; words 1..: one combined Gaussian per neuron for
f xi_MU + xi_AU, as the feed-forward kernel without control variate) and the
unscaled running sums ``_accumulate_unscaled`` (here of the deviations, i.e. centred on the
noise-free trajectory).  tanh is evaluated by a vectorised expm1 (below,
within 4 ulp of libm; 5x faster).  No generator state is carried between
realisations, and sums are kept per tile (a fixed block of realisations,
independent of the thread count) and added in a fixed order: the same seed
gives the same numbers with any number of threads.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..simulation._kernels import (
    _LN2_HI,
    _LN2_LO,
    _LOG2E,
    LINEAR,
    TANH,
    _accumulate_unscaled,
    _activate,
    _fill_normals,
    _normal_pair,
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
_TANH_ONE = 20.0  # tanh(20) = 1 - 8e-18 rounds to 1


@njit(inline="always")
def _tanh(x):
    """tanh(x) from expm1(-2|x|) = 2^k (1 + p(r)) - 1, r = -2|x| - k ln 2,
    |r| <= ln(2)/2, p(r) = expm1(r) by its Taylor series to r^13 (truncation
    < 1e-17): tanh|x| = -e / (e + 2) with e = expm1(-2|x|) in (-1, 0]; no
    cancellation near 0 (e = 2^0 p = p there).  Branch-free (vectorises)."""
    a = min(abs(x), _TANH_ONE)
    y = -2.0 * a
    k = np.floor(y * _LOG2E + 0.5)  # in [-58, 0]
    r = (y - k * _LN2_HI) - k * _LN2_LO
    c = _C
    p = c[13]
    p = p * r + c[12]
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
    p = p * r * r + r
    scale = _times_pow2(1.0, np.int64(k))  # 2^k
    e = scale * p + (scale - 1.0)
    t = -e / (e + 2.0)
    return t if x >= 0.0 else -t


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


@njit(inline="always")
def _draws(key, sd, g, tail):
    """(e_MC, e_AC) = sqrt(D) xi and g: one standard normal per neuron for the
    combined uncorrelated noise (zeros when there is none)."""
    xi_mc, xi_ac = _normal_pair(key) if sd[3] > 0.0 or sd[1] > 0.0 else (0.0, 0.0)
    if sd[0] > 0.0 or sd[2] > 0.0:
        _fill_normals(key, 1, g, tail)
    else:
        g[:] = 0.0
    return sd[3] * xi_mc, sd[1] * xi_ac


@njit(inline="always")
def _noisy(code, p0, p1, sd, pre, key, z, f, g, tail):
    """f[0] = the noisy activation of the pre-activation row z[0] (overwritten);
    g (N,) float64 and tail (N,) int64 are scratch."""
    d_au, d_mu = sd[0] * sd[0], sd[2] * sd[2]
    e_mc, e_ac = _draws(key, sd, g, tail)
    n = z.shape[1]
    if pre:
        for i in range(n):
            v = z[0, i]
            z[0, i] = v * (1.0 + e_mc) + e_ac + math.sqrt(v * v * d_mu + d_au) * g[i]
        _activation(code, p0, p1, z, f)
    else:
        _activation(code, p0, p1, z, f)
        for i in range(n):
            v = f[0, i]
            f[0, i] = v * (1.0 + e_mc) + e_ac + math.sqrt(v * v * d_mu + d_au) * g[i]


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
    W_t, W_t32, single, sparse, indptr, indices, values, W_in_t, W_in_t32, W_out_t, zbar, obar, n_drive, n_closed,
    leak, code, p0, p1, sd, pre, out_sd, seed_key, sample0, n_samples, tiles, record, acc_x, row_x, acc_y, row_y,
):
    """Run ``n_samples`` realisations through all time steps, with running sums.

    Parameters (validated by the caller)
    ------------------------------------
    W_t (N, N), W_in_t (N_in, N), W_out_t (N, N_out) : float64
        Transposed weights; W_t32, W_in_t32 : their float32 copies.
    single : bool
        Dense products of the deviations in single precision.
    sparse : bool; indptr (N + 1,), indices, values : W in compressed-row form
        With ``sparse`` the reservoir product uses them (double precision).
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
    zero_x, zero_y = np.zeros(n), np.zeros(n_out)
    total = n_drive + n_closed
    fields_x = acc_x.shape[2] // n
    fields_y = acc_y.shape[2] // n_out
    a, keep = leak, 1.0 - leak
    for tile in prange(tiles):
        start = tile * n_samples // tiles
        stop = (tile + 1) * n_samples // tiles
        rows = stop - start
        dx = np.zeros((rows, n))
        dx32 = np.zeros((rows, n), np.float32)
        dz = np.empty((rows, n))
        dz_t = np.empty((n if sparse else 0, rows))
        dx_t = np.zeros((n if sparse else 0, rows))  # sparse: realisations along rows
        dz32 = np.empty((rows, n), np.float32)
        dz_in32 = np.empty((rows, n), np.float32)
        dz_in = np.empty((rows, n))
        dy = np.zeros((rows, n_out))
        dy32 = np.zeros((rows, n_out), np.float32)
        do = np.empty((rows, n_out))
        z_row, f_row = np.empty((1, n)), np.empty((1, n))
        fbar = np.empty((1, n))  # F(z-bar_t), with the kernel's activation
        o_row, y_row = np.empty((1, n_out)), np.empty((1, n_out))
        g, g_out = np.empty(n), np.empty(n_out)
        tail = np.empty(max(n, n_out), np.int64)
        for t in range(total + 1):
            if t > 0:
                closed = t > n_drive
                _activation(code, p0, p1, zbar[t: t + 1], fbar)
                if sparse:
                    _sparse_product(dx_t, indptr, indices, values, dz_t)
                elif single:
                    np.dot(dx32, W_t32, dz32)
                else:
                    np.dot(dx, W_t, dz)
                if closed:
                    if single:
                        np.dot(dy32, W_in_t32, dz_in32)
                    else:
                        np.dot(dy, W_in_t, dz_in)
                for r in range(rows):
                    if sparse:
                        for i in range(n):
                            z_row[0, i] = zbar[t, i] + dz_t[i, r]
                    elif not single:
                        for i in range(n):
                            z_row[0, i] = zbar[t, i] + dz[r, i]
                    else:
                        for i in range(n):
                            z_row[0, i] = zbar[t, i] + dz32[r, i]
                    if closed:
                        if single:
                            for i in range(n):
                                z_row[0, i] += dz_in32[r, i]
                        else:
                            for i in range(n):
                                z_row[0, i] += dz_in[r, i]
                    key = stream_key(seed_key, sample0 + start + r, t, RESERVOIR_STREAM)
                    _noisy(code, p0, p1, sd, pre, key, z_row, f_row, g, tail)
                    for i in range(n):
                        v = keep * dx[r, i] + a * (f_row[0, i] - fbar[0, i])
                        dx[r, i] = v
                        dx32[r, i] = v
                    if sparse:
                        for i in range(n):
                            dx_t[i, r] = dx[r, i]
            slot = record[t]
            if slot >= 0 or t >= n_drive:  # the output is recorded or fed back next step
                np.dot(dx, W_out_t, do)
                for r in range(rows):
                    for j in range(n_out):
                        o_row[0, j] = obar[t, j] + do[r, j]
                    key = stream_key(seed_key, sample0 + start + r, t, OUTPUT_STREAM)
                    _noisy(LINEAR, 1.0, 0.0, out_sd, False, key, o_row, y_row, g_out, tail)
                    for j in range(n_out):
                        v = y_row[0, j] - obar[t, j]
                        dy[r, j] = v
                        dy32[r, j] = v
            if slot >= 0:
                acc_x_k = acc_x[tile, slot].reshape((fields_x, n))
                acc_y_k = acc_y[tile, slot].reshape((fields_y, n_out))
                row_x_k, row_y_k = row_x[tile, slot], row_y[tile, slot]
                for r in range(rows):
                    _accumulate_unscaled(dx, r, zero_x, n, acc_x_k, row_x_k)
                    _accumulate_unscaled(dy, r, zero_y, n_out, acc_y_k, row_y_k)
