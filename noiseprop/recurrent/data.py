"""The Mackey-Glass chaotic time series, generated offline.

The Mackey-Glass delay differential equation

    dx/dt = beta x(t - tau) / (1 + x(t - tau)^p) - gamma x(t)

with the standard parameters beta = 0.2, gamma = 0.1, p = 10 and tau = 17
(chaotic) is integrated by the classical fourth-order Runge-Kutta method
with step dt = 0.1 and the constant history x(t) = x0 = 1.2 for t <= 0.
The delayed values x(t - tau) at the grid points are taken from the stored
solution (tau / dt = 170 steps back); at the Runge-Kutta half steps they are
the mean of the two neighbouring grid values (linear interpolation).  The
series is sampled every ``sample_every`` = 1 time unit after discarding the
first ``discard`` = 1000 time units of transient, and returned as is (values
roughly in [0.2, 1.4]).
"""
from __future__ import annotations

import numpy as np

from ..utils.validation import finite_number, positive_int

__all__ = ["mackey_glass"]


def mackey_glass(
    n_samples: int,
    *,
    tau: float = 17.0,
    beta: float = 0.2,
    gamma: float = 0.1,
    power: float = 10.0,
    dt: float = 0.1,
    sample_every: float = 1.0,
    discard: float = 1000.0,
    x0: float = 1.2,
) -> np.ndarray:
    """``n_samples`` values of the Mackey-Glass series (module docstring).

    Parameters
    ----------
    n_samples : int
    tau, beta, gamma, power : float
        Delay and parameters of the equation (standard: 17, 0.2, 0.1, 10).
    dt : float
        Integration step; tau / dt and sample_every / dt must be integers.
    sample_every, discard : float
        Sampling interval and transient discarded (time units).
    x0 : float
        Constant history for t <= 0.

    Returns
    -------
    ndarray (n_samples,)

    Raises
    ------
    ValueError
        For non-positive sizes or steps, or tau, sample_every, discard not
        multiples of dt.

    Examples
    --------
    >>> x = mackey_glass(500)
    >>> bool(0.2 < x.min() < x.max() < 1.5)
    True
    """
    n_samples = positive_int("n_samples", n_samples)
    dt = finite_number("dt", dt)
    if dt <= 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    lag, every, skip = (_multiple(name, finite_number(name, v), dt) for name, v in
                        (("tau", tau), ("sample_every", sample_every), ("discard", discard)))
    if lag < 1 or every < 1:
        raise ValueError("tau and sample_every must be at least one step dt")
    beta, gamma, power, x0 = (finite_number(n, v) for n, v in
                              (("beta", beta), ("gamma", gamma), ("power", power), ("x0", x0)))
    steps = skip + every * n_samples
    x = np.empty(lag + steps + 1)
    x[: lag + 1] = x0  # history t = -tau .. 0

    def rate(value, delayed):
        return beta * delayed / (1.0 + delayed**power) - gamma * value

    for i in range(lag, lag + steps):
        d0, d1 = x[i - lag], x[i - lag + 1]
        half = 0.5 * (d0 + d1)
        k1 = rate(x[i], d0)
        k2 = rate(x[i] + 0.5 * dt * k1, half)
        k3 = rate(x[i] + 0.5 * dt * k2, half)
        k4 = rate(x[i] + dt * k3, d1)
        x[i + 1] = x[i] + dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6.0
    start = lag + skip + every
    return x[start: start + every * n_samples: every].copy()


def _multiple(name: str, value: float, dt: float) -> int:
    count = round(value / dt)
    if value < 0 or abs(count * dt - value) > 1e-9 * max(1.0, abs(value)):
        raise ValueError(f"{name} = {value} must be a non-negative multiple of dt = {dt}")
    return int(count)
