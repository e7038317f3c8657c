"""Weight statistics and noise gains at the working point (noiseprop.analysis.gains)."""
import numpy as np
import pytest

from noiseprop import Network, Noise, predict
from noiseprop.analysis.gains import layer_statistics, mean_off_diagonal_outer


def random_net(seed=0, sizes=(6, 5, 4, 3), activations=("tanh", "sigmoid(gain=2)", "erf")):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0.1, 1.0, (n, m)) / np.sqrt(m) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0, 0.3, n) for n in sizes[1:]]
    return Network.from_arrays(weights, biases, list(activations)), rng.uniform(-1, 1, sizes[0])


def test_symmetric_network_closed_forms():
    """Spec 5: g_U = s^2 N w^2, g_C = s^2 N^2 w^2; statistics-only forms exact."""
    s, n, w = 0.7, 5, 0.3
    net = Network.symmetric(depth=3, width=n, weight=w, activation=f"linear(slope={s})")
    for g in layer_statistics(net, np.ones(n)):
        assert (g.fan_in, g.size, g.mu, g.nu) == (n, n, pytest.approx(w), pytest.approx(w * w))
        np.testing.assert_allclose(g.slope, s)
        assert g.uncorrelated_gain == pytest.approx(s**2 * n * w**2, rel=1e-12)
        assert g.correlated_gain == pytest.approx(s**2 * n**2 * w**2, rel=1e-12)
        assert g.uncorrelated_gain_stats == pytest.approx(g.uncorrelated_gain, rel=1e-12)
        assert g.correlated_gain_stats == pytest.approx(g.correlated_gain, rel=1e-12)
        # everything entering a symmetric layer becomes common (spec 5: c' = s^2 w^2 N (u + N c))
        np.testing.assert_allclose(g.transfer, [[0, 0], [s**2 * n * w**2, s**2 * n**2 * w**2]], atol=1e-14)


def test_slopes_match_finite_differences_of_the_forward_pass():
    net, x = random_net()
    gains = layer_statistics(net, x)
    outputs = net.forward(x)
    h = 1e-6
    for k, g in enumerate(gains, start=1):
        zbar = net.weights[k - 1] @ outputs[k - 1] + net.biases[k - 1]
        f = net.activations[k - 1]
        numeric = (f(zbar + h) - f(zbar - h)) / (2 * h)
        np.testing.assert_allclose(g.slope, numeric, rtol=1e-6)
        assert g.slope_sq_mean == pytest.approx(np.mean(numeric**2), rel=1e-6)
        assert g.signal_power == pytest.approx(np.mean(outputs[k] ** 2), rel=1e-12)


def test_weight_statistics_and_statistics_only_forms():
    net, x = random_net(seed=3)
    for g, w in zip(layer_statistics(net, x), net.weights):
        n_out, n_in = w.shape
        assert g.mu == pytest.approx(sum(w.flat) / w.size, rel=1e-12)
        assert g.nu == pytest.approx(sum(v * v for v in w.flat) / w.size, rel=1e-12)
        assert g.uncorrelated_gain_stats == pytest.approx(g.slope_sq_mean * n_in * g.nu, rel=1e-12)
        row_sum_var = n_in * (g.nu - g.mu**2)  # variance of a sum of n_in i.i.d. weights
        assert g.correlated_gain_stats == pytest.approx(g.slope_sq_mean * (n_in**2 * g.mu**2 + row_sum_var),
                                                        rel=1e-12)


def test_statistics_only_correlated_gain_on_the_shipped_network():
    """The row-sum variance term carries the correlated gain of trained layers
    (mean weight ~ 0): the statistics-only form is within a factor 3 of the
    exact gains (0.53, 0.074, 0.23) of the hidden layers (it cannot see how
    slopes and row sums co-vary: 0.37, 0.13, 0.084); the mean weight alone
    (<s^2> N^2 mu^2) would be 36 to 3600 times too small."""
    from noiseprop.io.builtin import default_network

    net, x = default_network(return_input=True)
    gains = layer_statistics(net, x)[:3]
    exact = [g.correlated_gain for g in gains]
    assert exact == pytest.approx([0.533, 0.0737, 0.231], abs=1e-3)
    for g in gains:
        assert 1 / 3 < g.correlated_gain_stats / g.correlated_gain < 3
        # independent: the expected squared row sum of i.i.d. weights, by sampling rows from W's entries
        rng = np.random.default_rng(0)
        w = net.weights[g.layer - 1]
        rows = rng.choice(w.ravel(), size=(20_000, g.fan_in))
        assert g.correlated_gain_stats == pytest.approx(g.slope_sq_mean * np.mean(rows.sum(axis=1) ** 2), rel=0.05)


@pytest.mark.parametrize("kind", ["AU", "AC"])
def test_gains_and_transfer_carry_noise_as_predict_does(kind):
    """Independent check through predict: a noise-free identity layer feeding
    uncorrelated (u I) or correlated (c 11^T) noise into the layer under test."""
    net, x = random_net(seed=1)
    d = 0.37
    for k in range(1, net.depth):
        n = net.sizes[k]
        head = net.forward(x)[k]  # the working point of layer k, passed on unchanged
        probe = Network.from_arrays(
            [np.eye(n), net.weights[k]], [np.zeros(n), net.biases[k]], ["linear", net.activations[k]]
        )
        result = predict(probe, [Noise(**{kind: d}), Noise()], head, method="linear")
        g = layer_statistics(net, x)[k]
        column = 0 if kind == "AU" else 1
        gain = g.uncorrelated_gain if kind == "AU" else g.correlated_gain
        assert np.mean(result.var[2]) == pytest.approx(gain * d, rel=1e-12)
        assert result.correlated[2] == pytest.approx(g.transfer[1, column] * d, rel=1e-10, abs=1e-15)
        assert np.mean(result.uncorrelated[2]) == pytest.approx(g.transfer[0, column] * d, rel=1e-10, abs=1e-15)


def test_batch_stacks_the_single_input_results():
    net, x = random_net(seed=2)
    batch = np.stack([x, -x, 0.5 * x])
    batched = layer_statistics(net, batch)
    for b, row in enumerate(batch):
        for gb, gs in zip(batched, layer_statistics(net, row)):
            assert gb.slope.shape == (3, gs.size)
            np.testing.assert_allclose(gb.slope[b], gs.slope, rtol=1e-14)
            for field in ("slope_sq_mean", "uncorrelated_gain", "correlated_gain", "signal_power"):
                assert getattr(gb, field)[b] == pytest.approx(getattr(gs, field), rel=1e-12)
            np.testing.assert_allclose(gb.transfer[b], gs.transfer, rtol=1e-12, atol=1e-15)


def test_mean_off_diagonal_outer():
    v = np.array([[1.0, 2.0, 3.0]])
    outer = np.outer(v[0], v[0])
    expected = (outer.sum() - np.trace(outer)) / 6
    assert mean_off_diagonal_outer(v)[0] == pytest.approx(expected)
    assert mean_off_diagonal_outer(np.array([[4.0]]))[0] == 0.0


@pytest.mark.parametrize("net, x, message", [
    ("not a net", [1.0], "net must be a noiseprop.Network"),
    (Network.symmetric(2, 3, 0.1), [1.0, 2.0], r"input x has shape \(2,\); the network expects \(3,\)"),
])
def test_bad_input(net, x, message):
    with pytest.raises(ValueError, match=message):
        layer_statistics(net, x)
