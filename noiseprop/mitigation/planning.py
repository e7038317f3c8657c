"""A recommender: the mitigation that fits a neuron budget, :func:`plan`.

Search.  For every noisy layer k of the original network the options are
"g ghost neurons, then every neuron (ghosts included) pooled K times", with
g in {0, 1, 4, 16} (ghosts only where the layer has correlated noise)
and K = 1..``max_copies`` (K > 1 only where it has uncorrelated noise); an
option costs (N_k + g) K - N_k extra noisy neurons.  Each option's effect is
predicted alone (the output noise variance it removes).  Within linear
response the output noise is, to first order, a sum of the contributions of
the layers, so the best combination is a knapsack over layers (one option per
layer) on these reductions, solved exactly by dynamic programming over the
cost; the chosen combination is then predicted as a whole and the reported
numbers are those of that full prediction, checked by Monte Carlo.
Intra-layer coupling is evaluated on every hidden layer and reported; it
enters no plan, since with a noise-free coupling its gain is 1 (see
:mod:`.transforms`).

With ``target_snr_db`` the cheapest combination whose full prediction meets
the target is returned; when none within the budget does, the combination of
highest output SNR is returned with ``target_met = False``.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..model import Network
from ..noise import NoiseSpec, per_layer_noise
from ..propagation import METHODS, initial_state, predict, propagate_state, state_moments
from ..utils.jsonutil import finite_or_none
from ..utils.validation import as_input, noise_overflow_message, positive_int, require_network
from .allocation import allocate_copies, output_projector
from .comparison import Comparison, Strategy, apply_strategies, compare
from .transforms import pool_neurons

__all__ = ["plan", "Plan", "GHOST_GROUPS", "OBJECTIVES", "ALLOCATIONS", "output_stats"]

#: What :func:`plan` maximises.
OBJECTIVES = ("snr", "differential", "decision")
#: How :func:`plan` spends copies: one factor per layer, or per neuron.
ALLOCATIONS = ("layer", "neuron")
#: Ghost neurons per layer that the search tries.
GHOST_GROUPS = (1, 4, 16)
#: Combinations fully predicted at most when looking for the cheapest one meeting a target.
_MAX_FULL_CHECKS = 40


@dataclass
class Plan:
    """Result of :func:`plan`.

    Attributes
    ----------
    steps : list of Strategy
        The chosen transformations, in the order applied (empty: nothing to do).
    choices : list of dict
        Per layer that changes: layer, ghosts (groups), copies (K), extra_neurons.
    network : Network
        The transformed network (the original when ``steps`` is empty).
    output_snr_db_before, output_snr_db_after : float
        Predicted output SNR of the ``objective`` (dB, batch-averaged).
    extra_neurons, max_extra_neurons : int
    target_snr_db : float or None
    target_met : bool or None
    comparison : Comparison or None
        :func:`compare` of the chosen combination (Monte Carlo check inside).
    skipped : list of str
        Strategies not considered and why.
    """

    steps: list
    choices: list
    network: Network
    output_snr_db_before: float
    output_snr_db_after: float
    extra_neurons: int
    max_extra_neurons: int
    target_snr_db: Optional[float]
    target_met: Optional[bool]
    comparison: Optional[Comparison] = None
    skipped: list = field(default_factory=list)
    objective: str = "snr"

    @property
    def gain(self) -> float:
        """Predicted output SNR after / before (power ratio)."""
        return float(10 ** ((self.output_snr_db_after - self.output_snr_db_before) / 10))

    @property
    def monte_carlo(self) -> Optional[dict]:
        if self.comparison is None or not self.comparison.results:
            return None
        return self.comparison.results[0].monte_carlo

    def summary(self) -> str:
        lines = [f"budget: {self.max_extra_neurons} extra noisy neurons; used {self.extra_neurons}"]
        if not self.choices:
            lines.append("plan: no change")
        for c in self.choices:
            pooled = (f"pooled per neuron (K up to {c['copies']})" if "copies_per_neuron" in c
                      else f"pooled K={c['copies']}")
            lines.append(f"  layer {c['layer']}: {c['ghosts']} ghost neuron(s), {pooled} "
                         f"(+{c['extra_neurons']} neurons)")
        what = {"snr": "output SNR", "differential": "differential output SNR",
                "decision": "decision output SNR"}[self.objective]
        lines.append(f"{what}: {self.output_snr_db_before:.2f} dB -> {self.output_snr_db_after:.2f} dB "
                     f"(gain {self.gain:.3f}x)")
        mc = self.monte_carlo
        if mc:
            verdict = "agrees" if mc["agrees"] else "DISAGREES"
            lines.append(f"Monte Carlo ({mc['samples']} samples): output layer SNR {mc['snr_db']:.2f} dB, "
                         f"gain {mc.get('gain', float('nan')):.3f}x; output noise variance {verdict} with "
                         f"the prediction (z = {mc['z']:.2f}, limit {mc['z_critical']:.2f})")
            if not mc["exact_for_affine"]:
                lines.append("  (nonlinear activations: the prediction is first order in the noise "
                             "(linear) or Gaussian-moment based (moments), not exact)")
        if self.target_snr_db is not None:
            lines.append(f"target {self.target_snr_db:g} dB: {'met' if self.target_met else 'NOT reachable within the budget'}")
        lines.extend(f"skipped: {reason}" for reason in self.skipped)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return finite_or_none({
            "choices": self.choices, "sizes": list(self.network.sizes),
            "output_snr_db_before": self.output_snr_db_before, "output_snr_db_after": self.output_snr_db_after,
            "gain": self.gain, "extra_neurons": self.extra_neurons, "max_extra_neurons": self.max_extra_neurons,
            "target_snr_db": self.target_snr_db, "target_met": self.target_met, "objective": self.objective,
            "monte_carlo": self.monte_carlo, "skipped": self.skipped,
        })


@dataclass(frozen=True)
class _Option:
    layer: int
    ghosts: int
    copies: int
    cost: int
    reduction: float          # output noise variance removed (alone)

    def steps(self) -> list:
        steps = []
        if self.ghosts:
            steps.append(Strategy("ghost", layers=self.layer, groups=self.ghosts))
        if self.copies > 1:
            steps.append(Strategy("pool", layers=self.layer, k=self.copies))
        return steps


def plan(
    net: Network,
    noise: NoiseSpec,
    x,
    max_extra_neurons: int,
    target_snr_db: Optional[float] = None,
    *,
    max_copies: int = 4,
    include_output: bool = True,
    samples: int = 20_000,
    seed: int = 0,
    method: str = "linear",
    objective: str = "snr",
    allocation: str = "layer",
) -> Plan:
    """Recommend ghost neurons and pooling per layer within a neuron budget.

    Parameters
    ----------
    net : Network
        The original network (not a transformed one).
    noise : Noise or sequence of L Noise
    x : array_like (N_0,) or (B, N_0)
        The input(s) the SNR is predicted for (batch-averaged).
    max_extra_neurons : int
        Extra noisy neurons allowed (>= 0); never exceeded.
    target_snr_db : float, optional
        Output SNR target (dB): return the cheapest combination meeting it.
    max_copies : int, default 4
        Largest pooling factor K tried.
    include_output : bool, default True
        Also transform the output layer (a noise-free read-out layer is
        appended: the hardware must average/subtract its outputs noise-free).
    samples : int, default 20_000
        Monte Carlo realisations of the check (0: none).
    seed : int, default 0
    method : {"linear", "moments", "mixture"}, default "linear"
        Prediction method (:func:`~noiseprop.propagation.predict`); "moments"
        and "mixture" are closer to Monte Carlo for nonlinear networks at
        larger noise ("mixture", the library's default, most of all, at about
        5-20 times the cost of "moments" under correlated noise).
    objective : {"snr", "differential", "decision"}, default "snr"
        What is maximised: the output layer SNR, or the SNR of the outputs'
        deviations from their mean (for classifiers: noise common to all
        outputs does not change the arg-max; see :func:`output_stats`), or
        "decision": the differential SNR counting only the noise orthogonal to
        the noise-free output vector (a common shift or a common positive
        gain of all outputs leaves the arg-max unchanged).
    allocation : {"layer", "neuron"}, default "layer"
        "layer": one pooling factor K <= ``max_copies`` per layer (knapsack).
        "neuron": ghost neurons chosen by the knapsack, then every remaining
        extra neuron given to the neuron whose own uncorrelated noise costs
        the output most (non-uniform pooling,
        :func:`~noiseprop.mitigation.allocation.allocate_copies`); the
        better of "with" and "without the ghosts" (full prediction) is kept.

    Returns
    -------
    Plan
    """
    require_network(net)
    if hasattr(net, "origin"):
        raise ValueError("plan needs the original network, not one already transformed")
    budget = _budget(max_extra_neurons)
    max_copies = positive_int("max_copies", max_copies)
    if target_snr_db is not None:
        target_snr_db = float(target_snr_db)
        if not math.isfinite(target_snr_db):
            raise ValueError(f"target_snr_db must be a finite number of dB, got {target_snr_db}")
    layer_noise = list(per_layer_noise(noise, net.depth))
    if all(layer.is_zero for layer in layer_noise):
        raise ValueError("noise must be nonzero in some layer: a noise-free network has no noise to mitigate")
    as_input(x, net.sizes[0])
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, by layer
        signal, base = output_stats(net, layer_noise, x, method, objective)
    if not (math.isfinite(signal) and math.isfinite(base)):
        raise ValueError(_overflow_reason(net, layer_noise, x, method))
    if not signal > 0:
        if objective == "snr":
            raise ValueError("objective='snr' needs a noise-free output signal E[y]^2 > 0 (here every output "
                             "is 0, so there is no signal to protect)")
        raise ValueError(f"objective={objective!r} needs noise-free outputs that differ from one another "
                         "(here they are all equal, so there is no signal to protect); the objective 'snr' "
                         "protects their common signal")
    before_db = _db(signal, base)
    last = net.depth if include_output else net.depth - 1
    copies_cap = 1 if allocation == "neuron" else max_copies
    options, skipped = _options(net, layer_noise, x, base, budget, copies_cap, last, method, objective)
    skipped += _intra_report(net, layer_noise, x, base, method, objective)
    candidates = _knapsack(options, budget, 1e-9 * base)
    if allocation == "neuron":
        chosen, pooled = _neuron_plan(net, layer_noise, x, signal, candidates, budget, target_snr_db, last,
                                      method, objective)
    else:
        chosen = _choose(net, layer_noise, x, signal, candidates, target_snr_db, method, objective)
        pooled = {}
    steps = [s for option in sorted(chosen, key=lambda o: -o.layer) for s in option.steps()]
    steps += [Strategy("pool", layers=t, k=tuple(int(c) for c in counts)) for t, counts in sorted(pooled.items())]
    comparison = None
    network, after_db = net, before_db
    if steps:
        comparison = compare(net, layer_noise, x, {"plan": steps}, samples=samples, seed=seed, method=method)
        network = comparison.results[0].network
        after_db = _db(*output_stats(network, network.noise_for(layer_noise), x, method, objective))
    extra = getattr(network, "extra_neurons", 0)
    assert extra <= budget, "the plan exceeds its budget"
    choices = [{"layer": o.layer, "ghosts": o.ghosts, "copies": o.copies, "extra_neurons": o.cost}
               for o in sorted(chosen, key=lambda o: o.layer) if o.cost]
    if pooled:
        choices = _neuron_choices(choices, pooled)
    met = None if target_snr_db is None else bool(after_db >= target_snr_db)
    return Plan(steps, choices, network, before_db, after_db, extra, budget, target_snr_db, met,
                comparison, skipped, objective)


def _overflow_reason(net, layer_noise, x, method: str) -> str:
    """Why the output statistics are not finite: predict's own error where
    the noise-free signal overflows, else the first layer whose predicted
    noise variance does."""
    try:
        with np.errstate(all="ignore"):
            var = predict(net, layer_noise, x, method=method, error_estimate=False).var
    except ValueError as err:
        return str(err)
    layer = next((k for k in range(1, net.depth + 1) if not np.all(np.isfinite(var[k]))), net.depth)
    return noise_overflow_message(f"layer {layer}: the predicted noise variance")


def _budget(value) -> int:
    try:
        valid = not isinstance(value, bool) and operator.index(value) >= 0
    except TypeError:
        valid = isinstance(value, float) and value.is_integer() and value >= 0
    if not valid:
        raise ValueError(f"max_extra_neurons must be an integer >= 0 (a neuron budget), got {value!r}")
    return int(value)


def output_stats(net, layer_noise, x, method: str = "linear", objective: str = "snr",
                 start: "tuple | None" = None) -> tuple[float, float]:
    """Predicted (signal power, noise variance) of the output layer, batch-averaged.

    "snr": per-neuron averages of E[y_i]^2 and Var[y_i] (the layer SNR).
    "differential": the same for the deviations y_i - mean_j y_j from the
    output layer's average (what an arg-max decision depends on: noise
    common to all outputs does not change it).
    "decision": the noise orthogonal to both the common direction 1 and the
    noise-free output vector m itself (per input): a perturbation a 1 + b m
    leaves the arg-max of m unchanged (1 + b > 0), so to first order only the
    rest can flip a decision.  It removes the output layer's own AC and MC
    (common shift and common gain) and the part of upstream noise that
    scales all outputs alike.

    ``start = (k, state)`` continues the propagation from layer k - 1's
    state (:func:`~noiseprop.propagation.initial_state`; for "linear" and
    "moments" the pair (mean (B, N), cov (B, N, N) or None)) instead of the
    input: the layers before k must then be those that produced it.
    """
    layer_noise = per_layer_noise(layer_noise, net.depth)
    k, state = start if start is not None else (1, _prefix(net, layer_noise, x, method, 0)[0])
    for t in range(k, net.depth + 1):
        state = propagate_state(state, net.weights[t - 1], net.biases[t - 1], net.activations[t - 1],
                                layer_noise[t - 1], method)
    mean, cov = state_moments(state, method)
    if objective == "snr":
        return float(np.mean(mean**2)), float(np.mean(np.diagonal(cov, axis1=1, axis2=2)))
    n = mean.shape[1]
    noise = np.einsum("bij,bji->b", output_projector(mean, objective), cov) / n
    signal = np.mean((mean - mean.mean(axis=1, keepdims=True)) ** 2, axis=1)
    return float(signal.mean()), float(noise.mean())


def _prefix(net, layer_noise, x, method: str, depth: int) -> list:
    """States of layers 0..depth of the original network (:func:`output_stats`)."""
    mean, _ = as_input(x, net.sizes[0])
    states = [initial_state(mean, method)]
    for t in range(1, depth + 1):
        states.append(propagate_state(states[-1], net.weights[t - 1], net.biases[t - 1],
                                      net.activations[t - 1], layer_noise[t - 1], method))
    return states


def _output_noise(net, layer_noise, x, method: str, objective: str, start=None) -> float:
    return output_stats(net, layer_noise, x, method, objective, start)[1]


def _db(signal: float, noise_var: float) -> float:
    return 10 * math.log10(signal / noise_var) if noise_var > 0 else math.inf


def _options(net, layer_noise, x, base, budget, max_copies, last, method, objective) -> tuple[list, list]:
    """Per layer: every affordable (ghosts, copies) option with its predicted reduction."""
    per_layer, skipped = [], []
    states = _prefix(net, layer_noise, x, method, last)
    for k in range(1, last + 1):
        nz, n = layer_noise[k - 1], net.sizes[k]
        start = (k, states[k - 1])        # layers before k are unchanged by an option on layer k
        if not nz.has_uncorrelated:
            skipped.append(f"pool on layer {k}: no uncorrelated noise (AU = MU = 0) to average")
        if not nz.has_correlated:
            skipped.append(f"ghost neurons on layer {k}: no correlated noise (AC = MC = 0) to cancel")
        ghost_counts = [0] + ([g for g in GHOST_GROUPS if g <= n] if nz.has_correlated else [])
        copies = range(1, max_copies + 1) if nz.has_uncorrelated else range(1, 2)
        options = [_Option(k, 0, 1, 0, 0.0)]
        for g in ghost_counts:
            for K in copies:
                cost = (n + g) * K - n
                if (g, K) == (0, 1) or cost > budget:
                    continue
                transformed = apply_strategies(net, _Option(k, g, K, cost, 0.0).steps())
                reduced = base - _output_noise(transformed, transformed.noise_for(layer_noise), x, method, objective,
                                               start)
                if reduced > 1e-9 * base:  # a real reduction, not rounding
                    options.append(_Option(k, g, K, cost, reduced))
        per_layer.append(options)
    return per_layer, skipped


def _intra_report(net, layer_noise, x, base, method, objective) -> list:
    """Evaluate an intra-layer coupling (a = 0.5) on every hidden layer; report why it is not used."""
    notes = []
    for k in range(1, net.depth):
        transformed = apply_strategies(net, [Strategy("intra", layers=k)])
        after = _output_noise(transformed, transformed.noise_for(layer_noise), x, method, objective)
        notes.append(f"intra-layer coupling on layer {k}: output noise variance x{after / base:.6f} "
                     "(a noise-free coupling undone by the next layer leaves it unchanged); not used")
    return notes


def _knapsack(per_layer: list, budget: int, tolerance: float) -> list:
    """For every cost 0..budget: (estimated reduction, options) of the best combination
    costing at most that much (one option per layer); a dearer combination must
    reduce more than ``tolerance`` beyond a cheaper one."""
    top = min(budget, sum(max(o.cost for o in options) for options in per_layer))
    best = [(0.0, [])] + [(-math.inf, None)] * top
    for options in per_layer:
        new = [(-math.inf, None)] * (top + 1)
        for c in range(top + 1):
            for option in options:
                if option.cost <= c and best[c - option.cost][1] is not None:
                    value = best[c - option.cost][0] + option.reduction
                    if value > new[c][0]:
                        new[c] = (value, best[c - option.cost][1] + [option])
        best = new
    # "at most c": carry the best of cheaper costs forward
    for c in range(1, top + 1):
        if best[c - 1][0] >= best[c][0] - tolerance:
            best[c] = best[c - 1]
    return best


def _choose(net, layer_noise, x, signal, candidates, target, method, objective) -> list:
    """The chosen options: the largest-reduction combination, or the cheapest meeting the target."""
    if target is None:
        return candidates[-1][1]
    if _db(signal, _output_noise(net, layer_noise, x, method, objective)) >= target:
        return []
    checked, seen = 0, set()
    for reduction, options in candidates:
        key = tuple(options)
        if key in seen or not options:
            continue
        seen.add(key)
        steps = [s for o in sorted(options, key=lambda o: -o.layer) for s in o.steps()]
        if not steps:
            continue
        transformed = apply_strategies(net, steps)
        noise = _output_noise(transformed, transformed.noise_for(layer_noise), x, method, objective)
        if _db(signal, noise) >= target:
            return options
        checked += 1
        if checked >= _MAX_FULL_CHECKS:
            break
    return candidates[-1][1]


def _neuron_plan(net, layer_noise, x, signal, candidates, budget, target, last, method, objective):
    """Ghosts from the knapsack, then per-neuron pooling with the rest of the budget.

    Returns (ghost options, {layer: copies per neuron}).  "The best ghost set",
    "one ghost per hidden layer with correlated noise" and "no ghosts" are
    each completed with pooling and fully predicted; the best one is kept.  With a target, the smallest pooling budget meeting it
    is found by bisection (the greedy allocations are nested).
    """
    # a ghost that hurts alone (its own uncorrelated noise) can pay once it is pooled: also try one
    # ghost in every hidden layer with correlated noise, completed by the copy allocation
    single = [_Option(k, 1, 1, 1, 0.0) for k in range(1, min(last, net.depth - 1) + 1)
              if layer_noise[k - 1].has_correlated]
    ghost_sets = [[], [o for o in candidates[-1][1] if o.cost]]
    if single and len(single) <= budget:
        ghost_sets.append(single)
    best = None
    for ghosts in ghost_sets:
        steps = [s for option in sorted(ghosts, key=lambda o: -o.layer) for s in option.steps()]
        base_net = apply_strategies(net, steps) if steps else net
        spare = budget - sum(o.cost for o in ghosts)
        layers = [t for t in range(1, last + 1)]

        def evaluate(extra):
            copies = allocate_copies(base_net, layer_noise, x, extra, objective, layers) if extra else {}
            final = pool_neurons(base_net, copies) if copies else base_net
            noise = final.noise_for(layer_noise) if hasattr(final, "noise_for") else layer_noise
            return _db(*output_stats(final, noise, x, method, objective)), copies

        db, copies = evaluate(spare)
        if target is not None and db >= target:
            low, high = 0, spare                 # bisection: smallest pooling budget meeting the target
            if evaluate(0)[0] >= target:
                high = 0
            while high - low > 1:
                mid = (low + high) // 2
                if evaluate(mid)[0] >= target:
                    high = mid
                else:
                    low = mid
            db, copies = evaluate(high)
            cost = high + budget - spare
        else:
            cost = budget
        key = (target is not None and db >= target, -cost if target is not None and db >= target else db)
        if best is None or key > best[0]:
            best = (key, ghosts, copies)
    return best[1], best[2]


def _neuron_choices(choices: list, pooled: dict) -> list:
    """Per-layer choice records with the per-neuron copies of a "neuron" plan."""
    by_layer = {c["layer"]: dict(c) for c in choices}
    for t, counts in pooled.items():
        record = by_layer.setdefault(t, {"layer": t, "ghosts": 0, "copies": 1, "extra_neurons": 0})
        record["copies"] = int(counts.max())
        record["copies_per_neuron"] = [int(c) for c in counts]
        record["extra_neurons"] += int(counts.sum() - counts.size)
    return [by_layer[t] for t in sorted(by_layer)]
