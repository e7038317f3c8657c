"""The closure matrix: linear response, "moments" and "mixture" against Monte Carlo.

Networks: tanh, sigmoid and relu, depth 4 and 8, width 50 (input 50),
weights N(0, 1/fan-in), biases N(0, 0.1^2), the same activation on every
layer, one input N(0, 1) (all drawn from seed 0 of each network), and the
shipped network (``default_network``, its stored input).  Noise: each of
AU, AC, MU, MC alone on every layer, both placements, D in {1e-3, 1e-2,
1e-1}: 7 x 4 x 2 x 3 = 168 cases.

For every case and layer it measures each method's relative error of the
layer's mean noise variance (the per-neuron average of Var[y]) against a
control-variate Monte Carlo run (:func:`noiseprop.simulate`, unbiased; its
standard error is reported), the largest error of a neuron's mean in units
of that neuron's noise standard deviation, and the three distances from which
the mixture's error estimate is built (``noiseprop.propagation``): to
"moments", to "linear", and the size of the second-order Mehler term
("moments" against "moments" cut after the first order).

The goals (issue: trustworthy numbers), for the default method, on every
layer of every case, each judged beyond the Monte Carlo error (an error
counts only by how much it exceeds 3 standard errors):

- layer-mean variance within 1 % at D <= 1e-2 and 5 % at D = 0.1;
- every neuron's mean within 0.2 noise standard deviations;
- never worse than linear response by more than 1 point.

The default method is the one meeting most goals (ties: the smaller worst
variance error).  The error estimate's calibration: a layer is covered when
|error| <= estimate + 2 Monte Carlo standard errors; the weights of the
distances are fitted (grid over the ratios of the linear and Mehler weights
to the moments weight, the smallest scale that covers 95 % of the (case,
layer) pairs, then the sharpest) and the coverage of the weights in
``noiseprop.propagation`` is reported.  ``--from-json`` re-analyses stored
rows; it computes the Mehler distance of rows measured before it existed
(a prediction, no Monte Carlo).

Usage::

    python benchmarks/closure_matrix.py [--fast] [--samples R] [--out DIR] [--force]
    python benchmarks/closure_matrix.py --from-json DIR/closure_matrix.json --force
    python benchmarks/closure_matrix.py --networks relu8,shipped --out DIR2   # part of it
    python benchmarks/closure_matrix.py --mc-cache DIR3 --force   # store / reuse the Monte Carlo runs
    python benchmarks/closure_matrix.py --noise MU --out DIR4     # the cases of some noise types
    python benchmarks/closure_matrix.py --from-json FULL.json DIR4/closure_matrix.json --force  # merged
    python benchmarks/closure_matrix.py --from-json benchmarks/results/closure_matrix.json --update-readme

writes DIR/closure_matrix.json (every number) and .md (tables); default DIR
benchmarks/results, R = 400 000 (--fast: 20 000 and one depth-4 network per
activation plus the shipped one).  ``--update-readme`` rewrites the accuracy
section of README.md and of docs/closure.md (between their ``closure-matrix``
markers) and the calibration table of docs/closure.md (``closure-calibration``
markers) from the results; with ``--from-json`` of one results .json it
writes only that, from the stored analysis (no Monte Carlo, no prediction);
tests/test_closure_matrix_readme.py checks that the pages hold it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from _outputs import result_paths, write_results  # this folder: the script's own path comes first

from noiseprop import Network, Noise, default_network, predict, propagation, simulate
from noiseprop.noise import NOISE_TYPES, PLACEMENTS, per_layer_noise
from noiseprop.utils.files import atomic_write
from noiseprop.utils.jsonutil import dumps
from noiseprop.utils.tables import format_table

METHODS = ("linear", "moments", "mixture")
ACTIVATIONS = ("tanh", "sigmoid", "relu")
DEPTHS = (4, 8)
WIDTH = 50
BIAS_SD = 0.1
INTENSITIES = (1e-3, 1e-2, 1e-1)
#: Variance goal by intensity: 1 % up to 1e-2, 5 % at 0.1.
def variance_goal(d: float) -> float:
    return 0.01 if d <= 1e-2 else 0.05
MEAN_GOAL = 0.2          # noise standard deviations
LINEAR_MARGIN = 0.01     # may be worse than linear by this much
RESOLVED_Z = 3.0         # errors count beyond this many Monte Carlo standard errors
COVER_Z = 2.0            # coverage slack of the error estimate, in standard errors
COVERAGE_TARGET = 0.95   # fitted in-sample; the requirement is 0.90
#: The files whose accuracy section (between README_BEGIN and README_END) the results write.
ACCURACY_PAGES = tuple(Path(__file__).resolve().parents[1] / name for name in ("README.md", "docs/closure.md"))
RATIOS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
MEHLER_RATIOS = (0.0, 0.5, 1.0, 1.5, 2.0)


def random_network(activation: str, depth: int, seed: int = 0) -> tuple[Network, np.ndarray]:
    """Width-50 network of one activation, N(0, 1/fan-in) weights, small biases, one input."""
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH) for _ in range(depth)]
    biases = [BIAS_SD * rng.standard_normal(WIDTH) for _ in range(depth)]
    x = rng.standard_normal(WIDTH)
    return Network.from_arrays(weights, biases, activation), x


def networks(fast: bool) -> dict:
    """name -> (net, x)."""
    depths = DEPTHS[:1] if fast else DEPTHS
    nets = {f"{a}{d}": random_network(a, d) for a in ACTIVATIONS for d in depths}
    nets["shipped"] = default_network(return_input=True)
    return nets


def mean_error_sd(result, sim) -> list[float]:
    """Per layer 1..L: the largest error of a neuron's mean beyond 3 Monte
    Carlo standard errors, in units of the neuron's noise sd (the larger of
    the simulated and the predicted one, so that a neuron that fires only
    in rare realisations, whose simulated sd is itself poorly known, does
    not dominate); neurons without noise are skipped."""
    out = []
    for k in range(1, len(sim.mean)):
        sd = np.sqrt(np.maximum(sim.var[k], result.var[k]))
        noisy = sd > 0
        diff = np.maximum(np.abs(result.mean[k] - sim.mean[k]) - RESOLVED_Z * sim.mean_stderr[k], 0.0)
        diff = diff[noisy] / sd[noisy]
        out.append(float(diff.max()) if diff.size else 0.0)
    return out


class _StoredSimulation:
    """The Monte Carlo statistics this benchmark uses, as stored by :func:`simulation`."""

    FIELDS = ("mean", "var", "mean_stderr")

    def __init__(self, arrays):
        depth = int(arrays["depth"])
        for field in self.FIELDS:
            setattr(self, field, [arrays[f"{field}_{k}"] for k in range(depth + 1)])
        self.noise_var, self.noise_var_stderr = arrays["noise_var"], arrays["noise_var_stderr"]
        self.samples = int(arrays["samples"])


def simulation(net, x, noise: Noise, samples: int, seed: int, cache: "Path | None", key: str):
    """The control-variate Monte Carlo run of one case; with ``cache`` (a
    folder) its statistics are stored there under ``key`` (with samples and
    seed) and read back by a later run, so that a change of the analytic
    methods can be measured again without repeating the simulations (the
    simulation does not depend on them: its control variate is linear response)."""
    path = None if cache is None else cache / f"{key}_R{samples}_s{seed}.npz"
    if path is not None and path.exists():
        with np.load(path) as arrays:
            return _StoredSimulation(arrays)
    sim = simulate(net, noise, x, samples, seed, control_variate=True)
    if path is not None:
        arrays = {f"{field}_{k}": getattr(sim, field)[k] for field in _StoredSimulation.FIELDS
                  for k in range(len(sim.mean))}
        cache.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: np.savez(handle, depth=len(sim.mean) - 1, noise_var=sim.noise_var,
                                                   noise_var_stderr=sim.noise_var_stderr, samples=sim.samples,
                                                   **arrays), overwrite=True)
    return sim


def measure_case(net, x, noise: Noise, samples: int, seed: int, cache: "Path | None" = None,
                 key: str = "") -> dict:
    sim = simulation(net, x, noise, samples, seed, cache, key)
    row = {"mc": sim.noise_var[1:].tolist(), "mc_se": sim.noise_var_stderr[1:].tolist(),
           "samples": sim.samples}
    timing = {}
    for method in METHODS:
        started = time.perf_counter()
        result = predict(net, noise, x, method=method, error_estimate=False)
        timing[method] = time.perf_counter() - started
        row[method] = result.noise_var[1:].tolist()
        row[f"{method}_mean_sd"] = mean_error_sd(result, sim)
    row["seconds"] = timing
    row["moments_stein"] = stein_variances(net, x, noise)
    return row


def stein_variances(net, x, noise: Noise) -> list[float]:
    """Layer-mean variances (layers 1..L) of "moments" with Mehler's series
    cut after the first order (the error estimate's Mehler distance)."""
    inputs = np.atleast_2d(np.asarray(x, dtype=float))
    layers = propagation._layers(net, per_layer_noise(noise, net.depth), inputs, "moments", mehler_order=1)
    return propagation._layer_noise_var(layers)[:, 0].tolist()


def add_stein(rows: list[dict]) -> None:
    """The Mehler distance's variances of rows measured before it was recorded."""
    nets = None
    for row in rows:
        if "moments_stein" not in row:
            nets = nets or networks(False)
            net, x = nets[row["network"]]
            row["moments_stein"] = stein_variances(net, x, Noise(**{row["noise"]: row["D"]},
                                                                 placement=row["placement"]))


def measure(samples: int, seed: int, fast: bool, checkpoint: "Path | None" = None,
            only: "set | None" = None, cache: "Path | None" = None,
            kinds: "set | None" = None) -> list[dict]:
    """Every case (of the networks in ``only`` and the noise types in
    ``kinds``, if given; case i of the full matrix always gets seed + i);
    with ``checkpoint`` each finished row is
    appended to that file (JSON lines) as well, so that a long run can be
    analysed part-way or split over processes (``--from-json`` reads it)."""
    rows = []
    index = 0
    for name, (net, x) in networks(fast).items():
        if only is not None and name not in only:
            index += len(NOISE_TYPES) * len(PLACEMENTS) * len(INTENSITIES)
            continue
        for kind in NOISE_TYPES:
            if kinds is not None and kind not in kinds:
                index += len(PLACEMENTS) * len(INTENSITIES)
                continue
            for placement in PLACEMENTS:
                for d in INTENSITIES:
                    started = time.perf_counter()
                    noise = Noise(**{kind: d}, placement=placement)
                    row = {"network": name, "noise": kind, "placement": placement, "D": d}
                    row.update(measure_case(net, x, noise, samples, seed + index, cache,
                                            f"{name}_{kind}_{placement}_{d:g}"))
                    rows.append(row)
                    if checkpoint is not None:
                        with open(checkpoint, "a") as handle:
                            handle.write(dumps(row, indent=None) + "\n")
                    index += 1
                    print(f"{name} {kind} {placement} D={d:g}: {time.perf_counter() - started:.1f} s",
                          file=sys.stderr, flush=True)
    return rows


# ----------------------------------------------------------------- analysis

def layer_records(rows: list[dict]) -> list[dict]:
    """One record per (case, layer 1..L) with errors, standard error and distances."""
    records = []
    for row in rows:
        for i, (mc, se) in enumerate(zip(row["mc"], row["mc_se"])):
            if mc <= 0:
                continue
            rec = {"case": f"{row['network']} {row['noise']} {row['placement']} D={row['D']:g}",
                   "layer": i + 1, "D": row["D"], "se": se / mc}
            for m in METHODS:
                rec[m] = row[m][i] / mc - 1.0
                rec[f"{m}_mean_sd"] = row[f"{m}_mean_sd"][i]
            mix = row["mixture"][i]
            rec["dist_moments"] = abs(mix - row["moments"][i]) / mix if mix else 0.0
            rec["dist_linear"] = abs(mix - row["linear"][i]) / mix if mix else 0.0
            rec["dist_mehler"] = abs(row["moments"][i] - row["moments_stein"][i]) / mix if mix else 0.0
            records.append(rec)
    return records


def excess(error: float, se: float) -> float:
    """|error| beyond RESOLVED_Z standard errors (0 when not resolved)."""
    return max(abs(error) - RESOLVED_Z * se, 0.0)


def goals(rec: dict, method: str, samples: int) -> dict:
    """Which goals a method meets on one (case, layer)."""
    return {
        "variance": excess(rec[method], rec["se"]) <= variance_goal(rec["D"]),
        "mean": rec[f"{method}_mean_sd"] <= MEAN_GOAL,
        "vs_linear": abs(rec[method]) - abs(rec["linear"]) <= LINEAR_MARGIN + RESOLVED_Z * rec["se"],
    }


def method_summary(records: list[dict], samples: int) -> dict:
    summary = {}
    for m in METHODS:
        met = [goals(r, m, samples) for r in records]
        worst_var = max(records, key=lambda r: excess(r[m], r["se"]) / variance_goal(r["D"]))
        worst_mean = max(records, key=lambda r: r[f"{m}_mean_sd"])
        worst_gap = max(records, key=lambda r: abs(r[m]) - abs(r["linear"]) - RESOLVED_Z * r["se"])
        summary[m] = {
            "variance_ok": sum(g["variance"] for g in met),
            "mean_ok": sum(g["mean"] for g in met),
            "vs_linear_ok": sum(g["vs_linear"] for g in met),
            "all_ok": sum(all(g.values()) for g in met),
            "pairs": len(met),
            "worst_variance": {"case": worst_var["case"], "layer": worst_var["layer"],
                               "error": worst_var[m], "se": worst_var["se"]},
            "worst_mean": {"case": worst_mean["case"], "layer": worst_mean["layer"],
                           "sd": worst_mean[f"{m}_mean_sd"]},
            "worst_vs_linear": {"case": worst_gap["case"], "layer": worst_gap["layer"],
                                "error": worst_gap[m], "linear": worst_gap["linear"],
                                "se": worst_gap["se"]},
            "max_abs_error_by_D": {f"{d:g}": max(abs(r[m]) for r in records if r["D"] == d)
                                   for d in INTENSITIES},
        }
    return summary


def choose_default(summary: dict) -> str:
    return max(METHODS, key=lambda m: (summary[m]["all_ok"], -abs(summary[m]["worst_variance"]["error"])))


def estimates(records: list[dict], weights) -> np.ndarray:
    """The error estimate of every record for weights (moments, linear, Mehler)."""
    return np.array([weights[0] * r["dist_moments"] + weights[1] * r["dist_linear"]
                     + weights[2] * r["dist_mehler"] for r in records])


def coverage(records: list[dict], weights) -> float:
    est = estimates(records, weights)
    return float(np.mean([abs(r["mixture"]) <= e + COVER_Z * r["se"] for r, e in zip(records, est)]))


def calibrate(records: list[dict]) -> dict:
    """Fitted weights a (1, ratio, mehler): for each pair of ratios the
    smallest a reaching COVERAGE_TARGET, then the pair with the smallest mean
    estimate; and the coverage of the shipped weights."""
    best = None
    for ratio in RATIOS:
        for mehler in MEHLER_RATIOS:
            base = estimates(records, (1.0, ratio, mehler))
            gap = np.array([abs(r["mixture"]) - COVER_Z * r["se"] for r in records])
            with np.errstate(divide="ignore", invalid="ignore"):
                need = np.where(gap <= 0, 0.0, np.where(base == 0, np.inf, gap / base))
            a = float(np.quantile(need, COVERAGE_TARGET, method="higher"))
            if not np.isfinite(a):
                continue
            sharpness = float(np.mean(a * base))
            if best is None or sharpness < best["mean_estimate"]:
                best = {"w_moments": a, "w_linear": a * ratio, "w_mehler": a * mehler, "mean_estimate": sharpness}
    shipped = (propagation.ERROR_WEIGHT_MOMENTS, propagation.ERROR_WEIGHT_LINEAR, propagation.ERROR_WEIGHT_MEHLER)
    est = estimates(records, shipped)
    warned = est > propagation.ERROR_WARNING
    bad = np.array([abs(r["mixture"]) - RESOLVED_Z * r["se"] > propagation.ERROR_WARNING for r in records])
    return {
        "fitted": best,
        "shipped": {"w_moments": shipped[0], "w_linear": shipped[1], "w_mehler": shipped[2],
                    "coverage": coverage(records, shipped),
                    "coverage_by_D": {f"{d:g}": coverage([r for r in records if r["D"] == d], shipped)
                                      for d in INTENSITIES},
                    "warned_pairs": int(warned.sum()),
                    "errors_over_warning": int(bad.sum()),
                    "errors_over_warning_not_warned": int((bad & ~warned).sum()),
                    "median_estimate_by_D": {f"{d:g}": float(np.median([e for e, r in zip(est, records) if r["D"] == d]))
                                             for d in INTENSITIES}},
    }


# ----------------------------------------------------------------- report

def pct(value: float) -> str:
    return f"{100 * value:+.2f}%"


def case_table(rows: list[dict]) -> str:
    """Per case: each method's worst-layer error (largest |error|), and the mixture's means."""
    headers = ["network", "noise", "place", "D", "MC s.e.", "linear", "moments", "mixture",
               "mixture mean [sd]", "estimate"]
    lines = []
    w = (propagation.ERROR_WEIGHT_MOMENTS, propagation.ERROR_WEIGHT_LINEAR, propagation.ERROR_WEIGHT_MEHLER)
    for row in rows:
        recs = layer_records([row])
        if not recs:
            continue
        cells = [row["network"], row["noise"], row["placement"], f"{row['D']:g}",
                 f"{100 * max(r['se'] for r in recs):.2f}%"]
        for m in METHODS:
            worst = max(recs, key=lambda r: abs(r[m]))
            cells.append(f"{pct(worst[m])} (L{worst['layer']})")
        cells.append(f"{max(r['mixture_mean_sd'] for r in recs):.3f}")
        worst = max(recs, key=lambda r: abs(r["mixture"]))
        cells.append(f"{100 * estimates([worst], w)[0]:.2f}%")
        lines.append(cells)
    return format_table(headers, lines)


README_BEGIN = ("<!-- closure-matrix: begin; written by benchmarks/closure_matrix.py --update-readme "
                "from benchmarks/results/closure_matrix.json, do not edit -->")
README_END = "<!-- closure-matrix: end -->"
#: The calibration table of the error estimate (docs/closure.md), between its own markers.
CALIBRATION_BEGIN = ("<!-- closure-calibration: begin; written by benchmarks/closure_matrix.py --update-readme "
                     "from benchmarks/results/closure_matrix.json, do not edit -->")
CALIBRATION_END = "<!-- closure-calibration: end -->"


def pipe_table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [headers, ["---"] * len(headers), *rows])


