"""Plotting: one house style and atomic figure output.

Figures are plain :class:`matplotlib.figure.Figure` objects, not managed by
pyplot: drawing them needs no display and leaves the user's pyplot state and
backend untouched (matplotlib is imported on first use, not with noiseprop).
Every figure function in noiseprop draws through :func:`figure` and writes
through :func:`save_figure`, so that files are written whole or not at all.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .utils.files import atomic_write, check_target

__all__ = [
    "STYLE", "NOISE_COLORS", "figure", "save_figure",
    "plot_accuracy_curve", "plot_walking_noise", "plot_noise_training",
    "plot_design_chart",
]

#: rc parameters of the house style.
STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

#: One colour per noise type, used by every figure.
NOISE_COLORS = {"AU": "tab:blue", "AC": "tab:orange", "MU": "tab:green", "MC": "tab:red"}


def figure(nrows: int = 1, ncols: int = 1, size=(6.0, 4.0), **kwargs):
    """A new (figure, axes) pair in the house style (a pyplot-free Figure)."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=size)
        axes = fig.subplots(nrows, ncols, **kwargs)
    for ax in getattr(axes, "flat", [axes]):
        ax.grid(True, alpha=STYLE["grid.alpha"])
    return fig, axes


def save_figure(fig, path: "str | os.PathLike", overwrite: bool = False) -> Path:
    """Write ``fig`` atomically (format from the suffix, e.g. .png, .pdf).

    Raises FileExistsError if ``path`` exists and ``overwrite`` is False.
    """
    path = check_target(path, overwrite)  # before rendering: a refused target costs nothing
    image = render_figure(fig, path.suffix.lstrip(".") or "png")
    return atomic_write(path, lambda handle: handle.write(image), overwrite=overwrite)


def render_figure(fig, fmt: str = "png") -> bytes:
    """The bytes of ``fig`` in format ``fmt`` (laid out in the noiseprop style)."""
    import io

    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format=fmt)
    return image.getvalue()


def _colormap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


# ------------------------------------------------------------- robustness


def plot_accuracy_curve(ax, levels, accuracy, ci_low, ci_high, predicted=None, color=None, label=None,
                        predicted_label=None):
    """Draw one accuracy-vs-noise curve on ``ax`` (log x axis).

    Points with error bars: Monte Carlo accuracy and its confidence
    interval; line: the analytic prediction (if given).  Both share one
    colour; ``label`` names the points, ``predicted_label`` (if given) the
    line.
    """
    levels, accuracy = np.asarray(levels, float), np.asarray(accuracy, float)
    errors = np.vstack([accuracy - np.asarray(ci_low), np.asarray(ci_high) - accuracy])
    bars = ax.errorbar(levels, accuracy, yerr=np.maximum(errors, 0), fmt="o", ms=4, capsize=2,
                       color=color, label=label)
    if predicted is not None:
        ax.plot(levels, predicted, "-", lw=1.3, color=bars[0].get_color(), label=predicted_label)
    ax.set_xscale("log")


def plot_walking_noise(result, title: "str | None" = None):
    """Figure of a :class:`noiseprop.studies.WalkingNoiseResult`.

    Accuracy against the noise level for noise in one layer at a time
    (points: Monte Carlo with confidence intervals; lines: analytic), the
    midpoint target (dotted) and each layer's measured midpoint (vertical
    tick).  Returns the figure.
    """
    fig, ax = figure(size=(6.4, 4.2))
    colors = _colormap("viridis")(np.linspace(0.0, 0.85, len(result.layers)))
    predicted = result.predicted if result.predicted is not None else [None] * len(result.layers)
    for i, (k, color) in enumerate(zip(result.layers, colors)):
        midpoint = result.midpoint[i]
        text = f"layer {k}" + (f" (midpoint {midpoint:.3g})" if np.isfinite(midpoint) else f" (midpoint {result.bracket[i]} range)")
        plot_accuracy_curve(ax, result.levels, result.accuracy[i], result.ci_low[i], result.ci_high[i],
                            predicted[i], color=color, label=text)
        if np.isfinite(midpoint):
            ax.axvline(midpoint, color=color, lw=0.8, ls="--", alpha=0.7)
    ax.axhline(0.5 * (result.clean + result.chance), color="0.3", ls=":", lw=1, label="midpoint target")
    ax.axhline(result.chance, color="0.6", ls="-.", lw=1, label="chance")
    unit = "standard deviation s" if result.scale == "std" else "variance D"
    ax.set_xlabel(f"{result.noise_type} noise level ({unit}) in one layer")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(title or "Walking noise: points Monte Carlo (95 % CI), lines analytic")
    ax.legend(loc="lower left")
    return fig


