"""Design-rule checks (noiseprop.analysis.design): verdicts, limits, sensitivity, budgets."""
import json
import math

import numpy as np
import pytest
from exact_moments import exact_moments
from scipy.stats import norm

from noiseprop import Network, Noise, check_design, predict, simulate
from noiseprop.analysis.design import (
    design_chart,
    noise_budget,
    noise_scale_budget,
    symmetric_accumulation,
    symmetric_budgets,
)
from noiseprop.io.builtin import reference_network
from noiseprop.output_statistics import selected_layers

N = 10


def symmetric(slope, depth=8, width=N):
    return Network.symmetric(depth, width, 1.0 / width, 0.0, f"linear(slope={slope})")


@pytest.mark.parametrize("slope, growth", [(0.8, "bounded"), (1.0, "linear"), (1.2, "exponential")])
def test_verdicts_on_symmetric_linear_networks(slope, growth):
    """docs/model.md §5: correlated noise grows bounded / linearly / exponentially for s <, =, > 1."""
    report = check_design(symmetric(slope), Noise(AC=1e-4), np.ones(N))
    assert [rule.growth for rule in report.layers] == [growth] * 8
    assert report.bounded is (growth == "bounded")
    assert report.passed is (growth == "bounded")
    for rule in report.layers:
        assert rule.accumulation_gain == pytest.approx(slope**2, rel=1e-12)
        assert rule.correlated_gain == pytest.approx(slope**2, rel=1e-12)
        assert rule.uncorrelated_gain == pytest.approx(slope**2 / N, rel=1e-12)
        assert rule.max_slope == pytest.approx(1.0, rel=1e-12)
        assert rule.slope == pytest.approx(slope, rel=1e-12)
    if growth != "bounded":
        assert all(math.isinf(rule.limit) for rule in report.layers)
        assert f"from {slope:.3g} to below 1 " in report.recommendations[0]
        assert report.recommendations[0].startswith("lower the slope of layers 2, 3, 4, 5, 6, 7 ")
        assert report.recommendations[1].startswith("the output layer multiplies the noise it receives")


def test_the_output_layer_does_not_enter_the_verdict_on_accumulation():
    """A gain >= 1 in the output layer alone scales the noise once: bounded, reported per layer."""
    stable = symmetric(0.8, depth=4)
    loud = Network.from_arrays(stable.weights, stable.biases, ["linear(slope=0.8)"] * 3 + ["linear(slope=3)"])
    report = check_design(loud, Noise(AC=1e-4), np.ones(N))
    assert [rule.layer for rule in report.judged_layers] == [2, 3]
    assert report.bounded and report.passed
    assert not report.layers[-1].bounded and report.layers[-1].accumulation_gain == pytest.approx(9.0)
    assert report.to_dict()["judged_layers"] == [2, 3]
    assert any(text.startswith("the output layer multiplies") for text in report.recommendations)
    hidden = Network.from_arrays(stable.weights, stable.biases, ["linear(slope=0.8)", "linear(slope=3)"]
                                 + ["linear(slope=0.8)"] * 2)
    assert not check_design(hidden, Noise(AC=1e-4), np.ones(N)).bounded


def test_deep_stack_limit_is_the_closed_form_and_what_predict_reaches():
    s, d_au, d_ac = 0.8, 2e-4, 1e-4
    report = check_design(symmetric(s), Noise(AU=d_au, AC=d_ac), np.ones(N))
    closed = d_ac / (1 - s**2) + d_au * (1 + (s**2 / N) / (1 - s**2))  # docs/model.md §5
    for rule in report.layers:
        assert rule.limit == pytest.approx(closed, rel=1e-12)
    deep = predict(symmetric(s, depth=150), Noise(AU=d_au, AC=d_ac), np.ones(N))
    assert deep.noise_var[-1] == pytest.approx(closed, rel=1e-10)


def test_multiplicative_noise_raises_the_gain_and_lowers_the_slope_bound():
    """Correlated multiplicative noise multiplies the carried covariance by 1 + D_MC."""
    d_mc = 0.05
    report = check_design(symmetric(0.99), Noise(MC=d_mc), np.ones(N))
    for rule in report.layers:
        assert rule.accumulation_gain == pytest.approx(0.99**2 * (1 + d_mc), rel=1e-12)
        assert rule.max_slope == pytest.approx(1 / math.sqrt(1 + d_mc), rel=1e-12)
        assert rule.growth == "exponential"
    assert not report.bounded


