"""The float32 generator's largest relative error, over all 2^32 inputs.

Every 32-bit input of the float32 normal generator (``_central32``, or
``_tail32`` where it marks the draw) against the float64 inverse normal CDF of
the same uniform u = (bits + 1/2) 2^-32 (Acklam's formula, relative error below
1.2e-9): the number behind ``precision.NORMAL_RTOL`` (5e-7) and the generator's
description in ``noiseprop/simulation/_kernels.py`` and docs/performance.md.
The tests check a grid of a million inputs; this checks them all (about 3
minutes on 2 cores).

Usage::

    python benchmarks/float32_generator_error.py

prints the largest relative error, where it occurs, and whether it is within
NORMAL_RTOL (exit status 1 if not).
"""
from __future__ import annotations

import time

import numpy as np
from numba import njit, prange

from noiseprop.simulation import _kernels
from noiseprop.simulation.precision import NORMAL_RTOL

PARTS = 256


@njit(parallel=True)
def largest_errors(parts):
    """(largest relative error, its input) of each of ``parts`` equal blocks of the inputs."""
    errors = np.zeros(parts)
    inputs = np.zeros(parts, np.int64)
    size = 2**32 // parts
    for part in prange(parts):
        worst, at = 0.0, 0
        for j in range(part * size, (part + 1) * size):
            bits = np.uint32(j)
            x = _kernels._central32(bits, _kernels._GEN32)
            if x == _kernels._TAIL_MARK32:
                x = _kernels._tail32(bits)
            exact = _kernels._inverse_normal((float(j) + 0.5) * _kernels._TO_UNIT)
            error = abs(float(x) - exact) / abs(exact)
            if error > worst:
                worst, at = error, j
        errors[part], inputs[part] = worst, at
    return errors, inputs


def main() -> int:
    start = time.perf_counter()
    errors, inputs = largest_errors(PARTS)
    worst = int(np.argmax(errors))
    u = (inputs[worst] + 0.5) * 2.0**-32
    print(f"largest relative error {errors[worst]:.4g} at bits {inputs[worst]} (u = {u:.6g}); "
          f"NORMAL_RTOL = {NORMAL_RTOL:g}; {time.perf_counter() - start:.0f} s")
    return 0 if errors[worst] <= NORMAL_RTOL else 1


if __name__ == "__main__":
    raise SystemExit(main())
