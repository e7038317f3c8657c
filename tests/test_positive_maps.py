"""The spectral radius and fixed point of L(X) = C X C^T + R(X)
(noiseprop.positive_maps) against L's N^2 x N^2 matrix built entry by entry
from its definition, for N above the dense limit (so that the Perron
iteration, the ARPACK fallback and the Schur-based solves are the ones tested)."""
import numpy as np
import pytest

from noiseprop import positive_maps
from noiseprop.positive_maps import DENSE_WIDTH, affine_fixed_point, spectral_radius

N = DENSE_WIDTH + 2


def carrier(n, gain, seed):
    """tanh-like layer: slopes 1 - tanh^2 of standard normal pre-activations."""
    rng = np.random.default_rng(seed)
    slopes = 1.0 - np.tanh(rng.standard_normal(n)) ** 2
    return slopes[:, None] * rng.normal(0.0, gain, (n, n)) / np.sqrt(n)


def diagonal_noise(b, mu):
    return lambda X: mu * np.diag(np.diag(b @ X @ b.T))


def matrix_of(operator, n):
    """L as an N^2 x N^2 matrix: column j*n+k is vec L(e_j e_k^T)."""
    matrix = np.empty((n * n, n * n))
    for j in range(n):
        for k in range(n):
            unit = np.zeros((n, n))
            unit[j, k] = 1.0
            matrix[:, j * n + k] = operator(unit).ravel()
    return matrix


def dense_radius(c, remainder):
    matrix = matrix_of(lambda X: c @ X @ c.T + remainder(X), c.shape[0])
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def no_arnoldi(*args):
    raise AssertionError("the Perron iteration fell back to ARPACK")


@pytest.mark.parametrize("gain, mu, mc", [(0.8, 1e-3, 0.0), (0.8, 0.3, 0.1), (1.5, 0.05, 0.0),
                                          (2.5, 1e-3, 0.1), (2.5, 0.3, 0.0)])
def test_radius_of_the_layer_map_against_its_matrix(gain, mu, mc, monkeypatch):
    """(1 + D_MC) B X B^T + D_MU Diag(diag(B X B^T)), radii far below, near and far above 1."""
    b = carrier(N, gain, seed=int(100 * gain) + int(1e3 * mu))
    c, remainder = np.sqrt(1.0 + mc) * b, diagonal_noise(b, mu)
    expected = dense_radius(c, remainder)
    monkeypatch.setattr(positive_maps, "_arnoldi_radius", no_arnoldi)
    assert spectral_radius(c, remainder) == pytest.approx(expected, rel=1e-11)


def test_radius_near_one():
    b = carrier(N, 1.0, seed=5)
    remainder = diagonal_noise(b, 0.02)
    scale = 1.0 / np.sqrt(dense_radius(b, remainder))  # rho(L) is homogeneous of degree 2 in B
    b = scale * b
    remainder = diagonal_noise(b, 0.02)
    assert abs(dense_radius(b, remainder) - 1.0) < 1e-12
    assert spectral_radius(b, remainder) == pytest.approx(1.0, rel=1e-12)


def test_general_remainder_and_the_arnoldi_fallback(monkeypatch):
    """A remainder with a congruence by another matrix (as in a leaky
    recurrent network): the Perron iteration and ARPACK (forced by an
    eigenbasis deemed ill-conditioned) both against the matrix."""
    rng = np.random.default_rng(7)
    a, k = carrier(N, 1.2, seed=7), rng.standard_normal((N, N)) / np.sqrt(N)

    def remainder(X):
        return 0.05 * k @ X @ k.T + 0.1 * np.diag(np.diag(a @ X @ a.T))

    expected = dense_radius(a, remainder)
    assert spectral_radius(a, remainder) == pytest.approx(expected, rel=1e-11)
    monkeypatch.setattr(positive_maps, "MAX_EIGENBASIS_CONDITION", 0.0)
    assert spectral_radius(a, remainder) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("schur", [False, True])
def test_fixed_point_against_a_dense_solve(schur, monkeypatch):
    if schur:
        monkeypatch.setattr(positive_maps, "MAX_EIGENBASIS_CONDITION", 0.0)
    rng = np.random.default_rng(11)
    b = carrier(N, 0.9, seed=11)
    c, remainder = np.sqrt(1.1) * b, diagonal_noise(b, 0.2)
    q = np.cov(rng.standard_normal((N, 3 * N)))
    matrix = matrix_of(lambda X: c @ X @ c.T + remainder(X), N)
    expected = np.linalg.solve(np.eye(N * N) - matrix, q.ravel()).reshape(N, N)
    fixed = affine_fixed_point(c, remainder, q)
    np.testing.assert_allclose(fixed, expected, rtol=0, atol=1e-12 * np.max(np.abs(expected)))


@pytest.mark.slow
def test_radius_where_arnoldi_on_the_map_missed_it():
    """N = 60, D_MU = 1e-3: ARPACK on L (the route before the Perron
    iteration, tol 1e-10) returned 2.83125, 2e-4 below rho(L) = 2.831898...:
    the eigenvalues (1 + D_MC) l_a l_b crowd the circle.  Against the
    3600 x 3600 matrix (about a minute)."""
    rng = np.random.default_rng(85)
    w = rng.normal(0.0, 2.5, (60, 60)) / np.sqrt(60)
    b = (1.0 - np.tanh(rng.standard_normal(60)) ** 2)[:, None] * w
    remainder = diagonal_noise(b, 1e-3)
    assert spectral_radius(b, remainder) == pytest.approx(dense_radius(b, remainder), rel=1e-11)


@pytest.mark.parametrize("factor", [1e120, 1e250])
def test_radius_of_an_enormous_map_scales_exactly(factor):
    """rho(s L) = s rho(L) beyond ARPACK's range (its norms overflowed near
    entries of 1e150: 'Could not build an Arnoldi factorization')."""
    b = carrier(N, 1.5, seed=7)
    c, remainder = b, diagonal_noise(b, 0.05)
    expected = spectral_radius(c, remainder)
    got = spectral_radius(np.sqrt(factor) * c, lambda X: factor * remainder(X))
    assert got == pytest.approx(factor * expected, rel=1e-10)


def test_a_map_that_overflows_is_a_clear_error():
    b = carrier(N, 1.0, seed=8)
    with pytest.raises(ValueError, match="covariance map overflows.*variances"):
        spectral_radius(b, lambda X: 1e308 * np.diag(np.diag(b @ X @ b.T)) * 10)
