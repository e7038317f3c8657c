"""Analysis built on the propagation: layer gains from weight statistics
(:mod:`.gains`), symbolic recursions and closed forms (:mod:`.symbolic`,
imports sympy) and design-rule checks (:mod:`.design`).

Submodules are imported on use: ``import noiseprop.analysis.design``.
"""
