"""Figure F3 (the slope design rule): ``python paper_figures/f3_slope_rule.py OUTDIR [--fast] [--force]``.

Thin entry point to ``noiseprop figures OUTDIR --only F3`` (code in :mod:`noiseprop.figures`).
"""
import sys

from noiseprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["figures", *sys.argv[1:], "--only", "F3"]))
