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
which lies a probability of 5e-10).  The float32 engine has its own
generator for the uncorrelated draws (a 32-bit hash per draw and a float32
Box-Muller transform per pair, which vectorise; see ``fill_normals32``).  No generator state is
carried from one realisation to the next, so the numbers depend on the seed
only, not on how realisations are split into chunks or spread over threads.

Sums are accumulated per *tile* (a block of consecutive realisations) into
their own slot and added up afterwards in a fixed order, so that the result is
bit-for-bit the same for any number of threads.

Compile time (the first run of an install; numba caches the result): the
tiles are spread over threads by a plain Python thread pool around one
``nogil`` kernel rather than by numba's ``prange`` (whose parallel back end
doubles the compile time); the plain and the control-variate kernels are
separate specialisations (``lin`` None or not: numba drops the branches of the
other before typing them), so ``verify`` compiles no control-variate code; the
tile loop is written into :func:`simulate_tiles` rather than called (LLVM
optimises a called kernel on its own and again where it is inlined); and
numba inlines (``inline="always"``, which copies and re-types the code at every
call site) only the per-row steps whose loops must vectorise with their caller,
each at one call site (one activation per tile, one noise step and one normal
fill per row).  The small helpers are inlined by LLVM (``forceinline``).  Measured on
2 cores: 7-10 s of CPU time to compile the plain float64 kernel, against 17-22 s
with one kernel for both estimators, at the same or better speed.
"""
from __future__ import annotations

import math
import threading
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from .compilation import ensure_cache_location

ensure_cache_location(__file__)  # before the cache=True decorators below need a location

__all__ = [
    "ACTIVATION_CODES",
    "LAST_CODE",
    "NEURON_FIELDS",
    "ROW_FIELDS",
    "Linearisation",
    "Plan",
    "simulate_chunk",
    "simulate_tiles",
    "standard_normals",
]

#: Kernel codes of the activations (parameters p0, p1 in brackets): linear (slope,
#: offset), sigmoid (gain), tanh (gain), relu, erf (gain), heaviside.  The one table of
#: codes: ``_activate`` has a branch for each code below LAST_CODE and computes
#: LAST_CODE in its final ``else``; the set-up (:func:`check_codes`) refuses any
#: other code, so an unknown code never reaches the kernel.
LINEAR, SIGMOID, TANH, RELU, ERF, HEAVISIDE = range(6)
ACTIVATION_CODES = {"linear": LINEAR, "sigmoid": SIGMOID, "tanh": TANH, "relu": RELU, "erf": ERF,
                    "heaviside": HEAVISIDE}
LAST_CODE = HEAVISIDE

#: Per-neuron running sums, with d = (y - shift) / scale and e = (y_lin - shift) / scale
#: (``scale`` a power of two per layer and input that keeps d^4 in floating-point range;
#: 1 for the unscaled sums), their index in a layer's (fields, N) block: plain: d, d^2,
#: d^3, d^4; with the control variate also e, e^2, (d - e)^2, d^2 - e^2, (d^2 - e^2)^2.
N_D1, N_D2, N_D3, N_D4, N_E1, N_E2, N_DIFF2, N_DQ, N_DQ2 = range(9)
NEURON_FIELDS = {False: 4, True: 9}
#: Per-realisation (layer-level) running sums, with s = sum_i d_i, q = sum_i d_i^2 and
#: p = (s^2 - q) / (N (N - 1)) (the mean off-diagonal product): plain: s, s^2, p, p^2,
#: q, q^2; with the control variate also s_e, s_e^2, p - p_e, (p - p_e)^2, q - q_e,
#: (q - q_e)^2.
R_S, R_S2, R_P, R_P2, R_Q, R_Q2, R_SE, R_SE2, R_DP, R_DP2, R_DQ, R_DQ2 = range(12)
ROW_FIELDS = {False: 6, True: 12}

#: Everything a run needs, prepared once by the caller (``real`` is float32 or float64:
#: the type of the products, the noise and the activations; sums are float64).
#:
#: first : real (B, N_1)
#:     Layer 1's pre-activation, the same in every realisation (noise-free input);
#:     with post placement its f(z) (and ``codes[0]`` the identity).
#: weights_t : real, flat
#:     W_k^T (N_{k-1}, N_k) for k = 2..L, row-major, layer k's at
#:     weight_offsets[k-1]:weight_offsets[k] (layer 1's is not needed).
#: weight_offsets : int64 (L+1,)
#: biases : real (offsets[L],)
#:     b_k for k = 1..L, layer k's at offsets[k-1]:offsets[k].
#: offsets : int64 (L+1,)
#:     Cumulative layer widths: layer k's neurons are offsets[k-1]:offsets[k].
#: codes : int64 (L,); params : real (L, 2)
#:     Activations (:data:`ACTIVATION_CODES`) and their parameters.
#: sds : real (L, 4)
#:     Standard deviations sqrt(D) of AU, AC, MU, MC per layer.
#: pre : bool (L,)
#:     Pre-activation placement per layer.
#: shift : float64 (B * offsets[L],)
#:     Mean f(zbar) of the linearised network, the centre of the running sums,
#:     layer k's a (B, N_k) block at B * offsets[k-1].
#: inv_scale : float64 (B * offsets[L],)
#:     1/scale of the running sums, laid out like ``shift`` (powers of two: the scaling
#:     is exact).
#: seed_key : uint64
#: block_rows : int64
#:     0: every realisation's per-neuron sums d, d^2, d^3, d^4 are added in float64.  B > 0
#:     (float32 runs once the scales are calibrated, so that d = O(1); plain estimator only:
#:     the control variate's sums cancel below float32 rounding): they are summed in
#:     float32 over blocks of B realisations of an input, and each block sum is added to
#:     the float64 sums (see :func:`_block_moments`).
Plan = namedtuple("Plan", ["first", "weights_t", "weight_offsets", "biases", "offsets", "codes", "params",
                           "sds", "pre", "shift", "inv_scale", "seed_key", "block_rows"])

#: The linearised network of the control variate (propagated with the same draws),
#: laid out like ``Plan.shift``: zbar, slope : float64 (B * offsets[L],), the working
#: point and the slope f'(zbar).  The kernel takes it, or None for the plain estimator:
#: numba compiles the two as separate specialisations (the plain one, which
#: ``verify`` needs, without any control-variate code).
Linearisation = namedtuple("Linearisation", ["zbar", "slope"])

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
# the split of ln 2 for float32 (Cephes): k _LN2_HI32 is exact for |k| < 2^15
_LN2_HI32, _LN2_LO32 = np.float32(0.693359375), np.float32(-2.12194440e-4)
# the constants of _exp in order (see _exp_constants)
_EXP64 = (-708.0, 709.0, _LOG2E, 0.5, _LN2_HI, _LN2_LO) + _EXP_TAYLOR
_EXP32 = tuple(np.float32(v) for v in (-87.0, 88.0, _LOG2E, 0.5, _LN2_HI32, _LN2_LO32) + _EXP_TAYLOR[:8])


def check_codes(codes) -> None:
    """Refuse any activation code the kernel has no branch for (``_activate``
    computes LAST_CODE in its final branch, so an unknown code would otherwise
    silently become that activation)."""
    known = set(ACTIVATION_CODES.values())
    if known != set(range(LAST_CODE + 1)):
        raise AssertionError(f"kernel activation codes must be 0..{LAST_CODE}, got {sorted(known)}")
    unknown = sorted({int(c) for c in np.ravel(codes)} - known)
    if unknown:
        raise ValueError(f"unknown kernel activation code(s) {unknown}; known: {ACTIVATION_CODES}")


def _real(x, like):
    """x converted to the floating type of ``like`` (a float or a float array)."""
    return x


@overload(_real, jit_options={"forceinline": True})
def _real_overload(x, like):
    target = like.dtype if isinstance(like, types.Array) else like

    def impl(x, like):
        return target(x)

    return impl


def _ln2_split(like):
    """ln 2 = hi + lo in the type of ``like``, hi with enough trailing zero bits that k hi is
    exact for every k of _exp's range (Cody-Waite)."""
    return _LN2_HI, _LN2_LO


