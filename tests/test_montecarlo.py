"""The Monte Carlo engine against exact moments, its reproducibility and its estimators.

Statistical tests follow spec section 7: a fixed seed, a tolerance of z
standard errors with z from a false-failure probability of 1e-6 per test
after a Bonferroni correction over every compared quantity, and a check that
the same comparison fails for a prediction that is a few percent off.
"""
import json
import tracemalloc

import numba
import numpy as np
import pytest
from exact_moments import exact_moments
from scipy import stats

from noiseprop import Activation, Network, Noise, predict, simulate
from noiseprop.noise import NOISE_TYPES
from noiseprop.simulation._kernels import standard_normals
from noiseprop.simulation.montecarlo import sample_outputs, seed_key

FALSE_FAILURE = 1e-6


def critical_z(comparisons: int) -> float:
    return float(stats.norm.isf(FALSE_FAILURE / (2 * comparisons)))


def affine_network(seed=0, sizes=(4, 6, 5, 3)):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((n, m)) / np.sqrt(m) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.uniform(-0.5, 0.5, n) for n in sizes[1:]]
    slopes = rng.uniform(0.6, 1.3, len(weights)) * rng.choice([-1, 1], len(weights))
    offsets = rng.uniform(0.2, 1.0, len(weights))
    acts = [f"linear(slope={s},offset={o})" for s, o in zip(slopes, offsets)]
    net = Network.from_arrays(weights, biases, acts)
    x = rng.uniform(0.0, 1.0, sizes[0])
    return net, x, weights, biases, slopes, offsets


def exact(net_parts, noise, x):
    _, _, weights, biases, slopes, offsets = net_parts
    means, covs = exact_moments(weights, biases, slopes, offsets, noise, x)
    corr = [np.mean(c[~np.eye(len(c), dtype=bool)]) if len(c) > 1 else 0.0 for c in covs]
    return means, [np.diag(c) for c in covs], corr


def z_scores(sim, means, variances, corr):
    """|deviation| / standard error of every mean, variance and correlated part, layers 1..L."""
    z = []
    for k in range(1, len(means)):
        z += list(np.abs(sim.mean[k] - means[k]) / sim.mean_stderr[k])
        z += list(np.abs(sim.var[k] - variances[k]) / sim.var_stderr[k])
        z.append(abs(sim.correlated[k] - corr[k]) / sim.correlated_stderr[k])
    return np.array(z)


NOISE_CASES = [{name: 2e-2} for name in NOISE_TYPES] + [{"AU": 1e-2, "AC": 5e-3, "MU": 2e-2, "MC": 1e-2}]


@pytest.mark.parametrize("placement", ["post", "pre"])
@pytest.mark.parametrize("intensities", NOISE_CASES, ids=lambda d: "+".join(d))
def test_affine_network_matches_exact_moments(placement, intensities):
    parts = affine_network(seed=1)
    net, x = parts[0], parts[1]
    # per-layer intensities: layer 2 noise-free, layer 3 at half intensity
    noise = [Noise(**intensities, placement=placement), Noise(placement=placement),
             Noise(placement=placement, **{k: v / 2 for k, v in intensities.items()})]
    sim = simulate(net, noise, x, samples=300_000, seed=11)
    means, variances, corr = exact(parts, noise, x)
    z = z_scores(sim, means, variances, corr)
    limit = critical_z(len(z))
    assert np.max(z) < limit
    # the same comparison rejects variances 4 % off (relative s.e. ~ sqrt(2/R) = 0.26 %)
    wrong = z_scores(sim, means, [1.04 * v for v in variances], corr)
    assert np.max(wrong) > limit


def test_batch_of_inputs_matches_exact_moments_per_input():
    parts = affine_network(seed=2, sizes=(3, 4, 2))
    net = parts[0]
    xs = np.random.default_rng(5).uniform(-1, 1, (3, 3))
    noise = Noise(AU=1e-2, AC=1e-2, MU=1e-2, MC=1e-2)
    sim = simulate(net, noise, xs, samples=200_000, seed=3)
    assert sim.var[2].shape == (3, 2) and sim.correlated.shape == (3, 3)
    comparisons = []
    for b, x in enumerate(xs):
        means, variances, corr = exact(parts, [noise] * 2, x)
        for k in (1, 2):
            comparisons += list(np.abs(sim.var[k][b] - variances[k]) / sim.var_stderr[k][b])
            comparisons += list(np.abs(sim.mean[k][b] - means[k]) / sim.mean_stderr[k][b])
    assert max(comparisons) < critical_z(len(comparisons))


