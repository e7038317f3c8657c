"""Accuracy of a noisy classifier, measured by Monte Carlo and predicted analytically.

Conventions: intensities are variances; layers are numbered 0 (the noise-free
input) .. L (the output); the predicted class is the arg-max of the N_L output
values.  Noise *levels* of the robustness studies are given either as standard
deviations s (``scale="std"``: additive noise x + N(0, s^2), multiplicative
x * N(1, s^2), as in the published studies) or as variances D = s^2
(``scale="variance"``, as everywhere else in noiseprop); every function that
turns levels into noise has a ``scale`` argument without a default.

Accuracy of a noisy network on a data set (X, y) of B inputs is the mean over
the inputs of p_i = P(the right class has the largest noisy output | x_i).
The Monte Carlo estimate draws ``samples`` noise realisations per input; the
analytic prediction takes the output mean m and covariance S of the
propagation (:func:`noiseprop.predict`) and computes p_i as the probability
that a Gaussian N(m, S) has its largest entry at y_i (a multivariate normal
CDF of the C - 1 differences to the other classes,
:func:`noiseprop.normal_cdf.normal_cdf`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats

from ..model import Network
from ..noise import NoiseSpec, per_layer_noise
from ..normal_cdf import normal_cdf
from ..output_statistics import layer_moments
from ..propagation import DEFAULT_METHOD, predict
from ..simulation.montecarlo import sample_outputs
from ..utils.progress import progress_bar
from ..utils.seeds import spawn_seeds
from ..utils.validation import as_labelled_data, as_vector, check_confidence, positive_int, require_classifier

__all__ = [
    "LEVEL_SCALES",
    "AccuracyResult",
    "accuracy",
    "analytic_accuracy",
    "clean_accuracy",
    "level_variances",
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
#: Inputs per call of the output-moment propagation (bounds the memory of the
#: full propagation's covariances; the adjoint path chunks its work itself).
_ANALYTIC_CHUNK = 256




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
    method: str = DEFAULT_METHOD,
    progress: "bool | None" = None,
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
        :func:`noiseprop.simulation.montecarlo.sample_outputs`).
    seed : int, default 0
        Seed of the noise (and of the quasi-Monte-Carlo points of the
        analytic CDFs); the same seed gives the same numbers.
    confidence : float, default 0.95
        Level of the confidence interval.
    analytic : bool, default True
        Also compute the analytic prediction (:func:`analytic_accuracy`).
    method : str, default :data:`~noiseprop.propagation.DEFAULT_METHOD`
        Propagation method of the analytic prediction.
    progress : bool, optional
        Show a progress bar over the inputs (Monte Carlo, then analytic); by
        default only on a terminal (:func:`noiseprop.utils.progress.show_progress`).

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
    X, y = _check_data(net, X, y)
    samples = positive_int("samples", samples)
    check_confidence(confidence)
    layer_noise = per_layer_noise(noise, net.depth)
    with progress_bar(len(y) * (2 if analytic else 1), desc="accuracy", unit="input", enabled=progress) as bar:
        correct = _monte_carlo_correct(net, layer_noise, X, y, samples, seed, bar)
        predicted_per_input = (
            _analytic_probabilities(net, layer_noise, X, y, seed, ANALYTIC_ABSEPS, method, bar) if analytic else None
        )
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    shrunk = (correct + z**2 / 2) / (samples + z**2)
    stderr = math.sqrt(np.sum(shrunk * (1 - shrunk) / (samples + z**2))) / len(y)
    value = float(correct.sum() / (samples * len(y)))
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
    method: str = DEFAULT_METHOD,
    progress: "bool | None" = None,
):
    """Predicted accuracy: P(the right class has the largest noisy output).

    The output of every input is taken as Gaussian with the mean and
    covariance of the propagation.  For ``method="linear"`` they come from
    the output-only adjoint propagation
    (:func:`noiseprop.output_statistics.layer_moments`: no hidden-layer
    covariance, O(C N^2) per layer and input), which equals the full
    linear response of :func:`noiseprop.predict` except for uncorrelated
    multiplicative noise acting on the noise reaching a hidden layer (a
    second-order term it leaves out); exact moments for affine networks
    without hidden-layer MU noise, first order in the noise otherwise.
    ``"moments"`` runs the full propagation (Gaussian moments).
    With D the C - 1 differences y_right - y_other, p_i = P(D > 0), a
    multivariate normal CDF (Genz's randomised quasi-Monte-Carlo algorithm,
    vectorised over the inputs in :func:`noiseprop.normal_cdf.normal_cdf`,
    run until 3 standard errors are below ``abseps``; its estimates are
    unbiased and independent between inputs, so the mean over B inputs has a
    standard error below abseps / (3 sqrt(B))).  Differences without
    variance decide alone: p_i = 0 if one is <= 0, else they drop out.  When the bounds 1 - sum_j Phi(-z_j) <= p_i <=
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
    method : str, default :data:`~noiseprop.propagation.DEFAULT_METHOD`
        The propagation of :func:`noiseprop.predict`: linear response, or
        Gaussian moments of the activations (better at large noise).
    progress : bool, optional
        Show a progress bar over the inputs; by default only on a terminal.

    Returns
    -------
    float or ndarray (B,)
    """
    X, y = _check_data(net, X, y)
    layer_noise = per_layer_noise(noise, net.depth)
    with progress_bar(len(y), desc="analytic accuracy", unit="input", enabled=progress) as bar:
        probabilities = _analytic_probabilities(net, layer_noise, X, y, seed, abseps, method, bar)
    return probabilities if per_input else float(probabilities.mean())


def _analytic_probabilities(net, layer_noise, X, y, seed, abseps, method, bar) -> np.ndarray:
    """P(right class largest) per input (see :func:`analytic_accuracy`); ``bar`` counts inputs."""
    differences, joints = [], []
    for start in range(0, len(y), _ANALYTIC_CHUNK):
        part = slice(start, start + _ANALYTIC_CHUNK)
        means, covariances = _output_moments(net, layer_noise, X[part], method)
        difference, joint = _differences_to_others(means, covariances, y[part])
        differences.append(difference)
        joints.append(joint)
        bar.update(len(means))
    return _probability_largest(np.concatenate(differences), np.concatenate(joints), abseps, seed)


def _output_moments(net: Network, layer_noise, X: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Output mean (B, C) and covariance (B, C, C): adjoint propagation for
    "linear" (no hidden-layer covariances), the full propagation otherwise."""
    if method == "linear":
        return layer_moments(net, layer_noise, X)
    result = predict(net, layer_noise, X, full_covariance=True, method=method)
    return result.mean[-1], result.cov[-1]


