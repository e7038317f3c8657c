"""``noiseprop verify``: the analytic prediction against plain Monte Carlo.

Exit codes: 0 when every layer agrees, 1 when not, 2 for bad input.
"""
from __future__ import annotations

import argparse

from .common import (
    add_network_options,
    describe_noise,
    network_from_args,
    noise_from_args,
    print_json,
    print_network_and_noise,
    refuse_existing,
)

__all__ = ["register", "EXIT_DISAGREE"]

#: Exit code when the prediction and the simulation disagree.
EXIT_DISAGREE = 1


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "verify", help="check the analytic prediction against Monte Carlo sampling",
        description="Hold the per-layer analytic prediction (mean and variance of every neuron; --method) "
        "against plain Monte Carlo sampling; exit 0 if every layer agrees within its sampling "
        "error, 1 if not, 2 for bad input.",
    )
    add_network_options(parser)
    parser.add_argument("--samples", type=int, default=100_000, help="Monte Carlo realisations (default 100000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--method", choices=("linear", "moments"), default="linear",
                        help="prediction to verify: linear response (default) or Gaussian moments")
    parser.add_argument("--false-failure", type=float, default=1e-6, metavar="P",
                        help="probability that a correct prediction fails any comparison (default 1e-6)")
    parser.add_argument("--plot", metavar="FILE", help="write the verification figure (.png, .pdf, .svg)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --plot file")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..simulation.verification import verify

    net, x = network_from_args(args)
    noise = noise_from_args(args, net.depth)
    refuse_existing(args.plot, "--plot", args.force)
    report = verify(net, noise, x, samples=args.samples, seed=args.seed, false_failure=args.false_failure,
                    method=args.method)
    if args.plot:
        report.plot(args.plot, overwrite=args.force)
    if args.json:
        print_json({"network": repr(net), "noise": describe_noise(noise), **report.to_dict()})
    else:
        print_network_and_noise(net, noise)
        print(report.table())
    return 0 if report.passed else EXIT_DISAGREE
