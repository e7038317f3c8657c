"""Gaussian moments of the activations and predict(method="moments").

- every rule against scipy.integrate.quad of f against the Gaussian density,
  and predict on a single neuron with Gaussian pre-activation noise likewise;
- affine networks: "moments" equals "linear";
- a network whose last pre-activation is exactly Gaussian: "moments" is exact
  there, checked neuron by neuron against Monte Carlo;
- a deep nonlinear network at large noise: "moments" is closer to Monte
  Carlo than "linear" by more than the sampling error.
"""
import math

import numpy as np
import pytest
from scipy import integrate, stats

from noiseprop import Network, Noise, predict, simulate
from noiseprop.activations import Erf, Heaviside, Linear, ReLU, Sigmoid, Tanh
from noiseprop.moments import MOMENT_RULES, gaussian_moments, second_moment_derivatives, third_moment
from noiseprop.propagation import DEFAULT_METHOD

RULE_ACTIVATIONS = [
    Linear(0.7, 0.2), Sigmoid(), Sigmoid(2.5), Sigmoid(-1.3), Tanh(), Tanh(0.3),
    Erf(), Erf(1.7), ReLU(), Heaviside(),
]
#: (mean, variance) of z: narrow to wide (sigmoid's Gauss-Laguerre branch
#: from gain * sd >= 1.5), |mean| / sd <= 8 so that the reference variance is
#: not an underflowing tail.
GAUSSIANS = [
    (m, v)
    for m in (-2.0, -0.5, 0.0, 0.7, 1.8)
    for v in (1e-4, 0.04, 0.5, 2.0, 6.0)
    if abs(m) / math.sqrt(v) <= 8
]


def quad_moments(f, m, v):
    """E[f(z)], Var[f(z)], E[f'(z)] and E[f''(z)] for z ~ N(m, v), by
    adaptive quadrature over the standard normal t = (z - m) / sd (kink/step
    at z = 0 given as a break point).  The derivatives' means come from f
    itself by Stein's lemma, E[f'] = E[t f] / sd and E[f''] = E[(t^2 - 1) f]
    / sd^2, which holds for relu's and heaviside's generalised derivatives
    too."""
    sd = math.sqrt(v)

    def expect(g):
        return integrate.quad(
            lambda t: g(t) * math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi),
            -40, 40, points=[-m / sd], epsabs=0, epsrel=1e-13, limit=1000,
        )[0]

    def value(t):
        return float(f(np.array(m + sd * t)))

    mean = expect(value)
    var = expect(lambda t: (value(t) - mean) ** 2)
    slope = expect(lambda t: t * value(t)) / sd
    curvature = expect(lambda t: (t * t - 1) * value(t)) / v
    return mean, var, slope, curvature


def test_every_activation_has_a_rule():
    from noiseprop.activations import ACTIVATIONS
    assert set(MOMENT_RULES) == set(ACTIVATIONS)


# quad warns of roundoff at the requested epsrel=1e-13; agreement is asserted at 1e-10.
@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("f", RULE_ACTIVATIONS, ids=lambda f: f.spec)
def test_rules_match_numerical_integration(f):
    means, variances = np.array(GAUSSIANS).T
    moments = gaussian_moments(f, means, variances)  # vectorised, as predict calls it
    for i, (m, v) in enumerate(GAUSSIANS):
        mean, var, slope, curvature = quad_moments(f, m, v)
        assert moments.mean[i] == pytest.approx(mean, rel=1e-10, abs=1e-12), (m, v)
        assert moments.var[i] == pytest.approx(var, rel=1e-10), (m, v)
        assert moments.slope[i] == pytest.approx(slope, rel=1e-10, abs=1e-12), (m, v)
        # (t^2 - 1) f integrates to a difference of O(f) terms: quad's own
        # error is ~1e-13 max|f| / v.
        assert moments.curvature[i] == pytest.approx(curvature, rel=1e-10, abs=1e-12 / v), (m, v)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("f", RULE_ACTIVATIONS, ids=lambda f: f.spec)
