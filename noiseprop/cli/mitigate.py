"""``noiseprop mitigate``: the best pooling / ghost-neuron plan within a neuron budget.

Exit codes: 0 the plan meets ``--target-snr`` (or no target was given),
1 the target is not reachable within the budget, 2 bad input.
"""
from __future__ import annotations

import argparse
import math

from ..methods import METHODS
from .common import (
    CLIError,
    add_network_options,
    check_noise_scale,
    describe_noise,
    network_from_args,
    noise_from_args,
    noise_options_given,
    print_json,
    print_network_and_noise,
    refuse_existing,
    seed_value,
)

__all__ = ["register", "EXIT_TARGET_MISSED", "budget_neurons"]

#: Exit code when the target SNR cannot be reached within the budget.
EXIT_TARGET_MISSED = 1


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "mitigate", help="recommend pooling and ghost neurons within a neuron budget (exit 1 if the target is missed)",
        description="Search ghost neurons and pooling per layer for the highest output SNR within a budget of "
        "extra noisy neurons (or the cheapest plan meeting --target-snr), predict its gain and check it by Monte "
        "Carlo. Transforming the output layer appends a noise-free read-out layer (the averaging/subtraction of "
        "the output copies is assumed to be done without noise). "
        "Exit codes: 0 target met (or none given), 1 not reachable within the budget, 2 bad input.",
    )
    add_network_options(parser)
    parser.add_argument("--budget", type=float, default=1.0, metavar="FRACTION",
                        help="extra noisy neurons allowed, as a fraction of the hidden neurons N_1+..+N_{L-1} "
                        "(of all neurons for a one-layer network); default 1.0 (twice the hidden neurons)")
    parser.add_argument("--target-snr", type=float, metavar="DB", help="target output SNR in dB (layer SNR of the output)")
    parser.add_argument("--max-copies", type=int, default=4, metavar="K", help="largest pooling factor tried (default 4)")
    parser.add_argument("--hidden-only", action="store_true",
                        help="leave the output layer alone (no noise-free read-out layer)")
    parser.add_argument("--objective", choices=("snr", "differential", "decision"), default="snr",
                        help="maximise the output layer SNR (default), the SNR of the outputs' deviations from "
                        "their mean (classifiers: common-mode noise does not change the arg-max), or that without "
                        "the output layer's own correlated noise (decision: a common gain does not either)")
    parser.add_argument("--allocation", choices=("layer", "neuron"), default="layer",
                        help="pool with one factor per layer (default) or spend copies neuron by neuron where "
                        "the output is most sensitive")
    parser.add_argument("--samples", type=int, default=20_000, help="Monte Carlo realisations of the check (default 20000; 0: none)")
    parser.add_argument("--seed", type=seed_value, default=0, help="random seed, an integer >= 0 (default 0)")
    parser.add_argument("--method", choices=METHODS, default="linear",
                        help="prediction method: linear response (default: the search predicts every option), "
                        "Gaussian moments, or the mixture closure (the library's default; slower)")
    parser.add_argument("--save", metavar="OUT.npz", help="write the transformed network (and its input) to this .npz file")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --save file")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    # API parameters whose option has another name (errors name the option; see cli.build_parser)
    parser.set_defaults(run=run, parameter_aliases={"target_snr_db": "--target-snr"})


def budget_neurons(fraction: float, sizes) -> int:
    """Extra neurons allowed: ``fraction`` of the hidden neurons (of all for one layer), rounded down."""
    if not (math.isfinite(fraction) and fraction >= 0):
        raise CLIError(f"--budget must be a fraction >= 0 of the hidden neurons, got {fraction}")
    hidden = sum(sizes[1:-1]) or sum(sizes[1:])
    return int(math.floor(fraction * hidden + 1e-9))


def run(args: argparse.Namespace) -> int:
    from ..io.networks import save_network
    from ..mitigation import plan

    refuse_existing(args.save, "--save", args.force)
    net, x = network_from_args(args)
    noise = noise_from_args(args, net.depth)
    if all(layer.is_zero for layer in noise):  # the API's error would name no option
        raise CLIError(f"{noise_options_given(args)}: every noise intensity is 0, so there is no noise to mitigate")
    check_noise_scale(args, net, x, noise, args.method)
    budget = budget_neurons(args.budget, net.sizes)
    result = plan(net, noise, x, budget, args.target_snr, max_copies=args.max_copies,
                  include_output=not args.hidden_only, samples=args.samples, seed=args.seed,
                  method=args.method, objective=args.objective, allocation=args.allocation)
    saved = save_network(args.save, result.network, x, overwrite=args.force) if args.save else None
    if args.json:
        payload = {"network": repr(net), "noise": describe_noise(noise), "budget_fraction": args.budget,
                   **result.to_dict()}
        if saved is not None:
            payload["saved"] = str(saved)
        print_json(payload)
    else:
        print_network_and_noise(net, noise)
        print(result.summary())
        if saved is not None:
            print(f"transformed network written to {saved} (noise-free read-out layers: give them zero noise)")
    return EXIT_TARGET_MISSED if result.target_met is False else 0
