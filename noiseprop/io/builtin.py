"""Built-in example networks.

:func:`reference_network` is the reference benchmark of spec section 8; it is
also the network that ``noiseprop predict`` uses when given none.
:func:`default_network` is a network trained on the 8x8 digits, shipped as
package data.
"""
from __future__ import annotations

from importlib import resources

import numpy as np

from ..model import Network
from ..noise import REFERENCE_INTENSITY, Noise
from .networks import load_network

__all__ = [
    "default_network",
    "reference_network",
    "DEFAULT_NETWORK_ACCURACY",
    "REFERENCE_SIZES",
]

#: Test accuracy of :func:`default_network` on the 450 test digits of
#: :func:`noiseprop.io.datasets.load_digits` (441 correct).
DEFAULT_NETWORK_ACCURACY = 0.98

#: Layer sizes N_0..N_L of the reference network.
REFERENCE_SIZES = (784, 100, 100, 100, 100, 10)


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


def default_network(return_input: bool = False):
    """The shipped trained network: a 64-100-100-100-10 digits classifier.

    Sigmoid hidden layers, linear output (one logit per digit 0..9), trained
    with back-propagation on the 8x8 digits of
    :func:`noiseprop.io.datasets.load_digits` by the committed script
    ``noiseprop/data/generate_default_network.py`` (seed 0); test accuracy
    :data:`DEFAULT_NETWORK_ACCURACY` = 98.0 %.  Inputs are pixel values in
    [0, 1].  Loaded from package data with NumPy alone (no PyTorch).

    Parameters
    ----------
    return_input : bool, default False
        Also return the stored input: the first test image (a digit 8), a
        vector of 64 pixels in [0, 1], to analyse by default.

    Returns
    -------
    Network, or (Network, ndarray (64,)) with ``return_input`` (the same
    convention as :func:`noiseprop.io.load_network`).

    Examples
    --------
    >>> net, x = default_network(return_input=True)
    >>> net
    Network(64-100-100-100-10; activations: sigmoid, sigmoid, sigmoid, linear)
    >>> int(net.forward(x)[-1].argmax())
    8
    """
    with resources.as_file(resources.files("noiseprop") / "data" / "default_network.npz") as path:
        return load_network(path, return_input=return_input)
