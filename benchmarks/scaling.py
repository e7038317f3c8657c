"""Scaling of time and memory: predict (full and output-only), simulate, verify.

Sweeps, each from one base case (tanh hidden layers, linear output, weights
N(0, 1/fan-in) from seed 0, inputs uniform in [0, 1] from seed 1, all four
noise types at D = 1e-3 on every layer):

- width N of the hidden layers (network N-N-N-N-10, one input);
- depth L (100-wide hidden layers, 10 outputs, one input);
- batch B of inputs (100-100-100-100-10);
- samples R (the reference network 784-100-100-100-100-10, one input;
  simulate and verify only).

For every point: wall time (best of a few runs below 0.2 s) and peak
memory of NumPy allocations (tracemalloc); a series stops when one point
takes longer than the cap.  Exponents are least-squares slopes of
log(time) and log(peak) against log(parameter).  Two headline comparisons:

1. output-layer statistics of a 4-layer 1024-wide network (1024-1024-1024-
   1024-10) over 1000 inputs, adjoint (``predict(..., layers=[L])``) against
   the full ``predict`` (timed on a few inputs and extrapolated linearly in
   the inputs: its cost is per input), with the adjoint's peak memory;
2. analytic accuracy of a 10 000-image test set (Fashion-MNIST test images
   when the Debian package is installed, else uniform inputs; labels = the
   clean network's classes) against one Monte Carlo pass (``accuracy`` with
   1000 realisations per input, no analytic part), both timed on subsets
   and extrapolated linearly.

Finally the cost model of :mod:`noiseprop.utils.estimate` is refitted
(non-negative least squares on relative errors) and printed beside the
coefficients in use.

Usage::

    python benchmarks/scaling.py [--fast] [--out DIR] [--force]
    python benchmarks/scaling.py --mixture [--out DIR] [--force]

writes DIR/scaling.md and DIR/scaling.json (default benchmarks/results).
``--fast``: fewer and smaller points (about a minute).  ``--mixture``: only
the cost of ``predict(..., method="mixture")`` (the default method, with its
error estimate, as the CLI runs it) on the width, depth and batch networks
(MIXTURE_POINTS), its cost model ("predict-mixture") and its ratio to the
linear model; writes DIR/scaling_mixture.md and .json (a few minutes).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _outputs import result_paths, write_results  # this folder: the script's own path comes first

from noiseprop import Network, Noise, predict, simulate, verify
from noiseprop.studies.accuracy import accuracy, analytic_accuracy
from noiseprop.utils.estimate import COST_MODEL, estimate_seconds, work_counts
from noiseprop.utils.jsonutil import dumps
from noiseprop.utils.tables import format_table

NOISE = Noise(AU=1e-3, AC=1e-3, MU=1e-3, MC=1e-3)
#: Linear response everywhere: the recursion that the output-only path shares
#: (the "mixture" default of predict and verify costs a few times more).
METHOD = "linear"
TASKS = ("predict", "predict-output", "simulate", "verify")
FASHION = Path("/usr/share/datasets/fashion-mnist")

#: sweep -> points of the --mixture measurement (the default method's cost model)
MIXTURE_POINTS = {"width": [100, 200, 400, 800], "depth": [2, 5, 10], "batch": [1, 10, 100]}

#: sweep -> (full-mode points, fast-mode points, tasks)
SWEEPS = {
    "width": ([100, 200, 400, 800, 1600, 4096], [100, 200, 400], TASKS),
    "depth": ([2, 5, 10, 20, 50], [2, 5, 10], TASKS),
    "batch": ([1, 10, 100, 1000, 10000], [1, 10, 100], TASKS),
    "samples": ([1000, 10_000, 100_000, 1_000_000], [1000, 10_000], ("simulate", "verify")),
}


def network(sizes, seed: int = 0) -> Network:
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 1 / np.sqrt(a), (b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
    return Network.from_arrays(weights, None, ["tanh"] * (len(sizes) - 2) + ["linear"])


def inputs(count: int, width: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (count, width))


def case(sweep: str, value: int, fast: bool) -> tuple[tuple[int, ...], int, int]:
    """(sizes, inputs, samples) of one point of a sweep."""
    if sweep == "width":
        return (value,) * 4 + (10,), 1, 2000
    if sweep == "depth":
        return (100,) * value + (10,), 1, 2000 if fast else 10_000
    if sweep == "batch":
        return (100, 100, 100, 100, 10), value, 1000
    return (784, 100, 100, 100, 100, 10), 1, value


def run_task(task: str, net: Network, x: np.ndarray, samples: int):
    if task == "predict":
        return predict(net, NOISE, x, method=METHOD)
    if task == "predict-output":
        return predict(net, NOISE, x, layers=[net.depth], method=METHOD)
    if task == "simulate":
        return simulate(net, NOISE, x, samples=samples, seed=0)
    return verify(net, NOISE, x, samples=samples, method=METHOD)


def measure(run) -> tuple[float, int]:
    """Wall time (best of up to 4 runs while below 0.5 s) and traced peak bytes."""
    tracemalloc.start()
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    for _ in range(3):
        if seconds > 0.5:
            break
        start = time.perf_counter()
        run()
        seconds = min(seconds, time.perf_counter() - start)
    return seconds, peak


def sweep(name: str, fast: bool, cap: float) -> list[dict]:
    full_points, fast_points, tasks = SWEEPS[name]
    rows = []
    for task in tasks:
        for value in fast_points if fast else full_points:
            sizes, count, samples = case(name, value, fast)
            net, x = network(sizes), inputs(count, sizes[0])
            seconds, peak = measure(lambda: run_task(task, net, x, samples))
            rows.append({"sweep": name, "value": value, "task": task, "sizes": list(sizes), "inputs": count,
                         "samples": samples, "seconds": seconds, "peak_mb": peak / 2**20})
            print(f"  {name}={value:<8} {task:15s} {seconds:9.3f} s  {peak / 2**20:9.1f} MB", flush=True)
            if seconds > cap:
                break
    return rows


def exponents(rows: list[dict]) -> list[dict]:
    """Log-log least-squares slopes of time and peak memory per (sweep, task)."""
    fits = []
    for name in SWEEPS:
        for task in TASKS:
            points = [r for r in rows if r["sweep"] == name and r["task"] == task]
            if len(points) < 2:
                continue
            x = np.log([r["value"] for r in points])
            fits.append({
                "sweep": name, "task": task, "points": len(points),
                "range": f"{points[0]['value']}..{points[-1]['value']}",
                "time_exponent": float(np.polyfit(x, np.log([r["seconds"] for r in points]), 1)[0]),
                "memory_exponent": float(np.polyfit(x, np.log([max(r["peak_mb"], 1e-3) for r in points]), 1)[0]),
            })
    return fits


def output_only_headline(fast: bool) -> dict:
    """Output statistics of 1024-1024-1024-1024-10 over 1000 inputs: adjoint vs full predict."""
    sizes, count, subset = (1024, 1024, 1024, 1024, 10), 100 if fast else 1000, 2
    net, x = network(sizes), inputs(count, sizes[0])
    full_seconds, full_peak = measure(lambda: predict(net, NOISE, x[:subset], method=METHOD))
    output_seconds, output_peak = measure(lambda: predict(net, NOISE, x, layers=[net.depth], method=METHOD))
    full = predict(net, NOISE, x[:subset], full_covariance=True, method=METHOD)
    selected = predict(net, NOISE, x[:subset], full_covariance=True, layers=[net.depth], method=METHOD)
    difference = float(np.max(np.abs(selected.cov[-1] - full.cov[-1])) / np.max(np.abs(full.cov[-1])))
    additive = Noise(AU=1e-3, AC=1e-3, MC=1e-3)
    exact = float(np.max(np.abs(predict(net, additive, x[:subset], layers=[4], full_covariance=True, method=METHOD).cov[-1]
                                - predict(net, additive, x[:subset], full_covariance=True, method=METHOD).cov[-1]))
                  / np.max(np.abs(predict(net, additive, x[:subset], full_covariance=True, method=METHOD).cov[-1])))
    full_extrapolated = full_seconds * count / subset
    return {
        "sizes": list(sizes), "inputs": count, "full_inputs_timed": subset,
        "full_seconds_measured": full_seconds, "full_seconds_extrapolated": full_extrapolated,
        "full_peak_mb_measured": full_peak / 2**20,
        "output_seconds": output_seconds, "output_peak_mb": output_peak / 2**20,
        "speedup": full_extrapolated / output_seconds,
        "relative_difference_all_noise": difference, "relative_difference_without_MU": exact,
    }


def test_set(count: int, width: int) -> np.ndarray:
    """Fashion-MNIST test images scaled to [0, 1] if installed, else uniform inputs."""
    if width == 784 and FASHION.is_dir():
        from noiseprop.io.datasets import load_idx

        try:
            images = load_idx(FASHION)[2]
            return np.resize(images, (count, 784))
        except (OSError, ValueError):
            pass
    return inputs(count, width)


def accuracy_headline(sizes, fast: bool) -> dict:
    """Analytic accuracy vs one Monte Carlo pass (1000 realisations) over 10 000 inputs."""
    total, samples = 10_000, 1000
    analytic_subset = 50 if fast else 400
    mc_subset = 10 if fast else (200 if max(sizes) <= 100 else 25)
    net = network(sizes)
    X = test_set(total, sizes[0])
    y = np.argmax(net.forward(X[: max(analytic_subset, mc_subset)])[-1], axis=1)
    noise = Noise(AU=1e-2, AC=1e-2, MU=1e-2, MC=1e-2)
    start = time.perf_counter()
    predicted = analytic_accuracy(net, noise, X[:analytic_subset], y[:analytic_subset], method=METHOD)
    analytic_seconds = time.perf_counter() - start
    start = time.perf_counter()
    measured = accuracy(net, noise, X[:mc_subset], y[:mc_subset], samples=samples, analytic=False)
    mc_seconds = time.perf_counter() - start
    layer_seconds = measure(lambda: predict(net, noise, X[:analytic_subset], layers=[net.depth], method=METHOD))[0]
    analytic_total, mc_total = analytic_seconds * total / analytic_subset, mc_seconds * total / mc_subset
    return {
        "sizes": list(sizes), "inputs": total, "samples": samples, "data": "fashion-mnist"
        if FASHION.is_dir() and sizes[0] == 784 else "uniform",
        "analytic_inputs_timed": analytic_subset, "mc_inputs_timed": mc_subset,
        "analytic_seconds_extrapolated": analytic_total, "mc_seconds_extrapolated": mc_total,
        "output_statistics_seconds_extrapolated": layer_seconds * total / analytic_subset,
        "ratio_mc_over_analytic": mc_total / analytic_total,
        "predicted_accuracy_subset": predicted, "mc_accuracy_subset": measured.accuracy,
    }


def fit_task(task: str, rows: list[dict]) -> tuple[float, ...]:
    """Non-negative least squares, relative errors, of one task's seconds on its work counts."""
    from scipy.optimize import nnls

    points = [r for r in rows if r["task"] == task]
    features = np.array([work_counts(task, r["sizes"], r["inputs"], r["samples"]) for r in points])
    seconds = np.array([r["seconds"] for r in points])
    return tuple(float(c) for c in nnls(features / seconds[:, None], np.ones(len(points)))[0])


