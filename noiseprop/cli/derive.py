"""``noiseprop derive``: the symbolic recursion, closed form, limit and conditions."""
from __future__ import annotations

import argparse

from ..noise import NOISE_TYPES
from .common import print_json

__all__ = ["register"]

FAMILIES = ("symmetric", "trained")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "derive", help="symbolic recursion, closed form, deep limit and conditions",
        description="Derive with sympy (spec sections 4-6) the per-layer noise recursion, its "
        "closed form, deep-network limit, gains, the bounded-noise condition, the critical "
        "slope and the SNR limit, for one network family and a choice of noise types.",
    )
    parser.add_argument(
        "--noise", default="all", metavar="TYPES",
        help=f"noise types switched on: one of {', '.join(NOISE_TYPES)}, a comma-separated "
        "list of them, or 'all' (default)",
    )
    parser.add_argument("--family", choices=FAMILIES, default="symmetric",
                        help="symmetric networks (spec 5) or trained networks from weight "
                        "statistics (spec 6); default symmetric")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--latex", action="store_true", help="LaTeX output")
    form.add_argument("--json", action="store_true", help="machine-readable output (text and LaTeX)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.symbolic import derive  # sympy: imported only when asked for

    noise = args.noise if args.noise == "all" else [part.strip() for part in args.noise.split(",")]
    derivation = derive(noise, args.family)
    if args.json:
        print_json(derivation.to_dict())
    elif args.latex:
        print(derivation.latex())
    else:
        print(derivation.pretty())
    return 0
