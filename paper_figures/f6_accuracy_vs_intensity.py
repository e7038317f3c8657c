"""Figure F6 (classification accuracy vs noise intensity): ``python paper_figures/f6_accuracy_vs_intensity.py OUTDIR [--fast] [--force]``.

Thin entry point to ``noiseprop figures OUTDIR --only F6`` (code in :mod:`noiseprop.figures`).
"""
import sys

from noiseprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["figures", *sys.argv[1:], "--only", "F6"]))