def fit_cost_model(rows: list[dict], accuracy_rows: list[dict]) -> dict:
    """The cost model of every task measured by the sweeps (:func:`fit_task`)."""
    model = {task: fit_task(task, rows) for task in ("predict", "predict-output", "simulate")}
    cdf = [(r["analytic_seconds_extrapolated"] - r["output_statistics_seconds_extrapolated"]) / r["inputs"]
           for r in accuracy_rows]
    model["accuracy-cdf"] = (0.0, float(max(np.mean(cdf), 0.0)))
    return model


def report(results: dict) -> str:
    rows = results["rows"]
    lines = ["# Scaling of time and memory", "",
             f"{results['machine']}; mode {'fast' if results['fast'] else 'full'}; "
             f"total run {results['total_seconds']:.0f} s.  Noise: all four types at 1e-3 on every layer; "
             "tanh hidden layers, linear output; method \"linear\"; BLAS on one thread.  Peak memory: NumPy allocations "
             "(tracemalloc).", ""]
    head = results["output_only"]
    lines += ["## Output-layer statistics: adjoint vs full propagation", "",
              f"Network {'-'.join(map(str, head['sizes']))}, {head['inputs']} inputs: full `predict` "
              f"{head['full_seconds_measured']:.2f} s on {head['full_inputs_timed']} inputs, extrapolated "
              f"{head['full_seconds_extrapolated']:.0f} s; `predict(..., layers=[4])` "
              f"{head['output_seconds']:.2f} s: **{head['speedup']:.0f}x faster**, peak "
              f"{head['output_peak_mb']:.0f} MB (full predict on {head['full_inputs_timed']} inputs: "
              f"{head['full_peak_mb_measured']:.0f} MB).  Largest relative difference of the output covariance: "
              f"{head['relative_difference_without_MU']:.1e} without uncorrelated multiplicative (MU) noise, "
              f"{head['relative_difference_all_noise']:.1e} with MU = 1e-3 (the second-order term the "
              "adjoint leaves out).", ""]
    lines += ["## Analytic accuracy of a 10 000-image test set vs one Monte Carlo pass", ""]
    table = [[ "-".join(map(str, r["sizes"])), r["data"], f"{r['analytic_seconds_extrapolated']:.0f}",
               f"{r['output_statistics_seconds_extrapolated']:.1f}", f"{r['mc_seconds_extrapolated']:.0f}",
               f"{r['ratio_mc_over_analytic']:.1f}"] for r in results["accuracy"]]
    lines += ["```", format_table(["network", "inputs", "analytic [s]", "of which statistics [s]",
                                   "Monte Carlo 1000/input [s]", "MC / analytic"], table), "```", "",
              "Both timed on subsets and extrapolated linearly to 10 000 inputs (see scaling.json); "
              "noise 1e-2 of every type.  The analytic time is mostly the Gaussian CDF of each input "
              "(scipy's quasi-Monte-Carlo), not the propagation.", ""]
    lines += ["## Fitted exponents (time ~ parameter^a, peak memory ~ parameter^b)", "", "```",
              format_table(["sweep", "task", "points", "range", "time a", "memory b"],
                           [[f["sweep"], f["task"], str(f["points"]), f["range"], f"{f['time_exponent']:.2f}",
                             f"{f['memory_exponent']:.2f}"] for f in results["exponents"]]), "```", ""]
    lines += ["## All points", "", "```",
              format_table(["sweep", "value", "task", "network", "inputs", "samples", "time [s]", "peak [MB]",
                            "model [s]"],
                           [[r["sweep"], str(r["value"]), r["task"], "-".join(map(str, r["sizes"])),
                             str(r["inputs"]), str(r["samples"]) if r["task"] in ("simulate", "verify") else "-",
                             f"{r['seconds']:.3g}", f"{r['peak_mb']:.3g}",
                             f"{estimate_seconds(r['task'], r['sizes'], r['inputs'], r['samples'], model=results['fitted_model']):.3g}"]
                            for r in rows]), "```", ""]
    lines += ["## Cost model (seconds per unit of work; noiseprop.utils.estimate)", "", "```",
              format_table(["task", "fitted here", "in noiseprop.utils.estimate"],
                           [[t, ", ".join(f"{c:.3g}" for c in results["fitted_model"][t]),
                             ", ".join(f"{c:.3g}" for c in COST_MODEL[t])] for t in COST_MODEL]), "```", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="fewer, smaller points (a quick check)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--force", action="store_true", help="overwrite existing result files")
    parser.add_argument("--mixture", action="store_true",
                        help="only the cost model of method \"mixture\" (scaling_mixture.md/.json)")
    args = parser.parse_args(argv)
    names = ["scaling_mixture.md", "scaling_mixture.json"] if args.mixture else ["scaling.md", "scaling.json"]
    md_path, json_path = result_paths(args.out, names, args.force)  # not after minutes
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        results = run_mixture() if args.mixture else run_all(args.fast)
    text = mixture_report(results) if args.mixture else report(results)
    print(text)
    write_results({md_path: text + "\n", json_path: dumps(results)}, args.force)
    return 0


