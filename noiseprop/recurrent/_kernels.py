"""Compiled (numba) kernel of the recurrent Monte Carlo simulation.

**No checking here**: shapes, dtypes and codes are validated by
:func:`noiseprop.recurrent.simulation.simulate`.

It reuses the feed-forward engine's pieces (:mod:`noiseprop.simulation._kernels`): the
counter-based random streams (``stream_key``: here keyed by (seed,
realisation, time step, 1 for the reservoir / 2 for the output)), the noisy
neuron update ``_noisy_row`` (both placements, all four noise types, one
combined Gaussian for f xi_MU + xi_AU) and the unscaled running sums
``_accumulate_unscaled``.
No generator state is carried between realisations, and sums are kept per
tile (a fixed block of realisations, independent of the thread count) and
added in a fixed order: the same seed gives the same numbers with any number
of threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..simulation._kernels import LINEAR, _accumulate_unscaled, _affine, _noisy_row, stream_key

__all__ = ["simulate_chunk", "RESERVOIR_STREAM", "OUTPUT_STREAM"]

#: Stream ("layer") numbers of the reservoir and the output noise.
RESERVOIR_STREAM, OUTPUT_STREAM = 1, 2


@njit(parallel=True, cache=True, error_model="numpy")
def simulate_chunk(
    W_t, sparse, indptr, indices, values, W_in_t, W_out_t, bias, out_bias, drive, n_closed, leak, code, p0, p1, sd, pre, out_sd, x0,
    seed_key, sample0, n_samples, tiles, record, shift_x, shift_y, acc_x, row_x, acc_y, row_y, out_x,
):
    """Run ``n_samples`` realisations through all time steps, with running sums.

    Parameters (validated by the caller)
    ------------------------------------
    W_t (N, N), W_in_t (N_in, N), W_out_t (N, N_out) : float64
        Transposed weights.
    sparse : bool; indptr (N + 1,), indices, values : W in compressed-row form
        With ``sparse`` the reservoir product W x uses them instead of W_t
        (BLAS): cheaper for the sparse reservoirs of echo state networks.
    bias (N,), out_bias (N_out,) : float64
    drive : float64 (T_drive, N)
        W_in u_t + b of the driven steps t = 1..T_drive.
    n_closed : int
        Self-closed steps after them (u_t = y_{t-1}).
    leak : float
    code, p0, p1 : activation code and parameters (``ACTIVATION_CODES``; checked
        by ``check_codes`` at set-up).
    sd, out_sd : float64 (4,)
        sqrt(D) of AU, AC, MU, MC for the reservoir and the output.
    pre : bool
        Reservoir noise before the activation.
    x0 : float64 (N,)
    seed_key : uint64; sample0 : global index of the chunk's first realisation.
    tiles : int
        Blocks of realisations, one per parallel task.
    record : int64 (T + 1,)
        Slot of step t in the sums, or -1 when not recorded.
    shift_x (K, N), shift_y (K, N_out) : float64
        Centre of the sums per recorded step (the noise-free trajectory).
    acc_x (tiles, K, 4 N), row_x (tiles, K, 6), acc_y, row_y : float64, zeroed
        Per-neuron and per-realisation sums (see ``noiseprop.simulation._kernels``).
    out_x : float64 (n_samples, N) or size 0
        If not empty, receives the final states.
    """
    n = W_t.shape[0]
    n_out = W_out_t.shape[1]
    n_drive = drive.shape[0]
    total = n_drive + n_closed
    fields_x = acc_x.shape[2] // n
    fields_y = acc_y.shape[2] // n_out
    width = max(n, n_out)
    for tile in prange(tiles):
        start = tile * n_samples // tiles
        stop = (tile + 1) * n_samples // tiles
        rows = stop - start
        x = np.empty((rows, n))
        for r in range(rows):
            for i in range(n):
                x[r, i] = x0[i]
        z = np.empty((rows, n))
        z_in = np.empty((rows, n))
        f_noisy = np.empty((rows, n))
        o = np.empty((rows, n_out))
        y = np.empty((rows, n_out))
        scratch = np.empty((1, width))
        g_mu, g_au = np.empty(n), np.empty(n)
        g_mu_out, g_au_out = np.empty(n_out), np.empty(n_out)
        tail_index = np.empty(width, np.int64)
        unused = np.empty(width)
        for t in range(total + 1):
            if t > 0:
                if sparse:
                    _sparse_product(x, indptr, indices, values, z)
                else:
                    np.dot(x, W_t, z)
                if t <= n_drive:
                    for r in range(rows):
                        for i in range(n):
                            z[r, i] += drive[t - 1, i]
                else:
                    _affine(y, W_in_t, bias, z_in)
                    for r in range(rows):
                        for i in range(n):
                            z[r, i] += z_in[r, i]
                for r in range(rows):
                    key = stream_key(seed_key, sample0 + start + r, t, RESERVOIR_STREAM)
                    _noisy_row(z, z, r, code, p0, p1, sd, pre, False, key, unused, unused, unused,
                               f_noisy, f_noisy, r, scratch, g_mu, g_au, tail_index)
                    for i in range(n):
                        x[r, i] = (1.0 - leak) * x[r, i] + leak * f_noisy[r, i]
            slot = record[t]
            if slot >= 0 or t >= n_drive:  # the output is recorded or fed back next step
                _affine(x, W_out_t, out_bias, o)
                for r in range(rows):
                    key = stream_key(seed_key, sample0 + start + r, t, OUTPUT_STREAM)
                    _noisy_row(o, o, r, LINEAR, 1.0, 0.0, out_sd, False, False, key, unused, unused, unused,
                               y, y, r, scratch, g_mu_out, g_au_out, tail_index)
            if slot >= 0:
                acc_x_k = acc_x[tile, slot].reshape((fields_x, n))
                acc_y_k = acc_y[tile, slot].reshape((fields_y, n_out))
                row_x_k, row_y_k = row_x[tile, slot], row_y[tile, slot]
                shift_x_k, shift_y_k = shift_x[slot], shift_y[slot]
                for r in range(rows):
                    _accumulate_unscaled(x, r, shift_x_k, n, acc_x_k, row_x_k)
                    _accumulate_unscaled(y, r, shift_y_k, n_out, acc_y_k, row_y_k)
        if out_x.size > 0:
            for r in range(rows):
                for i in range(n):
                    out_x[start + r, i] = x[r, i]


@njit(forceinline=True, error_model="numpy")
def _sparse_product(x, indptr, indices, values, z):
    """z[r] = W x[r] for every row r, W in compressed-row form."""
    for r in range(x.shape[0]):
        for i in range(z.shape[1]):
            total = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                total += values[k] * x[r, indices[k]]
            z[r, i] = total
