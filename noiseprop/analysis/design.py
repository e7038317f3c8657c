"""Design-rule checks for hardware engineers: bounded noise, budgets, advice.

:func:`check_design` answers, for a network, its noise and its input(s):

- **bounded accumulation** per layer, from the layer's linearised covariance
  map itself.  A covariance Sigma of layer k-1's output reaches layer k's
  output as

      A(Sigma) = (1 + D_MC) B Sigma B^T + D_MU diag(B Sigma B^T),   B = J_k W_k,

  (the same for both placements; J_k = diag f'(zbar_k)), plus the layer's own
  noise injection q_k (what layer k alone adds to a noise-free input).  A
  deep stack of layers like this one (same weights, same working point)
  iterates Sigma -> A(Sigma) + q_k: the noise stays bounded when the
  spectral radius rho_k of the linear map A is below one (deep limit: the
  fixed point Sigma* = A(Sigma*) + q_k, reported as its mean diagonal), grows
  linearly when rho_k = 1 and exponentially when rho_k > 1.  Without
  uncorrelated multiplicative noise rho_k = (1 + D_MC) rho(B)^2 exactly; with
  it, rho_k is computed by :func:`noiseprop.positive_maps.spectral_radius`
  (the N^2 x N^2 matrix of A for N <= 24, else a Perron iteration on N x N
  matrices in B's eigenbasis, O(N^3) per step).  Layers that are not square
  (N_k != N_{k-1}) cannot be stacked: for them, and as a *design summary*
  for every layer, the (uncorrelated, correlated) split (u, c) of the
  covariance is carried through the 2 x 2 transfer of
  :mod:`noiseprop.analysis.gains` (exact for symmetric networks, where it
  gives rho_k = s_k^2 w^2 N (N (1 + D_MC) + D_MU); for a general weight
  matrix it is a summary, not a growth test: a layer whose growth lies in a
  direction orthogonal to the all-ones vector can look bounded in it).
- the **predicted output SNR** (layer SNR of layer L, linear response);
- the **sensitivity** of the output noise to every layer's intensity of every
  type, exact in the linear-response model: one backward (adjoint) pass of
  the covariance recursion from the output to every layer, uncorrelated
  multiplicative noise on hidden layers included (about the cost of one more
  propagation, O(N^3) per layer and input, whatever the number of layers
  and types);
- **noise budgets** for a target output SNR: the largest intensity of each
  type, the same on every layer, the other types as given (with "linear"
  and no uncorrelated multiplicative noise on a hidden layer, each probe of
  the search reads the output layer alone by the adjoint path of
  :mod:`noiseprop.output_statistics`, the same numbers as the full
  propagation);
- **recommendations** in words and numbers.

The overall verdict on accumulation judges layers 2..L-1: layer 1 reads the
noise-free input, and the output layer L feeds no further layer, so its gain
only scales the noise it passes out once (which the output SNR includes)
and cannot make noise accumulate with depth.  Both are reported per layer.
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from scipy.optimize import brentq

from ..activations import Linear
from ..model import Network
from ..noise import NOISE_TYPES, Noise, NoiseSpec, per_layer_noise
from ..output_statistics import output_prediction
from ..positive_maps import affine_fixed_point, spectral_radius
from ..propagation import DEFAULT_METHOD, Prediction, predict
from ..statistics import decibels
from ..utils.tables import format_table
from ..utils.validation import as_input, finite_number, positive_int, require_network
from .gains import LayerGains, layer_statistics

__all__ = [
    "DesignReport",
    "LayerRule",
    "check_design",
    "noise_budget",
    "noise_scale_budget",
    "AccumulationMap",
    "BudgetCurves",
    "symmetric_accumulation",
    "symmetric_budgets",
    "design_chart",
    "covariance_map_growth",
    "covariance_map_limit",
]

#: Words for the noise types, as used in recommendations.
NOISE_NAMES = {
    "AU": "uncorrelated additive",
    "AC": "correlated additive",
    "MU": "uncorrelated multiplicative",
    "MC": "correlated multiplicative",
}
#: |rho - 1| below this counts as marginal (linear growth): rounding in the gains.
MARGINAL_TOLERANCE = 1e-9
#: Narrower covariance maps are iterated with single-threaded BLAS.
_THREADED_MAP_WIDTH = 400
#: Budgets are searched for in [_BUDGET_FLOOR, _BUDGET_CEILING] (variances).
_BUDGET_FLOOR, _BUDGET_CEILING = 1e-30, 1e12


@dataclass(frozen=True)
class LayerRule:
    """The design rules of layer k (worst case over a batch of inputs, and mean).

    Attributes
    ----------
    layer, size : int
        k and N_k.
    uncorrelated_gain, correlated_gain : float
        g_U and g_C of :class:`~noiseprop.analysis.gains.LayerGains`, largest over the
        batch (dimensionless variance ratios).
    multiplicative_gain : float
        Signal power P_k = mean_i f(zbar_k,i)^2: the variance a unit
        multiplicative intensity adds (largest over the batch; output units^2).
    accumulation_gain : float
        rho_k, spectral radius of the layer's linearised covariance map
        (multiplicative terms included; largest over the batch): the growth
        rate per layer of a deep stack of such layers.  For a non-square
        layer, the design summary's gain (see ``growth_basis``).
    uncorrelated_gain_mean, correlated_gain_mean, multiplicative_gain_mean, accumulation_gain_mean : float
        The same, averaged over the batch.
    growth : {"bounded", "linear", "exponential"}
        How noise accumulates in a deep stack of layers like this one.
    limit : float
        Deep-stack limit of the mean noise variance of a stack of such layers
        with this layer's noise (output units^2): the mean diagonal of the
        fixed point of the covariance map; inf unless bounded.
    slope : float
        RMS activation slope sqrt(<s^2>) at the working point (largest over the batch).
    max_slope : float
        The RMS slope at which rho_k = 1 (all slopes of the layer scaled
        alike, rho_k scales as their square): the largest slope that keeps
        the accumulation bounded.
    summary_gain, summary_limit : float
        *Design summary*: the spectral radius and deep limit of the 2 x 2
        map of the (uncorrelated, correlated) split (u, c) (worst input).
        Exact for symmetric networks; for a general weight matrix a
        summary, not a growth test.
    growth_basis : {"covariance map", "design summary"}
        What ``accumulation_gain``, ``growth`` and ``limit`` come from: the
        layer's covariance map (square layers) or, for a layer that cannot
        be stacked (N_k != N_{k-1}), the design summary.
    """

    layer: int
    size: int
    uncorrelated_gain: float
    correlated_gain: float
    multiplicative_gain: float
    accumulation_gain: float
    uncorrelated_gain_mean: float
    correlated_gain_mean: float
    multiplicative_gain_mean: float
    accumulation_gain_mean: float
    growth: str
    limit: float
    slope: float
    max_slope: float
    summary_gain: float = math.nan
    summary_limit: float = math.nan
    growth_basis: str = "covariance map"

    @property
    def bounded(self) -> bool:
        """True when noise accumulation through layers like this one is bounded."""
        return self.growth == "bounded"


@dataclass(frozen=True)
class DesignReport:
    """Result of :func:`check_design`.

    Attributes
    ----------
    layers : list of LayerRule
        One per layer k = 1..L (``layers[k-1]``).
    output_snr_db, output_snr_db_mean : float
        Predicted layer SNR of the output layer L in dB (sum E^2 / sum Var),
        worst (lowest) over the batch and batch mean.
    target_snr_db : float or None
    sensitivity : ndarray (L, 4)
        d V_L / d D_{t,k}: change of the output's mean noise variance (batch
        mean, linear response) per unit intensity of type t (columns AU, AC,
        MU, MC) on layer k; exact (V_L is affine in each single intensity),
        by one adjoint pass.
    contribution : ndarray (L, 4)
        D_{t,k} * sensitivity / V_L: the fraction of the output noise due to
        each layer's noise of each type; d SNR_dB / d ln D_{t,k} = -4.34 *
        contribution.
    max_noise : dict or None
        With a target: {type: largest intensity, the same on every layer, that
        meets the target (0.0 if the other types alone miss it; inf if no
        amount misses it)}.
    max_scale : float or None
        With a target: the largest factor by which all given intensities can
        be scaled together and still meet it.
    recommendations : list of str
    noise : tuple of Noise
        The noise analysed, one per layer.
    output_error_estimate : float or None
        The prediction's estimated relative error of the output layer's mean
        noise variance (``Prediction.error_estimate``, largest over the
        batch); None for ``method="linear"``, which has no estimate.
    """

    layers: list
    output_snr_db: float
    output_snr_db_mean: float
    target_snr_db: Optional[float]
    sensitivity: np.ndarray
    contribution: np.ndarray
    max_noise: Optional[dict]
    max_scale: Optional[float]
    noise: tuple
    recommendations: list = field(default_factory=list)
    output_error_estimate: Optional[float] = None

    @property
    def judged_layers(self) -> list:
        """The rules of layers 2..L-1, which receive noise and pass it on to a
        further layer: the layers whose gains make noise accumulate with depth."""
        return self.layers[1:-1]

    @property
    def bounded(self) -> bool:
        """True when accumulation is bounded in every layer 2..L-1 (see :attr:`judged_layers`)."""
        return all(rule.bounded for rule in self.judged_layers)

    @property
    def meets_target(self) -> Optional[bool]:
        """Whether the worst output SNR reaches the target (None without one)."""
        return target_met(self.output_snr_db, self.target_snr_db)

    @property
    def passed(self) -> bool:
        """All rules met: bounded accumulation and, if given, the target SNR."""
        return rules_met(self.bounded, self.meets_target)

    @property
    def dominant_layer(self) -> int:
        """The layer k whose noise contributes most to the output noise."""
        return int(np.argmax(self.contribution.sum(axis=1))) + 1

    @property
    def dominant_type(self) -> str:
        """The noise type contributing most to the output noise."""
        return NOISE_TYPES[int(np.argmax(self.contribution.sum(axis=0)))]

    def table(self) -> str:
        """Per-layer table of the rules, for people."""
        headers = ["layer", "size", "rho", "growth", "deep limit", "slope", "max slope", "output share",
                   "| summary: g_U", "g_C", "P (mult.)", "rho (u,c)", "limit (u,c)"]
        rows = [
            [str(r.layer), str(r.size), f"{r.accumulation_gain:.4g}" + ("" if r.growth_basis == "covariance map"
                                                                         else "*"),
             r.growth, f"{r.limit:.4g}", f"{r.slope:.4g}", f"{r.max_slope:.4g}", f"{share:.1%}",
             f"{r.uncorrelated_gain:.4g}", f"{r.correlated_gain:.4g}", f"{r.multiplicative_gain:.4g}",
             f"{r.summary_gain:.4g}", f"{r.summary_limit:.4g}"]
            for r, share in zip(self.layers, self.contribution.sum(axis=1))
        ]
        return format_table(headers, rows)

    def summary(self) -> str:
        """Verdicts, output SNR, budgets and recommendations as text lines."""
        lines = [
            f"accumulation: {'bounded' if self.bounded else 'NOT bounded'} (layers 2..L-1)",
            f"output SNR: {self.output_snr_db:.2f} dB (worst input), {self.output_snr_db_mean:.2f} dB (mean)"
            + ("" if self.output_error_estimate is None
               else f"; estimated error of the output noise variance {100 * self.output_error_estimate:.3g} %"),
        ]
        if self.target_snr_db is not None:
            verdict = "met" if self.meets_target else "MISSED"
            lines.append(f"target SNR: {self.target_snr_db:.2f} dB {verdict}")
            lines.append("budgets (same intensity on every layer, others as given): " + ", ".join(
                f"{t} <= {d:.4g}" for t, d in self.max_noise.items()))
            lines.append(f"all given intensities together may be scaled by up to {self.max_scale:.4g}")
        lines += [f"- {text}" for text in self.recommendations]
        lines.append(f"verdict: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready form; infinite numbers become None."""
        def number(v):
            return float(v) if math.isfinite(v) else None

        layers = []
        for rule, sens, share in zip(self.layers, self.sensitivity, self.contribution):
            row = {k: (number(v) if isinstance(v, float) else v) for k, v in vars(rule).items()}
            row["design_summary"] = {
                "note": "(u, c) split of the covariance: exact for symmetric networks, a summary "
                        "(not a growth test) for general weight matrices",
                "accumulation_gain": row.pop("summary_gain"),
                "limit": row.pop("summary_limit"),
            }
            row["bounded"] = rule.bounded
            row["sensitivity"] = dict(zip(NOISE_TYPES, map(float, sens)))
            row["contribution"] = dict(zip(NOISE_TYPES, map(float, share)))
            layers.append(row)
        return {
            "passed": self.passed,
            "bounded": self.bounded,
            "judged_layers": [rule.layer for rule in self.judged_layers],
            "output_snr_db": number(self.output_snr_db),
            "output_snr_db_mean": number(self.output_snr_db_mean),
            "output_error_estimate": None if self.output_error_estimate is None else number(self.output_error_estimate),
            "target_snr_db": self.target_snr_db,
            "meets_target": self.meets_target,
            "max_noise": None if self.max_noise is None else {t: number(d) for t, d in self.max_noise.items()},
            "max_scale": None if self.max_scale is None else number(self.max_scale),
            "dominant_layer": self.dominant_layer,
            "dominant_type": self.dominant_type,
            "layers": layers,
            "recommendations": list(self.recommendations),
        }


