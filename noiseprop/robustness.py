"""Robustness of noisy classifiers: accuracy under noise, walking noise and
noise-aware training, measured by Monte Carlo and predicted analytically.

Conventions (spec ``noise-model.md``): intensities are variances; layers are
numbered 0 (the noise-free input) .. L (the output); the predicted class is
the arg-max of the N_L output values.  Noise *levels* of the walking-noise
study are given either as standard deviations s (``scale="std"``: additive
noise x + N(0, s^2), multiplicative x * N(1, s^2), as in the published study)
or as variances D = s^2 (``scale="variance"``, as everywhere else in
noiseprop); every function that turns levels into noise has a ``scale``
argument without a default, and its results hold both.

Accuracy of a noisy network on a data set (X, y) of B inputs is the mean over
the inputs of p_i = P(the right class has the largest noisy output | x_i).
The Monte Carlo estimate draws ``samples`` noise realisations per input; the
analytic prediction takes the output mean m and covariance S of the
propagation (:func:`noiseprop.predict`, linear response or Gaussian moments)
and computes p_i as the probability that a Gaussian N(m, S) has its largest
entry at y_i (a multivariate normal CDF of the C - 1 differences to the other
classes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy import special, stats
from threadpoolctl import threadpool_limits

from .gains import layer_statistics
from .model import Network, _positive_int, _require_network, as_input
from .montecarlo import sample_outputs
from .noise import NOISE_TYPES, Noise, NoiseSpec, per_layer_noise
from .propagation import predict

__all__ = [
    "LEVEL_SCALES",
    "AccuracyResult",
    "accuracy",
    "analytic_accuracy",
    "clean_accuracy",
    "level_variances",
    "midpoint_level",
    "WalkingNoiseResult",
    "walking_noise",
    "weight_statistics",
    "NoisyTrainingResult",
    "noise_aware_training",
]

#: How noise levels are given: standard deviations s or variances D = s^2.
LEVEL_SCALES = ("std", "variance")
#: Error target of every per-input analytic probability: 3 standard errors of
#: the randomised quasi-Monte-Carlo estimate (unbiased, independent between
#: inputs, so the data-set mean has a standard error <= ANALYTIC_ABSEPS / (3 sqrt(B))).
ANALYTIC_ABSEPS = 1e-3
#: Bounds on a probability closer than this are used instead of the CDF.
_BOUNDS_TOLERANCE = 1e-7
#: Inputs per Monte Carlo call (bounds the memory of the sampled outputs).
_MC_VALUES_PER_CHUNK = 2_000_000
#: Inputs per call of predict with full covariances.
_ANALYTIC_CHUNK = 256


# ---------------------------------------------------------------- accuracy


@dataclass(frozen=True)
class AccuracyResult:
    """Accuracy of a noisy classifier on a data set; see :func:`accuracy`.

    Attributes
    ----------
    accuracy : float
        Monte Carlo accuracy: the fraction of (input, realisation) pairs
        classified correctly, in [0, 1].
    ci : (float, float)
        Confidence interval of ``accuracy`` on this data set (the noise is
        the only randomness): normal interval with Agresti-Coull counts per
        input; see :func:`accuracy`.
    confidence : float
        Level of ``ci``, e.g. 0.95.
    stderr : float
        Its standard error.
    predicted : float or None
        Analytic prediction of the same accuracy (None if not asked for).
    clean : float
        Accuracy of the noise-free network.
    samples : int
        Noise realisations per input.
    per_input : ndarray (B,)
        Monte Carlo fraction correct of every input.
    predicted_per_input : ndarray (B,) or None
        Analytic probability correct of every input.
    """

    accuracy: float
    ci: tuple[float, float]
    confidence: float
    stderr: float
    predicted: "float | None"
    clean: float
    samples: int
    per_input: np.ndarray = field(repr=False)
    predicted_per_input: "np.ndarray | None" = field(default=None, repr=False)

    @property
    def covers_prediction(self) -> bool:
        """True when the analytic prediction lies inside ``ci``."""
        return self.predicted is not None and self.ci[0] <= self.predicted <= self.ci[1]

    def to_dict(self) -> dict:
        """JSON-ready summary (no per-input arrays)."""
        return {
            "accuracy": self.accuracy,
            "ci": list(self.ci),
            "confidence": self.confidence,
            "stderr": self.stderr,
            "predicted": self.predicted,
            "clean": self.clean,
            "samples": self.samples,
            "inputs": int(self.per_input.size),
        }


def accuracy(
    net: Network,
    noise: NoiseSpec,
    X,
    y,
    samples: int = 1000,
    seed: int = 0,
    *,
    confidence: float = 0.95,
    analytic: bool = True,
    method: str = "linear",
) -> AccuracyResult:
    """Classification accuracy of the noisy network, measured and predicted.

    Parameters
    ----------
    net : Network
        A classifier: the predicted class is the arg-max of the output layer.
    noise : Noise or sequence of L Noise
        Intensities (variances) of every layer 1..L.
    X : array_like (B, N_0)
        Inputs.
    y : array_like of int (B,)
        Right classes, 0 .. N_L - 1.
    samples : int, default 1000
        Noise realisations per input (Monte Carlo, via
        :func:`noiseprop.montecarlo.sample_outputs`).
    seed : int, default 0
        Seed of the noise (and of the quasi-Monte-Carlo points of the
        analytic CDFs); the same seed gives the same numbers.
    confidence : float, default 0.95
        Level of the confidence interval.
    analytic : bool, default True
        Also compute the analytic prediction (:func:`analytic_accuracy`).
    method : {"linear", "moments"}, default "linear"
        Propagation method of the analytic prediction.

    Returns
    -------
    AccuracyResult

    Notes
    -----
    The estimate is acc = (1/B) sum_i c_i / R with c_i ~ Binomial(R, p_i)
    independent over the inputs, so Var[acc] = sum_i p_i (1 - p_i) / (R B^2).
    The interval is acc +- z sqrt(sum_i q_i (1 - q_i) / (R + z^2)) / B with
    the Agresti-Coull estimate q_i = (c_i + z^2/2) / (R + z^2), which keeps a
    non-zero width when every input is always right or always wrong.  It
    is conditional on the data set (what the analytic prediction is compared
    with); it does not include the sampling of the data set itself.
    """
    _check_network(net)
    X, y = _as_dataset(net, X, y)
    samples = _positive_int("samples", samples)
    if not (isinstance(confidence, (int, float)) and 0 < confidence < 1):
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    layer_noise = per_layer_noise(noise, net.depth)
    correct = _monte_carlo_correct(net, layer_noise, X, y, samples, seed)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    shrunk = (correct + z**2 / 2) / (samples + z**2)
    stderr = math.sqrt(np.sum(shrunk * (1 - shrunk) / (samples + z**2))) / len(y)
    value = float(correct.sum() / (samples * len(y)))
    predicted_per_input = (
        analytic_accuracy(net, layer_noise, X, y, seed=seed, per_input=True, method=method) if analytic else None
    )
    return AccuracyResult(
        accuracy=value,
        ci=(max(0.0, value - z * stderr), min(1.0, value + z * stderr)),
        confidence=confidence,
        stderr=stderr,
        predicted=None if predicted_per_input is None else float(predicted_per_input.mean()),
        clean=clean_accuracy(net, X, y),
        samples=samples,
        per_input=correct / samples,
        predicted_per_input=predicted_per_input,
    )


def analytic_accuracy(
    net: Network,
    noise: NoiseSpec,
    X,
    y,
    seed: int = 0,
    per_input: bool = False,
    abseps: float = ANALYTIC_ABSEPS,
    method: str = "linear",
):
    """Predicted accuracy: P(the right class has the largest noisy output).

    The output of every input is taken as Gaussian with the mean and
    covariance of :func:`noiseprop.predict` (exact moments for affine
    networks; first order in the noise, or Gaussian moments, otherwise).
    With D the C - 1 differences y_right - y_other, p_i = P(D > 0), a
    multivariate normal CDF (Genz's randomised quasi-Monte-Carlo algorithm
    in :func:`scipy.stats.multivariate_normal.cdf`, run until 3 standard
    errors are below ``abseps``; its estimates are unbiased and independent
    between inputs, so the mean over B inputs has a standard error below
    abseps / (3 sqrt(B))).  When the bounds 1 - sum_j Phi(-z_j) <= p_i <=
    min_j Phi(z_j) (z_j: the z-score of difference j) are closer than 1e-7,
    their midpoint is used; C = 2 is exact.

    Parameters
    ----------
    net, noise, X, y : as in :func:`accuracy`.
    seed : int, default 0
        Seed of the quasi-Monte-Carlo points.
    per_input : bool, default False
        Return the probability of every input (B,) instead of their mean.
    abseps : float, default 1e-3
        Error target per input (3 standard errors).
    method : {"linear", "moments"}, default "linear"
        The propagation of :func:`noiseprop.predict`: linear response, or
        Gaussian moments of the activations (better at large noise).

    Returns
    -------
    float or ndarray (B,)
    """
    _check_network(net)
    X, y = _as_dataset(net, X, y)
    layer_noise = per_layer_noise(noise, net.depth)
    rng = np.random.default_rng(seed)
    probabilities = np.empty(len(y))
    # many small stacked matrix products: threads only add overhead (and spin
    # against the CDF code on few cores)
    with threadpool_limits(1, user_api="blas"):
        for start in range(0, len(y), _ANALYTIC_CHUNK):
            part = slice(start, start + _ANALYTIC_CHUNK)
            result = predict(net, layer_noise, X[part], full_covariance=True, method=method)
            for i, (mean, cov) in enumerate(zip(result.mean[-1], result.cov[-1])):
                probabilities[start + i] = _probability_largest(mean, cov, y[start + i], abseps, rng)
    return probabilities if per_input else float(probabilities.mean())


def clean_accuracy(net: Network, X, y) -> float:
    """Accuracy of the noise-free network on (X, y)."""
    X, y = _as_dataset(net, X, y)
    return float(np.mean(np.argmax(net.forward(X)[-1], axis=1) == y))


def _probability_largest(mean: np.ndarray, cov: np.ndarray, label: int, abseps: float, rng) -> float:
    """P(entry ``label`` of N(mean, cov) is the largest)."""
    others = np.arange(mean.size) != label
    difference = mean[label] - mean[others]
    spread = cov[label, label] + np.diag(cov)[others] - 2 * cov[label, others]
    joint = cov[label, label] - cov[label, others][:, None] - cov[others, label][None, :] + cov[np.ix_(others, others)]
    spread = np.maximum(spread, 0.0)
    exact = spread <= 1e-300
    if np.any(difference[exact] <= 0):
        return 0.0  # a noise-free competitor at least as large
    difference, spread = difference[~exact], spread[~exact]
    if difference.size == 0:
        return 1.0
    joint = joint[np.ix_(~exact, ~exact)]
    sd = np.sqrt(spread)
    z = difference / sd
    upper = float(special.ndtr(z).min())
    lower = max(0.0, 1.0 - float(special.ndtr(-z).sum()))
    if upper - lower <= _BOUNDS_TOLERANCE or z.size == 1:
        return upper if z.size == 1 else 0.5 * (upper + lower)
    correlation = joint / np.outer(sd, sd)
    value = stats.multivariate_normal.cdf(
        z, mean=np.zeros(z.size), cov=correlation, allow_singular=True, abseps=abseps, releps=0, rng=rng
    )
    return float(np.clip(value, lower, upper))


def _monte_carlo_correct(net, layer_noise, X, y, samples, seed) -> np.ndarray:
    """Number of realisations (out of ``samples``) classified right, per input."""
    chunk = max(1, _MC_VALUES_PER_CHUNK // (samples * net.sizes[-1]))
    starts = range(0, len(y), chunk)
    correct = np.empty(len(y))
    for start, chunk_seed in zip(starts, _spawn_seeds(seed, len(starts))):
        part = slice(start, start + chunk)
        outputs = sample_outputs(net, list(layer_noise), X[part], samples, chunk_seed)
        correct[part] = np.sum(np.argmax(outputs, axis=-1) == y[part], axis=0)
    return correct


# ----------------------------------------------------------- walking noise


def level_variances(levels, scale: str) -> np.ndarray:
    """Noise levels as variances: s^2 for ``scale="std"``, D for ``"variance"``.

    Raises ValueError unless the levels are finite, positive and strictly
    increasing (they are interpolated on a log scale).
    """
    return _to_variances("levels", levels, scale, allow_zero=False)


def _to_variances(name: str, levels, scale: str, allow_zero: bool) -> np.ndarray:
    if scale not in LEVEL_SCALES:
        raise ValueError(f"scale must be one of {LEVEL_SCALES} (how the levels are given), got {scale!r}")
    levels = _as_vector(name, levels)
    positive = np.all(levels >= 0) if allow_zero else np.all(levels > 0)
    if not positive or np.any(np.diff(levels) <= 0):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be {kind} and strictly increasing, got {levels.tolist()}")
    return levels**2 if scale == "std" else levels


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
    accuracy = _as_vector("accuracy", accuracy)
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
    method: str = "moments",
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
    method : {"linear", "moments"}, default "moments"
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
    _check_network(net)
    X, y = _as_dataset(net, X, y)
    if noise_type not in NOISE_TYPES:
        raise ValueError(f"noise_type must be one of {NOISE_TYPES}, got {noise_type!r}")
    variances = level_variances(levels, scale)
    levels = _as_vector("levels", levels)
    layers = _walk_layers(layers, net.depth)
    chance = _chance_level(net, chance)
    seeds = _spawn_seeds(seed, len(layers) * len(levels))
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


# ---------------------------------------------------- noise-aware training


def weight_statistics(net: Network, X) -> list[dict]:
    """Weight statistics of every layer and the noise gains they imply (spec 6).

    Parameters
    ----------
    net : Network
    X : array_like (B, N_0)
        Inputs that set the working points (the slopes f'(z)).

    Returns
    -------
    list of dict, one per layer k = 1..L, with
        ``layer``, ``fan_in`` N_{k-1};
        ``mean`` mu_k and ``mean_square`` nu_k of the weights, ``rms``,
        ``mean_abs``;
        ``binarity`` = mean|w| / rms (1 for weights of one magnitude,
        sqrt(2/pi) ~ 0.80 for Gaussian weights: it rises as the values
        concentrate on +-a) and ``excess_kurtosis`` (0 Gaussian, -2 for two
        values);
        ``slope_square``: mean of f_k'(z)^2 over neurons and inputs;
        ``gain_uncorrelated`` = slope_square * N_{k-1} * nu_k and
        ``gain_correlated`` = slope_square * N_{k-1}^2 * mu_k^2: the factors
        by which uncorrelated and correlated noise of layer k-1 reach layer k.
    """
    rows = []
    for gains, w in zip(layer_statistics(net, X), net.weights):
        rms = math.sqrt(gains.nu)
        mean_abs = float(np.mean(np.abs(w)))
        slope_square = float(np.mean(gains.slope**2))
        rows.append({
            "layer": gains.layer,
            "fan_in": gains.fan_in,
            "mean": gains.mu,
            "mean_square": gains.nu,
            "rms": rms,
            "mean_abs": mean_abs,
            "binarity": mean_abs / rms if rms else math.nan,
            "excess_kurtosis": float(stats.kurtosis(w.ravel())),
            "slope_square": slope_square,
            "gain_uncorrelated": slope_square * gains.fan_in * gains.nu,
            "gain_correlated": slope_square * gains.fan_in**2 * gains.mu**2,
        })
    return rows


@dataclass(frozen=True)
class NoisyTrainingResult:
    """Networks trained at several noise levels; see :func:`noise_aware_training`.

    Attributes
    ----------
    noise_type, scale : str
    train_levels, eval_levels : ndarray
        Training and inference noise levels, in ``scale`` (a training level
        0 is clean training).
    networks : list of Network
        One per training level.
    clean : ndarray (n_train,)
        Noise-free test accuracy of each network.
    accuracy, ci_low, ci_high, predicted : ndarray (n_train, n_eval)
        Monte Carlo and analytic test accuracy with the noise on every layer.
    output_snr_db : ndarray (n_train, n_eval)
        Predicted output layer SNR (sum E^2 / sum Var, test-set average) in dB.
    weights : list of list of dict
        :func:`weight_statistics` of each network.
    """

    noise_type: str
    scale: str
    train_levels: np.ndarray
    eval_levels: np.ndarray
    networks: list = field(repr=False)
    clean: np.ndarray
    accuracy: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    predicted: np.ndarray
    output_snr_db: np.ndarray
    weights: list = field(repr=False)
    samples: int = 0

    def to_dict(self) -> dict:
        """JSON-ready form (without the networks)."""
        return {
            "noise_type": self.noise_type,
            "scale": self.scale,
            "train_levels": self.train_levels.tolist(),
            "eval_levels": self.eval_levels.tolist(),
            "samples": self.samples,
            "trained": [
                {
                    "train_level": float(level),
                    "clean": float(self.clean[i]),
                    "accuracy": self.accuracy[i].tolist(),
                    "ci_low": self.ci_low[i].tolist(),
                    "ci_high": self.ci_high[i].tolist(),
                    "predicted": self.predicted[i].tolist(),
                    "output_snr_db": self.output_snr_db[i].tolist(),
                    "weights": self.weights[i],
                }
                for i, level in enumerate(self.train_levels)
            ],
        }


def noise_aware_training(
    X_train,
    y_train,
    X_test,
    y_test,
    noise_type: str,
    train_levels,
    eval_levels,
    *,
    scale: str,
    samples: int = 200,
    seed: int = 0,
    train: "Callable | None" = None,
    method: str = "linear",
    **train_options,
) -> NoisyTrainingResult:
    """Train with noise at several levels; accuracy vs inference noise for each.

    Every network is trained with the noise of ``noise_type`` at one
    training level on every layer (:func:`noiseprop.training.train_mlp`'s
    noise injection), then tested with the same type at every inference
    level on every layer, by Monte Carlo and analytically.  What training
    did to the weights is in ``weights`` (:func:`weight_statistics`): noisy
    training under additive noise raises the weight magnitudes (the signal
    grows against a fixed noise: a higher output SNR), under multiplicative
    noise it concentrates the weight values (higher binarity), since that
    noise scales with the signal and only the gains can limit it.

    Parameters
    ----------
    X_train, y_train, X_test, y_test : arrays
        Training and test sets (inputs (n, N_0), integer labels (n,)).
    noise_type : {"AU", "AC", "MU", "MC"}
    train_levels : array_like
        Non-negative, increasing training noise levels (0: clean training).
    eval_levels : array_like
        Positive, increasing inference noise levels.
    scale : {"std", "variance"}
        Required: how both level lists are given (see :func:`walking_noise`).
    samples : int, default 200
        Noise realisations per test input and inference level.
    seed : int, default 0
        Seed of the training (every network starts from the same weights)
        and of the inference noise.
    train : callable, optional
        The trainer, default :func:`noiseprop.training.train_mlp` (needs the
        ``train`` extra); called as ``train(X_train, y_train, X_test, y_test,
        noise=..., seed=seed, progress=False, **train_options)`` and returning
        an object with a ``network``.
    method : {"linear", "moments"}, default "linear"
        Propagation method of the analytic accuracy and SNR.
    **train_options
        Passed to ``train``, e.g. ``hidden=(32,), epochs=20``.

    Returns
    -------
    NoisyTrainingResult
    """
    if noise_type not in NOISE_TYPES:
        raise ValueError(f"noise_type must be one of {NOISE_TYPES}, got {noise_type!r}")
    train_variances = _to_variances("train_levels", train_levels, scale, allow_zero=True)
    eval_variances = _to_variances("eval_levels", eval_levels, scale, allow_zero=False)
    train_levels, eval_levels = _as_vector("train_levels", train_levels), _as_vector("eval_levels", eval_levels)
    if train is None:
        from .training import train_mlp as train
    seeds = _spawn_seeds(seed, len(train_levels) * len(eval_levels))
    shape = (len(train_levels), len(eval_levels))
    measured, low, high, predicted, snr_db = (np.empty(shape) for _ in range(5))
    networks, weights, clean = [], [], np.empty(len(train_levels))
    for i, train_variance in enumerate(train_variances):
        training_noise = Noise(**{noise_type: float(train_variance)})
        net = train(X_train, y_train, X_test, y_test, noise=training_noise, seed=seed, progress=False,
                    **train_options).network
        networks.append(net)
        weights.append(weight_statistics(net, X_test))
        clean[i] = clean_accuracy(net, X_test, y_test)
        for j, variance in enumerate(eval_variances):
            noise = Noise(**{noise_type: float(variance)})
            result = accuracy(net, noise, X_test, y_test, samples, seeds[i * len(eval_levels) + j], method=method)
            measured[i, j], (low[i, j], high[i, j]), predicted[i, j] = result.accuracy, result.ci, result.predicted
            snr_db[i, j] = float(np.mean(predict(net, noise, X_test, method=method).layer_snr_db[-1]))
    return NoisyTrainingResult(
        noise_type, scale, train_levels, eval_levels, networks, clean, measured, low, high, predicted,
        snr_db, weights, samples,
    )


# ----------------------------------------------------------------- helpers


def _spawn_seeds(seed: int, count: int) -> list[int]:
    """``count`` independent integer seeds derived from ``seed`` (one per chunk or point)."""
    return [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(count)]


def _check_network(net) -> None:
    _require_network(net)
    if net.sizes[-1] < 2:
        raise ValueError(f"a classifier needs at least 2 output neurons, the network has {net.sizes[-1]}")


def _as_dataset(net: Network, X, y) -> tuple[np.ndarray, np.ndarray]:
    X, _ = as_input(X, net.sizes[0])
    try:
        labels = np.asarray(y)
        integral = labels.ndim == 1 and np.all(np.equal(np.mod(labels, 1), 0))
    except TypeError:
        integral = False
    if not integral:
        raise ValueError(f"labels y must be a 1-D array of integers, got {np.shape(y)} {np.asarray(y).dtype}")
    if X.shape[0] == 0:
        raise ValueError("the data set is empty (X has no rows)")
    if labels.shape[0] != X.shape[0]:
        raise ValueError(f"got {labels.shape[0]} labels for {X.shape[0]} inputs")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= net.sizes[-1]):
        raise ValueError(
            f"labels must lie in 0..{net.sizes[-1] - 1} (one per output neuron), got "
            f"{labels.min()}..{labels.max()}"
        )
    return X, labels


def _as_vector(name: str, values) -> np.ndarray:
    try:
        array = np.array(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers, got {values!r}") from None
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a non-empty 1-D list of finite numbers, got {values!r}")
    return array
