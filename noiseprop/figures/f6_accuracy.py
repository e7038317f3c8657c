"""F6: classification accuracy of the trained default network vs noise
intensity for each noise type: analytic prediction and Monte Carlo."""
from __future__ import annotations

import os

import numpy as np

from ..io.builtin import default_network
from ..noise import NOISE_TYPES, Noise
from ..plotting import NOISE_COLORS, figure
from ._common import (
    METHOD_STYLES,
    VERIFICATION_NOTE,
    FigureOutput,
    digits_test_set,
    draw_analytic,
    method_legend,
    samples_for,
    write_figure,
)

__all__ = ["make", "FIGURE_ID", "STEM", "CAPTION"]

FIGURE_ID = "F6"
STEM = "F6_accuracy_vs_intensity"
INTENSITIES = 10.0 ** np.arange(-3.0, 1.01, 0.5)
INTENSITIES_FAST = np.array([1e-3, 1e-1, 1e1])
#: Test images used in fast mode (all 450 otherwise).
INPUTS_FAST = 30
SEED = 6
CAPTION = (
    "F6. Classification accuracy of the trained default network (digits 64-100-100-100-10) on "
    "the 450 test images vs the intensity (variance) D of one noise type in every layer. "
    "Analytic: the probability that the right class has the largest output when the output is "
    "Gaussian with the predicted mean and covariance; solid: linear response, dashed: moments "
    "method. Accuracy holds at its clean value up to D ~ 1e-2 (output SNR above ~20 dB, F5) and "
    "falls towards chance (10 %, grey) by D ~ 10; the prediction follows Monte Carlo while the "
    "noise is moderate and, like F5, the linearised one becomes optimistic once the sigmoids' "
    "curvature matters. Points: Monte Carlo over noise realisations and test images, error bars "
    "the 95 % confidence interval (noise only, for this test set). " + VERIFICATION_NOTE.split(";")[0] + "."
)


def make(outdir: "str | os.PathLike", fast: bool = False, overwrite: bool = False) -> FigureOutput:
    """Compute F6 and write ``F6_accuracy_vs_intensity.png`` and ``.json``.

    Key numbers per noise type and intensity: Monte Carlo accuracy, its
    standard error and confidence interval, and the analytic accuracy of
    both propagation methods; the clean accuracy.
    """
    from matplotlib.lines import Line2D

    from ..studies.accuracy import accuracy, analytic_accuracy

    samples = samples_for(fast, full=400, quick=40)
    intensities = INTENSITIES_FAST if fast else INTENSITIES
    net = default_network()
    X, y = digits_test_set(fast, INPUTS_FAST)
    fig, ax = figure(size=(6.5, 4.4))
    numbers: dict = {}
    for j, name in enumerate(NOISE_TYPES):
        results = [accuracy(net, Noise(**{name: d}), X, y, samples=samples, seed=SEED + 100 * j + i)
                   for i, d in enumerate(intensities)]
        measured = np.array([r.accuracy for r in results])
        ci = np.array([r.ci for r in results])
        moments = np.array([analytic_accuracy(net, Noise(**{name: d}), X, y, seed=SEED, method="moments")
                            for d in intensities])
        linear = np.array([r.predicted for r in results])
        draw_analytic(ax, intensities, linear, NOISE_COLORS[name], label=name, ls=METHOD_STYLES["linear"])
        draw_analytic(ax, intensities, moments, NOISE_COLORS[name], ls=METHOD_STYLES["moments"])
        ax.errorbar(intensities, measured, yerr=np.abs(ci.T - measured), fmt="o", color=NOISE_COLORS[name],
                    ms=4, mfc="white", mew=1.2, capsize=2)
        numbers[name] = {
            "monte_carlo": measured, "stderr": [r.stderr for r in results], "ci": ci,
            "linear": linear, "moments": moments,
        }
        numbers["clean"] = results[0].clean
    ax.axhline(numbers["clean"], color="k", ls=":", lw=1)
    ax.axhline(1.0 / net.sizes[-1], color="0.5", lw=1)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("noise intensity D (variance), every layer")
    ax.set_ylabel("classification accuracy (test set)")
    first = ax.legend(title="noise type", loc="lower left")
    ax.add_artist(first)
    method_legend(ax, monte_carlo="Monte Carlo (95 % CI)", loc="center left", bbox_to_anchor=(0.0, 0.6), extra=[
        Line2D([], [], color="k", ls=":", lw=1, label="clean"),
        Line2D([], [], color="0.5", lw=1, label="chance"),
    ])
    record = {
        "caption": CAPTION, "fast": fast, "samples_per_input": samples, "inputs": len(y),
        "seed": SEED, "intensities": intensities, "numbers": numbers,
    }
    return write_figure(fig, outdir, STEM, FIGURE_ID, record, overwrite)

