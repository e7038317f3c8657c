"""Selected-layer statistics by adjoint propagation (noiseprop.output_statistics).

The reference is the full forward propagation of predict (an independent
code path: N x N covariances of every layer).  Additive and correlated
multiplicative noise: equal to 1e-9 relative.  Uncorrelated multiplicative
noise on hidden layers: the adjoint leaves out a positive semi-definite
second-order term, so it lies below the full result by a relative amount
proportional to D_MU.  Deterministic tests (no sampling).
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from noiseprop import Network, Noise, output_statistics, predict
from noiseprop.output_statistics import as_layers, layer_moments
from noiseprop.utils.tables import layer_table


def _predict(*args, **kwargs):
    """predict with linear response unless told otherwise (the adjoint's method)."""
    kwargs.setdefault("method", "linear")
    return predict(*args, **kwargs)


ACTIVATION_SETS = ["linear", "tanh", "sigmoid", ["tanh", "relu", "erf", "linear(slope=0.7,offset=0.1)"]]


def _network(activations, sizes=(5, 7, 6, 8, 4), seed=0) -> Network:
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 1 / np.sqrt(a), (b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0, 0.3, b) for b in sizes[1:]]
    return Network.from_arrays(weights, biases, activations)


def _inputs(n_inputs, batch=3, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, n_inputs))


def _per_layer(depth, placement, **base):
    """Intensities that differ from layer to layer (and one noise-free layer)."""
    layers = [Noise(placement=placement, **{k: v * (1 + k_) for k, v in base.items()}) for k_ in range(depth)]
    layers[1] = Noise(placement=placement)
    return layers