def test_one_layer_network_matches_exact_moments():
    parts = affine_network(seed=4, sizes=(3, 5))
    net, x = parts[0], parts[1]
    noise = Noise(AU=1e-2, AC=1e-2, MU=1e-2, MC=1e-2)
    sim = simulate(net, noise, x, samples=200_000, seed=2)
    z = z_scores(sim, *exact(parts, [noise], x))
    assert np.max(z) < critical_z(len(z))
    cv = simulate(net, noise, x, samples=1_000, seed=2, control_variate=True)
    np.testing.assert_allclose(cv.var[1], predict(net, noise, x, method="linear").var[1], rtol=1e-12)


def test_layer_noise_var_stderr_is_honest():
    """noise_var_stderr accounts for the correlation between neurons: the
    spread of noise_var over independent seeds matches it (chi-square test)."""
    parts = affine_network(seed=4)
    noise = Noise(AC=1e-2, MU=1e-2)
    runs = [simulate(parts[0], noise, parts[1], samples=2_000, seed=s) for s in range(60)]
    estimates = np.array([r.noise_var[3] for r in runs])
    stderr = np.mean([r.noise_var_stderr[3] for r in runs])
    ratio = np.var(estimates, ddof=1) / stderr**2
    # (n-1) ratio ~ chi2(n-1) when the standard error is right
    low, high = stats.chi2.ppf([FALSE_FAILURE / 2, 1 - FALSE_FAILURE / 2], 59) / 59
    assert low < ratio < high


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_control_variate_is_exact_on_affine_networks(placement):
    parts = affine_network(seed=6)
    noise = Noise(AU=3e-2, AC=1e-2, MU=2e-2, MC=1e-2, placement=placement)
    sim = simulate(parts[0], noise, parts[1], samples=2_000, seed=0, control_variate=True)
    means, variances, corr = exact(parts, [noise] * 3, parts[1])
    for k in range(1, 4):
        np.testing.assert_allclose(sim.var[k], variances[k], rtol=1e-9)
        np.testing.assert_allclose(sim.mean[k], means[k], rtol=1e-9, atol=1e-12)
        assert sim.correlated[k] == pytest.approx(corr[k], rel=1e-9, abs=1e-14)
        assert np.all(sim.var_stderr[k] < 1e-9 * variances[k])


def nonlinear_network(seed=0):
    rng = np.random.default_rng(seed)
    sizes = (5, 8, 8, 3)
    weights = [rng.standard_normal((n, m)) * 1.5 / np.sqrt(m) for m, n in zip(sizes[:-1], sizes[1:])]
    net = Network.from_arrays(weights, [rng.uniform(-1, 1, n) for n in sizes[1:]], ["tanh", "sigmoid(gain=2)", "erf"])
    return net, rng.uniform(-1, 1, sizes[0])


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_control_variate_is_unbiased_on_nonlinear_networks(placement):
    """At a noise level where linear response is visibly wrong, the
    variance-reduced estimate agrees with the plain one (not with predict)."""
    net, x = nonlinear_network()
    noise = Noise(AU=2e-2, AC=1e-2, MU=2e-2, MC=1e-2, placement=placement)
    plain = simulate(net, noise, x, samples=400_000, seed=1)
    reduced = simulate(net, noise, x, samples=100_000, seed=2, control_variate=True)
    linear = predict(net, noise, x, method="linear")
    z_plain, z_linear = [], []
    for k in range(1, 4):
        se = np.hypot(plain.var_stderr[k], reduced.var_stderr[k])
        z_plain += list(np.abs(plain.var[k] - reduced.var[k]) / se)
        z_plain += list(np.abs(plain.mean[k] - reduced.mean[k])
                        / np.hypot(plain.mean_stderr[k], reduced.mean_stderr[k]))
        if k > 1 or placement == "pre":  # layer 1 with post placement is affine in the noise
            z_linear += list(np.abs(linear.var[k] - reduced.var[k]) / reduced.var_stderr[k])
    assert max(z_plain) < critical_z(len(z_plain))
    assert max(z_linear) > 10 * critical_z(len(z_linear))  # the estimator is not just predict


