"""Training recurrent networks: ridge readout of an echo state network, NRMSE,
and noise-injection training of a small Elman RNN (PyTorch, optional).

- :func:`ridge_readout`: W_out, b_out by ridge regression of the targets on
  the noise-free reservoir states (after a warm-up):
  [W_out b_out] = Y^T X1 (X1^T X1 + lambda I)^-1, X1 = [X 1]
  (the bias column is not penalised).
- :func:`nrmse`: sqrt(mean((prediction - target)^2)) / std(target).
- :func:`one_step_nrmse`, :func:`generation_nrmse`: one-step prediction
  (driven) and self-closed generation (u_t = y_{t-1} after a driven warm-up).
- :func:`train_elman`: an Elman RNN (x_t = tanh(W_in u_t + W x_{t-1} + b),
  y_t = W_out x_t + b_out) trained by back-propagation through time on
  one-step prediction, optionally with the model's noise injected into the
  hidden neurons at every step (noise-injection training); returned as a
  :class:`~noiseprop.recurrent.model.RecurrentNetwork`.
"""
from __future__ import annotations

import numpy as np

from ..noise import Noise
from ..utils.optional import require
from ..utils.seeds import int_seed
from ..utils.validation import finite_number, positive_int
from .model import RecurrentNetwork, as_sequence, require_recurrent

__all__ = ["ridge_readout", "nrmse", "one_step_nrmse", "generation_nrmse", "train_elman"]


def nrmse(prediction, target) -> float:
    """Root-mean-square error divided by the standard deviation of ``target``."""
    prediction, target = np.asarray(prediction, float), np.asarray(target, float)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ in shape")
    spread = np.std(target)
    if spread == 0:
        raise ValueError("target is constant: NRMSE undefined")
    return float(np.sqrt(np.mean((prediction - target) ** 2)) / spread)


def ridge_readout(net: RecurrentNetwork, u, targets, ridge: float = 1e-8, warmup: int = 100,
                  feedback: "bool | None" = None) -> RecurrentNetwork:
    """``net`` with W_out, b_out fitted by ridge regression (module docstring).

    Parameters
    ----------
    net : RecurrentNetwork
    u : array_like (T, N_in)
        Training inputs.
    targets : array_like (T, N_out) or (T,)
        Target output at every step.
    ridge : float >= 0
    warmup : int >= 0
        Initial steps left out of the fit (the echo of x_0).
    feedback : bool, optional
        Feedback flag of the returned network (default: net's).
    """
    require_recurrent(net)
    u = as_sequence(u, net.n_in)
    targets = np.asarray(targets, float).reshape(u.shape[0], -1)
    ridge = finite_number("ridge", ridge)
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    if not 0 <= warmup < u.shape[0] - 1:
        raise ValueError(f"warmup must be in 0..{u.shape[0] - 2} (steps of u), got {warmup}")
    states, _ = net.forward(u)
    X = np.hstack([states[1 + warmup:], np.ones((u.shape[0] - warmup, 1))])
    Y = targets[warmup:]
    penalty = ridge * np.eye(X.shape[1])
    penalty[-1, -1] = 0.0
    coef = np.linalg.solve(X.T @ X + penalty, X.T @ Y).T
    feedback = net.feedback if feedback is None else feedback
    return RecurrentNetwork.from_arrays(net.W_in, net.W, coef[:, :-1], net.bias, coef[:, -1], net.leak,
                                        net.activation, feedback)


def one_step_nrmse(net: RecurrentNetwork, series, warmup: int = 100) -> float:
    """NRMSE of the one-step prediction y_t ~ s_{t+1} of a series driven as input u_t = s_t."""
    series = np.asarray(series, float).reshape(len(series), -1)
    _, outputs = net.forward(series[:-1])
    return nrmse(outputs[1 + warmup:], series[1 + warmup:])


def generation_nrmse(net: RecurrentNetwork, series, warmup: int, horizon: int) -> float:
    """NRMSE of ``horizon`` self-closed steps after ``warmup`` driven steps of ``series``.

    The first self-closed output predicts series[warmup + 1]; compared
    with series[warmup + 1 .. warmup + horizon].
    """
    series = np.asarray(series, float).reshape(len(series), -1)
    if warmup + horizon + 1 > len(series):
        raise ValueError(f"series has {len(series)} values, need warmup + horizon + 1 = {warmup + horizon + 1}")
    _, outputs = net.forward(series[:warmup], generate=horizon)
    return nrmse(outputs[warmup: warmup + horizon], series[warmup + 1: warmup + horizon + 1])


