"""Spectral radius and fixed point of a linearised covariance map.

Both a deep stack of identical layers (:mod:`noiseprop.analysis.design`)
and a recurrent network at its fixed point
(:mod:`noiseprop.recurrent.stationary_state`) carry the noise covariance by
an affine map X -> L(X) + Q with

    L(X) = C X C^T + R(X),

a congruence by one N x N matrix C plus a remainder R (the multiplicative
noise acting on the fluctuations).  Both parts map positive semi-definite
matrices to positive semi-definite ones, so L is a positive map: its
spectral radius rho(L) >= rho(C)^2 is an eigenvalue with a covariance as
eigenvector, and the fixed point X = L(X) + Q exists iff rho(L) < 1.

C's eigenbasis C = V diag(l) V^-1 diagonalises the congruence: X = V Z V^T
turns it into Z_ab -> l_a l_b Z_ab, so (s - C . C^T)^-1 costs four N x N
products.  The radius is the root lambda > rho(C)^2 of the Perron problem

    X = (lambda - C . C^T)^-1 R(X),

iterated with lambda fixed at every step by the trace of X (a scalar
equation, O(N^2) per evaluation).  The iteration is a positive map, so it
stays on covariances; it converges at the ratio of the second to the first
eigenvalue of (lambda - C . C^T)^-1 R, which is small when R mixes the
modes (e.g. D_MU diag(...)), unlike Arnoldi on L itself, whose eigenvalues
l_a l_b crowd the circle of radius rho(C)^2 for a random C.  The result is
accepted only when the residual L(X) - lambda X of the exact map is at
rounding level; otherwise (an ill-conditioned eigenbasis, no root) ARPACK on
L gives it.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .utils.validation import noise_overflow_message

__all__ = ["CongruenceSolver", "spectral_radius", "affine_fixed_point"]

#: Largest N for which rho(L) comes from L's N^2 x N^2 matrix.
DENSE_WIDTH = 24
#: Largest condition number of C's eigenvector basis for solving in it (beyond it: Schur-based solves).
MAX_EIGENBASIS_CONDITION = 1e6
#: Largest entry of L(I) up to which rho(L) is computed on L itself (beyond: on L scaled down).
LARGE_ENTRIES = 1e100
#: Relative accuracy asked of the spectral radius.
RADIUS_RTOL = 1e-12
#: Largest relative residual norm(L(X) - lambda X) / (lambda norm(X)) (Frobenius) of an accepted eigenpair.
_EIGENPAIR_RESIDUAL = 1e-11
#: Steps of the Perron iteration before ARPACK takes over.
_PERRON_STEPS = 200

Remainder = Callable[[np.ndarray], np.ndarray]


class CongruenceSolver:
    """X with s X - C X C^T = Y (s > rho(C)^2), for many Y with one C.

    C = V diag(l) V^-1 is diagonalised once: X = V Z V^T with Z_ab = (V^-1 Y
    V^-T)_ab / (s - l_a l_b).  When the eigenbasis is ill-conditioned
    (cond(V) > MAX_EIGENBASIS_CONDITION, e.g. a nearly defective C) every
    solve is the Schur-based :func:`scipy.linalg.solve_discrete_lyapunov`
    instead, and :attr:`diagonal` is False.  The diagonalised solve loses up
    to cond(V)^2 of accuracy: callers refine on the exact residual.
    """

    def __init__(self, congruence: np.ndarray):
        self.matrix = np.asarray(congruence, dtype=float)
        self.values, self.vectors = np.linalg.eig(self.matrix)
        try:
            inverse = np.linalg.inv(self.vectors)
        except np.linalg.LinAlgError:
            inverse = np.full_like(self.vectors, np.nan)
        cond = np.linalg.norm(self.vectors, 1) * np.linalg.norm(inverse, 1)  # 1-norm: no SVD
        self.diagonal = bool(np.isfinite(cond) and cond <= MAX_EIGENBASIS_CONDITION)
        self.inverse = inverse if self.diagonal else None
        #: l_a l_b: the eigenvalues of X -> C X C^T.
        self.poles = self.values[:, None] * self.values[None, :]
        #: rho(C)^2, the spectral radius of X -> C X C^T.
        self.radius = float(np.max(np.abs(self.values))) ** 2

    def to_eigenbasis(self, Y: np.ndarray) -> np.ndarray:
        """V^-1 Y V^-T (complex) of a real Y."""
        # real and imaginary parts apart: a complex-by-real product would cast Y to complex
        half = self.inverse.real @ Y + 1j * (self.inverse.imag @ Y)
        return half @ self.inverse.T

    def from_eigenbasis(self, Z: np.ndarray) -> np.ndarray:
        """Re(V Z V^T), symmetrised."""
        half = self.vectors @ Z
        return _symmetric(half.real @ self.vectors.real.T - half.imag @ self.vectors.imag.T)

    def solve(self, Y: np.ndarray, shift: float = 1.0) -> np.ndarray:
        if not self.diagonal:
            from scipy.linalg import solve_discrete_lyapunov

            return _symmetric(solve_discrete_lyapunov(self.matrix / math.sqrt(shift), Y / shift))
        return self.from_eigenbasis(self.to_eigenbasis(Y) / (shift - self.poles))

    def perron_start(self) -> np.ndarray:
        """Re(v v^H) / (v^H v) + I / N, v the dominant eigenvector."""
        v = self.vectors[:, np.argmax(np.abs(self.values))]
        start = np.real(np.outer(v, v.conj()))
        return start / np.trace(start) + np.eye(v.shape[0]) / v.shape[0]

    def apply(self, X: np.ndarray) -> np.ndarray:
        """C X C^T."""
        return self.matrix @ X @ self.matrix.T


def _full_map(solver: "CongruenceSolver", remainder: Remainder, operator: "Remainder | None") -> Remainder:
    return operator if operator is not None else (lambda X: solver.apply(X) + remainder(X))


def spectral_radius(congruence: np.ndarray, remainder: Remainder, start: "np.ndarray | None" = None,
                    operator: "Remainder | None" = None) -> float:
    """rho(L) of the positive map L(X) = C X C^T + R(X) on N x N matrices.

    Parameters
    ----------
    congruence : ndarray (N, N)
        C.
    remainder : callable
        X -> R(X), linear, mapping positive semi-definite N x N matrices to
        positive semi-definite ones.
    start : ndarray (N, N), optional
        A positive definite guess of the eigen-covariance (default:
        Re(v v^H) / (v^H v) + I / N with v C's dominant eigenvector: the
        eigen-covariance without R, made positive definite).
    operator : callable, optional
        X -> L(X), where cheaper than C X C^T + R(X).

    Returns
    -------
    float
        rho(L) (relative accuracy ~RADIUS_RTOL): from the N^2 x N^2 matrix
        for N <= DENSE_WIDTH, else by the Perron iteration of the module
        docstring, or ARPACK on L where that does not converge.
    """
    scale = _large_scale(congruence, remainder, operator)
    if scale != 1.0:  # ARPACK's norms would overflow: the same map, divided exactly by a power of 4
        root = math.sqrt(scale)
        scaled_operator = None if operator is None else (lambda X: operator(X) / scale)
        return scale * spectral_radius(congruence / root, lambda X: remainder(X) / scale, start, scaled_operator)
    solver = CongruenceSolver(congruence)
    n = solver.matrix.shape[0]
    operator = _full_map(solver, remainder, operator)
    if n <= DENSE_WIDTH:
        return _dense_radius(operator, n)
    start = solver.perron_start() if start is None else np.asarray(start, dtype=float)
    if solver.diagonal:
        radius = _perron_radius(solver, remainder, operator, start)
        if radius is not None:
            return radius
    return _arnoldi_radius(operator, start)


def _large_scale(congruence: np.ndarray, remainder: Remainder, operator: "Remainder | None") -> float:
    """1, or 4^k of the order of L(I)'s largest entry where that exceeds LARGE_ENTRIES; a
    ValueError where L(I) overflows."""
    eye = np.eye(congruence.shape[0])
    with np.errstate(over="ignore", invalid="ignore"):
        image = operator(eye) if operator is not None else congruence @ congruence.T + remainder(eye)
        size = float(np.max(np.abs(image)))
    if not math.isfinite(size):
        raise ValueError(noise_overflow_message("the linearised covariance map"))
    return 4.0 ** math.floor(math.log(size, 4)) if size > LARGE_ENTRIES else 1.0


def _dense_radius(operator, n: int) -> float:
    units = np.eye(n * n).reshape(n * n, n, n)
    matrix = np.column_stack([operator(unit).ravel() for unit in units])
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def _perron_radius(solver: CongruenceSolver, remainder: Remainder, operator, start: np.ndarray) -> "float | None":
    """rho(L) by the iteration X <- (lambda - C . C^T)^-1 R(X) (module
    docstring), or None when it finds no eigenpair of L at rounding level."""
    weights = solver.vectors.T @ solver.vectors  # trace(V Z V^T) = sum(weights * Z)
    X = start / np.trace(start)
    radius = math.nan
    for _ in range(_PERRON_STEPS):
        image = solver.to_eigenbasis(remainder(X))
        previous, radius = radius, _trace_root(weights * image, solver)
        if radius is None:
            return None
        X = solver.from_eigenbasis(image / (radius - solver.poles))
        X /= np.trace(X)
        if abs(radius - previous) <= RADIUS_RTOL * radius:
            residual = np.linalg.norm(operator(X) - radius * X) / (radius * np.linalg.norm(X))
            return radius if residual <= _EIGENPAIR_RESIDUAL else None
    return None


def _trace_root(terms: np.ndarray, solver: CongruenceSolver) -> "float | None":
    """The lambda > rho(C)^2 with sum_ab terms_ab / (lambda - l_a l_b) = 1.

    The left side is trace((lambda - C . C^T)^-1 R(X)) for trace(X) = 1: it
    decreases from the pole at rho(C)^2 to 0, so the root is unique; None
    when the left side is below 1 already at the pole (no root)."""
    from scipy.optimize import brentq

    def excess(lam):
        return float(np.sum(terms / (lam - solver.poles)).real) - 1.0

    low = solver.radius * (1.0 + 1e-14) + 1e-300
    if not excess(low) > 0:
        return None
    high = 2.0 * low
    while excess(high) > 0:
        high *= 2.0
    return brentq(excess, low, high, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)


def _arnoldi_radius(operator, start: np.ndarray) -> float:
    """rho(L) by ARPACK on vec(X): each step applies L once."""
    from scipy.sparse.linalg import LinearOperator, eigs

    n = start.shape[0]
    linear = LinearOperator((n * n, n * n), dtype=float, matvec=lambda v: operator(v.reshape(n, n)).ravel())
    values = eigs(linear, k=1, which="LM", v0=start.ravel(), tol=RADIUS_RTOL, ncv=min(n * n - 1, 30),
                  return_eigenvectors=False)
    return float(np.max(np.abs(values)))


def affine_fixed_point(congruence: np.ndarray, remainder: Remainder, injection: np.ndarray,
                       operator: "Remainder | None" = None) -> np.ndarray:
    """X = L(X) + Q, L(X) = C X C^T + R(X) of spectral radius < 1.

    GMRES on (I - L)(X) = Q, preconditioned by the Stein solve S^-1 (S = I -
    C . C^T, :class:`CongruenceSolver`), with refinement on the true residual
    Q - (I - L)(X) down to rounding, so that the accuracy does not depend on
    that of the preconditioner.

    Parameters
    ----------
    congruence : ndarray (N, N)
        C.
    remainder : callable
        X -> R(X).
    injection : ndarray (N, N)
        Q.
    operator : callable, optional
        X -> L(X), where cheaper than C X C^T + R(X).

    Returns
    -------
    ndarray (N, N)
        The symmetric fixed point (the best of the refinement steps).
    """
    from scipy.sparse.linalg import LinearOperator, gmres

    solver = CongruenceSolver(congruence)
    operator = _full_map(solver, remainder, operator)
    Q = np.asarray(injection, dtype=float)
    n = Q.shape[0]

    def defect(X):  # (I - L)(X), applied exactly
        return X - operator(X)

    def preconditioned(v):  # S^-1 (I - L): the identity without R
        return solver.solve(defect(v.reshape(n, n))).ravel()

    linear = LinearOperator((n * n, n * n), matvec=preconditioned, dtype=float)
    X = solver.solve(Q)
    best, best_residual = X, math.inf
    for _ in range(6):  # GMRES for the correction, then refinement on the true residual
        residual = Q - defect(X)
        size = np.max(np.abs(residual))
        if size >= 0.5 * best_residual:
            break  # rounding level reached
        best, best_residual = X, size
        if size <= 1e-15 * np.max(np.abs(X)):
            break
        # the correction is solved to 1e-10 of itself or to the rounding level of X
        correction, _ = gmres(linear, solver.solve(residual).ravel(), rtol=1e-10,
                              atol=1e-15 * np.linalg.norm(X), restart=min(n * n, 60), maxiter=50)
        X = _symmetric(X + correction.reshape(n, n))
    return best


def _symmetric(X: np.ndarray) -> np.ndarray:
    return 0.5 * (X + X.T)