def summary_table(summary: dict, default: str) -> str:
    """Goals met per method (pairs), and each method's largest |error| by D."""
    headers = ["method", "all goals", "variance", "means", "vs linear",
               "max abs. error at D = " + " / ".join(f"{d:g}" for d in INTENSITIES)]
    lines = []
    for m in METHODS:
        s = summary[m]
        n = s["pairs"]
        name = f"**{m}** (default)" if m == default else m
        lines.append([name, f"{s['all_ok']}/{n}", f"{s['variance_ok']}/{n}", f"{s['mean_ok']}/{n}",
                      f"{s['vs_linear_ok']}/{n}",
                      " / ".join(f"{100 * s['max_abs_error_by_D'][f'{d:g}']:.2f}" for d in INTENSITIES) + " %"])
    return pipe_table(headers, lines)


def worst_table(summary: dict) -> str:
    """The worst (case, layer) of each goal's column, per method."""
    lines = []
    for m in METHODS:
        v, mm, g = (summary[m][key] for key in ("worst_variance", "worst_mean", "worst_vs_linear"))
        gap = "-" if m == "linear" else f"{g['case']} L{g['layer']}: {pct(g['error'])} (linear {pct(g['linear'])})"
        lines.append([m, f"{v['case']} L{v['layer']}: {pct(v['error'])}",
                      f"{mm['case']} L{mm['layer']}: {mm['sd']:.3f} sd", gap])
    return pipe_table(["method", "variance", "means", "vs linear"], lines)