def check_design(
    net: Network,
    noise: NoiseSpec,
    x,
    target_snr_db: "float | None" = None,
    method: str = DEFAULT_METHOD,
) -> DesignReport:
    """Check a network's design rules for its noise at the working point.

    Parameters
    ----------
    net : Network
    noise : Noise or sequence of Noise
        Intensities (variances), one Noise for every layer or one per layer.
    x : array_like(float), shape (N_0,) or (B, N_0)
        Input(s) fixing the working point; for a batch the rules report the
        worst case (and the mean) over the inputs.
    target_snr_db : float, optional
        Target output SNR in dB (layer SNR of layer L); enables the budgets.
    method : str, default :data:`~noiseprop.propagation.DEFAULT_METHOD`
        Prediction method of the output SNR and the budgets (see
        :func:`~noiseprop.propagation.predict`).  Growth rates, deep limits
        and sensitivities are those of the linearised network (linear
        response) whatever the method; the sensitivities come from one
        adjoint pass over the linear prediction's covariances (which are
        kept for it: B sum_k N_k^2 values).

    Returns
    -------
    DesignReport

    Examples
    --------
    >>> from noiseprop import Network, Noise
    >>> net = Network.symmetric(depth=8, width=10, weight=0.1, activation="linear(slope=1.2)")
    >>> report = check_design(net, Noise(AC=1e-4), [1.0] * 10)
    >>> report.bounded, report.layers[2].growth, round(report.layers[2].max_slope, 3)
    (False, 'exponential', 1.0)
    """
    require_network(net)
    layer_noise = per_layer_noise(noise, net.depth)
    inputs, _ = as_input(x, net.sizes[0])
    target = _target(target_snr_db)
    gains = layer_statistics(net, inputs)
    injections = _injections(net, layer_noise, inputs)
    rules = [_layer_rule(g, nz, q, w) for g, nz, q, w in zip(gains, layer_noise, injections, net.weights)]
    prediction = predict(net, layer_noise, inputs, method=method, full_covariance=method == "linear")
    output_snr = _output_snr(prediction)
    linear = prediction if method == "linear" else predict(net, layer_noise, inputs, full_covariance=True,
                                                           method="linear")
    sensitivity, contribution = _sensitivity(net, layer_noise, linear)
    max_noise = max_scale = None
    if target is not None:
        max_noise = {t: noise_budget(net, layer_noise, inputs, target, t, method=method) for t in NOISE_TYPES}
        max_scale = noise_scale_budget(net, layer_noise, inputs, target, method=method)
    report = DesignReport(
        layers=rules,
        output_snr_db=float(decibels(np.min(output_snr))),
        output_snr_db_mean=float(decibels(np.mean(output_snr))),
        target_snr_db=target,
        sensitivity=sensitivity,
        contribution=contribution,
        max_noise=max_noise,
        max_scale=max_scale,
        noise=layer_noise,
        output_error_estimate=None if prediction.error_estimate is None
        else float(np.max(prediction.error_estimate[-1])),
    )
    report.recommendations.extend(_recommendations(report))
    return report


