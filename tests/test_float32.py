"""The float32 Monte Carlo engine and its generator, the dtype="auto" rule, the kernel's
set-up checks and the first-compile notice.

float32 has its own generator (a 32-bit hash and a float32 Box-Muller transform), so a
float32 run and the float64 run of the same seed are different, equally distributed
realisations: the tests check the generator against the exact transform of its
uniforms and the runs against each other within their standard errors.
"""
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numba
import numpy as np
import pytest
from scipy import stats

from noiseprop import Network, Noise, simulate
from noiseprop.simulation import _kernels
from noiseprop.simulation.montecarlo import sample_outputs, seed_key
from noiseprop.simulation.precision import (
    BLOCK_ROWS,
    FLOAT32_SAFETY,
    NORMAL_RTOL,
    UNIT_ROUNDOFF,
    block_sum_error,
    float32_error_bound,
    float32_suffices,
    noise_floor,
)


def network(activations=("tanh", "sigmoid(gain=2)", "linear"), seed=0, sizes=(5, 8, 8, 3)):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((n, m)) * 1.5 / np.sqrt(m) for m, n in zip(sizes[:-1], sizes[1:])]
    net = Network.from_arrays(weights, [rng.uniform(-1, 1, n) for n in sizes[1:]], list(activations))
    return net, rng.uniform(-1, 1, sizes[0])


ALL_NOISE = dict(AU=1e-3, AC=1e-3, MU=1e-3, MC=1e-3)


#: False-failure probability of each statistical test (after correcting for its comparisons).
FALSE_FAILURE = 1e-6


def _lowbias32(x):
    """Wellons' lowbias32 hash on uint64 arrays holding 32-bit values (written here in NumPy,
    independently of the kernel)."""
    mask = np.uint64(0xFFFFFFFF)
    x = x ^ (x >> np.uint64(16))
    x = (x * np.uint64(0x7FEB352D)) & mask
    x = x ^ (x >> np.uint64(15))
    x = (x * np.uint64(0x846CA68B)) & mask
    return x ^ (x >> np.uint64(16))


def _bits32(key, count):
    """The 32 bits of draws 0..count-1 of the float32 stream of ``key`` (uint64 array)."""
    lo, hi = np.uint64(key & 0xFFFFFFFF), np.uint64(key >> 32)
    j = np.arange(count, dtype=np.uint64)
    return _lowbias32(_lowbias32((lo + j * np.uint64(0x9E3779B9)) & np.uint64(0xFFFFFFFF)) ^ hi)


def _box_muller(radius_bits, angle_bits):
    """The exact (float64) normal pair of the documented Box-Muller transform: radius from
    the high 31 bits of the first draw, angle (pi/4)(t + 1/2) 2^-29 from the low 29 bits of
    the second, in the octant its top three bits choose (swap, sign of x, sign of y)."""
    radius_bits, angle_bits = radius_bits.astype(np.int64), angle_bits.astype(np.int64)
    r = np.sqrt(-2 * np.log(((radius_bits >> 1) + 0.5) * 2.0**-31))
    a = ((angle_bits & 0x1FFFFFFF) + 0.5) * 2.0**-29 * np.pi / 4
    swap = (angle_bits >> 29) & 1 == 1
    x, y = np.where(swap, np.sin(a), np.cos(a)), np.where(swap, np.cos(a), np.sin(a))
    return (r * np.where((angle_bits >> 30) & 1 == 1, -x, x), r * np.where((angle_bits >> 31) & 1 == 1, -y, y))


