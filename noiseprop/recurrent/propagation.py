"""Analytic propagation of noise through time in a recurrent network.

With m_t the mean and P_t the covariance of the state x_t (m_0 = x_0,
P_0 = 0), one step of the model of :mod:`noiseprop.recurrent.model` is, in
the driven mode (input u_t given):

    zbar_t = W_in u_t + W m_{t-1} + b
    Sz_t   = W P_{t-1} W^T,            C_t = Cov(x_{t-1}, z_t) = P_{t-1} W^T

and in the self-closed mode (u_t = y_{t-1}, the noisy output of the last
step) with M = W + W_in W_out, o = W_out m_{t-1} + b_out and the output
noise eta = y_{t-1} - (W_out x_{t-1} + b_out), which is uncorrelated with
x_{t-1}:

    zbar_t = W_in o + W m_{t-1} + b
    Sz_t   = M P_{t-1} M^T + W_in S_eta W_in^T,      C_t = P_{t-1} M^T
    S_eta  = (o o^T + W_out P W_out^T) o (D_MU I + D_MC 11^T) + D_AU I + D_AC 11^T   (output noise)

The noisy activation F_t = F(z_t) then has (linear response, J = diag
f'(zbar_t); "post" placement)

    E[F]      = f(zbar_t)
    Cov(F)    = noise(f(zbar_t), J Sz_t J)                (the feed-forward noise term, spec 4)
    Cov(x_{t-1}, F) = C_t J                               (the noise has zero mean and is independent)

("pre": Cov(F) = J noise(zbar_t, Sz_t) J), and the leaky update gives

    m_t = (1 - a) m_{t-1} + a E[F]
    P_t = (1 - a)^2 P_{t-1} + a (1 - a) (C_t J + J C_t^T) + a^2 Cov(F).

Every line is exact for an affine activation at any noise level.  The
"moments" method takes E[F], Cov(F) over a Gaussian z_t (the feed-forward
closure of :func:`noiseprop.propagation.activation_moments`) and
Cov(x_{t-1}, F) = C_t diag E[f'(z_t)] (Stein's lemma).  The output is
y_t = W_out x_t + b_out plus its own noise (at every step t >= 0): mean o_t,
covariance noise(o_t, W_out P_t W_out^T).  One step costs O(N^3); the working memory is
O(N^2), independent of the number of steps (only the per-step means and
variances, O(T N), are kept unless the covariance history is asked for).
"""
from __future__ import annotations

import numpy as np

from ..noise import Noise
from ..propagation import METHODS, Prediction, activation_moments, add_noise_covariance
from ..utils.resources import FLOAT, check_memory, check_run_time
from .model import RecurrentNetwork, require_recurrent

__all__ = ["predict", "RecurrentPrediction", "step_moments", "output_moments", "output_variance_from_statistics",
           "output_variance_from_split", "check_recursion_size"]

#: N x N arrays one step of the recursion holds at once (P, W P, the pre-activation
#: and activation covariances, the new P and temporaries; measured 8.3 at N = 300).
STEP_ARRAYS = 10
#: Values kept per time step and neuron (means, variances, SNRs of reservoir and output).
_VALUES_PER_STEP = 6


