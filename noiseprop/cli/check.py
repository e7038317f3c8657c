"""``noiseprop check``: design rules with exit codes for CI.

Exit codes: 0 all rules met, 1 a rule fails (unbounded noise accumulation in
a layer that receives noise and passes it on, 2..L-1, or the target output SNR
missed), 2 bad input.
"""
from __future__ import annotations

import argparse

import numpy as np

from ..methods import DEFAULT_METHOD, METHODS
from ..noise import NOISE_TYPES, Noise
from .common import (
    add_network_options,
    check_noise_scale,
    describe_noise,
    finite_value,
    network_from_args,
    noise_from_args,
    output_path,
    print_json,
    print_network_and_noise,
    refuse_existing,
)

__all__ = ["register", "EXIT_RULE_FAILED"]

EXIT_RULE_FAILED = 1


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check", help="design rules: bounded noise, budgets, advice (exit 1 if a rule fails)",
        description="Check a design: noise gains and bounded accumulation per layer, output SNR, "
        "sensitivity to each layer's noise, noise budgets for a target SNR, recommendations. "
        "Exit codes: 0 all rules met, 1 a rule fails, 2 bad input.",
    )
    add_network_options(parser)
    parser.add_argument("--target-snr", type=finite_value, metavar="DB",
                        help="target output SNR in dB (layer SNR of the last layer); adds the noise budgets")
    parser.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                        help=f"prediction of the output SNR and the budgets (default {DEFAULT_METHOD}); growth "
                        "rates and deep limits are those of the linearised network")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--chart", metavar="FILE", type=output_path,
                        help="write design charts of the symmetric family near this design (e.g. chart.png)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite an existing --chart file (a regular file only: a symbolic link, "
                        "device or FIFO is never replaced)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.design import check_design

    refuse_existing(args.chart, "--chart", args.force)
    net, x = network_from_args(args)
    noise = noise_from_args(args, net.depth)
    check_noise_scale(args, net, x, noise)
    report = check_design(net, noise, x, target_snr_db=args.target_snr, method=args.method)
    chart = _write_chart(args, net, noise, report) if args.chart else None
    if args.json:
        payload = {"network": repr(net), "noise": describe_noise(noise), **report.to_dict()}
        if chart is not None:
            payload["chart"] = str(chart)
        print_json(payload)
    else:
        print_network_and_noise(net, noise)
        print(report.table())
        print("(rho: growth rate per layer of a deep stack of such layers, the spectral radius of the layer's "
              "covariance map, bounded if < 1; deep limit: the map's fixed point (mean variance); output share: "
              "fraction of the output noise. Right of '|': the design summary from the (uncorrelated, "
              "correlated) split of the covariance: g_U, g_C: uncorrelated / correlated noise gain; P: signal "
              "power, the multiplicative gain; its rho and limit are exact for symmetric networks only. "
              "* a layer that is not square cannot be stacked: its rho is the summary's)")
        print(report.summary())
        if chart is not None:
            print(f"chart written to {chart}")
    return 0 if report.passed else EXIT_RULE_FAILED


def _write_chart(args, net, noise, report):
    from ..analysis.design import design_chart

    """Charts of the symmetric family with this network's width, depth, slope and
    (largest per type) noise, the network marked on the slope x depth map."""
    width = int(round(float(np.median(net.sizes[1:]))))
    carrying = report.layers[1:] or report.layers
    slope = float(np.mean([rule.slope for rule in carrying]))
    largest = Noise(**{name: max(getattr(nz, name) for nz in noise) for name in NOISE_TYPES})
    slopes = np.linspace(0.5, max(1.3, 1.1 * slope), 81)
    return design_chart(args.chart, width, largest, args.target_snr, slope=slope,
                        max_depth=max(10, 2 * net.depth), slopes=slopes, mark=(slope, net.depth),
                        overwrite=args.force)
