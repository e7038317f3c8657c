"""verify(): agreement on affine networks, detection of wrong predictions and
of the linearisation error, and the report's forms."""
import json
import warnings

import numpy as np
import pytest

from noiseprop import Network, Noise, predict, simulate, verify
from noiseprop.simulation import verification
from noiseprop.simulation.verification import FAIL, WITHIN_TOLERANCE, VerificationReport


def random_network(activation, seed=0, sizes=(4, 7, 6, 3)):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((n, m)) / np.sqrt(m) for m, n in zip(sizes[:-1], sizes[1:])]
    return Network.from_arrays(weights, [rng.uniform(-0.5, 0.5, n) for n in sizes[1:]], activation)


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_affine_networks_pass_at_any_noise_level(placement):
    net = random_network(["linear(slope=0.8,offset=0.3)", "linear(slope=-1.1)", "linear"])
    xs = np.random.default_rng(1).uniform(0, 1, (2, 4))
    noise = [Noise(AU=0.05, AC=0.02, MU=0.1, MC=0.05, placement=placement), None,
             Noise(AU=0.01, MC=0.2, placement=placement)]
    report = verify(net, noise, xs, samples=50_000, seed=3)
    assert report.passed and report.affine
    assert report.comparisons == 2 * (2 * 16 + 3)
    assert all(row["passed"] for row in report.layers)


def test_a_prediction_a_few_percent_off_fails():
    """The tolerance is tight enough to catch a prediction 3 % off in one noise type."""
    net = random_network("linear(slope=0.9)")
    x = np.ones(4)
    noise = Noise(AU=1e-2, AC=1e-2)
    simulation = simulate(net, noise, x, samples=400_000, seed=5)
    right = VerificationReport(predict(net, noise, x), simulation, 1e-6, affine=True, strict=True)
    wrong = VerificationReport(predict(net, Noise(AU=1.03e-2, AC=1e-2), x), simulation, 1e-6, affine=True,
                               strict=True)
    assert (wrong.rtol, wrong.mean_tol) == (0.0, 0.0)
    # with the default 5 % tolerance a 3 % error is accepted: resolved but within tolerance
    tolerant = VerificationReport(wrong.prediction, simulation, 1e-6, affine=True)
    assert tolerant.passed and WITHIN_TOLERANCE in (tolerant.layers[-1]["variances"], tolerant.layers[-1]["layer_var"])
    assert right.passed and not wrong.passed
    row = wrong.layers[-1]
    expected = predict(net, noise, x).noise_var[3] / wrong.prediction.noise_var[3] - 1
    assert row["relative_error"] == pytest.approx(expected, abs=5 * row["var_stderr"] / row["predicted_var"])


def test_nonlinear_network_shows_the_linearisation_error_at_large_noise():
    net = random_network(["tanh(gain=2)", "sigmoid(gain=3)", "linear"])
    x = np.full(4, 0.5)
    small = verify(net, Noise(AU=1e-6, MU=1e-6), x, samples=50_000, seed=1, method="linear")
    large = verify(net, Noise(AU=0.2, MU=0.2), x, samples=50_000, seed=1, method="linear")
    assert small.passed and not small.affine
    assert not large.passed
    worst = max(large.layers, key=lambda row: abs(row["z_layer"]))
    assert abs(worst["z_layer"]) > large.z and abs(worst["relative_error"]) > 0.02
    assert "linearisation error" in large.table()


def test_table_json_and_plot(tmp_path):
    net = random_network("linear")
    report = verify(net, Noise(AU=1e-3), np.ones(4), samples=2_000, seed=0)
    table = report.table()
    assert table.splitlines()[0].split()[:4] == ["layer", "size", "predicted", "Var"]
    assert "verdict: all layers agree" in table
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert payload["passed"] is True and len(payload["layers"]) == 3
    path = report.plot(tmp_path / "verify.png")
    assert path.stat().st_size > 10_000
    with pytest.raises(FileExistsError):
        report.plot(tmp_path / "verify.png")
    report.plot(tmp_path / "verify.png", overwrite=True)


@pytest.mark.parametrize("value", [0, 1, -0.1, "x"])
def test_false_failure_must_be_a_probability(value):
    with pytest.raises(ValueError, match="false_failure must be a probability"):
        verify(random_network("linear"), Noise(AU=1e-3), np.ones(4), samples=100, false_failure=value)


