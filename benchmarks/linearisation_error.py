"""Where linearisation breaks down: predict(method="linear" | "moments") vs Monte Carlo.

On the shipped default network (digits 64-100-100-100-10, sigmoid hidden,
linear output, its stored input), for each noise type alone on every layer
("post" placement) and intensities D = 1e-6 .. 1e-1, this measures the
relative error of each method's mean noise variance (the per-neuron average
of Var[y], docs/model.md §3) of every layer against Monte Carlo, and the Monte
Carlo standard error of that same quantity.

Monte Carlo is :func:`noiseprop.simulate` with its control variate: the same
noise draws pass through the network linearised at its working point, whose
moments are known exactly, and only the difference is sampled.  The estimate
stays unbiased for the nonlinear network while its standard error shrinks in
proportion to D, so that the linearisation error is resolved down to small
intensities.  At D = 1e-2 and 1e-1 a plain (independent) run checks it.

Usage::

    python benchmarks/linearisation_error.py [--samples R] [--seed S] [--out DIR] [--force]
    python benchmarks/linearisation_error.py --from-json DIR/linearisation_error.json --force

writes DIR/linearisation_error.md (tables), .json (all numbers) and .png (the
output layer's errors against D); default DIR is benchmarks/results.  With
--from-json the tables and the figure are redrawn from stored numbers,
without sampling.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from _outputs import result_paths, write_results  # this folder: the script's own path comes first

from noiseprop import Noise, default_network, predict, simulate
from noiseprop.noise import NOISE_TYPES
from noiseprop.plotting import NOISE_COLORS, figure, render_figure
from noiseprop.utils.tables import format_table

INTENSITIES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
#: Intensities at which the control-variate estimate is checked against the plain one.
CROSS_CHECKED = (1e-2, 1e-1)
METHODS = ("linear", "moments")
#: Errors within this many Monte Carlo standard errors are reported as unresolved.
RESOLVED_Z = 3.0


def layer_noise_var(result) -> dict:
    """Per-layer mean noise variance of layers 1..L (and its standard error)."""
    row = {"noise_var": result.noise_var[1:].tolist()}
    if hasattr(result, "noise_var_stderr"):
        row["stderr"] = result.noise_var_stderr[1:].tolist()
    return row


def measure(samples: int, seed: int) -> list[dict]:
    """One row per (noise type, D): per-layer mean noise variance of both
    methods, of the control-variate Monte Carlo run and, at the largest two
    intensities, of a plain Monte Carlo run as a cross-check."""
    net, x = default_network(return_input=True)
    rows = []
    for index, kind in enumerate(NOISE_TYPES):
        for j, d in enumerate(INTENSITIES):
            noise = Noise(**{kind: d})
            started = time.perf_counter()
            row = {"noise": kind, "D": d}
            row.update({m: layer_noise_var(predict(net, noise, x, method=m)) for m in METHODS})
            run_seed = seed + 100 * index + j
            row["mc"] = layer_noise_var(simulate(net, noise, x, samples, run_seed, control_variate=True))
            if d in CROSS_CHECKED:
                row["mc_plain"] = layer_noise_var(simulate(net, noise, x, samples, run_seed + 50))
            row["seconds"] = time.perf_counter() - started
            rows.append(row)
            print(f"{kind} D={d:g}: {row['seconds']:.1f} s", file=sys.stderr)
    return rows


def percent(value: float) -> str:
    """A fraction as a percentage with two significant digits."""
    return f"{100 * value:.2g}%"


def error_cell(error: float, stderr: float) -> str:
    """A relative error, or the bound it is below when Monte Carlo cannot resolve it."""
    if abs(error) < RESOLVED_Z * stderr:
        return f"< {percent(RESOLVED_Z * stderr)}"
    return f"{100 * error:+.2g}%"


def errors(row: dict, k: int):
    """Relative MC standard error and both methods' relative errors, layer k."""
    mc = row["mc"]["noise_var"][k - 1]
    stderr = row["mc"]["stderr"][k - 1] / mc
    return stderr, [row[m]["noise_var"][k - 1] / mc - 1.0 for m in METHODS]


def output_table(rows: list[dict]) -> str:
    headers = ["noise", "D", "MC s.e.", "linear", "moments", "linear/moments - 1"]
    lines = []
    for row in rows:
        k = len(row["mc"]["noise_var"])
        stderr, (lin, mom) = errors(row, k)
        gap = row["linear"]["noise_var"][-1] / row["moments"]["noise_var"][-1] - 1.0
        lines.append([row["noise"], f"{row['D']:g}", percent(stderr), error_cell(lin, stderr),
                      error_cell(mom, stderr), f"{gap:+.2e}"])
    return format_table(headers, lines)


