"""Command-line interface ``noiseprop <command>``: a thin layer over the API.

Each command lives in its own module with a ``register(commands)`` function
that adds its sub-parser and sets ``run``.  Exit codes: 0 success, 2 bad input
(others are command-specific, e.g. 1 for a failed check).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import check, derive, figures, mitigate, predict, robustness, verify
from .common import EXIT_BAD_INPUT

__all__ = ["main", "build_parser"]

#: Command modules, in the order of ``noiseprop --help``.
COMMANDS = [predict, check, figures, verify, robustness, derive, mitigate]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="noiseprop",
        description="Noise propagation in deep networks of noisy analog neurons.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: "Sequence[str] | None" = None) -> int:
    """Run ``noiseprop`` with ``argv`` (default: sys.argv[1:]); return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError) as err:
        print(f"noiseprop {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