def by_d(values: dict, scale: float, digits: int) -> str:
    """'a / b / c' of a {D: value} dict, in the order of INTENSITIES."""
    return " / ".join(f"{scale * values[f'{d:g}']:.{digits}f}" for d in INTENSITIES)


def tie_note(summary: dict, default: str) -> str:
    """How :func:`choose_default` broke a tie in the goals met, if there was one."""
    tied = [m for m in METHODS if summary[m]["all_ok"] == summary[default]["all_ok"]]
    return "" if len(tied) == 1 else " (tied with " + ", ".join(
        f"`{m}`" for m in tied if m != default) + "; it has the smaller worst variance error)"


def accuracy_block(payload: dict) -> str:
    """The README's accuracy section (also the head of closure_matrix.md):
    goals met per method, the worst case of each column, the calibration
    of the error estimate; every number from ``payload``."""
    summary, shipped = payload["summary"], payload["calibration"]["shipped"]
    pairs = summary[payload["default"]]["pairs"]
    ds = " / ".join(f"{d:g}" for d in INTENSITIES)
    return "\n".join([
        f"Each method against control-variate Monte Carlo ({payload['samples']:,} samples) on "
        f"{len(payload['rows'])} cases, {pairs} (case, layer) pairs.  A pair meets the goals when its layer's "
        f"mean noise variance is within 1 % (D <= 1e-2) or 5 % (D = 0.1), every neuron's mean within "
        f"{MEAN_GOAL:g} noise sd, and its error at most {100 * LINEAR_MARGIN:g} point worse than linear "
        f"response's; errors count beyond {RESOLVED_Z:g} Monte Carlo standard errors.  The default method, "
        f"`{payload['default']}`, is the one that meets the most goals{tie_note(summary, payload['default'])}.  "
        "Second table: the worst (case, layer) of each column (variance: the largest error relative to its "
        "goal; pre / post: noise before / after the activation).",
        "",
        summary_table(summary, payload["default"]),
        "",
        worst_table(summary),
        "",
        f"The error estimate of `{payload['default']}` (`Prediction.error_estimate`) covers the measured "
        f"error (within {COVER_Z:g} Monte Carlo s.e.) on {100 * shipped['coverage']:.1f} % of the pairs "
        f"({by_d(shipped['coverage_by_D'], 100, 1)} % at D = {ds}); its median is "
        f"{by_d(shipped['median_estimate_by_D'], 100, 2)} %; it warns (> 5 %) on {shipped['warned_pairs']} "
        f"pairs; {shipped['errors_over_warning']} pairs have an error over 5 % "
        f"({shipped['errors_over_warning_not_warned']} of them not warned).",
    ])


