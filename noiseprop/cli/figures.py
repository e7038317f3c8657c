"""``noiseprop figures``: regenerate the paper figures into a folder."""
from __future__ import annotations

import argparse
import sys

from .common import add_resource_options, output_path

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "figures", help="regenerate the paper figures (PNG + JSON of key numbers)",
        description="Regenerate the paper figures: analytic predictions with their Monte Carlo "
        "verification. Writes FIGURE.png and FIGURE.json (caption, settings, key numbers, "
        "plotted curves) for each figure.",
    )
    parser.add_argument("outdir", type=output_path, metavar="OUTDIR",
                        help="output folder (created if missing; an empty name is refused)")
    parser.add_argument("--fast", action="store_true",
                        help="small Monte Carlo sample counts (seconds; for tests), not full quality")
    parser.add_argument("--only", metavar="IDS", help="comma-separated figure ids, e.g. F1,F3 (default: all)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite existing files (regular files only; a PNG and its JSON are "
                        "written as one unit)")
    add_resource_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..figures import make_figures  # matplotlib and the figure code only when asked for

    def progress(line: str) -> None:
        print(line, file=sys.stderr)

    outputs = make_figures(args.outdir, only=args.only, fast=args.fast, overwrite=args.force,
                           progress=progress)
    for output in outputs:
        print(f"{output.figure_id}\t{output.png}\t{output.data}")
    return 0