def test_power_moments_match_numerical_integration(f):
    """E[f^3] and E[(f^2)'], E[(f^2)''] (the mixture's co-skewness
    coefficients) against adaptive quadrature, the derivatives by Stein's
    lemma as in :func:`quad_moments`: 1e-6 for the derivatives (central
    differences for erf, sigmoid, tanh), 1e-8 for E[f^3]."""
    means, variances = np.array(GAUSSIANS).T
    first, second = second_moment_derivatives(f, means, variances)
    third = third_moment(f, means, variances)
    for i, (m, v) in enumerate(GAUSSIANS):
        _, _, power_slope, power_curvature = quad_moments(lambda z: f(z) ** 2, m, v)
        cube = quad_moments(lambda z: f(z) ** 3, m, v)[0]
        assert first[i] == pytest.approx(power_slope, rel=1e-6, abs=1e-8), (m, v)
        assert second[i] == pytest.approx(power_curvature, rel=1e-6, abs=1e-8 / v), (m, v)
        assert third[i] == pytest.approx(cube, rel=1e-8, abs=1e-10), (m, v)


def test_power_moments_at_zero_variance_are_point_values():
    for f in RULE_ACTIVATIONS:
        z = np.array([-0.8, 0.6])
        first, second = second_moment_derivatives(f, z, 0.0)
        np.testing.assert_allclose(first, 2 * f(z) * f.derivative(z), atol=1e-15)
        np.testing.assert_allclose(second, 2 * (f.derivative(z) ** 2 + f(z) * f.second_derivative(z)),
                                   atol=1e-15)
        np.testing.assert_allclose(third_moment(f, z, 0.0), f(z) ** 3, atol=1e-15)