@overload(_ln2_split, jit_options={"forceinline": True})
def _ln2_split_overload(like):
    if like.bitwidth == 32:
        hi, lo = np.float32(_LN2_HI32), np.float32(_LN2_LO32)
    else:
        hi, lo = _LN2_HI, _LN2_LO
    return lambda like: (hi, lo)


@intrinsic
def _times_pow2(typingctx, value, k):
    """value * 2**k for a float32 or float64 ``value`` and an integer k in the normal
    exponent range of that type, by writing the exponent bits.  k may also be an integral
    value of ``value``'s type: its bits are then read off k + 1.5 2^m (m the mantissa
    width), which vectorises where a float-to-integer conversion (to int64) would not."""
    if not isinstance(value, types.Float) or not isinstance(k, (types.Integer, types.Float)):
        return None
    if isinstance(k, types.Float) and k != value:
        return None
    single = value.bitwidth == 32

    def codegen(context, builder, signature, args):
        x, exponent = args
        int_type = ir.IntType(32 if single else 64)
        if isinstance(k, types.Float):
            magic = exponent.type(1.5 * 2.0 ** (23 if single else 52))
            exponent = builder.bitcast(builder.fadd(exponent, magic), int_type)  # low bits: k
        else:
            exponent = context.cast(builder, exponent, k, types.int64)
            exponent = builder.trunc(exponent, int_type) if single else exponent
        bias, shift = (127, 23) if single else (1023, 52)
        bits = builder.shl(builder.add(exponent, int_type(bias)), int_type(shift))
        return builder.fmul(x, builder.bitcast(bits, ir.FloatType() if single else ir.DoubleType()))

    return value(value, k), codegen


def _exp_constants(like):
    """The constants of :func:`_exp` in the type of ``like`` (a float or a float array):
    the lowest and highest argument for which the result is finite and normal, log2(e),
    1/2, ln 2 = hi + lo (hi with enough trailing zero bits that k hi is exact for every k
    of the range: Cody-Waite), and the Taylor coefficients 1/n! of e^r, n = 0, 1, ...
    (to r^7 for float32: truncation 0.347^8 / 8! = 5.6e-9, below float32's 6e-8; to
    r^12 for float64: truncation < 2e-16)."""
    return _EXP64


@overload(_exp_constants, jit_options={"forceinline": True})
def _exp_constants_overload(like):
    target = like.dtype if isinstance(like, types.Array) else like
    values = _EXP32 if target.bitwidth == 32 else _EXP64
    return lambda like: values


def _exp_series(r, c):
    """e^r for |r| <= ln(2)/2 by its Taylor series, to the precision of r's type
    (coefficients c[6:] of :func:`_exp_constants`)."""
    return math.exp(r)


@overload(_exp_series, jit_options={"forceinline": True, "error_model": "numpy"})
def _exp_series_overload(r, c):
    if r.bitwidth == 32:
        def single(r, c):
            p = _fma(c[13], r, c[12])
            p = _fma(p, r, c[11])
            p = _fma(p, r, c[10])
            p = _fma(p, r, c[9])
            p = _fma(p, r, c[8])
            p = _fma(p, r, c[7])
            return _fma(p, r, c[6])

        return single

    def double(r, c):  # the products and sums rounded apart, as always
        p = c[18]
        p = p * r + c[17]
        p = p * r + c[16]
        p = p * r + c[15]
        p = p * r + c[14]
        p = p * r + c[13]
        p = p * r + c[12]
        p = p * r + c[11]
        p = p * r + c[10]
        p = p * r + c[9]
        p = p * r + c[8]
        p = p * r + c[7]
        return p * r + c[6]

    return double


@njit(forceinline=True, error_model="numpy")
def _exp(x, c):
    """exp(x) to about 1 ulp of the type of x (clamped to its finite range); c: the
    constants of :func:`_exp_constants` for that type (taken once before a loop through
    :func:`_opaque`, so that they stay in registers instead of being loaded from memory
    in every iteration: measured, the float32 sigmoid a quarter faster)."""
    x = min(max(x, c[0]), c[1])
    k = np.floor(x * c[2] + c[3])  # in x's type: no conversion to int64
    r = (x - k * c[4]) - k * c[5]
    p = _exp_series(r, c)
    return _times_pow2(p, k)


@njit(forceinline=True, error_model="numpy")
def _mix(z):
    """SplitMix64 finaliser: a bijective avalanche of 64 bits."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(forceinline=True, error_model="numpy")
def stream_key(seed_key, sample, inp, layer):
    """Key of the stream of realisation ``sample``, input ``inp``, layer ``layer``."""
    key = _mix(seed_key + np.uint64(sample + 1) * _GAMMA)
    key = _mix(key ^ (np.uint64(inp + 1) * _INPUT_MIX))
    return _mix(key + np.uint64(layer + 1) * _GAMMA)


@njit(forceinline=True, error_model="numpy")
def _word(key, j):
    """Word j of a stream: 64 random bits, two 32-bit draws."""
    return _mix(key + np.uint64(j + 1) * _GAMMA)


@njit(forceinline=True, error_model="numpy")
def _to_unit(bits32):
    """32 random bits as a uniform number in the open interval (0, 1) (exact in float64)."""
    return (float(bits32) + 0.5) * _TO_UNIT


@njit(forceinline=True, error_model="numpy")
def _low(word):
    return word & np.uint64(0xFFFFFFFF)


@njit(forceinline=True, error_model="numpy")
def _high(word):
    return word >> np.uint64(32)


@njit(forceinline=True, error_model="numpy")
def _central(q):
    """Acklam's central formula at q = u - 1/2, in float64 (its alternating coefficients
    cancel near the edge of the region, where float32 arithmetic would lose 12 bits)."""
    r = q * q
    num = (((((_A1 * r + _A2) * r + _A3) * r + _A4) * r + _A5) * r + _A6) * q
    return num / (((((_B1 * r + _B2) * r + _B3) * r + _B4) * r + _B5) * r + 1.0)


@njit(forceinline=True, error_model="numpy")
def _tail(u):
    """Inverse normal CDF for u in a tail (|u - 1/2| > _Q_CENTRAL), in float64."""
    lower = u < 0.5
    t = math.sqrt(-2.0 * math.log(u if lower else 1.0 - u))
    x = (((((_C1 * t + _C2) * t + _C3) * t + _C4) * t + _C5) * t + _C6) / (
        (((_D1 * t + _D2) * t + _D3) * t + _D4) * t + 1.0
    )
    return x if lower else -x


@njit(forceinline=True, error_model="numpy")
def _inverse_normal(u):
    """Acklam's inverse normal CDF of u in (0, 1), in float64."""
    q = u - 0.5
    if abs(q) <= _Q_CENTRAL:
        return _central(q)
    return _tail(u)