def calibration_block(payload: dict) -> str:
    """The calibration table of the error estimate (docs/closure.md); every
    number from ``payload`` (the weights: those of noiseprop/propagation.py
    when the matrix was analysed)."""
    calib = payload["calibration"]
    shipped, fitted = calib["shipped"], calib["fitted"]
    pairs = payload["summary"][payload["default"]]["pairs"]
    ds = " / ".join(f"{d:g}" for d in INTENSITIES)
    rows = [
        ["weights (`ERROR_WEIGHT_MOMENTS`, `ERROR_WEIGHT_LINEAR`, `ERROR_WEIGHT_MEHLER`)",
         ", ".join(f"{shipped[k]:g}" for k in ("w_moments", "w_linear", "w_mehler"))],
        ["coverage, all pairs", f"{100 * shipped['coverage']:.1f} % (requirement: at least 90 %)"],
        [f"coverage at D = {ds}", f"{by_d(shipped['coverage_by_D'], 100, 1)} %"],
        [f"median estimate at D = {ds}", f"{by_d(shipped['median_estimate_by_D'], 100, 2)} %"],
        ["pairs warned (estimate > 5 %)", f"{shipped['warned_pairs']} of {pairs}"],
        ["pairs whose error exceeds 5 % (beyond 3 s.e.)",
         f"{shipped['errors_over_warning']} ({shipped['errors_over_warning_not_warned']} not warned)"],
    ]
    if fitted:
        rows.append([f"weights fitted for {100 * COVERAGE_TARGET:g} % coverage on the same data",
                     ", ".join(f"{fitted[k]:.3g}" for k in ("w_moments", "w_linear", "w_mehler"))])
    return pipe_table(["", "value"], rows)


