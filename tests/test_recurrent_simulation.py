"""Recurrent Monte Carlo: agreement with predict, threads, seeds, memory.

Statistical tests use fixed seeds and the verdict of ``verify`` (false-failure
probability 1e-6 per call, Bonferroni over every neuron and step), so a
correct prediction fails with probability <= 1e-6 per test; the negative
control shows that a 10 % error in the noise is caught.
"""
import tracemalloc

import numpy as np
import pytest

from noiseprop import Noise
from noiseprop.recurrent import RecurrentNetwork, echo_state_network, predict, simulate, verify
from noiseprop.recurrent.simulation import _select
from noiseprop.simulation.verification import VerificationReport

NOISES = {
    "AU": Noise(AU=0.05),
    "AC": Noise(AC=0.05),
    "MU": Noise(MU=0.05),
    "MC": Noise(MC=0.05),
}


def _net(feedback, activation="linear(slope=0.9,offset=0.1)", leak=0.7, n=6):
    rng = np.random.default_rng(11)
    W = rng.normal(0, 1, (n, n))
    W *= 0.6 / np.max(np.abs(np.linalg.eigvals(W)))
    return RecurrentNetwork.from_arrays(rng.normal(0, 0.6, (n, 2)), W, rng.normal(0, 0.3, (2, n)),
                                        rng.normal(0, 0.3, n), np.full(2, 0.5), leak=leak,
                                        activation=activation, feedback=feedback)


U = np.random.default_rng(2).uniform(-1, 1, (8, 2))


@pytest.mark.parametrize("name", list(NOISES))
@pytest.mark.parametrize("placement", ["post", "pre"])
@pytest.mark.parametrize("feedback", [False, True])
def test_linear_network_agrees_at_large_noise(name, placement, feedback):
    noise = Noise(**NOISES[name].intensities, placement=placement)
    out_noise = Noise(AU=0.02, MC=0.02) if feedback else None
    report = verify(_net(feedback), noise, U, samples=20_000, seed=5, generate=8 if feedback else 0,
                    output_noise=out_noise)
    assert report.passed, report.table()


def test_wrong_prediction_is_caught():
    net, noise = _net(True), Noise(AU=0.02, MU=0.02)
    sim = simulate(net, noise, U, 20_000, seed=5, generate=8)
    wrong = predict(net, noise.scaled(1.1), U, generate=8)
    report = VerificationReport(_select(wrong.reservoir, sim.steps), sim.reservoir, 1e-6, True)
    assert not report.passed


@pytest.mark.parametrize("activation", ["tanh", "sigmoid(gain=2.0)"])
def test_nonlinear_reservoir_agrees_at_small_noise(activation):
    """D = 1e-3: the linearisation error is far below the sampling error of 20 000 samples."""
    net = echo_state_network(12, 2, 2, 0.9, seed=3, activation=activation, leak=0.8, bias_scale=0.3,
                             feedback=True)
    report = verify(net, Noise(AU=1e-3, AC=1e-3, MU=1e-3, MC=1e-3), U, samples=20_000, seed=2,
                    generate=8, method="moments")
    assert report.passed, report.table()
    assert max(abs(row["relative_error"]) for row in report.reservoir.layers) < 0.03


def test_same_numbers_with_one_or_two_threads():
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one thread only: the comparison could not fail")
    net, noise = _net(True), Noise(AU=0.01, AC=0.01, MU=0.01, MC=0.01)
    previous = numba.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            numba.set_num_threads(threads)
            results.append(simulate(net, noise, U, 3000, seed=9, generate=5, chunk_size=1000))
    finally:
        numba.set_num_threads(previous)
    for a, b in zip(results[0].reservoir.var + results[0].output.var, results[1].reservoir.var + results[1].output.var):
        np.testing.assert_array_equal(a, b)


def test_seed_reproducible_and_distinct():
    net, noise = _net(False), Noise(AU=0.01)
    a = simulate(net, noise, U, 500, seed=1)
    b = simulate(net, noise, U, 500, seed=1)
    c = simulate(net, noise, U, 500, seed=2)
    np.testing.assert_array_equal(a.var, b.var)
    assert not np.array_equal(a.var, c.var)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        simulate(net, noise, U, 500, seed=-1)
    with pytest.raises(ValueError, match=r"steps must be integers in 1..8"):
        simulate(net, noise, U, 500, steps=[0, 3])


def test_memory_independent_of_samples_and_steps():
    """Python-side peak allocation with one recorded step: the same for 10x the
    samples and 20x the steps (the kernel's buffers are per chunk)."""
    net = _net(False, n=50)
    noise = Noise(AU=0.01)
    simulate(net, noise, U[:2], 8, chunk_size=4)  # compile outside the measurement
    peaks = []
    for samples, steps in ((2_000, 10), (20_000, 10), (2_000, 200)):
        u = np.ones((steps, 2))
        tracemalloc.start()
        simulate(net, noise, u, samples, steps=[steps], chunk_size=1000)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert max(peaks) < 1.5 * min(peaks) + 200_000, peaks


