"""The mitigation recommender (plan) and the ``noiseprop mitigate`` command."""
import functools
import json
import warnings

import numpy as np
import pytest

import noiseprop
from noiseprop import Network, Noise
from noiseprop.cli import main
from noiseprop.cli.mitigate import budget_neurons
from noiseprop.io.networks import load_network
from noiseprop.mitigation import plan

AFFINE = "linear(slope=0.9)"

#: Linear response: exact for the affine networks compared here.
predict = functools.partial(noiseprop.predict, method="linear")


def affine_net(width=12, depth=3, seed=2):
    rng = np.random.default_rng(seed)
    sizes = [6] + [width] * (depth - 1) + [3]
    weights = [rng.standard_normal((b, a)) / np.sqrt(a) + 0.3 / a for a, b in zip(sizes[:-1], sizes[1:])]
    return Network.from_arrays(weights, None, [AFFINE] * (depth - 1) + ["linear"])


X = np.linspace(0.2, 1.0, 6)


@pytest.mark.parametrize("budget", [0, 1, 5, 13, 40, 100])
def test_plan_never_exceeds_budget_and_never_loses(budget):
    net = affine_net()
    noise = Noise(AU=0.01, AC=0.02, MU=0.005, MC=0.001)
    result = plan(net, noise, X, budget, samples=0)
    assert result.extra_neurons <= budget
    assert getattr(result.network, "extra_neurons", 0) == result.extra_neurons
    assert result.output_snr_db_after >= result.output_snr_db_before - 1e-12
    np.testing.assert_allclose(result.network.forward(X)[-1], net.forward(X)[-1], atol=1e-12)


def test_bigger_budget_is_never_worse():
    net, noise = affine_net(), Noise(AU=0.01, AC=0.02, MU=0.005)
    snrs = [plan(net, noise, X, b, samples=0).output_snr_db_after for b in (0, 12, 40, 120)]
    assert snrs == sorted(snrs) and snrs[-1] > snrs[0]


def test_correlated_noise_only_picks_ghosts():
    """Additive correlated noise alone: a ghost cancels it for one neuron, pooling cannot touch it."""
    net = affine_net()
    noise = Noise(AC=0.02)
    result = plan(net, noise, X, 50, samples=0, include_output=False)
    assert result.choices and all(c["copies"] == 1 and c["ghosts"] >= 1 for c in result.choices)
    assert any("pool on layer 1: no uncorrelated noise" in s for s in result.skipped)
    # every hidden layer's AC is removed: only the output layer's own AC remains
    only_output = predict(net, [Noise(), Noise(), noise], X).summary()[-1]["noise_var"]
    remaining = predict(result.network, result.network.noise_for(noise), X).summary()[-1]["noise_var"]
    np.testing.assert_allclose(remaining, only_output, rtol=1e-9)


def test_uncorrelated_noise_only_picks_pooling():
    net = affine_net()
    result = plan(net, Noise(AU=0.02), X, 200, samples=0)
    assert result.choices and all(c["ghosts"] == 0 and c["copies"] > 1 for c in result.choices)
    assert any("ghost neurons on layer 2: no correlated noise" in s for s in result.skipped)
    assert any("intra-layer coupling on layer 1: output noise variance x1.000000" in s for s in result.skipped)


def test_target_cheapest_and_unreachable():
    net, noise = affine_net(), Noise(AU=0.01, AC=0.02)
    best = plan(net, noise, X, 60, samples=0)
    reachable = plan(net, noise, X, 60, target_snr_db=best.output_snr_db_before + 0.5, samples=0)
    assert reachable.target_met and reachable.extra_neurons <= best.extra_neurons
    missed = plan(net, noise, X, 60, target_snr_db=best.output_snr_db_after + 3, samples=0)
    assert missed.target_met is False
    already = plan(net, noise, X, 60, target_snr_db=best.output_snr_db_before - 1, samples=0)
    assert already.target_met and already.choices == [] and already.extra_neurons == 0


