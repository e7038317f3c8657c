"""Mitigation transformations: exact function preservation, exact analytic noise
reductions on affine networks, and Monte Carlo agreement.

Statistical tests: fixed seeds; a simulated variance is compared with its
prediction by z = |sim - pred| / stderr against the two-sided normal quantile
of a false-failure probability of 1e-6 per test (Bonferroni over the neurons
compared).  With R = 100 000 realisations the relative standard error of a
variance is about 0.45 %, so a prediction wrong by ~3 % fails; each test also
checks that the *unmitigated* prediction is rejected (the test can fail).
"""
import functools
import json

import numpy as np
import pytest
from scipy import stats

import noiseprop
from noiseprop import Network, Noise, simulate
from noiseprop.mitigation import (
    GHOST,
    READOUT,
    MitigatedNetwork,
    Strategy,
    compare,
    ghost_neurons,
    intra_layer,
    pool,
)

FALSE_FAILURE = 1e-6
SAMPLES = 100_000

#: Linear response: exact for the affine networks compared here.
predict = functools.partial(noiseprop.predict, method="linear")


def z_critical(comparisons: int) -> float:
    return float(stats.norm.isf(FALSE_FAILURE / (2 * comparisons)))


def random_net(activations, sizes=(5, 7, 6, 4), seed=3, bias=0.3):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((b, a)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [bias * rng.standard_normal(b) for b in sizes[1:]]
    return Network.from_arrays(weights, biases, activations)


AFFINE = "linear(slope=0.8,offset=0.1)"
X = np.random.default_rng(9).uniform(0, 1, 5)


# ----------------------------------------------------------------- function preservation


TRANSFORMS = {
    "pool hidden": lambda n: pool(n, 3),
    "pool all": lambda n: pool(n, 2, layers=[1, 2, 3]),
    "ghost": lambda n: ghost_neurons(n),
    "ghost groups, output": lambda n: ghost_neurons(n, layers=[1, 3], groups=3, level=0.2),
    "intra": lambda n: intra_layer(n, 0.7),
    "intra matrix": lambda n: intra_layer(n, np.eye(6) + 0.1 * np.ones((6, 6)), layers=2),
    "ghost then pool": lambda n: pool(ghost_neurons(n, layers=[1, 2, 3], groups=2), 3, layers=[1, 2, 3]),
    "pool then ghost then intra": lambda n: intra_layer(ghost_neurons(pool(n, 2), groups=2), "mean"),
}


@pytest.mark.parametrize("name", TRANSFORMS)
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", AFFINE])
def test_noise_free_function_preserved(name, activation):
    net = random_net([activation, activation, "linear"])
    batch = np.random.default_rng(1).uniform(-1, 1, (40, 5))
    transformed = TRANSFORMS[name](net)
    assert isinstance(transformed, MitigatedNetwork) and isinstance(transformed, Network)
    np.testing.assert_allclose(transformed.forward(batch)[-1], net.forward(batch)[-1], rtol=0, atol=1e-12)
    # and the transformation really changed the network
    assert transformed.sizes != net.sizes or transformed.depth != net.depth


def test_costs_and_bookkeeping():
    net = random_net(["sigmoid", "sigmoid", "linear"])
    pooled = pool(net, 3, layers=[1, 3])
    assert pooled.sizes == (5, 21, 6, 12, 4)
    assert pooled.origin == (1, 2, 3, READOUT)
    assert pooled.extra_neurons == 2 * 7 + 2 * 4
    assert pooled.extra_connections == sum(w.size for w in pooled.weights) - (5 * 7 + 7 * 6 + 6 * 4)
    ghosted = ghost_neurons(net, groups=2)
    assert ghosted.sizes == (5, 9, 8, 4) and ghosted.extra_neurons == 4
    assert np.sum(ghosted.neurons[0] == GHOST) == 2
    assert np.all(ghosted.weights[0][-2:] == 0)  # ghosts receive no input
    coupled = intra_layer(net, 0.5, layers=1)
    assert coupled.extra_neurons == 0 and coupled.depth == 4
    noise = [Noise(AU=1.0), Noise(AU=2.0), Noise(AU=3.0)]
    assert [nz.AU for nz in coupled.noise_for(noise)] == [1.0, 0.0, 2.0, 3.0]
    assert [nz.AU for nz in pooled.noise_for(noise)] == [1.0, 2.0, 3.0, 0.0]
    assert pool(net, 1).sizes == net.sizes  # K = 1 is the identity


# ----------------------------------------------------------------- pooling: 1/K exactly


def two_layer_affine(seed=4):
    rng = np.random.default_rng(seed)
    w1, w2 = rng.standard_normal((6, 5)) / 2, rng.standard_normal((4, 6)) / 2
    return Network.from_arrays([w1, w2], [rng.standard_normal(6) * 0.2, np.zeros(4)], [AFFINE, "linear"])


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_pooling_divides_uncorrelated_variance_exactly(placement):
    """Output variance = correlated part + uncorrelated part / K (layer 2 noise-free)."""
    net, K = two_layer_affine(), 4
    full = Noise(AU=0.02, AC=0.01, MU=0.03, MC=0.015, placement=placement)
    uncorrelated = Noise(AU=0.02, MU=0.03, placement=placement)
    correlated = Noise(AC=0.01, MC=0.015, placement=placement)
    silent = Noise(placement=placement)
    var = lambda n, nz: predict(n, [nz, silent], X).var[-1]  # noqa: E731
    pooled = pool(net, K)
    expected = var(net, correlated) + var(net, uncorrelated) / K
    np.testing.assert_allclose(var(pooled, full), expected, rtol=1e-12)
    # the pooled layer itself is unchanged neuron by neuron
    np.testing.assert_allclose(predict(pooled, [full, silent], X).var[1],
                               np.repeat(predict(net, [full, silent], X).var[1], K), rtol=1e-12)


def test_pooling_monte_carlo():
    net, K = two_layer_affine(), 4
    noise = [Noise(AU=0.02, AC=0.01, MU=0.03, MC=0.015), Noise(AU=0.001)]
    pooled = pool(net, K)
    predicted = predict(pooled, pooled.noise_for(noise), X).var[-1]
    sim = simulate(pooled, pooled.noise_for(noise), X, SAMPLES, seed=11)
    z = np.abs(sim.var[-1] - predicted) / sim.var_stderr[-1]
    assert np.all(z < z_critical(4)), z
    unpooled = predict(net, noise, X).var[-1]
    assert np.any(np.abs(sim.var[-1] - unpooled) / sim.var_stderr[-1] > z_critical(4))


# ----------------------------------------------------------------- ghost neurons


@pytest.mark.parametrize("placement", ["post", "pre"])
@pytest.mark.parametrize("groups", [1, 3])
def test_ghost_cancels_additive_correlated_noise_exactly(placement, groups):
    net = two_layer_affine()
    noise = [Noise(AC=0.05, placement=placement), Noise(placement=placement)]
    ghosted = ghost_neurons(net, groups=groups, level=0.4)
    before = predict(net, noise, X).var[-1]
    after = predict(ghosted, noise, X).var[-1]
    assert np.all(before > 1e-3)
    np.testing.assert_allclose(after, 0.0, atol=1e-15 * before.max())
    sim = simulate(ghosted, noise, X, 2_000, seed=2)
    assert np.max(sim.var[-1]) < 1e-20  # rounding only: the draws cancel term by term


def test_ghost_residual_formula_and_monte_carlo():
    """Post placement: what remains is S^2 (c^2 D_MU + D_AU) from the ghost itself,
    the members' uncorrelated noise, and (sum_i W_ji (m_i - c))^2 D_MC."""
    net = two_layer_affine()
    d = dict(AU=0.01, AC=0.04, MU=0.02, MC=0.03)
    noise = [Noise(**d), Noise()]
    c = 0.35
    ghosted = ghost_neurons(net, level=c)
    w2 = net.weights[1]
    m1 = net.forward(X)[1]
    s = w2.sum(axis=1)
    members_u = predict(net, [Noise(AU=d["AU"], MU=d["MU"]), Noise()], X).var[-1]
    expected = members_u + s**2 * (c**2 * d["MU"] + d["AU"]) + (w2 @ (m1 - c)) ** 2 * d["MC"]
    predicted = predict(ghosted, noise, X).var[-1]
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)
    sim = simulate(ghosted, noise, X, SAMPLES, seed=5)
    z = np.abs(sim.var[-1] - predicted) / sim.var_stderr[-1]
    assert np.all(z < z_critical(4)), z
    original = predict(net, noise, X).var[-1]
    assert np.any(np.abs(sim.var[-1] - original) / sim.var_stderr[-1] > z_critical(4))