class RecurrentPrediction:
    """Result of :func:`predict`: statistics per time step.

    The per-step statistics are :class:`~noiseprop.propagation.Prediction`
    objects whose "layers" are the time steps t = 0..T (t = 0: the
    noise-free initial state): ``reservoir`` for the N reservoir neurons and
    ``output`` for the N_out outputs.  Each has ``mean[t]``, ``var[t]``,
    ``snr[t]`` (per neuron, E[y]^2 / Var[y]), ``layer_snr[t]`` (sum of E^2 over
    sum of Var), ``correlated[t]`` (mean off-diagonal covariance) and
    ``uncorrelated[t]``.

    Attributes
    ----------
    steps : ndarray (T + 1,)
        0..T.
    closed : ndarray of bool (T + 1,)
        Whether step t was self-closed (u_t = y_{t-1}).
    reservoir, output : Prediction
    method : str
    final_mean, final_cov : ndarray (N,), (N, N)
        The state's mean and covariance after the last step.
    cov : list of ndarray or None
        The reservoir covariance of every step, if asked for.
    """

    def __init__(self, reservoir, output, closed, method, final_mean, final_cov, cov=None):
        self.reservoir, self.output = reservoir, output
        self.closed = np.asarray(closed, dtype=bool)
        self.steps = np.arange(len(self.closed))
        self.method = method
        self.final_mean, self.final_cov = final_mean, final_cov
        self.cov = cov

    @property
    def mean(self) -> np.ndarray:
        """Reservoir means, (T + 1, N)."""
        return np.array(self.reservoir.mean)

    @property
    def var(self) -> np.ndarray:
        """Reservoir variances, (T + 1, N)."""
        return np.array(self.reservoir.var)

    @property
    def output_mean(self) -> np.ndarray:
        """Output means, (T + 1, N_out)."""
        return np.array(self.output.mean)

    @property
    def output_var(self) -> np.ndarray:
        """Output variances, (T + 1, N_out)."""
        return np.array(self.output.var)

    @property
    def output_snr(self) -> np.ndarray:
        """Output SNR sum E[y]^2 / sum Var[y] per step, (T + 1,)."""
        return np.asarray(self.output.layer_snr)

    def to_dict(self, per_neuron: bool = False) -> dict:
        """JSON-ready form: per-step summaries of the reservoir and the output."""
        return {"method": self.method, "closed": self.closed.tolist(),
                "reservoir": _steps_dict(self.reservoir.to_dict(per_neuron)),
                "output": _steps_dict(self.output.to_dict(per_neuron))}

    def __repr__(self) -> str:
        last = self.output.summary()[-1]["snr_db"]
        return (f"RecurrentPrediction(steps={len(self.steps) - 1}, method={self.method!r}, "
                f"final output SNR {last:.1f} dB)")


def _steps_dict(payload: dict) -> dict:
    """A LayerStatistics dict with 'layer' renamed to 'step'."""
    for row in payload["layers"]:
        row["step"] = row.pop("layer")
    payload["steps"] = payload.pop("layers")
    payload.pop("batched", None)
    payload["size"] = payload.pop("sizes")[0]
    return payload


def _noise(mean: np.ndarray, cov: np.ndarray, noise: "Noise | None") -> np.ndarray:
    """cov after ``noise`` acts on signals (mean, cov) of one vector (spec 4)."""
    if noise is None or noise.is_zero:
        return cov
    return add_noise_covariance(mean[None], cov[None], noise)[0]


def output_moments(net: RecurrentNetwork, m: np.ndarray, P: np.ndarray, output_noise: "Noise | None"):
    """Mean o and covariance of the noisy output y = W_out x + b_out (+ noise)
    for a state with mean ``m`` and covariance ``P``, and the covariance
    S_eta of the output noise alone (uncorrelated with x)."""
    o = net.W_out @ m + net.output_bias
    clean = net.W_out @ P @ net.W_out.T
    total = _noise(o, clean, output_noise)
    return o, total, total - clean


def step_moments(net, noise, output_noise, m, P, u_t, method="linear"):
    """One step (module docstring): (m_{t-1}, P_{t-1}) -> (m_t, P_t).

    ``u_t`` is the input (N_in,) of a driven step, or None for a self-closed
    step (u_t = y_{t-1})."""
    if u_t is None:
        o, _, s_eta = output_moments(net, m, P, output_noise)
        M = net.loop_matrix
        zbar = net.W_in @ o + net.W @ m + net.bias
        cross = P @ M.T
        cov_z = M @ cross + net.W_in @ s_eta @ net.W_in.T
    else:
        zbar = net.W_in @ u_t + net.W @ m + net.bias
        cross = P @ net.W.T
        cov_z = net.W @ cross
    cov_z = 0.5 * (cov_z + cov_z.T)
    pre = noise.placement == "pre"
    if pre:
        cov_z = _noise(zbar, cov_z, noise)
    f = net.activation
    if method == "moments":
        mean_f, cov_f, slope = (a[0] for a in activation_moments(zbar[None], cov_z[None], f))
    else:
        mean_f, slope = f(zbar), f.derivative(zbar)
        cov_f = slope[:, None] * cov_z * slope[None, :]
    if not pre:
        cov_f = _noise(mean_f, cov_f, noise)
    a = net.leak
    cross_f = cross * slope[None, :]
    new_m = (1.0 - a) * m + a * mean_f
    new_P = a * a * cov_f
    if a < 1.0:
        new_P += (1.0 - a) ** 2 * P + a * (1.0 - a) * (cross_f + cross_f.T)
    return new_m, 0.5 * (new_P + new_P.T)


