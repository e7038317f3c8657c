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

With ``--torch`` the same plain implementation in PyTorch (CPU, float64,
``torch.randn``) is timed too.  The noiseprop kernel propagates each
realisation's deviation from the noise-free trajectory in single precision
(``precision="mixed"``, the default: float32 product, noise, activation
deviation and draws, float64 trajectory and sums); ``--double`` times
``precision="double"`` as well.  The NumPy reference draws the MU and AU
terms separately (two normals per neuron, the plain way); noiseprop draws one
normal per neuron for their sum (same distribution) and keeps more sums
(third and fourth powers, per-realisation sums).

Usage::

    python benchmarks/recurrent_benchmark.py [--fast] [--samples R] [--repeat 2] [--torch] [--double]
                                             [--out DIR] [--force]

``--fast``: N = 100, T = 200, R = 2000.  ``--samples`` lowers R (the times
grow linearly with R, so the ratio hardly depends on it; on a loaded
machine the NumPy reference alone takes minutes at R = 10 000).  Writes
DIR/recurrent_benchmark.json (default DIR benchmarks/results).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numba
import numpy as np

# this folder (the script's own path comes first):
from _outputs import result_paths, write_results
from reference_benchmark import best_time

from noiseprop import Noise
from noiseprop.recurrent import echo_state_network, simulate

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
    W_t = net.W.T
    for t in range(steps):
        f = np.tanh(x @ W_t + drive[t])  # the benchmark's activation: tanh, gain 1 (checked in run)
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


def torch_reference(net, noise: Noise, u: np.ndarray, samples: int, seed: int):
    """The plain implementation of :func:`numpy_reference` in PyTorch (CPU, float64)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    sd = {name: float(np.sqrt(getattr(noise, name))) for name in ("AU", "AC", "MU", "MC")}
    W_t, W_out_t = torch.from_numpy(net.W.T.copy()), torch.from_numpy(net.W_out.T.copy())
    drive = torch.from_numpy(u @ net.W_in.T + net.bias)
    out_bias = torch.from_numpy(net.output_bias)
    x = torch.zeros((samples, net.n), dtype=torch.float64)
    sums, squares = torch.zeros((u.shape[0], net.n), dtype=torch.float64), torch.zeros((u.shape[0], net.n), dtype=torch.float64)
    out_sums = torch.zeros((u.shape[0], net.n_out), dtype=torch.float64)
    out_squares = torch.zeros_like(out_sums)
    a = net.leak

    def normal(*shape):
        return torch.randn(shape, generator=gen, dtype=torch.float64)

    for t in range(u.shape[0]):
        f = torch.tanh(x @ W_t + drive[t])
        gain = 1.0 + sd["MU"] * normal(samples, net.n) + sd["MC"] * normal(samples, 1)
        noisy = f * gain + sd["AU"] * normal(samples, net.n) + sd["AC"] * normal(samples, 1)
        x = (1.0 - a) * x + a * noisy
        y = x @ W_out_t + out_bias
        sums[t] += x.sum(0)
        squares[t] += (x * x).sum(0)
        out_sums[t] += y.sum(0)
        out_squares[t] += (y * y).sum(0)
    mean = sums.numpy() / samples
    return (squares.numpy() / samples - mean**2) * samples / (samples - 1)


def run(n: int, steps: int, samples: int, repeat: int, density, torch: bool = False, double: bool = False):
    net = echo_state_network(n, 1, 1, 0.9, density=density, input_scale=0.5, seed=0)
    assert net.activation.kernel_params() == (1.0, 0.0), "the references hard-code tanh with gain 1"
    noise = Noise(AU=D, AC=D, MU=D, MC=D)
    u = np.sin(0.2 * np.arange(steps))[:, None]
    for precision in ("mixed", "double") if double else ("mixed",):
        simulate(net, noise, u[:3], 8, precision=precision)  # compile (cached on disk) outside the timing
    t_numba, sim = best_time(lambda: simulate(net, noise, u, samples, seed=0), repeat)
    t_numpy, (var_np, out_var_np) = best_time(lambda: numpy_reference(net, noise, u, samples, 1), repeat)
    var_nb = np.array(sim.reservoir.var[1:])
    agreement = float(np.median(np.abs(var_nb / var_np - 1)))
    row = {
        "reservoir": "dense" if density is None else f"density {density}",
        "N": n, "T": steps, "R": samples, "seconds_noiseprop": t_numba, "seconds_numpy": t_numpy,
        "ratio": t_numpy / t_numba,
        "median_relative_difference_of_variances": agreement,
        "expected_relative_sampling_error": float(np.sqrt(2 / (samples - 1)) * np.sqrt(2)),
    }
    if double:
        t_double, _ = best_time(lambda: simulate(net, noise, u, samples, seed=0, precision="double"), repeat)
        row.update(seconds_noiseprop_double=t_double, ratio_double=t_numpy / t_double)
    if torch:
        t_torch, var_torch = best_time(lambda: torch_reference(net, noise, u, samples, 1), repeat)
        row.update(seconds_torch=t_torch, ratio_vs_torch=t_torch / t_numba,
                   median_relative_difference_vs_torch=float(np.median(np.abs(var_nb / var_torch - 1))))
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="N=100, T=200, R=2000")
    parser.add_argument("--samples", type=int, help="realisations R (default 10 000; 2000 with --fast)")
    parser.add_argument("--torch", action="store_true", help="also time a plain PyTorch implementation")
    parser.add_argument("--double", action="store_true", help="also time precision='double'")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--force", action="store_true", help="overwrite an existing result file")
    args = parser.parse_args(argv)
    n, steps, samples = (100, 200, 2000) if args.fast else (200, 1000, 10_000)
    samples = args.samples or samples
    name = "recurrent_benchmark_fast.json" if args.fast else "recurrent_benchmark.json"
    [path] = result_paths(args.out, [name], args.force)  # now, not after the run
    rows, load_before = [], os.getloadavg()
    for density in (None, 0.05):
        row = run(n, steps, samples, args.repeat, density, args.torch, args.double)
        rows.append(row)
        print(f"{row['reservoir']:>13}: N={row['N']} T={row['T']} R={row['R']}: noiseprop "
              f"{row['seconds_noiseprop']:.2f} s, NumPy {row['seconds_numpy']:.2f} s, ratio "
              f"{row['ratio']:.2f}x; median |var ratio - 1| {row['median_relative_difference_of_variances']:.3%}", flush=True)
        if "ratio_double" in row:
            print(f"{'':>13}  precision='double': {row['seconds_noiseprop_double']:.2f} s, ratio {row['ratio_double']:.2f}x")
        if "ratio_vs_torch" in row:
            print(f"{'':>13}  PyTorch {row['seconds_torch']:.2f} s, noiseprop {row['ratio_vs_torch']:.2f}x faster", flush=True)
    payload = {"machine": platform.platform(), "threads": numba.get_num_threads(), "fast": args.fast,
               "noise": f"AU=AC=MU=MC={D}", "repeat": args.repeat,
               "load_average_1min": {"start": load_before[0], "end": os.getloadavg()[0]}, "results": rows}
    payload["samples_note"] = "R lowered with --samples" if args.samples else "default R"
    write_results({path: json.dumps(payload, indent=2)}, args.force)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
