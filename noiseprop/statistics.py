"""Per-layer noise statistics shared by predictions and simulations (spec 3).

Conventions: layers are indexed k = 0..L (k = 0 is the input); intensities
and variances are variances; the SNR of a neuron is E[y]^2 / Var[y] (a power
ratio) and the layer SNR is sum_i E[y_i]^2 / sum_i Var[y_i].  The correlated
part c of a layer's covariance is the mean of its off-diagonal entries and the
uncorrelated part of neuron i is u_i = Var[y_i] - c (c = 0 for one neuron).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .utils.jsonutil import finite_or_none

__all__ = ["LayerStatistics", "decibels", "mean_off_diagonal", "mean_off_diagonal_from_sums"]


def decibels(ratio):
    """10 log10(ratio); +inf for an infinite (noise-free) ratio."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(ratio)


def mean_off_diagonal_from_sums(total: np.ndarray, trace: np.ndarray, n: int) -> np.ndarray:
    """Mean off-diagonal entry of n x n matrices from the sum of all their
    entries and their traces (arrays (B,)); 0 if n = 1."""
    if n < 2:
        return np.zeros(np.shape(total))
    return (total - trace) / (n * (n - 1))


def mean_off_diagonal(cov: np.ndarray) -> np.ndarray:
    """Mean off-diagonal entry c of each (N, N) covariance in (B, N, N); 0 if N = 1.

    c is the correlated part of the split Sigma = diag(u) + c 11^T.
    """
    return mean_off_diagonal_from_sums(cov.sum(axis=(1, 2)), np.trace(cov, axis1=1, axis2=2), cov.shape[-1])

def _ratio(signal: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """signal / noise with inf for noise-free and nan for 0/0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(signal, dtype=float) / noise


class LayerStatistics:
    """Mean, variance and correlated/uncorrelated split of every layer.

    Parameters
    ----------
    mean, var : sequence of ndarray, each (B, N_k)
        Per-layer mean and variance of every neuron for B inputs.
    correlated : sequence of ndarray, each (B,)
        Per-layer mean off-diagonal covariance c.
    batched : bool
        Whether the input was a batch; if not, the leading B = 1 axis is
        dropped from every attribute.

    Attributes
    ----------
    mean, var, uncorrelated, snr : list of ndarray
        Indexed by layer k = 0..L; each (N_k,) for one input, (B, N_k) for a batch.
    correlated, layer_snr, signal_power, noise_var : ndarray
        Shape (L+1,) for one input, (L+1, B) for a batch.  ``signal_power``
        and ``noise_var`` are the per-neuron averages of E[y]^2 and Var[y].
    """

    def __init__(
        self,
        mean: Sequence[np.ndarray],
        var: Sequence[np.ndarray],
        correlated: Sequence[np.ndarray],
        batched: bool,
    ):
        self.batched = batched
        self.sizes = tuple(m.shape[-1] for m in mean)
        self.depth = len(self.sizes) - 1
        self.mean = [self._shape(m) for m in mean]
        self.var = [self._shape(v) for v in var]
        self.correlated = self._stack(correlated)
        self.uncorrelated = [
            v - np.asarray(c)[..., None] for v, c in zip(self.var, self.correlated)
        ]
        self.snr = [_ratio(m**2, v) for m, v in zip(self.mean, self.var)]
        self.signal_power = np.array([np.mean(m**2, axis=-1) for m in self.mean])
        self.noise_var = np.array([np.mean(v, axis=-1) for v in self.var])
        self.layer_snr = _ratio(self.signal_power, self.noise_var)

    def _shape(self, array: np.ndarray) -> np.ndarray:
        return array if self.batched else array[0]

    def _stack(self, per_layer: Sequence[np.ndarray]) -> np.ndarray:
        """Per-layer (B,) arrays as one (L+1, B) array, (L+1,) for one input."""
        stacked = np.stack([np.asarray(a, dtype=float) for a in per_layer])
        return stacked if self.batched else stacked[:, 0]

    @property
    def snr_db(self) -> list:
        """Per-neuron SNR in dB, indexed by layer."""
        return [decibels(s) for s in self.snr]

    @property
    def layer_snr_db(self) -> np.ndarray:
        """Layer SNR in dB, shape (L+1,) or (L+1, B)."""
        return decibels(self.layer_snr)

    def summary(self) -> list[dict]:
        """One dict per layer with the per-neuron averages (batch-averaged).

        Keys: layer, size, signal_power, noise_var, uncorrelated, correlated,
        snr_db (the layer SNR; inf for a noise-free layer).
        """
        rows = []
        for k, n in enumerate(self.sizes):
            signal = float(np.mean(self.signal_power[k]))
            noise = float(np.mean(self.noise_var[k]))
            correlated = float(np.mean(self.correlated[k]))
            rows.append(
                {
                    "layer": k,
                    "size": n,
                    "signal_power": signal,
                    "noise_var": noise,
                    "uncorrelated": noise - correlated,
                    "correlated": correlated,
                    "snr_db": float(decibels(_ratio(signal, noise))),
                }
            )
        return rows

    def to_dict(self, per_neuron: bool = True) -> dict:
        """JSON-ready form: the summary, and per-neuron mean and variance.

        Non-finite numbers (the infinite SNR of a noise-free layer) become
        ``None`` so that the result is strict JSON.
        """
        layers = self.summary()
        if per_neuron:
            for row, m, v in zip(layers, self.mean, self.var):
                row["mean"] = m.tolist()
                row["var"] = v.tolist()
        return {"sizes": list(self.sizes), "batched": self.batched, "layers": finite_or_none(layers)}