def train_elman(
    series,
    hidden: int = 20,
    *,
    noise: "Noise | None" = None,
    epochs: int = 300,
    window: int = 50,
    lr: float = 0.01,
    seed: int = 0,
) -> RecurrentNetwork:
    """Train an Elman RNN on one-step prediction of ``series`` (BPTT, Adam).

    Parameters
    ----------
    series : array_like (T,) or (T, N_in)
        The series; input u_t = s_t, target s_{t+1}.
    hidden : int
        Hidden (reservoir) neurons.
    noise : Noise, optional
        Noise injected into every hidden neuron at every step during
        training ("post" or "pre" placement, all four types); None: clean
        training.
    epochs, window, lr, seed :
        Full-batch epochs over windows of ``window`` steps, Adam learning
        rate, seed of the initial weights and of the injected noise.

    Returns
    -------
    RecurrentNetwork
        tanh, leak 1, feedback when the series has one channel.

    Raises
    ------
    ValueError
        For bad arguments; a clear error when torch is missing.
    """
    torch = require("torch", "train", "training an Elman RNN")
    series = np.asarray(series, float).reshape(len(series), -1)
    hidden, epochs, window = (positive_int(k, v) for k, v in (("hidden", hidden), ("epochs", epochs),
                                                               ("window", window)))
    if len(series) < window + 1:
        raise ValueError(f"series has {len(series)} values, need at least window + 1 = {window + 1}")
    if noise is not None and not isinstance(noise, Noise):
        raise ValueError(f"noise must be a Noise or None, got {type(noise).__name__}")
    n_in = series.shape[1]
    generator = torch.Generator().manual_seed(int_seed(seed) % 2**63)
    starts = np.arange(0, len(series) - window - 1, window)
    inputs = torch.tensor(np.stack([series[s: s + window] for s in starts]), dtype=torch.float64)
    targets = torch.tensor(np.stack([series[s + 1: s + window + 1] for s in starts]), dtype=torch.float64)

    def param(*shape, scale):
        return torch.nn.Parameter((torch.rand(*shape, generator=generator, dtype=torch.float64) * 2 - 1) * scale)

    W_in, W = param(hidden, n_in, scale=1.0), param(hidden, hidden, scale=1.0 / np.sqrt(hidden))
    b, W_out, b_out = param(hidden, scale=0.1), param(n_in, hidden, scale=1.0 / np.sqrt(hidden)), param(n_in, scale=0.0)
    optimiser = torch.optim.Adam([W_in, W, b, W_out, b_out], lr=lr)
    sd = {k: float(np.sqrt(v)) for k, v in (noise.intensities.items() if noise else [])}
    batch = inputs.shape[0]

    def draw(shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    for _ in range(epochs):
        optimiser.zero_grad()
        x = torch.zeros(batch, hidden, dtype=torch.float64)
        loss = 0.0
        for t in range(window):
            z = inputs[:, t] @ W_in.T + x @ W.T + b
            if noise is not None and noise.placement == "pre":
                z = _inject(z, sd, draw)
            x = torch.tanh(z)
            if noise is not None and noise.placement == "post":
                x = _inject(x, sd, draw)
            loss = loss + torch.mean((x @ W_out.T + b_out - targets[:, t]) ** 2)
        (loss / window).backward()
        optimiser.step()
    to_numpy = lambda p: p.detach().numpy().copy()  # noqa: E731
    return RecurrentNetwork.from_arrays(to_numpy(W_in), to_numpy(W), to_numpy(W_out), to_numpy(b), to_numpy(b_out),
                                        activation="tanh", feedback=True)


def _inject(v, sd, draw):
    """v (1 + xi_MU + xi_MC) + xi_AU + xi_AC with fresh draws (rows: realisations)."""
    batch, n = v.shape
    gain = 1.0 + sd["MU"] * draw((batch, n)) + sd["MC"] * draw((batch, 1))
    return v * gain + sd["AU"] * draw((batch, n)) + sd["AC"] * draw((batch, 1))
