"""Speed of the analytic accuracy: vectorised Genz CDFs vs scipy's per-input CDF.

Times ``_probability_largest`` (the CDF stage of
:func:`noiseprop.studies.accuracy.analytic_accuracy`) on the output moments of a
random tanh classifier (784-100-100-100-100-10, uncorrelated additive noise in
every layer) against the per-input loop of
:func:`scipy.stats.multivariate_normal.cdf` it replaced, interleaved, best of
``--repeats``; prints the ratio, the mean absolute difference of the per-input
probabilities, and the load.

    python benchmarks/analytic_accuracy_speed.py --inputs 2000
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy import stats

from noiseprop import Network, Noise
from noiseprop.noise import per_layer_noise
from noiseprop.output_statistics import layer_moments
from noiseprop.studies.accuracy import ANALYTIC_ABSEPS, _differences_to_others, _probability_largest


def scipy_probabilities(difference: np.ndarray, joint: np.ndarray, abseps: float, seed: int) -> np.ndarray:
    """The replaced algorithm: one scipy CDF per input (differences all random here)."""
    rng = np.random.default_rng(seed)
    values = np.empty(len(difference))
    for i, (mean, cov) in enumerate(zip(difference, joint)):
        sd = np.sqrt(np.diag(cov))
        values[i] = stats.multivariate_normal.cdf(
            mean / sd, cov=cov / np.outer(sd, sd), allow_singular=True, abseps=abseps, releps=0, rng=rng
        )
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variance", type=float, default=0.05)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    sizes = [784, 100, 100, 100, 100, 10]
    weights = [rng.normal(0, 1.5 / np.sqrt(n_in), (n_out, n_in)) for n_in, n_out in zip(sizes, sizes[1:])]
    net = Network.from_arrays(weights, None, "tanh")
    X = rng.uniform(0, 1, (args.inputs, sizes[0]))
    y = np.argmax(net.forward(X)[-1], axis=1)
    means, covariances = layer_moments(net, per_layer_noise(Noise(AU=args.variance), net.depth), X)
    difference, joint = _differences_to_others(means, covariances, y)
    best, values = {"vectorised": np.inf, "scipy": np.inf}, {}
    for _ in range(args.repeats):
        for name, run in (("vectorised", _probability_largest), ("scipy", scipy_probabilities)):
            start = time.perf_counter()
            values[name] = run(difference, joint, ANALYTIC_ABSEPS, 0)
            best[name] = min(best[name], time.perf_counter() - start)
    new, old = values["vectorised"], values["scipy"]
    print(f"{args.inputs} inputs, 9-dimensional CDFs, abseps {ANALYTIC_ABSEPS}")
    print(f"vectorised {best['vectorised']:.3f} s, scipy {best['scipy']:.3f} s, "
          f"ratio {best['scipy'] / best['vectorised']:.1f}x")
    print(f"mean accuracy vectorised {new.mean():.5f}, scipy {old.mean():.5f}; "
          f"max |difference| per input {np.max(np.abs(new - old)):.2e}")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