@njit(forceinline=True, error_model="numpy")
def _normal_pair(key):
    """Word 0 of a stream as two standard normals (xi_MC, xi_AC), float64."""
    word = _word(key, 0)
    return _inverse_normal(_to_unit(_low(word))), _inverse_normal(_to_unit(_high(word)))


@njit(forceinline=True, error_model="numpy")
def _tile_pairs(keys, rows, out):
    """out[0, r], out[1, r] = _normal_pair(keys[r]) for rows r < rows of a tile (the same
    numbers): the central formula for all of them in a loop over the rows, which
    vectorises, then the tails redone (see :func:`_fill_normals64`)."""
    for r in range(rows):
        word = _word(keys[r], 0)
        out[0, r] = _central(_to_unit(_low(word)) - 0.5)
        out[1, r] = _central(_to_unit(_high(word)) - 0.5)
    for r in range(rows):
        for part in range(2):
            if abs(out[part, r]) >= _X_CENTRAL:
                word = _word(keys[r], 0)
                u = _to_unit(_high(word) if part else _low(word))
                if abs(u - 0.5) > _Q_CENTRAL:
                    out[part, r] = _tail(u)


@njit(forceinline=True, error_model="numpy")
def _fill_unit(key, first, half, i):
    """The uniform behind out[i] of ``_fill_normals(key, first, out)``."""
    word = _word(key, first + (i if i < half else i - half))
    return _to_unit(_low(word) if i < half else _high(word))


@njit(forceinline=True, error_model="numpy")
def _list_marked(out, tail_index, mark):
    """List the i with |out[i]| >= mark first in ``tail_index``, without a branch the
    processor would mispredict; returns how many.  (A function of its own: a counter
    inside numba-inlined code trips numba's checks.)"""
    count = 0
    for i in range(out.shape[0]):
        tail_index[count] = i
        count += abs(out[i]) >= mark
    return count


def _fill_normals(key, first, out, tail_index):
    """out as standard normals from the words first, first + 1, ... of a stream, by the
    generator of out's type: :func:`_fill_normals64` for float64,
    :func:`fill_normals32` for float32 (typed and compiled only where float32 is used)."""


@overload(_fill_normals, inline="always", jit_options={"error_model": "numpy"})
def _fill_normals_overload(key, first, out, tail_index):
    # the generators' own Python code, inlined by numba into the caller (one level: their
    # loops vectorise together with the caller's, as before the float32 generator existed)
    if isinstance(out, types.Array) and out.dtype == types.float32:
        return fill_normals32.py_func
    return _fill_normals64.py_func


@njit(inline="always", error_model="numpy")
def _fill_normals64(key, first, out, tail_index):
    """out as standard normals from the words first, first + 1, ... of a stream:
    with h = ceil(len(out) / 2), out[i] from the low half of word first + i and
    out[h + i] from its high half, in float64.

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
    for j in range(_list_marked(out, tail_index, _X_CENTRAL)):
        i = tail_index[j]
        u = _fill_unit(key, first, half, i)
        if abs(u - 0.5) > _Q_CENTRAL:
            out[i] = _tail(u)


# ---------------------------------------------------------------------------------------
# The float32 generator.  Draw j of a stream (key: 64 bits from stream_key) is 32 bits
#     bits_j = h(h(lo + j G32) ^ hi),   lo, hi the two 32-bit halves of the key,
# h Wellons' "lowbias32" integer hash (a bijective avalanche of 32 bits), G32 the 32-bit
# golden-ratio increment: pure 32-bit integer arithmetic, which AVX2 vectorises (eight
# lanes) where SplitMix64's 64-bit products are emulated.  Draws 2i and 2i + 1 give a pair
# of standard normals by the Box-Muller transform (one logarithm, one square root and a
# sine and cosine per two normals, all float32 polynomials that vectorise, and no tail
# to redo):
#     radius  r = sqrt(-2 log u),  u = (m + 1/2) 2^-31, m the high 31 bits of draw 2i;
#     angle   the top three bits of draw 2i + 1 choose one of the eight octants (swap x
#             and y, the sign of x, the sign of y), its low 29 bits a = (t + 1/2) 2^-29 pi/4
#             within it: (x, y) = (+-r cos a, +-r sin a), or swapped,
# i.e. r (cos theta, sin theta) for an angle theta uniform on the circle: two independent
# standard normals (|x| <= r <= 6.66: P(r > 6.66) = 2^-32).  log u is Cody-Waite reduction
# and the Cephes polynomial, with u - 1 taken exactly from the integer where u > sqrt(1/2)
# (so -log u keeps its relative precision as u -> 1); cos a and sin a the Cephes
# polynomials on [0, pi/4].  Relative error of each normal <= precision.NORMAL_RTOL (5e-7)
# against the exact Box-Muller transform of the same two uniforms (the bound:
# benchmarks/float32_generator_error.py, all 2^31 radii and 2^29 angles; a grid in the
# tests).  A float32 run therefore draws other numbers than the float64 run of the same
# seed: an equally distributed realisation.
# ---------------------------------------------------------------------------------------

_GOLDEN32 = 0x9E3779B9
_LOWBIAS32 = (0x7FEB352D, 0x846CA68B)
_F32 = np.float32
# Cephes logf: log(1 + f) = f - f^2/2 + f^3 Q(f) for sqrt(1/2) <= 1 + f < sqrt(2).
_LOG32 = (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
          -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1)
# Cephes sinf, cosf on [0, pi/4]: sin a = a + a^3 S(a^2), cos a = 1 - a^2/2 + a^4 C(a^2).
_SIN32 = (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)
_COS32 = (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)
#: Every floating constant of the float32 generator, one tuple (see :func:`_opaque`):
#: [0:9] log, [9:12] sin, [12:15] cos, then ln 2 (hi, lo), 1/2, 1, pi/4 and -2.
_GEN32 = tuple(_F32(c) for c in _LOG32 + _SIN32 + _COS32 + (_LN2_HI32, _LN2_LO32, 0.5, 1.0, math.pi / 4, -2.0))
_C_SIN, _C_COS = 9, 12
_C_LN2_HI, _C_LN2_LO, _C_HALF, _C_ONE, _C_QUARTER_PI, _C_MINUS_TWO = range(15, 21)


@intrinsic
def _opaque(typingctx, values):
    """``values`` (a tuple of floats) unchanged, but opaque to the optimiser (an empty
    inline-assembly statement per value).  Taken once before a loop, the constants are
    loop-invariant values rather than literals: LLVM then keeps them in registers or
    stack slots read as operands, instead of re-loading every literal by address in
    every iteration (its choice for literals under numba's code model, where the float32
    generator's 21 constants outnumber the 16 vector registers)."""
    if not (isinstance(values, types.UniTuple) and isinstance(values.dtype, types.Float)):
        return None

    def codegen(context, builder, signature, args):
        (tup,) = args
        value_type = context.get_value_type(values.dtype)
        barrier = ir.InlineAsm(ir.FunctionType(value_type, [value_type]), "", "=x,0")
        for i in range(values.count):
            tup = builder.insert_value(tup, builder.call(barrier, [builder.extract_value(tup, i)]), i)
        return tup

    return values(values), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma: one instruction where the processor has FMA;
    numba does not contract a * b + c by itself)."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


def _lowbias32(builder, x):
    """Wellons' lowbias32 hash of an i32 value (LLVM IR)."""
    i32 = ir.IntType(32)
    x = builder.xor(x, builder.lshr(x, i32(16)))
    x = builder.mul(x, i32(_LOWBIAS32[0]))
    x = builder.xor(x, builder.lshr(x, i32(15)))
    x = builder.mul(x, i32(_LOWBIAS32[1]))
    return builder.xor(x, builder.lshr(x, i32(16)))


