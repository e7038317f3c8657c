"""F12: stationary output SNR of an echo state network against the mean and the
mean square of the readout weights W_out; analytic lines, statistics formula
and Monte Carlo points."""
from __future__ import annotations

import os

import numpy as np

from ..noise import NOISE_TYPES, Noise
from ..plotting import NOISE_COLORS, figure
from ._common import (
    NOISE_LINESTYLES,
    NOISE_MARKERS,
    FigureOutput,
    draw_analytic,
    draw_monte_carlo,
    legend_keys,
    samples_for,
    write_figure,
    z_scores,
)

__all__ = ["make", "FIGURE_ID", "STEM", "CAPTION"]

FIGURE_ID = "F12"
STEM = "F12_recurrent_readout"
N, RADIUS, SEED, INPUT = 50, 0.9, 5, 0.5
INTENSITY = 1e-4
STEPS = 80  # constant input: stationary within 1e-3 after about 70 steps (growth rate 0.9^2)
SPREAD = 0.02  # panel (a): rms deviation of W_out from its mean
MEANS = np.linspace(0.0, 0.08, 9)
SPREADS = np.linspace(0.01, 0.2, 9)  # panel (b): zero mean
CAPTION = (
    f"F12. Stationary output SNR of an echo state network (N = {N} tanh neurons, dense random reservoir of "
    f"spectral radius {RADIUS}, constant input {INPUT}) against the readout weights, each noise type alone "
    f"at D = {INTENSITY:g} on the reservoir. Readouts W_out = mu + sigma xi (xi a fixed zero-mean pattern of "
    "unit rms) with the output bias set so that the noise-free output is 1 (SNR = 1/Var y). (a) against the "
    f"mean mu at sigma = {SPREAD}; (b) against the mean square mu^2 + sigma^2 at mu = 0. Lines: stationary "
    "solution (discrete Lyapunov equation); thin dotted lines: the statistics formula Var y = N u "
    "mean(W_out^2) + N^2 c mean(W_out)^2, with u + c and c the mean diagonal and off-diagonal entry of the "
    f"stationary covariance; points: Monte Carlo after {STEPS} steps, +-2 standard errors. Correlated noise "
    "(AC) is governed by the mean of W_out (its variance grows as N^2 mean^2: the SNR falls fastest in (a)); "
    "uncorrelated noise (AU, MU) by the mean square (10 dB per decade in (b)). The JSON gives the largest "
    "|z| of the points per noise type and the largest relative error of the statistics formula."
)


def make(outdir: "str | os.PathLike", fast: bool = False, overwrite: bool = False) -> FigureOutput:
    """Compute F12 and write ``F12_recurrent_readout.png`` and ``.json`` into ``outdir``."""
    from ..recurrent import RecurrentNetwork, echo_state_network, simulate, stationary
    from ..recurrent.propagation import output_variance_from_statistics

    samples = samples_for(fast, full=20_000, quick=1_000)
    esn = echo_state_network(N, 1, 1, RADIUS, seed=SEED, bias_scale=0.2)
    u = np.full((STEPS, 1), INPUT)
    pattern = np.random.default_rng(SEED).standard_normal(N)
    pattern = (pattern - pattern.mean()) / np.sqrt(np.mean((pattern - pattern.mean()) ** 2))
    panels = {"mean": (MEANS, np.full(MEANS.size, SPREAD)), "mean_square": (np.zeros(SPREADS.size), SPREADS)}
    fixed = stationary(esn, Noise(), u[:1]).mean
    W_out = np.vstack([m[:, None] + s[:, None] * pattern[None] for m, s in panels.values()])
    net = RecurrentNetwork.from_arrays(esn.W_in, esn.W, W_out, esn.bias, 1.0 - W_out @ fixed, leak=esn.leak,
                                       activation=esn.activation)
    fig, axes = figure(1, 2, size=(10.0, 4.2))
    numbers, curves = {}, {}
    k = MEANS.size
    for j, name in enumerate(NOISE_TYPES):
        noise = Noise(**{name: INTENSITY})
        state = stationary(net, noise, u[:1])
        snr = 10 * np.log10(state.output_mean**2 / state.output_var)
        formula = output_variance_from_statistics(W_out, state.cov)
        snr_formula = 10 * np.log10(state.output_mean**2 / formula)
        sim = simulate(net, noise, u, samples, seed=SEED + j, steps=[STEPS])
        var, stderr = np.asarray(sim.output.var[-1]), np.asarray(sim.output.var_stderr[-1])
        snr_mc = 10 * np.log10(np.asarray(sim.output.mean[-1]) ** 2 / var)
        snr_se = 10 / np.log(10) * stderr / var  # delta method: d(10 log10 v) = 10/ln10 dv/v
        z = np.abs(z_scores(var, stderr, state.output_var))
        for ax, (panel, (means, spreads)), part in zip(axes, panels.items(), (slice(0, k), slice(k, None))):
            x = means if panel == "mean" else means**2 + spreads**2
            draw_analytic(ax, x, snr[part], NOISE_COLORS[name], label=name, ls=NOISE_LINESTYLES[name])
            ax.plot(x, snr_formula[part], color=NOISE_COLORS[name], ls=":", lw=1)
            draw_monte_carlo(ax, x, snr_mc[part], snr_se[part], NOISE_COLORS[name], marker=NOISE_MARKERS[name])
        curves[name] = {"snr_db": snr, "snr_db_statistics_formula": snr_formula, "snr_db_monte_carlo": snr_mc,
                        "snr_db_stderr": snr_se}
        numbers[name] = {"max_abs_z": float(np.max(z)),
                         "max_relative_error_statistics_formula": float(np.max(np.abs(formula / state.output_var - 1))),
                         "snr_db_range": [float(np.min(snr)), float(np.max(snr))]}
    axes[0].set(xlabel="mean of W_out", ylabel="stationary output SNR (dB)", title=f"(a) sigma = {SPREAD}")
    axes[1].set(xlabel="mean square of W_out (mean 0)", title="(b) mu = 0")
    axes[1].set_xscale("log")
    axes[0].legend(title="noise type", loc="upper right", ncol=2)
    legend_keys(axes[1], loc="upper right")
    record = {"caption": CAPTION, "fast": fast, "samples": samples, "seed": SEED, "intensity": INTENSITY,
              "steps": STEPS, "means": MEANS, "spread": SPREAD, "spreads": SPREADS, "numbers": numbers,
              "curves": curves}
    return write_figure(fig, outdir, STEM, FIGURE_ID, record, overwrite)
