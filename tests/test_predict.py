"""predict against independent computations (spec sections 4 and 5)."""
import numpy as np
import pytest
from exact_moments import exact_moments
from hypothesis import given, settings
from hypothesis import strategies as st

from noiseprop import Linear, Network, Noise, predict

intensity = st.sampled_from([0.0, 1e-4, 0.01, 0.3, 2.0])


@st.composite
def affine_networks(draw):
    """A small random affine network, per-layer noise and an input."""
    depth = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 3)) for _ in range(depth + 1)]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(-1.5, 1.5, (n, m)) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.uniform(-1, 1, n) for n in sizes[1:]]
    slopes = rng.uniform(-2, 2, depth)
    offsets = rng.uniform(-1, 1, depth)
    placement = draw(st.sampled_from(["post", "pre"]))
    noises = [
        Noise(AU=draw(intensity), AC=draw(intensity), MU=draw(intensity), MC=draw(intensity),
              placement=placement)
        for _ in range(depth)
    ]
    x = rng.uniform(-2, 2, sizes[0])
    return weights, biases, slopes, offsets, noises, x


@settings(max_examples=150, deadline=None)
@given(affine_networks())
def test_predict_is_exact_on_affine_networks(case):
    weights, biases, slopes, offsets, noises, x = case
    activations = [Linear(s, o) for s, o in zip(slopes, offsets)]
    net = Network.from_arrays(weights, biases, activations)
    result = predict(net, noises, x, full_covariance=True, method="linear")
    means, covs = exact_moments(weights, biases, slopes, offsets, noises, x)
    for k in range(net.depth + 1):
        scale = max(1.0, np.abs(covs[k]).max())
        np.testing.assert_allclose(result.mean[k], means[k], rtol=1e-9, atol=1e-12 * max(1.0, np.abs(means[k]).max()))
        np.testing.assert_allclose(result.cov[k], covs[k], rtol=1e-9, atol=1e-12 * scale)
        np.testing.assert_allclose(result.var[k], np.diag(covs[k]), rtol=1e-9, atol=1e-12 * scale)


@pytest.mark.parametrize("placement", ["post", "pre"])
@pytest.mark.parametrize("noise_type", ["AU", "AC", "MU", "MC"])
def test_each_noise_type_and_placement_is_exact(noise_type, placement):
    """Every noise type alone, on a fixed affine network (so that no type or
    placement is left to the random draws above), large noise: relative error < 1e-9."""
    rng = np.random.default_rng(11)
    sizes, slopes, offsets = (3, 4, 3, 2), [1.4, -0.7, 0.9], [0.3, 0.1, -0.5]
    weights = [rng.uniform(-1, 1, (n, m)) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.uniform(-1, 1, n) for n in sizes[1:]]
    noises = [Noise(**{noise_type: d}, placement=placement) for d in (0.2, 0.05, 0.5)]
    x = rng.uniform(-2, 2, sizes[0])
    net = Network.from_arrays(weights, biases, [Linear(s, o) for s, o in zip(slopes, offsets)])
    result = predict(net, noises, x, full_covariance=True, method="linear")
    means, covs = exact_moments(weights, biases, slopes, offsets, noises, x)
    for k in range(1, net.depth + 1):
        np.testing.assert_allclose(result.mean[k], means[k], rtol=1e-9)
        np.testing.assert_allclose(result.cov[k], covs[k], rtol=1e-9)
        assert np.all(np.diag(covs[k]) > 0)  # the noise reaches every layer


def symmetric_recursion(depth, width, w, b, f, x0, noise):
    """Spec 5: scalar recursion for (m_k, u_k, c_k) of a symmetric network."""
    m, u, c = x0, 0.0, 0.0
    rows = [(m, u, c)]
    for _ in range(depth):
        z = w * width * m + b
        m, s = float(f(z)), float(f.derivative(z))
        common = s**2 * w**2 * width * (u + width * c)
        u = (m**2 + common) * noise.MU + noise.AU
        c = common * (1 + noise.MC) + m**2 * noise.MC + noise.AC
        rows.append((m, u, c))
    return rows


