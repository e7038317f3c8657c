"""F9: noise mitigation - the pooling law and ghost-neuron cancellation, with Monte Carlo."""
from __future__ import annotations

import os

import numpy as np

from ..model import Network
from ..noise import Noise
from ..plotting import NOISE_COLORS, figure
from ..propagation import predict
from ._common import (
    FigureOutput,
    draw_analytic,
    draw_monte_carlo,
    legend_keys,
    samples_for,
    write_figure,
    z_scores,
)

__all__ = ["make", "FIGURE_ID", "STEM", "CAPTION"]

FIGURE_ID = "F9"
STEM = "F9_mitigation"
COPIES = (1, 2, 3, 4, 6, 8)
INTENSITIES = np.geomspace(1e-4, 1e-1, 7)
D_POOL = 1e-2
SEED = 9
CAPTION = (
    "F9. Noise mitigation on an affine network 8-16-16-4 (random weights N(0, 1/fan-in) from seed 0, "
    "hidden slope 0.9, bias 0.5; one input). (a) Output layer SNR gain vs the pooling factor K (every "
    "hidden neuron replaced by K copies read through their average). With only uncorrelated noise "
    f"(AU = MU = {D_POOL:g}) on the hidden layers and a noise-free output the gain is K; with "
    "all four types (and output noise) it saturates, because correlated noise and the output layer's "
    "own noise are not averaged (the uncorrelated-only gain is slightly above K: multiplicative noise "
    "of layer 2 also acts on the upstream noise, which pooling layer 1 reduced). (b) Variance that layer 1's correlated noise passes to the output "
    "(layer 1 the only noisy layer) vs its intensity, without and with one ghost neuron in layer 1. "
    "Additive correlated noise (AC) is cancelled exactly (variance 0, not drawable on the log axis: "
    "the Monte Carlo value is rounding, listed in the JSON); multiplicative correlated noise (MC) "
    "leaves (sum_i W_ji (m_i - c_0))^2 D_MC, shown for the ghost level c_0 that minimises it at the output (least squares over the output "
    "neurons); it cannot vanish unless all of layer 1's outputs are equal. "
    "Lines: prediction (linear response, exact for this affine network); points: Monte Carlo (+-2 s.e.)."
)


def _network():
    rng = np.random.default_rng(0)
    sizes = (8, 16, 16, 4)
    weights = [rng.standard_normal((b, a)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [np.full(b, 0.5) for b in sizes[1:]]
    net = Network.from_arrays(weights, biases, ["linear(slope=0.9)", "linear(slope=0.9)", "linear"])
    return net, np.random.default_rng(1).uniform(0, 1, 8)


def make(outdir: "str | os.PathLike", fast: bool = False, overwrite: bool = False) -> FigureOutput:
    """Compute F9 and write ``F9_mitigation.png`` and ``.json`` into ``outdir``."""
    from ..mitigation import ghost_neurons, pool
    from ..simulation.montecarlo import simulate

    samples = samples_for(fast, full=100_000, quick=4_000)
    net, x = _network()
    fig, (left, right) = figure(1, 2, size=(10.5, 3.8))
    numbers, curves = {}, {}
    cases = {
        "uncorrelated only": [Noise(AU=D_POOL, MU=D_POOL)] * 2 + [Noise()],
        "all four types": Noise(AU=D_POOL, AC=D_POOL, MU=D_POOL, MC=D_POOL),
    }
    for (label, noise), color in zip(cases.items(), ("C0", "C3")):
        base = predict(net, noise, x, method="linear").layer_snr[-1]
        base_sim = simulate(net, noise, x, samples, seed=SEED)
        gains, sim_gains, errors = [], [], []
        for K in COPIES:
            pooled = pool(net, K)
            layer_noise = pooled.noise_for(noise)
            gains.append(predict(pooled, layer_noise, x, method="linear").layer_snr[-1] / base)
            sim = simulate(pooled, layer_noise, x, samples, seed=SEED + K)
            ratio = base_sim.noise_var[-1] / sim.noise_var[-1]
            sim_gains.append(ratio)
            errors.append(ratio * np.hypot(base_sim.noise_var_stderr[-1] / base_sim.noise_var[-1],
                                           sim.noise_var_stderr[-1] / sim.noise_var[-1]))
        draw_analytic(left, COPIES, gains, color, label=label)
        draw_monte_carlo(left, COPIES, sim_gains, errors, color)
        curves[f"pool/{label}"] = {"K": COPIES, "gain": gains, "monte_carlo": sim_gains, "stderr": errors}
        numbers[f"pool/{label}"] = {"gain_K8": gains[-1], "gain_K8_monte_carlo": sim_gains[-1],
                                    "max_abs_z": float(np.max(np.abs(z_scores(sim_gains, errors, gains))))}
    left.plot(COPIES, COPIES, ":", color="0.5", label="K (the 1/K law)")
    left.set_xlabel("copies per hidden neuron K")
    left.set_ylabel("output SNR gain (layer SNR after / before)")
    left.set_title("(a) pooling")
    left.legend(loc="upper left")

    # the ghost level minimising the MC residual at the output: layer 2's common input
    # (sum_i W2_ji (m_i - c0)) xi_MC reaches the output through W3 (times layer 2's slope)
    row_sums, drive = net.weights[1].sum(axis=1), net.weights[1] @ net.forward(x)[1]
    row_sums, drive = net.weights[2] @ row_sums, net.weights[2] @ drive
    level = float(row_sums @ drive / (row_sums @ row_sums))
    for name in ("AC", "MC"):
        color = NOISE_COLORS[name]
        for ghosted, style in ((False, "-"), (True, "--")):
            network = ghost_neurons(net, layers=1, level=level) if ghosted else net
            analytic, sim_var, sim_err = [], [], []
            for j, d in enumerate(INTENSITIES):
                noise = [Noise(**{name: float(d)}), Noise(), Noise()]
                analytic.append(float(np.mean(predict(network, noise, x, method="linear").var[-1])))
                sim = simulate(network, noise, x, samples, seed=SEED + 100 + j)
                sim_var.append(sim.noise_var[-1])
                sim_err.append(sim.noise_var_stderr[-1])
            key = f"ghost/{name}/{'with' if ghosted else 'without'}"
            curves[key] = {"intensity": INTENSITIES, "analytic": analytic, "monte_carlo": sim_var, "stderr": sim_err}
            numbers[key] = {"variance_at_max_intensity": analytic[-1], "monte_carlo": sim_var[-1]}
            if ghosted and name == "AC":
                continue          # exactly zero: nothing to draw on a log axis
            label = f"{name}, {'with ghost' if ghosted else 'no ghost'}"
            draw_analytic(right, INTENSITIES, analytic, color, label=label, ls=style)
            draw_monte_carlo(right, INTENSITIES, sim_var, sim_err, color)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("intensity D of layer 1's correlated noise")
    right.set_ylabel("output variance (per-neuron mean)")
    right.set_title("(b) ghost neuron (AC with ghost: exactly 0)")
    right.legend(loc="upper left")
    legend_keys(left, loc="lower right")
    record = {"caption": CAPTION, "fast": fast, "samples": samples, "seed": SEED, "copies": COPIES,
              "ghost_level": level, "numbers": numbers, "curves": curves}
    return write_figure(fig, outdir, STEM, FIGURE_ID, record, overwrite)
