"""Ranking layers by noise sensitivity.

Which layer's noise hurts the output most, i.e. where is better (quieter)
hardware worth its price?  Put noise of one type into one layer at a time
(the others noise-free), predict the output noise variance it causes and
rank the layers; Monte Carlo confirms each number.  Shown for the shipped
digits classifier, for uncorrelated additive (AU) and correlated
multiplicative (MC) noise at intensity (variance) 1e-3.

Run: ``python examples/rank_layers.py [--fast]``
"""
import argparse

from noiseprop import Noise, default_network, predict, simulate
from noiseprop.utils.tables import format_table

INTENSITY = 1e-3


def output_variance_by_layer(net, x, name: str, samples: int):
    """(layer, predicted, simulated, stderr) of the output noise variance
    when only that layer has noise ``name``."""
    rows = []
    for layer in range(1, net.depth + 1):
        noise = [Noise(**{name: INTENSITY}) if k == layer else None for k in range(1, net.depth + 1)]
        predicted = predict(net, noise, x).noise_var[-1]
        sim = simulate(net, noise, x, samples=samples, seed=layer)
        rows.append((layer, predicted, sim.noise_var[-1], sim.noise_var_stderr[-1]))
    return rows


def main(fast: bool = False) -> dict:
    net, x = default_network(return_input=True)
    print(net)
    rankings = {}
    for name in ("AU", "MC"):
        rows = output_variance_by_layer(net, x, name, samples=5_000 if fast else 100_000)
        ranked = sorted(rows, key=lambda row: -row[1])
        rankings[name] = [row[0] for row in ranked]
        print(f"\n{name} noise D = {INTENSITY:g} in one layer at a time; output noise variance:")
        print(format_table(
            ["rank", "layer", "predicted", "Monte Carlo", "+-2 s.e."],
            [[str(i + 1), str(k), f"{p:.4g}", f"{s:.4g}", f"{2 * se:.2g}"] for i, (k, p, s, se) in enumerate(ranked)],
        ))
        print(f"most sensitive: layer {rankings[name][0]}")
    return rankings


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="fewer Monte Carlo samples")
    main(parser.parse_args().fast)
