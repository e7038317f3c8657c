"""Figure F7 (walking noise: accuracy vs noise in one layer, midpoints): ``python paper_figures/f7_walking_noise.py OUTDIR [--fast] [--force]``.

Thin entry point to ``noiseprop figures OUTDIR --only F7`` (code in :mod:`noiseprop.figures`).
"""
import sys

from noiseprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["figures", *sys.argv[1:], "--only", "F7"]))
