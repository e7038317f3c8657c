"""``noiseprop verify``: the analytic prediction against plain Monte Carlo.

Exit codes: 0 when every layer agrees, 1 when not, 2 for bad input.
"""
from __future__ import annotations

import argparse

from ..methods import DEFAULT_METHOD, METHODS
from ..simulation.tolerances import DEFAULT_MEAN_TOL, DEFAULT_RTOL
from .common import (
    add_network_options,
    add_quiet_option,
    check_noise_scale,
    count_value,
    describe_noise,
    finite_value,
    network_from_args,
    noise_from_args,
    output_path,
    print_json,
    print_network_and_noise,
    progress_from_args,
    refuse_existing,
    seed_value,
)

__all__ = ["register", "EXIT_DISAGREE"]

#: Exit code when the prediction and the simulation disagree.
EXIT_DISAGREE = 1


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "verify", help="check the analytic prediction against Monte Carlo sampling",
        description="Hold the per-layer analytic prediction (mean and variance of every neuron; --method) "
        "against plain Monte Carlo sampling. A quantity fails only when the samples show, at the "
        "false-failure probability, that it deviates by more than its tolerance (--rtol for variances, "
        "--mean-tol for means; --strict: any resolved deviation fails). Exit 0 if every layer agrees, "
        "1 if not, 2 for bad input (also an unreadable or unsafe file or a resource limit).",
    )
    add_network_options(parser)
    parser.add_argument("--samples", type=count_value, default=100_000,
                        help="Monte Carlo realisations (default 100000; bounded by --max-time and --max-memory)")
    parser.add_argument("--seed", type=seed_value, default=0, help="random seed, an integer >= 0 (default 0)")
    parser.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                        help=f"prediction method to verify (default {DEFAULT_METHOD}; see noiseprop predict --help)")
    parser.add_argument("--rtol", type=finite_value, metavar="R",
                        help="tolerance of every variance and layer Var, relative to the prediction "
                        f"(default {DEFAULT_RTOL:g})")
    parser.add_argument("--mean-tol", type=finite_value, metavar="T",
                        help="tolerance of every neuron mean, in units of its noise standard deviation "
                        f"(default {DEFAULT_MEAN_TOL:g})")
    parser.add_argument("--strict", action="store_true",
                        help="no tolerance: fail on any deviation the samples resolve (not with "
                        "--rtol or --mean-tol)")
    parser.add_argument("--false-failure", type=finite_value, default=1e-6, metavar="P",
                        help="probability that a correct prediction fails any comparison (default 1e-6)")
    parser.add_argument("--dtype", choices=("float64", "float32", "auto"), default="float64",
                        help="Monte Carlo arithmetic (default float64; float32 is faster, its rounding "
                        "adds a small bias: for quick checks; auto: float32 only where that bias is "
                        "provably below a tenth of a standard error)")
    parser.add_argument("--plot", metavar="FILE", type=output_path,
                        help="write the verification figure (.png, .pdf, .svg); written atomically")
    parser.add_argument("--force", action="store_true",
                        help="overwrite an existing --plot file (a regular file only: a symbolic link, "
                        "device or FIFO is never replaced)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_quiet_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..simulation.verification import verify
    from ..utils.estimate import announce_long_run

    rtol, mean_tol = tolerances_from_args(args)
    net, x = network_from_args(args)
    noise = noise_from_args(args, net.depth)
    refuse_existing(args.plot, "--plot", args.force)
    check_noise_scale(args, net, x, noise, args.method)
    announce_long_run("verify", "verify", net.sizes, inputs=x.shape[0] if x.ndim == 2 else 1, samples=args.samples,
                      method=args.method)
    report = verify(net, noise, x, samples=args.samples, seed=args.seed, false_failure=args.false_failure,
                    method=args.method, rtol=rtol, mean_tol=mean_tol, strict=args.strict,
                    progress=progress_from_args(args), dtype=args.dtype)
    if args.plot:
        report.plot(args.plot, overwrite=args.force)
    if args.json:
        print_json({"network": repr(net), "noise": describe_noise(noise), **report.to_dict()})
    else:
        print_network_and_noise(net, noise)
        print(report.table())
    return 0 if report.passed else EXIT_DISAGREE


def tolerances_from_args(args: argparse.Namespace) -> tuple[float, float]:
    """(rtol, mean_tol): the options or their defaults; --strict sets both to
    0, so a tolerance given with it would be ignored: refused instead."""
    given = [option for option, value in (("--rtol", args.rtol), ("--mean-tol", args.mean_tol)) if value is not None]
    if args.strict and given:
        raise ValueError(f"--strict sets every tolerance to 0: give it without {' and '.join(given)}")
    return (DEFAULT_RTOL if args.rtol is None else args.rtol,
            DEFAULT_MEAN_TOL if args.mean_tol is None else args.mean_tol)
