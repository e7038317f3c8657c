"""F1: noise variance vs layer in symmetric networks, for each noise type and
for activation slopes below, at and above one."""
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

__all__ = ["make", "FIGURE_ID", "STEM", "CAPTION"]

FIGURE_ID = "F1"
STEM = "F1_symmetric"
SLOPES = (0.8, 1.0, 1.2)
DEPTH = 10
WIDTH = 20
INTENSITY = 1e-3
#: Mean of every neuron: multiplicative noise then adds LEVEL^2 * D (4x the additive).
LEVEL = 2.0
SEED = 1
TITLES = {0.8: "s = 0.8 (below one)", 1.0: "s = 1 (critical)", 1.2: "s = 1.2 (above one)"}


def uncorrelated_ratio(slope: float, depth: int = DEPTH, width: int = WIDTH) -> float:
    """Var / D of layer ``depth`` for uncorrelated additive noise alone (spec 5,
    w = 1/N): 1 + (s^2/N) (1 + s^2 + ... + s^(2(depth-2)))."""
    return 1.0 + slope**2 / width * sum(slope ** (2 * j) for j in range(depth - 1))


CAPTION = (
    f"F1. Symmetric networks ({DEPTH} layers of {WIDTH} neurons, every weight 1/N, linear "
    "activation of slope s with the bias that keeps every neuron's mean at 2): noise variance "
    "of a neuron vs layer, for each noise type alone at intensity (variance) "
    f"D = {INTENSITY:g} in every layer. Below slope one the correlated noise settles at "
    "D/(1 - s^2); at one it grows linearly; above one exponentially. Uncorrelated noise is "
    "mostly averaged away by the next layer's fan-in (a layer passes on s^2/N of it): by layer "
    f"{DEPTH} it reaches " + ", ".join(f"{uncorrelated_ratio(s):.3g} D (s = {s:g})" for s in SLOPES)
    + "; above slope one it too grows exponentially, its excess over D about 1/N of the "
    "correlated noise. Multiplicative noise (dashed) acts like additive noise of intensity m^2 D = 4D at the "
    "neurons' mean m = 2. " + VERIFICATION_NOTE
)


def make(outdir: "str | os.PathLike", fast: bool = False, overwrite: bool = False) -> FigureOutput:
    """Compute F1 and write ``F1_symmetric.png`` and ``.json`` into ``outdir``.

    Key numbers: for every slope and noise type the output variance (analytic
    and Monte Carlo) and the largest |z| of Monte Carlo vs analytic over the
    layers.
    """
    from .. import simulate

    samples = samples_for(fast, full=200_000, quick=4_000)
    layers = np.arange(1, DEPTH + 1)
    fig, axes = figure(1, len(SLOPES), size=(10.5, 3.6), sharey=True)
    numbers, curves = {}, {}
    for ax, slope in zip(axes, SLOPES):
        net, x = mean_preserving_network(DEPTH, WIDTH, slope, LEVEL)
        for j, name in enumerate(NOISE_TYPES):
            noise = Noise(**{name: INTENSITY})
            analytic = np.array(predict(net, noise, x).var[1:])[:, 0]
            sim = simulate(net, noise, x, samples=samples, seed=SEED + 10 * j)
            var, stderr = sim.noise_var[1:], sim.noise_var_stderr[1:]
            draw_analytic(ax, layers, analytic, NOISE_COLORS[name], label=name, ls=NOISE_LINESTYLES[name])
            draw_monte_carlo(ax, layers, var, stderr, NOISE_COLORS[name], marker=NOISE_MARKERS[name])
            key = f"s={slope:g}/{name}"
            curves[key] = {"analytic": analytic, "monte_carlo": var, "stderr": stderr}
            numbers[key] = {
                "output_var_analytic": analytic[-1],
                "output_var_monte_carlo": var[-1],
                "max_abs_z": float(np.max(np.abs(z_scores(var, stderr, analytic)))),
            }
        ax.set_yscale("log")
        ax.set_title(TITLES[slope])
        ax.set_xlabel("layer k")
        ax.set_xticks(layers)
    axes[0].set_ylabel("noise variance Var[y_k] (every neuron equal)")
    first = axes[0].legend(title="noise type", loc="upper left", ncol=2)
    axes[0].add_artist(first)
    legend_keys(axes[-1], loc="upper left")
    record = {
        "caption": CAPTION, "fast": fast, "samples": samples, "seed": SEED,
        "slopes": SLOPES, "level": LEVEL, "depth": DEPTH, "width": WIDTH, "intensity": INTENSITY,
        "numbers": numbers, "curves": curves,
    }
    return write_figure(fig, outdir, STEM, FIGURE_ID, record, overwrite)
