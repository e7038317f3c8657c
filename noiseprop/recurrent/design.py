"""Design check of a recurrent network: bounded noise in time, stationary SNR, budgets.

Rules (all from :func:`noiseprop.recurrent.stationary`, linear response
around the fixed point for a constant input, or the self-closed loop):

- **bounded**: the growth rate rho(L) of the covariance map is below 1;
- **stable working point**: rho(A) < 1 for the linearised state map
  A = (1 - a) I + a J M (the slope/spectral-radius limit: with every slope
  s and a = 1, rho(A) = s rho(M), so s rho(M) < 1);
- **target** (optional): the stationary output SNR (sum E^2 / sum Var) reaches
  ``target_snr_db``;
- **budgets** (with a target): for each noise type alone, the largest
  intensity whose stationary output SNR still reaches the target (bisection
  in log D; additive noise scales the stationary covariance linearly, the
  multiplicative noise also moves the growth rate).

Exit codes of ``noiseprop recurrent check`` follow the feed-forward check:
0 all rules met, 1 a rule fails, 2 bad input.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..analysis.design import _target, rules_met, target_met
from ..noise import NOISE_TYPES, Noise
from ..statistics import decibels
from .model import RecurrentNetwork
from .stationary_state import NoFixedPointError, StationaryState, stationary

__all__ = ["check_recurrent", "RecurrentDesignReport", "noise_budget"]

#: Range of intensities searched for a budget.
_BUDGET_RANGE = (1e-16, 1.0)
#: Bisection steps in log D (relative precision ~ 2^-steps of the decades searched).
_BUDGET_STEPS = 40


@dataclass
class RecurrentDesignReport:
    """Result of :func:`check_recurrent`.

    Attributes
    ----------
    state : StationaryState or None
        None when the noise-free state has no stable fixed point (a failed rule).
    target_snr_db : float or None
    budgets : dict or None
        {type: largest intensity of that type alone meeting the target; 0.0
        if none in [1e-16, 1] does, inf if all do}.
    slope_radius : float
        max_i |f'(z*_i)| x rho(M): the slope/spectral-radius product (M = W,
        or W + W_in W_out self-closed).
    recommendations : list of str
    """

    state: Optional[StationaryState]
    target_snr_db: Optional[float]
    budgets: Optional[dict]
    slope_radius: float
    recommendations: list = field(default_factory=list)

    @property
    def output_snr_db(self) -> float:
        if self.state is None or not self.state.bounded:
            return -math.inf
        return float(decibels(self.state.output_snr))

    @property
    def meets_target(self) -> Optional[bool]:
        return target_met(self.output_snr_db, self.target_snr_db)

    @property
    def passed(self) -> bool:
        """The feed-forward verdict (:func:`noiseprop.analysis.design.rules_met`), with
        "bounded" meaning a stable working point and bounded noise."""
        stable = self.state is not None and self.state.bounded and self.state.state_radius < 1
        return rules_met(stable, self.meets_target)

    def table(self) -> str:
        s = self.state
        if s is None:
            return "\n".join([f"advice: {r}" for r in self.recommendations] + ["verdict: a rule FAILS"])
        lines = [
            f"mode: {s.mode}",
            f"growth rate rho(L) of the noise covariance: {s.growth_rate:.6g}  "
            f"({'bounded' if s.bounded else 'UNBOUNDED'}; time constant {s.time_constant:.4g} steps)",
            f"state map rho(A): {s.state_radius:.6g}  ({'stable' if s.state_radius < 1 else 'UNSTABLE'}); "
            f"max slope x rho(M): {self.slope_radius:.6g}",
            f"stationary output SNR: {self.output_snr_db:.2f} dB"
            + ("" if self.target_snr_db is None else
               f"  (target {self.target_snr_db:g} dB: {'met' if self.meets_target else 'MISSED'})"),
        ]
        if self.budgets is not None:
            lines.append("noise budget per type alone (largest intensity meeting the target): "
                         + ", ".join(f"{k}={v:.3g}" for k, v in self.budgets.items()))
        lines += [f"advice: {r}" for r in self.recommendations]
        lines.append(f"verdict: {'all rules met' if self.passed else 'a rule FAILS'}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        def number(x):
            return float(x) if math.isfinite(x) else None

        return {
            "passed": self.passed, "stationary": None if self.state is None else self.state.to_dict(), "target_snr_db": self.target_snr_db,
            "meets_target": self.meets_target, "output_snr_db": number(self.output_snr_db),
            "slope_radius": number(self.slope_radius),
            "budgets": None if self.budgets is None else {k: number(v) for k, v in self.budgets.items()},
            "recommendations": list(self.recommendations),
        }


def noise_budget(net: RecurrentNetwork, name: str, target_snr_db: float, u=None, *,
                 output_noise: "Noise | None" = None, placement: str = "post", mode=None) -> float:
    """Largest intensity of noise type ``name`` alone whose stationary output
    SNR reaches ``target_snr_db`` (0.0 if none in [1e-16, 1], inf if all)."""
    if name not in NOISE_TYPES:
        raise ValueError(f"noise type must be one of {NOISE_TYPES}, got {name!r}")

    def meets(d):
        s = stationary(net, Noise(**{name: d}, placement=placement), u, output_noise=output_noise, mode=mode)
        return s.bounded and decibels(s.output_snr) >= target_snr_db

    lo, hi = _BUDGET_RANGE
    if meets(hi):
        return math.inf
    if not meets(lo):
        return 0.0
    for _ in range(_BUDGET_STEPS):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if meets(mid) else (lo, mid)
    return lo


def check_recurrent(
    net: RecurrentNetwork,
    noise: Noise,
    u=None,
    *,
    output_noise: "Noise | None" = None,
    target_snr_db: "float | None" = None,
    mode: "str | None" = None,
) -> RecurrentDesignReport:
    """Check the design rules of the module docstring.

    Parameters
    ----------
    net, noise, u, output_noise, mode :
        As for :func:`noiseprop.recurrent.stationary` (u: the constant input).
    target_snr_db : float, optional
        Target stationary output SNR in dB; adds the per-type budgets.

    Returns
    -------
    RecurrentDesignReport
    """
    target_snr_db = _target(target_snr_db)
    try:
        state = stationary(net, noise, u, output_noise=output_noise, mode=mode)
    except NoFixedPointError as err:
        return RecurrentDesignReport(None, target_snr_db, None, math.nan,
                                     [f"no stable working point: {err}; lower the spectral radius"])
    M = net.loop_matrix if state.mode == "closed" else net.W
    c = net.W_in @ (net.output_bias if state.mode == "closed" else np.atleast_1d(np.asarray(u, float))) + net.bias
    slopes = np.abs(net.activation.derivative(M @ state.mean + c))
    slope_radius = float(np.max(slopes) * np.max(np.abs(np.linalg.eigvals(M))))
    budgets = None
    if target_snr_db is not None:
        budgets = {name: noise_budget(net, name, target_snr_db, u, output_noise=output_noise,
                                      placement=noise.placement, mode=state.mode) for name in NOISE_TYPES}
    advice = []
    if not state.bounded:
        advice.append(f"noise grows by {state.growth_rate:.3g} per step: lower the spectral radius"
                      + (" of W + W_in W_out (the self-closed loop)" if state.mode == "closed" else "")
                      + ", the slope at the working point, or the multiplicative noise")
    elif state.time_constant > 100:
        advice.append(f"slow relaxation ({state.time_constant:.0f} steps): noise from long ago still counts")
    if target_snr_db is not None and state.bounded and not (decibels(state.output_snr) >= target_snr_db):
        worst = min(budgets, key=lambda k: budgets[k] / max(getattr(noise, k), 1e-300))
        advice.append(f"target missed: {worst} noise is furthest over its budget")
    return RecurrentDesignReport(state, target_snr_db, budgets, slope_radius, advice)