def test_plan_monte_carlo_check_on_affine_network():
    net = affine_net()
    result = plan(net, Noise(AU=0.01, AC=0.02, MU=0.005, MC=0.001), X, 40, samples=50_000, seed=1)
    mc = result.monte_carlo
    assert mc["exact_for_affine"] and mc["agrees"], mc   # false failure 1e-6 (Bonferroni over 2 runs)
    json.dumps(result.to_dict(), allow_nan=False)


@pytest.mark.parametrize("budget, message", [
    (-1, "max_extra_neurons must be an integer >= 0"), (2.5, "max_extra_neurons must be an integer >= 0"),
    ("10", "max_extra_neurons must be an integer >= 0"),
])
def test_plan_bad_budget(budget, message):
    with pytest.raises(ValueError, match=message):
        plan(affine_net(), Noise(AU=0.01), X, budget)


def test_plan_bad_inputs():
    net = affine_net()
    with pytest.raises(ValueError, match="max_copies must be a positive integer"):
        plan(net, Noise(AU=0.01), X, 10, max_copies=0)
    with pytest.raises(ValueError, match="input x has shape"):
        plan(net, Noise(AU=0.01), np.ones(3), 10)
    from noiseprop.mitigation import pool
    with pytest.raises(ValueError, match="original network"):
        plan(pool(net, 2), Noise(AU=0.01), X, 10)


@pytest.mark.parametrize("noise, scale, message", [
    (Noise(MU=1e160), 1.0, "layer 2: the predicted noise variance overflows"),
    (Noise(AU=0.01), 1e308, "layer 1: the mean signal or its power"),
])
def test_plan_names_the_layer_that_overflows(noise, scale, message):
    """Not the misleading 'every output is 0' of a nan signal, and no numpy warning."""
    net = Network.symmetric(depth=3, width=4, weight=2.0, activation="linear")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=message):
            plan(net, noise, np.full(4, scale), 10)


# ----------------------------------------------------------------- CLI


def test_budget_fraction():
    assert budget_neurons(1.0, (64, 100, 100, 10)) == 200
    assert budget_neurons(0.25, (4, 3)) == 0
    with pytest.raises(ValueError, match="--budget"):
        budget_neurons(-0.1, (4, 5, 3))


def test_cli_mitigate_json_save_and_exit_codes(tmp_path, capsys):
    out = tmp_path / "mitigated.npz"
    args = ["mitigate", "--symmetric", "3,10,0.1,0,linear(slope=0.9)", "--AU", "0.01", "--AC", "0.01",
            "--budget", "1.0", "--samples", "2000"]
    assert main(args + ["--json", "--save", str(out)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["extra_neurons"] <= payload["max_extra_neurons"] == 20
    assert payload["gain"] > 1 and payload["target_met"] is None
    saved = load_network(out)
    assert saved.sizes == tuple(payload["sizes"])
    assert main(args + ["--save", str(out)]) == 2           # exists, no --force
    assert "exists" in capsys.readouterr().err
    assert main(args + ["--target-snr", "0"]) == 0
    assert "target 0 dB: met" in capsys.readouterr().out
    assert main(args + ["--target-snr", "200"]) == 1
    assert "NOT reachable" in capsys.readouterr().out
    assert main(args[:-2] + ["--samples", "0", "--budget", "-1"]) == 2


def test_differential_objective_ignores_common_mode_output_noise():
    """Correlated noise of the output layer shifts every output alike: it matters to the
    layer SNR, not to the outputs' differences (an arg-max).  A ghost neuron on the output
    removes it but adds its own uncorrelated noise."""
    net = affine_net()
    noise = [Noise(), Noise(), Noise(AU=0.001, AC=0.1)]
    snr = plan(net, noise, X, 20, samples=0)
    assert any(c["layer"] == 3 and c["ghosts"] for c in snr.choices)
    differential = plan(net, noise, X, 20, samples=0, objective="differential")
    assert not any(c["ghosts"] for c in differential.choices)
    assert differential.output_snr_db_after >= differential.output_snr_db_before
    with pytest.raises(ValueError, match="objective must be one of"):
        plan(net, noise, X, 20, objective="accuracy")