def run_all(fast: bool) -> dict:
    """Every sweep and headline (BLAS on one thread: stable timings on a shared machine)."""
    started = time.perf_counter()
    simulate(network((4, 4, 2)), NOISE, inputs(1, 4), samples=100)  # compile the kernels first
    cap = 3.0 if fast else 15.0
    rows = []
    for name in SWEEPS:
        print(f"sweep {name}", flush=True)
        rows += sweep(name, fast, cap)
    print("output-only headline", flush=True)
    head = output_only_headline(fast)
    print(f"  speed-up {head['speedup']:.0f}x, peak {head['output_peak_mb']:.0f} MB", flush=True)
    print("accuracy headline", flush=True)
    accuracy_rows = [accuracy_headline(sizes, fast)
                     for sizes in ((784, 100, 100, 100, 100, 10), (784, 1024, 1024, 1024, 10))]
    for r in accuracy_rows:
        print(f"  {r['sizes']}: MC / analytic {r['ratio_mc_over_analytic']:.1f}", flush=True)
    results = {
        "machine": f"{platform.machine()} {platform.processor() or ''} Python {platform.python_version()}, "
                   f"NumPy {np.__version__}",
        "fast": fast, "blas_threads": 1, "rows": rows, "exponents": exponents(rows), "output_only": head,
        "accuracy": accuracy_rows, "fitted_model": fit_cost_model(rows, accuracy_rows),
        "total_seconds": time.perf_counter() - started,
    }
    return results


