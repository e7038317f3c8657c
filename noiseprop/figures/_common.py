"""What every paper figure shares: output files, sample counts and the way
analytic predictions and Monte Carlo verifications are drawn.

Conventions of every figure: lines are analytic predictions, points with
error bars are Monte Carlo estimates (error bars: +-2 standard errors, about
95 %); intensities are variances; SNRs are power ratios shown in dB.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..plotting import render_figure
from ..utils.files import check_target, write_together
from ..utils.jsonutil import finite_or_none

__all__ = [
    "ERRORBAR_SE",
    "FigureOutput",
    "output_paths",
    "write_figure",
    "draw_analytic",
    "draw_monte_carlo",
    "draw_monte_carlo_interval",
    "legend_keys",
    "method_legend",
    "METHOD_STYLES",
    "mean_preserving_network",
    "NOISE_LINESTYLES",
    "NOISE_MARKERS",
    "NOISE_TITLES",
    "snr_db_stderr",
    "z_scores",
    "samples_for",
    "digits_test_set",
    "VERIFICATION_NOTE",
]

#: Error bars span this many standard errors either side (about 95 %).
ERRORBAR_SE = 2.0
#: Sentence that every caption ends with.
VERIFICATION_NOTE = "Lines: analytic prediction; points: Monte Carlo, error bars +-2 standard errors."


@dataclass
class FigureOutput:
    """The files one figure script wrote and its key numbers.

    Attributes
    ----------
    figure_id : str
        "F1" .. "F13".
    png : Path
        The figure.
    data : Path
        JSON with the caption, the settings, the key numbers and the plotted
        curves (so that every point can be checked or re-plotted).
    numbers : dict
        The key numbers (also stored in ``data``).
    """

    figure_id: str
    png: Path
    data: Path
    numbers: dict = field(default_factory=dict)


def samples_for(fast: bool, full: int, quick: int) -> int:
    """Monte Carlo realisations: ``quick`` in fast mode (tests), else ``full``."""
    return quick if fast else full


def digits_test_set(fast: bool, inputs_fast: int) -> tuple[np.ndarray, np.ndarray]:
    """The digits test set (inputs, labels); only its first ``inputs_fast`` in fast mode."""
    from ..io.datasets import load_digits

    _, _, X, y = load_digits()
    return (X[:inputs_fast], y[:inputs_fast]) if fast else (X, y)


def output_paths(outdir: "str | os.PathLike", stem: str) -> tuple[Path, Path]:
    """The PNG and JSON paths of the figure ``stem`` in ``outdir``."""
    outdir = Path(outdir)
    return outdir / f"{stem}.png", outdir / f"{stem}.json"


def write_figure(
    fig,
    outdir: "str | os.PathLike",
    stem: str,
    figure_id: str,
    record: dict,
    overwrite: bool = False,
) -> FigureOutput:
    """Write the figure (PNG) and its record (JSON) atomically and as one unit.

    Both files appear or neither (:func:`noiseprop.utils.files.write_together`):
    a run killed between the two renames leaves a record from which the next
    run removes the half-written unit.  ``record`` must hold ``"numbers"``
    (the key numbers); everything in it is stored, non-finite floats as ``null``.
    """
    png, data = output_paths(outdir, stem)
    for path in (png, data):  # before rendering: nothing is drawn for a refused target
        check_target(path, overwrite)
    image = render_figure(fig, "png")
    text = json.dumps(finite_or_none(_plain(record)), indent=1, allow_nan=False)
    write_together(
        [(png, lambda handle: handle.write(image)), (data, lambda handle: handle.write(text.encode()))],
        overwrite=overwrite,
    )
    return FigureOutput(figure_id, png, data, record["numbers"])


def _plain(value):
    """NumPy scalars and arrays as plain Python floats and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def draw_analytic(ax, x, y, color, label=None, ls="-", **kwargs):
    """An analytic prediction: a line."""
    return ax.plot(x, y, ls, color=color, lw=1.6, label=label, **kwargs)