def test_accumulation_gain_of_symmetric_networks_with_both_multiplicative_noises():
    """docs/model.md §5's recursion maps (u, c) through c' = s^2 w^2 N (u + N c), u = D_MU c',
    c = (1 + D_MC) c': its one non-zero eigenvalue is s^2 w^2 N (N (1 + D_MC) + D_MU)."""
    s, w, d_mu, d_mc = 0.9, 0.07, 0.3, 0.05
    net = Network.symmetric(4, N, w, 0.0, f"linear(slope={s})")
    report = check_design(net, Noise(AU=1e-4, MU=d_mu, MC=d_mc), np.ones(N))
    for rule in report.layers:
        assert rule.accumulation_gain == pytest.approx(s**2 * w**2 * N * (N * (1 + d_mc) + d_mu), rel=1e-12)
        assert rule.max_slope == pytest.approx(1 / math.sqrt(w**2 * N * (N * (1 + d_mc) + d_mu)), rel=1e-12)


def test_deep_stack_limit_with_multiplicative_noise_matches_predict():
    """A deep symmetric stack at a fixed working point: w = 1/N and
    f(z) = 0.7 z + 0.3 keep the mean at 1 in every layer (slope 0.7)."""
    def net(depth):
        return Network.symmetric(depth, N, 1.0 / N, 0.0, "linear(slope=0.7, offset=0.3)")

    noise = Noise(AU=1e-4, AC=2e-4, MU=3e-4, MC=1e-4)
    report = check_design(net(6), noise, np.ones(N))
    deep = predict(net(200), noise, np.ones(N))
    assert report.layers[5].limit == pytest.approx(deep.noise_var[-1], rel=1e-10)
    assert report.layers[5].limit > 1.4 * deep.noise_var[1]  # far from a single layer's own noise


def test_deep_stack_limit_with_pre_activation_noise_matches_predict():
    def net(depth):
        return Network.symmetric(depth, N, 1.0 / N, 0.0, "linear(slope=0.6, offset=0.4)")

    noise = Noise(AU=1e-4, AC=2e-4, MU=3e-4, MC=1e-4, placement="pre")
    report = check_design(net(4), noise, np.ones(N))
    assert report.layers[3].limit == pytest.approx(predict(net(150), noise, np.ones(N)).noise_var[-1], rel=1e-10)


def test_max_slope_puts_a_random_layer_on_the_boundary():
    """Rescaling a layer's slope to the reported bound gives accumulation gain 1."""
    rng = np.random.default_rng(7)
    weights = [rng.normal(0.2, 1.0, (8, 8)) / np.sqrt(8) for _ in range(3)]
    report = check_design(Network.from_arrays(weights, None, "linear(slope=0.9)"), Noise(AU=1e-3), np.ones(8))
    rule = report.layers[1]
    assert rule.slope == pytest.approx(0.9)
    at_bound = Network.from_arrays(weights, None, f"linear(slope={rule.max_slope!r})")
    boundary = check_design(at_bound, Noise(AU=1e-3), np.ones(8)).layers[1]
    assert boundary.accumulation_gain == pytest.approx(1.0, rel=1e-10)


def test_sensitivity_closed_form_on_symmetric_network():
    """Output variance of a symmetric linear net (w = 1/N): AC on layer k adds
    s^(2(L-k)) D, AU adds s^(2(L-k)) D / N (k < L) or D (k = L)."""
    s, depth = 0.9, 5
    d = np.array([1e-4, 2e-4])
    report = check_design(symmetric(s, depth), Noise(AU=d[0], AC=d[1]), np.ones(N))
    k = np.arange(1, depth + 1)
    au = np.where(k < depth, s ** (2 * (depth - k)) / N, 1.0)
    ac = s ** (2 * (depth - k))
    np.testing.assert_allclose(report.sensitivity[:, 0], au, rtol=1e-9)
    np.testing.assert_allclose(report.sensitivity[:, 1], ac, rtol=1e-9)
    total = d[0] * au.sum() + d[1] * ac.sum()
    np.testing.assert_allclose(report.contribution[:, :2], np.c_[d[0] * au, d[1] * ac] / total, rtol=1e-9)
    assert report.dominant_layer == depth and report.dominant_type == "AC"


