"""Verification of the analytic prediction against plain Monte Carlo sampling.

:func:`verify` holds :func:`~noiseprop.propagation.predict` against
:func:`~noiseprop.simulation.montecarlo.simulate` with the *plain* estimator (the
variance-reduced one leans on the linear-response values, so it could not
reveal an error in them), neuron by neuron and layer by layer.

The verdict asks a practical question: does the prediction deviate from the
truth by more than a stated tolerance?  For every comparison (the mean and
the variance of every neuron, and every layer's per-neuron average variance
``noise_var``) with deviation d = simulated - predicted, standard error se and
tolerance t,

    the comparison fails  when  (|d| - t) / se > z

with z the normal quantile that makes the probability of any false failure
``false_failure`` (default 1e-6) after a Bonferroni correction over all the
comparisons: z = Phi^-1(1 - false_failure / (2 n)).  So a layer agrees unless the
data show, at that probability, that |true deviation| > t.  The tolerances:

- variances (each neuron's and each layer's Var): t = ``rtol`` x predicted
  (default 5 %);
- means: t = ``mean_tol`` x the neuron's predicted noise standard deviation
  (default 0.2 sd).

A 1e-9 relative floor (floating-point rounding of the kernels) is added to
every t.  ``strict=True`` sets both tolerances to 0: the purely statistical
test |d| <= z se.  A deviation beyond z se but within t is reported as
"resolved but within tolerance".  Affine networks are predicted exactly, so
they pass even the strict test at any noise level.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..model import Network
from ..noise import NoiseSpec
from ..plotting import figure, save_figure
from ..propagation import DEFAULT_METHOD, Prediction, predict
from ..utils.jsonutil import finite_or_none
from ..utils.tables import format_estimate, format_table
from ..utils.validation import open_probability
from .montecarlo import Z_95, Simulation, _batch_mean_stderr, simulate
from .tolerances import DEFAULT_MEAN_TOL, DEFAULT_RTOL, FLOAT_RTOL

__all__ = ["verify", "VerificationReport", "FLOAT_RTOL", "DEFAULT_RTOL", "DEFAULT_MEAN_TOL",
           "AGREE", "WITHIN_TOLERANCE", "FAIL"]

#: Verdicts of one quantity (means, variances, layer Var) of a layer.
AGREE, WITHIN_TOLERANCE, FAIL = "ok", "resolved but within tolerance", "FAIL"
#: Short forms of the verdicts for the table.
_SHORT = {AGREE: "ok", WITHIN_TOLERANCE: "within tol.", FAIL: "FAIL"}


class VerificationReport:
    """Predicted vs simulated statistics of every layer, with verdicts.

    Attributes
    ----------
    prediction : Prediction
    simulation : Simulation
        The plain Monte Carlo run.
    false_failure : float
        Probability that a correct prediction (within the tolerances) fails
        anywhere (Bonferroni).
    rtol : float
        Relative tolerance of every variance (0 when strict).
    mean_tol : float
        Tolerance of every mean, in units of the neuron's predicted noise
        standard deviation (0 when strict).
    strict : bool
        Whether the tolerances are 0 (purely statistical test).
    comparisons : int
        Number of comparisons: B x sum_k (2 N_k + 1) over layers 1..L.
    z : float
        Critical value: a comparison fails when (|deviation| - tolerance) /
        standard error exceeds it.
    layers : list of dict
        One row per layer k = 1..L (batch-averaged where B > 1): ``layer``,
        ``size``, ``predicted_var`` and ``simulated_var`` (the per-neuron
        average variance), ``var_stderr``, ``relative_error``
        (simulated/predicted - 1), ``error_estimate`` (the prediction's
        estimate of its relative error, ``Prediction.error_estimate``, largest
        over the batch; None without one, e.g. for "linear"),
        ``z_layer`` (its z-score, no tolerance),
        ``worst_z_mean``, ``worst_z_var`` (the largest |deviation| /
        standard error over the layer's neurons), ``worst_mean_deviation``
        (largest |deviation| of a neuron mean in units of its predicted noise
        sd), ``worst_var_deviation`` (largest relative |deviation| of a
        neuron variance), ``excess_z_mean``, ``excess_z_var``,
        ``excess_z_layer`` (largest (|deviation| - tolerance) / standard
        error: the test statistics), the verdicts ``means``, ``variances``
        and ``layer_var`` (each one of "ok", "resolved but within
        tolerance", "FAIL"), ``failed_neurons`` and ``passed``.
    passed : bool
        True when no comparison of any layer failed.
    affine : bool
        Whether the network is affine (the prediction is then exact).
    """

    def __init__(self, prediction: Prediction, simulation: Simulation, false_failure: float, affine: bool,
                 *, rtol: float = DEFAULT_RTOL, mean_tol: float = DEFAULT_MEAN_TOL, strict: bool = False):
        from scipy import special  # not scipy.stats: its import alone takes ~2 s

        self.prediction = prediction
        self.simulation = simulation
        self.false_failure = false_failure
        self.strict = bool(strict)
        self.rtol = 0.0 if strict else _tolerance("rtol", rtol)
        self.mean_tol = 0.0 if strict else _tolerance("mean_tol", mean_tol)
        sizes = prediction.sizes
        inputs = np.atleast_2d(prediction.mean[0]).shape[0]
        self.comparisons = inputs * sum(2 * n + 1 for n in sizes[1:])
        self.z = float(-special.ndtri(false_failure / (2 * self.comparisons)))  # = norm.isf
        self.layers = [self._layer_row(k) for k in range(1, len(sizes))]
        self.passed = all(row["passed"] for row in self.layers)
        self.affine = affine

    def _layer_row(self, k: int) -> dict:
        pred, sim = self.prediction, self.simulation
        sd = np.sqrt(pred.var[k])
        means = _Comparison(sim.mean[k], pred.mean[k], sim.mean_stderr[k], self.mean_tol * sd,
                         FLOAT_RTOL * (np.abs(pred.mean[k]) + sd), self.z)
        variances = _Comparison(sim.var[k], pred.var[k], sim.var_stderr[k], self.rtol * pred.var[k],
                             FLOAT_RTOL * pred.var[k], self.z)
        predicted, simulated = np.atleast_1d(pred.noise_var[k]), np.atleast_1d(sim.noise_var[k])
        stderr = np.atleast_1d(sim.noise_var_stderr[k])
        layer = _Comparison(simulated, predicted, stderr, self.rtol * predicted, FLOAT_RTOL * predicted, self.z)
        predicted_mean, simulated_mean = float(predicted.mean()), float(simulated.mean())
        estimate = None if pred.error_estimate is None else float(np.max(pred.error_estimate[k]))
        return {
            "layer": k,
            "size": sim.sizes[k],
            "predicted_var": predicted_mean,
            "simulated_var": simulated_mean,
            "var_stderr": _batch_mean_stderr(stderr),
            "relative_error": simulated_mean / predicted_mean - 1.0 if predicted_mean > 0 else 0.0,
            "error_estimate": estimate,
            "z_layer": layer.signed_worst_z,
            "worst_z_mean": means.worst_z,
            "worst_z_var": variances.worst_z,
            "worst_mean_deviation": _worst_ratio(means.deviation, sd),
            "worst_var_deviation": _worst_ratio(variances.deviation, pred.var[k]),
            "excess_z_mean": means.worst_excess,
            "excess_z_var": variances.worst_excess,
            "excess_z_layer": layer.worst_excess,
            "means": means.verdict,
            "variances": variances.verdict,
            "layer_var": layer.verdict,
            "failed_neurons": means.failed + variances.failed,
            "passed": means.failed + variances.failed + layer.failed == 0,
        }

    def table(self) -> str:
        """Plain-text table, one line per layer, with one verdict column per
        quantity (layer Var, neuron means, neuron variances), and the verdict."""
        estimated = self.prediction.error_estimate is not None
        headers = ["layer", "size", "predicted Var", "simulated Var", "+-95%", "rel. error",
                   *(["est. error"] if estimated else []), "layer Var",
                   "worst mean dev. [sd]", "means", "worst var dev.", "variances"]
        rows = [
            [str(r["layer"]), str(r["size"]), f"{r['predicted_var']:.5g}", f"{r['simulated_var']:.5g}",
             f"{Z_95 * r['var_stderr']:.2g}", f"{r['relative_error']:+.2%}",
             *([format_estimate(r["error_estimate"])] if estimated else []), _SHORT[r["layer_var"]],
             f"{r['worst_mean_deviation']:.3f}", _SHORT[r["means"]], f"{r['worst_var_deviation']:.2%}",
             _SHORT[r["variances"]]]
            for r in self.layers
        ]
        verdict = "all layers agree" if self.passed else "the prediction and the simulation DISAGREE"
        notes = [
            f"Var: per-neuron average variance; {self.simulation.samples} plain Monte Carlo samples, "
            f"seed {self.simulation.seed}; worst dev.: largest |simulated - predicted| of a neuron's mean "
            f"(in noise sd) and variance (relative)"
            + ("; est. error: the prediction's own estimate of its layer Var error." if estimated else "."),
            self._rule(),
        ]
        if any(WITHIN_TOLERANCE in (r["means"], r["variances"], r["layer_var"]) for r in self.layers):
            notes.append(f"within tol.: {WITHIN_TOLERANCE} (the samples resolve the deviation, "
                         "but it is smaller than the tolerance).")
        if not self.passed and not self.affine:
            error = ("linearisation error of the first-order prediction" if self.prediction.method == "linear"
                     else f"approximation error of the {self.prediction.method} prediction")
            notes.append(f"The network is nonlinear: deviations beyond the tolerance (FAIL) are the {error} "
                         f"(it shrinks with the noise intensity).")
        return "\n".join([format_table(headers, rows), *notes, f"verdict: {verdict}"])

    def _rule(self) -> str:
        """The verdict rule in words, with the numbers of this report."""
        tail = (f"({self.comparisons} comparisons, false-failure probability {self.false_failure:g})")
        if self.strict:
            return (f"Strict: fail when |simulated - predicted| > {self.z:.2f} standard errors for the mean and "
                    f"variance of any neuron or a layer's Var {tail}.")
        return (f"Tolerance: {self.rtol:.3g} (relative) on every variance and layer Var, {self.mean_tol:.3g} "
                f"noise sd on every mean; fail when |simulated - predicted| exceeds the tolerance by more "
                f"than {self.z:.2f} standard errors {tail}.")

    def to_dict(self) -> dict:
        """JSON-ready form: verdict, tolerances and the per-layer rows."""
        return finite_or_none({
            "passed": self.passed,
            "affine": self.affine,
            "samples": self.simulation.samples,
            "seed": self.simulation.seed,
            "method": self.prediction.method,
            "strict": self.strict,
            "rtol": self.rtol,
            "mean_tol": self.mean_tol,
            "false_failure": self.false_failure,
            "comparisons": self.comparisons,
            "z": self.z,
            "layers": [dict(row) for row in self.layers],
        })

    def plot(self, path: "str | os.PathLike", overwrite: bool = False) -> Path:
        """Variance vs layer: the analytic line and the Monte Carlo points with
        95 % error bars (left); per layer the test statistic (|deviation| -
        tolerance) / standard error of the worst neuron mean and variance and
        of the layer's Var, against the critical value (right).  Written
        atomically; see :func:`noiseprop.plotting.save_figure`."""
        fig, (ax_var, ax_z) = figure(1, 2, size=(10.0, 4.0))
        k = np.array([r["layer"] for r in self.layers])
        predicted = np.array([r["predicted_var"] for r in self.layers])
        simulated = np.array([r["simulated_var"] for r in self.layers])
        stderr = np.array([r["var_stderr"] for r in self.layers])
        method = "linear response" if self.prediction.method == "linear" else f"{self.prediction.method} method"
        ax_var.plot(k, predicted, "-", color="tab:blue", label=f"analytic ({method})")
        ax_var.errorbar(k, simulated, yerr=Z_95 * stderr, fmt="o", color="black", ms=4, capsize=3,
                        label=f"Monte Carlo, {self.simulation.samples} samples (95 %)")
        if np.all(predicted > 0):
            ax_var.set_yscale("log")
        ax_var.set(xlabel="layer k", ylabel="mean noise variance  Var[y]", xticks=k)
        ax_var.legend()
        width = 0.27
        for offset, key, label, color in ((-width, "excess_z_mean", "mean, worst neuron", "tab:orange"),
                                          (0.0, "excess_z_var", "variance, worst neuron", "tab:purple"),
                                          (width, "excess_z_layer", "layer Var", "tab:blue")):
            values = np.array([r[key] for r in self.layers], dtype=float)
            ax_z.bar(k + offset, np.clip(values, 0.0, 10 * self.z), width, color=color, label=label)
        ax_z.axhline(self.z, color="tab:red", lw=1.2, ls="--", label=f"critical value {self.z:.2f}")
        ax_z.set_ylim(0, 1.45 * max(ax_z.get_ylim()[1], self.z))
        ylabel = "|deviation| / std. error" if self.strict else "(|deviation| - tolerance) / std. error"
        ax_z.set(xlabel="layer k", ylabel=ylabel, xticks=k,
                 title="all layers agree" if self.passed else "DISAGREEMENT above the dashed line")
        ax_z.legend(loc="upper center", ncol=2)
        return save_figure(fig, path, overwrite=overwrite)

    def __repr__(self) -> str:
        return (f"VerificationReport(passed={self.passed}, layers={len(self.layers)}, "
                f"samples={self.simulation.samples}, rtol={self.rtol:g}, mean_tol={self.mean_tol:g})")


class _Comparison:
    """Deviations, z-scores and verdict of one quantity of one layer (arrays
    of one shape: neurons, or inputs x neurons).

    A comparison is *resolved* when |d| > z se + floor and *fails* when
    |d| - tolerance > z se + floor, or when d is not a finite number (a
    prediction or simulation that overflowed or is nan can never agree).  A
    deviation without a standard error (a noise-free neuron) has z = 0 when
    within the floor, else inf.
    """

    def __init__(self, simulated, predicted, stderr, tolerance, floor, z_critical):
        self.deviation = np.asarray(simulated, dtype=float) - predicted
        size = np.abs(self.deviation)
        invalid = ~np.isfinite(size)
        with np.errstate(invalid="ignore"):
            resolved = (size > z_critical * stderr + floor) | invalid
            failed = (size - tolerance > z_critical * stderr + floor) | invalid
        with np.errstate(divide="ignore", invalid="ignore"):
            self.z = np.where(stderr > 0, self.deviation / stderr, np.where(resolved, np.inf, 0.0))
            self.excess = np.where(stderr > 0, (size - tolerance) / stderr, np.where(failed, np.inf, 0.0))
        self.failed = int(np.sum(failed))
        self.verdict = FAIL if self.failed else (WITHIN_TOLERANCE if np.any(resolved) else AGREE)

    @property
    def worst_z(self) -> float:
        return float(np.max(np.abs(self.z)))

    @property
    def signed_worst_z(self) -> float:
        flat = np.ravel(self.z)
        return float(flat[np.argmax(np.abs(flat))])

    @property
    def worst_excess(self) -> float:
        return float(np.max(self.excess))



def _worst_ratio(deviation: np.ndarray, scale: np.ndarray) -> float:
    """Largest |deviation| / scale over the entries with scale > 0 (0 if none)."""
    scale = np.broadcast_to(scale, np.shape(deviation))
    positive = scale > 0
    if not np.any(positive):
        return 0.0
    return float(np.max(np.abs(deviation[positive]) / scale[positive]))


def _tolerance(name: str, value) -> float:
    """A tolerance: a finite number >= 0, or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def verify(
    net: Network,
    noise: NoiseSpec,
    x,
    samples: int = 100_000,
    seed: int = 0,
    *,
    rtol: float = DEFAULT_RTOL,
    mean_tol: float = DEFAULT_MEAN_TOL,
    strict: bool = False,
    false_failure: float = 1e-6,
    method: str = DEFAULT_METHOD,
    chunk_size: "int | None" = None,
    progress: "bool | None" = None,
    dtype: str = "float64",
) -> VerificationReport:
    """Hold the analytic prediction (``method``) against plain Monte Carlo sampling.

    A layer agrees unless the samples show, at the false-failure probability,
    that a deviation exceeds its tolerance (see the module docstring).

    Parameters
    ----------
    net, noise, x :
        As for :func:`~noiseprop.propagation.predict`.
    samples : int, default 100_000
        Monte Carlo realisations (plain estimator).
    seed : int, default 0
    rtol : float, default 0.05
        Tolerance of every neuron's variance and every layer's mean noise
        variance, relative to the predicted value.
    mean_tol : float, default 0.2
        Tolerance of every neuron's mean, in units of its predicted noise
        standard deviation.
    strict : bool, default False
        Tolerances 0: fail on any deviation the samples resolve.
    false_failure : float, default 1e-6
        Probability that a prediction within the tolerances fails any
        comparison (Bonferroni over all neurons, layers and inputs).
    method : {"mixture", "linear", "moments"}, default :data:`~noiseprop.propagation.DEFAULT_METHOD`
        The prediction method held against the simulation (see
        :func:`~noiseprop.propagation.predict`).
    chunk_size, progress :
        Passed to :func:`~noiseprop.simulation.montecarlo.simulate`.
    dtype : {"float64", "float32", "auto"}, default "float64"
        The Monte Carlo engine (see :func:`~noiseprop.simulation.montecarlo.simulate`).
        The false-failure probability holds for float64; float32 adds a rounding
        bias (with "auto", one provably below a tenth of every standard error,
        which can raise the false-failure probability by up to a factor of about
        two at the default threshold): use it for quick checks.

    Returns
    -------
    VerificationReport
        ``.passed``, ``.layers``, ``.table()``, ``.to_dict()``, ``.plot(path)``.

    Examples
    --------
    >>> from noiseprop import Network, Noise, verify
    >>> net = Network.symmetric(depth=2, width=3, weight=0.5, activation="linear(slope=0.9)")
    >>> verify(net, Noise(AU=1e-2, MC=1e-2), [1.0, 0.5, 0.2], samples=20_000).passed
    True
    """
    open_probability("false_failure", false_failure)
    rtol, mean_tol = _tolerance("rtol", rtol), _tolerance("mean_tol", mean_tol)
    prediction = predict(net, noise, x, method=method)
    simulation = simulate(net, noise, x, samples, seed, control_variate=False,
                          chunk_size=chunk_size, progress=progress, dtype=dtype)
    return VerificationReport(prediction, simulation, float(false_failure), net.is_affine,
                              rtol=rtol, mean_tol=mean_tol, strict=strict)