def clean_accuracy(net: Network, X, y) -> float:
    """Accuracy of the noise-free network on (X, y)."""
    X, y = _check_data(net, X, y)
    return float(np.mean(np.argmax(net.forward(X)[-1], axis=1) == y))


def _differences_to_others(means: np.ndarray, covariances: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (B, C-1) and covariance (B, C-1, C-1) of the differences y_label - y_other."""
    classes = means.shape[1]
    others = np.array([np.delete(np.arange(classes), label) for label in range(classes)])[labels]
    contrast = np.zeros((len(labels), classes - 1, classes))
    contrast[np.arange(len(labels)), :, labels] = 1.0
    np.put_along_axis(contrast, others[:, :, None], -1.0, axis=2)
    difference = np.einsum("bkc,bc->bk", contrast, means)
    joint = contrast @ covariances @ np.swapaxes(contrast, 1, 2)  # batched BLAS; a 3-operand einsum is O(C^4)
    return difference, joint


def _probability_largest(difference: np.ndarray, joint: np.ndarray, abseps: float, seed: int) -> np.ndarray:
    """P(all differences > 0) per input, from their means (B, K) and covariances (B, K, K).

    Differences without variance decide alone (0 if one is <= 0, else they
    drop out); one random difference is exact; otherwise the Bonferroni
    bounds when closer than ``_BOUNDS_TOLERANCE``, else the vectorised Genz
    CDF (:func:`noiseprop.normal_cdf.normal_cdf`) of the z-scores, clipped
    to the bounds.
    """
    spread = np.maximum(np.diagonal(joint, axis1=1, axis2=2), 0.0)
    exact = spread <= 1e-300
    lost = np.any(exact & (difference <= 0), axis=1)  # a noise-free competitor at least as large
    sd = np.where(exact, 1.0, np.sqrt(spread))
    z = np.where(exact, np.inf, difference / sd)
    upper = special.ndtr(z).min(axis=1)
    lower = np.maximum(0.0, 1.0 - special.ndtr(-z).sum(axis=1))
    random = np.sum(~exact, axis=1)
    probability = np.where(random <= 1, upper, 0.5 * (upper + lower))
    hard = ~lost & (random > 1) & (upper - lower > _BOUNDS_TOLERANCE)
    if np.any(hard):
        correlation = joint[hard] / (sd[hard, :, None] * sd[hard, None, :])
        dropped = exact[hard]
        correlation[dropped[:, :, None] | dropped[:, None, :]] = 0.0
        index = np.arange(correlation.shape[1])
        correlation[:, index, index] = 1.0
        estimate, _ = normal_cdf(z[hard], correlation, abseps=abseps, seed=seed)
        probability[hard] = np.clip(estimate, lower[hard], upper[hard])
    return np.where(lost, 0.0, probability)


def _monte_carlo_correct(net, layer_noise, X, y, samples, seed, bar) -> np.ndarray:
    """Number of realisations (out of ``samples``) classified right, per input; ``bar`` counts inputs."""
    chunk = max(1, _MC_VALUES_PER_CHUNK // (samples * net.sizes[-1]))
    starts = range(0, len(y), chunk)
    correct = np.empty(len(y))
    for start, chunk_seed in zip(starts, spawn_seeds(seed, len(starts))):
        part = slice(start, start + chunk)
        outputs = sample_outputs(net, list(layer_noise), X[part], samples, chunk_seed)
        correct[part] = np.sum(np.argmax(outputs, axis=-1) == y[part], axis=0)
        bar.update(outputs.shape[1])
    return correct



def level_variances(levels, scale: str) -> np.ndarray:
    """Noise levels as variances: s^2 for ``scale="std"``, D for ``"variance"``.

    Raises ValueError unless the levels are finite, positive and strictly
    increasing (they are interpolated on a log scale).
    """
    return _to_variances("levels", levels, scale, allow_zero=False)


def _to_variances(name: str, levels, scale: str, allow_zero: bool) -> np.ndarray:
    if scale not in LEVEL_SCALES:
        raise ValueError(f"scale must be one of {LEVEL_SCALES} (how the levels are given), got {scale!r}")
    levels = as_vector(name, levels)
    positive = np.all(levels >= 0) if allow_zero else np.all(levels > 0)
    if not positive or np.any(np.diff(levels) <= 0):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be {kind} and strictly increasing, got {levels.tolist()}")
    return levels**2 if scale == "std" else levels


def _check_data(net: Network, X, y) -> tuple[np.ndarray, np.ndarray]:
    """The network as a classifier and (X, y) as its labelled data set."""
    require_classifier(net)
    X, y = as_labelled_data(X, y, n_features=net.sizes[0], n_classes=net.sizes[-1])
    return X, y
