"""Regenerate every paper figure into a folder: ``python paper_figures/make_all.py OUTDIR [--fast] [--only F1,F3] [--force]``.

The same as ``noiseprop figures``; the figure code lives in the package
(:mod:`noiseprop.figures`) so that the command works from any install.
The committed full-quality figures are in ``paper_figures/output``:
``python paper_figures/make_all.py paper_figures/output --force``.
"""
import sys

from noiseprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["figures", *sys.argv[1:]]))