def noise_budget(net: Network, noise: NoiseSpec, x, target_snr_db: float, noise_type: str,
                 method: str = DEFAULT_METHOD) -> float:
    """Largest intensity of one noise type that keeps the output SNR at the target.

    The intensity is the same on every layer 1..L; the other types stay as
    given.  The worst output layer SNR over the inputs is monotone
    (decreasing) in the intensity; the boundary is found with Brent's method
    on log D in the model of :func:`~noiseprop.predict` with ``method``.

    Returns
    -------
    float
        The budget (a variance); 0.0 if the target is missed even without this
        type, inf if it is met at every intensity up to 1e12.
    """
    if noise_type not in NOISE_TYPES:
        raise ValueError(f"noise_type must be one of {NOISE_TYPES}, got {noise_type!r}")
    layer_noise, target = _budget_inputs("noise_budget", net, noise, target_snr_db)
    without = [replace(nz, **{noise_type: 0.0}) for nz in layer_noise]
    return _largest(net, x, target, lambda d: [replace(nz, **{noise_type: d}) for nz in layer_noise],
                    without, method)


def _budget_inputs(caller: str, net: Network, noise: NoiseSpec, target_snr_db) -> tuple[list, float]:
    """The per-layer noise and the target of a budget search, validated."""
    require_network(net)
    layer_noise = per_layer_noise(noise, net.depth)
    target = _target(target_snr_db)
    if target is None:
        raise ValueError(f"{caller} needs a finite target_snr_db")
    return layer_noise, target