def test_control_variate_gains_a_factor_of_order_one_over_d():
    """The sampled difference y - y_lin is second order in the noise, so the
    variance of the estimate shrinks by a factor ~ 1/D against plain sampling."""
    net, x = nonlinear_network()

    def reduction(d):
        noise = Noise(AU=d, AC=d, MU=d, MC=d)
        plain = simulate(net, noise, x, samples=20_000, seed=1)
        reduced = simulate(net, noise, x, samples=20_000, seed=1, control_variate=True)
        # layer 1 (post placement) is affine in the noise: there the reduced error is zero
        assert np.all(reduced.noise_var_stderr[1] == 0)
        return (plain.noise_var_stderr[2:] / reduced.noise_var_stderr[2:]) ** 2

    at_1e3, at_1e4 = reduction(1e-3), reduction(1e-4)
    assert np.all(at_1e3 > 20) and np.all(at_1e4 > 200)
    assert np.all((5 < at_1e4 / at_1e3) & (at_1e4 / at_1e3 < 20))


def test_same_numbers_with_one_or_two_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:  # else both runs would use one thread: a test that cannot fail
        pytest.skip("numba has a single thread here")
    net, x = nonlinear_network()
    xs = np.stack([x, -x])
    noise = Noise(AU=1e-2, AC=1e-2, MU=1e-2, MC=1e-2)
    threads = numba.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            numba.set_num_threads(n)
            results.append([simulate(net, noise, xs, samples=5_000, seed=7, control_variate=cv, chunk_size=700)
                            for cv in (False, True)])
    finally:
        numba.set_num_threads(threads)
    for one, two in zip(*results):
        assert json.dumps(one.to_dict()) == json.dumps(two.to_dict())


def test_chunking_changes_only_the_rounding_and_not_the_memory():
    net, x = nonlinear_network()
    noise = Noise(AU=1e-2, MC=1e-2)
    a = simulate(net, noise, x, samples=6_000, seed=3, chunk_size=1_000)
    b = simulate(net, noise, x, samples=6_000, seed=3, chunk_size=777)
    for k in range(4):
        np.testing.assert_allclose(a.var[k], b.var[k], rtol=1e-10)

    def peak(samples):
        """Peak traced memory of a run (NumPy arrays; the kernel's own tile
        buffers, outside tracemalloc's view, are sized by the chunk too)."""
        tracemalloc.start()
        simulate(net, noise, x, samples=samples, seed=3, chunk_size=2_000)
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size

    # warm-up: numba keeps ~400 kB of bookkeeping over its first ~1000 kernel calls, then no
    # more; one thread makes these tiny calls fast (no waiting for a busy second core)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        simulate(net, noise, x, samples=12_000, seed=3, chunk_size=10)
    finally:
        numba.set_num_threads(threads)
    few, many = peak(4_000), peak(128_000)  # 2 vs 64 chunks
    # keeping the extra 124 000 realisations of 19 neurons would take 19 MB; one chunk 0.3 MB
    assert many < few + 64_000


def test_rtol_stops_when_every_layer_is_precise_enough():
    net, x = nonlinear_network()
    noise = Noise(AU=1e-2, MU=1e-2)
    sim = simulate(net, noise, x, samples=1_000_000, seed=0, rtol=0.05, chunk_size=500)
    assert sim.converged and sim.samples < 1_000_000
    halfwidth = 1.96 * sim.noise_var_stderr[1:] / sim.noise_var[1:]
    assert np.all(halfwidth <= 0.05) and np.max(halfwidth) > 0.04  # stopped at the first chunk that reached it
    capped = simulate(net, noise, x, samples=1_000, seed=0, rtol=0.001)
    assert capped.converged is False and capped.samples == 1_000
    assert simulate(net, noise, x, samples=1_000).converged is None


def test_sample_outputs_are_the_realisations_simulate_summarises():
    net, x = nonlinear_network()
    noise = Noise(AU=1e-2, AC=1e-2, MU=1e-2, MC=1e-2, placement="pre")
    sim = simulate(net, noise, x, samples=3_000, seed=9)
    for layer in (2, -1):
        outputs = sample_outputs(net, noise, x, samples=3_000, seed=9, layer=layer)
        k = layer % 4 if layer < 0 else layer
        np.testing.assert_allclose(outputs.mean(axis=0), sim.mean[k], rtol=1e-10)
        np.testing.assert_allclose(outputs.var(axis=0, ddof=1), sim.var[k], rtol=1e-8)
    batch = sample_outputs(net, noise, np.stack([x, x, -x]), samples=4, seed=9)
    assert batch.shape == (4, 3, 3)
    # the same draws; only the BLAS rounding of a (4 x 3)-row vs a (4 x 1)-row product differs
    np.testing.assert_allclose(batch[:, 0], sample_outputs(net, noise, x, samples=4, seed=9), rtol=1e-13)
    assert not np.array_equal(batch[:, 0], batch[:, 1])  # independent noise for every input