def run_mixture() -> dict:
    """predict(..., method="mixture") (with its error estimate, as the CLI runs it) and
    linear response on the MIXTURE_POINTS networks; the mixture's cost model and ratio."""
    started = time.perf_counter()
    rows = []
    for name, values in MIXTURE_POINTS.items():
        for value in values:
            sizes, count, _ = case(name, value, fast=False)
            net, x = network(sizes), inputs(count, sizes[0])
            for task, method in (("predict", "linear"), ("predict-mixture", "mixture")):
                seconds, peak = measure(lambda: predict(net, NOISE, x, method=method))
                rows.append({"sweep": name, "value": value, "task": task, "sizes": list(sizes), "inputs": count,
                             "samples": 0, "seconds": seconds, "peak_mb": peak / 2**20})
                print(f"  {name}={value:<6} {task:16s} {seconds:9.3f} s  {peak / 2**20:9.1f} MB", flush=True)
    linear = {(r["sweep"], r["value"]): r["seconds"] for r in rows if r["task"] == "predict"}
    for r in rows:
        if r["task"] == "predict-mixture":
            r["linear_seconds"] = linear[r["sweep"], r["value"]]
            r["ratio_to_linear"] = r["seconds"] / r["linear_seconds"]
    return {
        "machine": f"{platform.machine()} {platform.processor() or ''} Python {platform.python_version()}, "
                   f"NumPy {np.__version__}",
        "blas_threads": 1, "rows": rows, "fitted_model": {"predict-mixture": fit_task("predict-mixture", rows)},
        "total_seconds": time.perf_counter() - started,
    }