def noise_scale_budget(net: Network, noise: NoiseSpec, x, target_snr_db: float,
                       method: str = DEFAULT_METHOD) -> float:
    """Largest factor by which every given intensity can be scaled at once
    and the worst output SNR still meets the target (inf if noise-free)."""
    layer_noise, target = _budget_inputs("noise_scale_budget", net, noise, target_snr_db)
    if all(nz.is_zero for nz in layer_noise):
        return math.inf
    return _largest(net, x, target, lambda a: [nz.scaled(a) for nz in layer_noise], None, method)


def _output_snr(prediction: Prediction) -> np.ndarray:
    """Output layer SNR (power ratio) of every input; 0/0 (no signal, no noise) counts as 0."""
    return np.atleast_1d(np.nan_to_num(prediction.layer_snr[-1], nan=0.0, posinf=np.inf))


def _worst_output_snr_db(net: Network, noise: Sequence[Noise], x, method: str) -> float:
    """Lowest output layer SNR over the inputs, in dB (no error estimate: the
    budget search probes intensities far beyond the answer, where a method's
    estimated error is not about the design)."""
    prediction = output_prediction(net, noise, x, method, error_estimate=False)
    return float(decibels(np.min(_output_snr(prediction))))


#: A cheaper method whose budget brackets that of the key's: the Gaussian
#: closure, close to the mixture (same treatment of the activations' curvature).
_BRACKETING_METHOD = {"mixture": "moments"}
#: First half-width (in log v) of the bracket around the cheaper method's budget.
_NEAR_STEP = math.log(1.25)
#: Brent's tolerance on log v, by method.  The mixture's output SNR is not
#: monotone below about 0.01 dB (its merge of components is a discrete
#: choice that changes with the intensity), so its budget is defined only to
#: a few 1e-4 (relative); finer steps would bisect that jitter.
_LOG_TOLERANCE = {"linear": 1e-12, "moments": 1e-12, "mixture": 1e-7}


def _largest(net: Network, x, target: float, noise_at, baseline, method: str) -> float:
    """Largest value v with worst output SNR of ``noise_at(v)`` >= target.

    The SNR decreases monotonically in v; ``baseline`` is the noise at v = 0
    (None: noise-free, always meets the target).  Brent's method on log v
    (to 1e-12) in a bracket: for an expensive method (:data:`_BRACKETING_METHOD`)
    one around the budget of a cheaper method, widened until it holds the
    root (a few probes of the expensive method instead of a scan of the
    whole range); otherwise found in steps of a factor 100.  Either way the
    answer is the root of the method's own SNR, to the same tolerance;
    0.0 below 1e-30, inf above 1e12.
    """
    if baseline is not None and _worst_output_snr_db(net, baseline, x, method) < target:
        return 0.0

    def margin(log_v: float) -> float:
        return _worst_output_snr_db(net, noise_at(math.exp(log_v)), x, method) - target

    guess = (_largest(net, x, target, noise_at, None, _BRACKETING_METHOD[method])
             if method in _BRACKETING_METHOD else math.nan)
    if _BUDGET_FLOOR < guess < _BUDGET_CEILING:
        bracket = _bracket_near(margin, math.log(guess))
    else:
        bracket = _bracket_scan(margin)
    if not isinstance(bracket, tuple):
        return bracket
    return math.exp(brentq(margin, *bracket, xtol=_LOG_TOLERANCE[method]))


def _bracket_scan(margin) -> "tuple[float, float] | float":
    """(low, high) with margin(low) > 0 >= margin(high), from log v = 0 in
    steps of log 100; inf or 0.0 where the root lies beyond the range."""
    step = math.log(100.0)
    high = 0.0
    while margin(high) > 0:
        if high >= math.log(_BUDGET_CEILING):
            return math.inf
        high += step
    low = high - step
    while margin(low) <= 0:
        if low <= math.log(_BUDGET_FLOOR):
            return 0.0
        low -= step
    return low, high


