"""The float32 Monte Carlo engine, the dtype="auto" rule, the kernel's set-up checks
and the first-compile notice.

float32 draws the same random numbers as float64 (rounded once), so a float32
run differs from the float64 run of the same seed by rounding only: the tests
hold that difference against a tenth of a standard error (two runs of
different seeds differ by about 1.4 standard errors, so the check can fail).
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

from noiseprop import Network, Noise, simulate
from noiseprop.simulation import _kernels
from noiseprop.simulation.montecarlo import sample_outputs, seed_key
from noiseprop.simulation.precision import (
    FLOAT32_SAFETY,
    UNIT_ROUNDOFF,
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


def test_float32_draws_are_the_float64_draws_rounded_once():
    single = _kernels.standard_normals(seed_key(3), 7, 0, 2, 0, 200_000, np.float32)
    double = _kernels.standard_normals(seed_key(3), 7, 0, 2, 0, 200_000)
    assert single.dtype == np.float32
    np.testing.assert_array_equal(single, double.astype(np.float32))
    assert np.max(np.abs(single - double) / np.abs(double)) <= UNIT_ROUNDOFF


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_float32_agrees_with_float64_to_a_tenth_of_a_standard_error(placement):
    net, x = network()
    xs = np.stack([x, -x])
    noise = Noise(**ALL_NOISE, placement=placement)
    double = simulate(net, noise, xs, samples=20_000, seed=5)
    single = simulate(net, noise, xs, samples=20_000, seed=5, dtype="float32")
    other_seed = simulate(net, noise, xs, samples=20_000, seed=6, dtype="float32")
    assert (double.dtype, single.dtype) == ("float64", "float32")

    def worst_z(sim):
        z = []
        for k in range(1, net.depth + 1):
            z += list(np.ravel(np.abs(sim.mean[k] - double.mean[k]) / double.mean_stderr[k]))
            z += list(np.ravel(np.abs(sim.var[k] - double.var[k]) / double.var_stderr[k]))
            z += list(np.ravel(np.abs(sim.noise_var[k] - double.noise_var[k]) / double.noise_var_stderr[k]))
        return max(z)

    assert worst_z(single) < FLOAT32_SAFETY
    assert worst_z(other_seed) > FLOAT32_SAFETY  # the comparison can fail
    # and the difference is within the rigorous rounding bound of every neuron's mean
    lipschitz = [1.0, 0.5, 1.0]
    bounds = float32_error_bound(net, [noise] * 3, xs, [xs] + double.mean[1:], [0 * xs] + double.var[1:],
                                 lipschitz)
    for k in range(1, 4):
        assert np.all(np.abs(single.mean[k] - double.mean[k]) <= bounds[k - 1])


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


def test_sample_outputs_in_float32_are_the_float64_outputs_up_to_rounding():
    net, x = network()
    noise = Noise(**ALL_NOISE)
    double = sample_outputs(net, noise, x, samples=500, seed=2)
    single = sample_outputs(net, noise, x, samples=500, seed=2, dtype="float32")
    assert single.dtype == np.float64 and not np.array_equal(single, double)
    np.testing.assert_allclose(single, double, rtol=0, atol=1e-5)


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
