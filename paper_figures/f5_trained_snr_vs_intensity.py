"""Figure F5 (trained network: output SNR vs noise intensity, linear vs moments): ``python paper_figures/f5_trained_snr_vs_intensity.py OUTDIR [--fast] [--force]``.

Thin entry point to ``noiseprop figures OUTDIR --only F5`` (code in :mod:`noiseprop.figures`).
"""
import sys

from noiseprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["figures", *sys.argv[1:], "--only", "F5"]))
