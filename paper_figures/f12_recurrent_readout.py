"""Figure F12 (stationary output SNR vs the mean and mean square of W_out): ``python paper_figures/f12_recurrent_readout.py OUTDIR [--fast] [--force]``.

Thin entry point to ``noiseprop figures OUTDIR --only F12`` (code in :mod:`noiseprop.figures`).
"""
import sys

from noiseprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["figures", *sys.argv[1:], "--only", "F12"]))