def mixture_report(results: dict) -> str:
    fitted = results["fitted_model"]["predict-mixture"]
    lines = ["# Cost of the default method \"mixture\"", "",
             f"{results['machine']}; total run {results['total_seconds']:.0f} s.  `predict(net, noise, x)` with "
             "method \"mixture\" and its error estimate (as `noiseprop predict` runs it) against method "
             "\"linear\"; noise: all four types at 1e-3 on every layer; tanh hidden layers, linear output; "
             "BLAS on one thread.", "", "```",
             format_table(["sweep", "value", "network", "inputs", "linear [s]", "mixture [s]", "mixture / linear",
                           "model [s]"],
                          [[r["sweep"], str(r["value"]), "-".join(map(str, r["sizes"])), str(r["inputs"]),
                            f"{r['linear_seconds']:.3g}",
                            f"{r['seconds']:.3g}", f"{r['ratio_to_linear']:.1f}",
                            f"{estimate_seconds('predict-mixture', r['sizes'], r['inputs'], model=results['fitted_model']):.3g}"]
                           for r in results["rows"] if r["task"] == "predict-mixture"]), "```", "",
             "## Cost model (seconds per unit of work, the work counts of \"predict\")", "", "```",
             format_table(["task", "fitted here", "in noiseprop.utils.estimate"],
                          [["predict-mixture", ", ".join(f"{c:.3g}" for c in fitted),
                            ", ".join(f"{c:.3g}" for c in COST_MODEL.get("predict-mixture", ())) or "-"],
                           ["predict", "-", ", ".join(f"{c:.3g}" for c in COST_MODEL["predict"])]]), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
