"""Helpers shared by every layer of noiseprop: input validation, seeds,
optional dependencies, JSON, safe file writing, text tables and progress bars.

Nothing here knows about noise propagation; the modules import only the
standard library and NumPy (plus tqdm for progress bars, on use).
"""
