"""The float32 generator's largest relative error, over all its inputs.

The float32 normal generator (``_normal_pair32`` in noiseprop/simulation/_kernels.py)
turns two 32-bit draws into a pair of normals by the Box-Muller transform: a radius
r = sqrt(-2 log u) from the high 31 bits of the first (u = (m + 1/2) 2^-31) and the
cosine and sine of an angle a = (t + 1/2) 2^-29 pi/4 from the low 29 bits of the second
(whose top three bits choose the octant: a swap and two signs, exact).  Each normal is
the float32 product of the computed radius and the computed cosine or sine, so its
relative error against the exact transform of the same uniforms is at most

    (1 + e_r)(1 + e_t)(1 + u) - 1,   u = 2^-24,

e_r the largest relative error of the radius over all 2^31 inputs and e_t that of the
cosine and sine over all 2^29 angles, both checked here against float64 (errors of
order 1e-16).  This bound is the number behind ``precision.NORMAL_RTOL`` (5e-7) and
the generator's description in ``noiseprop/simulation/_kernels.py`` and
docs/performance.md.  The tests check a grid of the pairs themselves.

Usage::

    python benchmarks/float32_generator_error.py

prints the two largest errors, where they occur, the bound and whether it is within
NORMAL_RTOL (exit status 1 if not).  About a minute on 2 cores.
"""
from __future__ import annotations

import math
import time

import numpy as np
from numba import njit, prange

from noiseprop.simulation import _kernels
from noiseprop.simulation.precision import NORMAL_RTOL, UNIT_ROUNDOFF

PARTS = 256


@njit
def radius_error(m):
    """Relative error of the radius for input m (the draw's bits are 2 m: its low bit is not used)."""
    r = _kernels._radius32(np.uint32(2 * m), _kernels._GEN32)
    exact = math.sqrt(-2.0 * math.log((m + 0.5) * 2.0**-31))
    return abs(float(r) - exact) / exact


@njit
def angle_error(t):
    """Larger relative error of the cosine and the sine of angle input t."""
    cosine, sine = _kernels._cos_sin32(np.uint32(t), _kernels._GEN32)
    a = (t + 0.5) * 2.0**-29 * (math.pi / 4)
    return max(abs(float(cosine) - math.cos(a)) / math.cos(a), abs(float(sine) - math.sin(a)) / math.sin(a))


@njit(parallel=True)
def largest_errors(error, count, parts):
    """(largest ``error(i)``, its input i) in each of ``parts`` blocks of the inputs 0..count-1."""
    errors = np.zeros(parts)
    inputs = np.zeros(parts, np.int64)
    size = count // parts
    for part in prange(parts):
        worst, at = 0.0, 0
        for i in range(part * size, (part + 1) * size):
            e = error(i)
            if e > worst:
                worst, at = e, i
        errors[part], inputs[part] = worst, at
    return errors, inputs


def main() -> int:
    start = time.perf_counter()
    worst = []
    for name, error, count in (("radius", radius_error, 2**31), ("cosine/sine", angle_error, 2**29)):
        errors, inputs = largest_errors(error, count, PARTS)
        i = int(np.argmax(errors))
        print(f"{name}: largest relative error {errors[i]:.4g} at input {inputs[i]}")
        worst.append(errors[i])
    bound = (1 + worst[0]) * (1 + worst[1]) * (1 + UNIT_ROUNDOFF) - 1
    print(f"bound on a normal's relative error {bound:.4g}; NORMAL_RTOL = {NORMAL_RTOL:g}; "
          f"{time.perf_counter() - start:.0f} s")
    return 0 if bound <= NORMAL_RTOL else 1


if __name__ == "__main__":
    raise SystemExit(main())