@pytest.mark.parametrize("activation", ["linear(slope=-0.7,offset=0.2)", "sigmoid(gain=1.5)", "tanh(gain=0.8)",
                                        "relu", "erf(gain=0.5)", "heaviside"])
@pytest.mark.parametrize("placement", ["post", "pre"])
def test_kernel_activations_match_the_numpy_ones(activation, placement):
    rng = np.random.default_rng(0)
    net = Network.from_arrays([rng.standard_normal((6, 4)), rng.standard_normal((3, 6))], None, activation)
    x = rng.standard_normal(4)
    sim = simulate(net, Noise(placement=placement), x, samples=4, seed=0)
    for k, expected in enumerate(net.forward(x)):
        np.testing.assert_allclose(sim.mean[k], expected, rtol=1e-14, atol=1e-15)
        assert np.all(sim.var[k] == 0)


def test_standard_normals_are_standard_normal():
    draws = standard_normals(seed_key(0), 5, 1, 2, 0, 1_000_000)
    assert stats.kstest(draws, "norm").pvalue > FALSE_FAILURE
    n = draws.size
    assert abs(draws.mean()) < 5.3 / np.sqrt(n)
    assert abs(draws.var() - 1) < 5.3 * np.sqrt(2 / n)
    assert abs(stats.kurtosis(draws)) < 5.3 * np.sqrt(24 / n)
    tail = np.mean(np.abs(draws) > 3.0)
    assert tail == pytest.approx(2 * stats.norm.sf(3.0), rel=5.3 * np.sqrt(1 / (n * 2.7e-3)))
    other = standard_normals(seed_key(0), 6, 1, 2, 0, 1_000)
    assert abs(np.corrcoef(draws[:1_000], other)[0, 1]) < 5.3 / np.sqrt(1_000)
    # the two halves of a word (draws i and n/2 + i) are independent draws
    low, high = draws[: n // 2], draws[n // 2:]
    assert abs(np.corrcoef(low, high)[0, 1]) < 5.3 / np.sqrt(n / 2)
    assert abs(np.corrcoef(low**2, high**2)[0, 1]) < 5.3 * np.sqrt(3 / (n / 2))


class Softsign(Activation):
    name = "softsign"

    def __call__(self, z):
        return z / (1 + np.abs(z))

    def derivative(self, z):
        return 1 / (1 + np.abs(z)) ** 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(samples=3), "samples must be at least 4"),
    (dict(samples=2.5), "samples must be a positive integer"),
    (dict(seed=-1), "seed must be a non-negative integer"),
    (dict(seed="a"), "seed must be a non-negative integer"),
    (dict(rtol=0), "rtol must be a number in (0, 1)"),
    (dict(chunk_size=0), "chunk_size must be a positive integer"),
    (dict(x=np.ones(3)), "input x has shape (3,)"),
    (dict(noise=[Noise()] * 3), "noise sequence has 3 entries"),
    (dict(net="net"), "net must be a noiseprop.Network"),
    (dict(net=Network.from_arrays([np.ones((2, 4))], None, Softsign())), "layer 1: activation 'softsign' has no Monte Carlo kernel"),
])
def test_bad_input_is_a_value_error_naming_it(kwargs, message):
    args = dict(net=Network.symmetric(2, 4, 0.25), noise=Noise(AU=1e-3), x=np.ones(4), samples=100, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError) as err:
        simulate(args.pop("net"), args.pop("noise"), args.pop("x"), **args)
    assert message in str(err.value)


@pytest.mark.parametrize("layer", [0, 3, -3, 1.5])
def test_sample_outputs_rejects_a_bad_layer(layer):
    with pytest.raises(ValueError, match="layer must be 1..2 or -1..-2"):
        sample_outputs(Network.symmetric(2, 4, 0.25), Noise(AU=1e-3), np.ones(4), 10, 0, layer=layer)


def test_progress_bar_on_request_only(capsys):
    net, x = nonlinear_network()
    simulate(net, Noise(AU=1e-3), x, samples=2_000, chunk_size=500, progress=True)
    err = capsys.readouterr().err
    assert "simulate:" in err and "/2000" in err
    simulate(net, Noise(AU=1e-3), x, samples=2_000, chunk_size=500)  # short run: no bar
    assert capsys.readouterr().err == ""