@pytest.mark.parametrize("var", [1e-30, 1e-16, 1e-9])
def test_power_moments_of_a_nearly_noiseless_gaussian_are_point_values(var):
    """A variance far below f's own scale (a component conditioned on its
    leading directions has such neurons): the derivatives of E[f^2] are the
    point values to 1e-7 (the differences' step never shrinks with the sd,
    where it would leave nothing but rounding: at var = 1e-16 a step of
    1e-3 sd gave errors of order 1)."""
    for f in RULE_ACTIVATIONS:
        if f.name == "relu":       # its point derivatives jump at 0; not at these means
            continue
        z = np.array([-0.8, 0.05, 0.6])
        first, second = second_moment_derivatives(f, z, var)
        point = 2 * (f.derivative(z) ** 2 + f(z) * f.second_derivative(z))
        np.testing.assert_allclose(first, 2 * f(z) * f.derivative(z), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(second, point, rtol=1e-7, atol=1e-9)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("f", RULE_ACTIVATIONS, ids=lambda f: f.spec)
def test_predict_single_neuron_equals_numerical_integration(f):
    """One neuron y = f(z), z = w x + b with "pre" noise: z ~ N(zbar, D_AU +
    D_AC + (D_MU + D_MC) zbar^2) exactly, so predict(method="moments") must
    give E[f(z)] and Var[f(z)] as adaptive quadrature does (1e-10)."""
    net = Network.from_arrays([np.array([[1.3]])], [np.array([-0.4])], [f])
    noise = Noise(AU=0.3, AC=0.1, MU=0.2, MC=0.05, placement="pre")
    for x in (-1.0, 0.2, 1.5):
        zbar = 1.3 * x - 0.4
        mean, var, _, _ = quad_moments(f, zbar, 0.4 + 0.25 * zbar**2)
        result = predict(net, noise, np.array([x]), method="moments")
        assert result.mean[1][0] == pytest.approx(mean, rel=1e-10, abs=1e-12), x
        assert result.var[1][0] == pytest.approx(var, rel=1e-10), x


@pytest.mark.parametrize("f", RULE_ACTIVATIONS, ids=lambda f: f.spec)
def test_zero_variance_gives_point_values(f):
    z = np.array([-1.2, 0.3, 2.0])
    moments = gaussian_moments(f, z, 0.0)
    np.testing.assert_array_equal(moments.mean, f(z))
    np.testing.assert_array_equal(moments.var, 0.0)
    np.testing.assert_array_equal(moments.slope, f.derivative(z))
    np.testing.assert_array_equal(moments.curvature, f.second_derivative(z))


@pytest.mark.parametrize("f", [Sigmoid(0.8), Erf(1.2), Tanh(0.5)], ids=lambda f: f.spec)
def test_small_variance_approaches_linear_response(f):
    """Var[f(z)] = f'(m)^2 v (1 + O(v)): no cancellation at tiny v."""
    m, v = np.array([-0.9, 0.0, 0.6]), 1e-12
    moments = gaussian_moments(f, m, v)
    np.testing.assert_allclose(moments.var, f.derivative(m) ** 2 * v, rtol=1e-8)
    np.testing.assert_allclose(moments.mean, f(m), rtol=1e-11)


@pytest.mark.parametrize("mean, var, message", [
    (0.0, -1e-3, "finite and >= 0"),
    (0.0, np.nan, "finite and >= 0"),
])
def test_bad_variance(mean, var, message):
    with pytest.raises(ValueError, match=message):
        gaussian_moments(Sigmoid(), mean, var)


def test_activation_without_rule():
    class Softsign(Linear):
        name = "softsign"

    with pytest.raises(ValueError, match="no Gaussian-moment rule for activation 'softsign'.*rules exist for"):
        gaussian_moments(Softsign(), 0.0, 1.0)


def test_unknown_method_and_method_recorded():
    net = Network.symmetric(2, 3, 0.3, 0.0, "tanh")
    with pytest.raises(ValueError, match=r"method must be one of \('linear', 'moments', 'mixture'\), got 'exact'"):
        predict(net, Noise(AU=1e-3), np.ones(3), method="exact")
    assert predict(net, Noise(AU=1e-3), np.ones(3)).method == DEFAULT_METHOD
    result = predict(net, Noise(AU=1e-3), np.ones(3), method="moments")
    assert result.method == "moments" and "method='moments'" in repr(result)


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_moments_equal_linear_on_affine_networks(placement):
    rng = np.random.default_rng(11)
    sizes = [4, 5, 3, 2]
    weights = [rng.uniform(-1.5, 1.5, (n, m)) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.uniform(-1, 1, n) for n in sizes[1:]]
    net = Network.from_arrays(weights, biases, [Linear(0.8, 0.1), Linear(-1.3, 0.5), Linear(1.1)])
    noise = Noise(AU=0.2, AC=0.05, MU=0.1, MC=0.3, placement=placement)
    xs = rng.uniform(-2, 2, (3, 4))
    linear = predict(net, noise, xs, full_covariance=True, method="linear")
    moments = predict(net, noise, xs, full_covariance=True, method="moments")
    for k in range(net.depth + 1):
        np.testing.assert_allclose(moments.mean[k], linear.mean[k], rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(moments.cov[k], linear.cov[k], rtol=1e-13, atol=1e-15)


def test_moments_covariance_is_positive_semidefinite():
    rng = np.random.default_rng(12)
    sizes = [6, 8, 8, 4]
    weights = [rng.standard_normal((n, m)) * 1.5 / np.sqrt(m) for m, n in zip(sizes[:-1], sizes[1:])]
    net = Network.from_arrays(weights, None, ["tanh(gain=2)", "relu", "heaviside"])
    result = predict(net, Noise(AU=0.3, MC=0.2), rng.uniform(0, 1, 6), full_covariance=True,
                     method="moments")
    for cov in result.cov[1:]:
        assert np.linalg.eigvalsh(cov).min() >= -1e-12 * np.abs(cov).max()


def two_sided_z(false_failure, comparisons):
    """Normal quantile for a two-sided bound at the given family-wise rate."""
    return stats.norm.isf(false_failure / (2 * comparisons))


@pytest.mark.parametrize("last", ["tanh(gain=2)", "relu", "heaviside", "erf(gain=1.5)", "sigmoid(gain=3)"])
@pytest.mark.parametrize("last_noise", [Noise(AU=1e-3), Noise(AU=0.05, placement="pre")],
                         ids=["post", "pre"])
def test_moments_exact_where_pre_activation_is_gaussian(last, last_noise):
    """Layer 1 has only additive "post" noise, so z_2 = W_2 y_1 + b_2 is
    exactly Gaussian (with additive "pre" noise on layer 2 too) and layer
    2's means and variances under "moments" are exact.  Checked for every
    neuron and for the layer's mean noise variance against R = 200 000
    realisations of ``simulate``, each within z standard errors, z = 5.4
    (false failure < 1e-6 over 13 comparisons).  The tolerance of the
    layer's mean variance is below 3 %, so a rule wrong by a few percent
    fails; "linear" misses by more than 10 % at this noise (D = 0.25)."""
    rng = np.random.default_rng(21)
    weights = [rng.standard_normal((7, 5)) / np.sqrt(5), rng.standard_normal((6, 7)) / np.sqrt(7)]
    net = Network.from_arrays(weights, [np.zeros(7), rng.uniform(-0.3, 0.3, 6)], ["sigmoid", last])
    noise = [Noise(AU=0.25), last_noise]
    x = rng.uniform(0, 1, 5)
    samples = 200_000
    sim = simulate(net, noise, x, samples, seed=22)
    z = two_sided_z(1e-6, 2 * 6 + 1)
    moments = predict(net, noise, x, method="moments")
    np.testing.assert_array_less(np.abs(moments.mean[2] - sim.mean[2]), z * sim.mean_stderr[2])
    np.testing.assert_array_less(np.abs(moments.var[2] - sim.var[2]), z * sim.var_stderr[2])
    total, total_tolerance = sim.noise_var[2], z * sim.noise_var_stderr[2]
    assert abs(moments.noise_var[2] - total) < total_tolerance < 0.03 * total
    linear = predict(net, noise, x, method="linear")
    assert abs(linear.noise_var[2] / total - 1) > 0.1


def test_moments_beat_linear_on_deep_network_at_large_noise():
    """A 4-layer tanh/sigmoid network with all four noise types at D = 0.05.
    For the mean noise variance of each layer 2..4, "moments" must be closer
    to Monte Carlo than "linear" by more than 2 z standard errors (then it is
    closer to the true value whatever the sampling error, up to z s.e.),
    with R = 100 000 realisations of ``simulate``; z = 5.1 gives false
    failure < 1e-6 over the 3 layers."""
    rng = np.random.default_rng(31)
    sizes = [10, 30, 30, 30, 5]
    weights = [rng.standard_normal((n, m)) * 2 / np.sqrt(m) for m, n in zip(sizes[:-1], sizes[1:])]
    net = Network.from_arrays(weights, None, ["tanh", "sigmoid(gain=2)", "tanh(gain=1.5)", "linear"])
    noise = Noise(AU=0.05, AC=0.05, MU=0.05, MC=0.05)
    x = rng.uniform(0, 1, 10)
    sim = simulate(net, noise, x, samples=100_000, seed=32)
    z = two_sided_z(1e-6, 3)
    linear = predict(net, noise, x, method="linear")
    moments = predict(net, noise, x, method="moments")
    for k in range(2, 5):
        observed, stderr = sim.noise_var[k], sim.noise_var_stderr[k]
        linear_error = abs(linear.noise_var[k] - observed)
        moments_error = abs(moments.noise_var[k] - observed)
        assert moments_error + 2 * z * stderr < linear_error, (k, observed, linear_error, moments_error)


def gaussian_pair_covariance(f, mean, cov, nodes=80):
    """Cov(f(z_1), f(z_2)) for (z_1, z_2) ~ N(mean, cov) by a tensor
    Gauss-Hermite rule over independent standard normals (t_1, t_2)."""
    t, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    t1, t2 = np.meshgrid(t, t, indexing="ij")
    weight = np.outer(w, w)
    sd1, sd2 = np.sqrt(cov[0, 0]), np.sqrt(cov[1, 1])
    rho = cov[0, 1] / (sd1 * sd2)
    f1 = f(mean[0] + sd1 * t1)
    f2 = f(mean[1] + sd2 * (rho * t1 + np.sqrt(1 - rho**2) * t2))
    return np.sum(weight * f1 * f2) - np.sum(weight * f1) * np.sum(weight * f2)


def test_off_diagonal_covariance_is_second_order_exact():
    """Layer 1 (identity, additive noise) makes z_2 jointly Gaussian with
    correlation rho = D_AC / (D_AU + D_AC); Mehler's series cut after the
    second order leaves an O(rho^3) error in Cov(y_2,1, y_2,2): halving rho
    must divide it by about 8 (a wrong second-order term would leave
    O(rho^2), a factor 4)."""
    f = Tanh(1.5)
    x = np.array([0.3, -0.5])
    net = Network.from_arrays([np.eye(2), np.eye(2)], None, [Linear(), f])
    errors = []
    for rho in (0.2, 0.1):
        total = 0.3
        noise = [Noise(AU=(1 - rho) * total, AC=rho * total), Noise()]
        predicted = predict(net, noise, x, full_covariance=True, method="moments").cov[2][0, 1]
        cov_z = total * np.array([[1.0, rho], [rho, 1.0]])
        errors.append(abs(predicted - gaussian_pair_covariance(f, x, cov_z)))
    assert 6.5 < errors[0] / errors[1] < 9.5, errors
