"""Verification of the analytic prediction against plain Monte Carlo sampling.

:func:`verify` holds :func:`~noiseprop.propagation.predict` against
:func:`~noiseprop.simulation.montecarlo.simulate` with the *plain* estimator (the
variance-reduced one leans on the linear-response values, so it could not
reveal an error in them), neuron by neuron and layer by layer.

The tolerance separates sampling error from model error.  Every comparison
(the mean and the variance of every neuron, and every layer's per-neuron
average variance ``noise_var``) passes when

    |simulated - predicted| <= z * standard error  (+ a 1e-9 relative floor
                                                    for floating-point rounding)

with z the normal quantile that makes the probability of any false failure
``false_failure`` (default 1e-6) after a Bonferroni correction over all the
comparisons.  For affine networks the prediction is exact, so every layer
must pass at any noise level; for nonlinear networks the report shows the
linearisation error (the relative deviation of ``noise_var`` and its z-score)
instead of hiding it in a wide tolerance.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import stats

from ..model import Network
from ..noise import NoiseSpec
from ..plotting import figure, save_figure
from ..propagation import Prediction, predict
from ..utils.jsonutil import finite_or_none
from ..utils.tables import format_table
from .montecarlo import Z_95, Simulation, _batch_mean_stderr, simulate

__all__ = ["verify", "VerificationReport", "FLOAT_RTOL"]

#: Relative floor of every tolerance: the rounding of the compiled kernels
#: (e.g. exp) against NumPy/SciPy, far below any sampling error.
FLOAT_RTOL = 1e-9


class VerificationReport:
    """Predicted vs simulated statistics of every layer, with a verdict.

    Attributes
    ----------
    prediction : Prediction
    simulation : Simulation
        The plain Monte Carlo run.
    false_failure : float
        Probability that a correct prediction fails anywhere (Bonferroni).
    comparisons : int
        Number of comparisons: B x sum_k (2 N_k + 1) over layers 1..L.
    z : float
        Critical z-value of every comparison.
    layers : list of dict
        One row per layer k = 1..L (batch-averaged where B > 1): ``layer``,
        ``size``, ``predicted_var`` and ``simulated_var`` (the per-neuron
        average variance), ``var_stderr``, ``relative_error``
        (simulated/predicted - 1: the linearisation error when significant),
        ``z_layer`` (its z-score), ``worst_z_mean``, ``worst_z_var`` (the
        largest |deviation| / standard error over the layer's neurons),
        ``failed_neurons`` and ``passed``.
    passed : bool
        True when every comparison of every layer passed.
    affine : bool
        Whether the network is affine (the prediction is then exact).
    """

    def __init__(self, prediction: Prediction, simulation: Simulation, false_failure: float, affine: bool):
        self.prediction = prediction
        self.simulation = simulation
        self.false_failure = false_failure
        sizes = prediction.sizes
        inputs = np.atleast_2d(prediction.mean[0]).shape[0]
        self.comparisons = inputs * sum(2 * n + 1 for n in sizes[1:])
        self.z = float(stats.norm.isf(false_failure / (2 * self.comparisons)))
        self.layers = [self._layer_row(k) for k in range(1, len(sizes))]
        self.passed = all(row["passed"] for row in self.layers)
        self.affine = affine

    def _layer_row(self, k: int) -> dict:
        pred, sim, z = self.prediction, self.simulation, self.z
        z_mean, ok_mean = _z_scores(sim.mean[k], pred.mean[k], sim.mean_stderr[k],
                                    FLOAT_RTOL * (np.abs(pred.mean[k]) + np.sqrt(pred.var[k])), z)
        z_var, ok_var = _z_scores(sim.var[k], pred.var[k], sim.var_stderr[k], FLOAT_RTOL * pred.var[k], z)
        predicted, simulated = np.atleast_1d(pred.noise_var[k]), np.atleast_1d(sim.noise_var[k])
        stderr = np.atleast_1d(sim.noise_var_stderr[k])
        z_layer, ok_layer = _z_scores(simulated, predicted, stderr, FLOAT_RTOL * predicted, z)
        predicted_mean, simulated_mean = float(predicted.mean()), float(simulated.mean())
        failed = int(np.sum(~ok_mean) + np.sum(~ok_var))
        return {
            "layer": k,
            "size": sim.sizes[k],
            "predicted_var": predicted_mean,
            "simulated_var": simulated_mean,
            "var_stderr": _batch_mean_stderr(stderr),
            "relative_error": simulated_mean / predicted_mean - 1.0 if predicted_mean > 0 else 0.0,
            "z_layer": float(z_layer[np.argmax(np.abs(z_layer))]),
            "worst_z_mean": float(np.max(np.abs(z_mean))),
            "worst_z_var": float(np.max(np.abs(z_var))),
            "failed_neurons": failed,
            "passed": bool(failed == 0 and np.all(ok_layer)),
        }

    def table(self) -> str:
        """Plain-text table, one line per layer, and the verdict."""
        headers = ["layer", "size", "predicted Var", "simulated Var", "+-95%", "rel. error",
                   "z", "worst |z| mean", "worst |z| var", "verdict"]
        rows = [
            [str(r["layer"]), str(r["size"]), f"{r['predicted_var']:.5g}", f"{r['simulated_var']:.5g}",
             f"{Z_95 * r['var_stderr']:.2g}", f"{r['relative_error']:+.2%}", f"{r['z_layer']:+.2f}",
             f"{r['worst_z_mean']:.2f}", f"{r['worst_z_var']:.2f}", "ok" if r["passed"] else "FAIL"]
            for r in self.layers
        ]
        verdict = "all layers agree" if self.passed else "the prediction and the simulation DISAGREE"
        notes = [
            f"Var: per-neuron average variance; {self.simulation.samples} plain Monte Carlo samples, "
            f"seed {self.simulation.seed}.",
            f"Pass: |simulated - predicted| <= {self.z:.2f} standard errors for the mean and variance of "
            f"every neuron and each layer's Var ({self.comparisons} comparisons, false-failure "
            f"probability {self.false_failure:g}).",
        ]
        if not self.passed and not self.affine:
            error = ("linearisation error of the first-order prediction" if self.prediction.method == "linear"
                     else f"approximation error of the {self.prediction.method} prediction")
            notes.append(f"The network is nonlinear: deviations beyond the tolerance (neuron means or "
                         f"variances, or a layer's Var: rel. error) are the {error} "
                         f"(it shrinks with the noise intensity).")
        return "\n".join([format_table(headers, rows), *notes, f"verdict: {verdict}"])

    def to_dict(self) -> dict:
        """JSON-ready form: verdict, tolerance and the per-layer rows."""
        return finite_or_none({
            "passed": self.passed,
            "affine": self.affine,
            "samples": self.simulation.samples,
            "seed": self.simulation.seed,
            "false_failure": self.false_failure,
            "comparisons": self.comparisons,
            "z": self.z,
            "layers": [dict(row) for row in self.layers],
        })

    def plot(self, path: "str | os.PathLike", overwrite: bool = False) -> Path:
        """Variance vs layer: the analytic line and the Monte Carlo points with
        95 % error bars (left); per layer the largest |deviation| / standard
        error of the neurons' means and variances and of the layer's Var,
        against the tolerance (right).  Written atomically; see :func:`noiseprop.plotting.save_figure`."""
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
        for offset, key, label, color in ((-width, "worst_z_mean", "mean, worst neuron", "tab:orange"),
                                          (0.0, "worst_z_var", "variance, worst neuron", "tab:purple"),
                                          (width, "z_layer", "layer Var", "tab:blue")):
            values = np.abs([r[key] for r in self.layers])
            ax_z.bar(k + offset, np.minimum(values, 10 * self.z), width, color=color, label=label)
        ax_z.axhline(self.z, color="tab:red", lw=1.2, ls="--", label=f"tolerance {self.z:.2f}")
        ax_z.set_ylim(0, 1.45 * max(ax_z.get_ylim()[1], self.z))
        ax_z.set(xlabel="layer k", ylabel="|simulated - predicted| / std. error", xticks=k,
                 title="all layers agree" if self.passed else "DISAGREEMENT above the dashed line")
        ax_z.legend(loc="upper center", ncol=2)
        return save_figure(fig, path, overwrite=overwrite)

    def __repr__(self) -> str:
        return f"VerificationReport(passed={self.passed}, layers={len(self.layers)}, samples={self.simulation.samples})"


def _z_scores(simulated, predicted, stderr, floor, z_critical):
    """z-scores and pass flags of simulated vs predicted (arrays of one shape);
    a deviation without a standard error (a noise-free neuron) has z = 0 when
    within the floor, else inf."""
    difference = np.asarray(simulated) - predicted
    ok = np.abs(difference) <= z_critical * stderr + floor
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(stderr > 0, difference / stderr, np.where(ok, 0.0, np.inf))
    return z, ok


def verify(
    net: Network,
    noise: NoiseSpec,
    x,
    samples: int = 100_000,
    seed: int = 0,
    *,
    false_failure: float = 1e-6,
    method: str = "linear",
    chunk_size: "int | None" = None,
    progress: "bool | None" = None,
) -> VerificationReport:
    """Hold the analytic prediction (``method``) against plain Monte Carlo sampling.

    Parameters
    ----------
    net, noise, x :
        As for :func:`~noiseprop.propagation.predict`.
    samples : int, default 100_000
        Monte Carlo realisations (plain estimator).
    seed : int, default 0
    false_failure : float, default 1e-6
        Probability that a correct prediction fails any comparison
        (Bonferroni over all neurons, layers and inputs).
    method : {"linear", "moments"}, default "linear"
        The prediction method held against the simulation (see
        :func:`~noiseprop.propagation.predict`).
    chunk_size, progress :
        Passed to :func:`~noiseprop.simulation.montecarlo.simulate`.

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
    if not (isinstance(false_failure, (int, float)) and 0 < false_failure < 1):
        raise ValueError(f"false_failure must be a probability in (0, 1), got {false_failure!r}")
    prediction = predict(net, noise, x, method=method)
    simulation = simulate(net, noise, x, samples, seed, control_variate=False,
                          chunk_size=chunk_size, progress=progress)
    return VerificationReport(prediction, simulation, float(false_failure), net.is_affine)