def test_ghost_on_output_layer_uses_noise_free_readout():
    net = two_layer_affine()
    noise = Noise(AC=0.05)
    ghosted = ghost_neurons(net, layers=2)
    assert ghosted.origin == (1, 2, READOUT)
    out = predict(ghosted, ghosted.noise_for([Noise(), noise]), X)
    np.testing.assert_allclose(out.var[-1], 0.0, atol=1e-15)


# ----------------------------------------------------------------- intra-layer coupling


def test_intra_layer_converts_uncorrelated_to_correlated_and_passes_on_the_same_noise():
    net = Network.symmetric(depth=3, width=8, weight=1 / 8, bias=0.1, activation=AFFINE)
    noise = Noise(AU=0.02, AC=0.01)
    a = 0.6
    coupled = intra_layer(net, a, layers=1)
    before = predict(net, noise, np.ones(8))
    after = predict(coupled, coupled.noise_for(noise), np.ones(8))
    # layer 1 is symmetric: Sigma = u I + c 11^T; V V^T = (1 - a)^2 I + (1 - (1 - a)^2) 11^T / N,
    # so u' = (1 - a)^2 u and c' = c + (1 - (1 - a)^2) u / N
    u, c = before.uncorrelated[1][0], before.correlated[1]
    np.testing.assert_allclose(after.uncorrelated[2], (1 - a) ** 2 * u, rtol=1e-12)
    np.testing.assert_allclose(after.correlated[2], c + (1 - (1 - a) ** 2) * u / 8, rtol=1e-12)
    # what reaches the output is unchanged: the next layer undoes V
    np.testing.assert_allclose(after.var[-1], before.var[-1], rtol=1e-12)
    # a noisy coupling only adds noise
    noisy = predict(coupled, coupled.noise_for(noise, coupling=Noise(AU=0.01)), np.ones(8))
    assert np.all(noisy.var[-1] > before.var[-1])