def _relative(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("activations", ACTIVATION_SETS)
@pytest.mark.parametrize("placement", ["post", "pre"])
@pytest.mark.parametrize("kinds", [dict(AU=1e-2, AC=3e-3), dict(AU=2e-3, AC=1e-3, MC=2e-2)])
def test_equals_full_propagation_without_hidden_mu(activations, placement, kinds):
    net = _network(activations)
    noise = _per_layer(net.depth, placement, **kinds)
    x = _inputs(net.sizes[0])
    full = _predict(net, noise, x, full_covariance=True)
    for target in range(net.depth + 1):
        selected = _predict(net, noise, x, full_covariance=True, layers=[target])
        assert selected.layers == (target,)
        assert _relative(selected.cov[target], full.cov[target]) < 1e-9 or target == 0
        assert np.array_equal(selected.cov[target], full.cov[target]) or target > 0
        assert _relative(selected.var[target], full.var[target]) < 1e-9 or target == 0
        assert np.allclose(selected.correlated[:, ][target], full.correlated[target], rtol=1e-9, atol=0)
        for k in range(net.depth + 1):
            assert np.allclose(selected.mean[k], full.mean[k], rtol=1e-12, atol=1e-15)


def test_several_layers_at_once_and_single_input():
    net = _network("tanh")
    noise = _per_layer(net.depth, "post", AU=1e-2, AC=1e-3, MC=1e-2)
    x = _inputs(net.sizes[0], batch=1)[0]
    full = _predict(net, noise, x)
    selected = _predict(net, noise, x, layers=(4, 2))
    assert selected.layers == (2, 4) and not selected.batched
    for k in (2, 4):
        assert selected.var[k].shape == full.var[k].shape
        assert _relative(selected.var[k], full.var[k]) < 1e-9
        assert abs(selected.layer_snr[k] / full.layer_snr[k] - 1) < 1e-9
    for k in (0, 1, 3):
        assert np.all(np.isnan(selected.var[k])) and np.isnan(selected.correlated[k])
        assert np.all(np.isnan(selected.snr[k])) and np.isnan(selected.layer_snr[k])
        assert np.allclose(selected.mean[k], full.mean[k])


def test_layer_moments_match_and_are_batched():
    net = _network(["relu", "tanh", "sigmoid", "linear"])
    noise = _per_layer(net.depth, "pre", AU=1e-2, AC=1e-3)
    x = _inputs(net.sizes[0], batch=4)
    full = _predict(net, noise, x, full_covariance=True)
    mean, cov = layer_moments(net, noise, x)
    assert mean.shape == (4, 4) and cov.shape == (4, 4, 4)
    assert _relative(cov, full.cov[-1]) < 1e-9 and np.allclose(mean, full.mean[-1])
    mean, cov = layer_moments(net, noise, x[0], layer=2)
    assert cov.shape == (1, 6, 6) and _relative(cov[0], full.cov[2][0]) < 1e-9


@pytest.mark.parametrize("placement", ["post", "pre"])
@pytest.mark.parametrize("activations", ["linear", "tanh"])
def test_hidden_mu_is_left_out_to_first_order(placement, activations):
    """With MU on hidden layers the adjoint result is below the full one (a
    positive semi-definite term is left out) by a relative amount that is
    proportional to D (second-order term): dividing D by 10 divides it by 10."""
    net = _network(activations)
    x = _inputs(net.sizes[0])
    shortfalls = []
    for scale in (1e-2, 1e-3):
        noise = [Noise(AU=scale, MU=scale * (k + 1), AC=scale / 3, placement=placement) for k in range(net.depth)]
        full = _predict(net, noise, x, full_covariance=True)
        selected = _predict(net, noise, x, full_covariance=True, layers=[net.depth])
        difference = full.cov[-1] - selected.cov[-1]
        assert np.all(np.linalg.eigvalsh(difference) > -1e-12 * np.max(np.abs(full.cov[-1])))
        hidden_mu = sum(noise[k - 1].MU for k in range(2, net.depth))
        shortfall = _relative(selected.var[-1], full.var[-1])
        assert 0 < shortfall < hidden_mu
        shortfalls.append(shortfall)
    assert 7 < shortfalls[0] / shortfalls[1] < 13


def test_mu_only_where_it_meets_no_propagated_noise_is_exact():
    """MU at layer 1 (noise-free input) and at the target itself: nothing left out."""
    net = _network("tanh")
    noise = [Noise(AU=1e-2, MU=5e-2), None, Noise(AC=1e-2), Noise(MU=3e-2, AU=1e-3)]
    x = _inputs(net.sizes[0])
    full = _predict(net, noise, x, full_covariance=True)
    selected = _predict(net, noise, x, full_covariance=True, layers=4)
    assert _relative(selected.cov[4], full.cov[4]) < 1e-9


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_output_prediction_takes_the_adjoint_path_only_where_it_is_exact(placement):
    """Output-only callers (budget search, noise-training SNR): the adjoint path
    for "linear" unless a hidden layer has MU; the output statistics equal the
    full predict's either way; MU on layers 1 and L keeps the adjoint path."""
    from noiseprop.output_statistics import output_prediction

    net = _network(["tanh", "relu", "sigmoid", "tanh"])
    x = _inputs(net.sizes[0])
    edges = [Noise(AU=1e-3, AC=2e-3, MC=3e-3, MU=4e-3 if k in (0, 3) else 0.0, placement=placement)
             for k in range(net.depth)]
    hidden = [Noise(AU=1e-3, MU=2e-3, placement=placement)] * net.depth
    for noise, method, adjoint in ((edges, "linear", True), (hidden, "linear", False), (edges, "moments", False)):
        fast, full = output_prediction(net, noise, x, method), predict(net, noise, x, method=method)
        assert fast.layers == ((net.depth,) if adjoint else tuple(range(net.depth + 1)))
        assert _relative(fast.var[-1], full.var[-1]) < 1e-12
        np.testing.assert_allclose(fast.layer_snr[-1], full.layer_snr[-1], rtol=1e-12)


def test_noise_free_network_and_input_layer():
    net = _network("tanh")
    x = _inputs(net.sizes[0])
    selected = _predict(net, Noise(), x, layers=[0, 4], full_covariance=True)
    assert np.all(selected.var[4] == 0) and np.all(selected.cov[0] == 0) and np.all(selected.cov[4] == 0)


def test_other_methods_fall_back_to_the_full_propagation():
    net = _network("tanh")
    noise = _per_layer(net.depth, "post", AU=1e-2, MU=1e-2)
    x = _inputs(net.sizes[0])
    full = _predict(net, noise, x, full_covariance=True, method="moments")
    selected = _predict(net, noise, x, full_covariance=True, method="moments", layers=[3])
    assert selected.method == "moments" and selected.layers == (3,)
    assert np.array_equal(selected.cov[3], full.cov[3]) and selected.cov[2] is None
    assert np.array_equal(selected.mean[2], full.mean[2]) and np.all(np.isnan(selected.var[2]))


def test_reports_cope_with_layers_not_computed():
    net = _network("tanh")
    noise = Noise(AU=1e-3)
    result = _predict(net, noise, _inputs(net.sizes[0]), layers=[4])
    rows = result.summary()
    assert np.isnan(rows[2]["noise_var"]) and np.isfinite(rows[4]["noise_var"])
    payload = result.to_dict()
    assert payload["layers"][2]["noise_var"] is None and payload["layers"][2]["var"][0][0] is None
    assert "nan" in layer_table(result) and "nan" in repr(result)


@pytest.mark.parametrize(
    "layers, message",
    [
        ([5], "layer 5 is out of range"),
        ([-1], "layer -1 is out of range"),
        ([1, 3, 1], r"more than once"),
        ([1.0], "integer layer indices"),
        ([True], "integer layer indices"),
        ("2", "sequence"),
        ([], "empty"),
        (2.5, "sequence"),
    ],
)
def test_bad_layers_are_named(layers, message):
    net = _network("tanh")
    with pytest.raises(ValueError, match=message):
        _predict(net, Noise(AU=1e-3), _inputs(net.sizes[0]), layers=layers)


def test_layer_moments_bad_layer_is_named():
    net = _network("tanh")
    with pytest.raises(ValueError, match="one layer index"):
        layer_moments(net, Noise(AU=1e-3), _inputs(net.sizes[0]), layer=[1, 2])
    assert as_layers(np.int64(2), 4) == (2,)


def _peak_bytes(function) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_width_squared_times_batch(monkeypatch):
    """Chunked: peak for B = 200 about that of B = 50, far below B N^2."""
    monkeypatch.setattr(output_statistics, "CHUNK_BYTES", 2**20)
    width = 128
    net = _network("tanh", sizes=(20, width, width, width, width))
    noise = Noise(AU=1e-3, AC=1e-3, MC=1e-3)
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (200, 20))
    small = _peak_bytes(lambda: layer_moments(net, noise, X[:50], layer=3))
    large = _peak_bytes(lambda: layer_moments(net, noise, X, layer=3))
    # the result itself (B x N^2 of the one target layer) grows: subtract it
    result_growth = 150 * width * width * 8 + 150 * width * 8 * 3
    assert large - result_growth < 1.5 * small
    # the full propagation would hold B x N^2 for every layer at once
    assert large < 200 * width * width * 8 * 2
    selected_small = _peak_bytes(lambda: _predict(net, noise, X[:50], layers=[4]))
    selected = _peak_bytes(lambda: _predict(net, noise, X, layers=[4]))
    # the full propagation holds at least one B x N x N covariance (several, in fact)
    assert selected < 1.5 * selected_small and selected < 0.5 * 200 * width * width * 8