def test_the_chosen_method_is_held_against_the_simulation():
    """verify(method="moments") compares the "moments" prediction (which
    differs from "linear" at this noise beyond layer 1), and a layer's
    var_stderr is the standard error of its batch-averaged Var."""
    net = random_network(["tanh(gain=2)", "sigmoid(gain=3)", "linear"])
    xs = np.stack([np.full(4, 0.5), np.full(4, -0.3)])
    noise = Noise(AU=0.2, MU=0.2)
    report = verify(net, noise, xs, samples=2_000, seed=1, method="moments")
    moments, linear = predict(net, noise, xs, method="moments"), predict(net, noise, xs, method="linear")
    assert report.prediction.method == "moments"
    for row in report.layers:
        k = row["layer"]
        assert row["predicted_var"] == pytest.approx(np.mean(moments.noise_var[k]), rel=1e-12)
        if k > 1:
            assert row["predicted_var"] != pytest.approx(np.mean(linear.noise_var[k]), rel=1e-2)
        stderr = report.simulation.noise_var_stderr[k]
        assert row["var_stderr"] == pytest.approx(np.sqrt(stderr[0] ** 2 + stderr[1] ** 2) / 2, rel=1e-12)


# ------------------------------------------------- verdicts with a tolerance

def shipped():
    from noiseprop.io.builtin import default_network

    net, x = default_network(return_input=True)
    return net, x, Noise(AU=1e-3, AC=1e-3, MU=1e-3, MC=1e-3)


def perturbed_predict(layer, var_factor=1.0, mean_shift_sd=0.0):
    """predict() whose output is off in one layer: variances x var_factor,
    means shifted by mean_shift_sd noise standard deviations."""
    def wrong(*args, **kwargs):
        result = predict(*args, **kwargs)
        sd = np.sqrt(result.var[layer])
        result.var[layer] = result.var[layer] * var_factor
        result.mean[layer] = result.mean[layer] + mean_shift_sd * sd
        result.noise_var[layer] = np.mean(result.var[layer], axis=-1)
        return result
    return wrong


@pytest.mark.slow
def test_shipped_network_passes_with_the_defaults_and_a_prediction_10_percent_off_fails(monkeypatch):
    """Default tolerances (rtol 5 %, mean_tol 0.2 sd, false failure 1e-6): the linear
    response of the shipped network agrees (its resolved deviations are within
    tolerance); 10 % too much variance in one layer, or means 0.5 sd off,
    fail in that layer only and in that quantity only."""
    net, x, noise = shipped()
    right = verify(net, noise, x, samples=100_000, seed=0, method="linear")
    assert right.passed and (right.rtol, right.mean_tol) == (0.05, 0.2)
    assert any(WITHIN_TOLERANCE in (row["means"], row["variances"]) for row in right.layers)
    assert "resolved but within tolerance" in right.table()
    monkeypatch.setattr(verification, "predict", perturbed_predict(2, var_factor=1.1))
    wrong = verify(net, noise, x, samples=100_000, seed=0, method="linear")
    assert not wrong.passed
    assert [(r["variances"], r["layer_var"]) for r in wrong.layers if FAIL in (r["variances"], r["layer_var"])] \
        == [(FAIL, FAIL)]
    assert wrong.layers[1]["variances"] == FAIL and wrong.layers[1]["means"] != FAIL
    assert "DISAGREE" in wrong.table()
    monkeypatch.setattr(verification, "predict", perturbed_predict(3, mean_shift_sd=0.5))
    shifted = verify(net, noise, x, samples=100_000, seed=0, method="linear")
    assert [r["layer"] for r in shifted.layers if r["means"] == FAIL] == [3]
    assert shifted.layers[2]["variances"] != FAIL


def test_strict_keeps_the_purely_statistical_test():
    """The shipped network's first-order means are resolved by 1e5 samples:
    strict fails on them, the tolerance accepts them (same simulation)."""
    net, x, noise = shipped()
    simulation = simulate(net, noise, x, samples=100_000, seed=0)
    prediction = predict(net, noise, x, method="linear")
    strict = VerificationReport(prediction, simulation, 1e-6, affine=False, strict=True)
    tolerant = VerificationReport(prediction, simulation, 1e-6, affine=False)
    assert not strict.passed and tolerant.passed
    assert any(row["means"] == FAIL for row in strict.layers)
    assert strict.z == tolerant.z
    assert strict.to_dict()["strict"] is True and "Strict:" in strict.table()


@pytest.mark.parametrize("strict, method", [(False, "linear"), (True, "linear"), (False, "moments"),
                                            (False, "mixture")])
def test_affine_network_passes_at_enormous_noise(strict, method):
    """AU = 1e160: the fourth moments behind the variance's standard error
    are accumulated in scaled units, and the closures' curvature term vanishes
    for affine layers, so nothing overflows."""
    net = Network.symmetric(2, 3, 0.3, 0.1, "linear")
    report = verify(net, Noise(AU=1e160), np.ones(3), samples=1000, strict=strict, method=method)
    assert report.passed
    for row in report.layers:
        assert np.isfinite(row["var_stderr"]) and np.isfinite(row["z_layer"])
        assert row["var_stderr"] == pytest.approx(row["predicted_var"] * np.sqrt(2 / 999) / np.sqrt(3), rel=0.5)
    assert json.loads(json.dumps(report.to_dict(), allow_nan=False))["passed"] is True


