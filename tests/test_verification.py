"""verify(): agreement on affine networks, detection of wrong predictions and
of the linearisation error, and the report's forms."""
import json

import numpy as np
import pytest

from noiseprop import Network, Noise, predict, simulate, verify
from noiseprop.simulation.verification import VerificationReport


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
    right = VerificationReport(predict(net, noise, x), simulation, 1e-6, affine=True)
    wrong = VerificationReport(predict(net, Noise(AU=1.03e-2, AC=1e-2), x), simulation, 1e-6, affine=True)
    assert right.passed and not wrong.passed
    row = wrong.layers[-1]
    expected = predict(net, noise, x).noise_var[3] / wrong.prediction.noise_var[3] - 1
    assert row["relative_error"] == pytest.approx(expected, abs=5 * row["var_stderr"] / row["predicted_var"])


def test_nonlinear_network_shows_the_linearisation_error_at_large_noise():
    net = random_network(["tanh(gain=2)", "sigmoid(gain=3)", "linear"])
    x = np.full(4, 0.5)
    small = verify(net, Noise(AU=1e-6, MU=1e-6), x, samples=50_000, seed=1)
    large = verify(net, Noise(AU=0.2, MU=0.2), x, samples=50_000, seed=1)
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
    moments, linear = predict(net, noise, xs, method="moments"), predict(net, noise, xs)
    assert report.prediction.method == "moments"
    for row in report.layers:
        k = row["layer"]
        assert row["predicted_var"] == pytest.approx(np.mean(moments.noise_var[k]), rel=1e-12)
        if k > 1:
            assert row["predicted_var"] != pytest.approx(np.mean(linear.noise_var[k]), rel=1e-2)
        stderr = report.simulation.noise_var_stderr[k]
        assert row["var_stderr"] == pytest.approx(np.sqrt(stderr[0] ** 2 + stderr[1] ** 2) / 2, rel=1e-12)