def test_sensitivity_against_exact_moments_of_a_random_affine_network():
    """Independent: brute-force moments (tests/exact_moments.py), difference at D and D + 1."""
    rng = np.random.default_rng(4)
    sizes, slopes, offsets = (3, 4, 3, 2), [0.8, 1.3, 0.6], [0.1, -0.2, 0.3]
    weights = [rng.standard_normal((n, m)) / np.sqrt(m) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0, 0.2, n) for n in sizes[1:]]
    acts = [f"linear(slope={a},offset={b})" for a, b in zip(slopes, offsets)]
    net = Network.from_arrays(weights, biases, acts)
    x = rng.uniform(-1, 1, 3)
    noise = [Noise(AU=1e-3, AC=2e-3, MU=3e-3, MC=1e-3), Noise(AU=2e-3, MC=4e-3), Noise(AC=1e-3, MU=2e-3)]
    report = check_design(net, noise, x)

    def output_var(layer_noise):
        _, covs = exact_moments(weights, biases, slopes, offsets, layer_noise, x)
        return np.mean(np.diag(covs[-1]))

    base = output_var(noise)
    for k in range(3):
        for t, name in enumerate(("AU", "AC", "MU", "MC")):
            stepped = list(noise)
            stepped[k] = Noise(**{**stepped[k].intensities, name: getattr(stepped[k], name) + 1.0})
            assert report.sensitivity[k, t] == pytest.approx(output_var(stepped) - base, rel=1e-9, abs=1e-14)


def _output_noise(net, noise, x):
    """V_L: batch mean of the output layer's mean noise variance (linear response)."""
    return float(np.mean(predict(net, noise, x, method="linear").noise_var[-1]))


def _stepped(noise, k, name, step):
    stepped = list(noise)
    stepped[k] = Noise(**{**stepped[k].intensities, name: getattr(stepped[k], name) + step},
                       placement=stepped[k].placement)
    return stepped


def _random_design(seed, placement):
    """A non-square tanh / relu / sigmoid network, per-layer intensities of
    every type (hidden MU and MC included) and a batch of 3 inputs."""
    rng = np.random.default_rng(seed)
    sizes = (5, 7, 6, 8, 4)
    weights = [rng.standard_normal((n, m)) / np.sqrt(m) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0, 0.3, n) for n in sizes[1:]]
    net = Network.from_arrays(weights, biases, ["tanh", "relu", "sigmoid", "tanh"])
    intensities = rng.uniform(1e-3, 4e-3, (4, 4))
    noise = [Noise(**dict(zip(("AU", "AC", "MU", "MC"), row)), placement=placement) for row in intensities]
    return net, noise, rng.uniform(-1, 1, (3, 5))


@pytest.mark.parametrize("placement", ["post", "pre"])
@pytest.mark.parametrize("method", ["linear", "moments"])
def test_adjoint_sensitivity_equals_unit_steps_of_predict(placement, method):
    """The adjoint pass against the former computation, kept here independent
    of the library: V_L is affine in each single intensity, so V_L(D + 1) - V_L(D)
    from two full linear predictions is the exact derivative (4 L + 1 predictions)."""
    net, noise, x = _random_design(11, placement)
    for inputs in (x, x[1]):
        report = check_design(net, noise, inputs, method=method)
        base = _output_noise(net, noise, inputs)
        expected = np.array([[_output_noise(net, _stepped(noise, k, name, 1.0), inputs) - base
                              for name in ("AU", "AC", "MU", "MC")] for k in range(net.depth)])
        np.testing.assert_allclose(report.sensitivity, expected, rtol=1e-9)
        assert np.all(expected[1:, 2] > 0)  # hidden MU acts on propagated noise: it is in the test
        intensities = np.array([[nz.AU, nz.AC, nz.MU, nz.MC] for nz in noise])
        np.testing.assert_allclose(report.contribution, intensities * expected / base, rtol=1e-9)


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_adjoint_sensitivity_equals_a_central_difference(placement):
    """Brute force: (V_L(D + h) - V_L(D - h)) / 2h of predict with a small step h."""
    net, noise, x = _random_design(12, placement)
    report = check_design(net, noise, x, method="linear")
    h = 1e-4
    for k in range(net.depth):
        for t, name in enumerate(("AU", "AC", "MU", "MC")):
            difference = (_output_noise(net, _stepped(noise, k, name, h), x)
                          - _output_noise(net, _stepped(noise, k, name, -h), x)) / (2 * h)
            assert report.sensitivity[k, t] == pytest.approx(difference, rel=1e-7)


