"""Accuracy of the statistics-only recurrent recursion on trained echo state networks.

noiseprop.recurrent.symbolic.statistics_predict reduces a reservoir to N,
the mean and mean square of W (of W + W_in W_out when self-closed) and of
W_out, and per-step slope and signal statistics.  Here it is held against
the full linear-response propagation (noiseprop.recurrent.predict, which is
verified against Monte Carlo) on echo state networks whose readout is fitted
by ridge regression to one-step Mackey-Glass prediction (tanh, spectral
radius 0.9, bias scale 0.2, seed 3): dense uniform, random-uniform of density
0.1 and band (bandwidth 5) reservoirs of N = 100, and a dense N = 50 one with
leak 0.5; each noise type alone at D = 1e-6 (linear regime); 200 driven
steps, then 20 self-closed steps.  Reported: median and largest relative
error |stat / full - 1| of the per-neuron average reservoir noise variance
and of the output noise variance, driven and self-closed.

Usage: python benchmarks/recurrent_statistics_accuracy.py [--out DIR] [--force]
Writes DIR/recurrent_statistics_accuracy.json (default benchmarks/results).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _outputs import result_paths, write_results  # this folder: the script's own path comes first

from noiseprop import Noise
from noiseprop.noise import NOISE_TYPES
from noiseprop.recurrent import echo_state_network, predict
from noiseprop.recurrent.data import mackey_glass
from noiseprop.recurrent.symbolic import statistics_predict
from noiseprop.recurrent.training import ridge_readout

RESERVOIRS = {
    "dense N=100": dict(n=100),
    "density 0.1 N=100": dict(n=100, density=0.1),
    "band 5 N=100": dict(n=100, bandwidth=5),
    "dense N=50 leak 0.5": dict(n=50, leak=0.5),
}
D, DRIVEN, CLOSED = 1e-6, 200, 20


def _errors(approx, exact):
    rel = np.abs(approx / exact - 1)
    return {"median": float(np.median(rel)), "max": float(np.max(rel))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    [path] = result_paths(args.out, ["recurrent_statistics_accuracy.json"], args.force)  # now, not after the run
    series = mackey_glass(900) - 0.9
    rows = []
    for label, spec in RESERVOIRS.items():
        spec = dict(spec)
        esn = echo_state_network(spec.pop("n"), 1, 1, 0.9, seed=3, feedback=True, bias_scale=0.2, **spec)
        net = ridge_readout(esn, series[:600, None], series[1:601], ridge=1e-6, warmup=100)
        u = series[600: 600 + DRIVEN, None]
        for name in NOISE_TYPES:
            noise = Noise(**{name: D})
            full = predict(net, noise, u, generate=CLOSED)
            stats = statistics_predict(net, noise, u, generate=CLOSED)
            res, out = np.asarray(full.reservoir.noise_var)[1:], np.asarray(full.output.noise_var).ravel()[1:]
            row = {"reservoir": label, "noise": name,
                   "reservoir_driven": _errors(stats.var[1: DRIVEN + 1], res[:DRIVEN]),
                   "output_driven": _errors(stats.output_var[1: DRIVEN + 1], out[:DRIVEN]),
                   "output_closed": _errors(stats.output_var[DRIVEN + 1:], out[DRIVEN:])}
            rows.append(row)
            print(f"{label:20s} {name}: reservoir driven median {row['reservoir_driven']['median']:.3f}; output "
                  f"driven median {row['output_driven']['median']:.3f} (max {row['output_driven']['max']:.3g}); "
                  f"self-closed median {row['output_closed']['median']:.3g}")
    payload = {"intensity": D, "driven_steps": DRIVEN, "closed_steps": CLOSED, "rows": rows}
    write_results({path: json.dumps(payload, indent=2)}, args.force)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
