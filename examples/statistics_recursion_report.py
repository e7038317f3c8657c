"""How good is the statistics-only recursion on a real trained network?

The trained-family recursion of :mod:`noiseprop.analysis.symbolic` (spec 6) reduces
every layer to a handful of numbers: fan-in N, weight mean mu and mean square
nu, slope mean and mean square at the working point, signal power and
coherence.  This script evaluates it on the shipped trained digits network
(64-100-100-100-10, sigmoid hidden layers, linear output) for each noise type
on its own, and compares the layer-average variance and its correlated part
with the full linear-response propagation of :func:`noiseprop.predict` (spec 4).

It also prints per-layer diagnostics that say *why* the two differ: how much
the exact gains (with the real matrices and slopes) deviate from their
statistics-only forms.

Run:  python examples/statistics_recursion_report.py [--inputs 50] [--fast]
"""
from __future__ import annotations

import argparse

import numpy as np

from noiseprop import Noise, predict
from noiseprop.analysis.gains import layer_statistics
from noiseprop.analysis.symbolic import statistics_recursion, working_point_statistics
from noiseprop.io.builtin import default_network
from noiseprop.io.datasets import load_digits
from noiseprop.noise import NOISE_TYPES
from noiseprop.utils.tables import format_table

INTENSITY = 1e-3
#: Test digits averaged over with --fast.
FAST_INPUTS = 5


def relative_errors(net, x, noise_type):
    """(Var error, c error) per layer 1..L, both relative to predict's Var."""
    noise = Noise(**{noise_type: INTENSITY})
    model = statistics_recursion(net, noise, x)
    full = predict(net, noise, x, method="linear")
    variance = full.noise_var[1:]
    return (model.variance[1:] - variance) / variance, (model.correlated[1:] - full.correlated[1:]) / variance


def error_table(net, inputs) -> str:
    """Mean and max |relative error| over the inputs, per noise type and layer."""
    rows = []
    for noise_type in NOISE_TYPES:
        errors = np.array([relative_errors(net, x, noise_type) for x in inputs])  # (B, 2, L)
        var_err, c_err = errors[:, 0], errors[:, 1]
        for layer in range(net.depth):
            rows.append([
                noise_type, str(layer + 1),
                f"{np.mean(var_err[:, layer]):+.1%}", f"{np.max(np.abs(var_err[:, layer])):.1%}",
                f"{np.mean(c_err[:, layer]):+.1%}",
            ])
    headers = ["noise", "layer", "Var error (mean)", "|Var error| (max)", "c error / Var (mean)"]
    return format_table(headers, rows)


def structure_factors(net, x, noise_type) -> list[float]:
    """Per layer k: the mean variance that layer k receives from the real
    covariance of layer k-1, divided by what it receives from that covariance's
    (u, c) summary u I + c J (1 when the summary loses nothing)."""
    full = predict(net, Noise(**{noise_type: INTENSITY}), x, full_covariance=True, method="linear")
    factors = []
    for k, (w, gains) in enumerate(zip(net.weights, layer_statistics(net, x)), start=1):
        cov = full.cov[k - 1]
        n = cov.shape[0]
        c = full.correlated[k - 1]
        summary = (np.trace(cov) / n - c) * np.eye(n) + c * np.ones((n, n))
        carried = [np.mean(gains.slope**2 * np.einsum("ij,jl,il->i", w, sigma, w)) for sigma in (cov, summary)]
        factors.append(carried[0] / carried[1] if carried[1] > 0 else float("nan"))
    return factors


def diagnostics_table(net, x) -> str:
    """Where the statistics-only assumptions fail, layer by layer, at input x."""
    rows = []
    structure = {t: structure_factors(net, x, t) for t in ("AU", "AC")}
    for gains, stats in zip(layer_statistics(net, x), working_point_statistics(net, x)):
        n, mu, nu = stats["N"], stats["mu"], stats["nu"]
        slope_spread = stats["s_sq"] / stats["s_mean"] ** 2 - 1  # 0 for uniform slopes
        # correlated input c J -> mean variance <s_i^2 (row sum_i)^2> c; i.i.d. model: s_sq (N nu + N(N-1) mu^2)
        iid_correlated = stats["s_sq"] * (n * nu + n * (n - 1) * mu**2)
        rows.append([
            str(gains.layer), str(n), f"{mu:+.3g}", f"{nu:.3g}", f"{slope_spread:.2f}",
            f"{gains.uncorrelated_gain:.3g}", f"{gains.uncorrelated_gain / gains.uncorrelated_gain_stats:.3f}",
            f"{gains.correlated_gain:.3g}", f"{gains.correlated_gain / iid_correlated:.3f}",
            *(f"{structure[t][gains.layer - 1]:.3f}" for t in ("AU", "AC")),
        ])
    headers = ["layer", "fan-in", "mu", "nu", "slope CV^2", "g_U exact", "g_U exact/model",
               "g_C exact", "g_C exact/model", "structure AU", "structure AC"]
    return format_table(headers, rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=50, help="number of test digits to average over")
    parser.add_argument("--fast", action="store_true", help=f"only {FAST_INPUTS} test digits (seconds)")
    args = parser.parse_args(argv)
    net, x0 = default_network(return_input=True)
    _, _, x_test, _ = load_digits()
    count = FAST_INPUTS if args.fast else args.inputs
    if not 1 <= count <= len(x_test):
        parser.error(f"--inputs must lie in 1..{len(x_test)} (the test digits), got {count}")
    inputs = x_test[:count]
    print(f"{net}; each noise type alone at D = {INTENSITY:g} on every layer; "
          f"{len(inputs)} test digits")
    print("\nStatistics-only recursion vs full propagation (relative to predict's mean variance):")
    print(error_table(net, inputs))
    print("\nWhy (stored input): exact gains with the real matrices and slopes vs the model's")
    print(diagnostics_table(net, x0))


if __name__ == "__main__":
    main()
