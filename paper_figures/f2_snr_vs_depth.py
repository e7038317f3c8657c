"""Figure F2 (output SNR vs depth): ``python paper_figures/f2_snr_vs_depth.py OUTDIR [--fast] [--force]``.

Thin entry point to ``noiseprop figures OUTDIR --only F2`` (code in :mod:`noiseprop.figures`).
"""
import sys

from noiseprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["figures", *sys.argv[1:], "--only", "F2"]))
