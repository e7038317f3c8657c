"""Reading and writing networks.

The ``.npz`` network format (NumPy's ``np.savez``):

- ``W1`` .. ``WL``: weight matrices, W_k of shape (N_k, N_{k-1});
- ``b1`` .. ``bL``: bias vectors of shape (N_k,) (optional; zeros if absent);
- ``activations``: L activation specs as strings, e.g.
  ``["sigmoid", "sigmoid", "linear(slope=0.5)"]``, or a single string for all
  layers (optional; "linear" if absent);
- ``x``: an input vector (N_0,) to analyse by default (optional).
"""
from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import numpy as np

from ._files import atomic_write
from .model import Network, as_input

__all__ = ["save_network", "load_network"]

_WEIGHT_KEY = re.compile(r"^W(\d+)$")


def save_network(
    path: "str | os.PathLike",
    net: Network,
    x=None,
    overwrite: bool = False,
) -> Path:
    """Write ``net`` (and optionally an input ``x``) to an ``.npz`` file.

    The file is written atomically; an existing file is replaced only with
    ``overwrite=True``.
    """
    arrays = {f"W{k}": w for k, w in enumerate(net.weights, start=1)}
    arrays.update({f"b{k}": b for k, b in enumerate(net.biases, start=1)})
    arrays["activations"] = np.array([f.spec for f in net.activations])
    if x is not None:
        arrays["x"], _ = as_input(x, net.sizes[0])
        if np.ndim(x) == 1:
            arrays["x"] = arrays["x"][0]
    return atomic_write(path, lambda handle: np.savez(handle, **arrays), overwrite=overwrite)


def load_network(path: "str | os.PathLike", return_input: bool = False):
    """Read a network from an ``.npz`` file in the format above.

    Parameters
    ----------
    path : str or path
    return_input : bool, default False
        Also return the stored input ``x`` (None when the file has none).

    Returns
    -------
    Network, or (Network, ndarray or None) with ``return_input``.

    Raises
    ------
    ValueError
        Naming the file and what is missing or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"network file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable .npz network file ({err})") from None
    try:
        net, x = _network_from_arrays(arrays)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return (net, x) if return_input else net


def _network_from_arrays(arrays: dict) -> tuple[Network, "np.ndarray | None"]:
    layers = sorted(int(m.group(1)) for m in map(_WEIGHT_KEY.match, arrays) if m)
    if not layers:
        raise ValueError(f"no weight matrices W1..WL found (keys: {sorted(arrays)})")
    if layers != list(range(1, len(layers) + 1)):
        raise ValueError(f"weight matrices must be numbered W1..W{len(layers)}, found W{layers}")
    depth = len(layers)
    weights = [arrays[f"W{k}"] for k in layers]
    biases = [arrays.get(f"b{k}", np.zeros(np.shape(w)[0])) for k, w in zip(layers, weights)]
    activations = arrays.get("activations", np.array("linear"))
    if activations.dtype.kind != "U":
        raise ValueError(f"'activations' must hold strings, got dtype {activations.dtype}")
    specs = [str(activations)] if activations.ndim == 0 else [str(a) for a in activations]
    if len(specs) == 1:
        specs = specs * depth
    net = Network.from_arrays(weights, biases, specs)
    x = arrays.get("x")
    if x is not None:
        as_input(x, net.sizes[0])
    return net, x
