"""F3: the slope design rule: accumulated noise at a fixed depth vs the
activation slope, with the critical slope marked."""
from __future__ import annotations

import os

import numpy as np

from ..noise import NOISE_TYPES, Noise
from ..plotting import NOISE_COLORS, figure
from ..propagation import predict
from ._common import (
    NOISE_LINESTYLES,
    NOISE_MARKERS,
    VERIFICATION_NOTE,
    FigureOutput,
    draw_analytic,
    draw_monte_carlo,
    legend_keys,
    mean_preserving_network,
    samples_for,
    write_figure,
    z_scores,
)

__all__ = ["make", "critical_slope", "FIGURE_ID", "STEM", "CAPTION"]

FIGURE_ID = "F3"
STEM = "F3_slope_rule"
DEPTH = 20
WIDTH = 20
INTENSITY = 1e-3
SLOPE_RANGE = (0.5, 1.5)
MC_SLOPES = np.round(np.arange(0.5, 1.501, 0.1), 10)
#: Fewer simulated slopes in fast mode (tests).
MC_SLOPES_FAST = np.array([0.5, 0.8, 1.0, 1.2, 1.5])
#: Mean of every neuron: multiplicative noise then adds LEVEL^2 * D (4x the additive).
LEVEL = 2.0
SEED = 3
CAPTION = (
    f"F3. The slope design rule: noise accumulated at depth {DEPTH} (output variance divided by "
    f"the intensity D = {INTENSITY:g} injected in every layer, each noise type alone) vs the "
    f"activation slope s, for symmetric linear networks of width {WIDTH} with weights 1/N (the "
    "mean-preserving family; biases keep every mean at m = 2, so multiplicative noise, dashed, "
    "enters as m^2 D = 4D). The dotted line marks the critical "
    "slope, where the per-layer gain of correlated noise s^2 (wN)^2 reaches one (from the symbolic "
    "derivation); the dashed grey line is the deep-network bound D/(1 - s^2) of correlated "
    "additive noise, reached already at this depth for slopes well below one. " + VERIFICATION_NOTE
)


def critical_slope(width: int = WIDTH, weight: "float | None" = None) -> float:
    """The largest activation slope for which correlated noise stays bounded in a
    symmetric network, from the symbolic derivation (:func:`noiseprop.analysis.symbolic.derive`):
    the root of the accumulation gain s^2 (w N)^2 = 1; 1 for w = 1/N."""
    from ..analysis.symbolic import derive

    weight = 1.0 / width if weight is None else weight
    return float(derive("AC").function("critical_slope")(N=width, w=weight))


def make(outdir: "str | os.PathLike", fast: bool = False, overwrite: bool = False) -> FigureOutput:
    """Compute F3 and write ``F3_slope_rule.png`` and ``.json`` into ``outdir``.

    Key numbers: the critical slope; per noise type the accumulated noise
    Var/D at slopes 0.5, 1 and 1.5 and the largest |z| of Monte Carlo vs
    analytic over the simulated slopes.
    """
    from .. import simulate

    samples = samples_for(fast, full=100_000, quick=3_000)
    mc_slopes = MC_SLOPES_FAST if fast else MC_SLOPES
    slopes = np.linspace(*SLOPE_RANGE, 101)
    s_crit = critical_slope()
    fig, ax = figure(size=(6.5, 4.4))
    numbers: dict = {"critical_slope": s_crit}
    curves = {}
    for j, name in enumerate(NOISE_TYPES):
        noise = Noise(**{name: INTENSITY})
        analytic = np.array([_output_var(s, noise) for s in slopes]) / INTENSITY
        estimates, stderrs = [], []
        for i, slope in enumerate(mc_slopes):
            net, x = mean_preserving_network(DEPTH, WIDTH, slope, LEVEL)
            sim = simulate(net, noise, x, samples=samples, seed=SEED + 100 * j + i)
            estimates.append(sim.noise_var[DEPTH] / INTENSITY)
            stderrs.append(sim.noise_var_stderr[DEPTH] / INTENSITY)
        predicted = np.array([_output_var(s, noise) for s in mc_slopes]) / INTENSITY
        draw_analytic(ax, slopes, analytic, NOISE_COLORS[name], label=name, ls=NOISE_LINESTYLES[name])
        draw_monte_carlo(ax, mc_slopes, estimates, stderrs, NOISE_COLORS[name], marker=NOISE_MARKERS[name])
        curves[name] = {"analytic": analytic, "predicted_at_monte_carlo": predicted,
                        "monte_carlo": estimates, "stderr": stderrs}
        numbers[name] = {
            "accumulated_at_s0.5": analytic[0], "accumulated_at_s1": analytic[50],
            "accumulated_at_s1.5": analytic[-1],
            "max_abs_z": float(np.max(np.abs(z_scores(estimates, stderrs, predicted)))),
        }
    below = slopes[slopes < s_crit]
    ax.plot(below, 1.0 / (1.0 - below**2), "--", color="0.5", lw=1, label="AC deep bound 1/(1−s²)")
    ax.axvline(s_crit, color="k", ls=":", lw=1.2)
    ax.annotate(f"critical slope s = {s_crit:.3g}", (s_crit, 0.6), xytext=(6, 0),
                textcoords="offset points", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(0.5, None)
    ax.set_xlabel("activation slope s = f'(z) at the working point")
    ax.set_ylabel(f"accumulated noise  Var[y_{DEPTH}] / D")
    first = ax.legend(title="noise type", loc="upper left")
    ax.add_artist(first)
    legend_keys(ax, loc="center left", bbox_to_anchor=(0.0, 0.45))
    record = {
        "caption": CAPTION, "fast": fast, "samples": samples, "seed": SEED, "depth": DEPTH, "level": LEVEL,
        "width": WIDTH, "intensity": INTENSITY, "slopes": slopes, "slopes_monte_carlo": mc_slopes,
        "numbers": numbers, "curves": curves,
    }
    return write_figure(fig, outdir, STEM, FIGURE_ID, record, overwrite)


def _output_var(slope: float, noise: Noise) -> float:
    net, x = mean_preserving_network(DEPTH, WIDTH, slope, LEVEL)
    return float(predict(net, noise, x).var[DEPTH][0])