@pytest.mark.parametrize("count", [300_000, 101, 10])
def test_float32_draws_are_the_box_muller_pairs_of_their_uniforms(count):
    """out[i], out[h + i] (h = ceil(count / 2)) are the Box-Muller pair of draws 2i, 2i + 1
    of a stream, their bits from the documented 32-bit hash, to NORMAL_RTOL (an odd count
    keeps the first normal of the last pair)."""
    key = int(_kernels.stream_key(seed_key(3), 7, 0, 2))
    draws = _kernels.standard_normals(seed_key(3), 7, 0, 2, 0, count, np.float32)
    assert draws.dtype == np.float32
    bits = _bits32(key, 2 * ((count + 1) // 2))
    x, y = _box_muller(bits[0::2], bits[1::2])
    exact = np.concatenate([x, y])[:count]
    assert np.max(np.abs(draws - exact) / np.abs(exact)) <= NORMAL_RTOL
    # words: out[i] of first = w is the pair of draws 2 (w + i), 2 (w + i) + 1
    later = _kernels.standard_normals(seed_key(3), 7, 0, 2, 5, 100, np.float32)
    first_pairs = _kernels.standard_normals(seed_key(3), 7, 0, 2, 0, 110, np.float32)
    np.testing.assert_array_equal(later[:50], first_pairs[5:55])
    np.testing.assert_array_equal(later[50:], first_pairs[60:])


@numba.njit
def _grid_pairs(radius_bits, angle_bits, out):
    for i in range(radius_bits.shape[0]):
        out[0, i], out[1, i] = _kernels._normal_pair32(radius_bits[i], angle_bits[i], _kernels._GEN32)


def test_float32_box_muller_on_a_grid_of_its_inputs():
    """Radii from every 4099th 32-bit input (to u = 2^-32 and u -> 1, where log u -> 0),
    each with an angle from another grid over all octants: relative error <= NORMAL_RTOL
    against the exact transform; the largest radius is sqrt(64 ln 2) = 6.66."""
    stride = 4099
    radius_bits = (np.arange(2**32 // stride + 1, dtype=np.uint64) * stride).astype(np.uint32)
    radius_bits = np.concatenate([radius_bits, np.array([0, 1, 0xFFFFFFFE, 0xFFFFFFFF], np.uint32)])
    angle_bits = ((np.arange(radius_bits.size, dtype=np.uint64) * 2654435761) % 2**32).astype(np.uint32)
    angle_bits[-4:] = 0  # the extreme radii at angle 2^-31 pi/4: x = r
    out = np.empty((2, radius_bits.size), np.float32)
    _grid_pairs(radius_bits, angle_bits, out)
    exact = np.stack(_box_muller(radius_bits, angle_bits))
    assert np.max(np.abs(out - exact) / np.abs(exact)) <= NORMAL_RTOL
    assert np.max(np.abs(out)) == pytest.approx(np.sqrt(64 * np.log(2)), rel=1e-6)


@pytest.mark.parametrize("width", [10, 37, 100, 101])
def test_the_kernel_draws_the_generators_numbers(width):
    """A layer's uncorrelated float32 draws in the kernel (the pairs of its vectorised loop per
    row, the rest for the whole tile) are fill_normals32's for the row's stream: outputs of
    a zero network with AU = 1 are the draws themselves."""
    net = Network.from_arrays([np.zeros((width, 3))], [np.zeros(width)], ["linear"])
    out = sample_outputs(net, Noise(AU=1.0), np.ones(3), samples=70, seed=4, dtype="float32")
    for sample in range(70):
        draws = _kernels.standard_normals(seed_key(4), sample, 0, 1, 1, width, np.float32)
        np.testing.assert_array_equal(out[sample], draws)


def test_float32_draws_are_standard_normal():
    """Moments, tail probabilities, KS and independence of 1e6 float32 draws (fixed seed);
    seven checks at 5.3 standard errors (1.2e-7 each) and a KS p-value above 1e-7."""
    n = 1_000_000
    draws = _kernels.standard_normals(seed_key(0), 5, 1, 2, 1, n, np.float32).astype(float)
    assert stats.kstest(draws, "norm").pvalue > FALSE_FAILURE / 10
    assert abs(draws.mean()) < 5.3 / np.sqrt(n)
    assert abs(draws.var() - 1) < 5.3 * np.sqrt(2 / n)
    assert abs(stats.kurtosis(draws)) < 5.3 * np.sqrt(24 / n)
    for level in (2.0, 3.5):
        p = 2 * stats.norm.sf(level)
        assert abs(np.mean(np.abs(draws) > level) - p) < 5.3 * np.sqrt(p * (1 - p) / n)
    neighbour = _kernels.standard_normals(seed_key(0), 6, 1, 2, 1, 1_000, np.float32)
    assert abs(np.corrcoef(draws[:1_000], neighbour)[0, 1]) < 5.3 / np.sqrt(1_000)
    assert abs(np.corrcoef(draws[:-1], draws[1:])[0, 1]) < 5.3 / np.sqrt(n)  # consecutive draws


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_float32_agrees_with_float64_within_standard_errors(placement):
    """Same seed, different generators: independent realisations.  Every neuron's mean and
    variance and every layer's noise variance (82 comparisons) within 5.7 combined standard
    errors (two-sided 1.2e-8 each: 1e-6 in all); a 20 % louder noise is caught."""
    net, x = network()
    xs = np.stack([x, -x])
    noise = Noise(**ALL_NOISE, placement=placement)
    double = simulate(net, noise, xs, samples=20_000, seed=5)
    single = simulate(net, noise, xs, samples=20_000, seed=5, dtype="float32")
    louder = simulate(net, noise.scaled(1.2), xs, samples=20_000, seed=6, dtype="float32")
    assert (double.dtype, single.dtype) == ("float64", "float32")

    def worst_z(sim):
        z = []
        for k in range(1, net.depth + 1):
            for field in ("mean", "var", "noise_var"):
                a, b = getattr(sim, field)[k], getattr(double, field)[k]
                se = np.hypot(getattr(sim, field + "_stderr")[k], getattr(double, field + "_stderr")[k])
                z += list(np.ravel(np.abs(a - b) / se))
        return max(z)

    assert worst_z(single) < 5.7
    assert worst_z(louder) > 5.7  # the comparison can fail


def test_float32_same_numbers_with_one_or_two_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:  # else both runs would use one thread: a test that cannot fail
        pytest.skip("numba has a single thread here")
    net, x = network()
    threads = numba.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            numba.set_num_threads(n)
            results.append(simulate(net, Noise(**ALL_NOISE), np.stack([x, -x]), samples=5_000, seed=7,
                                    chunk_size=700, dtype="float32").to_dict())
    finally:
        numba.set_num_threads(threads)
    assert json.dumps(results[0]) == json.dumps(results[1])


def test_float32_memory_does_not_grow_with_the_samples():
    net, x = network()
    noise = Noise(AU=1e-2, MC=1e-2)

    def peak(samples):
        tracemalloc.start()
        simulate(net, noise, x, samples=samples, seed=3, chunk_size=2_000, dtype="float32")
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:  # warm-up: numba's bookkeeping over its first ~1000 kernel calls (see test_montecarlo)
        simulate(net, noise, x, samples=12_000, seed=3, chunk_size=10, dtype="float32")
    finally:
        numba.set_num_threads(threads)
    few, many = peak(4_000), peak(128_000)  # 2 vs 64 chunks; keeping the samples would take 19 MB
    assert many < few + 64_000


def test_sample_outputs_in_float32_are_another_realisation_of_the_same_distribution():
    """float32 outputs (returned as float64) are not float64's numbers but have their mean:
    the 3 output means within 5.5 combined standard errors (4e-8 each)."""
    net, x = network()
    noise = Noise(AU=1e-2, MU=1e-2)
    double = sample_outputs(net, noise, x, samples=4_000, seed=2)
    single = sample_outputs(net, noise, x, samples=4_000, seed=2, dtype="float32")
    assert single.dtype == np.float64 and single.shape == double.shape
    assert not np.allclose(single, double, rtol=0, atol=1e-5)
    z = (single.mean(0) - double.mean(0)) / np.sqrt((single.var(0) + double.var(0)) / 4_000)
    assert np.all(np.abs(z) < 5.5)


def test_float32_block_sums_are_within_their_error_bound():
    """The output layer's mean and variance from the float32 block sums against the same
    realisations (sample_outputs: the same kernel and streams) summed in float64: within
    (B + 2) u rho and (3B + 8) u rho^2 (precision's bound, rho^2 = variance + (mean - noise-free
    value)^2, plus float64 slack), and not equal to them (the block sums are in use)."""
    net, x = network()
    noise = Noise(**ALL_NOISE)
    samples = 3_000
    single = simulate(net, noise, x, samples=samples, seed=4, dtype="float32")
    outputs = sample_outputs(net, noise, x, samples=samples, seed=4, dtype="float32")
    mean, var = outputs.mean(0), outputs.var(0, ddof=1)
    rho2 = var + (mean - net.forward(x)[-1]) ** 2
    slack = 1e-12 * np.sqrt(rho2)  # float64 rounding of either computation
    mean_error, var_error = np.abs(single.mean[-1] - mean), np.abs(single.var[-1] - var)
    assert np.all(mean_error <= (BLOCK_ROWS + 2) * UNIT_ROUNDOFF * np.sqrt(rho2) + slack)
    assert np.all(var_error <= (3 * BLOCK_ROWS + 8) * UNIT_ROUNDOFF * rho2 + slack * np.sqrt(rho2))
    assert np.any(var_error > slack * np.sqrt(rho2))
    # the rule's RMS-equivalent error moves the variance by 2 sigma e_acc: the same bound
    assert np.allclose(2 * np.sqrt(var) * block_sum_error(var, mean - net.forward(x)[-1]),
                       (3 * BLOCK_ROWS + 8) * UNIT_ROUNDOFF * rho2)


def test_the_rule_is_a_tenth_of_a_standard_error():
    sigma, samples = np.array([[0.02, 0.05]]), 10_000
    limit = FLOAT32_SAFETY * sigma / np.sqrt(2 * samples)
    assert float32_suffices([limit * (1 - 1e-12)], [sigma**2], samples)  # (up to the rounding of sqrt)
    assert not float32_suffices([limit * 1.01], [sigma**2], samples)
    assert not float32_suffices([limit], [sigma**2], 2 * samples)  # more samples: a smaller error to beat
    assert not float32_suffices([np.zeros((1, 2))], [np.array([[0.0, 1.0]])], samples)  # a noise-free neuron


def test_auto_takes_float32_only_where_the_rule_holds():
    net, x = network(("tanh", "tanh", "linear"), sizes=(3, 4, 4, 2))
    loud = Noise(AU=1e-2, AC=1e-2)
    assert simulate(net, loud, x, samples=1_000, seed=0, dtype="auto").dtype == "float32"
    # the rule itself decides: with the run's own statistics it holds for the float32 run
    means, variances = noise_floor(net, [loud] * 3, x[None])
    bounds = float32_error_bound(net, [loud] * 3, x[None], means, variances, [1.0, 1.0, 1.0])
    assert float32_suffices(bounds, variances[1:], 1_000)
    # ... and fails at some larger sample count, where auto goes back to float64
    big = next(r for r in (10**p for p in range(4, 16)) if not float32_suffices(bounds, variances[1:], r))
    assert simulate(net, loud, x, samples=big, seed=0, dtype="auto", rtol=0.5).dtype == "float64"
    assert simulate(net, Noise(), x, samples=100, dtype="auto").dtype == "float64"  # no noise
    assert simulate(net, loud, x, samples=1_000, dtype="auto", control_variate=True).dtype == "float64"
    step, _ = network(("tanh", "heaviside", "linear"), sizes=(3, 4, 4, 2))
    assert simulate(step, loud, x, samples=1_000, dtype="auto").dtype == "float64"  # discontinuous f


@pytest.mark.parametrize("dtype", ["float16", "double", 3, "f4"])
def test_bad_dtype_is_a_value_error_naming_the_choices(dtype):
    net, x = network()
    with pytest.raises(ValueError, match="dtype must be one of 'float64', 'float32', 'auto'"):
        simulate(net, Noise(AU=1e-3), x, samples=100, dtype=dtype)


def test_unknown_kernel_codes_are_refused_at_set_up():
    assert sorted(_kernels.ACTIVATION_CODES.values()) == list(range(_kernels.LAST_CODE + 1))
    _kernels.check_codes(np.arange(_kernels.LAST_CODE + 1))
    with pytest.raises(ValueError, match="unknown kernel activation code"):
        _kernels.check_codes(np.array([0, _kernels.LAST_CODE + 1]))
    with pytest.raises(ValueError, match="unknown kernel activation code"):
        _kernels.check_codes(np.array([-1]))


FIRST_RUN = textwrap.dedent("""
    import numpy as np
    from noiseprop import Network, Noise, simulate
    net = Network.symmetric(depth=2, width=3, weight=0.5, activation="tanh")
    for seed in range(2):
        simulate(net, Noise(AU=1e-3), np.ones(3), samples=100, seed=seed)
""")


@pytest.mark.slow
def test_first_run_says_once_that_it_compiles_and_a_warm_cache_says_nothing(tmp_path):
    """A fresh cache (NUMBA_CACHE_DIR an empty folder): the notice once; then silence."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))

    def run():
        done = subprocess.run([sys.executable, "-c", FIRST_RUN], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stderr

    cold, warm = run(), run()
    assert cold.count("compiling the Monte Carlo kernel") == 1
    assert any(tmp_path.rglob("*.nbi"))  # the cache went where NUMBA_CACHE_DIR says
    assert "compiling" not in warm


def test_cache_falls_back_to_a_temporary_folder_when_nothing_is_writable(monkeypatch, tmp_path):
    """No locator of numba serves (read-only package folder and home): a folder in the
    temporary directory; one that serves: numba's own choice is left alone."""
    from numba.core import caching

    from noiseprop.simulation import compilation

    class Nowhere:
        @classmethod
        def from_function(cls, py_func, py_file):
            return None

    class Somewhere(Nowhere):
        @classmethod
        def from_function(cls, py_func, py_file):
            return cls()

    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    monkeypatch.setattr(compilation.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [Somewhere])
    assert compilation.ensure_cache_location(_kernels.__file__) is None
    assert numba.config.CACHE_DIR == ""
    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [Nowhere])
    folder = compilation.ensure_cache_location(_kernels.__file__)
    assert folder is not None and folder.startswith(str(tmp_path))
    assert numba.config.CACHE_DIR == folder


def test_verify_runs_the_engine_it_is_given():
    from noiseprop import verify

    net, x = network()
    report = verify(net, Noise(AU=1e-3), x, samples=2_000, seed=1, dtype="float32")
    assert report.simulation.dtype == "float32"
    with pytest.raises(ValueError, match="dtype must be one of"):
        verify(net, Noise(AU=1e-3), x, samples=2_000, dtype="half")
