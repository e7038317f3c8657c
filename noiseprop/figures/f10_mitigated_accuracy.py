"""F10: accuracy vs noise intensity of the digits classifier, original and mitigated."""
from __future__ import annotations

import os

import numpy as np

from ..noise import Noise
from ..plotting import figure
from ._common import FigureOutput, digits_test_set, draw_monte_carlo_interval, samples_for, write_figure

__all__ = ["make", "FIGURE_ID", "STEM", "CAPTION"]

FIGURE_ID = "F10"
STEM = "F10_mitigated_accuracy"
#: Intensity of each of the four noise types at which the plan is made (about 5 points of accuracy lost).
PLAN_INTENSITY = 0.0224
INTENSITIES = np.geomspace(1e-3, 0.1, 7)
INPUTS_FAST = 60
#: Intensities of the fast (test) mode.
INTENSITIES_FAST = (1e-3, PLAN_INTENSITY, 0.1)
SEED = 10
CAPTION = (
    "F10. Accuracy of the shipped digits classifier (64-100-100-100-10) vs the intensity D of all four "
    "noise types in every layer: original, and mitigated by the plan of noiseprop.mitigation.plan "
    f"(ghost neurons and copies of single neurons, allocated neuron by neuron, made at D = {PLAN_INTENSITY:g}; "
    "objective: the output noise that can change the decision, "
    "budget: as many extra noisy neurons as hidden neurons, i.e. at most twice the hidden neurons; the "
    "output copies are averaged by a noise-free read-out). Monte Carlo over the noise on the test digits "
    "(95 % intervals, conditional on the test set); no analytic curve is drawn. The clean accuracy is the "
    "same for both (the function is preserved); the mitigated network loses less accuracy at the larger "
    "intensities (equal within the intervals at small ones), but recovers well under all of the lost accuracy at the planning level (see "
    "docs/mitigation.md)."
)


def make(outdir: "str | os.PathLike", fast: bool = False, overwrite: bool = False) -> FigureOutput:
    """Compute F10 and write ``F10_mitigated_accuracy.png`` and ``.json`` into ``outdir``."""
    from ..io.builtin import default_network
    from ..io.datasets import load_digits
    from ..mitigation import plan
    from ..mitigation.accuracy import hidden_neurons
    from ..studies.accuracy import accuracy

    samples = samples_for(fast, full=200, quick=20)
    X, y = digits_test_set(fast, INPUTS_FAST)
    net = default_network()
    unit = Noise(AU=1, AC=1, MU=1, MC=1)
    planned = plan(net, unit.scaled(PLAN_INTENSITY), load_digits()[0][:4], hidden_neurons(net),
                   objective="decision", allocation="neuron", method="moments", samples=0)
    networks = {"original": net, "mitigated": planned.network}
    intensities = np.asarray(INTENSITIES_FAST if fast else INTENSITIES)
    fig, ax = figure(1, 1, size=(6.0, 4.0))
    curves, numbers = {}, {}
    for (label, network), color in zip(networks.items(), ("C3", "C0")):
        values, low, high = [], [], []
        for j, d in enumerate(intensities):
            noise = unit.scaled(float(d))
            layer_noise = network.noise_for(noise) if hasattr(network, "noise_for") else noise
            result = accuracy(network, layer_noise, X, y, samples, SEED + j, analytic=False)
            values.append(result.accuracy)
            low.append(result.ci[0])
            high.append(result.ci[1])
        ax.plot(intensities, values, "-", color=color, lw=1.2, alpha=0.6)
        draw_monte_carlo_interval(ax, intensities, values, low, high, color,
                                  label=f"{label} ({hidden_neurons(network)} hidden neurons)")
        curves[label] = {"intensity": intensities, "accuracy": values, "ci_low": low, "ci_high": high}
        numbers[label] = {"accuracy_at_max_intensity": values[-1], "clean": result.clean}
    ax.axvline(PLAN_INTENSITY, color="0.6", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("intensity D of each noise type (every layer)")
    ax.set_ylabel("accuracy (Monte Carlo)")
    ax.set_title("digits classifier: original vs mitigated")
    ax.legend(loc="lower left")
    numbers["plan"] = {"choices": planned.choices, "extra_neurons": planned.extra_neurons}
    record = {"caption": CAPTION, "fast": fast, "samples": samples, "seed": SEED,
              "plan_intensity": PLAN_INTENSITY, "numbers": numbers, "curves": curves}
    return write_figure(fig, outdir, STEM, FIGURE_ID, record, overwrite)