def plot_noise_training(result, title: "str | None" = None):
    """Figure of a :class:`noiseprop.studies.NoisyTrainingResult`.

    Left: test accuracy against the inference noise level, one curve per
    training noise level (points: Monte Carlo; lines: analytic).  Right:
    what training did to the weights of every layer: rms magnitude and
    binarity mean|w| / rms.  Returns the figure.
    """
    fig, (left, right) = figure(1, 2, size=(10.0, 4.0))
    colors = _colormap("plasma")(np.linspace(0.0, 0.8, len(result.train_levels)))
    for i, (level, color) in enumerate(zip(result.train_levels, colors)):
        plot_accuracy_curve(left, result.eval_levels, result.accuracy[i], result.ci_low[i], result.ci_high[i],
                            result.predicted[i], color=color, label=f"trained at {level:.3g}")
    unit = "s" if result.scale == "std" else "D"
    left.set_xlabel(f"inference {result.noise_type} noise level {unit} (every layer)")
    left.set_ylabel("test accuracy")
    left.set_ylim(0, 1.02)
    left.legend(loc="lower left")
    positions = np.arange(len(result.train_levels))
    layers = [row["layer"] for row in result.weights[0]]
    twin = right.twinx()
    for j, k in enumerate(layers):
        rms = [stats[j]["rms"] for stats in result.weights]
        binarity = [stats[j]["binarity"] for stats in result.weights]
        right.plot(positions, rms, "o-", label=f"rms w, layer {k}", color=f"C{j}")
        twin.plot(positions, binarity, "s--", label=f"binarity, layer {k}", color=f"C{j}", alpha=0.6)
    right.set_xticks(positions, [f"{v:.3g}" for v in result.train_levels])
    right.set_xlabel(f"training {result.noise_type} noise level {unit}")
    right.set_ylabel("rms weight (solid)")
    twin.set_ylabel("binarity mean|w| / rms (dashed)")
    twin.spines["right"].set_visible(True)
    right.legend(loc="upper left", fontsize=7)
    fig.suptitle(title or "Noise-aware training: points Monte Carlo (95 % CI), lines analytic", fontsize=10)
    return fig


def plot_design_chart(accumulation, budgets=None, mark=None):
    """Design charts of the symmetric family (w = 1/N, f(z) = s z + 1 - s, mean 1).

    Left: the accumulated noise, output noise variance of a network of depth
    L relative to a single layer's, over slope x depth (log colour scale),
    with the boundary slope = 1 between bounded and unbounded accumulation.
    Right (with ``budgets``): the largest intensity of each noise type that
    meets the target output SNR, versus depth.

    Parameters
    ----------
    accumulation : noiseprop.analysis.design.AccumulationMap
    budgets : noiseprop.analysis.design.BudgetCurves, optional
    mark : (slope, depth), optional
        A design to mark on the map (e.g. the checked network).

    Returns
    -------
    matplotlib Figure
    """
    from matplotlib.colors import LogNorm

    panels = 2 if budgets is not None else 1
    fig, axes = figure(1, panels, size=(5.5 * panels, 4.2))
    left = axes[0] if panels == 2 else axes
    relative = accumulation.noise_var / accumulation.noise_var[:, :1]
    mesh = left.pcolormesh(accumulation.slopes, accumulation.depths, relative.T, shading="nearest",
                           norm=LogNorm(vmin=1.0, vmax=max(relative.max(), 10.0)), cmap="viridis")
    fig.colorbar(mesh, ax=left, label="output noise variance / one layer's")
    contours = left.contour(accumulation.slopes, accumulation.depths, relative.T, levels=[2, 10, 100],
                            colors="white", linewidths=0.8)
    left.clabel(contours, fmt="%g x", fontsize=7)
    left.axvline(1.0, color="red", linewidth=1.5, linestyle="--")
    top = accumulation.depths[-1]
    left.text(0.98, top, "bounded  ", color="white", ha="right", va="top", fontsize=8)
    left.text(1.02, top, "  unbounded", color="white", ha="left", va="top", fontsize=8)
    if mark is not None:
        left.plot(*mark, marker="*", markersize=14, color="red", markeredgecolor="white", linestyle="none",
                  label="this design")
        left.legend(loc="lower left")
    left.set_xlabel("activation slope s (slope = 1: boundary, red)")
    left.set_ylabel("depth L")
    left.grid(False)
    left.set_title(f"accumulated noise, symmetric N = {accumulation.width}, w = 1/N\n"
                   + _noise_label(accumulation.noise), fontsize=9)
    if budgets is not None:
        right = axes[1]
        for name, values in budgets.budgets.items():
            shown = np.where(np.isfinite(values) & (values > 0), values, np.nan)
            style = "s--" if name.startswith("M") else "o-"  # with mean 1, M and A curves nearly coincide
            right.semilogy(budgets.depths, shown, style, color=NOISE_COLORS[name], label=name, markersize=3)
        right.set_xlabel("depth L")
        right.set_ylabel("largest intensity D (variance, every layer)")
        right.legend(title="type varied", loc="lower left")
        right.set_title(f"budget for output SNR >= {budgets.target_snr_db:g} dB, slope s = {budgets.slope:g}\n"
                        "other types fixed at: " + _noise_label(budgets.noise), fontsize=9)
    return fig


def _noise_label(noise) -> str:
    given = [f"{name}={value:g}" for name, value in noise.intensities.items() if value]
    return ", ".join(given) or "noise-free"