def _bracket_near(margin, guess: float) -> "tuple[float, float] | float":
    """(low, high) around ``guess`` (log v) with margin(low) > 0 >= margin(high):
    half-widths growing fourfold from log 1.25 until the sign changes, clipped
    to [log 1e-30, log 1e12] (inf or 0.0 where the root lies beyond them)."""
    ceiling, floor = math.log(_BUDGET_CEILING), math.log(_BUDGET_FLOOR)
    step, low, high = _NEAR_STEP, guess, guess
    if margin(guess) > 0:
        while True:
            low, high = high, min(high + step, ceiling)
            if margin(high) <= 0:
                return low, high
            if high >= ceiling:
                return math.inf
            step *= 4.0
    while True:
        low, high = max(low - step, floor), low
        if margin(low) > 0:
            return low, high
        if low <= floor:
            return 0.0
        step *= 4.0


def _target(target_snr_db) -> "float | None":
    if target_snr_db is None:
        return None
    return finite_number("target_snr_db", target_snr_db)


def target_met(snr_db: float, target_snr_db: "float | None") -> Optional[bool]:
    """The target rule of every design check: SNR (dB) >= target, None without a target."""
    return None if target_snr_db is None else snr_db >= target_snr_db


def rules_met(bounded: bool, meets_target: Optional[bool]) -> bool:
    """The verdict of every design check (``noiseprop check`` and ``noiseprop recurrent
    check`` exit 1 when False): noise bounded and the target, if any, met."""
    return bool(bounded) and meets_target is not False


def _injections(net: Network, layer_noise: Sequence[Noise], inputs: np.ndarray) -> list[tuple]:
    """The noise each layer adds to a noise-free input: per layer a pair of
    its (u, c) split, shape (B, 2), and its covariance q_k, shape (B, N_k, N_k).

    Layer k alone is run by :func:`predict` (linear response) on the
    noise-free output of layer k-1, so both placements follow exactly the
    model of ``predict``.
    """
    y = inputs
    out = []
    for w, b, f, nz in zip(net.weights, net.biases, net.activations, layer_noise):
        single = predict(Network.from_arrays([w], [b], [f]), nz, y, full_covariance=True, method="linear")
        c = single.correlated[1]
        split = np.stack([single.var[1].mean(axis=-1) - c, c], axis=-1)
        out.append((np.atleast_2d(split), single.cov[1].reshape((-1,) + single.cov[1].shape[-2:])))
        y = single.mean[1]
    return out


def covariance_map_growth(carrier: np.ndarray, noise: Noise) -> float:
    """Spectral radius of a layer's linearised covariance map.

    The map A(Sigma) = (1 + D_MC) B Sigma B^T + D_MU diag(B Sigma B^T) (the
    linear part of spec 4's covariance line, either placement) carries the
    covariance of layer k-1 into layer k; a deep stack of such layers grows
    (or shrinks) by its spectral radius per layer.  A preserves positive
    semi-definite matrices, so the radius is an eigenvalue with a
    covariance as eigenvector.

    Parameters
    ----------
    carrier : ndarray (N, N)
        B = J W: the weights with each row scaled by its neuron's slope
        f'(zbar_i) at the working point.
    noise : Noise
        The layer's noise (only D_MU and D_MC enter).

    Returns
    -------
    float
        rho(A): exactly (1 + D_MC) rho(B)^2 without D_MU; with it, by
        :func:`noiseprop.positive_maps.spectral_radius` (the N^2 x N^2
        matrix for N <= 24, else an iteration on N x N matrices in B's
        eigenbasis; relative accuracy ~1e-12).
    """
    carrier = np.asarray(carrier, dtype=float)
    n = carrier.shape[0]
    if carrier.shape != (n, n):
        raise ValueError(f"the covariance map of a layer of shape {carrier.shape} is not square: "
                         "it cannot be stacked")
    if noise.MU == 0:
        return (1.0 + noise.MC) * float(np.max(np.abs(np.linalg.eigvals(carrier)))) ** 2
    with _blas_threads(1 if n < _THREADED_MAP_WIDTH else None):
        return spectral_radius(math.sqrt(1.0 + noise.MC) * carrier, _diagonal_noise(carrier, noise))


def _diagonal_noise(carrier: np.ndarray, noise: Noise):
    """Sigma -> D_MU Diag(diag(B Sigma B^T)): the D_MU part of the map (the
    multiplicative part of :func:`~noiseprop.propagation.add_noise_covariance`
    for a noise-free mean)."""
    return lambda cov: noise.MU * np.diag(np.einsum("ij,ij->i", carrier @ cov, carrier))


