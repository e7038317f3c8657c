"""F7: layer-wise ("walking") noise: accuracy vs the noise in one layer at a
time, and each layer's midpoint noise level."""
from __future__ import annotations

import os

import numpy as np

from ..io.builtin import default_network
from ..plotting import figure
from ._common import (
    NOISE_TITLES,
    FigureOutput,
    digits_test_set,
    draw_analytic,
    draw_monte_carlo_interval,
    samples_for,
    write_figure,
)

__all__ = ["make", "FIGURE_ID", "STEM", "CAPTION"]

FIGURE_ID = "F7"
STEM = "F7_walking_noise"
#: The walking-noise study's additive and multiplicative noise (one draw per neuron).
NOISE_TYPES = ("AU", "MU")
LEVELS = 10.0 ** np.arange(-2.0, 3.01, 0.5)
LEVELS_FAST = 10.0 ** np.array([-2.0, 0.0, 1.0, 3.0])
INPUTS_FAST = 20
LAYER_COLORS = ("tab:purple", "tab:blue", "tab:green", "tab:olive")
SEED = 7
CAPTION = (
    "F7. Walking noise on the trained default network (digits 64-100-100-100-10, 450 test "
    "images): noise of one type in one layer at a time (the others noise-free), intensity D as "
    "a variance (the walking-noise study's standard deviation is sqrt(D)); left: additive, right: "
    "multiplicative uncorrelated noise. The midpoint noise level of a layer (triangles on the "
    "dotted line) is where the accuracy is half-way between its clean value and chance, "
    "interpolated on a log scale: the lower it is, the more sensitive the layer. Lines: analytic "
    "accuracy (moments method, Gaussian outputs), filled triangles: its midpoints; points: "
    "Monte Carlo with 95 % confidence intervals, open triangles: measured midpoints."
)


def make(outdir: "str | os.PathLike", fast: bool = False, overwrite: bool = False) -> FigureOutput:
    """Compute F7 and write ``F7_walking_noise.png`` and ``.json``.

    Key numbers per noise type: the measured and predicted midpoint
    variance of every layer and the two rankings (most sensitive first).
    """
    from ..studies.walking import walking_noise

    samples = samples_for(fast, full=300, quick=30)
    levels = LEVELS_FAST if fast else LEVELS
    net = default_network()
    X, y = digits_test_set(fast, INPUTS_FAST)
    fig, axes = figure(1, len(NOISE_TYPES), size=(10.5, 4.2), sharey=True)
    numbers: dict = {}
    for ax, name in zip(axes, NOISE_TYPES):
        walk = walking_noise(net, X, y, name, levels, scale="variance", samples=samples, seed=SEED,
                             method="moments")
        target = 0.5 * (walk.clean + walk.chance)
        for i, (k, color) in enumerate(zip(walk.layers, LAYER_COLORS)):
            draw_analytic(ax, levels, walk.predicted[i], color, label=f"layer {k}")
            draw_monte_carlo_interval(ax, levels, walk.accuracy[i], walk.ci_low[i], walk.ci_high[i], color)
            ax.plot(walk.predicted_midpoint[i], target, "v", color=color, ms=8)
            ax.plot(walk.midpoint[i], target, "v", color=color, ms=11, mfc="none", mew=1.2)
        ax.axhline(target, color="k", ls=":", lw=1)
        ax.axhline(walk.clean, color="k", lw=0.6, alpha=0.5)
        ax.axhline(walk.chance, color="0.5", lw=1)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(f"{name} noise intensity D (variance) in the one noisy layer")
        ax.set_title(NOISE_TITLES[name])
        numbers[name] = {
            "midpoint_variance": walk.midpoint_variance, "bracket": walk.bracket,
            "predicted_midpoint_variance": walk.predicted_midpoint, "predicted_bracket": walk.predicted_bracket,
            "ranking": walk.ranking, "predicted_ranking": walk.predicted_ranking,
            "accuracy": walk.accuracy, "ci_low": walk.ci_low, "ci_high": walk.ci_high,
            "predicted": walk.predicted,
        }
        numbers["clean"], numbers["chance"] = walk.clean, walk.chance
    axes[0].set_ylabel("classification accuracy (test set)")
    axes[0].legend(title="noisy layer", loc="lower left")
    axes[1].legend(handles=_keys(), loc="lower left")
    record = {
        "caption": CAPTION, "fast": fast, "samples_per_input": samples, "inputs": len(y), "seed": SEED,
        "levels_variance": levels, "numbers": numbers,
    }
    return write_figure(fig, outdir, STEM, FIGURE_ID, record, overwrite)


def _keys():
    """Legend keys: what lines, points and the two kinds of triangles are."""
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], color="0.3", label="analytic (moments)"),
        Line2D([], [], color="0.3", marker="o", mfc="white", ls="none", label="Monte Carlo (95 % CI)"),
        Line2D([], [], color="0.3", marker="v", ms=8, ls="none", label="midpoint, analytic"),
        Line2D([], [], color="0.3", marker="v", ms=11, mfc="none", ls="none", label="midpoint, measured"),
        Line2D([], [], color="k", ls=":", lw=1, label="half-way clean to chance"),
    ]
