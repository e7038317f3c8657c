"""Reference benchmark of docs/model.md §8: noiseprop.simulate vs plain NumPy and PyTorch.

Network 784-100-100-100-100-10 (sigmoid hidden, linear output, weights
N(0, 1/fan-in) from seed 0, zero biases), one input uniform in [0, 1] from
seed 1, all four noise types at D = 1e-3 on every layer, R = 100 000
realisations; output: mean and variance of every neuron of every layer.

1. Speed: ``simulate`` (float64 and float32 engines) against a plain NumPy
   implementation of the same computation (realisations batched as matrix
   rows, one ``standard_normal`` call per noise term, chunks of 10 000 rows)
   and, when torch is installed, the PyTorch implementation a user would
   write (the same chunks as batched matmuls, ``torch.randn``,
   ``torch.set_num_threads(2)``, layer 1 computed once for the noise-free
   input) in float32 and float64, all timed in the same process (best of
   ``--repeat``, interleaved), with the ratios, the throughput in noisy
   neuron-updates per second and the fraction of this machine's measured
   GEMM and random-number throughput that each reaches, the agreement, and
   a table of how the time grows with the samples and the width.
2. Precision per second: plain vs variance-reduced (control variate)
   estimator: the variance-reduction factor and the time to know every
   layer's mean noise variance to +-1 % and +-0.1 % at 95 % confidence, at
   D = 1e-3 and 1e-4.

Usage::

    python benchmarks/reference_benchmark.py [--repeat 3] [--out DIR] [--force] [--quick]
        [--speed-only] [--compare-with CHECKOUT]

``--compare-with`` also times, interleaved with the others, the float64
``simulate`` of another checkout of noiseprop (e.g. a worktree of the
previous release) in a subprocess: the before/after ratio of a change,
measured in the same run.  ``--speed-only`` skips the scaling and precision
sections and writes ``reference_benchmark_speed.md``/``.json``.

prints the tables and writes DIR/reference_benchmark.md and .json (default
DIR benchmarks/results).  ``--quick`` uses fewer samples (a smoke run).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
from _outputs import result_paths, write_results  # this folder: the script's own path comes first

from noiseprop import Network, Noise, simulate
from noiseprop.io.builtin import REFERENCE_SIZES, reference_network
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


def torch_reference(net: Network, noise: Noise, x: np.ndarray, samples: int, seed: int, dtype: str):
    """The same computation in PyTorch (chunks of NUMPY_CHUNK realisations as batched
    matmuls, ``torch.randn``); layer 1 is computed once (its input is noise-free)."""
    import torch

    real = getattr(torch, dtype)
    generator = torch.Generator().manual_seed(seed)
    sd = {name: float(np.sqrt(getattr(noise, name))) for name in ("AU", "AC", "MU", "MC")}
    weights = [torch.tensor(w.T, dtype=real) for w in net.weights]
    biases = [torch.tensor(b, dtype=real) for b in net.biases]
    torch_f = {"sigmoid": torch.sigmoid, "linear": lambda z: z, "tanh": torch.tanh}
    activations = [torch_f[f.name] for f in net.activations]
    centre = [torch.tensor(c, dtype=torch.float64) for c in net.forward(x)]
    first = activations[0](torch.tensor(x, dtype=real) @ weights[0] + biases[0])
    sums = [torch.zeros(n, dtype=torch.float64) for n in net.sizes]
    squares = [torch.zeros(n, dtype=torch.float64) for n in net.sizes]

    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=real)

    done = 0
    with torch.no_grad():
        while done < samples:
            rows = min(NUMPY_CHUNK, samples - done)
            y = None
            for k in range(1, net.depth + 1):
                n = net.sizes[k]
                fz = first.expand(rows, n) if k == 1 else activations[k - 1](torch.addmm(biases[k - 1], y,
                                                                                         weights[k - 1]))
                y = (fz * (1.0 + sd["MU"] * randn(rows, n) + sd["MC"] * randn(rows, 1))
                     + sd["AU"] * randn(rows, n) + sd["AC"] * randn(rows, 1))
                d = y.to(torch.float64) - centre[k]
                sums[k] += d.sum(0)
                squares[k] += (d * d).sum(0)
            done += rows
    means = [c.numpy() + s.numpy() / samples for c, s in zip(centre, sums)]
    variances = [(q.numpy() - s.numpy() ** 2 / samples) / (samples - 1) for s, q in zip(sums, squares)]
    return means, variances


def machine_limits(net: Network, samples: int, repeat: int) -> dict:
    """This machine's measured throughput for the benchmark's own work: the matrix
    products of layers 2..L over ``samples`` rows (NumPy/OpenBLAS and torch, float32
    and float64, 2 threads) as seconds for all of them, and standard normals per second."""
    out = {}
    rows = NUMPY_CHUNK
    for dtype in ("float32", "float64"):
        ys = [np.ones((rows, w.shape[1]), dtype) for w in net.weights[1:]]
        ws = [np.ascontiguousarray(w.T, dtype) for w in net.weights[1:]]
        t, _ = best_time(lambda: [y @ w for y, w in zip(ys, ws)], repeat)
        out[f"numpy_gemm_{dtype}_s"] = t * samples / rows
        rng = np.random.default_rng(0)
        t, _ = best_time(lambda: rng.standard_normal(10**6, dtype=dtype), repeat)
        out[f"numpy_normals_{dtype}_per_s"] = 1e6 / t
    try:
        import torch
    except ImportError:
        return out
    torch.set_num_threads(2)
    for dtype in ("float32", "float64"):
        real = getattr(torch, dtype)
        ys = [torch.ones(rows, w.shape[1], dtype=real) for w in net.weights[1:]]
        ws = [torch.tensor(w.T, dtype=real) for w in net.weights[1:]]
        t, _ = best_time(lambda: [y @ w for y, w in zip(ys, ws)], repeat)
        out[f"torch_gemm_{dtype}_s"] = t * samples / rows
        t, _ = best_time(lambda: torch.randn(10**6, dtype=real), repeat)
        out[f"torch_normals_{dtype}_per_s"] = 1e6 / t
    return out


#: Times the float64 ``simulate`` of the reference benchmark in another checkout (run in it).
_BASELINE = """
import sys, time
from noiseprop import simulate
from noiseprop.io.builtin import reference_network
net, x, noise = reference_network()
simulate(net, noise, x, samples=1_000)
start = time.perf_counter()
simulate(net, noise, x, samples=int(sys.argv[1]), seed=0)
print(time.perf_counter() - start)
"""


def baseline_seconds(checkout: Path, samples: int) -> float:
    """Seconds of the float64 reference ``simulate`` of the noiseprop in ``checkout``
    (compiled or loaded outside the timing)."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = subprocess.run([sys.executable, "-c", _BASELINE, str(samples)], cwd=checkout, env=env,
                          capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def best_time(run, repeat: int) -> tuple[float, object]:
    best, result = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def speed(repeat: int, samples: int, baseline: "Path | None" = None) -> dict:
    net, x, noise = reference_network()
    runs = {
        "noiseprop float64": lambda: simulate(net, noise, x, samples=samples, seed=0, dtype="float64"),
        "noiseprop float32": lambda: simulate(net, noise, x, samples=samples, seed=0, dtype="float32"),
        "numpy float64": lambda: numpy_reference(net, noise, x, samples, 0),
    }
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(2)
        for dtype in ("float32", "float64"):
            runs[f"torch {dtype}"] = lambda dtype=dtype: torch_reference(net, noise, x, samples, 0, dtype)
    for dtype in ("float64", "float32"):  # compile (or load the cache) outside the timing
        simulate(net, noise, x, samples=1_000, dtype=dtype)
    if baseline is not None:
        runs["baseline float64"] = None
    seconds, results = {name: np.inf for name in runs}, {}
    for _ in range(repeat):  # interleaved: a change of the machine's load hits every contender
        for name, run in runs.items():
            if run is None:
                t, results[name] = baseline_seconds(baseline, samples), None
            else:
                t, results[name] = best_time(run, 1)
            seconds[name] = min(seconds[name], t)
    limits = machine_limits(net, samples, repeat)
    updates = samples * sum(net.sizes[1:])
    sim = results["noiseprop float64"]
    contenders = []
    for name, t in seconds.items():
        dtype = name.split()[-1]
        gemm = min(limits.get(f"torch_gemm_{dtype}_s", np.inf), limits[f"numpy_gemm_{dtype}_s"])
        normals = max(limits.get(f"torch_normals_{dtype}_per_s", 0), limits[f"numpy_normals_{dtype}_per_s"])
        # normal draws per realisation and layer: noiseprop one per neuron (f xi_MU + xi_AU combined)
        # plus xi_MC, xi_AC; the NumPy and PyTorch versions two per neuron plus two
        per_neuron = 2 if name.startswith(("numpy", "torch")) else 1
        draws = samples * sum(per_neuron * n + 2 for n in net.sizes[1:])
        contenders.append({
            "name": name, "seconds": t, "updates_per_s": updates / t,
            "vs_noiseprop_float64": t / seconds["noiseprop float64"],
            "vs_noiseprop_float32": t / seconds["noiseprop float32"],
            "gemm_fraction": gemm / t, "normals_fraction": draws / normals / t,
        })
    agreement = []
    for name, result in results.items():
        if name == "noiseprop float64" or result is None:
            continue
        means, variances = (result.mean, result.var) if hasattr(result, "var") else result
        for k in range(1, net.depth + 1):
            se = np.sqrt(2) * sim.noise_var_stderr[k]  # two runs of about the same error
            agreement.append({
                "contender": name, "layer": k, "noise_var": float(np.mean(variances[k])),
                "noiseprop_noise_var": float(sim.noise_var[k]),
                "z": float((np.mean(variances[k]) - sim.noise_var[k]) / se),
                "max_abs_mean_difference": float(np.max(np.abs(means[k] - sim.mean[k]))),
            })
    return {
        "samples": samples, "contenders": contenders, "limits": limits, "agreement": agreement,
        "numpy_s": seconds["numpy float64"], "simulate_s": seconds["noiseprop float64"],
        "simulate_float32_s": seconds["noiseprop float32"],
        "ratio": seconds["numpy float64"] / seconds["noiseprop float64"],
        "ratio_float32": seconds["numpy float64"] / seconds["noiseprop float32"],
        "updates_per_s": updates / seconds["noiseprop float64"],
        "numpy_updates_per_s": updates / seconds["numpy float64"],
        "baseline": None if baseline is None else {"checkout": str(baseline), "seconds": seconds["baseline float64"],
                                                   "ratio": seconds["baseline float64"] / seconds["noiseprop float64"]},
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
        "# Reference benchmark (docs/model.md §8)",
        "",
        f"Machine: {results['machine']}",
        "",
        "## Speed: noiseprop vs plain NumPy and PyTorch",
        "",
        f"R = {s['samples']} realisations, best of {results['repeat']} (interleaved runs). "
        f"time / noiseprop: how many times longer than noiseprop float64 / float32; GEMM: the time "
        f"this machine needs for the matrix products alone (the faster of a torch and a NumPy matmul of "
        f"the same shapes, 2 threads) as a fraction of the contender's time; normals: the same for its normal draws "
        f"at this machine's measured randn rate.",
        "",
        format_table(["contender", "seconds", "updates/s", "t / noiseprop f64", "t / noiseprop f32", "GEMM",
                      "normals"],
                     [[c["name"], f"{c['seconds']:.3f}", f"{c['updates_per_s']:.3g}",
                       f"{c['vs_noiseprop_float64']:.2f}", f"{c['vs_noiseprop_float32']:.2f}",
                       f"{c['gemm_fraction']:.0%}", f"{c['normals_fraction']:.0%}"] for c in s["contenders"]]),
        "",
        f"noiseprop float64 is **{s['ratio']:.1f}x** and float32 **{s['ratio_float32']:.1f}x** faster "
        f"than NumPy.",
        "",
    ]
    if s.get("baseline"):
        lines += [f"Float64 against the baseline checkout {s['baseline']['checkout']} (same run, interleaved): "
                  f"baseline {s['baseline']['seconds']:.3f} s, this one {s['simulate_s']:.3f} s: "
                  f"baseline / this = **{s['baseline']['ratio']:.2f}**.", ""]
    lines += [
        "Agreement with noiseprop float64 (z = difference of the layer's noise Var / combined standard "
        "error; every contender, noiseprop float32 included, has its own random numbers: an independent "
        "realisation, so |z| of order 1):",
        "",
        format_table(["contender", "layer", "noise Var", "noiseprop f64", "z", "max |mean diff|"],
                     [[a["contender"], str(a["layer"]), f"{a['noise_var']:.6g}", f"{a['noiseprop_noise_var']:.6g}",
                       f"{a['z']:+.2f}", f"{a['max_abs_mean_difference']:.2g}"] for a in s["agreement"]]),
        "",
    ]
    if results["scaling"]:
        lines += [
        "## Time vs samples and width (784-w-w-w-w-10)",
        "",
        format_table(["width", "samples", "seconds", "updates/s"],
                     [[str(r["width"]), str(r["samples"]), f"{r['seconds']:.3f}", f"{r['updates_per_s']:.3g}"]
                      for r in results["scaling"]]),
        "",
        ]
    if results["precision"]:
        lines += [
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
    if rows:
        lines.append(format_table(["D", "estimator, precision", "samples", "seconds", "gain"], rows))
    if results["precision"]:
        lines += ["", "Variance-reduction factor per layer 1..L (per sample; inf: exact, layer 1 is affine "
              "in its noise) and the asymptotic gain in time (smallest factor / cost ratio per sample):", ""]
    for p in results["precision"]:
        factors = ", ".join(f"{f:.3g}" for f in p["variance_reduction"])
        lines.append(f"- D = {p['D']:g}: [{factors}]; asymptotic gain {p['asymptotic_gain']:.3g}x")
    return "\n".join(lines) + "\n"


def _torch_version() -> str:
    try:
        import torch
    except ImportError:
        return "not installed"
    return torch.__version__


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--force", action="store_true", help="overwrite existing result files")
    parser.add_argument("--quick", action="store_true", help="fewer samples: a smoke run")
    parser.add_argument("--speed-only", action="store_true", help="only the speed table (no scaling, precision)")
    parser.add_argument("--compare-with", type=Path, default=None,
                        help="another noiseprop checkout whose float64 simulate is timed too (before/after)")
    args = parser.parse_args(argv)
    quick = args.quick
    stem = "reference_benchmark" + ("_quick" if quick else "") + ("_speed" if args.speed_only else "")
    md_path, json_path = result_paths(args.out, [f"{stem}.md", f"{stem}.json"], args.force)  # now, not after the run
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                   f"torch {_torch_version()}, "
                   f"numba {numba.__version__} with {numba.get_num_threads()} threads, numpy {np.__version__}, "
                   f"Python {platform.python_version()}; load average at start "
                   f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} (other processes share the CPUs)",
        "repeat": args.repeat,
        "speed": speed(args.repeat, 10_000 if quick else 100_000, args.compare_with),
        "scaling": [] if args.speed_only else scaling(1 if quick else args.repeat, (10_000, 30_000) if quick else (10_000, 30_000, 100_000, 300_000),
                           (50, 100) if quick else (50, 100, 200, 400)),
        "precision": [] if args.speed_only else [precision(d, 1 if quick else args.repeat) for d in (1e-3, 1e-4)],
    }
    results["machine"] += f"; load average at end {', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    text = report(results)
    print(text)
    write_results({md_path: text, json_path: json.dumps(results, indent=2)}, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