def layer_table(rows: list[dict], d: float) -> str:
    headers = ["noise", "layer", "MC s.e.", "linear", "moments"]
    lines = []
    for row in (r for r in rows if r["D"] == d):
        # layer 1 is exact for both methods (noise-free input, noise after f)
        for k in range(2, len(row["mc"]["noise_var"]) + 1):
            stderr, (lin, mom) = errors(row, k)
            lines.append([row["noise"], str(k), percent(stderr), error_cell(lin, stderr),
                          error_cell(mom, stderr)])
    return format_table(headers, lines)


def cross_check_table(rows: list[dict]) -> str:
    """Control-variate vs plain Monte Carlo: difference in combined standard errors."""
    headers = ["noise", "D", "layer", "control variate", "plain", "difference / s.e."]
    lines = []
    for row in (r for r in rows if "mc_plain" in r):
        cv, plain = row["mc"], row["mc_plain"]
        for k, (a, b) in enumerate(zip(cv["noise_var"], plain["noise_var"]), start=1):
            se = np.hypot(cv["stderr"][k - 1], plain["stderr"][k - 1])
            lines.append([row["noise"], f"{row['D']:g}", str(k), f"{a:.5g}", f"{b:.5g}", f"{(a - b) / se:+.1f}"])
    return format_table(headers, lines)


def plot(rows: list[dict]):
    """The figure of the output layer's errors against D, one panel per noise type."""
    fig, axes = figure(1, len(NOISE_TYPES), size=(12.0, 3.4), sharey=True)
    floor = 1e-8
    for ax, kind in zip(axes, NOISE_TYPES):
        subset = [r for r in rows if r["noise"] == kind]
        d = np.array([r["D"] for r in subset])
        k = len(subset[0]["mc"]["noise_var"])
        stderr, errs = zip(*(errors(r, k) for r in subset))
        for i, (method, style) in enumerate(zip(METHODS, ("o-", "s--"))):
            error = np.abs([e[i] for e in errs])
            ax.loglog(d, np.maximum(error, floor), style, color=NOISE_COLORS[kind], label=method,
                      mfc="none" if method == "moments" else None)
        ax.fill_between(d, floor, RESOLVED_Z * np.array(stderr), color="0.85",
                        label=f"within {RESOLVED_Z:g} MC s.e.")
        ax.set_title(f"{kind} noise on every layer")
        ax.set_xlabel("intensity D (variance)")
        ax.set_ylim(floor, 2.0)
    axes[0].set_ylabel("|relative error| of output noise variance")
    axes[2].legend(loc="upper left")  # the MU panel has room above its curves
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000, help="Monte Carlo realisations per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--force", action="store_true", help="overwrite existing results")
    parser.add_argument("--from-json", type=Path, help="redraw from a stored .json instead of measuring")
    args = parser.parse_args(argv)
    if args.samples < 4:
        parser.error(f"--samples must be >= 4, got {args.samples}")
    paths = result_paths(args.out, [f"linearisation_error.{suffix}" for suffix in ("md", "json", "png")],
                         args.force)  # now, not after the run
    if args.from_json:
        try:
            payload = json.loads(args.from_json.read_text())
            rows, args.samples, args.seed = payload["rows"], payload["samples"], payload["seed"]
        except (OSError, ValueError, KeyError) as err:
            parser.error(f"cannot read results from {args.from_json}: {err}")
    else:
        rows = measure(args.samples, args.seed)
    text = "\n\n".join([
        f"Default network, R = {args.samples} Monte Carlo realisations per case "
        f"(control variate), seed {args.seed}.",
        "Output layer (layer 4): relative error of the mean noise variance\n\n" + output_table(rows),
        "Layers 2..4 at D = 0.1 (layer 1 is exact for both methods)\n\n" + layer_table(rows, 0.1),
        "Layers 2..4 at D = 0.01\n\n" + layer_table(rows, 0.01),
        "Cross-check of the Monte Carlo estimators (mean noise variance)\n\n" + cross_check_table(rows),
    ])
    payload = {"samples": args.samples, "seed": args.seed, "rows": rows}
    contents = (text + "\n", json.dumps(payload, indent=1), render_figure(plot(rows), "png"))
    write_results(dict(zip(paths, contents)), args.force)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
