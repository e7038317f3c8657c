"""Recurrent Monte Carlo benchmark: noiseprop.recurrent.simulate vs plain NumPy.

Echo state network: N = 200 tanh reservoir neurons (uniform reservoir,
spectral radius 0.9, seed 0), one input, one output, leak 1, driven by a
sine for T = 1000 steps; all four noise types at D = 1e-3 on the reservoir;
R = 10 000 realisations; output: mean and variance of every reservoir neuron
and output at every step.  Two reservoirs: dense, and sparse (density 0.05,
the usual echo-state choice).

The NumPy reference batches the realisations as matrix rows, advances them
step by step with a dense matrix product and draws every noise term with
one ``standard_normal`` call per step; it keeps the per-step sums of x and
x^2.  Both run in the same process; the ratio of their times (best of
``--repeat``) is reported with the agreement of their variances.
The noiseprop kernel multiplies by the dense reservoir through BLAS (as
NumPy does) and by the sparse one in compressed-row form; NumPy uses the
dense product in both cases (the plain implementation).

Usage::

    python benchmarks/recurrent_benchmark.py [--fast] [--repeat 2] [--out DIR] [--force]

``--fast``: N = 100, T = 200, R = 2000.  Writes DIR/recurrent_benchmark.json
(default DIR benchmarks/results).
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numba
import numpy as np
from reference_benchmark import best_time  # this folder: the script's own path comes first

from noiseprop import Noise
from noiseprop.recurrent import echo_state_network, simulate
from noiseprop.utils.files import atomic_write

D = 1e-3


def numpy_reference(net, noise: Noise, u: np.ndarray, samples: int, seed: int):
    """Plain NumPy: per-step mean and variance of every reservoir neuron and output."""
    rng = np.random.default_rng(seed)
    sd = {name: np.sqrt(getattr(noise, name)) for name in ("AU", "AC", "MU", "MC")}
    steps = u.shape[0]
    x = np.zeros((samples, net.n))
    drive = u @ net.W_in.T + net.bias
    sums, squares = np.zeros((steps, net.n)), np.zeros((steps, net.n))
    out_sums, out_squares = np.zeros((steps, net.n_out)), np.zeros((steps, net.n_out))
    a = net.leak
    for t in range(steps):
        f = net.activation(x @ net.W.T + drive[t])
        gain = 1.0 + sd["MU"] * rng.standard_normal((samples, net.n)) + sd["MC"] * rng.standard_normal((samples, 1))
        noisy = f * gain + sd["AU"] * rng.standard_normal((samples, net.n)) + sd["AC"] * rng.standard_normal((samples, 1))
        x = (1.0 - a) * x + a * noisy
        y = x @ net.W_out.T + net.output_bias
        sums[t] += x.sum(axis=0)
        squares[t] += (x * x).sum(axis=0)
        out_sums[t] += y.sum(axis=0)
        out_squares[t] += (y * y).sum(axis=0)
    mean = sums / samples
    var = (squares / samples - mean**2) * samples / (samples - 1)
    out_mean = out_sums / samples
    out_var = (out_squares / samples - out_mean**2) * samples / (samples - 1)
    return var, out_var


def run(n: int, steps: int, samples: int, repeat: int, density):
    net = echo_state_network(n, 1, 1, 0.9, density=density, input_scale=0.5, seed=0)
    noise = Noise(AU=D, AC=D, MU=D, MC=D)
    u = np.sin(0.2 * np.arange(steps))[:, None]
    simulate(net, noise, u[:3], 8)  # compile (cached on disk) outside the timing
    t_numba, sim = best_time(lambda: simulate(net, noise, u, samples, seed=0), repeat)
    t_numpy, (var_np, out_var_np) = best_time(lambda: numpy_reference(net, noise, u, samples, 1), repeat)
    var_nb = np.array(sim.reservoir.var[1:])
    agreement = float(np.median(np.abs(var_nb / var_np - 1)))
    return {
        "reservoir": "dense" if density is None else f"density {density}",
        "N": n, "T": steps, "R": samples, "seconds_noiseprop": t_numba, "seconds_numpy": t_numpy,
        "ratio": t_numpy / t_numba,
        "median_relative_difference_of_variances": agreement,
        "expected_relative_sampling_error": float(np.sqrt(2 / (samples - 1)) * np.sqrt(2)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="N=100, T=200, R=2000")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--force", action="store_true", help="overwrite an existing result file")
    args = parser.parse_args(argv)
    n, steps, samples = (100, 200, 2000) if args.fast else (200, 1000, 10_000)
    rows = [run(n, steps, samples, args.repeat, density) for density in (None, 0.05)]
    for row in rows:
        print(f"{row['reservoir']:>13}: N={row['N']} T={row['T']} R={row['R']}: noiseprop "
              f"{row['seconds_noiseprop']:.2f} s, NumPy {row['seconds_numpy']:.2f} s, ratio "
              f"{row['ratio']:.2f}x; median |var ratio - 1| {row['median_relative_difference_of_variances']:.3%}")
    payload = {"machine": platform.platform(), "threads": numba.get_num_threads(), "fast": args.fast,
               "noise": f"AU=AC=MU=MC={D}", "results": rows}
    name = "recurrent_benchmark_fast.json" if args.fast else "recurrent_benchmark.json"
    path = atomic_write(args.out / name, lambda h: h.write(json.dumps(payload, indent=2).encode()),
                        overwrite=args.force)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
