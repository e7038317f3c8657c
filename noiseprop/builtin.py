"""Built-in example networks.

:func:`reference_network` is the reference benchmark of spec section 8; it is
also the network that ``noiseprop predict`` uses when given none.
"""
from __future__ import annotations

import numpy as np

from .model import Network
from .noise import Noise

__all__ = ["reference_network", "REFERENCE_SIZES", "REFERENCE_INTENSITY"]

#: Layer sizes N_0..N_L of the reference network.
REFERENCE_SIZES = (784, 100, 100, 100, 100, 10)
#: Intensity (variance) of each of the four noise types in the reference benchmark.
REFERENCE_INTENSITY = 1e-3


def reference_network(sizes=REFERENCE_SIZES) -> tuple[Network, np.ndarray, Noise]:
    """The reference benchmark network, its input and its noise (spec 8).

    Sigmoid hidden layers, linear output, weights N(0, 1/fan-in) drawn from
    seed 0, zero biases; one input uniform in [0, 1] drawn from seed 1; all
    four noise types at D = 1e-3 on every layer.

    Parameters
    ----------
    sizes : sequence of int, default (784, 100, 100, 100, 100, 10)
        N_0..N_L (smaller sizes give a quick version of the same recipe).

    Returns
    -------
    net : Network
    x : ndarray (N_0,)
    noise : Noise
    """
    weight_rng = np.random.default_rng(0)
    weights = [
        weight_rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]
    activations = ["sigmoid"] * (len(weights) - 1) + ["linear"]
    net = Network.from_arrays(weights, None, activations)
    x = np.random.default_rng(1).uniform(0.0, 1.0, sizes[0])
    d = REFERENCE_INTENSITY
    return net, x, Noise(AU=d, AC=d, MU=d, MC=d)
