"""``noiseprop figures``: regenerate the paper figures into a folder."""
from __future__ import annotations

import argparse
import sys

from .common import add_quiet_option, add_resource_options, output_path, progress_from_args

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
    add_quiet_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..figures import figure_ids, make_figures, unavailable  # matplotlib and figure code only when asked
    from ..utils.progress import progress_bar, show_progress

    enabled = progress_from_args(args)
    ids = figure_ids(args.only)
    with progress_bar(len(ids) - len(unavailable(ids)), desc="figures", unit="figure", enabled=enabled) as bar:
        def progress(line: str) -> None:
            figure_id, _, what = line.partition(": ")
            if what.startswith("wrote"):
                bar.update(1)
            if what.startswith("skipped"):  # always said: the user must learn what is missing
                bar.write(line) if show_progress(enabled) else print(line, file=sys.stderr)
            elif show_progress(enabled):
                bar.set_description(f"figures ({figure_id})")
            elif not args.quiet:
                print(line, file=sys.stderr)  # not a terminal (a log): one line per step

        outputs = make_figures(args.outdir, only=args.only, fast=args.fast, overwrite=args.force,
                               progress=progress)
    for output in outputs:
        print(f"{output.figure_id}\t{output.png}\t{output.data}")
    return 0