@intrinsic
def _bits32(typingctx, key, j):
    """32 random bits: draw j of the float32 stream of the 64-bit ``key`` (32-bit arithmetic)."""
    if not isinstance(key, types.Integer) or not isinstance(j, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        key_value, index = args
        i32 = ir.IntType(32)
        key64 = context.cast(builder, key_value, key, types.uint64)
        lo = builder.trunc(key64, i32)
        hi = builder.trunc(builder.lshr(key64, ir.IntType(64)(32)), i32)
        counter = builder.trunc(context.cast(builder, index, j, types.int64), i32)
        x = _lowbias32(builder, builder.add(lo, builder.mul(counter, i32(_GOLDEN32))))
        return _lowbias32(builder, builder.xor(x, hi))

    return types.uint32(key, j), codegen


def _unit32(builder, integer, exponent):
    """(integer + 1/2) 2^exponent in float32 for a non-negative i32 ``integer`` (one
    conversion and one FMA: relative error <= 2^-24) (LLVM IR)."""
    f32 = ir.FloatType()
    return builder.fma(builder.sitofp(integer, f32), f32(2.0**exponent), f32(2.0 ** (exponent - 1)))


@intrinsic
def _radius_unit32(typingctx, bits):
    """The uniform u = (m + 1/2) 2^-31 of the high 31 of 32 random bits, as (u, 1 - u) in
    float32, each one rounding of an exact value (1 - u = (2^31 - 1 - m + 1/2) 2^-31)."""
    if bits != types.uint32:
        return None
    pair = types.UniTuple(types.float32, 2)

    def codegen(context, builder, signature, args):
        (b,) = args
        i32 = ir.IntType(32)
        m = builder.lshr(b, i32(1))
        u = _unit32(builder, m, -31)
        return context.make_tuple(builder, pair, [u, _unit32(builder, builder.sub(i32(0x7FFFFFFF), m), -31)])

    return pair(bits), codegen


@intrinsic
def _octant_unit32(typingctx, bits):
    """(t + 1/2) 2^-29 in float32 for t the low 29 of 32 random bits (the angle within an
    octant, in units of pi/4)."""
    if bits != types.uint32:
        return None

    def codegen(context, builder, signature, args):
        (b,) = args
        return _unit32(builder, builder.and_(b, ir.IntType(32)(0x1FFFFFFF)), -29)

    return types.float32(bits), codegen


@intrinsic
def _signed_by_bit(typingctx, x, bits, bit):
    """The float32 x with its sign flipped where bit ``bit`` (a literal) of ``bits`` is set
    (an exclusive or of the sign bit: no branch)."""
    if x != types.float32 or bits != types.uint32 or not isinstance(bit, types.IntegerLiteral):
        return None
    position = bit.literal_value

    def codegen(context, builder, signature, args):
        value, b = args[0], args[1]
        i32 = ir.IntType(32)
        sign = builder.shl(builder.lshr(b, i32(position)), i32(31))
        return builder.bitcast(builder.xor(builder.bitcast(value, i32), sign), ir.FloatType())

    return types.float32(x, bits, bit), codegen


@intrinsic
def _frexp32(typingctx, x):
    """(e, m) with x = 2^e m, sqrt(1/2) <= m < sqrt(2), for a positive normal float32 x
    (e as a float32), by integer operations on the bits."""
    if x != types.float32:
        return None
    pair = types.UniTuple(types.float32, 2)

    def codegen(context, builder, signature, args):
        (value,) = args
        i32, f32 = ir.IntType(32), ir.FloatType()
        bits = builder.bitcast(value, i32)
        exponent = builder.ashr(builder.sub(bits, i32(0x3F3504F3)), i32(23))  # 0x3F3504F3: sqrt(1/2)
        mantissa = builder.bitcast(builder.sub(bits, builder.shl(exponent, i32(23))), f32)
        return context.make_tuple(builder, pair, [builder.sitofp(exponent, f32), mantissa])

    return pair(x), codegen


@njit(forceinline=True, error_model="numpy")
def _poly8(c, first, x):
    """c[first] x^8 + c[first + 1] x^7 + ... + c[first + 8] by Estrin's scheme with FMA (for
    the logarithm's polynomial, |x| < 0.42): four dependent steps instead of Horner's eight,
    which shortens the generator's chain of dependent operations (measured: the vectorised
    pass about 10 % faster)."""
    x2 = x * x
    x4 = x2 * x2
    low = _fma(_fma(c[first + 5], x, c[first + 6]), x2, _fma(c[first + 7], x, c[first + 8]))
    high = _fma(_fma(c[first + 1], x, c[first + 2]), x2, _fma(c[first + 3], x, c[first + 4]))
    return _fma(_fma(c[first], x4, high), x4, low)


@njit(forceinline=True, error_model="numpy")
def _log_unit32(u, one_minus_u, c):
    """log(u) in float32 for u in (0, 1), given u and 1 - u (about 1 ulp; vectorises);
    c = _GEN32.  Where u >= sqrt(1/2) the reduced argument f = u - 1 is -(1 - u), exact,
    rather than the rounded u minus 1, so that log u keeps its relative precision as u -> 1."""
    e, m = _frexp32(u)
    f = m - c[_C_ONE] if e != _F32(0.0) else -one_minus_u
    z = f * f
    y = _poly8(c, 0, f)
    y = _fma(y * f, z, _fma(e, c[_C_LN2_LO], -c[_C_HALF] * z))
    return _fma(e, c[_C_LN2_HI], f + y)


@njit(forceinline=True, error_model="numpy")
def _radius32(bits, c):
    """The Box-Muller radius sqrt(-2 log u) of the uniform u of the high 31 of 32 random
    bits (float32); c = _GEN32 (or its :func:`_opaque` copy)."""
    u, one_minus_u = _radius_unit32(bits)
    return math.sqrt(c[_C_MINUS_TWO] * _log_unit32(u, one_minus_u, c))


@njit(forceinline=True, error_model="numpy")
def _cos_sin32(bits, c):
    """(cos a, sin a) in float32 for the angle a = (t + 1/2) 2^-29 pi/4 in [0, pi/4) of the
    low 29 of 32 random bits (the octant, from the top three bits, is applied by the caller)."""
    a = _octant_unit32(bits) * c[_C_QUARTER_PI]
    z = a * a
    sine = _fma(a * z, _fma(_fma(c[_C_SIN], z, c[_C_SIN + 1]), z, c[_C_SIN + 2]), a)
    cosine = _fma(z * z, _fma(_fma(c[_C_COS], z, c[_C_COS + 1]), z, c[_C_COS + 2]), _fma(-c[_C_HALF], z, c[_C_ONE]))
    return cosine, sine


@njit(forceinline=True, error_model="numpy")
def _normal_pair32(radius_bits, angle_bits, c):
    """The two standard normals (float32) of draws 2i, 2i + 1 of a stream (their 32 bits
    ``radius_bits``, ``angle_bits``) by the Box-Muller transform (see above): r times the
    cosine and sine of the angle, swapped and signed by the top three bits of
    ``angle_bits``; c = _GEN32 (or its :func:`_opaque` copy)."""
    r = _radius32(radius_bits, c)
    cosine, sine = _cos_sin32(angle_bits, c)
    swap = (angle_bits >> np.uint32(29)) & np.uint32(1) != 0
    x = r * (sine if swap else cosine)
    y = r * (cosine if swap else sine)
    return _signed_by_bit(x, angle_bits, 30), _signed_by_bit(y, angle_bits, 31)


@njit(forceinline=True, error_model="numpy")
def _pairs32(key, start, out, half, count):
    """out[i], out[half + i] = the normal pair of draws start + 2i, start + 2i + 1 of the
    stream of ``key``, for i < count (vectorises: eight pairs per iteration)."""
    c = _opaque(_GEN32)
    for i in range(count):
        out[i], out[half + i] = _normal_pair32(_bits32(key, start + 2 * i), _bits32(key, start + 2 * i + 1), c)


@njit(forceinline=True, error_model="numpy")
def fill_normals32(key, first, out, tail_index):
    """out (float32) as standard normals: with h = ceil(len(out) / 2), out[i] and out[h + i]
    are the pair of draws 2 first + 2i, 2 first + 2i + 1 of the float32 stream of ``key``
    (these two draws take the place of the float64 generator's word first + i, which gives
    out[i] and out[h + i] there too, so the callers' word offsets keep streams apart; an odd
    length drops the last pair's second normal).  ``tail_index``: the float64 generator's
    scratch (unused here: the signature is shared, see :func:`_fill_normals`).
    For the recurrent kernel and any other float32 user: the same (key, first, len(out))
    always gives the same numbers, as :func:`_fill_row` draws them.
    """
    n = out.shape[0]
    half = (n + 1) // 2
    _pairs32(key, 2 * first, out, half, n // 2)
    if n % 2:
        out[half - 1] = _normal_pair32(_bits32(key, 2 * first + n - 1), _bits32(key, 2 * first + n), _GEN32)[0]


#: Pairs per iteration of the float32 generator's vectorised loop (as LLVM compiles it for
#: AVX2: 8 lanes).  A row's pairs beyond its last multiple of this would run one by one,
#: each a full chain of dependent operations per row (measured in isolation: about 30 %
#: more time per draw on rows of 100 than of 96), so the kernel draws them for a whole
#: tile at once (:func:`_tile_draws`), two rows of ``rest`` per pair.
_LOOP_PAIRS32 = 8
#: Rows of ``rest`` per part (uncorrelated noise of a layer: one, or two with the control variate).
_REST_SLOTS32 = 2 * _LOOP_PAIRS32


def _rest_slots(like):
    """Rows of the tile's ``rest`` per part for the generator of ``like``'s type: _REST_SLOTS32
    for float32; 0 for float64, whose rows draw everything themselves."""
    return 0


@overload(_rest_slots, jit_options={"forceinline": True})
def _rest_slots_overload(like):
    slots = _REST_SLOTS32 if like.dtype == types.float32 else 0
    return lambda like: slots


def _tile_draws(keys, rows, first, n, parts, rest):
    """float32: rest[p _REST_SLOTS32 + 2j + {0, 1}, r] = the pair split + j of row r's part p,
    for the pairs beyond split = n // 2 - (n // 2) % _LOOP_PAIRS32 (see :func:`_fill_row`),
    for rows 0..rows-1 of a tile (stream keys ``keys``), the inner loop running over the
    rows: vectorised, with one loop remainder per tile and pair instead of one per row.
    float64: nothing (``rest`` is empty)."""


@overload(_tile_draws, inline="always", jit_options={"error_model": "numpy"})
def _tile_draws_overload(keys, rows, first, n, parts, rest):
    if rest.dtype != types.float32:
        return lambda keys, rows, first, n, parts, rest: None

    def single(keys, rows, first, n, parts, rest):
        pairs = n // 2
        split = pairs - pairs % _LOOP_PAIRS32
        c = _opaque(_GEN32)
        for part in range(parts):
            start = 2 * (first + part * ((n + 1) // 2))
            for j in range(split, (n + 1) // 2):
                slot = part * _REST_SLOTS32 + 2 * (j - split)
                for r in range(rows):
                    rest[slot, r], rest[slot + 1, r] = _normal_pair32(
                        _bits32(keys[r], start + 2 * j), _bits32(keys[r], start + 2 * j + 1), c)

    return single


def _fill_row(key, first, out, tail_index, rest, slot, r):
    """out as standard normals from the words first, first + 1, ... of a stream, as
    :func:`_fill_normals` draws them (the same numbers), for row r of a tile: float32 draws
    the pairs below split (:func:`_tile_draws`) itself and takes the rest from rest[slot:, r]."""


@overload(_fill_row, inline="always", jit_options={"error_model": "numpy"})
def _fill_row_overload(key, first, out, tail_index, rest, slot, r):
    if out.dtype != types.float32:
        def double(key, first, out, tail_index, rest, slot, r):
            _fill_normals64(key, first, out, tail_index)

        return double

    def single(key, first, out, tail_index, rest, slot, r):
        n = out.shape[0]
        half = (n + 1) // 2
        pairs = n // 2
        split = pairs - pairs % _LOOP_PAIRS32
        _pairs32(key, 2 * first, out, half, split)
        for j in range(split, pairs):
            out[j] = rest[slot + 2 * (j - split), r]
            out[half + j] = rest[slot + 2 * (j - split) + 1, r]
        if n % 2:
            out[half - 1] = rest[slot + 2 * (half - 1 - split), r]

    return single


@njit(cache=True, error_model="numpy")
def fill_standard_normals(seed_key, sample, inp, layer, first, out):
    """out = the standard normals from the words first, ... of one stream, as drawn
    by the kernel in the type of ``out`` (for the tests)."""
    _fill_normals(stream_key(seed_key, sample, inp, layer), first, out, np.empty(out.shape[0], np.int64))


def standard_normals(seed_key, sample, inp, layer, first, count, dtype=np.float64):
    """``count`` standard normals from the words first, ... of one stream, as drawn
    by the kernel (for the tests)."""
    out = np.empty(count, dtype)
    fill_standard_normals(seed_key, sample, inp, layer, first, out)
    return out


@njit(inline="always", error_model="numpy")
def _activate(code, p0, p1, z, zr, out, r, n):
    """out[r, :n] = f(z[zr, :n]) for the activation ``code`` with parameters p0, p1.

    Rows are indexed, not sliced: a row view costs reference counting per
    realisation, which is as expensive as the arithmetic on a narrow layer.
    The final branch is LAST_CODE: the set-up refuses codes without a branch.
    """
    one, zero = _real(1.0, p0), _real(0.0, p0)
    if code == LINEAR:
        for i in range(n):
            out[r, i] = p0 * z[zr, i] + p1
    elif code == SIGMOID:
        c = _opaque(_exp_constants(p0))
        for i in range(n):
            out[r, i] = one / (one + _exp(-p0 * z[zr, i], c))
    elif code == TANH:
        for i in range(n):
            out[r, i] = math.tanh(p0 * z[zr, i])
    elif code == RELU:
        for i in range(n):
            out[r, i] = max(z[zr, i], zero)
    elif code == ERF:
        for i in range(n):
            out[r, i] = math.erf(p0 * z[zr, i])
    else:  # LAST_CODE: HEAVISIDE
        for i in range(n):
            out[r, i] = one if z[zr, i] > zero else zero


def simulate_chunk(plan, lin, sample0, n_samples, sample_blocks, acc, row_acc, accumulate, out):
    """Layers 1..L for a chunk of realisations, with running sums.

    The chunk is cut into ``sample_blocks`` tiles of consecutive realisations
    (all inputs); each tile runs through every layer on one thread
    (:func:`simulate_tiles`).  The calling thread and ``numba.get_num_threads() - 1``
    threads of a pool kept for the process run the compiled kernel without the
    GIL, each taking the next tile not yet taken (an atomic counter), so that a
    thread which starts late or runs slower takes fewer tiles (measured on 2
    cores, reference benchmark: equal round-robin shares finished up to 6 ms
    apart in 20 ms chunks, the other core idle meanwhile): a plain loop
    compiles in about half the time of a ``prange`` (numba's parallel back end),
    and every tile still has its own slot of sums, so the result does not depend
    on the thread count or on which thread ran which tile.

    Parameters (all validated by the caller)
    ----------------------------------------
    plan : Plan
    lin : Linearisation or None
        The control variate's linearised network, or None (plain estimator).
    sample0, n_samples : int
        Global index of the chunk's first realisation; realisations in it.
    sample_blocks : int
    acc : float64 (sample_blocks, B, NEURON_FIELDS[cv] * offsets[L])
        Zeroed per-neuron sums; layer k's are the (fields, N_k) block starting
        at fields * offsets[k-1].
    row_acc : float64 (sample_blocks, B, L, ROW_FIELDS[cv])
        Zeroed per-realisation sums.
    accumulate : bool
    out : float64 (n_samples, B, N_L), or of size 0
        If not empty, receives the last layer's outputs.
    """
    helpers = max(0, min(numba.get_num_threads(), sample_blocks) - 1)
    args = (plan, lin, sample0, n_samples, sample_blocks, np.zeros(1, np.int64), acc, row_acc, accumulate, out)
    done = [_helper_pool(helpers).submit(simulate_tiles, *args) for _ in range(helpers)]
    simulate_tiles(*args)
    for future in done:  # (one that starts late finds no tile left and returns at once)
        future.result()


_POOL_LOCK = threading.Lock()
_POOL = {}  # helper threads -> the ThreadPoolExecutor kept for the process


def _helper_pool(helpers: int) -> ThreadPoolExecutor:
    """The process's pool of ``helpers`` threads for :func:`simulate_chunk`, started on
    first use and kept: a pool per chunk cost about 0.6 ms of start and join per chunk,
    against 0.15 ms (measured on 2 cores, reference benchmark, 11 chunks)."""
    with _POOL_LOCK:
        if helpers not in _POOL:
            _POOL[helpers] = ThreadPoolExecutor(helpers, thread_name_prefix="noiseprop-tiles")
        return _POOL[helpers]


@intrinsic
def _take_next(typingctx, counter):
    """counter[0] += 1 as one atomic step; returns the value before (an int64 array)."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", array.data, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(counter), codegen


@njit(nogil=True, cache=True, error_model="numpy")
def simulate_tiles(plan, lin, sample0, n_samples, sample_blocks, next_tile, acc, row_acc, accumulate, out):
    """The tiles of a chunk not yet taken, one at a time (next_tile[0], int64 (1,):
    the next tile, shared by the threads; see :func:`simulate_chunk`), without the
    GIL: the realisations of a tile (all
    inputs) through every layer -- matrix product (BLAS), noise and activation,
    sums into its slot of acc (B, fields * offsets[L]) and row_acc (B, L, row fields).

    ``cv = lin is not None`` is known when numba compiles (None has a type of its
    own), and numba removes the branches it rules out before typing them: the
    plain and the control-variate kernels are separate, smaller compilations.
    The tile loop is part of this function, not a function of its own, so that
    LLVM optimises the code once (a called kernel is optimised on its own and
    again where it is inlined).
    """
    cv = lin is not None
    first, offsets = plan.first, plan.offsets
    n_inputs = first.shape[0]
    n_layers = plan.codes.shape[0]
    fields = acc.shape[2] // offsets[n_layers]
    width = 0
    for k in range(n_layers):
        width = max(width, offsets[k + 1] - offsets[k])
    tile_rows = (n_samples + sample_blocks - 1) // sample_blocks * n_inputs
    most = tile_rows * width  # a tile's largest layer
    buffers = np.empty((4 if cv else 2, most), first.dtype)
    z_buf = np.empty(most, first.dtype)
    z_lin_buf = np.empty(most if cv else 0, first.dtype)
    g = np.empty(2 * width, first.dtype)
    tail_index = np.empty(width, np.int64)
    keys = np.empty(tile_rows, np.uint64)  # the stream key of every row of a tile (one layer)
    xi = np.empty((2, tile_rows))  # every row's xi_MC, xi_AC (float64; see _tile_pairs)
    rest = np.empty((2 * _rest_slots(first), tile_rows), first.dtype)  # see _tile_draws
    # float32 block sums of d .. d^4 only for the plain estimator: the control variate's
    # differences of d and e sums cancel to far below float32 rounding
    blocked = accumulate and plan.block_rows > 0 and not cv
    centre32 = np.empty((3, width if blocked else 0), first.dtype)  # shift hi, lo and 1/scale in float32
    moments32 = np.zeros((4, width if blocked else 0), first.dtype)  # a block's sums of d .. d^4
    # the d of a group of _GROUP_ROWS rows, for their s and q
    deviations32 = np.empty((_GROUP_ROWS, width if blocked else 0), first.dtype)
    while True:
        block = _take_next(next_tile)
        if block >= sample_blocks:
            break
        start = block * n_samples // sample_blocks
        rows = ((block + 1) * n_samples // sample_blocks - start) * n_inputs
        n_in = 0
        for k in range(n_layers):
            n = offsets[k + 1] - offsets[k]
            y = buffers[k % 2, : rows * n].reshape((rows, n))
            y_lin = buffers[2 + k % 2, : rows * n].reshape((rows, n)) if cv else y
            z, z_lin = first, first  # layer 1: the same pre-activation (row b) in every realisation
            if k > 0:
                previous = buffers[(k - 1) % 2, : rows * n_in].reshape((rows, n_in))
                weight_t = plan.weights_t[plan.weight_offsets[k]: plan.weight_offsets[k + 1]].reshape((n_in, n))
                bias = plan.biases[offsets[k]: offsets[k + 1]]
                z = _affine(previous, weight_t, bias, z_buf[: rows * n].reshape((rows, n)))
                z_lin = z
                if cv:
                    previous_lin = buffers[2 + (k - 1) % 2, : rows * n_in].reshape((rows, n_in))
                    z_lin = _affine(previous_lin, weight_t, bias, z_lin_buf[: rows * n].reshape((rows, n)))
            pairs = n * (n - 1)
            column = fields * offsets[k]
            lo, hi = n_inputs * offsets[k], n_inputs * offsets[k + 1]
            shift_k = plan.shift[lo:hi].reshape((n_inputs, n))
            inv_k = plan.inv_scale[lo:hi].reshape((n_inputs, n))
            zbar_k = lin.zbar[lo:hi].reshape((n_inputs, n)) if cv else shift_k
            slope_k = lin.slope[lo:hi].reshape((n_inputs, n)) if cv else shift_k
            sd_k = plan.sds[k]
            noisy = cv or sd_k[2] * sd_k[2] > 0 or sd_k[0] * sd_k[0] > 0  # uncorrelated draws needed
            correlated = sd_k[3] > 0 or sd_k[1] > 0  # xi_MC, xi_AC needed
            code, p0, p1, pre_k = plan.codes[k], plan.params[k, 0], plan.params[k, 1], plan.pre[k]
            g_mu, g_au = g[:n], g[n: 2 * n]
            # phases: 0 f(z) of the whole tile in place (post placement; layer 1's z = first
            # is already f(z), its code the identity), 1 the noise row by row, 2 f of the
            # noisy tile in place (pre), 3 the sums row by row.  f on the whole tile at once
            # leaves one loop remainder per tile instead of one per row (it is elementwise:
            # the same numbers); one call site each, as numba inlines them (see the module)
            for phase in range(4):
                if phase == (2 if pre_k else 0) and (pre_k or k > 0):
                    tile = (buffers[k % 2] if pre_k else z_buf)[: rows * n].reshape((1, rows * n))
                    _activate(code, p0, p1, tile, 0, tile, 0, rows * n)
                elif phase == 1:
                    for r in range(rows):
                        keys[r] = stream_key(plan.seed_key, sample0 + start + r // n_inputs, r % n_inputs, k + 1)
                    if correlated:
                        _tile_pairs(keys, rows, xi)
                    if noisy:
                        _tile_draws(keys, rows, 1, n, 2 if cv else 1, rest)
                    for b in range(n_inputs):
                        _noisy_rows(z, z_lin, b, n_inputs, k == 0, sd_k, pre_k, cv, noisy, correlated, keys, xi,
                                    zbar_k[b], slope_k[b], shift_k[b], y, y_lin, rows, g_mu, g_au, tail_index, rest)
                elif phase == 3 and accumulate:
                    for b in range(n_inputs):
                        # views made once per input, not per realisation: a view costs reference
                        # counting, and the accumulation only vectorises on plain 2-D rows
                        shift_b, inv_b = shift_k[b], inv_k[b]
                        acc_b = acc[block, b, column: column + fields * n].reshape((fields, n))
                        row_acc_b = row_acc[block, b, k]
                        if blocked:
                            _split_centre(shift_b, inv_b, centre32, n)
                        in_block = 0
                        r = b
                        while r < rows:
                            if blocked:
                                # a group of rows at once where it fits in the block and the tile
                                group = _GROUP_ROWS if (in_block + _GROUP_ROWS <= plan.block_rows
                                                        and r + (_GROUP_ROWS - 1) * n_inputs < rows) else 1
                                _block_moments(y, r, n_inputs, group, centre32, n, moments32, deviations32)
                                for q in range(group):
                                    _add_row_sums(*_row_sums(deviations32, q, n), pairs, row_acc_b)
                                in_block += group
                                if in_block == plan.block_rows:
                                    _flush_moments(moments32, acc_b, n)
                                    in_block = 0
                                r += group * n_inputs
                            else:
                                _accumulate(y, y_lin, r, shift_b, inv_b, n, cv, pairs, acc_b, row_acc_b)
                                r += n_inputs
                        if in_block > 0:
                            _flush_moments(moments32, acc_b, n)
            n_in = n
        if out.size > 0:
            last = buffers[(n_layers - 1) % 2, : rows * n_in].reshape((rows, n_in))
            for r in range(rows):
                for i in range(n_in):
                    out[start + r // n_inputs, r % n_inputs, i] = last[r, i]


@njit(error_model="numpy")
def _affine(y, weight_t, bias, z):
    """z = y W^T + b for the rows of y (BLAS)."""
    np.dot(y, weight_t, z)
    for r in range(z.shape[0]):
        for i in range(z.shape[1]):
            z[r, i] += bias[i]
    return z


@njit(inline="always", error_model="numpy")
def _noisy_rows(z, z_lin, b, step, first_layer, sd, pre, cv, noisy, correlated, keys, xi, zbar, slope, shift, y,
                y_lin, rows, g_mu, g_au, tail_index, rest):
    """The noise of the realisations of one input in one layer of a tile, rows r = b,
    b + step, ... < rows (stream keys ``keys``; xi_MC, xi_AC in xi[:, r] where
    ``correlated``, from :func:`_tile_pairs`): y[r] from z[zr] (the pre-activation with
    ``pre``, else f(z); zr = b in the first layer, whose z has a row per input, else r)
    and, with ``cv``, y_lin[r] of the linearised network from z_lin[zr], with the same
    draws; zbar, slope and shift are the working point of this input; ``noisy``: whether
    any uncorrelated draws are needed.  (The activation is applied to the whole tile,
    before or after.)  The loop over the rows is in here, not around the call: numba
    inlines a call by assigning its arguments, which costs reference counting per array
    and call.

    Word 0 of the stream gives xi_MC and xi_AC, words 1.. the uncorrelated
    draws (see _fill_normals): with ``cv`` xi_MU (words 1..h, into g_mu) and
    xi_AU (the next h words, into g_au, h = ceil(N / 2)) apart; without, the
    combined f xi_MU + xi_AU (or z xi_MU + xi_AU before the activation), one
    Gaussian per neuron (into g_mu); float32 takes some of them from the tile's
    ``rest`` (:func:`_tile_draws`, parts at rows 0 and _REST_SLOTS32).  Arithmetic in
    the type of the rows (float32 or float64); the linearised network in float64.
    """
    n = g_mu.shape[0]
    zero = _real(0.0, sd[0])
    for r in range(b, rows, step):
        zr = b if first_layer else r
        key = keys[r]
        xi_mc, xi_ac = (xi[0, r], xi[1, r]) if correlated else (0.0, 0.0)
        if noisy:
            for part in range(2 if cv else 1):
                _fill_row(key, 1 + part * ((n + 1) // 2), g_au if part else g_mu, tail_index, rest,
                          part * _REST_SLOTS32, r)
        else:
            g_mu[:] = zero
        _add_noise(z, zr, y, r, sd, xi_mc, xi_ac, g_mu, g_au, cv, pre, z_lin, zr, zbar, slope, shift, y_lin, r)


@njit(inline="always", error_model="numpy")
def _add_noise(source, sr, target, tr, sd, xi_mc, xi_ac, g_mu, g_au, cv, pre, z_lin, zr, zbar, slope, shift,
               y_lin, r):
    """target[tr] = source[sr] with the noise of the draws (see :func:`_noisy_rows`);
    with ``cv`` also y_lin[r] of the linearised network, from z_lin[zr] (its
    noise before the activation with ``pre``, after it without)."""
    n = g_mu.shape[0]
    one = _real(1.0, sd[0])
    e_mc, e_ac = sd[3] * _real(xi_mc, one), sd[1] * _real(xi_ac, one)
    if not cv:
        d_au, d_mu = sd[0] * sd[0], sd[2] * sd[2]
        for i in range(n):
            v = source[sr, i]
            target[tr, i] = v * (one + e_mc) + e_ac + math.sqrt(v * v * d_mu + d_au) * g_mu[i]
    elif pre:
        for i in range(n):
            gain = one + sd[2] * g_mu[i] + e_mc
            add = sd[0] * g_au[i] + e_ac
            target[tr, i] = source[sr, i] * gain + add
            y_lin[r, i] = shift[i] + slope[i] * (z_lin[zr, i] * gain + add - zbar[i])
    else:
        for i in range(n):
            gain = one + sd[2] * g_mu[i] + e_mc
            add = sd[0] * g_au[i] + e_ac
            target[tr, i] = source[sr, i] * gain + add
            y_lin[r, i] = (shift[i] + slope[i] * (z_lin[zr, i] - zbar[i])) * gain + add


@njit(forceinline=True, error_model="numpy")
def _deviation(y, r, i, shift, inv):
    """d = (y[r, i] - shift[i]) * inv[i] in float64."""
    return (np.float64(y[r, i]) - shift[i]) * inv[i]


@njit(inline="always", error_model="numpy")
def _accumulate(y, y_lin, r, shift, inv, n, cv, pairs, acc, row_acc):
    """Add realisation r's sums (float64; see NEURON_FIELDS, ROW_FIELDS) of
    d = (y[r] - shift) * inv (and e of y_lin[r]): per-neuron sums into acc
    (fields, N), layer sums into row_acc (fields,).  ``inv`` (N,) is 1/scale.

    The element-wise sums and the sums over neurons are separate loops so
    that the first vectorises (a float reduction does not, without fastmath).
    """
    for i in range(n):
        d = _deviation(y, r, i, shift, inv)
        d2 = d * d
        acc[N_D1, i] += d
        acc[N_D2, i] += d2
        acc[N_D3, i] += d2 * d
        acc[N_D4, i] += d2 * d2
    if cv:
        for i in range(n):
            d = _deviation(y, r, i, shift, inv)
            e = _deviation(y_lin, r, i, shift, inv)
            d2, e2 = d * d, e * e
            acc[N_E1, i] += e
            acc[N_E2, i] += e2
            acc[N_DIFF2, i] += (d - e) * (d - e)
            acc[N_DQ, i] += d2 - e2
            acc[N_DQ2, i] += (d2 - e2) * (d2 - e2)
    s_a, q_a = _shifted_sums(y, r, shift, inv, n)
    p_a = _add_row_sums(s_a, q_a, pairs, row_acc)
    if cv:
        s_e, q_e = _shifted_sums(y_lin, r, shift, inv, n)
        p_e = (s_e * s_e - q_e) / pairs if pairs > 0 else 0.0
        row_acc[R_SE] += s_e
        row_acc[R_SE2] += s_e * s_e
        row_acc[R_DP] += p_a - p_e
        row_acc[R_DP2] += (p_a - p_e) * (p_a - p_e)
        row_acc[R_DQ] += q_a - q_e
        row_acc[R_DQ2] += (q_a - q_e) * (q_a - q_e)


@njit(forceinline=True, error_model="numpy")
def _add_row_sums(s, q, pairs, row_acc):
    """Add a realisation's s, s^2, p, p^2, q, q^2 (ROW_FIELDS) to row_acc; returns p."""
    p = (s * s - q) / pairs if pairs > 0 else 0.0
    row_acc[R_S] += s
    row_acc[R_S2] += s * s
    row_acc[R_P] += p
    row_acc[R_P2] += p * p
    row_acc[R_Q] += q
    row_acc[R_Q2] += q * q
    return p


@njit(forceinline=True, error_model="numpy")
def _split_centre(shift, inv, centre, n):
    """centre[0] + centre[1] = shift to float32's precision squared (hi and the rounded
    rest lo), centre[2] = inv (a power of two: exact while in float32's range, which
    block_rows > 0 presumes) in the type of ``centre``."""
    for i in range(n):
        hi = _real(shift[i], centre)
        centre[0, i] = hi
        centre[1, i] = _real(shift[i] - float(hi), centre)
        centre[2, i] = _real(inv[i], centre)


#: Rows whose block sums :func:`_block_moments` adds in one pass over the neurons (each sum
#: loaded and stored once per group instead of once per row; the same additions in the
#: same order, so the same numbers).
_GROUP_ROWS = 4


@njit(inline="always", error_model="numpy")
def _block_moments(y, r, step, group, centre, n, moments, deviations):
    """Add d, d^2, d^3, d^4 of the realisations in rows r, r + step, ... (``group`` of them,
    1 or _GROUP_ROWS) to a block's sums ``moments`` (4, N) in the type of y (float32: eight
    lanes per vector instead of float64's four), row after row for each neuron, with
    d = ((y[row] - hi) - lo) * inv from :func:`_split_centre`; row q's d into row q of
    ``deviations`` (_GROUP_ROWS, N).

    Rounding: y - hi is exact where y is within a factor 2 of hi (Sterbenz), else
    rounded relative to the deviation; so d is within about 2u |d| (+ u^2 |shift| inv)
    of (y - shift) inv, d^k within (2k + 1)u relative, and a block sum of B terms
    within (B - 1)u of the sum of their absolute values (u = 2^-24): relative to
    sum |d|^k, at most (B + 2k) u (precision.block_sum_error states it for the rule).
    """
    if group == _GROUP_ROWS:
        for i in range(n):
            hi, lo, inv = centre[0, i], centre[1, i], centre[2, i]
            m1, m2, m3, m4 = moments[0, i], moments[1, i], moments[2, i], moments[3, i]
            for q in range(_GROUP_ROWS):
                d = ((y[r + q * step, i] - hi) - lo) * inv
                deviations[q, i] = d
                d2 = d * d
                m1 += d
                m2 += d2
                m3 += d2 * d
                m4 += d2 * d2
            moments[0, i], moments[1, i], moments[2, i], moments[3, i] = m1, m2, m3, m4
    else:
        for i in range(n):
            d = ((y[r, i] - centre[0, i]) - centre[1, i]) * centre[2, i]
            deviations[0, i] = d
            d2 = d * d
            moments[0, i] += d
            moments[1, i] += d2
            moments[2, i] += d2 * d
            moments[3, i] += d2 * d2


@njit(forceinline=True, error_model="numpy", fastmath={"reassoc"})
def _row_sums(d, r, n):
    """s = sum_i d[r, i] and q = sum_i d[r, i]^2 in float64 over the first n entries of row r
    (d float32 or float64; d^2 exact in float64 for float32 d).  ``reassoc`` lets LLVM
    split the sums into vector lanes in an order of its choosing (fixed for the compiled
    code, so the same for any thread count): about 4x faster than :func:`_shifted_sums`'
    four scalar partial sums, and within a few float64 roundings of them.  A function of
    its own so that the flag stays on these two sums (kept apart from
    :func:`_block_moments`, whose d = (y - hi) - lo must not be reassociated); the row is
    indexed, not sliced, as a view per realisation costs reference counting."""
    s = q = 0.0
    for i in range(n):
        v = np.float64(d[r, i])
        s += v
        q += v * v
    return s, q


@njit(forceinline=True, error_model="numpy")
def _flush_moments(moments, acc, n):
    """Add a block's sums (4, N) to the float64 sums acc[N_D1 .. N_D4] (exactly: float32
    to float64 is exact) and zero them for the next block."""
    for field in range(4):
        for i in range(n):
            acc[N_D1 + field, i] += float(moments[field, i])
            moments[field, i] = 0


@njit(inline="always", error_model="numpy")
def _shifted_sums(y, r, shift, inv, n):
    """sum_i d_i and sum_i d_i^2 (float64) with d = (y[r] - shift) * inv, in four
    interleaved partial sums: a single running sum is a chain of dependent additions
    (4 cycles each) that the compiler may not reorder, so it would not vectorise."""
    s0 = s1 = s2 = s3 = 0.0
    q0 = q1 = q2 = q3 = 0.0
    quads = n - n % 4
    for i in range(0, quads, 4):
        d0 = _deviation(y, r, i, shift, inv)
        d1 = _deviation(y, r, i + 1, shift, inv)
        d2 = _deviation(y, r, i + 2, shift, inv)
        d3 = _deviation(y, r, i + 3, shift, inv)
        s0 += d0
        s1 += d1
        s2 += d2
        s3 += d3
        q0 += d0 * d0
        q1 += d1 * d1
        q2 += d2 * d2
        q3 += d3 * d3
    for i in range(quads, n):
        d = _deviation(y, r, i, shift, inv)
        s0 += d
        q0 += d * d
    return (s0 + s1) + (s2 + s3), (q0 + q1) + (q2 + q3)
