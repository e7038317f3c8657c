"""Walking noise: inject noise into one layer at a time and find, for each
layer, the noise level at which accuracy falls half-way from its clean value
to chance (the *midpoint noise level*); the lower it is, the more sensitive
the layer.  Levels are standard deviations or variances (see
:mod:`noiseprop.studies.accuracy`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..model import Network
from ..noise import NOISE_TYPES, Noise
from ..propagation import DEFAULT_METHOD
from ..utils.seeds import spawn_seeds
from ..utils.validation import as_vector
from .accuracy import _check_data, _to_variances, accuracy, clean_accuracy, level_variances

__all__ = ["midpoint_level", "WalkingNoiseResult", "walking_noise"]


def midpoint_level(levels, accuracy, clean: float, chance: float) -> float:
    """The noise level where accuracy falls half-way from ``clean`` to ``chance``.

    Interpolated linearly in log(level) between the two levels around the
    first crossing of the target (clean + chance) / 2.  Because
    log(s^2) = 2 log(s), the midpoint of variances is the square of the
    midpoint of standard deviations.

    Parameters
    ----------
    levels : array_like (n,)
        Positive, strictly increasing noise levels (ValueError otherwise).
    accuracy : array_like (n,)
        Accuracy at each level.
    clean, chance : float
        Accuracy without noise and of guessing.

    Returns
    -------
    float
        The midpoint; nan when the accuracy does not cross the target within
        the levels (:attr:`WalkingNoiseResult.bracket` tells which side).

    Examples
    --------
    >>> round(midpoint_level([0.1, 1.0], [0.9, 0.3], clean=1.0, chance=0.2), 6)
    0.316228
    """
    levels = _to_variances("levels", levels, "variance", allow_zero=False)  # checks only
    accuracy = as_vector("accuracy", accuracy)
    if accuracy.shape != levels.shape:
        raise ValueError(f"accuracy has shape {accuracy.shape}, levels {levels.shape}")
    target = 0.5 * (clean + chance)
    below = np.flatnonzero(accuracy < target)
    if below.size == 0 or below[0] == 0:
        return math.nan
    i = below[0]
    fraction = (accuracy[i - 1] - target) / (accuracy[i - 1] - accuracy[i])
    return float(np.exp(np.log(levels[i - 1]) + fraction * (np.log(levels[i]) - np.log(levels[i - 1]))))


def _bracket(accuracy: np.ndarray, target: float) -> str:
    """Where the midpoint lies: "found", "below" the smallest or "above" the largest level."""
    below = np.flatnonzero(accuracy < target)
    if below.size == 0:
        return "above"
    return "below" if below[0] == 0 else "found"


@dataclass(frozen=True)
class WalkingNoiseResult:
    """Accuracy with noise in one layer at a time; see :func:`walking_noise`.

    Attributes
    ----------
    noise_type : str
        One of ``NOISE_TYPES``.
    scale : str
        How ``levels`` are given: "std" or "variance".
    levels : ndarray (n_levels,)
        The levels as given; ``variances`` the same as variances.
    layers : tuple of int
        The noisy layer of each row (1..L).
    accuracy, ci_low, ci_high : ndarray (n_layers, n_levels)
        Monte Carlo accuracy and its confidence interval.
    predicted : ndarray (n_layers, n_levels) or None
        Analytic accuracy.
    clean, chance : float
        Noise-free accuracy and the chance level; the midpoint target is
        their mean.
    midpoint, predicted_midpoint : ndarray (n_layers,)
        Midpoint noise level of each layer in the scale of ``levels``
        (nan if not within the levels: see ``bracket``).
    bracket, predicted_bracket : tuple of str
        "found", "below" (under the smallest level) or "above".
    """

    noise_type: str
    scale: str
    levels: np.ndarray
    variances: np.ndarray
    layers: tuple
    accuracy: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    predicted: "np.ndarray | None"
    clean: float
    chance: float
    samples: int
    midpoint: np.ndarray
    bracket: tuple
    predicted_midpoint: "np.ndarray | None"
    predicted_bracket: "tuple | None"

    @property
    def midpoint_variance(self) -> np.ndarray:
        """Midpoints as variances."""
        return self.midpoint**2 if self.scale == "std" else self.midpoint

    @property
    def ranking(self) -> tuple:
        """Layers from the most to the least sensitive (smallest midpoint first), measured."""
        return _rank(self.layers, self.midpoint, self.bracket)

    @property
    def predicted_ranking(self) -> "tuple | None":
        """The same ranking from the analytic accuracy."""
        if self.predicted_midpoint is None:
            return None
        return _rank(self.layers, self.predicted_midpoint, self.predicted_bracket)

    def to_dict(self) -> dict:
        """JSON-ready form (nan midpoints become None)."""
        def number(value):
            return None if math.isnan(value) else float(value)

        rows = []
        for i, k in enumerate(self.layers):
            rows.append({
                "layer": k,
                "accuracy": [number(v) for v in self.accuracy[i]],
                "ci_low": [number(v) for v in self.ci_low[i]],
                "ci_high": [number(v) for v in self.ci_high[i]],
                "predicted": None if self.predicted is None else [number(v) for v in self.predicted[i]],
                "midpoint": number(self.midpoint[i]),
                "bracket": self.bracket[i],
                "predicted_midpoint": None if self.predicted_midpoint is None else number(self.predicted_midpoint[i]),
                "predicted_bracket": None if self.predicted_bracket is None else self.predicted_bracket[i],
            })
        return {
            "noise_type": self.noise_type,
            "scale": self.scale,
            "levels": self.levels.tolist(),
            "variances": self.variances.tolist(),
            "clean": self.clean,
            "chance": self.chance,
            "samples": self.samples,
            "layers": rows,
            "ranking": list(self.ranking),
            "predicted_ranking": None if self.predicted_ranking is None else list(self.predicted_ranking),
        }


def walking_noise(
    net: Network,
    X,
    y,
    noise_type: str,
    levels,
    *,
    scale: str,
    samples: int = 200,
    seed: int = 0,
    layers: "Sequence[int] | None" = None,
    placement: str = "post",
    chance: "float | None" = None,
    confidence: float = 0.95,
    analytic: bool = True,
    method: str = DEFAULT_METHOD,
) -> WalkingNoiseResult:
    """Walking noise: noise of one type in one layer at a time, the others noise-free.

    Measures the accuracy at every level for every layer, and each layer's
    midpoint noise level (:func:`midpoint_level`): the lower it is, the more
    sensitive the layer.  The analytic accuracy of the propagation model at
    the same levels gives the predicted midpoints and ranking beside the
    measured ones.

    Parameters
    ----------
    net : Network
        A classifier (arg-max of the output layer).
    X : array_like (B, N_0)
    y : array_like of int (B,)
    noise_type : {"AU", "AC", "MU", "MC"}
        Additive or multiplicative, uncorrelated or correlated.  The
        published study's additive and multiplicative noise (one draw per
        neuron) are "AU" and "MU".
    levels : array_like (n_levels,)
        Positive, increasing noise levels, in the scale given by ``scale``.
    scale : {"std", "variance"}
        Required: ``"std"`` when the levels are standard deviations s (the
        study's convention: x + N(0, s^2), x * N(1, s^2)), ``"variance"``
        when they are variances D = s^2 (noiseprop's intensities).
    samples : int, default 200
        Noise realisations per input and point.
    seed : int, default 0
        Seed; every (layer, level) point uses its own stream derived from it.
    layers : sequence of int, optional
        Noisy layers to walk through (1..L); default all.
    placement : {"post", "pre"}, default "post"
    chance : float, optional
        Accuracy of guessing, in [0, 1); default 1 / N_L.
    confidence : float, default 0.95
        Level of the confidence intervals.
    analytic : bool, default True
        Also compute the analytic accuracy and midpoints.
    method : str, default :data:`~noiseprop.propagation.DEFAULT_METHOD`
        Propagation method of the analytic accuracy (:func:`noiseprop.predict`).
        The walk goes to noise levels where linearisation fails: on the
        default network with additive noise in layer 1 or 2 the linear
        prediction misses the midpoint (and so the ranking), the Gaussian
        moments find it within about 15 %.  Both are exact for affine
        networks.

    Returns
    -------
    WalkingNoiseResult
    """
    X, y = _check_data(net, X, y)
    if noise_type not in NOISE_TYPES:
        raise ValueError(f"noise_type must be one of {NOISE_TYPES}, got {noise_type!r}")
    variances = level_variances(levels, scale)
    levels = as_vector("levels", levels)
    layers = _walk_layers(layers, net.depth)
    chance = _chance_level(net, chance)
    seeds = spawn_seeds(seed, len(layers) * len(levels))
    shape = (len(layers), len(levels))
    measured, low, high = np.empty(shape), np.empty(shape), np.empty(shape)
    predicted = np.empty(shape) if analytic else None
    for (i, k), (j, variance) in _grid(layers, variances):
        noise = _single_layer_noise(net.depth, k, Noise(placement=placement, **{noise_type: variance}))
        result = accuracy(net, noise, X, y, samples, seeds[i * len(levels) + j], confidence=confidence,
                          analytic=analytic, method=method)
        measured[i, j], (low[i, j], high[i, j]) = result.accuracy, result.ci
        if analytic:
            predicted[i, j] = result.predicted
    clean = clean_accuracy(net, X, y)
    target = 0.5 * (clean + chance)

    def midpoints(curves):
        return (
            np.array([midpoint_level(levels, c, clean, chance) for c in curves]),
            tuple(_bracket(c, target) for c in curves),
        )

    midpoint, bracket = midpoints(measured)
    predicted_midpoint, predicted_bracket = midpoints(predicted) if analytic else (None, None)
    return WalkingNoiseResult(
        noise_type, scale, levels, variances, tuple(layers), measured, low, high, predicted,
        clean, chance, samples, midpoint, bracket, predicted_midpoint, predicted_bracket,
    )


def _grid(layers, variances):
    for i, k in enumerate(layers):
        for j, variance in enumerate(variances):
            yield (i, k), (j, float(variance))


def _single_layer_noise(depth: int, layer: int, noise: Noise) -> list[Noise]:
    return [noise if k == layer else Noise(placement=noise.placement) for k in range(1, depth + 1)]


def _chance_level(net: Network, chance) -> float:
    """The accuracy of guessing: 1 / N_L unless given; in [0, 1)."""
    if chance is None:
        return 1.0 / net.sizes[-1]
    if not (isinstance(chance, (int, float, np.integer, np.floating)) and 0 <= chance < 1):
        raise ValueError(f"chance must be an accuracy in [0, 1), got {chance!r}")
    return float(chance)


def _walk_layers(layers, depth: int) -> list[int]:
    if layers is None:
        return list(range(1, depth + 1))
    chosen = [int(k) for k in layers]
    bad = [k for k in chosen if not 1 <= k <= depth]
    if bad or not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"layers must be distinct layer numbers in 1..{depth}, got {list(layers)}")
    return chosen


def _rank(layers, midpoint, bracket) -> tuple:
    order = {"below": -math.inf, "above": math.inf}
    keys = [order.get(b, m) for m, b in zip(midpoint, bracket)]
    return tuple(layers[i] for i in np.argsort(keys, kind="stable"))