def replace_block(text: str, block: str, begin_marker: str = README_BEGIN, end_marker: str = README_END) -> str:
    """``text`` with the lines between the markers replaced by ``block``."""
    begin, end = text.find(begin_marker), text.find(end_marker)
    if begin < 0 or end < begin:
        raise ValueError(f"no '{begin_marker}' ... '{end_marker}' markers")
    return text[:begin + len(begin_marker)] + "\n" + block + "\n" + text[end:]


def timing_line(rows: list[dict]) -> str:
    """Cost of predict: per case, as a case's three methods are timed in the
    same run (the rows of a merged --from-json come from several runs)."""
    def median_ratio(selected: list[dict]) -> float:
        return float(np.median([r["seconds"]["mixture"] / max(r["seconds"]["moments"], 1e-12) for r in selected]))

    total = {m: sum(r["seconds"][m] for r in rows) for m in METHODS}
    correlated = [r for r in rows if r["noise"] in ("AC", "MC")]
    multiplicative = [r for r in rows if r["noise"] == "MU"]
    parts = [f"{median_ratio(correlated):.1f} on the cases with correlated noise"] if correlated else []
    parts += [f"{median_ratio(multiplicative):.1f} with MU"] if multiplicative else []
    return (f"Time of predict, per case (a case's methods timed in the same run): median mixture / moments "
            f"= {median_ratio(rows):.1f}" + (f" ({'; '.join(parts)})" if parts else "")
            + f"; summed over the matrix: linear {total['linear']:.2f} s, moments {total['moments']:.2f} s, "
            f"mixture {total['mixture']:.2f} s.")


