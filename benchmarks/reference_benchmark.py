"""Reference benchmark of spec section 8: noiseprop.simulate vs plain NumPy.

Network 784-100-100-100-100-10 (sigmoid hidden, linear output, weights
N(0, 1/fan-in) from seed 0, zero biases), one input uniform in [0, 1] from
seed 1, all four noise types at D = 1e-3 on every layer, R = 100 000
realisations; output: mean and variance of every neuron of every layer.

1. Speed: ``simulate`` against a plain NumPy implementation of the same
   computation (realisations batched as matrix rows, one ``standard_normal``
   call per noise term, chunks of 10 000 rows), timed in the same process
   (best of ``--repeat``), with the ratio, the throughput in noisy
   neuron-updates per second, the agreement of the two, and a table of how
   the time grows with the samples and the width.
2. Precision per second: plain vs variance-reduced (control variate)
   estimator: the variance-reduction factor and the time to know every
   layer's mean noise variance to +-1 % and +-0.1 % at 95 % confidence, at
   D = 1e-3 and 1e-4.

Usage::

    python benchmarks/reference_benchmark.py [--repeat 3] [--out DIR] [--force] [--quick]

prints the tables and writes DIR/reference_benchmark.md and .json (default
DIR benchmarks/results).  ``--quick`` uses fewer samples (a smoke run).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np

from noiseprop import Network, Noise, simulate
from noiseprop.io.builtin import REFERENCE_SIZES, reference_network
from noiseprop.utils.files import atomic_write
from noiseprop.utils.tables import format_table

NUMPY_CHUNK = 10_000


def numpy_reference(net: Network, noise: Noise, x: np.ndarray, samples: int, seed: int):
    """Plain NumPy Monte Carlo: mean and variance of every neuron of every layer.

    Realisations are matrix rows (chunks of NUMPY_CHUNK); every noise term is
    one ``standard_normal`` call; the running sums are of y minus the
    noise-free output (numerically stable shifted sums).
    """
    rng = np.random.default_rng(seed)
    sd = {name: np.sqrt(getattr(noise, name)) for name in ("AU", "AC", "MU", "MC")}
    centre = net.forward(x)
    sums = [np.zeros(n) for n in net.sizes]
    squares = [np.zeros(n) for n in net.sizes]
    done = 0
    while done < samples:
        rows = min(NUMPY_CHUNK, samples - done)
        y = np.broadcast_to(x, (rows, x.size))
        for k, (w, b, f) in enumerate(zip(net.weights, net.biases, net.activations), start=1):
            n = w.shape[0]
            fz = f(y @ w.T + b)
            y = (fz * (1.0 + sd["MU"] * rng.standard_normal((rows, n)) + sd["MC"] * rng.standard_normal((rows, 1)))
                 + sd["AU"] * rng.standard_normal((rows, n)) + sd["AC"] * rng.standard_normal((rows, 1)))
            d = y - centre[k]
            sums[k] += d.sum(axis=0)
            squares[k] += (d * d).sum(axis=0)
        done += rows
    means = [c + s / samples for c, s in zip(centre, sums)]
    variances = [(q - s * s / samples) / (samples - 1) for s, q in zip(sums, squares)]
    return means, variances


def best_time(run, repeat: int) -> tuple[float, object]:
    best, result = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def speed(repeat: int, samples: int) -> dict:
    net, x, noise = reference_network()
    simulate(net, noise, x, samples=1_000)  # compile (or load the cache) outside the timing
    updates = samples * sum(net.sizes[1:])
    t_numpy, (np_mean, np_var) = best_time(lambda: numpy_reference(net, noise, x, samples, 0), repeat)
    t_sim, sim = best_time(lambda: simulate(net, noise, x, samples=samples, seed=0), repeat)
    agreement = []
    for k in range(1, net.depth + 1):
        se = np.sqrt(2) * sim.noise_var_stderr[k]  # two independent runs of about the same error
        agreement.append({
            "layer": k,
            "numpy_noise_var": float(np.mean(np_var[k])),
            "simulate_noise_var": float(sim.noise_var[k]),
            "z": float((np.mean(np_var[k]) - sim.noise_var[k]) / se),
            "max_abs_mean_difference": float(np.max(np.abs(np_mean[k] - sim.mean[k]))),
        })
    return {
        "samples": samples, "numpy_s": t_numpy, "simulate_s": t_sim, "ratio": t_numpy / t_sim,
        "updates_per_s": updates / t_sim, "numpy_updates_per_s": updates / t_numpy, "agreement": agreement,
    }


def scaling(repeat: int, sample_grid, width_grid) -> list[dict]:
    rows = []
    for width in width_grid:
        sizes = (REFERENCE_SIZES[0],) + (width,) * 4 + (REFERENCE_SIZES[-1],)
        net, x, noise = reference_network(sizes)
        for samples in sample_grid:
            t, _ = best_time(lambda: simulate(net, noise, x, samples=samples, seed=0), repeat)
            rows.append({"width": width, "samples": samples, "seconds": t,
                         "updates_per_s": samples * sum(sizes[1:]) / t})
    return rows


def precision(intensity: float, repeat: int) -> dict:
    """Time to know every layer's noise_var to +-rtol (95 %), plain vs control variate.

    Real ``simulate(rtol=...)`` runs (best of ``repeat``), except plain
    sampling at 0.1 %, extrapolated from its 1 % run (the samples needed grow
    as 1/rtol^2).  Also the variance-reduction factor per layer (variance of
    the estimate times the samples, plain over reduced) and the asymptotic
    gain (the smallest factor over the cost ratio per sample).
    """
    net, x, noise = reference_network()
    noise = noise.scaled(intensity / noise.AU)
    out = {"D": intensity}
    runs = {}
    for name, cv, rtol in (("plain 1%", False, 0.01), ("reduced 1%", True, 0.01), ("reduced 0.1%", True, 0.001)):
        t, sim = best_time(lambda: simulate(net, noise, x, samples=10_000_000, seed=1, rtol=rtol,
                                            control_variate=cv), repeat)
        runs[name] = sim
        out[name] = {"seconds": t, "samples": sim.samples, "converged": sim.converged,
                     "seconds_per_sample": t / sim.samples}
    out["plain 0.1% (extrapolated)"] = {"seconds": 100 * out["plain 1%"]["seconds"],
                                        "samples": 100 * out["plain 1%"]["samples"]}
    plain, reduced = runs["plain 1%"], runs["reduced 0.1%"]
    per_sample = [(p**2 * plain.samples, r**2 * reduced.samples)
                  for p, r in zip(plain.noise_var_stderr[1:], reduced.noise_var_stderr[1:])]
    out["variance_reduction"] = [p / r if r > 0 else float("inf") for p, r in per_sample]
    cost = out["reduced 0.1%"]["seconds_per_sample"] / out["plain 1%"]["seconds_per_sample"]
    out["asymptotic_gain"] = min(out["variance_reduction"]) / cost
    out["gain_1pct"] = out["plain 1%"]["seconds"] / out["reduced 1%"]["seconds"]
    out["gain_01pct"] = out["plain 0.1% (extrapolated)"]["seconds"] / out["reduced 0.1%"]["seconds"]
    return out


def report(results: dict) -> str:
    s = results["speed"]
    lines = [
        "# Reference benchmark (spec section 8)",
        "",
        f"Machine: {results['machine']}",
        "",
        "## Speed: simulate vs plain NumPy",
        "",
        f"R = {s['samples']} realisations, best of {results['repeat']}: NumPy {s['numpy_s']:.3f} s, "
        f"simulate {s['simulate_s']:.3f} s: **{s['ratio']:.1f}x** faster; "
        f"{s['updates_per_s']:.3g} noisy neuron-updates/s (NumPy {s['numpy_updates_per_s']:.3g}).",
        "",
        "Agreement (independent random streams; z = difference / combined standard error):",
        "",
        format_table(["layer", "NumPy noise Var", "simulate noise Var", "z", "max |mean diff|"],
                     [[str(a["layer"]), f"{a['numpy_noise_var']:.6g}", f"{a['simulate_noise_var']:.6g}",
                       f"{a['z']:+.2f}", f"{a['max_abs_mean_difference']:.2g}"] for a in s["agreement"]]),
        "",
        "## Time vs samples and width (784-w-w-w-w-10)",
        "",
        format_table(["width", "samples", "seconds", "updates/s"],
                     [[str(r["width"]), str(r["samples"]), f"{r['seconds']:.3f}", f"{r['updates_per_s']:.3g}"]
                      for r in results["scaling"]]),
        "",
        "## Precision per second: plain vs variance-reduced (control variate)",
        "",
        "Time to know every layer's mean noise variance to +-1 % and +-0.1 % (95 %): real",
        "`simulate(rtol=...)` runs, except plain sampling at 0.1 % (extrapolated from its 1 % run);",
        "the variance-reduced runs include the fixed cost of `predict` and their first 1000 samples.",
        "",
    ]
    rows = []
    for p in results["precision"]:
        for name in ("plain 1%", "reduced 1%", "plain 0.1% (extrapolated)", "reduced 0.1%"):
            e = p[name]
            gain = {"reduced 1%": p["gain_1pct"], "reduced 0.1%": p["gain_01pct"]}.get(name)
            rows.append([f"{p['D']:g}", name, str(e["samples"]), f"{e['seconds']:.3g}",
                         f"{gain:.0f}x" if gain else ""])
    lines.append(format_table(["D", "estimator, precision", "samples", "seconds", "gain"], rows))
    lines += ["", "Variance-reduction factor per layer 1..L (per sample; inf: exact, layer 1 is affine "
              "in its noise) and the asymptotic gain in time (smallest factor / cost ratio per sample):", ""]
    for p in results["precision"]:
        factors = ", ".join(f"{f:.3g}" for f in p["variance_reduction"])
        lines.append(f"- D = {p['D']:g}: [{factors}]; asymptotic gain {p['asymptotic_gain']:.3g}x")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--force", action="store_true", help="overwrite existing result files")
    parser.add_argument("--quick", action="store_true", help="fewer samples: a smoke run")
    args = parser.parse_args(argv)
    quick = args.quick
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                   f"numba {numba.__version__} with {numba.get_num_threads()} threads, numpy {np.__version__}, "
                   f"Python {platform.python_version()}; load average at start "
                   f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} (other processes share the CPUs)",
        "repeat": args.repeat,
        "speed": speed(args.repeat, 10_000 if quick else 100_000),
        "scaling": scaling(1 if quick else args.repeat, (10_000, 30_000) if quick else (10_000, 30_000, 100_000, 300_000),
                           (50, 100) if quick else (50, 100, 200, 400)),
        "precision": [precision(d, 1 if quick else args.repeat) for d in (1e-3, 1e-4)],
    }
    text = report(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / ("reference_benchmark_quick" if quick else "reference_benchmark")
    try:
        atomic_write(stem.with_suffix(".md"), lambda h: h.write(text), overwrite=args.force, binary=False)
        atomic_write(stem.with_suffix(".json"), lambda h: json.dump(results, h, indent=2), overwrite=args.force,
                     binary=False)
    except FileExistsError as err:
        print(f"error: {err} (use --force)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
