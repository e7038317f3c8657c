"""check_design's growth rate and deep limit come from the layer's covariance
map itself, not from the (u, c) summary: a counterexample that the summary
calls bounded, deep limits against 200 iterated layers, and the map's
spectral radius against its Kronecker form."""
import json

import numpy as np
import pytest

from noiseprop import Network, Noise, check_design, predict
from noiseprop.analysis.design import covariance_map_growth, covariance_map_limit
from noiseprop.cli import main
from noiseprop.io.networks import save_network


def rank_one_layer(n=20, depth=4, seed=0):
    """W = 1.2 v v^T + small noise with v orthogonal to the all-ones vector:
    the noise grows by rho(W)^2 ~ 1.44 per layer in the direction v, which
    the (u, c) split of the covariance does not see."""
    rng = np.random.default_rng(seed)
    v = np.where(np.arange(n) % 2 == 0, 1.0, -1.0) / np.sqrt(n)
    w = 1.2 * np.outer(v, v) + 0.01 * rng.standard_normal((n, n)) / np.sqrt(n)
    return Network.from_arrays([w] * depth, None, "linear"), w


def test_counterexample_is_reported_unbounded():
    net, w = rank_one_layer()
    report = check_design(net, Noise(AU=1e-3), np.ones(20))
    rule = report.layers[1]
    assert rule.growth == "exponential" and not report.bounded and not report.passed
    assert rule.summary_gain < 0.1  # the design summary alone would call it bounded
    # independent: the growth of the noise of a 60-layer stack of this layer, per layer
    deep = predict(Network.from_arrays([w] * 60, None, "linear"), Noise(AU=1e-3), np.ones(20))
    assert deep.noise_var[60] / deep.noise_var[59] == pytest.approx(rule.accumulation_gain, rel=1e-6)
    assert rule.accumulation_gain > 1.4
    summary = report.to_dict()["layers"][1]["design_summary"]
    assert summary["accumulation_gain"] == pytest.approx(rule.summary_gain) and "summary" in summary["note"]


def test_counterexample_exits_1_in_the_cli(tmp_path, capsys):
    net, _ = rank_one_layer()
    save_network(tmp_path / "net.npz", net, np.ones(20))
    code = main(["check", str(tmp_path / "net.npz"), "--AU", "1e-3", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1 and payload["bounded"] is False
    assert payload["layers"][1]["growth"] == "exponential"
    assert payload["layers"][1]["growth_basis"] == "covariance map"


def fixed_point_layer(n, seed, activation="tanh"):
    """A square layer and an input that its noise-free map leaves unchanged,
    so that a stack of copies has the same working point in every layer."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0.05, 0.9, (n, n)) / np.sqrt(n)
    b = rng.uniform(-0.3, 0.3, n)
    layer = Network.from_arrays([w], [b], activation)
    x = np.zeros(n)
    for _ in range(2000):
        x = layer.forward(x)[-1]
    assert np.allclose(layer.forward(x)[-1], x, rtol=0, atol=1e-14)
    return w, b, x


@pytest.mark.parametrize("n, placement", [(12, "post"), (12, "pre"), (30, "post"), (30, "pre")])
def test_deep_limit_is_what_200_identical_layers_reach(n, placement):
    """Within 1 % (the fixed point is exact; 200 layers converge far closer)."""
    w, b, x = fixed_point_layer(n, seed=n)
    noise = Noise(AU=2e-3, AC=1e-3, MU=5e-3, MC=2e-3, placement=placement)
    report = check_design(Network.from_arrays([w] * 3, [b] * 3, "tanh"), noise, x)
    deep = predict(Network.from_arrays([w] * 200, [b] * 200, "tanh"), noise, x)
    rule = report.layers[1]
    assert rule.growth == "bounded" and rule.growth_basis == "covariance map"
    assert rule.limit == pytest.approx(deep.noise_var[200], rel=0.01)
    assert rule.limit == pytest.approx(deep.noise_var[200], rel=1e-8)
    assert rule.accumulation_gain < 1


@pytest.mark.parametrize("n", [6, 26])
def test_spectral_radius_against_the_kronecker_form(n):
    """Arnoldi (n = 26 > 24) and the dense path (n <= 24) against the N^2 x N^2
    matrix of the map built here entry by entry from its definition."""
    rng = np.random.default_rng(n)
    carrier = rng.standard_normal((n, n)) / np.sqrt(n)
    noise = Noise(MU=0.3, MC=0.1)
    matrix = np.empty((n * n, n * n))
    for j in range(n):
        for k in range(n):
            unit = np.zeros((n, n))
            unit[j, k] = 1.0
            image = 1.1 * carrier @ unit @ carrier.T
            image[np.diag_indices(n)] *= 1.0 + 0.3 / 1.1
            matrix[:, j * n + k] = image.ravel()
    expected = np.max(np.abs(np.linalg.eigvals(matrix)))
    assert covariance_map_growth(carrier, noise) == pytest.approx(expected, rel=1e-8)
    without_mu = np.max(np.abs(np.linalg.eigvals(carrier))) ** 2 * 1.1
    assert covariance_map_growth(carrier, Noise(MC=0.1)) == pytest.approx(without_mu, rel=1e-12)


def test_fixed_point_solves_the_map():
    rng = np.random.default_rng(3)
    carrier = 0.6 * rng.standard_normal((15, 15)) / np.sqrt(15)
    q = np.cov(rng.standard_normal((15, 40)))
    noise = Noise(MU=0.2, MC=0.1)
    fixed = covariance_map_limit(carrier, noise, q)
    image = 1.1 * carrier @ fixed @ carrier.T
    image[np.diag_indices(15)] += 0.2 * np.diag(carrier @ fixed @ carrier.T)
    np.testing.assert_allclose(fixed, image + q, rtol=1e-9, atol=1e-12 * np.max(np.abs(fixed)))


def test_non_square_layers_use_the_labelled_design_summary():
    rng = np.random.default_rng(1)
    sizes = (5, 8, 6, 6, 3)
    weights = [rng.standard_normal((m, k)) / np.sqrt(k) for k, m in zip(sizes[:-1], sizes[1:])]
    report = check_design(Network.from_arrays(weights, None, "tanh"), Noise(AU=1e-3), np.full(5, 0.3))
    bases = [rule.growth_basis for rule in report.layers]
    assert bases == ["design summary", "design summary", "covariance map", "design summary"]
    rule = report.layers[1]
    assert rule.accumulation_gain == rule.summary_gain
    assert "*" in report.table().splitlines()[3]
