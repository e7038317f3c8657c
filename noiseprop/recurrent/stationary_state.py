"""Stationary noise and stability of a recurrent network under a constant input.

For a constant input u (driven) or none (self-closed, u_t = y_{t-1}) the
noise-free state settles at a fixed point m* of

    m = f(M m + c),   M = W, c = W_in u + b                    (driven)
                      M = W + W_in W_out, c = W_in b_out + b   (self-closed)

(the leak a does not move it).  Around m* one step of the linear-response
recursion of :mod:`noiseprop.recurrent.propagation` is affine in the state
covariance P:

    P' = L(P) + Q,
    L(P) = A P A^T + R(P),   A = (1 - a) I + a J M,   J = diag f'(z*),

where Q = L's constant part (the additive noise and the multiplicative noise
acting on the mean signal) and R(P) collects the multiplicative noise acting on
the fluctuations, e.g. a^2 [D_MU diag(J M P M^T J) + D_MC J M P M^T J] for
"post" placement (plus the fed-back output noise in self-closed mode).
The stationary covariance solves P = L(P) + Q.  Without multiplicative noise
R = 0 and this is the discrete Lyapunov (Stein) equation
P = A P A^T + Q, solved by :func:`scipy.linalg.solve_discrete_lyapunov`;
otherwise by GMRES on (I - L)(P) = Q, preconditioned by the Stein solve
S^-1 (S = I - A . A^T, applied in A's eigenbasis factored once, or
Schur-based when that basis is ill-conditioned), with refinement on the
true residual Q - (I - L)(P) down to rounding.

The *growth rate* is the spectral radius rho(L) of the linearised covariance
map: the noise variance approaches its stationary level (or grows) like
rho(L)^t.  Without multiplicative noise rho(L) = rho(A)^2.  The stationary
solution exists (bounded noise) iff rho(L) < 1; the time constant is
1 / |ln rho(L)| steps.  L is a positive map (it maps positive semi-definite
matrices to positive semi-definite ones), so rho(L) >= rho(A)^2.  Both the
growth rate and the GMRES solve are those of :mod:`noiseprop.positive_maps`
(L = A . A^T + R), shared with the deep limits of
:func:`noiseprop.analysis.design.check_design`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..noise import Noise
from ..positive_maps import affine_fixed_point, spectral_radius
from ..statistics import decibels
from ..utils.validation import noise_overflow_message, positive_int
from .model import RecurrentNetwork, as_sequence, require_recurrent
from .propagation import check_noise, check_recursion_size, output_moments, step_moments

__all__ = ["stationary", "StationaryState", "time_to_snr_below", "MODES", "NoFixedPointError"]


class NoFixedPointError(ValueError):
    """The noise-free dynamics do not settle to a fixed point for this input."""

#: Operating modes: input given ("driven") or output fed back ("closed").
MODES = ("driven", "closed")
#: N x N arrays the stationary solution holds at once, without and with multiplicative noise
#: (the Lyapunov solver's work; GMRES's 60 Krylov vectors and ARPACK's basis of N^2 each;
#: measured up to 92 and 165 at N = 60).
_SOLVER_ARRAYS = {False: 100, True: 200}


@dataclass
class StationaryState:
    """Result of :func:`stationary`.

    Attributes
    ----------
    mode : str
        "driven" or "closed".
    mean : ndarray (N,)
        The fixed point m* of the noise-free state.
    cov : ndarray (N, N)
        Stationary state covariance (inf when not bounded).
    output_mean, output_cov : ndarray (N_out,), (N_out, N_out)
        The output's (with its own noise).
    growth_rate : float
        rho(L), the spectral radius of the linearised covariance map.
    state_radius : float
        rho(A), the spectral radius of the linearised state map (the noise
        amplitude's growth factor per step without multiplicative noise).
    bounded : bool
        growth_rate < 1 (and the stationary covariance exists).
    time_constant : float
        1 / |ln growth_rate| in steps: relaxation time when bounded, e-folding
        time of the growth otherwise (inf at growth_rate = 1).
    solver : str
        "lyapunov" (no multiplicative noise) or "gmres".
    residual : float
        max |P - L(P) - Q| / max |P| of the solution (nan when unbounded).
    """

    mode: str
    mean: np.ndarray
    cov: np.ndarray
    output_mean: np.ndarray
    output_cov: np.ndarray
    growth_rate: float
    state_radius: float
    bounded: bool
    time_constant: float
    solver: str
    residual: float

    @property
    def var(self) -> np.ndarray:
        """Stationary variance of every reservoir neuron."""
        return np.diag(self.cov).copy()

    @property
    def output_var(self) -> np.ndarray:
        return np.diag(self.output_cov).copy()

    @property
    def output_snr(self) -> float:
        """Stationary output SNR sum E[y]^2 / sum Var[y] (power ratio)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.sum(self.output_mean**2) / np.sum(self.output_var))

    @property
    def snr(self) -> float:
        """Stationary reservoir (layer) SNR sum E[x]^2 / sum Var[x]."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.sum(self.mean**2) / np.sum(self.var))

    def to_dict(self) -> dict:
        """JSON-ready summary (no per-neuron arrays); non-finite numbers as None."""
        def number(x):
            x = float(x)
            return x if math.isfinite(x) else None

        return {
            "mode": self.mode, "bounded": self.bounded, "growth_rate": number(self.growth_rate),
            "state_radius": number(self.state_radius), "time_constant": number(self.time_constant),
            "solver": self.solver, "residual": number(self.residual),
            "reservoir_noise_var": number(np.mean(self.var)),
            "reservoir_snr_db": number(decibels(self.snr)),
            "output_mean": [number(v) for v in self.output_mean],
            "output_var": [number(v) for v in self.output_var],
            "output_snr_db": number(decibels(self.output_snr)),
        }


def _mode(net: RecurrentNetwork, mode, u):
    if mode is None:
        mode = "closed" if net.feedback else "driven"
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "closed":
        if not net.feedback:
            raise ValueError("mode='closed' needs a network built with feedback=True")
        if u is not None:
            raise ValueError("a self-closed network has no external input: give u=None")
        return mode, None
    if u is None:
        raise ValueError("driven mode needs the constant input u (N_in values)")
    u = as_sequence(np.atleast_2d(np.asarray(u, dtype=float)) if np.ndim(u) <= 1 else u, net.n_in)
    if u.shape[0] != 1:
        raise ValueError(f"stationary() takes one constant input u of {net.n_in} values, got shape {u.shape}")
    return mode, u[0]


def fixed_point(net: RecurrentNetwork, u_t, max_steps: int = 20_000, tol: float = 1e-14) -> np.ndarray:
    """The noise-free fixed point reached from x = 0 (u_t None: self-closed).

    Linear activations: the linear solve.  Otherwise the dynamics are run
    until they settle (so that the fixed point is the one they reach), then
    polished by Newton steps.

    Raises
    ------
    ValueError
        When the noise-free state does not settle (oscillation or chaos: no
        stationary state for a constant input).
    """
    f = net.activation
    if u_t is None:
        M, c = net.loop_matrix, net.W_in @ net.output_bias + net.bias
    else:
        M, c = net.W, net.W_in @ u_t + net.bias
    n = net.n
    if f.is_affine:
        try:
            return np.linalg.solve(np.eye(n) - f.slope * M, f.slope * c + f.offset)
        except np.linalg.LinAlgError:
            raise ValueError("no unique fixed point: I - slope M is singular") from None
    a = net.leak
    x = np.zeros(n)
    for _ in range(max_steps):
        new = (1 - a) * x + a * f(M @ x + c)
        if not np.all(np.isfinite(new)):
            break
        if np.max(np.abs(new - x)) <= 1e-10 * (1 + np.max(np.abs(x))):
            x = new
            for _ in range(20):  # Newton on g(x) = x - f(M x + c)
                z = M @ x + c
                g = x - f(z)
                step = np.linalg.solve(np.eye(n) - f.derivative(z)[:, None] * M, g)
                x = x - step
                if np.max(np.abs(step)) <= tol * (1 + np.max(np.abs(x))):
                    return x
            return x
        x = new
    raise NoFixedPointError(f"the noise-free state does not settle to a fixed point within {max_steps} steps "
                     "(oscillating or chaotic dynamics): no stationary state for this input")


def stationary(
    net: RecurrentNetwork,
    noise: Noise,
    u=None,
    *,
    output_noise: "Noise | None" = None,
    mode: "str | None" = None,
) -> StationaryState:
    """Stationary mean, covariance and SNR for a constant input, and stability.

    Parameters
    ----------
    net : RecurrentNetwork
    noise : Noise
        Reservoir noise (variances).
    u : array_like (N_in,), optional
        The constant input (driven mode); None in self-closed mode.
    output_noise : Noise, optional
        Noise of the output neurons (fed back in self-closed mode).
    mode : {"driven", "closed"}, optional
        Default: "closed" for a network with ``feedback``, else "driven".

    Returns
    -------
    StationaryState
        Linear response around the fixed point (exact for linear
        activations); see the module docstring.

    Raises
    ------
    ValueError
        For bad arguments, or when the noise-free dynamics have no stable
        fixed point.

    Examples
    --------
    >>> from noiseprop import Noise
    >>> from noiseprop.recurrent import RecurrentNetwork, stationary
    >>> net = RecurrentNetwork.from_arrays([[1.0]], [[0.5]], [[1.0]], activation="linear")
    >>> s = stationary(net, Noise(AU=1e-2), [1.0])
    >>> round(float(s.var[0]), 6), round(s.growth_rate, 6)
    (0.013333, 0.25)
    """
    require_recurrent(net)
    check_noise(noise, output_noise)
    mode, u_t = _mode(net, mode, u)
    multiplicative = noise.has_multiplicative or (
        mode == "closed" and output_noise is not None and output_noise.has_multiplicative)
    check_recursion_size(net, 0, arrays=_SOLVER_ARRAYS[multiplicative], what="the stationary state")
    m = fixed_point(net, u_t)
    n = net.n
    zero = np.zeros((n, n))

    def affine(P):
        return step_moments(net, noise, output_noise, m, P, u_t)[1]

    with np.errstate(over="ignore", invalid="ignore"):
        Q = affine(zero)
    _require_finite(Q, "the noise covariance added per step")

    def operator(P):
        return affine(P) - Q

    f = net.activation
    M = net.loop_matrix if mode == "closed" else net.W
    zbar = M @ m + (net.W_in @ (u_t if u_t is not None else net.output_bias) + net.bias)
    A = (1 - net.leak) * np.eye(n) + net.leak * f.derivative(zbar)[:, None] * M
    state_radius = float(np.max(np.abs(np.linalg.eigvals(A))))
    growth = (spectral_radius(A, _remainder(A, operator), operator=operator) if multiplicative
              else state_radius**2)
    bounded = growth < 1.0
    if bounded:
        with np.errstate(over="ignore", invalid="ignore"):
            P, solver = _solve(A, Q, operator, multiplicative)
        _require_finite(P, "the stationary noise covariance")
        residual = float(np.max(np.abs(P - affine(P))) / max(np.max(np.abs(P)), 1e-300))
    else:
        P, solver, residual = np.full((n, n), np.inf), "none", math.nan
    o, S_y, _ = output_moments(net, m, P if bounded else zero, output_noise)
    if not bounded:
        S_y = np.full_like(S_y, np.inf)
    if growth == 1.0:
        time_constant = math.inf
    else:
        time_constant = 1.0 / abs(math.log(growth)) if growth > 0 else 0.0
    return StationaryState(mode, m, P, o, S_y, float(growth), state_radius, bool(bounded),
                           time_constant, solver, residual)


def _require_finite(cov: np.ndarray, what: str) -> None:
    """A ValueError when ``cov`` overflows (the noise, not the dynamics, is too large)."""
    if not np.all(np.isfinite(cov)):
        raise ValueError(noise_overflow_message(what))


def _solve(A, Q, operator, multiplicative):
    if not multiplicative:
        return _symmetric(_lyapunov(A, Q)), "lyapunov"
    return affine_fixed_point(A, _remainder(A, operator), Q, operator=operator), "gmres"


def _remainder(A, operator):
    """R(P) = L(P) - A P A^T: the multiplicative noise acting on the fluctuations."""
    return lambda P: operator(P) - A @ P @ A.T


def _symmetric(P):
    return 0.5 * (P + P.T)


def _lyapunov(A, Y):
    """P = A P A^T + Y, solved for Y scaled to entries of order 1 (exactly, by a power of 2:
    scipy's solver returns garbage, not inf, for entries near the floating-point range)."""
    from scipy.linalg import solve_discrete_lyapunov

    size = float(np.max(np.abs(Y)))
    scale = 2.0 ** math.frexp(size)[1] if size > 0 else 1.0
    return solve_discrete_lyapunov(A, Y / scale) * scale


def time_to_snr_below(
    net: RecurrentNetwork,
    noise: Noise,
    u,
    *,
    output_noise: "Noise | None" = None,
    threshold: float = 1.0,
    max_steps: int = 100_000,
    x0=None,
    method: str = "linear",
) -> "int | None":
    """Self-closed steps after the warm-up ``u`` until the output SNR falls below ``threshold``.

    Runs the recursion of :func:`noiseprop.recurrent.predict` (memory O(N^2))
    through the warm-up and then self-closed, and returns the first
    self-closed step g (1, 2, ...) at which sum E[y]^2 / sum Var[y] <
    ``threshold``, or None if that does not happen within ``max_steps``.

    Raises
    ------
    ValueError
        For a network without ``feedback`` or bad arguments.
    ResourceLimit
        (a ValueError) Before the run, when the warm-up and ``max_steps``
        self-closed steps together would exceed the memory or time limit.
    """
    require_recurrent(net)
    check_noise(noise, output_noise)
    if not net.feedback:
        raise ValueError("time_to_snr_below needs a self-closed network (feedback=True)")
    if not (isinstance(threshold, (int, float)) and threshold > 0):
        raise ValueError(f"threshold must be a positive SNR (power ratio), got {threshold!r}")
    u, max_steps, m = net.check_run(u, positive_int("max_steps", max_steps), x0)
    # the whole run: the warm-up and up to max_steps self-closed steps (only the current state is kept)
    check_recursion_size(net, u.shape[0] + max_steps, what="the self-closed SNR time (warm-up and max_steps)",
                         keeps_statistics=False)
    P = np.zeros((net.n, net.n))
    for u_t in u:
        m, P = step_moments(net, noise, output_noise, m, P, u_t, method)
    for g in range(1, max_steps + 1):
        m, P = step_moments(net, noise, output_noise, m, P, None, method)
        o, S_y, _ = output_moments(net, m, P, output_noise)
        noise_power = np.trace(S_y)
        if not np.isfinite(noise_power) or np.sum(o**2) < threshold * noise_power:
            return g
    return None
