"""The mixture closure's memory: the children before the activation are formed
group by group (never all at once) with the numbers of the former path, and
the memory estimates (``step_bytes``, ``predict_bytes``) bound the peak that
tracemalloc measures, without overstating it by more than 2x."""
import tracemalloc

import numpy as np
import pytest

from noiseprop import Network, Noise, mixture, predict
from noiseprop.activations import get_activation
from noiseprop.noise import per_layer_noise
from noiseprop.utils.resources import network_bytes, predict_bytes

ALL_FOUR = dict(AU=1e-2, AC=1e-2, MU=1e-2, MC=1e-2)


def random_network(widths, activation, seed, gain=1.5):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, gain / np.sqrt(a), (b, a)) for a, b in zip(widths[:-1], widths[1:])]
    biases = [rng.normal(0, 0.3, b) for b in widths[1:]]
    return Network.from_arrays(weights, biases, [activation] * (len(widths) - 1)), rng


def former_pre_children(zbar, cov_z, parent, scale, shift, activation, noise, count):
    """The former path before the activation: every child's covariance at
    once (:func:`mixture._activation` on all of them), summed per group by
    one dense product."""
    b, k, n = zbar.shape
    mean, cov, _ = mixture._activation(zbar[:, parent].reshape(-1, n), cov_z[:, parent].reshape(-1, n, n),
                                    activation, np.tile(scale, b), np.tile(shift, b), noise.MU, noise.AU, count)
    cov = cov.reshape(b, parent.size, n * n)
    return mean.reshape(b, parent.size, n), lambda onehot: (np.swapaxes(onehot, 1, 2) @ cov).reshape(b, -1, n, n)


def relative_difference(got, want):
    return np.max(np.abs(got - want)) / np.max(np.abs(want))


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_children_in_blocks_sum_to_the_dense_group_sums(monkeypatch, activation):
    """Blocks of three children (a group's members cut across blocks, several
    groups and inputs in one block) give the dense sums to rounding."""
    rng = np.random.default_rng(5)
    b, k, n = 2, 3, 6
    root = rng.standard_normal((b, k, n, n)) * 0.3
    zbar, cov_z = rng.standard_normal((b, k, n)), root @ np.swapaxes(root, -1, -2)
    noise = Noise(**ALL_FOUR, placement="pre")
    s, c, wq = mixture._shared_nodes(noise, mixture.SHARED_NODES)
    weight = rng.random((b, k))
    child_weight, parent = mixture._children(mixture.Mixture(weight, None, None), wq)
    labels = rng.integers(0, 4, size=child_weight.shape)
    onehot = (labels[:, :, None] == np.arange(4)) * child_weight[:, :, None]
    args = (zbar, cov_z, parent, np.tile(1.0 + s, k), np.tile(c, k), get_activation(activation), noise,
            mixture.UNCORRELATED_NODES)
    want_mean, want_cov = former_pre_children(*args)
    monkeypatch.setattr(mixture, "BLOCK_VALUES", 3 * n * n)
    mean, weighted_cov = mixture._pre_children(*args)
    assert relative_difference(mean, want_mean) < 1e-12
    assert relative_difference(weighted_cov(onehot), want_cov(onehot)) < 1e-12


@pytest.mark.parametrize("seed, activation, widths, kinds", [
    (0, "tanh", [6, 9, 8, 7], dict(AU=1e-2, AC=1e-2, MC=1e-2)),
    (1, "relu", [5, 12, 12, 4], dict(AU=3e-2, MC=5e-2)),
    (2, "sigmoid", [7, 40, 40, 30], dict(AU=2e-2, AC=1e-2)),
])
def test_pre_placement_gives_the_numbers_of_the_former_path(monkeypatch, seed, activation, widths, kinds):
    """Whole predictions before the activation (principal split included at
    width 40) equal those of the former path to 1e-12 (without uncorrelated
    multiplicative noise: with it, the children's co-skewness is carried and
    every child is formed at once, :func:`mixture._children_activation`)."""
    net, rng = random_network(widths, activation, seed)
    x = rng.uniform(-1, 1, (2, widths[0]))
    noise = Noise(**kinds, placement="pre")
    new = predict(net, noise, x, method="mixture", full_covariance=True, error_estimate=False)
    monkeypatch.setattr(mixture, "_pre_children", former_pre_children)
    old = predict(net, noise, x, method="mixture", full_covariance=True, error_estimate=False)
    for k in range(1, net.depth + 1):
        assert relative_difference(new.mean[k], old.mean[k]) < 1e-12
        assert relative_difference(new.cov[k], old.cov[k]) < 1e-12


def traced_peak(function, *args, **kwargs):
    """(result, peak bytes that tracemalloc sees ``function`` allocate)."""
    tracemalloc.start()
    try:
        result = function(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("placement", ["pre", "post"])
def test_memory_estimates_bound_the_measured_peak_within_2x(placement):
    """At width 192 (no principal split possible: its children would exceed
    the split's budget, so the estimate assumes none) every step of a
    3-layer tanh network with all four noise types, and the whole
    prediction, allocate at most their estimate and at least half of it."""
    width = 192
    net, rng = random_network([width] * 4, "tanh", 0, gain=1.0)
    x = rng.uniform(0, 1, (1, width))
    noise = Noise(AU=1e-3, AC=1e-3, MU=1e-3, MC=1e-3, placement=placement)
    mix = mixture.initial_mixture(x)
    for w, b, f in zip(net.weights, net.biases, net.activations):
        estimate = mixture.step_bytes(mix, width, noise)
        mix, peak = traced_peak(mixture.propagate_mixture, mix, w, b, f, noise)
        assert peak <= estimate <= 2 * peak
    estimate = predict_bytes(net.sizes, 1, method="mixture", noise=per_layer_noise(noise, 3))[0]
    _, peak = traced_peak(predict, net, noise, x, method="mixture")
    assert peak <= estimate - network_bytes(net.sizes) <= 2 * peak