@contextmanager
def _blas_threads(limit: "int | None"):
    """BLAS limited to ``limit`` threads (None: unchanged; also without
    threadpoolctl).  Small products in a long loop run several times faster
    on one thread than with idle threads spinning beside them."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limit = None
    if limit is None:
        yield
        return
    with threadpool_limits(limits=limit, user_api="blas"):
        yield


def covariance_map_limit(carrier: np.ndarray, noise: Noise, injection: np.ndarray) -> np.ndarray:
    """Fixed point Sigma* = A(Sigma*) + q of a layer's affine covariance map.

    The deep-stack limit of the covariance of a stack of identical layers
    (see :func:`covariance_map_growth`; requires its radius < 1), by
    :func:`noiseprop.positive_maps.affine_fixed_point`: GMRES preconditioned by
    the exact solve of the congruence part Sigma -> (1 + D_MC) B Sigma B^T
    (a Stein equation), refined on the true residual down to rounding.

    Parameters
    ----------
    carrier : ndarray (N, N)
        B = J W.
    noise : Noise
    injection : ndarray (N, N)
        q: the covariance the layer adds to a noise-free input.

    Returns
    -------
    ndarray (N, N)
    """
    carrier = np.asarray(carrier, dtype=float)
    with _blas_threads(1 if carrier.shape[0] < _THREADED_MAP_WIDTH else None):
        return affine_fixed_point(math.sqrt(1.0 + noise.MC) * carrier, _diagonal_noise(carrier, noise), injection)


def _layer_rule(g: LayerGains, nz: Noise, injection: tuple, weights: np.ndarray) -> LayerRule:
    """Verdict, deep-stack limit and slope bound of one layer (batched gains):
    from its covariance map when it is square, else from the design summary."""
    split, covariance = injection
    summary_rho, summary_limits = _summary(g, nz, split)
    slopes = np.atleast_2d(g.slope)
    square = weights.shape[0] == weights.shape[1]
    if square:
        carriers = [s[:, None] * weights for s in slopes]
        rho = np.array([covariance_map_growth(b, nz) for b in carriers])
    else:
        rho = summary_rho
    worst = int(np.argmax(rho))
    growth = _growth(rho[worst])
    limit = math.inf
    if growth == "bounded":
        limit = (float(np.mean(np.diag(covariance_map_limit(carriers[worst], nz, covariance[worst]))))
                 if square else summary_limits(worst))
    summary_worst = int(np.argmax(summary_rho))
    summary_limit = summary_limits(summary_worst) if _growth(summary_rho[summary_worst]) == "bounded" else math.inf
    slope = np.sqrt(g.slope_sq_mean)
    max_slope = np.divide(slope, np.sqrt(np.maximum(rho, 0.0)), out=np.full(np.broadcast(slope, rho).shape, math.inf),
                          where=rho > 0)  # only where rho > 0: no 0/0 for layers without growth
    return LayerRule(
        layer=g.layer,
        size=g.size,
        uncorrelated_gain=float(np.max(g.uncorrelated_gain)),
        correlated_gain=float(np.max(g.correlated_gain)),
        multiplicative_gain=float(np.max(g.signal_power)),
        accumulation_gain=float(rho[worst]),
        uncorrelated_gain_mean=float(np.mean(g.uncorrelated_gain)),
        correlated_gain_mean=float(np.mean(g.correlated_gain)),
        multiplicative_gain_mean=float(np.mean(g.signal_power)),
        accumulation_gain_mean=float(np.mean(rho)),
        growth=growth,
        limit=limit,
        slope=float(np.max(slope)),
        max_slope=float(np.min(max_slope)),
        summary_gain=float(summary_rho[summary_worst]),
        summary_limit=summary_limit,
        growth_basis="covariance map" if square else "design summary",
    )


def _summary(g: LayerGains, nz: Noise, split: np.ndarray):
    """Design summary: the spectral radius of the 2 x 2 map of the (u, c)
    split for every input, and a function giving the deep limit for one."""
    # Own multiplicative noise: diagonal x (1 + D_MU + D_MC), off-diagonal x (1 + D_MC).
    amplify = np.array([[1.0 + nz.MU + nz.MC, nz.MU], [0.0, 1.0 + nz.MC]])
    transfer = amplify @ g.transfer  # (B, 2, 2): the gains are computed for a batch
    transfer = transfer.reshape((-1, 2, 2))
    rho = np.max(np.abs(np.linalg.eigvals(transfer)), axis=-1)

    def limit(i: int) -> float:
        return float(np.linalg.solve(np.eye(2) - transfer[i], split[i]).sum())

    return rho, limit


def _growth(rho: float) -> str:
    if abs(rho - 1.0) <= MARGINAL_TOLERANCE:
        return "linear"
    return "bounded" if rho < 1.0 else "exponential"


def _sensitivity(net: Network, layer_noise: Sequence[Noise], linear: Prediction):
    """d V_L / d D_{t,k} and the contributions D d V_L / d D / V_L, each (L, 4).

    ``linear``: the batched linear-response :func:`predict` at ``layer_noise``
    with ``full_covariance=True``.  One backward (adjoint) pass of the
    covariance recursion, exact (uncorrelated multiplicative noise on the
    propagated noise of hidden layers included).  Per input, with
    T_k = J_k W_k and c_k = 1 + D_MC,k, layer k maps

        Sigma_k = c_k T_k Sigma_{k-1} T_k^T + D_MU,k Diag(diag(T_k Sigma_{k-1} T_k^T)) + Q_k

    ("post"; "pre" puts J_k around the noise: Sigma_k = J_k (c_k S + D_MU,k
    Diag(diag S) + Q_k) J_k with S = W_k Sigma_{k-1} W_k^T).  The output's
    mean variance is V_L = tr(A_L Sigma_L) with A_L = I / N_L; the adjoint
    A_{k-1} = W_k^T (c_k H_k + D_MU,k Diag(diag H_k)) W_k, H_k = J_k A_k J_k
    (both placements), gives V_L = tr(A_k Sigma_k) + (what layers above k
    add), and Sigma_k is affine in each intensity of layer k, so
    d V_L / d D_{t,k} = tr(E_k dQ_k / dD_t) + (the propagated-noise part), with
    E_k = A_k ("post") or H_k ("pre") and a_k = m_k or zbar_k:

        AU: tr E_k        AC: 1^T E_k 1
        MU: sum_i E_k,ii a_k,i^2 + tr(W_k^T Diag(diag H_k) W_k Sigma_{k-1})
        MC: a_k^T E_k a_k + tr(W_k^T H_k W_k Sigma_{k-1})

    O(N^3) per layer and input: about one more propagation, instead of 4 L.
    V_L and the derivatives are batch means.
    """
    covariances = linear.cov
    adjoint = np.broadcast_to(np.eye(net.sizes[-1]) / net.sizes[-1], covariances[-1].shape)
    sensitivity = np.zeros((net.depth, len(NOISE_TYPES)))
    for k in range(net.depth, 0, -1):
        weight, nz = net.weights[k - 1], layer_noise[k - 1]
        zbar = linear.mean[k - 1] @ weight.T + net.biases[k - 1]
        slope = net.activations[k - 1].derivative(zbar)
        inner = slope[:, :, None] * adjoint * slope[:, None, :]  # H_k = J A_k J
        at_noise, signal = (adjoint, linear.mean[k]) if nz.placement == "post" else (inner, zbar)
        diagonal = np.diagonal(at_noise, axis1=1, axis2=2)
        row = [np.trace(at_noise, axis1=1, axis2=2), at_noise.sum(axis=(1, 2)),
               np.sum(diagonal * signal**2, axis=1), np.einsum("bi,bij,bj->b", signal, at_noise, signal)]
        if k > 1:  # the noise reaching layer k (Sigma_0 = 0)
            carried = weight.T @ inner @ weight
            spread = weight.T @ (np.diagonal(inner, axis1=1, axis2=2)[:, :, None] * weight)
            row[2] = row[2] + np.sum(spread * covariances[k - 1], axis=(1, 2))
            row[3] = row[3] + np.sum(carried * covariances[k - 1], axis=(1, 2))
            adjoint = (1.0 + nz.MC) * carried + nz.MU * spread
        sensitivity[k - 1] = np.mean(row, axis=1)
    base = float(np.mean(linear.noise_var[-1]))
    intensities = np.array([[getattr(nz, name) for name in NOISE_TYPES] for nz in layer_noise])
    contribution = intensities * sensitivity / base if base > 0 else np.zeros_like(sensitivity)
    return sensitivity, contribution


def _recommendations(report: DesignReport) -> list[str]:
    advice = _slope_advice([rule for rule in report.judged_layers if not rule.bounded])
    output = report.layers[-1]
    if len(report.layers) > 1 and not output.bounded:
        advice.append(f"the output layer multiplies the noise it receives by up to {output.accumulation_gain:.3g} "
                      f"(gain >= 1); it feeds no further layer, so this counts in the output SNR, "
                      f"not as accumulation")
    if not report.contribution.any():
        return advice or ["the network is noise-free: no noise reaches the output"]
    kind, layer = report.dominant_type, report.dominant_layer
    share_kind = report.contribution.sum(axis=0)[NOISE_TYPES.index(kind)]
    share_layer = report.contribution.sum(axis=1)[layer - 1]
    text = (f"{NOISE_NAMES[kind]} noise dominates ({share_kind:.0%} of the output noise); "
            f"layer {layer}'s noise contributes most ({share_layer:.0%})")
    if report.max_noise is not None:
        now = max(getattr(nz, kind) for nz in report.noise)
        text += f"; the budget is {kind} <= {report.max_noise[kind]:.3g} on every layer (now {now:.3g})"
    advice.append(text)
    if report.meets_target is False:
        budget = report.max_noise[kind]
        if budget > 0:
            advice.append(f"output SNR {report.output_snr_db:.2f} dB misses the target "
                          f"{report.target_snr_db:.2f} dB: reduce {kind} to below {budget:.3g}")
        else:
            advice.append(f"output SNR {report.output_snr_db:.2f} dB misses the target "
                          f"{report.target_snr_db:.2f} dB even without {kind} noise: scale all "
                          f"intensities by {report.max_scale:.3g} or less")
    if kind in ("MU", "MC"):
        advice.append("multiplicative noise scales with the signal: a stronger signal does not raise "
                      "the SNR; only a lower multiplicative intensity does")
    return advice


def _slope_advice(unbounded: Sequence[LayerRule]) -> list[str]:
    """One line per group of unbounded layers that need the same change."""
    groups: dict[tuple, list[int]] = {}
    for rule in unbounded:
        key = (f"{rule.slope:.3g}", f"{rule.max_slope:.3g}",
               f"{1 / math.sqrt(rule.accumulation_gain):.3g}", f"{rule.accumulation_gain:.3g}", rule.growth)
        groups.setdefault(key, []).append(rule.layer)
    advice = []
    for (slope, max_slope, weight_scale, gain, growth), layers in groups.items():
        which = f"layer {layers[0]}" if len(layers) == 1 else "layers " + ", ".join(map(str, layers))
        advice.append(
            f"lower the slope of {which} from {slope} to below {max_slope} (or scale the weights by "
            f"less than {weight_scale}): a noise gain of {gain} >= 1 makes the noise grow {growth}ly with depth"
        )
    return advice


@dataclass(frozen=True)
class AccumulationMap:
    """Output noise of symmetric linear networks over slope and depth.

    The family: w = 1/N, zero biases, f(z) = s z + (1 - s), input x = 1, so
    that every layer's mean is 1 whatever the slope and depth.

    Attributes
    ----------
    slopes : ndarray (S,)
    depths : ndarray (L,)
        1..max_depth.
    noise_var : ndarray (S, L)
        Mean noise variance of the last layer of a network of that depth
        (output units^2) for the given noise on every layer.
    width : int
    noise : Noise
    """

    slopes: np.ndarray
    depths: np.ndarray
    noise_var: np.ndarray
    width: int
    noise: Noise


@dataclass(frozen=True)
class BudgetCurves:
    """Noise budgets of symmetric linear networks versus depth.

    The family of :class:`AccumulationMap` (mean 1 in every layer).

    Attributes
    ----------
    depths : ndarray (L,)
    budgets : dict
        {type: ndarray (L,)} largest intensity of each type (the same on
        every layer, the other types as in ``noise``) meeting the target.
    width : int
    slope : float
    target_snr_db : float
    noise : Noise
    """

    depths: np.ndarray
    budgets: dict
    width: int
    slope: float
    target_snr_db: float
    noise: Noise


def _symmetric_linear(depth: int, width: int, slope: float) -> Network:
    """w = 1/N and f(z) = s z + (1 - s): with input 1 every layer's mean stays 1,
    so depth and slope change the noise only, not the signal."""
    width = positive_int("width", width)
    return Network.symmetric(depth, width, 1.0 / width, 0.0, Linear(slope=slope, offset=1.0 - slope))


def symmetric_accumulation(slopes, max_depth: int, width: int, noise: Noise) -> AccumulationMap:
    """Accumulated output noise of symmetric linear networks over slope x depth.

    Parameters
    ----------
    slopes : array_like(float, ndim=1)
        Activation slopes s (> 0).
    max_depth : int
        Depths 1..max_depth (layer k of the deepest network is the output of
        the network of depth k).
    width : int
        N neurons per layer (family of :class:`AccumulationMap`).
    noise : Noise
        The same on every layer.
    """
    slopes = np.asarray(slopes, dtype=float)
    if slopes.ndim != 1 or slopes.size == 0 or not np.all(np.isfinite(slopes)) or np.any(slopes <= 0):
        raise ValueError(f"slopes must be a non-empty 1-D array of finite values > 0, got {slopes!r}")
    if not isinstance(noise, Noise):
        raise ValueError(f"noise must be a Noise, got {type(noise).__name__}")
    max_depth = positive_int("max_depth", max_depth)
    width = positive_int("width", width)
    noise_var = np.empty((slopes.size, max_depth))
    for i, s in enumerate(slopes):
        result = predict(_symmetric_linear(max_depth, width, s), noise, np.ones(width))
        noise_var[i] = result.noise_var[1:]
    return AccumulationMap(slopes, np.arange(1, max_depth + 1), noise_var, width, noise)


def symmetric_budgets(depths, width: int, slope: float, target_snr_db: float, noise: Noise) -> BudgetCurves:
    """Budget of each noise type versus depth for symmetric linear networks.

    Parameters
    ----------
    depths : array_like(int, ndim=1)
        Depths L >= 1.
    width : int
        N neurons per layer (family of :class:`AccumulationMap`).
    slope : float
        Activation slope s of every layer.
    target_snr_db : float
        Target output SNR in dB.
    noise : Noise
        The intensities of the other types (the same on every layer).
    """
    depths = np.asarray(depths)
    if depths.ndim != 1 or depths.size == 0 or depths.dtype.kind not in "iu" or np.any(depths < 1):
        raise ValueError(f"depths must be a non-empty 1-D array of integers >= 1, got {depths!r}")
    if not isinstance(noise, Noise):
        raise ValueError(f"noise must be a Noise, got {type(noise).__name__}")
    budgets = {t: np.empty(depths.size) for t in NOISE_TYPES}
    for i, depth in enumerate(depths):
        net = _symmetric_linear(int(depth), width, slope)
        for t in NOISE_TYPES:
            budgets[t][i] = noise_budget(net, noise, np.ones(width), target_snr_db, t)
    return BudgetCurves(depths, budgets, width, float(slope), float(target_snr_db), noise)


def design_chart(
    path: "str | os.PathLike",
    width: int,
    noise: Noise,
    target_snr_db: "float | None" = None,
    *,
    slope: float = 0.9,
    max_depth: int = 30,
    slopes=None,
    mark: "tuple[float, int] | None" = None,
    overwrite: bool = False,
) -> Path:
    """Write the design charts of the symmetric family to an image file.

    Parameters
    ----------
    path : str or path
        Image file (format from the suffix, e.g. .png); written atomically,
        an existing file only replaced with ``overwrite=True``.
    width : int
        N neurons per layer (family of :class:`AccumulationMap`).
    noise : Noise
        Intensities on every layer.
    target_snr_db : float, optional
        With a target, a second panel shows the budget of each noise type
        versus depth for activation slope ``slope``.
    slope : float, default 0.9
    max_depth : int, default 30
    slopes : array_like, optional
        Slopes of the map (default 0.5 .. 1.3).
    mark : (slope, depth), optional
        A design to mark on the map.

    Returns
    -------
    Path
    """
    from ..plotting import plot_design_chart, save_figure

    slopes = np.linspace(0.5, 1.3, 81) if slopes is None else slopes
    accumulation = symmetric_accumulation(slopes, max_depth, width, noise)
    budgets = None
    if target_snr_db is not None:
        depths = np.unique(np.linspace(1, max_depth, min(max_depth, 15)).round().astype(int))
        budgets = symmetric_budgets(depths, width, slope, target_snr_db, noise)
    return save_figure(plot_design_chart(accumulation, budgets, mark), path, overwrite=overwrite)
