"""Noise budget of a photonic MLP from measured noise intensities.

A photonic implementation of the shipped digits classifier (64-100-100-100-10,
sigmoid hidden layers, linear output).  The bench gives the standard
deviation of each noise source at a neuron's output; the model needs
intensities, i.e. variances D = sigma^2:

- photodetector shot and thermal noise: independent in every neuron -> AU
- laser relative intensity noise (RIN): one laser feeds a whole layer and
  scales every signal -> MC
- modulator/phase-shifter jitter: per neuron, proportional to the signal -> MU
- drift of the shared bias/supply: common to a layer -> AC

The script prints the per-layer noise table, how much of the output noise
each source causes, checks the prediction by Monte Carlo, and finds by how
much the noise must shrink to reach a target output SNR.

Run: ``python examples/photonic_noise_budget.py [--fast]``
"""
import argparse

from scipy.optimize import brentq

from noiseprop import NOISE_TYPES, Noise, default_network, predict, simulate
from noiseprop.utils.tables import format_table, layer_table

#: Measured standard deviations at a neuron output (output units).
MEASURED_STD = {"AU": 0.02, "AC": 0.005, "MU": 0.03, "MC": 0.01}
TARGET_SNR_DB = 30.0


def main(fast: bool = False) -> None:
    net, x = default_network(return_input=True)
    noise = Noise(**{name: std**2 for name, std in MEASURED_STD.items()})  # intensity = variance
    result = predict(net, noise, x)
    print(net)
    print("intensities (variances):", ", ".join(f"{k}={v:.3g}" for k, v in noise.intensities.items()))
    print(layer_table(result))

    total = result.noise_var[-1]
    rows = []
    for name in NOISE_TYPES:
        alone = predict(net, Noise(**{name: noise.intensities[name]}), x).noise_var[-1]
        rows.append([name, f"{MEASURED_STD[name]:g}", f"{alone:.4g}", f"{100 * alone / total:.1f} %"])
    print("\noutput noise caused by each source alone (linear response: the parts add up)")
    print(format_table(["source", "std", "output Var", "share"], rows))

    sim = simulate(net, noise, x, samples=20_000 if fast else 400_000, seed=0)
    print(f"\nMonte Carlo check of the output noise variance: {sim.noise_var[-1]:.5g} "
          f"+- {sim.noise_var_stderr[-1]:.2g} (predicted {total:.5g})")

    snr_db = result.layer_snr_db[-1]
    print(f"\noutput SNR {snr_db:.1f} dB; target {TARGET_SNR_DB:.0f} dB")
    if snr_db < TARGET_SNR_DB:
        # the factor by which every intensity must shrink (found with the full model)
        def margin(log_scale):
            return predict(net, noise.scaled(10**log_scale), x).layer_snr_db[-1] - TARGET_SNR_DB
        scale = 10 ** brentq(margin, -8, 0)
        print(f"-> every intensity must shrink by a factor {1 / scale:.3g} "
              f"(every std by {1 / scale**0.5:.3g}); start with the largest share, "
              f"{max(rows, key=lambda r: float(r[2]))[0]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="fewer Monte Carlo samples")
    main(parser.parse_args().fast)