@pytest.mark.parametrize("slope", [0.8, 1.0, 1.2])
def test_budget_closed_form_for_correlated_additive_noise(slope):
    """Output SNR = s^(2L) / (D (1 - s^(2L)) / (1 - s^2)): the AC budget in closed form."""
    depth, target = 6, 30.0
    report = check_design(symmetric(slope, depth), Noise(AC=1e-4), np.ones(N), target_snr_db=target)
    growth = depth if slope == 1.0 else (1 - slope ** (2 * depth)) / (1 - slope**2)
    expected = slope ** (2 * depth) / (10 ** (target / 10) * growth)
    assert report.max_noise["AC"] == pytest.approx(expected, rel=1e-9)
    assert report.meets_target is (1e-4 <= expected)
    assert report.max_scale == pytest.approx(expected / 1e-4, rel=1e-9)


def test_budgets_hold_the_target_exactly_in_the_model_for_a_batch():
    net, x, noise = reference_network(sizes=(12, 8, 8, 4))
    batch = np.stack([x, 0.3 * x, 1 - x])
    target = 25.0  # the given noise (1e-3 of each type) gives 18.2 dB; 1e-4 of each 28.2 dB
    noise = noise.scaled(0.1)
    report = check_design(net, noise, batch, target_snr_db=target, method="linear")
    for name, budget in report.max_noise.items():
        assert 0 < budget < math.inf
        at = Noise(**{**noise.intensities, name: budget})
        worst = np.min(predict(net, at, batch, method="linear").layer_snr_db[-1])
        assert worst == pytest.approx(target, abs=1e-8)
        above = Noise(**{**noise.intensities, name: budget * 1.01})
        assert np.min(predict(net, above, batch, method="linear").layer_snr_db[-1]) < target


@pytest.mark.parametrize("kind", ["AU", "MC"])
def test_linear_budget_by_output_only_statistics_equals_the_full_prediction(monkeypatch, kind):
    """Without hidden MU the linear budget search reads the output layer by the
    adjoint path; the full prediction must give the same budget."""
    import noiseprop.output_statistics as output_statistics

    net, x, _ = reference_network(sizes=(12, 8, 8, 4))
    noise, target = Noise(AU=1e-4, AC=1e-4, MC=1e-4), 25.0
    calls = []
    monkeypatch.setattr(output_statistics, "selected_layers",
                        lambda *args, **kwargs: calls.append(1) or selected_layers(*args, **kwargs))
    fast = noise_budget(net, noise, x, target, kind, method="linear")
    assert calls  # the adjoint path was taken
    monkeypatch.setattr(output_statistics, "output_only_is_exact", lambda *args: False)
    full = noise_budget(net, noise, x, target, kind, method="linear")
    assert 0 < fast < math.inf
    assert fast == pytest.approx(full, rel=1e-10)


def test_worst_case_and_mean_over_a_batch():
    net, x, noise = reference_network(sizes=(12, 8, 8, 4))
    batch = np.stack([x, 0.3 * x, 1 - x])
    together = check_design(net, noise, batch)
    alone = [check_design(net, noise, row) for row in batch]
    assert together.output_snr_db == pytest.approx(min(r.output_snr_db for r in alone), rel=1e-12)
    snrs = [10 ** (r.output_snr_db / 10) for r in alone]
    assert together.output_snr_db_mean == pytest.approx(10 * np.log10(np.mean(snrs)), rel=1e-12)
    for k, rule in enumerate(together.layers):
        singles = [r.layers[k] for r in alone]
        assert rule.accumulation_gain == pytest.approx(max(s.accumulation_gain for s in singles), rel=1e-12)
        assert rule.uncorrelated_gain_mean == pytest.approx(np.mean([s.uncorrelated_gain for s in singles]))
        assert rule.max_slope == pytest.approx(min(s.max_slope for s in singles), rel=1e-12)


# Monte Carlo confirmation of the budgets at the boundary.  R realisations give
# the output layer's mean variance to a relative s.e. ~ sqrt(2/(R-1)) (0.3 % at
# R = 2e5; the estimator's own s.e. is used).  Four comparisons per test,
# false-failure probability 1e-6 per test (two-sided): z = 5.15.
SAMPLES = 200_000
Z = norm.isf(1e-6 / (2 * 4))