def test_kernel_tanh_within_a_few_ulp_of_numpy():
    from noiseprop.recurrent._kernels import tanh

    x = np.concatenate([np.linspace(-25, 25, 20001), np.logspace(-300, 1.5, 2000), -np.logspace(-300, 1.5, 2000),
                        [0.0, -0.0, 0.3465735902799726, -0.3465735902799727]])
    expected = np.tanh(x)
    got = tanh(x)
    scale = np.maximum(np.abs(expected), np.finfo(float).tiny)
    assert np.max(np.abs(got - expected) / scale) < 5 * np.finfo(float).eps
    assert np.array_equal(np.sign(got), np.sign(expected))  # (the sign of a zero may differ)


@pytest.mark.parametrize("n", [5, 1])
def test_tile_sums_equal_numpy_sums(n):
    """The kernel's tile sums (four realisations at a time plus the remainder; row sums
    reassociated) against NumPy's float64 sums of the same float32 deviations."""
    from noiseprop.recurrent._kernels import _accumulate_tile

    d = np.random.default_rng(4).normal(0, 0.1, (7, n)).astype(np.float32)
    acc, row_acc = np.zeros((4, n)), np.zeros(6)
    _accumulate_tile(d, 7, acc, row_acc)
    x = d.astype(np.float64)
    np.testing.assert_allclose(acc, [np.sum(x**k, axis=0) for k in (1, 2, 3, 4)], rtol=1e-13)
    s, q = x.sum(axis=1), (x * x).sum(axis=1)
    p = (s * s - q) / (n * (n - 1)) if n > 1 else np.zeros(7)
    expected = [s.sum(), (s * s).sum(), p.sum(), (p * p).sum(), q.sum(), (q * q).sum()]
    np.testing.assert_allclose(row_acc, expected, rtol=1e-12, atol=1e-300)


def test_mixed_precision_matches_double_up_to_rounding_and_sparse_path_agrees():
    """Same seed, same draws (the correlated noise AC, MC: one float64 pair per realisation
    and step in both precisions; the per-neuron AU, MU draws may come from a float32
    generator in single precision): the single-precision deviations change the estimates
    by rounding only (relative 1e-5, far below their standard errors of ~1e-2); with all
    four types the dense and the sparse reservoir (compressed-row path) must pass verify
    at large noise."""
    net = echo_state_network(40, 1, 1, 0.8, density=0.1, seed=2, activation="linear(slope=0.9)", leak=0.8,
                             feedback=True)
    dense = RecurrentNetwork.from_arrays(net.W_in, net.W + 1e-3, net.W_out, leak=0.8, activation="linear(slope=0.9)",
                                         feedback=True)
    u = np.sin(0.4 * np.arange(12))[:, None]
    correlated = Noise(AC=1e-2, MC=1e-2)
    mixed = simulate(dense, correlated, u, 400, seed=5, generate=4)
    double = simulate(dense, correlated, u, 400, seed=5, generate=4, precision="double")
    np.testing.assert_allclose(mixed.var, double.var, rtol=1e-5)
    np.testing.assert_allclose(mixed.output_var, double.output_var, rtol=1e-5)
    noise = Noise(AU=1e-2, AC=1e-2, MU=1e-2, MC=1e-2)
    assert verify(net, noise, u, 4000, seed=6, generate=4).passed
    assert verify(dense, noise, u, 4000, seed=6, generate=4).passed
    with pytest.raises(ValueError, match="precision must be one of"):
        simulate(net, noise, u, 100, precision="single")


@pytest.mark.parametrize("placement", ["post", "pre"])
@pytest.mark.parametrize("density", [None, 0.2])
def test_mixed_precision_rounds_relative_to_the_noise_not_the_signal(placement, density):
    """tanh reservoir (|z| up to ~3, self-closed steps) at D = 1e-18: the noise (sd 1e-9) is
    far below float32's resolution of the signal (6e-8), so arithmetic rounded relative to
    the signal would give variances off by orders of magnitude; the kernel's deviations in
    float32 must match double precision (same draws: the correlated types, see above) to
    rounding, as at large noise (D = 0.3, where deviations beyond the small-argument formula
    take the double-precision path)."""
    net = echo_state_network(30, 1, 1, 0.95, density=density, seed=3, leak=0.6, input_scale=2.0, feedback=True)
    u = 2 * np.sin(0.4 * np.arange(15))[:, None]
    for D in (1e-18, 0.3):
        noise = Noise(AC=D, MC=D, placement=placement)
        mixed = simulate(net, noise, u, 300, seed=5, generate=5)
        double = simulate(net, noise, u, 300, seed=5, generate=5, precision="double")
        assert 1e-4 < np.median(mixed.var[1:]) / D < 1e2  # the noise is propagated (not lost or blown up)
        np.testing.assert_allclose(mixed.var, double.var, rtol=1e-5, atol=0)
        np.testing.assert_allclose(mixed.output_var, double.output_var, rtol=1e-5, atol=0)
