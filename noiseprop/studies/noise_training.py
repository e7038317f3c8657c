"""Noise-aware training: train classifiers with noise injected into every
layer, evaluate each under inference noise (Monte Carlo and analytic), and
record what training did to the weights (magnitude, binarity).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import stats

from ..analysis.gains import layer_statistics, statistics_gains
from ..model import Network
from ..noise import NOISE_TYPES, Noise
from ..output_statistics import output_prediction
from ..propagation import DEFAULT_METHOD
from ..utils.progress import progress_bar
from ..utils.seeds import spawn_seeds
from ..utils.validation import as_vector
from .accuracy import _to_variances, accuracy, clean_accuracy

__all__ = ["weight_statistics", "NoisyTrainingResult", "noise_aware_training"]


def weight_statistics(net: Network, X) -> list[dict]:
    """Weight statistics of every layer and the noise gains they imply (docs/model.md §6).

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
        ``gain_correlated`` = slope_square * (N_{k-1}^2 mu_k^2 + N_{k-1} (nu_k - mu_k^2)):
        the statistics-only factors by which uncorrelated and correlated noise
        of layer k-1 reach layer k (:func:`~noiseprop.analysis.gains.statistics_gains`).
    """
    rows = []
    for gains, w in zip(layer_statistics(net, X), net.weights):
        rms = math.sqrt(gains.nu)
        mean_abs = float(np.mean(np.abs(w)))
        slope_square = float(np.mean(gains.slope**2))
        gain_uncorrelated, gain_correlated = statistics_gains(slope_square, gains.fan_in, gains.mu, gains.nu)
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
            "gain_uncorrelated": gain_uncorrelated,
            "gain_correlated": gain_correlated,
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
    method: str = DEFAULT_METHOD,
    progress: "bool | None" = None,
    **train_options,
) -> NoisyTrainingResult:
    """Train with noise at several levels; accuracy vs inference noise for each.

    Every network is trained with the noise of ``noise_type`` at one
    training level on every layer (:func:`noiseprop.studies.training.train_mlp`'s
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
        The trainer, default :func:`noiseprop.studies.training.train_mlp` (needs the
        ``train`` extra); called as ``train(X_train, y_train, X_test, y_test,
        noise=..., seed=seed, progress=False, **train_options)`` and returning
        an object with a ``network``.
    method : str, default :data:`~noiseprop.propagation.DEFAULT_METHOD`
        Propagation method of the analytic accuracy and SNR.
    progress : bool, optional
        Show a progress bar over the trainings and evaluations; by default
        only on a terminal (:func:`noiseprop.utils.progress.show_progress`).
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
    train_levels, eval_levels = as_vector("train_levels", train_levels), as_vector("eval_levels", eval_levels)
    if train is None:
        from .training import train_mlp as train
    seeds = spawn_seeds(seed, len(train_levels) * len(eval_levels))
    shape = (len(train_levels), len(eval_levels))
    measured, low, high, predicted, snr_db = (np.empty(shape) for _ in range(5))
    networks, weights, clean = [], [], np.empty(len(train_levels))
    steps = len(train_levels) * (1 + len(eval_levels))
    with progress_bar(steps, desc="noise-aware training", unit="step", enabled=progress) as bar:
        for i, train_variance in enumerate(train_variances):
            training_noise = Noise(**{noise_type: float(train_variance)})
            net = train(X_train, y_train, X_test, y_test, noise=training_noise, seed=seed, progress=False,
                        **train_options).network
            bar.update(1)
            networks.append(net)
            weights.append(weight_statistics(net, X_test))
            clean[i] = clean_accuracy(net, X_test, y_test)
            for j, variance in enumerate(eval_variances):
                noise = Noise(**{noise_type: float(variance)})
                result = accuracy(net, noise, X_test, y_test, samples, seeds[i * len(eval_levels) + j],
                                  method=method, progress=False)
                measured[i, j], (low[i, j], high[i, j]) = result.accuracy, result.ci
                predicted[i, j] = result.predicted
                snr_db[i, j] = float(np.mean(output_prediction(net, noise, X_test, method).layer_snr_db[-1]))
                bar.update(1)
    return NoisyTrainingResult(
        noise_type, scale, train_levels, eval_levels, networks, clean, measured, low, high, predicted,
        snr_db, weights, samples,
    )
