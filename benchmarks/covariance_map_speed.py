"""Time of the covariance map's spectral radius: the Perron iteration of
:mod:`noiseprop.positive_maps` against ARPACK on the map itself (its
fallback, forced here), interleaved in one run (best of ``--repeat``).

Cases (all four noise types at D = 1e-3 unless stated):

- ``covariance_map_growth`` of a tanh layer (slopes 1 - tanh^2 of standard
  normal pre-activations, weights N(0, 1.5^2 / N), D_MU = 0.05, D_MC = 0.1)
  at N = 100 and 256;
- ``check_design`` of a 4-layer 256-wide tanh network (weights N(0, 1/N),
  one input uniform in [0, 1]), whose square layers each need a radius and
  a deep limit;
- the growth rate of ``stationary`` for a driven 200-neuron tanh reservoir
  (spectral radius 0.9, leak 0.5, MU = MC = 1e-2).

Usage::

    python benchmarks/covariance_map_speed.py [--repeat 3]

prints the seconds of both routes, their ratio and the largest relative
difference of the radii.
"""
from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import numpy as np

from noiseprop import Network, Noise, check_design, positive_maps
from noiseprop.analysis.design import covariance_map_growth
from noiseprop.recurrent import RecurrentNetwork, stationary


@contextmanager
def arnoldi_only():
    """ARPACK on the map for every radius (the Perron iteration declines)."""
    perron = positive_maps._perron_radius
    positive_maps._perron_radius = lambda *args: None
    try:
        yield
    finally:
        positive_maps._perron_radius = perron


def layer_growth(n: int):
    rng = np.random.default_rng(n)
    slopes = 1.0 - np.tanh(rng.standard_normal(n)) ** 2
    carrier = slopes[:, None] * rng.normal(0.0, 1.5, (n, n)) / np.sqrt(n)
    return lambda: covariance_map_growth(carrier, Noise(MU=0.05, MC=0.1))


def design_check(width: int = 256, depth: int = 4):
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((width, width)) / np.sqrt(width) for _ in range(depth)]
    net = Network.from_arrays(weights, None, "tanh")
    x = np.random.default_rng(1).uniform(0.0, 1.0, width)
    noise = Noise(AU=1e-3, AC=1e-3, MU=1e-3, MC=1e-3)
    return lambda: max(rule.accumulation_gain for rule in check_design(net, noise, x).layers)


def reservoir_growth(n: int = 200):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((n, n))
    w *= 0.9 / np.max(np.abs(np.linalg.eigvals(w)))
    net = RecurrentNetwork.from_arrays(rng.uniform(-0.5, 0.5, (n, 1)), w, rng.standard_normal((1, n)) / np.sqrt(n),
                                       activation="tanh", leak=0.5)
    noise = Noise(AU=1e-3, MU=1e-2, MC=1e-2)
    return lambda: stationary(net, noise, [0.3]).growth_rate


def timed(run) -> tuple[float, float]:
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    cases = {"growth N=100": layer_growth(100), "growth N=256": layer_growth(256),
             "check_design 4x256": design_check(), "stationary N=200": reservoir_growth()}
    print(f"{'case':<20} {'perron s':>9} {'arpack s':>9} {'ratio':>6} {'rel. diff':>9}")
    for name, run in cases.items():
        best = {"perron": np.inf, "arpack": np.inf}
        values = {}
        for _ in range(args.repeat):  # interleaved: both routes see the same load
            seconds, values["perron"] = timed(run)
            best["perron"] = min(best["perron"], seconds)
            with arnoldi_only():
                seconds, values["arpack"] = timed(run)
            best["arpack"] = min(best["arpack"], seconds)
        difference = abs(values["perron"] - values["arpack"]) / values["arpack"]
        print(f"{name:<20} {best['perron']:9.2f} {best['arpack']:9.2f} {best['arpack'] / best['perron']:6.1f} "
              f"{difference:9.1e}", flush=True)


if __name__ == "__main__":
    main()