def draw_monte_carlo(ax, x, y, stderr, color, label=None, marker="o", **kwargs):
    """A Monte Carlo estimate: points with +-2 s.e. error bars."""
    return ax.errorbar(
        x, y, yerr=ERRORBAR_SE * np.asarray(stderr), fmt=marker, color=color, ms=4,
        mfc="white", mew=1.2, elinewidth=1.2, capsize=2, label=label, **kwargs,
    )


def draw_monte_carlo_interval(ax, x, y, low, high, color, **kwargs):
    """A Monte Carlo estimate with error bars from ``low`` to ``high`` (e.g. a 95 % interval)."""
    # draw_monte_carlo spans ERRORBAR_SE "standard errors" either side
    half = np.abs(np.stack([low, high]) - np.asarray(y)) / ERRORBAR_SE
    return draw_monte_carlo(ax, x, y, half, color, **kwargs)


def legend_keys(ax, **kwargs):
    """Legend entries explaining lines (analytic) and points (Monte Carlo)."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color="0.3", lw=1.6, label="analytic"),
        Line2D([], [], color="0.3", marker="o", mfc="white", ls="none", label="Monte Carlo (±2 s.e.)"),
    ]
    return ax.legend(handles=handles, **kwargs)


def method_legend(ax, monte_carlo="Monte Carlo (±2 s.e.)", extra=(), **kwargs):
    """Legend keys for the two propagation methods (linear response solid,
    moments dashed), the Monte Carlo points and ``extra`` Line2D handles."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color="0.3", ls="-", label="analytic, linear response"),
        Line2D([], [], color="0.3", ls="--", label="analytic, moments"),
        Line2D([], [], color="0.3", marker="o", mfc="white", ls="none", label=monte_carlo),
        *extra,
    ]
    return ax.legend(handles=handles, **kwargs)


#: Line style of each propagation method of ``predict``.
METHOD_STYLES = {"linear": "-", "moments": "--"}


def snr_db_stderr(mean, mean_stderr, var, var_stderr):
    """Standard error of a neuron's SNR E[y]^2/Var[y] in dB (delta method).

    d(10 log10 SNR) = (10 / ln 10) * sqrt((2 dm/m)^2 + (dv/v)^2), treating the
    estimates of mean and variance as independent (exact for Gaussian outputs).
    """
    mean, var = np.asarray(mean, dtype=float), np.asarray(var, dtype=float)
    relative = np.hypot(2.0 * np.asarray(mean_stderr) / mean, np.asarray(var_stderr) / var)
    return 10.0 / math.log(10.0) * relative


def z_scores(estimate, stderr, predicted):
    """(Monte Carlo - prediction) / standard error, element-wise."""
    return (np.asarray(estimate) - np.asarray(predicted)) / np.asarray(stderr)


def mean_preserving_network(depth: int, width: int, slope: float, level: float = 1.0):
    """A symmetric linear network whose every neuron has mean ``level`` and slope ``slope``.

    Weights w = 1/N pass the mean on unchanged; the bias b = level (1 - s)/s
    puts the working point of f(z) = s z at z = level/s, so that f = level in
    every layer for the input level * ones.  Only the slope s then differs
    between members of the family, so that the noise they accumulate can be
    compared.

    Returns
    -------
    net : Network
    x : ndarray (width,)
        The input, every entry ``level``.
    """
    from ..activations import Linear
    from ..model import Network

    if not slope > 0:
        raise ValueError(f"slope must be > 0 for the mean-preserving family, got {slope}")
    net = Network.symmetric(depth, width, 1.0 / width, bias=level * (1.0 - slope) / slope,
                            activation=Linear(slope=slope))
    return net, np.full(width, float(level))


#: Line style and marker per noise type: additive solid, multiplicative dashed.
NOISE_LINESTYLES = {"AU": "-", "AC": "-", "MU": "--", "MC": "--"}
NOISE_MARKERS = {"AU": "o", "AC": "o", "MU": "s", "MC": "s"}
#: Panel title per noise type.
NOISE_TITLES = {
    "AU": "additive uncorrelated (AU)", "AC": "additive correlated (AC)",
    "MU": "multiplicative uncorrelated (MU)", "MC": "multiplicative correlated (MC)",
}
