"""Figure F1 (symmetric networks: noise variance vs layer): ``python paper_figures/f1_symmetric.py OUTDIR [--fast] [--force]``.

Thin entry point to ``noiseprop figures OUTDIR --only F1`` (code in :mod:`noiseprop.figures`).
"""
import sys

from noiseprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["figures", *sys.argv[1:], "--only", "F1"]))