@pytest.mark.parametrize("net, x, noise, target", [
    (symmetric(0.9, 5), np.ones(N), Noise(AU=1e-4, AC=1e-4, MU=1e-4, MC=1e-4), 25.0),
    (*reference_network(sizes=(12, 8, 8, 4))[:2], Noise(AU=1e-5, AC=1e-5, MU=1e-5, MC=1e-5), 25.0),
], ids=["symmetric-linear", "sigmoid-net"])
def test_budgets_confirmed_by_monte_carlo_at_the_boundary(net, x, noise, target):
    report = check_design(net, noise, x, target_snr_db=target)
    for seed, (name, budget) in enumerate(report.max_noise.items()):
        at = Noise(**{**noise.intensities, name: budget})
        sim = simulate(net, at, x, SAMPLES, seed=seed)
        predicted = predict(net, at, x)
        tolerance = Z * sim.noise_var_stderr[-1]
        assert tolerance / predicted.noise_var[-1] < 0.02  # a budget 2 % off would be caught
        assert abs(sim.noise_var[-1] - predicted.noise_var[-1]) < tolerance, name
        # the signal is known far better than the noise: the SNR sits at the target
        snr_tolerance_db = 10 * np.log10(1 + 2 * tolerance / predicted.noise_var[-1])
        assert abs(sim.layer_snr_db[-1] - target) < snr_tolerance_db, name


def test_noise_free_and_unreachable_budgets():
    net = symmetric(0.9, 3)
    assert noise_scale_budget(net, Noise(), np.ones(N), 20.0) == math.inf
    # 0.0: the other types alone already miss the target
    assert noise_budget(net, Noise(AU=1.0), np.ones(N), 20.0, "AC") == 0.0
    # a zero output signal has SNR 0 whatever the noise: no budget meets a target
    assert noise_budget(net, Noise(), np.zeros(N), 20.0, "AU") == 0.0
    assert noise_scale_budget(net, Noise(AU=1e-3), np.zeros(N), 20.0) == 0.0


def test_recommendations_name_the_dominant_noise_and_its_budget():
    report = check_design(symmetric(0.8, 6), Noise(AU=1e-5, AC=1e-3), np.ones(N), target_snr_db=30.0)
    assert not report.meets_target and not report.passed
    text = "\n".join(report.recommendations)
    assert "correlated additive noise dominates" in text
    assert f"the budget is AC <= {report.max_noise['AC']:.3g}" in text
    assert f"reduce AC to below {report.max_noise['AC']:.3g}" in text
    multiplicative = check_design(symmetric(0.8, 6), Noise(MC=1e-3), np.ones(N))
    assert any("multiplicative noise scales with the signal" in r for r in multiplicative.recommendations)


def test_report_forms():
    report = check_design(symmetric(1.2, 4), Noise(AC=1e-4), np.ones(N), target_snr_db=20.0)
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert payload["bounded"] is False and payload["passed"] is False
    assert payload["layers"][1]["growth"] == "exponential" and payload["layers"][1]["limit"] is None
    assert payload["layers"][3]["sensitivity"]["AC"] == pytest.approx(1.0)
    assert set(payload["max_noise"]) == {"AU", "AC", "MU", "MC"}
    table = report.table().splitlines()
    assert table[0].split()[:4] == ["layer", "size", "rho", "growth"] and len(table) == 2 + 4
    assert "summary: g_U" in table[0] and "rho (u,c)" in table[0]
    assert report.summary().splitlines()[-1] == "verdict: FAIL"


def test_symmetric_chart_data():
    chart = symmetric_accumulation([0.5, 1.0, 1.5], 6, N, Noise(AC=1e-3))
    k = chart.depths
    np.testing.assert_allclose(chart.noise_var[0], 1e-3 * (1 - 0.25**k) / 0.75, rtol=1e-10)
    np.testing.assert_allclose(chart.noise_var[1], 1e-3 * k, rtol=1e-10)
    np.testing.assert_allclose(chart.noise_var[2], 1e-3 * (1.5 ** (2 * k) - 1) / 1.25, rtol=1e-10)
    # mean 1 in every layer: the AC budget is 1 / (T (1 - s^(2L)) / (1 - s^2)) less the AU share
    curves = symmetric_budgets([1, 4], N, 0.9, 20.0, Noise(AU=1e-5))
    au_part = 1e-5 * (1 + (0.81 / N) * (1 - 0.81**3) / (1 - 0.81))  # docs/model.md §5, uncorrelated
    expected = (1 / 100 - au_part) * (1 - 0.81) / (1 - 0.81**4)
    assert curves.budgets["AC"][1] == pytest.approx(expected, rel=1e-9)


