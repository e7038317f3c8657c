"""The propagation methods of :func:`noiseprop.predict` and the one default
that every entry point (predict, verify, check, the studies, the CLI) shares.

A light module (no NumPy): the command-line parser reads it without loading
the propagation code.
"""
from __future__ import annotations

__all__ = ["METHODS", "DEFAULT_METHOD"]

#: Propagation methods of :func:`noiseprop.predict`: linear response, Gaussian
#: moments, and the mixture closure that treats shared noise draws explicitly.
METHODS = ("linear", "moments", "mixture")
#: The method every entry point uses unless told otherwise: the most accurate
#: one on the closure matrix of ``benchmarks/closure_matrix.py`` (docs/closure.md).
DEFAULT_METHOD = "mixture"