# ----------------------------------------------------------------- compare


def test_compare_gains_agree_with_monte_carlo():
    net = random_net([AFFINE, AFFINE, "linear"], seed=6)
    noise = Noise(AU=0.02, AC=0.02, MU=0.01, MC=0.002)
    result = compare(net, noise, X, {
        "pool": Strategy("pool", k=3),
        "ghost": Strategy("ghost", groups=3),
        "both": [Strategy("ghost", groups=3), Strategy("pool", k=3)],
    }, samples=SAMPLES, seed=3)
    assert result.monte_carlo_agrees
    for r in result.results:
        assert r.function_error < 1e-12
        mc = r.monte_carlo
        assert mc["exact_for_affine"]
        # predicted gain within 6 standard errors of the simulated one (both noise variances ~0.45 %)
        rel = np.hypot(mc["noise_var_stderr"] / mc["noise_var"],
                       result.baseline_monte_carlo["noise_var_stderr"] / result.baseline_monte_carlo["noise_var"])
        assert abs(mc["gain"] / r.gain - 1) < 6 * rel
    assert result["both"].gain > max(result["pool"].gain, result["ghost"].gain) > 1
    assert len(result["pool"].layers) == 3
    json.dumps(result.to_dict(), allow_nan=False)
    assert "original" in result.table()


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize("k", [0, -1, 1.5, "2", True, None])
def test_pool_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k \\(copies per neuron\\)"):
        pool(random_net("sigmoid"), k)


@pytest.mark.parametrize("transform", [
    lambda n, l: pool(n, 2, layers=l), lambda n, l: ghost_neurons(n, layers=l), lambda n, l: intra_layer(n, 0.5, l),
])
@pytest.mark.parametrize("layer", [0, 4, -1, 1.5])
def test_layer_out_of_range(transform, layer):
    with pytest.raises(ValueError, match="out of range: the network has layers 1..3"):
        transform(random_net("sigmoid"), layer)


def test_other_bad_inputs():
    net = random_net(["sigmoid", "sigmoid", "linear"])
    with pytest.raises(ValueError, match="layer 1: groups must be 1..7"):
        ghost_neurons(net, layers=1, groups=8)
    with pytest.raises(ValueError, match="layer 1: activation sigmoid cannot output the ghost level 1.5"):
        ghost_neurons(net, layers=1, level=1.5)
    with pytest.raises(ValueError, match="output layer"):
        intra_layer(net, 0.5, layers=3)
    with pytest.raises(ValueError, match="singular or ill-conditioned"):
        intra_layer(net, np.ones((7, 7)), layers=1)
    with pytest.raises(ValueError, match="coupling fraction a must lie in"):
        intra_layer(net, 1.0)
    coupled = intra_layer(net, 0.5, layers=1)
    with pytest.raises(ValueError, match="layer 2 is a noise-free coupling layer"):
        pool(coupled, 2, layers=2)
    with pytest.raises(ValueError, match="no hidden layer"):
        pool(Network.from_arrays([np.ones((2, 3))]), 2)


def test_compare_refuses_strategies_that_do_not_apply():
    net = random_net(["sigmoid", "sigmoid", "linear"])
    with pytest.raises(ValueError, match="layer 1 has no correlated noise \\(AC = MC = 0\\)"):
        compare(net, Noise(AU=0.01, MU=0.01), X, [Strategy("ghost")], samples=0)
    with pytest.raises(ValueError, match="layer 2 has no uncorrelated noise \\(AU = MU = 0\\)"):
        compare(net, [Noise(AU=0.1), Noise(AC=0.1), Noise()], X, [Strategy("pool")], samples=0)
    with pytest.raises(ValueError, match="strategy kind must be one of"):
        Strategy("average")


def test_existing_tools_apply_unchanged_to_transformed_networks(tmp_path):
    from noiseprop import check_design, verify
    from noiseprop.io.networks import load_network, save_network

    net = random_net([AFFINE, AFFINE, "linear"], seed=8)
    transformed = pool(ghost_neurons(net, layers=[1, 3], groups=2), 2, layers=[1, 2])
    noise = transformed.noise_for(Noise(AU=0.01, AC=0.01, MU=0.01, MC=0.01))
    assert verify(transformed, noise, X, samples=20_000, seed=4, method="linear").passed   # false failure 1e-6
    report = check_design(transformed, noise, X, method="linear")
    assert len(report.layers) >= 1
    save_network(tmp_path / "t.npz", transformed)
    loaded = load_network(tmp_path / "t.npz")
    np.testing.assert_array_equal(loaded.forward(X)[-1], transformed.forward(X)[-1])
