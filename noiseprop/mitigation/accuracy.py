"""Classification accuracy of mitigated networks (Monte Carlo and analytic).

:func:`mitigated_accuracy` measures, for the original network and each
transformed one, the noisy accuracy (Monte Carlo over the noise, with its
confidence interval), the analytic accuracy (Gaussian output of
:func:`~noiseprop.propagation.predict`), the clean accuracy, and the fraction
of the accuracy lost to noise that the transformation recovers:

    recovered = (acc_mitigated - acc_noisy) / (acc_clean - acc_noisy)

(all three Monte Carlo accuracies on the same inputs; the transformations
keep the clean accuracy exactly).  :func:`level_for_drop` finds the noise
scale at which the noisy accuracy drops by a given amount.
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from ..model import Network
from ..noise import Noise, NoiseSpec, per_layer_noise
from ..utils.validation import require_network

__all__ = ["mitigated_accuracy", "level_for_drop", "hidden_neurons"]


def hidden_neurons(net: Network) -> int:
    """Noisy neurons of the layers before the output (copies and ghosts included).

    For a transformed network the layers implementing original layers
    1..L-1 are counted; noise-free read-out or coupling layers are not.
    """
    origin = getattr(net, "origin", None)
    if origin is None:
        return int(sum(net.sizes[1:-1]))
    last = net.original_depth
    return int(sum(n for n, o in zip(net.sizes[1:], origin) if isinstance(o, int) and o < last))


def mitigated_accuracy(
    net: Network,
    noise: NoiseSpec,
    X,
    y,
    networks: Mapping[str, Network],
    *,
    samples: int = 200,
    seed: int = 0,
    analytic: bool = True,
    method: str = "linear",
) -> list[dict]:
    """Accuracy of the original and of each transformed network under ``noise``.

    Parameters
    ----------
    net : Network
        The original classifier (arg-max of the output layer).
    noise : Noise or sequence of L Noise
        Noise of the original layers; each transformed network gets it
        through ``noise_for``.
    X, y : inputs (B, N_0) and labels (B,)
    networks : mapping label -> transformed network
    samples : int, default 200
        Noise realisations per input.
    seed : int, default 0
        The same seed for every network (common random numbers are not
        implied: the networks differ in size).
    analytic : bool, default True
        Also the analytic accuracy.
    method : {"linear", "moments"}
        Propagation method of the analytic accuracy.

    Returns
    -------
    list of dict
        One per network, the original first: label, extra_neurons,
        hidden_neurons, accuracy, ci, analytic, clean, recovered.
    """
    from ..studies.accuracy import accuracy  # scipy.stats: loaded on use

    require_network(net)
    layer_noise = list(per_layer_noise(noise, net.depth))
    rows = []
    base = accuracy(net, layer_noise, X, y, samples, seed, analytic=analytic, method=method)
    rows.append(_row("original", net, base, 0))
    for label, transformed in networks.items():
        result = accuracy(transformed, transformed.noise_for(layer_noise), X, y, samples, seed,
                          analytic=analytic, method=method)
        rows.append(_row(label, transformed, result, transformed.extra_neurons))
    lost = base.clean - base.accuracy
    for row in rows:
        row["recovered"] = (row["accuracy"] - base.accuracy) / lost if lost > 0 else None
    return rows


def _row(label: str, net: Network, result, extra: int) -> dict:
    return {"label": label, "extra_neurons": int(extra), "hidden_neurons": hidden_neurons(net),
            "accuracy": result.accuracy, "ci": list(result.ci), "analytic": result.predicted,
            "clean": result.clean}


def level_for_drop(
    net: Network,
    unit: Noise,
    X,
    y,
    drop: float = 0.05,
    scales=None,
    *,
    samples: int = 50,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The scale s (from ``scales``) at which ``unit.scaled(s)`` drops the accuracy closest to ``drop``.

    Parameters
    ----------
    unit : Noise
        The noise mix at scale 1 (e.g. all four types at intensity 1).
    drop : float, default 0.05
        Accuracy drop sought (fraction: 0.05 = 5 points).
    scales : sequence of float, optional
        Candidate scales (default: 24 values log-spaced over 1e-4 .. 1).

    Returns
    -------
    scale, noisy accuracy, clean accuracy
    """
    from ..studies.accuracy import accuracy

    require_network(net)
    scales = np.geomspace(1e-4, 1.0, 24) if scales is None else np.asarray(scales, dtype=float)
    best: Optional[tuple] = None
    for s in scales:
        result = accuracy(net, unit.scaled(float(s)), X, y, samples, seed, analytic=False)
        gap = abs((result.clean - result.accuracy) - drop)
        if best is None or gap < best[0]:
            best = (gap, float(s), result.accuracy, result.clean)
        if result.clean - result.accuracy > 2 * drop:
            break
    return best[1], best[2], best[3]