def check_recursion_size(net: RecurrentNetwork, steps: int, full_covariance: bool = False,
                         arrays: int = STEP_ARRAYS, what: str = "the recurrent prediction",
                         keeps_statistics: bool = True) -> None:
    """Refuse a recursion over ``steps`` steps that would exceed the memory or time limit.

    Memory: ``arrays`` N x N matrices at once, the per-step statistics
    (O(T N), unless ``keeps_statistics`` is False: a run that keeps only its
    current state) and, with ``full_covariance``, every step's N x N
    covariance; time: two N x N x N products per step.  A
    :class:`~noiseprop.utils.resources.ResourceLimit` names the reservoir
    size and the number of steps (exit 2 in the CLI, limits ``--max-memory``
    and ``--max-time``).
    """
    n = net.n
    statistics = _VALUES_PER_STEP * (steps + 1) * (n + net.n_out) if keeps_statistics else 0
    history = (steps + 1) * n * n if full_covariance else 0
    size = f"{what} of a reservoir of {n} neurons" + (f" over {steps} steps" if steps else "")
    check_memory(FLOAT * (arrays * n * n + statistics + history), f"{size} (N x N covariance matrices)",
                 "use a smaller reservoir or fewer steps")
    check_run_time(2 * steps * n**3, f"{size} (two N x N x N products per step)",
                   "use a smaller reservoir or fewer steps")


def check_noise(noise, output_noise) -> None:
    """ValueErrors naming the argument unless ``noise`` is a Noise and
    ``output_noise`` a Noise or None."""
    if not isinstance(noise, Noise):
        raise ValueError(f"noise must be a noiseprop.Noise (the reservoir neurons' noise), "
                         f"got {type(noise).__name__}")
    if output_noise is not None and not isinstance(output_noise, Noise):
        raise ValueError(f"output_noise must be a noiseprop.Noise or None, got {type(output_noise).__name__}")


