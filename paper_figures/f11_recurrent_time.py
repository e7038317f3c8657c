"""Figure F11 (noise variance vs time in an echo state network, driven and self-closed): ``python paper_figures/f11_recurrent_time.py OUTDIR [--fast] [--force]``.

Thin entry point to ``noiseprop figures OUTDIR --only F11`` (code in :mod:`noiseprop.figures`).
"""
import sys

from noiseprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["figures", *sys.argv[1:], "--only", "F11"]))
