"""Figure F4 (trained network: per-layer noise, statistics-only recursion, weight statistics): ``python paper_figures/f4_trained_layers.py OUTDIR [--fast] [--force]``.

Thin entry point to ``noiseprop figures OUTDIR --only F4`` (code in :mod:`noiseprop.figures`).
"""
import sys

from noiseprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["figures", *sys.argv[1:], "--only", "F4"]))
