"""Non-uniform pooling (pool_neurons), per-neuron noise contributions and their
allocation, and the planner's "neuron" allocation.

Exactness tests compare with linear-response ``predict`` on affine networks
(rtol 1e-10).  The Monte Carlo test follows tests/test_mitigation.py: fixed
seed, R = 100 000 (relative standard error of a variance ~0.45 %), z-limit at
a false-failure probability of 1e-6 (Bonferroni over the compared outputs),
and the unpooled prediction must be rejected so the test can fail.
"""
import functools
import itertools

import numpy as np
import pytest
from scipy import stats

import noiseprop
from noiseprop import Network, Noise, simulate
from noiseprop.mitigation import (
    Strategy,
    allocate_copies,
    compare,
    ghost_neurons,
    neuron_contributions,
    plan,
    pool,
    pool_neurons,
)
from noiseprop.mitigation.planning import output_stats

predict = functools.partial(noiseprop.predict, method="linear")
AFFINE = "linear(slope=0.8,offset=0.1)"
SIZES = (5, 6, 4, 3)
X = np.random.default_rng(9).uniform(0, 1, (3, 5))


def random_net(activations, sizes=SIZES, seed=3):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((b, a)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [0.3 * rng.standard_normal(b) for b in sizes[1:]]
    return Network.from_arrays(weights, biases, activations)


def counts(seed=0, high=4):
    rng = np.random.default_rng(seed)
    return {k: rng.integers(1, high, SIZES[k]) for k in (1, 2, 3)}


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", AFFINE])
def test_pool_neurons_preserves_function(activation):
    net = random_net([activation, activation, "linear"])
    for transformed in (pool_neurons(net, counts()), pool_neurons(ghost_neurons(net, groups=2), {2: [1, 2, 3, 1, 4, 2]}),
                        pool(net, [3, 1, 2, 1, 1, 2], layers=1)):
        error = np.max(np.abs(transformed.forward(X)[-1] - net.forward(X)[-1]))
        assert error < 1e-12
    big = pool_neurons(net, counts())
    assert big.extra_neurons == sum(int(c.sum() - c.size) for c in counts().values())
    assert big.sizes == (5, int(counts()[1].sum()), int(counts()[2].sum()), int(counts()[3].sum()), 3)


def test_uniform_counts_equal_pool():
    net = random_net(["sigmoid", "tanh", "linear"])
    a = pool_neurons(net, {1: [2] * 6, 2: [2] * 4})
    b = pool(net, 2)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("objective", ["snr", "differential"])
@pytest.mark.parametrize("noise", [Noise(AU=0.02, AC=0.01), Noise(AU=1e-4, MU=2e-4),
                                   Noise(AU=0.01, AC=0.02, placement="pre")])
def test_contribution_predicts_the_reduction_of_pooling_one_neuron(noise, objective):
    """Pooling neuron i into K copies removes a_i (1 - 1/K) of the output noise: exact on affine
    networks for additive noise; with MU up to the change of downstream MU terms, which is
    second order in the noise (D = 2e-4 here: within 1 %)."""
    net = random_net([AFFINE, AFFINE, "linear"])
    a = neuron_contributions(net, noise, X, objective)
    base = output_stats(net, [noise] * 3, X, "linear", objective)[1]
    rtol = 1e-10 if noise.MU == 0 else 0.01
    for layer, i, K in [(1, 0, 3), (2, 3, 2), (3, 1, 5)]:
        c = np.ones(SIZES[layer], int)
        c[i] = K
        pooled = pool_neurons(net, {layer: c})
        after = output_stats(pooled, pooled.noise_for(noise), X, "linear", objective)[1]
        np.testing.assert_allclose(base - after, a[layer - 1][i] * (1 - 1 / K), rtol=rtol, atol=1e-15)
    # the additive parts add up to the output's uncorrelated-source variance
    only_u = Noise(AU=noise.AU, placement=noise.placement)
    total = sum(v.sum() for v in neuron_contributions(net, only_u, X, objective))
    np.testing.assert_allclose(total, output_stats(net, [only_u] * 3, X, "linear", objective)[1], rtol=1e-10)


def test_non_uniform_pooling_monte_carlo():
    net = random_net([AFFINE, AFFINE, "linear"], seed=5)
    noise = Noise(AU=0.03, AC=0.01, MU=0.02, MC=0.01)
    pooled = pool_neurons(net, counts(seed=2, high=6))
    x = X[0]
    predicted = predict(pooled, pooled.noise_for(noise), x).var[-1]
    sim = simulate(pooled, pooled.noise_for(noise), x, 100_000, seed=4)
    z_crit = stats.norm.isf(1e-6 / (2 * 3))
    z = np.abs(sim.var[-1] - predicted) / sim.var_stderr[-1]
    assert np.all(z < z_crit), z
    unpooled = predict(net, noise, x).var[-1]
    assert np.any(np.abs(sim.var[-1] - unpooled) / sim.var_stderr[-1] > z_crit)


def test_greedy_allocation_is_optimal_and_within_budget():
    net = random_net([AFFINE, "tanh", "linear"], sizes=(4, 3, 2, 2), seed=7)
    noise = Noise(AU=0.02, MU=0.01)
    x = X[:, :4]
    a = np.concatenate(neuron_contributions(net, noise, x, "differential"))
    for budget in range(0, 7):
        copies = allocate_copies(net, noise, x, budget, "differential")
        used = sum(int(c.sum() - c.size) for c in copies.values())
        assert used <= budget
        got = np.concatenate([copies.get(t, np.ones(n, int)) for t, n in zip((1, 2, 3), (3, 2, 2))])
        best = min(np.sum(a / (1 + np.array(extra)))
                   for extra in itertools.product(range(budget + 1), repeat=a.size) if sum(extra) <= budget)
        assert np.sum(a / got) == pytest.approx(best, rel=1e-12)


def test_plan_neuron_allocation_respects_budget_and_targets_the_noisiest_neuron():
    # layer 1 neuron 0 is read with a weight 20 times larger: its own noise dominates the output
    rng = np.random.default_rng(1)
    w2 = 0.05 * rng.standard_normal((3, 4))
    w2[:, 0] = 1.0
    net = Network.from_arrays([rng.standard_normal((4, 5)) / 3, w2], [np.zeros(4), np.zeros(3)], [AFFINE, "linear"])
    noise = [Noise(AU=0.01), Noise()]
    for budget in (0, 3, 10):
        p = plan(net, noise, X, budget, samples=0, allocation="neuron", include_output=False)
        assert p.extra_neurons <= budget
        if budget:
            counts_1 = p.choices[0]["copies_per_neuron"]
            assert counts_1[0] == max(counts_1) > 1
            assert p.gain > 1
    uniform = plan(net, noise, X, 8, samples=0, allocation="layer", include_output=False)
    neuron = plan(net, noise, X, 8, samples=0, allocation="neuron", include_output=False)
    assert neuron.gain > uniform.gain
    # the plan's steps reproduce its network, and compare checks it by Monte Carlo
    result = compare(net, noise, X, {"plan": neuron.steps}, samples=20_000, seed=2)
    assert result.monte_carlo_agrees
    assert result["plan"].function_error < 1e-12


def test_plan_neuron_target_is_met_cheaply():
    net = random_net([AFFINE, AFFINE, "linear"])
    noise = Noise(AU=0.02, AC=0.01)
    full = plan(net, noise, X, 12, samples=0, allocation="neuron")
    target = (full.output_snr_db_before + full.output_snr_db_after) / 2
    cheap = plan(net, noise, X, 12, target, samples=0, allocation="neuron")
    assert cheap.target_met and cheap.extra_neurons <= full.extra_neurons
    assert cheap.output_snr_db_after >= target


@pytest.mark.parametrize("copies, match", [
    ({1: [1, 0, 1, 1, 1, 1]}, "layer 1, neuron 1"),
    ({1: [1, 1.5, 1, 1, 1, 1]}, "layer 1, neuron 1"),
    ({1: [2, 2]}, "one count per neuron"),
    ({5: [2] * 6}, "out of range"),
    ({}, "non-empty mapping"),
])
def test_pool_neurons_bad_input(copies, match):
    with pytest.raises(ValueError, match=match):
        pool_neurons(random_net(["sigmoid", "sigmoid", "linear"]), copies)


def test_bad_allocation_arguments():
    net = random_net(["sigmoid", "sigmoid", "linear"])
    with pytest.raises(ValueError, match="allocation"):
        plan(net, Noise(AU=0.01), X, 3, allocation="both")
    with pytest.raises(ValueError, match="budget"):
        allocate_copies(net, Noise(AU=0.01), X, -1)
    with pytest.raises(ValueError, match="per-neuron copies"):
        pool(net, [2] * 6, layers=[1, 2])
    with pytest.raises(ValueError, match="objective"):
        neuron_contributions(net, Noise(AU=0.01), X, "accuracy")
    assert Strategy("pool", layers=1, k=[2, 1, 1, 1, 1, 1]).k == (2, 1, 1, 1, 1, 1)


# ----------------------------------------------------------------- intra-layer averaging of copies


@pytest.mark.parametrize("activation", ["sigmoid", AFFINE])
def test_copy_averaging_coupling_is_pooling(activation):
    """The published full-suppression row (K equal entries) over a population of copies keeps the
    function and passes on exactly the noise of pooling; on distinct neurons it is refused."""
    net = random_net([activation, activation, "linear"])
    noise = Noise(AU=0.02, AC=0.01, MU=0.01, MC=0.005)
    pooled = pool(net, 3)
    coupled = noiseprop.mitigation.intra_layer(pooled, "copies")
    assert np.max(np.abs(coupled.forward(X)[-1] - net.forward(X)[-1])) < 1e-12
    np.testing.assert_allclose(predict(coupled, coupled.noise_for(noise), X).var[-1],
                               predict(pooled, pooled.noise_for(noise), X).var[-1], rtol=1e-12)
    # inside the coupled layer: uncorrelated variance divided by K, turned into covariance among copies
    layer = coupled.origin.index("coupling") + 1
    only_au = coupled.noise_for([Noise(AU=0.02), Noise(), Noise()])
    cov = predict(coupled, only_au, X[0], full_covariance=True).cov[layer]
    np.testing.assert_allclose(np.diag(cov)[:3], 0.02 / 3, rtol=1e-12)     # copies 0..2 of neuron 0
    np.testing.assert_allclose(cov[0, 1:3], 0.02 / 3, rtol=1e-12)          # ... fully correlated
    np.testing.assert_allclose(cov[0, 3:], 0.0, atol=1e-15)
    with pytest.raises(ValueError, match="no copies"):
        noiseprop.mitigation.intra_layer(net, "copies", layers=1)


def test_decision_objective_ignores_output_correlated_noise():
    net = random_net([AFFINE, AFFINE, "linear"])
    # (exact when nothing upstream is noisy: MC times upstream noise is a second-order term)
    base = [Noise(), Noise(), Noise(AU=0.01)]
    extra = base[:2] + [Noise(AU=0.01, AC=0.05, MC=0.05)]
    assert output_stats(net, extra, X, "linear", "decision") == pytest.approx(
        output_stats(net, base, X, "linear", "decision"), rel=1e-12)
    assert output_stats(net, extra, X, "linear", "differential")[1] > output_stats(
        net, base, X, "linear", "differential")[1] * 1.01
    # hidden correlated noise still counts
    hidden = [Noise(MC=0.05)] + base[1:]
    assert output_stats(net, hidden, X, "linear", "decision")[1] > output_stats(
        net, base, X, "linear", "decision")[1] * 1.01
    # with no output bias, layer L-1's multiplicative correlated noise is a common gain of all outputs
    rng = np.random.default_rng(4)
    nobias = Network.from_arrays([rng.standard_normal((6, 5)), rng.standard_normal((3, 6))],
                                 [rng.standard_normal(6), np.zeros(3)], [AFFINE, "linear"])
    gain_only = [Noise(MC=0.05), Noise()]
    assert output_stats(nobias, gain_only, X, "linear", "decision")[1] < 1e-15
    assert output_stats(nobias, gain_only, X, "linear", "differential")[1] > 1e-3
    p = plan(net, extra, X, 6, samples=0, objective="decision", allocation="neuron")
    assert p.extra_neurons <= 6 and p.gain > 1 and "decision" in p.summary()


@pytest.mark.slow
def test_cli_neuron_allocation_and_decision_objective(capsys):
    import json

    from noiseprop.cli import main

    args = ["mitigate", "--AU", "0.01", "--AC", "0.01", "--budget", "0.2", "--samples", "0",
            "--allocation", "neuron", "--objective", "decision", "--json"]
    assert main(args) == 0                                   # the shipped digits network
    payload = json.loads(capsys.readouterr().out)
    assert payload["extra_neurons"] <= payload["max_extra_neurons"] == 60
    assert payload["objective"] == "decision" and payload["gain"] > 1
    with pytest.raises(SystemExit) as info:
        main(args[:-5] + ["--allocation", "cells"])
    assert info.value.code == 2
    capsys.readouterr()
    symmetric = ["mitigate", "--symmetric", "3,10,0.1,0,linear(slope=0.9)", "--AU", "0.01", "--samples", "0",
                 "--objective", "decision"]
    assert main(symmetric) == 2                              # all outputs equal: no decision signal
    assert "no signal to protect" in capsys.readouterr().err
    zero = ["mitigate", "--symmetric", "3,10,0,0,linear", "--samples", "0"]
    assert main(zero) == 2                                   # every output 0: no signal at all
    err = capsys.readouterr().err
    assert "every output is 0" in err and "use objective='snr'" not in err  # no advice to use what failed


def test_pooled_ghost_pays_where_a_single_ghost_hurts():
    """Ghost own noise 4x the correlated noise it cancels: a lone ghost hurts; pooled (its
    copies read as their average) it pays, and the neuron plan takes it with copies."""
    rng = np.random.default_rng(2)
    w1 = rng.standard_normal((8, 5)) / 2
    w2 = np.abs(rng.standard_normal((3, 8)))                  # row sums large: AC passes on strongly
    net = Network.from_arrays([w1, w2], [np.zeros(8), np.zeros(3)], [AFFINE, "linear"])
    noise = [Noise(AU=0.04, AC=0.01), Noise()]
    lone = ghost_neurons(net, layers=1)
    base = output_stats(net, noise, X, "linear", "snr")[1]
    assert output_stats(lone, lone.noise_for(noise), X, "linear", "snr")[1] > base
    layer_plan = plan(net, noise, X, 20, samples=0, include_output=False)
    neuron_plan = plan(net, noise, X, 20, samples=0, include_output=False, allocation="neuron")
    assert neuron_plan.choices[0]["ghosts"] == 1 and neuron_plan.extra_neurons <= 20
    assert neuron_plan.gain >= layer_plan.gain
    ghost_copies = neuron_plan.choices[0]["copies_per_neuron"][-1]
    assert ghost_copies > 1
