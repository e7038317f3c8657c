"""F8: noise-aware training: accuracy vs inference noise for networks trained
at several noise levels."""
from __future__ import annotations

import os

import numpy as np

from ..plotting import figure
from ._common import (
    NOISE_TITLES,
    FigureOutput,
    draw_analytic,
    draw_monte_carlo_interval,
    samples_for,
    write_figure,
)

__all__ = ["make", "FIGURE_ID", "STEM", "CAPTION"]

FIGURE_ID = "F8"
STEM = "F8_noise_aware_training"
NOISE_TYPES = ("AU", "MU")
TRAIN_LEVELS = (0.0, 0.1, 1.0)
EVAL_LEVELS = 10.0 ** np.arange(-2.0, 1.51, 0.5)
#: Fast mode (tests): a tiny network, a few epochs, few levels and test inputs.
FAST = {"train_levels": (0.0, 1.0), "eval_levels": (1e-2, 1.0, 10.0), "inputs": 40,
        "train_options": {"hidden": (16,), "epochs": 5, "lr": 1e-2}}
FULL_TRAINING = {"hidden": (100, 100), "epochs": 60}
TRAIN_COLORS = ("0.2", "tab:orange", "tab:red")
SEED = 8
CAPTION = (
    "F8. Noise-aware training: digits MLPs (64-100-100-10, sigmoid hidden layers; same seed and "
    "initial weights, 60 epochs) trained with noise of intensity (variance) D_train injected into "
    "every layer (0: clean training), then tested with inference noise of the same type and "
    "intensity D in every layer; left: additive, right: multiplicative uncorrelated noise. The "
    "legend gives what training did to the weights: their root mean square and binarity "
    "mean|w|/rms (1 for weights of two values), averaged over the layers. Lines: analytic "
    "accuracy (moments method, Gaussian outputs); points: Monte Carlo with 95 % confidence "
    "intervals."
)


def make(outdir: "str | os.PathLike", fast: bool = False, overwrite: bool = False) -> FigureOutput:
    """Compute F8 and write ``F8_noise_aware_training.png`` and ``.json``.

    Key numbers per noise type and training level: clean accuracy, Monte
    Carlo and analytic accuracy at every inference level, the weight rms and
    binarity (averaged over layers) and the predicted output SNR.
    """
    from ..io.datasets import load_digits
    from ..studies.noise_training import noise_aware_training

    samples = samples_for(fast, full=200, quick=30)
    settings = FAST if fast else {"train_levels": TRAIN_LEVELS, "eval_levels": EVAL_LEVELS, "inputs": None,
                                  "train_options": FULL_TRAINING}
    X_train, y_train, X_test, y_test = load_digits()
    if settings["inputs"]:
        X_test, y_test = X_test[:settings["inputs"]], y_test[:settings["inputs"]]
    eval_levels = np.asarray(settings["eval_levels"])
    fig, axes = figure(1, len(NOISE_TYPES), size=(10.5, 4.2), sharey=True)
    numbers: dict = {}
    for ax, name in zip(axes, NOISE_TYPES):
        result = noise_aware_training(
            X_train, y_train, X_test, y_test, name, settings["train_levels"], eval_levels,
            scale="variance", samples=samples, seed=SEED, method="moments", **settings["train_options"],
        )
        numbers[name] = {}
        for i, (level, color) in enumerate(zip(result.train_levels, TRAIN_COLORS)):
            rms = float(np.mean([row["rms"] for row in result.weights[i]]))
            binarity = float(np.mean([row["binarity"] for row in result.weights[i]]))
            label = f"D_train = {level:g}  (rms w {rms:.2f}, binarity {binarity:.2f})"
            draw_analytic(ax, eval_levels, result.predicted[i], color, label=label)
            draw_monte_carlo_interval(ax, eval_levels, result.accuracy[i], result.ci_low[i], result.ci_high[i],
                                      color)
            numbers[name][f"{level:g}"] = {
                "clean": result.clean[i], "monte_carlo": result.accuracy[i], "ci_low": result.ci_low[i],
                "ci_high": result.ci_high[i], "predicted": result.predicted[i],
                "output_snr_db": result.output_snr_db[i], "weight_rms": rms, "weight_binarity": binarity,
            }
        ax.axhline(0.1, color="0.5", lw=1)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(f"inference {name} noise intensity D (variance), every layer")
        ax.set_title(NOISE_TITLES[name])
        legend = ax.legend(title="training noise (same type)", loc="lower left", fontsize=7)
    axes[0].set_ylabel("classification accuracy (test set)")
    axes[1].legend(handles=_keys(), loc="upper right")
    axes[1].add_artist(legend)
    record = {
        "caption": CAPTION, "fast": fast, "samples_per_input": samples, "inputs": len(y_test), "seed": SEED,
        "eval_levels_variance": eval_levels, "train_options": settings["train_options"], "numbers": numbers,
    }
    return write_figure(fig, outdir, STEM, FIGURE_ID, record, overwrite)


def _keys():
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], color="0.3", label="analytic (moments)"),
        Line2D([], [], color="0.3", marker="o", mfc="white", ls="none", label="Monte Carlo (95 % CI)"),
        Line2D([], [], color="0.5", lw=1, label="chance"),
    ]