@pytest.mark.parametrize("activation", ["sigmoid(gain=2)", "tanh(gain=0.7)", "linear(slope=1.3,offset=0.2)", "erf"])
@pytest.mark.parametrize("noise", [
    Noise(AU=1e-3), Noise(AC=2e-3), Noise(MU=3e-3), Noise(MC=1e-3),
    Noise(AU=1e-3, AC=2e-3, MU=3e-3, MC=4e-3),
])
def test_symmetric_network_follows_scalar_recursion(activation, noise):
    depth, width, w, b, x0 = 6, 5, 0.3, -0.1, 0.4
    net = Network.symmetric(depth, width, w, b, activation)
    result = predict(net, noise, np.full(width, x0), method="linear")
    rows = symmetric_recursion(depth, width, w, b, net.activations[0], x0, noise)
    for k, (m, u, c) in enumerate(rows):
        np.testing.assert_allclose(result.mean[k], m, rtol=1e-12)
        np.testing.assert_allclose(result.var[k], u + c, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(result.correlated[k], c, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(result.uncorrelated[k], u, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("slope", [0.5, 0.9, 1.0, 1.2])
def test_correlated_additive_closed_form(slope):
    depth, width, d = 12, 8, 1e-3
    net = Network.symmetric(depth, width, 1 / width, 0.0, Linear(slope))
    result = predict(net, Noise(AC=d), np.ones(width), method="linear")
    for k in range(1, depth + 1):
        expected = k * d if slope == 1 else d * (1 - slope ** (2 * k)) / (1 - slope**2)
        np.testing.assert_allclose(result.var[k], expected, rtol=1e-12)
        np.testing.assert_allclose(result.correlated[k], expected, rtol=1e-12)


@pytest.mark.parametrize("slope", [0.5, 0.9, 1.0, 1.2])
def test_uncorrelated_additive_closed_form(slope):
    depth, width, d = 12, 8, 1e-3
    net = Network.symmetric(depth, width, 1 / width, 0.0, Linear(slope))
    result = predict(net, Noise(AU=d), np.ones(width), method="linear")
    for k in range(1, depth + 1):
        if slope == 1:  # the limit s -> 1 of the closed form below
            expected = d * (1 + (k - 1) / width)
        else:
            expected = d * (1 + slope**2 / width * (1 - slope ** (2 * (k - 1))) / (1 - slope**2))
        np.testing.assert_allclose(result.var[k], expected, rtol=1e-12)


def test_bounded_limit_below_slope_one():
    slope, d, width = 0.8, 1e-3, 10
    net = Network.symmetric(200, width, 1 / width, 0.0, Linear(slope))
    result = predict(net, Noise(AC=d), np.ones(width), method="linear")
    np.testing.assert_allclose(result.var[-1], d / (1 - slope**2), rtol=1e-12)


def random_network(rng, sizes, activations):
    weights = [rng.standard_normal((n, m)) / np.sqrt(m) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal(n) * 0.1 for n in sizes[1:]]
    return Network.from_arrays(weights, biases, activations)


@pytest.mark.parametrize("method", ["linear", "moments", "mixture"])
@pytest.mark.parametrize("placement", ["post", "pre"])
def test_batch_equals_loop_over_inputs(placement, method):
    rng = np.random.default_rng(3)
    net = random_network(rng, [6, 5, 4, 3], ["tanh", "sigmoid", "linear"])
    noise = [Noise(AU=1e-3, MC=2e-3, placement=placement), Noise(AC=1e-3, MU=1e-3, placement=placement),
             Noise(AU=1e-2, placement=placement)]
    xs = rng.uniform(0, 1, (7, 6))
    batch = predict(net, noise, xs, full_covariance=True, method=method)
    for i, x in enumerate(xs):
        single = predict(net, noise, x, full_covariance=True, method=method)
        for k in range(net.depth + 1):
            np.testing.assert_allclose(batch.mean[k][i], single.mean[k], rtol=1e-14)
            np.testing.assert_allclose(batch.var[k][i], single.var[k], rtol=1e-14)
            # off-diagonal entries far below the diagonal differ by BLAS rounding
            np.testing.assert_allclose(batch.cov[k][i], single.cov[k], rtol=1e-14,
                                       atol=1e-14 * np.abs(single.cov[k]).max())
        np.testing.assert_allclose(batch.layer_snr[:, i], single.layer_snr, rtol=1e-14)
        np.testing.assert_allclose(batch.correlated[:, i], single.correlated, rtol=1e-12)


def test_reported_quantities_follow_their_definitions():
    rng = np.random.default_rng(4)
    net = random_network(rng, [5, 4, 4], ["relu", "linear"])
    result = predict(net, Noise(AU=1e-3, AC=1e-3, MU=1e-3, MC=1e-3), rng.uniform(0, 1, 5), full_covariance=True)
    for k in range(1, net.depth + 1):
        cov = result.cov[k]
        n = cov.shape[0]
        c = (cov.sum() - np.trace(cov)) / (n * (n - 1))
        np.testing.assert_allclose(result.correlated[k], c, rtol=1e-12)
        np.testing.assert_allclose(result.uncorrelated[k], np.diag(cov) - c, rtol=1e-12)
        np.testing.assert_allclose(result.snr[k], result.mean[k] ** 2 / np.diag(cov), rtol=1e-12)
        np.testing.assert_allclose(result.layer_snr[k], np.sum(result.mean[k] ** 2) / np.trace(cov), rtol=1e-12)
    assert result.layer_snr[0] == np.inf
    assert result.summary()[0]["snr_db"] == np.inf


def test_linear_response_matches_jacobian_of_nonlinear_network():
    """Additive uncorrelated noise on the output layer only, none elsewhere,
    plus noise on layer 1 carried by the numerical Jacobian of layers 2..L."""
    rng = np.random.default_rng(5)
    net = random_network(rng, [4, 5, 3], ["tanh(gain=1.5)", "sigmoid(gain=0.8)"])
    x = rng.uniform(-1, 1, 4)
    d1 = 1e-3
    result = predict(net, [Noise(AU=d1), Noise()], x, method="linear")
    y1 = net.forward(x)[1]
    eps = 1e-6
    jac = np.empty((3, 5))
    for j in range(5):
        step = np.zeros(5)
        step[j] = eps
        up = net.activations[1](net.weights[1] @ (y1 + step) + net.biases[1])
        down = net.activations[1](net.weights[1] @ (y1 - step) + net.biases[1])
        jac[:, j] = (up - down) / (2 * eps)
    np.testing.assert_allclose(result.var[2], d1 * np.sum(jac**2, axis=1), rtol=1e-7)