@pytest.mark.slow
def test_design_chart_png(tmp_path):
    path = design_chart(tmp_path / "chart.png", N, Noise(AC=1e-4, MU=1e-4), 20.0, max_depth=6,
                        slopes=[0.8, 1.0, 1.2], mark=(1.1, 4))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError):
        design_chart(path, N, Noise(AC=1e-4), max_depth=3)


@pytest.mark.parametrize("call, message", [
    (lambda: check_design("net", Noise(), [1.0]), "net must be a noiseprop.Network"),
    (lambda: check_design(symmetric(1, 2), Noise(), np.ones(3)), r"input x has shape \(3,\)"),
    (lambda: check_design(symmetric(1, 2), [Noise()], np.ones(N)), "noise sequence has 1 entries"),
    (lambda: check_design(symmetric(1, 2), Noise(), np.ones(N), target_snr_db="high"),
     "target_snr_db must be a number"),
    (lambda: check_design(symmetric(1, 2), Noise(), np.ones(N), target_snr_db=float("nan")),
     "target_snr_db must be finite"),
    (lambda: noise_budget(symmetric(1, 2), Noise(), np.ones(N), 20.0, "XY"), "noise_type must be one of"),
    (lambda: noise_budget("net", Noise(), np.ones(N), 20.0, "AU"), "net must be a noiseprop.Network"),
    (lambda: noise_scale_budget(symmetric(1, 2), Noise(AU=1e-3), np.ones(N), None),
     "noise_scale_budget needs a finite target_snr_db"),
    (lambda: symmetric_accumulation([0.5, -1.0], 3, N, Noise()), "slopes must be"),
    (lambda: symmetric_budgets([0, 2], N, 0.9, 20.0, Noise()), "depths must be"),
    (lambda: symmetric_accumulation([0.5], 3, 0, Noise()), "width must be a positive integer, got 0"),
    (lambda: symmetric_accumulation([0.5], 0, N, Noise()), "max_depth must be a positive integer, got 0"),
    (lambda: check_design(symmetric(1, 2), Noise(), np.ones((0, N))), "input x is an empty batch"),
    (lambda: check_design(Network.symmetric(1, 3, 1e300), Noise(AU=1e-3), np.ones(3)),
     "layer 1: the working point or the noise gains are not finite"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("kind", ["MC", "AU"])
def test_mixture_budget_bracketed_by_moments_equals_the_full_scan(monkeypatch, kind):
    """The mixture's budget search starts from the cheaper "moments" budget;
    it must find the root the plain scan finds.  The merge of components makes
    the mixture's SNR jitter (below about 0.01 dB) as the shared intensity
    changes, so there the root is defined to a few 1e-4: MC budgets equal to
    1e-3, AU budgets (MC fixed) to 1e-6; the SNR at the budget on target."""
    import noiseprop.analysis.design as design

    net, x, _ = reference_network(sizes=(12, 8, 8, 4))
    noise, target = Noise(AU=1e-4, MC=1e-3), 25.0
    fast = noise_budget(net, noise, x, target, kind, method="mixture")
    monkeypatch.setattr(design, "_BRACKETING_METHOD", {})
    scan = noise_budget(net, noise, x, target, kind, method="mixture")
    assert 0 < fast < math.inf
    assert fast == pytest.approx(scan, rel=1e-6 if kind == "AU" else 1e-3)
    at = Noise(**{**noise.intensities, kind: fast})
    assert predict(net, at, x, error_estimate=False).layer_snr_db[-1] == pytest.approx(target, abs=0.02)


def test_check_reports_the_error_estimate_of_its_output_prediction():
    """The output SNR of check_design comes from the default (mixture)
    prediction: its estimated error is in the report, the summary and the
    JSON (shipped network, AU = 0.1 after the activation: 15 %, over the 5 %
    warning); linear response has no estimate (None)."""
    import warnings

    from noiseprop import default_network
    from noiseprop.propagation import ERROR_WARNING

    net, x = default_network(return_input=True)
    noise = Noise(AU=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = check_design(net, noise, x)
        expected = float(predict(net, noise, x).error_estimate[-1])
    assert report.output_error_estimate == pytest.approx(expected, rel=1e-12) and expected > ERROR_WARNING
    assert f"estimated error of the output noise variance {100 * expected:.3g} %" in report.summary()
    assert report.to_dict()["output_error_estimate"] == pytest.approx(expected, rel=1e-12)
    linear = check_design(net, noise, x, method="linear")
    assert linear.output_error_estimate is None and linear.to_dict()["output_error_estimate"] is None
    assert "estimated error" not in linear.summary()