def markdown(payload: dict) -> str:
    rows, calib = payload["rows"], payload["calibration"]
    shipped, fitted = calib["shipped"], calib["fitted"]
    lines = [
        "# Closure matrix: linear / moments / mixture vs Monte Carlo",
        "",
        f"Monte Carlo seed {payload['seed']}; errors are relative errors of each layer's mean noise variance.",
        f"DEFAULT_METHOD in noiseprop/propagation.py: `{propagation.DEFAULT_METHOD}`.",
        "",
        "## Goals met, worst cases, error estimate (the README's accuracy section)", "",
        accuracy_block(payload), "",
        "## Error estimate", "",
        f"Estimate = {shipped['w_moments']:g} |V_mix - V_moments| / V_mix + "
        f"{shipped['w_linear']:g} |V_mix - V_linear| / V_mix + {shipped['w_mehler']:g} "
        "|V_moments - V_moments,1| / V_mix (V_moments,1: Mehler's series cut after the first order; "
        "weights in noiseprop/propagation.py). "
        f"A layer is covered when |error| <= estimate + {COVER_Z:g} MC s.e.",
    ]
    if fitted:
        lines += ["", f"Fitted on this run ({100 * COVERAGE_TARGET:g} % target): w_moments = "
                      f"{fitted['w_moments']:.3g}, w_linear = {fitted['w_linear']:.3g}, "
                      f"w_mehler = {fitted['w_mehler']:.3g}"]
    lines += ["", timing_line(rows), "",
              "## Every case (worst layer of each method; mixture's largest mean error; "
              "the estimate on the mixture's worst layer)", "", "```", case_table(rows), "```", ""]
    return "\n".join(lines)


