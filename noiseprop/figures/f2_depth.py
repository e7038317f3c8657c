"""F2: output SNR vs depth up to 50 layers: accumulation is bounded."""
from __future__ import annotations

import os

import numpy as np

from ..analysis.gains import layer_statistics
from ..model import Network
from ..noise import Noise
from ..plotting import figure
from ..propagation import predict
from ..statistics import decibels
from ._common import (
    VERIFICATION_NOTE,
    FigureOutput,
    draw_analytic,
    draw_monte_carlo,
    legend_keys,
    mean_preserving_network,
    samples_for,
    snr_db_stderr,
    write_figure,
    z_scores,
)

__all__ = ["make", "FIGURE_ID", "STEM", "CAPTION"]

FIGURE_ID = "F2"
STEM = "F2_snr_vs_depth"
MAX_DEPTH = 50
WIDTH = 20
INTENSITY = 1e-4
LINEAR_SLOPES = (0.8, 0.9, 1.0, 1.1)
TANH_GAIN = 2.0
#: Monte Carlo points at every this many layers (the lines have every layer).
POINT_EVERY = 5
SEED = 2
CAPTION = (
    f"F2. Output SNR vs depth: symmetric networks of width {WIDTH} (weights 1/N) with all four "
    f"noise types at intensity (variance) D = {INTENSITY:g} in every layer. A network of depth L "
    "is the first L layers of the 50-layer one, so its output SNR is the SNR of layer L. Linear "
    "activations of slope s (bias keeping every mean at 1): for s < 1 the SNR settles at a "
    "bound, adding layers costs nothing further; at s = 1 it keeps falling (noise grows "
    "linearly), above one it collapses. tanh(2z) has a stable working point of slope 0.17 and "
    "settles after a few layers. SNR of a neuron, E[y]^2/Var[y] as a power ratio in dB "
    "(all neurons are equal by symmetry). " + VERIFICATION_NOTE
)


def _networks():
    """(label, network, input) for every curve."""
    for slope in LINEAR_SLOPES:
        net, x = mean_preserving_network(MAX_DEPTH, WIDTH, slope)
        yield f"linear, s = {slope:g}", net, x
    net = Network.symmetric(MAX_DEPTH, WIDTH, 1.0 / WIDTH, activation=f"tanh(gain={TANH_GAIN})")
    yield f"tanh({TANH_GAIN:g}z)", net, np.ones(WIDTH)


def make(outdir: "str | os.PathLike", fast: bool = False, overwrite: bool = False) -> FigureOutput:
    """Compute F2 and write ``F2_snr_vs_depth.png`` and ``.json`` into ``outdir``.

    Key numbers per curve: the analytic SNR [dB] at depths 40 and 50, its
    change between them, the working-point slope of the last layer and the
    largest |z| of Monte Carlo vs analytic SNR over the plotted points.
    """
    from .. import simulate

    samples = samples_for(fast, full=200_000, quick=4_000)
    noise = Noise(AU=INTENSITY, AC=INTENSITY, MU=INTENSITY, MC=INTENSITY)
    depths = np.arange(1, MAX_DEPTH + 1)
    points = depths[POINT_EVERY - 1::POINT_EVERY]
    colors = ["tab:blue", "tab:green", "tab:orange", "tab:red", "tab:purple"]
    fig, ax = figure(size=(6.5, 4.4))
    numbers, curves = {}, {}
    for i, ((label, net, x), color) in enumerate(zip(_networks(), colors)):
        analytic = decibels(np.array(predict(net, noise, x).snr[1:])[:, 0])
        sim = simulate(net, noise, x, samples=samples, seed=SEED + i)
        mean, var = np.array(sim.mean[1:])[:, 0], np.array(sim.var[1:])[:, 0]
        mean_se, var_se = np.array(sim.mean_stderr[1:])[:, 0], np.array(sim.var_stderr[1:])[:, 0]
        snr_db = decibels(mean**2 / var)
        snr_se = snr_db_stderr(mean, mean_se, var, var_se)
        shown = points - 1
        draw_analytic(ax, depths, analytic, color, label=label)
        draw_monte_carlo(ax, points, snr_db[shown], snr_se[shown], color)
        slope = layer_statistics(net, x)[-1].slope  # f'(z) of the last layer's working point
        curves[label] = {"analytic_db": analytic, "analytic_at_monte_carlo_db": analytic[shown],
                         "monte_carlo_db": snr_db[shown],
                         "stderr_db": snr_se[shown], "depths_monte_carlo": points}
        numbers[label] = {
            "snr_db_40": analytic[39], "snr_db_50": analytic[49],
            "change_40_to_50_db": analytic[49] - analytic[39],
            "slope": float(slope[0]),
            "max_abs_z": float(np.max(np.abs(z_scores(snr_db[shown], snr_se[shown], analytic[shown])))),
        }
    ax.set_xlabel("depth L (number of noisy layers)")
    ax.set_ylabel("output SNR  E[y]²/Var[y]  [dB]")
    ax.set_xlim(0, MAX_DEPTH + 1)
    ax.set_ylim(-15, 38)
    first = ax.legend(title="activation", loc="lower left")
    ax.add_artist(first)
    legend_keys(ax, loc="center right")
    record = {
        "caption": CAPTION, "fast": fast, "samples": samples, "seed": SEED, "width": WIDTH,
        "intensity": INTENSITY, "depths": depths, "numbers": numbers, "curves": curves,
    }
    return write_figure(fig, outdir, STEM, FIGURE_ID, record, overwrite)
