"""The shared-noise mixture closure ("mixture", the default method) and its error estimate.

Exactness checks against independent computations (affine networks, a
one-dimensional integral, the moment-preserving merge), then a reduced form
of the closure matrix of ``benchmarks/closure_matrix.py`` (cases where
the Gaussian closure ("moments") fails worst, and others), each against a control-variate
Monte Carlo run with a fixed seed.  A layer passes when its relative error of
the mean noise variance is within the goal (1 % at D <= 1e-2, 5 % at D = 0.1)
plus z Monte Carlo standard errors, z = 5.64: a two-sided normal bound with
false-failure probability < 1e-6 over the at most 60 (case, layer)
comparisons of one test (Bonferroni).  Every neuron's mean must be within
0.2 of its noise sd plus Z_MEAN standard errors of the simulated mean,
Z_MEAN = 6.17: false-failure probability < 1e-6 over the at most 1 500
neurons of one test's cases (so < 2e-6 for a test in all).  On the fast
cases "moments" misses the variance goal by 7 to 24 points and its means are
up to 0.4 sd off (``test_reduced_matrix_fast_can_fail`` shows both checks
rejecting it), so the test fails on a closure that is off by a few percent.
The error estimate must cover the measured error (within 2 standard errors)
on at least 90 % of the layers of each test's cases; with these fixed seeds
that is a deterministic check of the calibration on runs independent of the
ones it was fitted on.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate, stats

from noiseprop import Linear, Network, Noise, default_network, mixture, predict, simulate
from noiseprop.activations import Tanh
from noiseprop.moments import gaussian_moments
from noiseprop.propagation import DEFAULT_METHOD, ERROR_WARNING, METHODS

#: Two-sided bound for < 1e-6 false failures over 60 comparisons.
Z = float(stats.norm.isf(1e-6 / (2 * 60)))
#: The same over 1 500 neuron means (the most one test's cases have: 3 x 8 x 50).
Z_MEAN = float(stats.norm.isf(1e-6 / (2 * 1500)))
#: The closure matrix's goal for the means, in noise standard deviations.
MEAN_GOAL = 0.2


def matrix_network(activation: str, depth: int, width: int = 50, seed: int = 0):
    """The closure matrix's recipe: N(0, 1/fan-in) weights, N(0, 0.1^2)
    biases, one N(0, 1) input, all from one seed."""
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((width, width)) / np.sqrt(width) for _ in range(depth)]
    biases = [0.1 * rng.standard_normal(width) for _ in range(depth)]
    return Network.from_arrays(weights, biases, activation), rng.standard_normal(width)


def goal(d: float) -> float:
    return 0.01 if d <= 1e-2 else 0.05


def relative_errors(net, x, noise, samples, seed, methods=("mixture",)):
    """Per method: relative errors of layers 1..L's noise_var; and the MC s.e."""
    errors, se, _, sim = measured_errors(net, x, noise, samples, seed, methods)
    return errors, se, sim


def measured_errors(net, x, noise, samples, seed, methods):
    """Per method the relative errors of layers 1..L's noise_var and the
    largest error of a neuron's mean beyond Z_MEAN standard errors, in noise
    sd (the larger of the simulated and predicted one, as in the benchmark;
    noise-free neurons skipped); the MC s.e. of noise_var; the simulation."""
    sim = simulate(net, noise, x, samples, seed, control_variate=True)
    se = sim.noise_var_stderr[1:] / sim.noise_var[1:]
    errors, mean_sd = {}, {}
    for m in methods:
        result = predict(net, noise, x, method=m, error_estimate=False)
        errors[m] = result.noise_var[1:] / sim.noise_var[1:] - 1
        worst = 0.0
        for k in range(1, net.depth + 1):
            sd = np.sqrt(np.maximum(sim.var[k], result.var[k]))
            beyond = np.abs(result.mean[k] - sim.mean[k]) - Z_MEAN * sim.mean_stderr[k]
            worst = max(worst, float(np.max(beyond[sd > 0] / sd[sd > 0], initial=0.0)))
        mean_sd[m] = worst
    return errors, se, mean_sd, sim