def update_readme(payload: dict, pages=ACCURACY_PAGES) -> None:
    """Rewrite the accuracy section of every page (between its markers) from
    ``payload``, and the calibration table where a page has its markers."""
    block = accuracy_block(payload)
    for page in pages:
        text = replace_block(page.read_text(), block)
        if CALIBRATION_BEGIN in text:
            text = replace_block(text, calibration_block(payload), CALIBRATION_BEGIN, CALIBRATION_END)
        atomic_write(page, lambda handle, text=text: handle.write(text), overwrite=True, binary=False)
        print(f"wrote the accuracy section of {page}", file=sys.stderr)


def analyse(rows: list[dict], samples: int, seed: int) -> dict:
    add_stein(rows)
    records = layer_records(rows)
    summary = method_summary(records, samples)
    return {"samples": samples, "seed": seed, "rows": rows, "summary": summary,
            "default": choose_default(summary), "calibration": calibrate(records)}


def case_key(row: dict) -> tuple:
    return row["network"], row["noise"], row["placement"], row["D"]


def stored_rows(paths, seed: int) -> tuple[int, int, list[dict]]:
    """(samples, seed, rows) of stored results: .json (a results payload) or
    .jsonl (a part-way checkpoint) files; a case found in several files is
    taken from the last one, in the place of its first appearance."""
    merged, samples = {}, None
    for path in paths:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        else:
            stored = json.loads(path.read_text())
            rows, seed = stored["rows"], stored["seed"]
        for row in rows:
            merged[case_key(row)] = row
            samples = row["samples"] if samples is None else min(samples, row["samples"])
    return samples, seed, list(merged.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true", help="20 000 samples, depth-4 networks only")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--from-json", type=Path, nargs="+", default=None,
                        help="re-analyse stored rows (results .json or part-way .partial.jsonl files; "
                             "a case in several files is taken from the last)")
    parser.add_argument("--force", action="store_true", help="overwrite existing results")
    parser.add_argument("--mc-cache", type=Path, default=None,
                        help="folder of stored Monte Carlo runs: read where present, written otherwise")
    parser.add_argument("--networks", default=None,
                        help="comma-separated subset, e.g. relu8,shipped (to split a long run)")
    parser.add_argument("--noise", default=None,
                        help="comma-separated subset of the noise types, e.g. MU (to measure again the "
                             "cases a change of a method touches; merge with --from-json FULL PART)")
    parser.add_argument("--update-readme", action="store_true",
                        help="rewrite the accuracy section of README.md and docs/closure.md from the "
                             "results; with --from-json "
                             "RESULTS.json only that (the stored analysis as it is, no other file written)")
    args = parser.parse_args(argv)
    if args.update_readme and args.from_json is not None and len(args.from_json) == 1 \
            and args.from_json[0].suffix == ".json":
        update_readme(json.loads(args.from_json[0].read_text()))
        return 0
    json_path, md_path = result_paths(args.out, ["closure_matrix.json", "closure_matrix.md"], args.force)
    if args.from_json is not None:
        samples, seed, rows = stored_rows(args.from_json, args.seed)
    else:
        samples = args.samples or (20_000 if args.fast else 400_000)
        seed = args.seed
        checkpoint = args.out / "closure_matrix.partial.jsonl"
        checkpoint.unlink(missing_ok=True)
        only = None if args.networks is None else set(args.networks.split(","))
        kinds = None if args.noise is None else set(args.noise.split(","))
        rows = measure(samples, seed, args.fast, checkpoint, only, args.mc_cache, kinds)
        checkpoint.unlink()
    payload = analyse(rows, samples, seed)
    write_results({json_path: dumps(payload, indent=1), md_path: markdown(payload)}, args.force)
    if args.update_readme:
        update_readme(payload)
    print(markdown(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
