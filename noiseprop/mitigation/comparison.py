"""Predicted and simulated gain of mitigation strategies: :func:`compare`.

For every strategy the network is transformed (:mod:`.transforms`), the
original noise spec mapped onto the transformed layers
(:meth:`~noiseprop.mitigation.transforms.MitigatedNetwork.noise_for`), and
``predict`` run on both networks.  Reported per original layer and at the
output: the layer SNR sum_i E[y_i]^2 / sum_i Var[y_i] (power ratio, in dB,
batch-averaged as in :meth:`~noiseprop.statistics.LayerStatistics.summary`,
over the copies of the original neurons: ghost neurons are left out), the
gain after / before, and the cost in extra noisy neurons and connections.
A Monte Carlo run of both networks (plain estimator) checks the predicted
output noise variance and gives the simulated gain.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np

from ..model import Network
from ..noise import Noise, NoiseSpec, per_layer_noise
from ..propagation import predict
from ..statistics import decibels
from ..utils.jsonutil import finite_or_none
from ..utils.validation import as_input, open_probability, require_network
from .transforms import GHOST, MitigatedNetwork, _layers, _State, ghost_neurons, intra_layer, pool

__all__ = ["Strategy", "StrategyResult", "Comparison", "compare", "apply_strategies", "function_error"]

#: Strategy kinds and the transformation that implements each.
KINDS = ("pool", "ghost", "intra")


@dataclass(frozen=True)
class Strategy:
    """One mitigation step: a transformation and its parameters.

    Parameters
    ----------
    kind : {"pool", "ghost", "intra"}
    layers : int or tuple of int, optional
        Layers of the network the step is applied to (default: hidden layers).
    k : int or tuple of int, default 2
        Copies per neuron ("pool"); a tuple gives each neuron of one layer
        its own count (non-uniform pooling).
    groups : int, default 1
        Ghost neurons per layer ("ghost").
    level : float, optional
        Ghost output level ("ghost"; default f(0)).
    coupling : float, str or ndarray, default "mean"
        Intra-layer coupling ("intra").
    """

    kind: str
    layers: "int | tuple | None" = None
    k: int = 2
    groups: int = 1
    level: Optional[float] = None
    coupling: object = "mean"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"strategy kind must be one of {KINDS}, got {self.kind!r}")
        if isinstance(self.layers, list):
            object.__setattr__(self, "layers", tuple(self.layers))
        if isinstance(self.k, (list, np.ndarray)):
            object.__setattr__(self, "k", tuple(int(c) for c in self.k))

    @property
    def label(self) -> str:
        where = "hidden" if self.layers is None else ",".join(str(k) for k in np.atleast_1d(self.layers))
        k = self.k if np.ndim(self.k) == 0 else f"1..{max(self.k)} per neuron (+{sum(self.k) - len(self.k)})"
        detail = {"pool": f"K={k}", "ghost": f"groups={self.groups}",
                  "intra": f"coupling={self.coupling if isinstance(self.coupling, (str, float, int)) else 'matrix'}"}
        return f"{self.kind}({detail[self.kind]}; layers {where})"

    def apply(self, net: Network) -> MitigatedNetwork:
        """The transformed network."""
        if self.kind == "pool":
            return pool(net, self.k, self.layers)
        if self.kind == "ghost":
            return ghost_neurons(net, self.layers, self.groups, self.level)
        return intra_layer(net, self.coupling, self.layers)

    def not_applicable(self, net: Network, noise: NoiseSpec) -> Optional[str]:
        """Why the step cannot help under ``noise`` (None if it can)."""
        state = _State.of(net)
        layer_noise = per_layer_noise(noise, state.original_depth)
        for t in _layers(state, self.layers):
            k = state.origin[t - 1]
            nz = layer_noise[k - 1]
            if self.kind == "pool" and not nz.has_uncorrelated:
                return (f"{self.label}: layer {t} has no uncorrelated noise (AU = MU = 0); "
                        "pooling only averages uncorrelated noise")
            if self.kind == "ghost" and not nz.has_correlated:
                return (f"{self.label}: layer {t} has no correlated noise (AC = MC = 0); "
                        "a ghost neuron only cancels correlated noise")
        return None


StrategySpec = Union[Strategy, Sequence[Strategy], Callable[[Network], Network]]


def apply_strategies(net: Network, steps: StrategySpec) -> MitigatedNetwork:
    """Apply one strategy, a sequence of them (in order) or a callable."""
    if isinstance(steps, Strategy):
        steps = (steps,)
    if callable(steps):
        result = steps(net)
        if not isinstance(result, MitigatedNetwork):
            raise ValueError("a strategy callable must return the MitigatedNetwork of a transformation")
        return result
    result = net
    for step in steps:
        if not isinstance(step, Strategy):
            raise ValueError(f"a strategy must be a Strategy, a sequence of them or a callable, got {step!r}")
        result = step.apply(result)
    if not isinstance(result, MitigatedNetwork):
        raise ValueError("an empty sequence of strategies transforms nothing")
    return result


def function_error(original: Network, transformed: Network, x) -> float:
    """Largest absolute difference of the noise-free outputs on ``x``."""
    a = original.forward(x)[-1]
    b = transformed.forward(x)[-1]
    return float(np.max(np.abs(a - b)))


@dataclass
class StrategyResult:
    """What one strategy gains (see :func:`compare`)."""

    label: str
    network: MitigatedNetwork
    noise: list
    extra_neurons: int
    extra_connections: int
    layers: list                      # per original layer: dict(layer, snr_db_before, snr_db_after, gain_db)
    output_snr_db_before: float
    output_snr_db_after: float
    function_error: float
    monte_carlo: Optional[dict] = None

    @property
    def gain(self) -> float:
        """Output SNR after / before (power ratio)."""
        return float(10 ** ((self.output_snr_db_after - self.output_snr_db_before) / 10))

    @property
    def gain_db(self) -> float:
        return self.output_snr_db_after - self.output_snr_db_before

    @property
    def gain_db_per_neuron(self) -> float:
        """Output SNR gain in dB per extra noisy neuron (inf when free)."""
        return self.gain_db / self.extra_neurons if self.extra_neurons else math.inf

    def to_dict(self) -> dict:
        return finite_or_none({
            "label": self.label, "sizes": list(self.network.sizes),
            "layers_implement": [str(o) for o in self.network.origin],
            "extra_neurons": self.extra_neurons, "extra_connections": self.extra_connections,
            "output_snr_db_before": self.output_snr_db_before,
            "output_snr_db_after": self.output_snr_db_after,
            "gain": self.gain, "gain_db": self.gain_db, "gain_db_per_neuron": self.gain_db_per_neuron,
            "function_error": self.function_error, "layers": self.layers, "monte_carlo": self.monte_carlo,
        })


@dataclass
class Comparison:
    """Result of :func:`compare`: one :class:`StrategyResult` per strategy."""

    results: list
    output_snr_db: float
    baseline_monte_carlo: Optional[dict] = None
    false_failure: float = 1e-6
    notes: list = field(default_factory=list)

    def __getitem__(self, label: str) -> StrategyResult:
        for result in self.results:
            if result.label == label:
                return result
        raise KeyError(label)

    @property
    def monte_carlo_agrees(self) -> Optional[bool]:
        """Whether every simulated output noise variance agrees with its prediction."""
        checks = [r.monte_carlo for r in self.results if r.monte_carlo] + \
            ([self.baseline_monte_carlo] if self.baseline_monte_carlo else [])
        return None if not checks else all(c["agrees"] for c in checks)

    def table(self) -> str:
        head = f"{'strategy':44s} {'+neurons':>8s} {'SNR dB':>8s} {'gain':>7s} {'dB/neuron':>9s} {'MC gain':>8s}"
        lines = [head, f"{'original':44s} {0:8d} {self.output_snr_db:8.2f} {1.0:7.3f} {'':>9s} {'':>8s}"]
        for r in self.results:
            mc = r.monte_carlo["gain"] if r.monte_carlo else float("nan")
            lines.append(f"{r.label[:44]:44s} {r.extra_neurons:8d} {r.output_snr_db_after:8.2f} "
                         f"{r.gain:7.3f} {r.gain_db_per_neuron:9.4f} {mc:8.3f}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return finite_or_none({
            "output_snr_db": self.output_snr_db, "false_failure": self.false_failure,
            "monte_carlo_agrees": self.monte_carlo_agrees, "baseline_monte_carlo": self.baseline_monte_carlo,
            "strategies": [r.to_dict() for r in self.results], "notes": self.notes,
        })


def compare(
    net: Network,
    noise: NoiseSpec,
    x,
    strategies: "Mapping[str, StrategySpec] | Sequence[StrategySpec]",
    *,
    samples: int = 20_000,
    seed: int = 0,
    false_failure: float = 1e-6,
    method: str = "linear",
    coupling_noise: Optional[Noise] = None,
) -> Comparison:
    """Predicted SNR before/after each strategy, its cost, and a Monte Carlo check.

    Parameters
    ----------
    net : Network
    noise : Noise or sequence of L Noise
        Noise of the original network (variances); mapped onto each
        transformed network (copies and ghosts get their layer's noise,
        read-out and coupling layers are noise-free unless ``coupling_noise``).
    x : array_like (N_0,) or (B, N_0)
    strategies : sequence or mapping label -> strategy
        Each a :class:`Strategy`, a sequence of them applied in order (a
        combination) or a callable returning a transformed network.
    samples : int, default 20_000
        Monte Carlo realisations per network; 0 skips the check.
    seed : int, default 0
    false_failure : float, default 1e-6
        Probability that a correct prediction of an affine network fails the
        Monte Carlo check, over all strategies and the original (Bonferroni).
    method : {"linear", "moments", "mixture"}
        The prediction method (:func:`~noiseprop.propagation.predict`).
    coupling_noise : Noise, optional
        Noise of inserted coupling layers (default noise-free).

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        For bad input, and for a strategy that does not apply to the given
        noise (e.g. ghost neurons without correlated noise), with the reason.
    """
    require_network(net)
    layer_noise = list(per_layer_noise(noise, net.depth))
    as_input(x, net.sizes[0])
    if isinstance(strategies, Mapping):
        items = list(strategies.items())
    elif isinstance(strategies, (Strategy,)) or callable(strategies):
        items = [(None, strategies)]
    else:
        items = [(None, s) for s in strategies]
    if not items:
        raise ValueError("strategies is empty: give at least one Strategy")
    open_probability("false_failure", false_failure)
    if isinstance(samples, bool) or not isinstance(samples, int) or not (samples == 0 or samples >= 100):
        raise ValueError(f"samples must be 0 (no Monte Carlo) or an integer >= 100, got {samples!r}")
    for _, steps in items:
        for step in ((steps,) if isinstance(steps, Strategy) else steps if not callable(steps) else ()):
            if isinstance(step, Strategy):
                reason = step.not_applicable(net, layer_noise)
                if reason:
                    raise ValueError(f"strategy not applicable to this noise: {reason}")
    base = predict(net, layer_noise, x, method=method)
    z_crit = _critical_z(false_failure, len(items) + 1)
    baseline_mc = _monte_carlo(net, layer_noise, x, base, samples, seed, z_crit) if samples else None
    results = []
    for label, steps in items:
        transformed = apply_strategies(net, steps)
        t_noise = transformed.noise_for(layer_noise, coupling_noise)
        after = predict(transformed, t_noise, x, method=method)
        mc = _monte_carlo(transformed, t_noise, x, after, samples, seed + 1, z_crit) if samples else None
        if mc and baseline_mc:
            mc["gain"] = baseline_mc["noise_var"] / mc["noise_var"] * mc["signal_power"] / baseline_mc["signal_power"]
        results.append(StrategyResult(
            label=label or _label(steps), network=transformed, noise=t_noise,
            extra_neurons=transformed.extra_neurons, extra_connections=transformed.extra_connections,
            layers=_layer_rows(base, after, transformed),
            output_snr_db_before=_output_snr_db(base), output_snr_db_after=_output_snr_db(after),
            function_error=function_error(net, transformed, x), monte_carlo=mc,
        ))
    return Comparison(results, _output_snr_db(base), baseline_mc, false_failure)


def _label(steps) -> str:
    if isinstance(steps, Strategy):
        return steps.label
    if callable(steps):
        return getattr(steps, "__name__", "custom")
    return " + ".join(s.label for s in steps)


def _output_snr_db(result) -> float:
    return float(result.summary()[-1]["snr_db"])


def _layer_snr_db(result, t: int, keep: np.ndarray) -> float:
    """Layer SNR (dB, batch-averaged) of layer ``t`` over the neurons ``keep``."""
    mean = np.atleast_2d(result.mean[t])[:, keep]
    var = np.atleast_2d(result.var[t])[:, keep]
    return float(decibels(np.mean(mean**2) / np.mean(var))) if np.mean(var) > 0 else math.inf


def _layer_rows(base, after, transformed: MitigatedNetwork) -> list:
    rows = []
    for k in range(1, transformed.original_depth + 1):
        t = transformed.layer_of(k)
        keep = transformed.neurons[t - 1] != GHOST
        before_db = _layer_snr_db(base, k, np.ones(base.sizes[k], dtype=bool))
        after_db = _layer_snr_db(after, t, keep)
        rows.append({"layer": k, "snr_db_before": before_db, "snr_db_after": after_db,
                     "gain_db": after_db - before_db})
    return rows


def _critical_z(false_failure: float, comparisons: int) -> float:
    from scipy.stats import norm

    return float(norm.isf(false_failure / (2 * comparisons)))


def _monte_carlo(net, layer_noise, x, prediction, samples, seed, z_crit) -> dict:
    """Simulated output noise variance (plain estimator) against the prediction."""
    from ..simulation.montecarlo import simulate  # numba: loaded on use

    sim = simulate(net, layer_noise, x, samples, seed, control_variate=False)
    row = sim.summary()[-1]
    predicted = float(prediction.summary()[-1]["noise_var"])
    stderr = float(row["noise_var_stderr"])
    z = abs(row["noise_var"] - predicted) / stderr if stderr > 0 else math.inf
    return {"samples": samples, "seed": seed, "noise_var": float(row["noise_var"]),
            "noise_var_stderr": stderr, "noise_var_predicted": predicted,
            "signal_power": float(row["signal_power"]), "snr_db": float(row["snr_db"]),
            "z": float(z), "z_critical": z_crit, "agrees": bool(z <= z_crit),
            "exact_for_affine": bool(net.is_affine)}
