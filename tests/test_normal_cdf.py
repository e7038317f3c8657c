"""The vectorised Genz multivariate normal CDF against scipy, closed forms and degenerate cases."""
import numpy as np
import pytest
from scipy import stats

from noiseprop.normal_cdf import normal_cdf


def random_correlations(rng, count, dims):
    factors = rng.normal(size=(count, dims, dims + 2))
    cov = factors @ factors.transpose(0, 2, 1)
    sd = np.sqrt(np.einsum("bii->bi", cov))
    return cov / sd[:, :, None] / sd[:, None, :]


@pytest.mark.parametrize("dims", range(1, 10))
def test_agrees_with_scipy_within_abseps(dims):
    rng = np.random.default_rng(dims)
    correlation = random_correlations(rng, 8, dims)
    upper = rng.normal(0.5, 1.0, (8, dims))
    probability, stderr = normal_cdf(upper, correlation, abseps=1e-4, seed=7)
    reference = np.array([stats.multivariate_normal.cdf(b, cov=r, abseps=1e-6, releps=0, rng=1)
                          for b, r in zip(upper, correlation)])
    # 3 s.e. <= abseps per problem; 2 abseps leaves room for the spread of the estimated s.e. (32 shifts)
    assert np.all(np.abs(probability - reference) <= 2e-4)
    assert np.all(3 * stderr <= 1e-4)


@pytest.mark.parametrize("dims, exact", [(2, 0.25 + np.arcsin(0.5) / (2 * np.pi)),
                                         (3, 0.125 + 3 * np.arcsin(0.5) / (4 * np.pi))])
def test_equicorrelated_orthant_probability(dims, exact):
    correlation = np.full((dims, dims), 0.5) + 0.5 * np.eye(dims)
    probability, stderr = normal_cdf(np.zeros((1, dims)), correlation[None], abseps=1e-5, seed=3)
    assert abs(probability[0] - exact) <= 2e-5
    assert 0 < stderr[0] <= 1e-5 / 3


def test_infinite_limit_drops_a_variable():
    correlation = np.array([[1.0, 0.3, 0.2], [0.3, 1.0, 0.0], [0.2, 0.0, 1.0]])
    probability, _ = normal_cdf([[0.4, np.inf, -0.2]], correlation[None], abseps=1e-6)
    reference = stats.multivariate_normal.cdf([0.4, -0.2], cov=[[1, 0.2], [0.2, 1]])
    assert abs(probability[0] - reference) <= 2e-6


def test_singular_correlations():
    # X_2 = X_1: P(X_1 <= min(b)); X_2 = -X_1: P(-b_2 <= X_1 <= b_1)
    same = np.ones((2, 2))
    opposite = np.array([[1.0, -1.0], [-1.0, 1.0]])
    upper = np.array([[0.3, -0.5], [0.7, 0.4]])
    probability, _ = normal_cdf(upper, np.stack([same, opposite]), abseps=1e-4)
    exact = [stats.norm.cdf(-0.5), stats.norm.cdf(0.7) - stats.norm.cdf(-0.4)]
    np.testing.assert_allclose(probability, exact, atol=2e-4)
    # three variables of rank 2: X_3 = (X_1 + X_2) / |X_1 + X_2|_sd
    rho = 0.2
    cov = np.array([[1, rho, 0], [rho, 1, 0], [0, 0, 0]], dtype=float)
    cov[2, :2] = cov[:2, 2] = cov[:2, :2].sum(axis=1)
    cov[2, 2] = cov[:2, :2].sum()
    sd = np.sqrt(np.diag(cov))
    upper = np.array([0.5, 0.1, 0.3])
    probability, _ = normal_cdf((upper / sd)[None], (cov / np.outer(sd, sd))[None], abseps=1e-5)
    draws = np.random.default_rng(0).multivariate_normal(np.zeros(3), cov, 2_000_000)
    sampled = np.mean(np.all(draws <= upper, axis=1))
    # 5 binomial standard errors (<= 1.8e-3) plus the CDF's error target
    assert abs(probability[0] - sampled) <= 5 * np.sqrt(0.25 / 2_000_000) + 1e-5


def test_reproducible_and_independent_of_other_problems():
    rng = np.random.default_rng(2)
    correlation = random_correlations(rng, 6, 5)
    upper = rng.normal(size=(6, 5))
    first, _ = normal_cdf(upper, correlation, abseps=1e-3, seed=11)
    again, _ = normal_cdf(upper, correlation, abseps=1e-3, seed=11)
    other, _ = normal_cdf(upper, correlation, abseps=1e-3, seed=12)
    np.testing.assert_array_equal(first, again)
    assert np.any(first != other)
    # a problem's shifts depend on its index only: the first three alone give the same numbers
    prefix, _ = normal_cdf(upper[:3], correlation[:3], abseps=1e-3, seed=11)
    np.testing.assert_array_equal(prefix, first[:3])


def test_bad_shapes_and_abseps():
    with pytest.raises(ValueError, match="correlation must have shape"):
        normal_cdf(np.zeros((2, 3)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="abseps must be positive"):
        normal_cdf(np.zeros((1, 2)), np.eye(2)[None], abseps=0)


def test_probability_largest_shortcuts_for_noise_free_differences():
    from noiseprop.studies.accuracy import _probability_largest

    rho = 0.3
    joint = np.zeros((4, 3, 3))
    joint[:, 0, 0] = joint[:, 2, 2] = 1.0
    joint[:, 0, 2] = joint[:, 2, 0] = rho
    difference = np.array([
        [1.0, -0.1, 0.5],   # a noise-free competitor above the right class
        [1.0, 2.0, 0.5],    # a noise-free competitor below: drops out
        [1.0, 2.0, 0.5],    # ... and only one random difference left
        [1.0, 2.0, 3.0],    # all noise-free and positive
    ])
    joint[2, 2, :] = joint[2, :, 2] = 0.0
    joint[3] = 0.0
    probability = _probability_largest(difference, joint, 1e-5, 0)
    pair = stats.multivariate_normal.cdf([1.0, 0.5], cov=[[1, rho], [rho, 1]], abseps=1e-7, releps=0)
    assert probability[0] == 0.0
    assert abs(probability[1] - pair) <= 2e-5
    assert probability[2] == stats.norm.cdf(1.0)
    assert probability[3] == 1.0
