"""Noise mitigation: pooling, ghost neurons and intra-layer connections.

Transformations (:mod:`.transforms`) return ordinary networks with the same
noise-free function; :func:`compare` predicts and checks by Monte Carlo what
each strategy gains; :func:`plan` recommends the best combination within a
neuron budget.  The symmetric-family derivations are in :mod:`.symbolic`
(sympy, loaded on use).
"""
from .allocation import allocate_copies, neuron_contributions
from .comparison import Comparison, Strategy, StrategyResult, apply_strategies, compare, function_error
from .planning import Plan, plan
from .transforms import (
    COUPLING,
    GHOST,
    READOUT,
    MitigatedNetwork,
    ghost_neurons,
    intra_layer,
    pool,
    pool_neurons,
)

__all__ = [
    "Comparison", "Plan", "Strategy", "StrategyResult", "apply_strategies", "compare", "function_error", "plan",
   "COUPLING", "GHOST", "READOUT", "MitigatedNetwork", "ghost_neurons", "intra_layer", "pool", "pool_neurons",
   "allocate_copies", "neuron_contributions"]
