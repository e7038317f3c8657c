"""Accuracy recovered by noise mitigation (pooling, ghost neurons, their planned combination).

Two classifiers: the shipped digits network (64-100-100-100-10, sigmoid
hidden, linear output; test set of :func:`noiseprop.io.datasets.load_digits`)
and a Fashion-MNIST classifier 784-100-100-100-10 trained here with
:func:`noiseprop.studies.training.train_mlp` (10 epochs, seed 0) on the IDX
files of Debian's ``dataset-fashion-mnist`` package (default folder
/usr/share/datasets/fashion-mnist); the trained network is cached outside the
repository (``--cache``), never shipped.

For each network and each noise mix (AU, AC, MU, MC alone, AU+AC, all four at
one intensity D), D is chosen on a grid so that the noisy accuracy (Monte
Carlo, 50 realisations per test input) is about 5 points below the clean one.
At that D:

- strategies: pooling K = 2 of every hidden layer (+N hidden neurons, only
  with uncorrelated noise); one ghost neuron per hidden layer (only with
  correlated noise); and two plans of :func:`noiseprop.mitigation.plan`
  within a budget of as many extra neurons as the network has hidden neurons
  ("at most twice the hidden neurons"), planned on 4 training inputs: one
  pooling factor per layer maximising the differential SNR (the earlier
  reference), and ghosts plus per-neuron copies maximising the decision SNR;
- predicted output SNR gains (layer SNR with a Monte Carlo check,
  differential and decision SNR) and the decision-SNR gain in dB per 100
  extra neurons;
- accuracy (Monte Carlo, ``--samples`` realisations per test input, 95 %
  interval; analytic), and the fraction of the lost accuracy recovered.

Usage::

    python benchmarks/mitigation_accuracy.py [--fast] [--samples R] [--out DIR] [--force]

writes DIR/mitigation_accuracy.json and .md (default DIR benchmarks/results).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from _outputs import result_paths, write_results  # this folder: the script's own path comes first

from noiseprop import Noise, default_network
from noiseprop.io.datasets import load_digits, load_idx
from noiseprop.io.networks import load_network, save_network
from noiseprop.mitigation import Strategy, compare, plan
from noiseprop.mitigation.accuracy import hidden_neurons, level_for_drop, mitigated_accuracy
from noiseprop.mitigation.planning import output_stats
from noiseprop.utils.jsonutil import dumps

#: Prediction method of the plans and gains: linear response (the Gaussian-moment closure meets
#: round-off negative variances where a ghost cancels the correlated noise exactly).
METHOD = "linear"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
#: The plans compared: label -> (allocation, objective).
PLANS = {"plan: K per layer, differential": ("layer", "differential"),
         "plan: K per neuron, decision": ("neuron", "decision")}
MIXES = {"AU": Noise(AU=1), "AC": Noise(AC=1), "MU": Noise(MU=1), "MC": Noise(MC=1),
         "AU+AC": Noise(AU=1, AC=1), "all": Noise(AU=1, AC=1, MU=1, MC=1)}


def fashion_network(cache: Path):
    """The Fashion-MNIST classifier (trained once, cached) and its data."""
    X_train, y_train, X_test, y_test = load_idx(FASHION_DIR)
    path = cache / "fashion_mlp_100x3_seed0.npz"
    if path.exists():
        net = load_network(path)
    else:
        from noiseprop.studies.training import train_mlp

        print("training the Fashion-MNIST classifier (10 epochs) ...", file=sys.stderr)
        result = train_mlp(X_train, y_train, X_test, y_test, hidden=(100, 100, 100), epochs=10,
                           batch_size=128, lr=1e-3, seed=0, progress=False)
        cache.mkdir(parents=True, exist_ok=True)
        save_network(path, result.network)
        net = result.network
    return net, X_train, y_train, X_test, y_test


def study(name, net, X_plan, X_test, y_test, samples, fast, analytic=True, mixes=None):
    rows = []
    for mix, unit in MIXES.items():
        if mixes and mix not in mixes:
            continue
        start = time.time()
        scales = np.geomspace(1e-3, 1.0, 10 if fast else 16)
        level, noisy, clean = level_for_drop(net, unit, X_test, y_test, 0.05, scales, samples=30 if fast else 50)
        noise = unit.scaled(level)
        budget = hidden_neurons(net)
        plans = {label: plan(net, noise, X_plan, budget, objective=objective, method=METHOD,
                             samples=0, max_copies=4, allocation=alloc)
                 for label, (alloc, objective) in PLANS.items()}
        strategies = {"pool K=2 (hidden)": Strategy("pool", k=2)} if unit.AU or unit.MU else {}
        if unit.AC or unit.MC:
            strategies["1 ghost per hidden layer"] = Strategy("ghost", groups=1)
        for label, planned in plans.items():
            if planned.steps:
                strategies[label] = planned.steps
        check = compare(net, noise, X_plan, strategies, samples=2_000 if fast else 10_000, seed=1,
                        method=METHOD)
        networks = {label: check[label].network for label in strategies}
        accuracies = mitigated_accuracy(net, noise, X_test, y_test, networks, samples=samples, seed=2,
                                        analytic=analytic and not fast, method=METHOD)
        before = {o: output_stats(net, noise, X_plan, METHOD, o) for o in ("differential", "decision")}
        for row in accuracies:
            if row["label"] == "original":
                row.update(snr_gain=1.0, differential_snr_gain=1.0, decision_snr_gain=1.0)
                continue
            result = check[row["label"]]
            extra = max(result.extra_neurons, 1)
            row.update(snr_gain=result.gain, snr_gain_mc=result.monte_carlo["gain"],
                       mc_agrees=result.monte_carlo["agrees"],
                       plan=plans[row["label"]].choices if row["label"] in plans else None)
            for objective, (signal, noise_var) in before.items():
                after = output_stats(result.network, result.noise, X_plan, METHOD, objective)
                gain = (after[0] / after[1]) / (signal / noise_var) if after[1] > 0 else float("inf")
                row[f"{objective}_snr_gain"] = gain
                row[f"{objective}_db_per_100_neurons"] = 100 * 10 * np.log10(gain) / extra
        rows.append({"network": name, "mix": mix, "intensity": level, "clean": clean,
                     "noisy_grid_estimate": noisy, "budget": budget, "rows": accuracies,
                     "seconds": time.time() - start})
        print(f"{name} {mix}: D = {level:.3g} done in {time.time() - start:.0f} s", file=sys.stderr)
    return rows


def _number(value) -> str:
    """Two decimals; an infinite gain (stored as null in the JSON) as 'inf'."""
    return "inf" if value is None or value == float("inf") else f"{value:.2f}"


def markdown(results, samples) -> str:
    lines = ["# Accuracy recovered by noise mitigation", "",
             "Generated by `benchmarks/mitigation_accuracy.py`.  Accuracy: Monte Carlo over the noise "
             f"({samples} realisations per test input; 95 % interval), analytic: Gaussian outputs "
             "with linear-response propagation.  SNR gains are predicted (linear response) on 4 "
             "training inputs: layer SNR of the output ('MC': Monte Carlo), differential SNR (outputs' "
             "deviations from their mean) and decision SNR (only the output noise orthogonal to the "
             "common direction and to the noise-free output vector, per input: the rest leaves the "
             "arg-max unchanged); 'inf' where the remaining noise is zero to first order.  A plan "
             "that changes nothing is not listed.  recovered = (acc - acc_noisy) / (acc_clean - acc_noisy).", ""]
    for block in results:
        lines += [f"## {block['network']}, noise '{block['mix']}' at D = {block['intensity']:.3g}", "",
                  f"clean accuracy {block['clean']:.4f}; budget {block['budget']} extra neurons "
                  f"(= the hidden neurons)", "",
                  "| strategy | +neurons | hidden neurons | accuracy [95 % CI] | analytic | recovered "
                  "| SNR gain (MC) | differential SNR gain | decision SNR gain | decision dB per 100 extra neurons |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in block["rows"]:
            analytic = "-" if r["analytic"] is None else f"{r['analytic']:.4f}"
            recovered = "-" if r["recovered"] is None else f"{100 * r['recovered']:.0f} %"
            mc = f" ({_number(r['snr_gain_mc'])})" if "snr_gain_mc" in r else ""
            per = _number(r["decision_db_per_100_neurons"]) if "decision_db_per_100_neurons" in r else "-"
            lines.append(f"| {r['label']} | {r['extra_neurons']} | {r['hidden_neurons']} | {r['accuracy']:.4f} "
                         f"[{r['ci'][0]:.4f}, {r['ci'][1]:.4f}] | {analytic} | {recovered} | "
                         f"{_number(r['snr_gain'])}{mc} | {_number(r['differential_snr_gain'])} | "
                         f"{_number(r['decision_snr_gain'])} | {per} |")
            if r.get("plan"):
                steps = "; ".join(f"layer {c['layer']}: {c['ghosts']} ghosts, "
                                  + (f"K=1..{c['copies']} per neuron" if "copies_per_neuron" in c else f"K={c['copies']}")
                                  + f" (+{c['extra_neurons']})" for c in r["plan"])
                lines.append(f"|  {steps} | | | | | | | | | |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="noise realisations per test input")
    parser.add_argument("--fast", action="store_true", help="coarser grid, fewer samples, no analytic accuracy")
    parser.add_argument("--fashion-test", type=int, default=2000, help="Fashion-MNIST test images used")
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "noiseprop")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--only", choices=("digits", "fashion"), help="one network only")
    parser.add_argument("--mixes", help="comma-separated subset of " + ",".join(MIXES))
    args = parser.parse_args(argv)
    json_path, md_path = result_paths(args.out, ["mitigation_accuracy.json", "mitigation_accuracy.md"], args.force)
    mixes = args.mixes.split(",") if args.mixes else None
    results = []
    if args.only != "fashion":
        X_train, _, X_test, y_test = load_digits()
        results += study("digits 64-100-100-100-10 (shipped)", default_network(), X_train[:4], X_test, y_test,
                         args.samples, args.fast, mixes=mixes)
    if args.only == "digits":
        pass
    elif FASHION_DIR.is_dir():
        net, F_train, _, F_test, Fy_test = fashion_network(args.cache)
        results += study("Fashion-MNIST 784-100-100-100-10", net, F_train[:4], F_test[:args.fashion_test],
                         Fy_test[:args.fashion_test], args.samples, args.fast, analytic=False, mixes=mixes)
    else:
        print(f"{FASHION_DIR} not found (apt-get install dataset-fashion-mnist): Fashion-MNIST skipped",
              file=sys.stderr)
    payload = {"samples": args.samples, "fast": args.fast, "results": results}
    write_results({json_path: dumps(payload), md_path: markdown(results, args.samples)}, args.force)
    print(markdown(results, args.samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
