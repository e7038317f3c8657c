"""Figure F10 (accuracy vs intensity, original and mitigated): ``python paper_figures/f10_mitigated_accuracy.py OUTDIR [--fast] [--force]``.

Thin entry point to ``noiseprop figures OUTDIR --only F10`` (code in :mod:`noiseprop.figures`).
"""
import sys

from noiseprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["figures", *sys.argv[1:], "--only", "F10"]))