@pytest.mark.parametrize("method", ["linear", "mixture"])
def test_affine_network_at_au_1e300_raises_no_numpy_warning(method):
    """AU = 1e300: the pilot run that chooses the scale of the running sums
    sums powers of y up to y^4 with scale 1, which overflow (and give nan
    where infinities of both signs meet); harmless, since only its mean d^2
    is read and the sums are reset, so no RuntimeWarning may escape."""
    net = Network.symmetric(2, 3, 0.3, 0.1, "linear")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = verify(net, Noise(AU=1e300), np.ones(3), samples=1000, method=method)
    assert report.passed
    for row in report.layers:
        assert np.isfinite(row["var_stderr"]) and row["simulated_var"] == pytest.approx(row["predicted_var"], rel=0.3)


def test_enormous_noise_gives_the_same_numbers_as_scaled_noise():
    """Scaling every additive intensity by 2^400 scales every output of an
    affine network by 2^200 (same draws): the estimates scale exactly."""
    net = Network.symmetric(2, 4, 0.3, 0.0, "linear(slope=0.9)")
    small = simulate(net, Noise(AU=1e-3, AC=2e-3), np.zeros(4), samples=500, seed=2)
    large = simulate(net, Noise(AU=1e-3 * 2.0**400, AC=2e-3 * 2.0**400), np.zeros(4), samples=500, seed=2)
    for k in (1, 2):
        np.testing.assert_allclose(large.var[k], small.var[k] * 2.0**400, rtol=1e-12)
        np.testing.assert_allclose(large.var_stderr[k], small.var_stderr[k] * 2.0**400, rtol=1e-12)
        np.testing.assert_allclose(large.noise_var_stderr[k], small.noise_var_stderr[k] * 2.0**400, rtol=1e-12)


def test_a_prediction_that_is_not_a_number_fails(monkeypatch):
    """nan compares false with everything: it must fail, not pass."""
    def nan_predict(*args, **kwargs):
        result = predict(*args, **kwargs)
        result.var[2] = np.full_like(result.var[2], np.nan)
        result.noise_var[2] = np.mean(result.var[2], axis=-1)
        return result

    monkeypatch.setattr(verification, "predict", nan_predict)
    report = verify(random_network("linear"), Noise(AU=1e-3), np.ones(4), samples=1000, method="linear")
    assert not report.passed
    assert [(r["variances"], r["layer_var"]) for r in report.layers] == [("ok", "ok"), (FAIL, FAIL), ("ok", "ok")]


@pytest.mark.parametrize("name, value", [("rtol", -0.1), ("mean_tol", float("nan")), ("rtol", "5%")])
def test_tolerances_must_be_non_negative_numbers(name, value):
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        verify(random_network("linear"), Noise(AU=1e-3), np.ones(4), samples=100, **{name: value})


def test_rows_and_table_carry_the_prediction_error_estimate():
    """The mixture's estimate of its own error (Prediction.error_estimate)
    beside the measured one: in every JSON row and as a table column; linear
    response has none (None, no column)."""
    net = Network.symmetric(3, 6, 0.4, 0.1, "tanh")
    noise = Noise(AU=0.05, MC=0.05)
    report = verify(net, noise, np.full(6, 0.5), samples=2000)
    expected = predict(net, noise, np.full(6, 0.5)).error_estimate
    assert report.prediction.method == "mixture"
    assert [row["error_estimate"] for row in report.layers] == pytest.approx(expected[1:].tolist(), rel=1e-12)
    assert max(expected) > 0
    assert "est. error" in report.table().splitlines()[0]
    assert json.loads(json.dumps(report.to_dict()))["layers"][2]["error_estimate"] == pytest.approx(expected[3])
    linear = verify(net, noise, np.full(6, 0.5), samples=2000, method="linear")
    assert all(row["error_estimate"] is None for row in linear.layers)
    assert "est. error" not in linear.table()


def test_an_unbounded_error_estimate_is_short_in_the_tables_and_raises_no_numpy_warning():
    """Multiplicative noise of variance 1e160 before a sigmoid: the mixture stays
    finite while linear response (part of the estimate) overflows.  The estimate
    is inf there (not nan, not a numpy warning) and every table prints it in a
    few characters (it once printed 160 digits)."""
    net = Network.symmetric(3, 6, 0.4, 0.1, "sigmoid")
    noise = Noise(MU=1e160, placement="pre")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)  # predict's own warning about its estimate
        prediction = predict(net, noise, np.full(6, 0.5))
        report = verify(net, noise, np.full(6, 0.5), samples=200)
    estimate = prediction.error_estimate
    assert not np.any(np.isnan(estimate)) and np.isinf(estimate[-1])
    for line in report.table().splitlines()[2:2 + net.depth]:
        assert len(line.split()[6]) <= 10, line  # the est. error column
    from noiseprop.utils.tables import layer_table
    assert "inf%" in layer_table(prediction)
