"""Monte Carlo simulation of noisy networks (:mod:`.montecarlo`, numba kernels
in :mod:`._kernels`, compiled on first use and cached as :mod:`.compilation`
says; the float32 rule in :mod:`.precision`) and the comparison of predictions
with it (:mod:`.verification`).

Submodules are imported on use: ``import noiseprop.simulation.montecarlo``.
"""