# ------------------------------------------------------------ exactness

def test_default_method_is_the_mixture():
    assert DEFAULT_METHOD == "mixture" and DEFAULT_METHOD in METHODS
    net, x = matrix_network("tanh", 2, width=4)
    assert predict(net, Noise(AU=1e-3), x).method == DEFAULT_METHOD


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_mixture_is_exact_on_affine_networks(placement):
    """Every step is exact for affine activations: the same numbers as
    linear response (itself held against an independent computation in
    test_predict) at large noise of all four types."""
    rng = np.random.default_rng(1)
    sizes = [4, 6, 5, 3]
    weights = [rng.uniform(-1, 1, (n, m)) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.uniform(-1, 1, n) for n in sizes[1:]]
    net = Network.from_arrays(weights, biases, [Linear(0.8, 0.1), Linear(-1.2, 0.3), Linear(1.1)])
    noise = Noise(AU=0.2, AC=0.1, MU=0.15, MC=0.3, placement=placement)
    xs = rng.uniform(-2, 2, (3, 4))
    linear = predict(net, noise, xs, full_covariance=True, method="linear")
    mix = predict(net, noise, xs, full_covariance=True, method="mixture")
    for k in range(net.depth + 1):
        np.testing.assert_allclose(mix.mean[k], linear.mean[k], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(mix.cov[k], linear.cov[k], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mix.error_estimate, 0.0, atol=1e-9)


@pytest.mark.parametrize("d", [1e150, 1e300])
def test_mixture_takes_any_finite_noise_on_affine_networks(d):
    """Additive noise of both kinds at 1e150 and 1e300: the split along the
    leading direction of the components' spread (power iteration) works on
    scaled rows, so nothing overflows (it once warned 'overflow encountered
    in matmul' 30 times) and the numbers are linear response's."""
    net = Network.symmetric(3, 3, 0.3, 0.1, "linear")
    noise = Noise(AU=d, AC=d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mix = predict(net, noise, np.ones(3), method="mixture")
    linear = predict(net, noise, np.ones(3), method="linear")
    np.testing.assert_allclose(mix.noise_var, linear.noise_var, rtol=1e-10)


def test_principal_split_keeps_each_component_law_moments():
    """Splitting a Gaussian component along leading directions of its
    covariance is a conditioning: the children's weights, means and
    covariances (plus the spread of their means) give back the component's
    mean and covariance exactly (3 Gauss-Hermite nodes integrate t and t^2)."""
    rng = np.random.default_rng(4)
    b, k, n = 2, 3, 6
    root = rng.standard_normal((b, k, n, n))
    cov = root @ np.swapaxes(root, -1, -2)
    zbar = rng.standard_normal((b, k, n))
    weight = rng.random((b, k))
    weight /= weight.sum(axis=1, keepdims=True)
    means, covs, w = mixture._principal_split(zbar, cov, weight, 2)
    assert means.shape == (b, k * 9, n) and np.allclose(w.sum(axis=1), 1.0)
    before = mixture.mixture_moments(mixture.Mixture(weight, zbar, cov))
    after = mixture.mixture_moments(mixture.Mixture(w, means, covs))
    for x_before, x_after in zip(before, after):
        np.testing.assert_allclose(x_after, x_before, rtol=1e-10, atol=1e-12)
    # the children's covariances have no variance left along the split directions
    lam, vec = mixture._leading_subspace(cov, 2)
    left = np.einsum("bknr,bknm,bkmr->bkr", vec, covs[:, ::9], vec)
    np.testing.assert_allclose(left, 0.0, atol=1e-10 * np.abs(lam).max())


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_shared_noise_alone_is_integrated_on_a_grid(placement):
    """Correlated noise alone: every output is a deterministic function of
    the shared draws, which the mixture integrates on a tensor grid.  Layer
    2 of a tanh network with AC noise is a function of (c1, c2): its layer
    mean and variance as two-dimensional integrals;
    with 7 Gauss-Hermite nodes per draw they agree to about 1e-9 and 1e-6
    at D = 0.02 (the rule's error grows with the spread of the draws)."""
    d = 0.02
    net, x = matrix_network("tanh", 2, width=3, seed=5)
    (w1, w2), (b1, b2) = net.weights, net.biases
    sd = np.sqrt(d)

    # the trapezoid rule on a fine grid (spectrally accurate for smooth
    # integrands with Gaussian tails), independent of Gauss-Hermite
    c = np.linspace(-10 * sd, 10 * sd, 401)
    c1, c2 = (a.ravel()[:, None] for a in np.meshgrid(c, c, indexing="ij"))
    density = (stats.norm.pdf(c1, 0, sd) * stats.norm.pdf(c2, 0, sd)).ravel() * (c[1] - c[0]) ** 2
    if placement == "post":
        y2 = np.tanh((np.tanh(w1 @ x + b1) + c1) @ w2.T + b2) + c2
    else:
        y2 = np.tanh(np.tanh(w1 @ x + b1 + c1) @ w2.T + b2 + c2)
    mean = density @ y2
    var = density @ (y2 - mean) ** 2
    result = predict(net, Noise(AC=d, placement=placement), x, method="mixture")
    np.testing.assert_allclose(result.mean[2], mean, rtol=1e-8)
    np.testing.assert_allclose(result.var[2], var, rtol=1e-5)


@pytest.mark.parametrize("kind", ["MC", "AC", "MU"])
def test_first_layer_with_noise_before_the_activation_is_a_one_dimensional_integral(kind):
    """Layer 1 of a noise-free input with noise before a tanh: y_i =
    tanh(zbar_i (1 + xi) ) or tanh(zbar_i + xi); its mean and variance are
    integrals over one Gaussian, computed here by adaptive quadrature."""
    d = 0.09
    net, x = matrix_network("tanh", 1, width=5)
    zbar = net.weights[0] @ x + net.biases[0]
    result = predict(net, Noise(**{kind: d}, placement="pre"), x, method="mixture")
    density = stats.norm(0, np.sqrt(d)).pdf
    for i, z in enumerate(zbar):
        def f(xi, z=z):
            return np.tanh(z + xi) if kind == "AC" else np.tanh(z * (1 + xi))
        mean = integrate.quad(lambda xi: f(xi) * density(xi), -12 * np.sqrt(d), 12 * np.sqrt(d))[0]
        second = integrate.quad(lambda xi: f(xi) ** 2 * density(xi), -12 * np.sqrt(d), 12 * np.sqrt(d))[0]
        assert result.mean[1][i] == pytest.approx(mean, rel=1e-6, abs=1e-9)
        assert result.var[1][i] == pytest.approx(second - mean**2, rel=1e-4)


def test_merge_keeps_the_total_mean_and_covariance():
    rng = np.random.default_rng(2)
    b, m, n = 2, 40, 5
    weight = rng.random((b, m))
    weight /= weight.sum(axis=1, keepdims=True)
    root = rng.standard_normal((b, m, n, n))
    mix = mixture.Mixture(weight, rng.standard_normal((b, m, n)), root @ np.swapaxes(root, -1, -2))
    flat = mix.cov.reshape(b, m, n * n)
    merged = mixture._merge(mix.weight, mix.mean,
                            lambda ow: (np.swapaxes(ow, 1, 2) @ flat).reshape(b, -1, n, n), 7)
    assert merged.weight.shape == (b, 7)
    for before, after in zip(mixture.mixture_moments(mix), mixture.mixture_moments(merged)):
        np.testing.assert_allclose(after, before, rtol=1e-12, atol=1e-12)


def _total_coskew(mix, include_within=True):
    """kappa(y_a, y_a, y_b) (N, N) of a one-input mixture by the law of total
    cumulance: the components' own co-skewness plus 2 d_a S_ab + d_b S_aa +
    d_a^2 d_b, d the component means' deviations from the total mean."""
    w, m, cov = mix.weight[0], mix.mean[0], mix.cov[0]
    d = m - w @ m
    own = np.diagonal(cov, axis1=1, axis2=2)
    total = (2 * np.einsum("k,ka,kab->ab", w, d, cov) + np.einsum("k,ka,kb->ab", w, own, d)
             + np.einsum("k,ka,kb->ab", w, d * d, d))
    if include_within:
        total += np.einsum("k,kab->ab", w, mix.skew[0])
    return total


def _monte_carlo_coskew(net, x, d, placement, samples, seed):
    """kappa(y_a, y_a, y_b) of the last layer by a plain NumPy Monte Carlo
    (independent of noiseprop's kernels): MU noise of variance d per neuron."""
    rng = np.random.default_rng(seed)
    outputs = []
    for _ in range(samples // 50_000):
        y = np.broadcast_to(x, (50_000, x.size))
        for w, b in zip(net.weights, net.biases):
            z = y @ w.T + b
            xi = np.sqrt(d) * rng.standard_normal(z.shape)
            y = np.maximum(z * (1 + xi), 0.0) if placement == "pre" else np.maximum(z, 0.0) * (1 + xi)
        outputs.append(y)
    dev = np.concatenate(outputs)
    dev -= dev.mean(axis=0)
    return (dev * dev).T @ dev / len(dev)


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_carried_coskewness_matches_monte_carlo(placement):
    """Uncorrelated multiplicative noise: the mixture carries each
    component's co-skewness kappa(y_a, y_a, y_b) (its signal-dependent
    variance co-varies with the other neurons' signals).  relu, width 12,
    depth 3, MU = 0.2: the total co-skewness of the output (law of total
    cumulance over the components) against a 400 000-sample Monte Carlo
    (fixed seed; its own relative error about 1.5 %): within 6 % (relative
    Frobenius norm) off the diagonal and on it (measured: about 3 % and 2 %);
    without the carried part (the spread of the components alone) it is
    18 % and 31 % off, so the check fails on a closure that drops it."""
    net, x = matrix_network("relu", 3, width=12, seed=5)
    noise = Noise(MU=0.2, placement=placement)
    mix = mixture.initial_mixture(x[None])
    for w, b, f in zip(net.weights, net.biases, net.activations):
        mix = mixture.propagate_mixture(mix, w, b, f, noise)
    reference = _monte_carlo_coskew(net, x, 0.2, placement, 400_000, seed=3)
    off = ~np.eye(12, dtype=bool)

    def errors(kappa):
        return (np.linalg.norm((kappa - reference)[off]) / np.linalg.norm(reference[off]),
                np.linalg.norm(np.diag(kappa - reference)) / np.linalg.norm(np.diag(reference)))

    assert max(errors(_total_coskew(mix))) < 0.06
    assert min(errors(_total_coskew(mix, include_within=False))) > 0.12


def test_merge_keeps_the_total_coskewness():
    """Law of total cumulance: merging children (with their own co-skewness)
    into groups leaves the mixture's total kappa(y_a, y_a, y_b) unchanged,
    as the merge leaves its total mean and covariance."""
    rng = np.random.default_rng(8)
    b, m, n = 2, 40, 5
    weight = rng.random((b, m))
    weight /= weight.sum(axis=1, keepdims=True)
    root = rng.standard_normal((b, m, n, n))
    cov, skew = root @ np.swapaxes(root, -1, -2), rng.standard_normal((b, m, n, n))
    mean = rng.standard_normal((b, m, n))
    flat, flat_skew = cov.reshape(b, m, n * n), skew.reshape(b, m, n * n)

    def row_weighted_cov(coef):
        return np.einsum("bmga,bmac->bgac", coef, cov), np.diagonal(cov, axis1=2, axis2=3)

    merged = mixture._merge(weight, mean, lambda ow: (np.swapaxes(ow, 1, 2) @ flat).reshape(b, -1, n, n), 7,
                            lambda ow: (np.swapaxes(ow, 1, 2) @ flat_skew).reshape(b, -1, n, n),
                            row_weighted_cov)
    for i in range(b):
        children = mixture.Mixture(weight[i:i + 1], mean[i:i + 1], cov[i:i + 1], skew[i:i + 1])
        one = mixture.Mixture(*(field[i:i + 1] for field in merged))
        np.testing.assert_allclose(_total_coskew(one), _total_coskew(children), rtol=1e-10, atol=1e-12)


def test_coskewness_of_a_linear_map():
    """kappa(z_a, z_a, z_b) of z = W y from K = kappa(y_i, y_i, y_j) (the
    joint cumulants of three distinct neurons taken as 0): the sum over
    i, i', j of W_ai W_ai' W_bj kappa(y_i, y_i', y_j) with the full tensor
    written out, for every a, b (the diagonal by the same formula); batched
    maps (one W per component, as for the principal split) give the same."""
    rng = np.random.default_rng(6)
    n_in, n_out = 5, 4
    w, k = rng.standard_normal((n_out, n_in)), rng.standard_normal((2, n_in, n_in))
    full = np.zeros((2, n_in, n_in, n_in))               # kappa(y_i, y_j, y_l), symmetric
    for i in range(n_in):
        for j in range(n_in):
            for idx in {(i, i, j), (i, j, i), (j, i, i)}:
                full[(slice(None), *idx)] = k[:, i, j]
    expected = np.einsum("ai,aj,bl,cijl->cab", w, w, w, full)
    np.testing.assert_allclose(mixture._skew_congruence(w, k), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mixture._skew_congruence(np.stack([w, w]), k), expected, rtol=1e-12, atol=1e-12)


def test_identical_neurons_keep_identical_coskewness():
    """Identical rows of W (every neuron sees the same sum): every entry of
    kappa(z_a, z_a, z_b), diagonal included, is the same, as it must be for
    identical pre-activations (z_a = z_b)."""
    rng = np.random.default_rng(2)
    k = rng.standard_normal((6, 6))
    got = mixture._skew_congruence(np.full((4, 6), 1 / 6), k[None])[0]
    np.testing.assert_allclose(got, got[0, 0], rtol=1e-12)


def _skewed_pair(eps, sigma, activation):
    """Two pre-activations z = mu + sigma (y + eps (y^2 - 1)), y a correlated
    standard normal pair (rho = 0.6), on an 80 x 80 Gauss-Hermite grid: their
    covariance S, co-skewness K[a, b] = kappa(z_a, z_a, z_b), the exact
    covariance of f(z) and that of f under a Gaussian with the same mean and S."""
    t, w = mixture._hermite(80)
    x1, x2 = np.meshgrid(t, t, indexing="ij")
    weight = np.outer(w, w)
    ys = (x1, 0.6 * x1 + 0.8 * x2)
    z = [mu + sigma * (y + eps * (y * y - 1)) for mu, y in zip((0.3, -0.2), ys)]

    def central(values):
        return [v - np.sum(weight * v) for v in values]

    def covariance(values):
        d = central(values)
        return np.array([[np.sum(weight * a * b) for b in d] for a in d])

    d = central(z)
    cov = covariance(z)
    skew = np.array([[np.sum(weight * a * a * b) for b in d] for a in d])
    root = np.linalg.cholesky(cov)
    gaussian = [np.sum(weight * z[0]) + root[0, 0] * x1, np.sum(weight * z[1]) + root[1, 0] * x1 + root[1, 1] * x2]
    mean = np.array([np.sum(weight * v) for v in z])
    return mean, cov, skew, covariance([activation(v) for v in z]), covariance([activation(v) for v in gaussian])


def test_edgeworth_terms_carry_the_first_order_of_the_coskewness():
    """Cov[f(z_a), f(z_b)] of a skewed pair (tanh(2z), sd 0.1, skewness
    about 0.3; :func:`_skewed_pair`, exact by quadrature) minus that of the
    Gaussian with the same mean and covariance: the Edgeworth terms
    (:func:`mixture._edgeworth`, diagonal included) account for more than
    75 % of it on every entry (measured: 92 % off the diagonal, 92 % and
    82 % on it), and the rest shrinks with the skewness (it is of
    second order: halving eps at least halves it)."""
    f = Tanh(2.0)

    def residuals(eps):
        mean, cov, skew, exact, gaussian = _skewed_pair(eps, 0.1, f)
        m = gaussian_moments(f, mean, np.diag(cov))
        terms = mixture._edgeworth(skew[None], m.slope[None], m.curvature[None], m.slope[None],
                                   m.curvature[None])[0]
        return exact - gaussian, exact - gaussian - terms

    effect, rest = residuals(0.05)
    assert np.all(np.abs(rest) < 0.25 * np.abs(effect)), (effect, rest)
    smaller = residuals(0.025)[1]
    assert np.all(np.abs(smaller) < 0.5 * np.abs(rest)), (rest, smaller)


def test_identical_neurons_stay_identical_with_the_coskewness_carried(monkeypatch):
    """All weights 1/N (every neuron of a layer sees the same sum), tanh(2z)
    and all four noise types (the F2 network's, narrower and shorter): with
    the co-skewness carried, each component's covariance stays c 1 1^T + d I
    with d >= 0 (the neurons' own noise; the pre-activations, z_a = z_b,
    fully correlated) and its co-skewness k 1 1^T + e I, to rounding, so
    that the positive semi-definite projection of the merge never acts."""
    n = 8
    net = Network.symmetric(6, n, 1.0 / n, activation="tanh(gain=2)")
    noise = Noise(AU=1e-4, AC=1e-4, MU=1e-4, MC=1e-4)
    projection = mixture._positive_semidefinite

    def unchanged(cov):
        out = projection(cov)
        assert np.array_equal(out, cov), "the projection acted"
        return out

    monkeypatch.setattr(mixture, "_positive_semidefinite", unchanged)
    mix = mixture.initial_mixture(np.ones((1, n)))
    off = ~np.eye(n, dtype=bool)
    for w, b, f in zip(net.weights, net.biases, net.activations):
        mix = mixture.propagate_mixture(mix, w, b, f, noise)
        assert mix.skew is not None
        for field in (mix.cov, mix.skew):
            scale = np.max(np.abs(field))
            entries = field[..., off]
            diagonal = np.diagonal(field, axis1=-2, axis2=-1)
            assert np.max(np.abs(entries - entries[..., :1])) <= 1e-9 * scale
            assert np.max(np.abs(diagonal - diagonal[..., :1])) <= 1e-9 * scale
        own = np.diagonal(mix.cov, axis1=-2, axis2=-1)[..., 0] - mix.cov[..., 0, 1]
        assert np.all(own >= -1e-12 * np.max(np.abs(mix.cov)))


def test_positive_semidefinite_projection_is_the_nearest_and_leaves_definite_matrices():
    """Negative eigenvalues set to 0 (the nearest positive semi-definite
    matrix in the Frobenius norm: no positive semi-definite matrix tried is
    closer); a positive definite matrix is returned unchanged."""
    rng = np.random.default_rng(4)
    root = rng.standard_normal((5, 5))
    definite = root @ root.T
    indefinite = definite - 3.0 * np.outer(root[0], root[0]) / (root[0] @ root[0]) * np.linalg.eigvalsh(definite)[1]
    got = mixture._positive_semidefinite(np.stack([definite, indefinite]))
    np.testing.assert_array_equal(got[0], definite)
    assert np.linalg.eigvalsh(got[1]).min() >= -1e-12 * np.abs(got[1]).max()
    distance = np.linalg.norm(got[1] - indefinite)
    for _ in range(200):
        other = rng.standard_normal((5, 5))
        trial = got[1] + 0.1 * other @ other.T
        assert np.linalg.norm(trial - indefinite) >= distance


@pytest.mark.slow
def test_uncorrelated_multiplication_never_loses_to_linear_response():
    """The closure matrix's one miss before the co-skewness was carried:
    relu depth 8, MU = 0.1 after the activation, layer 6, where linear
    response crosses zero by chance (benchmark: mixture -1.27 %, linear
    -0.03 %).  400 000 samples (s.e. 0.04 %): the issue's rule |mixture| <=
    |linear| + 1 point + 3 s.e. on every layer (measured at layer 6:
    +0.39 % against 0.00 %; the bound is 1.13 %)."""
    net, x = matrix_network("relu", 8)
    errors, se, _, _ = measured_errors(net, x, Noise(MU=0.1, placement="post"), 400_000, seed=7,
                                       methods=("mixture", "linear"))
    assert np.all(np.abs(errors["mixture"]) <= np.abs(errors["linear"]) + 0.01 + 3 * se), errors


def test_noise_without_uncorrelated_multiplication_carries_no_coskewness():
    """The co-skewness is carried from the first layer with MU > 0 on; other
    noise leaves the closure as it was (no skew array)."""
    net, x = matrix_network("relu", 3, width=6)
    mix = mixture.initial_mixture(x[None])
    for w, b, f in zip(net.weights, net.biases, net.activations):
        mix = mixture.propagate_mixture(mix, w, b, f, Noise(AU=0.1))
    assert mix.skew is None
    mix = mixture.propagate_mixture(mix, net.weights[0], net.biases[0], net.activations[0], Noise(MU=0.1))
    assert mix.skew is not None and mix.skew.shape == mix.cov.shape


def test_mixture_covariance_is_positive_semidefinite():
    net, x = matrix_network("relu", 4, width=8, seed=3)
    result = predict(net, Noise(AU=0.2, AC=0.1, MU=0.1, MC=0.2, placement="pre"), x,
                     full_covariance=True, method="mixture")
    for cov in result.cov[1:]:
        assert np.linalg.eigvalsh(cov).min() >= -1e-12 * np.abs(cov).max()


def test_chunks_of_a_batch_give_the_numbers_of_single_inputs(monkeypatch):
    monkeypatch.setattr(mixture, "CHUNK_VALUES", 1)          # one input per chunk
    net, _ = matrix_network("sigmoid", 3, width=5)
    xs = np.random.default_rng(4).standard_normal((3, 5))
    noise = Noise(AC=0.05, MC=0.05)
    batch = predict(net, noise, xs, method="mixture")
    for i, x in enumerate(xs):
        single = predict(net, noise, x, method="mixture")
        for k in range(net.depth + 1):
            np.testing.assert_allclose(batch.var[k][i], single.var[k], rtol=1e-12)
            np.testing.assert_allclose(batch.mean[k][i], single.mean[k], rtol=1e-12)


# ------------------------------------------------------------ error estimate

def test_error_estimate_is_reported_and_warns():
    net, x = matrix_network("relu", 4, width=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = predict(net, Noise(MC=1e-3), x)
    assert quiet.error_estimate.shape == quiet.noise_var.shape
    assert np.all(quiet.error_estimate < ERROR_WARNING)
    rows = quiet.summary()
    assert [row["error_estimate"] for row in rows] == pytest.approx(quiet.error_estimate.tolist())
    assert "error_estimate" in quiet.to_dict(per_neuron=False)["layers"][1]
    with pytest.warns(UserWarning, match=r"estimated error of layer \d+'s noise variance"):
        loud = predict(net, Noise(MU=0.3, placement="pre"), x)
    assert np.max(loud.error_estimate) > ERROR_WARNING
    assert predict(net, Noise(MC=1e-3), x, method="linear").error_estimate is None
    assert predict(net, Noise(MC=1e-3), x, method="linear", error_estimate=True).error_estimate.shape == (5,)


def test_shipped_network_at_au_0_1_is_resolved_and_its_estimate_covers():
    """The shipped network with AU = 0.1 after the activation: the hidden
    pre-activations are far from Gaussian (a few directions of the
    upstream noise carry most of its variance, sd 1-1.5 through sigmoids),
    so "moments" is about 7 % low at the output (4e5-sample benchmark:
    -7.4 %).  The mixture's split along the leading directions resolves
    them: within the 5 % goal (benchmark: about -2 %); the estimate covers
    its error and, since it is conservative there (the distance to
    "moments" is large), warns.  20 000 control-variate samples: output
    s.e. about 0.7 %."""
    net, x = default_network(return_input=True)
    noise = Noise(AU=0.1)
    errors, se, _ = relative_errors(net, x, noise, 20_000, seed=7, methods=("mixture", "moments"))
    with pytest.warns(UserWarning, match="layer 4's noise variance"):
        estimate = predict(net, noise, x).error_estimate[1:]
    assert abs(errors["moments"][-1]) > ERROR_WARNING                  # the case is real for "moments"
    assert np.all(np.abs(errors["mixture"]) <= 0.05 + Z * se)
    assert np.all(np.abs(errors["mixture"]) <= estimate + 2 * se + 1e-12)


# ------------------------------------------------------------ reduced closure matrix

#: (activation, depth, noise type, placement, D): the issue's worst cases for "moments".
FAST_CASES = [("relu", 8, "MC", "post", 0.1), ("relu", 8, "MC", "pre", 0.1), ("tanh", 8, "MU", "pre", 0.1)]
SLOW_CASES = [("tanh", 4, "MC", "pre", 0.1), ("relu", 4, "AC", "pre", 0.1), ("relu", 8, "AC", "pre", 0.01),
              ("tanh", 4, "MC", "pre", 0.01), ("tanh", 8, "MU", "pre", 0.01), ("sigmoid", 4, "MC", "post", 0.1),
              ("shipped", 0, "MC", "post", 0.1), ("shipped", 0, "AC", "pre", 0.1), ("shipped", 0, "MU", "pre", 0.1)]


def case_network(activation, depth):
    if activation == "shipped":
        return default_network(return_input=True)
    return matrix_network(activation, depth)


def check_cases(cases, samples):
    """Goals of the mixture on every layer (variance, means, not worse than
    linear response); coverage of the error estimate (|error| <= estimate +
    2 s.e.) returned per layer."""
    covered = []
    for index, (activation, depth, kind, placement, d) in enumerate(cases):
        net, x = case_network(activation, depth)
        noise = Noise(**{kind: d}, placement=placement)
        errors, se, mean_sd, _ = measured_errors(net, x, noise, samples, seed=100 + index,
                                                 methods=("mixture", "linear"))
        mix, lin = errors["mixture"], errors["linear"]
        case = f"{activation}{depth} {kind} {placement} D={d:g}"
        assert np.all(np.abs(mix) <= goal(d) + Z * se), (case, mix, se)
        assert mean_sd["mixture"] <= MEAN_GOAL, (case, mean_sd)
        assert np.all(np.abs(mix) <= np.abs(lin) + 0.01 + Z * se), (case, mix, lin)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # large estimates warn; here they are measured
            estimate = predict(net, noise, x).error_estimate[1:]
        covered.extend(np.abs(mix) <= estimate + 2 * se)
    return covered


def test_reduced_matrix_fast():
    """relu depth 8 with correlated multiplicative noise (moments: -19 % and
    -23 % at the output) and tanh depth 8 with uncorrelated multiplicative
    noise before the activation (moments: +24 %); 20 000 samples."""
    covered = check_cases(FAST_CASES, 20_000)
    assert np.mean(covered) >= 0.9


def test_reduced_matrix_fast_can_fail():
    """The same checks reject "moments" on the second fast case: its variance
    (benchmark: -23 %) and its means (benchmark: 0.40 sd)."""
    net, x = matrix_network("relu", 8)
    errors, se, mean_sd, _ = measured_errors(net, x, Noise(MC=0.1, placement="pre"), 20_000, seed=101,
                                             methods=("moments",))
    assert np.any(np.abs(errors["moments"]) > goal(0.1) + Z * se)
    assert mean_sd["moments"] > MEAN_GOAL


@pytest.mark.slow
@pytest.mark.parametrize("group", [0, 1, 2])
def test_reduced_matrix_slow(group):
    """Nine more cases in three groups (both placements, the shipped network,
    D = 1e-2 with its 1 % goal); 40 000 samples; error-estimate coverage
    >= 90 % over the layers of each group."""
    covered = check_cases(SLOW_CASES[3 * group:3 * group + 3], 40_000)
    assert np.mean(covered) >= 0.9
