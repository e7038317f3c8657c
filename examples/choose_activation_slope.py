"""Applying the slope design rule to choose an activation.

Deep stacks of noisy neurons keep their noise bounded when the per-layer gain
of correlated noise, slope^2 * (w N)^2, is below one (spec section 5): for
weights w = 1/N that pass the mean on, the activation's slope at its working
point must stay below one.  This script takes candidate activations for a
30-layer analog network of width 32, finds each one's working point and
slope, applies the rule and checks the verdict with the predicted and the
simulated output SNR at depths 5 and 30.

Run: ``python examples/choose_activation_slope.py [--fast]``
"""
import argparse

import numpy as np

from noiseprop import Network, Noise, predict, simulate
from noiseprop.analysis.gains import layer_statistics
from noiseprop.utils.tables import format_table

WIDTH, DEPTH, INPUT = 32, 30, 0.5
NOISE = Noise(AU=1e-4, AC=1e-4, MU=1e-4, MC=1e-4)
CANDIDATES = ["linear(slope=1.05)", "linear", "linear(slope=0.9,offset=0.05)",
              "tanh(gain=2)", "sigmoid(gain=4)", "sigmoid"]


def main(fast: bool = False) -> None:
    weight = 1.0 / WIDTH
    critical = 1.0 / (abs(weight) * WIDTH)  # gain slope^2 (w N)^2 = 1
    x = np.full(WIDTH, INPUT)
    rows, best = [], None
    for i, spec in enumerate(CANDIDATES):
        net = Network.symmetric(DEPTH, WIDTH, weight, activation=spec)
        slope = float(layer_statistics(net, x)[-1].slope[0])  # f'(z) at the deep working point
        gain = slope**2 * (weight * WIDTH) ** 2
        snr = predict(net, NOISE, x).layer_snr_db
        sim = simulate(net, NOISE, x, samples=5_000 if fast else 100_000, seed=i)
        bounded = gain < 1
        rows.append([spec, f"{net.forward(x)[-1][0]:.3g}", f"{slope:.3f}", f"{gain:.3f}",
                     "yes" if bounded else "NO", f"{snr[5]:.1f}", f"{snr[DEPTH]:.1f}",
                     f"{sim.layer_snr_db[DEPTH]:.1f}"])
        if bounded and (best is None or snr[DEPTH] > best[1]):
            best = (spec, snr[DEPTH])
    print(f"symmetric network: {DEPTH} layers of {WIDTH}, weights 1/N, input {INPUT}; "
          f"all four noise types at D = 1e-4; critical slope {critical:g}")
    print(format_table(["activation", "mean", "slope", "gain", "bounded", "SNR L=5 [dB]",
                        f"SNR L={DEPTH} [dB]", "Monte Carlo"], rows))
    print(f"\nchoice: {best[0]} (bounded accumulation, highest output SNR at depth {DEPTH}: {best[1]:.1f} dB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="fewer Monte Carlo samples")
    main(parser.parse_args().fast)