def predict(
    net: RecurrentNetwork,
    noise: Noise,
    u,
    *,
    generate: int = 0,
    x0=None,
    output_noise: "Noise | None" = None,
    method: str = "linear",
    full_covariance: bool = False,
) -> RecurrentPrediction:
    """Predict mean, variance and SNR of every reservoir neuron and output at every step.

    Parameters
    ----------
    net : RecurrentNetwork
    noise : Noise
        Noise of every reservoir neuron at every step (intensities are
        variances; placement "post" or "pre").
    u : array_like (T, N_in)
        Driving inputs u_1..u_T (the warm-up of a self-closed network).
    generate : int, default 0
        Self-closed steps after the driven ones (u_t = y_{t-1}; needs a
        network with ``feedback=True``).
    x0 : array_like (N,), optional
        Noise-free initial state (zeros).
    output_noise : Noise, optional
        Noise of the output neurons (the readout, identity activation).  In
        self-closed steps it is fed back.
    method : {"linear", "moments"}, default "linear"
        Linear response (exact for affine activations) or the Gaussian
        moment closure of the feed-forward :func:`noiseprop.predict`.
    full_covariance : bool, default False
        Keep every step's reservoir covariance (memory O(T N^2)).

    Returns
    -------
    RecurrentPrediction

    Raises
    ------
    ValueError
        For a bad network, noise, input sequence, method or step count, and
        naming the step at which the mean signal overflows.

    Examples
    --------
    >>> import numpy as np
    >>> from noiseprop import Noise
    >>> from noiseprop.recurrent import RecurrentNetwork, predict
    >>> net = RecurrentNetwork.from_arrays([[1.0]], [[0.5]], [[1.0]], activation="linear")
    >>> res = predict(net, Noise(AU=1e-2), np.ones((200, 1)))
    >>> round(float(res.var[-1, 0]), 6)  # D / (1 - w^2)
    0.013333
    """
    require_recurrent(net)
    check_noise(noise, output_noise)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    u, generate, m = net.check_run(u, generate, x0)
    total = u.shape[0] + generate
    check_recursion_size(net, total, full_covariance)
    P = np.zeros((net.n, net.n))
    means, variances, correlated = [m], [np.zeros(net.n)], [0.0]
    o, S_y, _ = output_moments(net, m, P, output_noise)
    out_means, out_vars, out_corr = [o], [np.diag(S_y).copy()], [0.0]
    history = [P] if full_covariance else None
    for t in range(1, total + 1):
        m, P = step_moments(net, noise, output_noise, m, P, u[t - 1] if t <= u.shape[0] else None, method)
        _check_finite(m, t)
        o, S_y, _ = output_moments(net, m, P, output_noise)
        means.append(m)
        variances.append(np.diag(P).copy())
        correlated.append(_off_diagonal(P))
        out_means.append(o)
        out_vars.append(np.diag(S_y).copy())
        out_corr.append(_off_diagonal(S_y))
        if full_covariance:
            history.append(P)
    closed = np.arange(total + 1) > u.shape[0]
    return RecurrentPrediction(_stats(means, variances, correlated, method),
                               _stats(out_means, out_vars, out_corr, method),
                               closed, method, m, P, history)


def _stats(means, variances, correlated, method) -> Prediction:
    """Per-step lists as a Prediction whose layers are the time steps."""
    return Prediction([m[None] for m in means], [v[None] for v in variances],
                      [np.array([c]) for c in correlated], False, None, method)


def _off_diagonal(cov: np.ndarray) -> float:
    """Mean off-diagonal entry (the correlated part c; 0 for one neuron)."""
    n = cov.shape[0]
    return float((cov.sum() - np.trace(cov)) / (n * (n - 1))) if n > 1 else 0.0


def _check_finite(mean: np.ndarray, t: int) -> None:
    if not np.isfinite(mean @ mean):  # BLAS: no overflow warning
        raise ValueError(f"step {t}: the mean state or its power overflows (the noise-free dynamics "
                         "diverge); reduce the spectral radius, the input or the readout feedback")


def output_variance_from_statistics(W_out, cov) -> np.ndarray:
    """Output noise variance from the statistics of W_out and the reservoir's split.

    With the reservoir covariance summarised as u I + c 11^T (c its mean
    off-diagonal entry, u the mean diagonal entry minus c), output j has

        Var[y_j] = N nu_j u + N^2 mu_j^2 c,

    nu_j and mu_j the mean square and the mean of row j of W_out: the
    uncorrelated noise is carried by the mean square of the readout weights,
    the correlated noise by the square of their mean.  Exact when the
    covariance has that form; on a real reservoir an approximation whose
    error :func:`noiseprop.recurrent.predict`'s full result shows (output
    noise not included).

    Parameters
    ----------
    W_out : ndarray (N_out, N)
    cov : ndarray (N, N)
    """
    W_out, cov = np.asarray(W_out, float), np.asarray(cov, float)
    n = cov.shape[0]
    c = _off_diagonal(cov)
    return output_variance_from_split(W_out, float(np.trace(cov)) / n - c, c)


def output_variance_from_split(W_out, u, c) -> np.ndarray:
    """N nu_j u + N^2 mu_j^2 c for every output j (see
    :func:`output_variance_from_statistics`); u, c scalars or arrays (shape S),
    result (S..., N_out)."""
    W_out = np.asarray(W_out, float)
    n = W_out.shape[1]
    u, c = np.asarray(u, float)[..., None], np.asarray(c, float)[..., None]
    return n * np.mean(W_out**2, axis=1) * u + n**2 * np.mean(W_out, axis=1) ** 2 * c
