"""Reading and writing networks.

The ``.npz`` network format (NumPy's ``np.savez``):

- ``W1`` .. ``WL``: weight matrices, W_k of shape (N_k, N_{k-1});
- ``b1`` .. ``bL``: bias vectors of shape (N_k,) (optional; zeros if absent);
- ``activations``: L activation specs as strings, e.g.
  ``["sigmoid", "sigmoid", "linear(slope=0.5)"]``, or a single string for all
  layers (optional; "linear" if absent);
- ``x``: an input vector (N_0,) to analyse by default (optional).

Importers turn trained models of other frameworks into a :class:`Network`
(all through :meth:`Network.from_arrays`, so they share its validation):
:func:`from_sklearn` (scikit-learn MLPClassifier / MLPRegressor),
:func:`from_torch` (PyTorch ``nn.Sequential``), :func:`from_onnx` (ONNX
graphs of dense layers); :func:`load_model` picks the reader by file type.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import numpy as np

from ..activations import names_in
from ..model import Network
from ..utils.files import atomic_write
from ..utils.optional import require
from ..utils.resources import memory_limit
from ..utils.validation import as_input, require_network
from .arrays import read_npz

__all__ = ["save_network", "load_network", "load_model", "from_sklearn", "from_torch", "from_onnx",
           "torch_allowed_classes"]

_WEIGHT_KEY = re.compile(r"^W([1-9][0-9]*)$")


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
    require_network(net)
    arrays = {f"W{k}": w for k, w in enumerate(net.weights, start=1)}
    arrays.update({f"b{k}": b for k, b in enumerate(net.biases, start=1)})
    arrays["activations"] = np.array([f.spec for f in net.activations])
    if x is not None:
        inputs, batched = as_input(x, net.sizes[0])
        arrays["x"] = inputs if batched else inputs[0]
    return atomic_write(path, lambda handle: np.savez(handle, **arrays), overwrite=overwrite)


def load_network(path: "str | os.PathLike", return_input: bool = False, max_memory=None):
    """Read a network from an ``.npz`` file in the format above.

    The archive is checked before anything is decompressed (declared sizes
    against the memory limit and the bytes the file holds, no pickles; see
    :mod:`noiseprop.io.arrays`).

    Parameters
    ----------
    path : str or path
    return_input : bool, default False
        Also return the stored input ``x`` (None when the file has none).
    max_memory : size, optional
        Memory limit for reading, e.g. "2G" (default: the current limit,
        :mod:`noiseprop.utils.resources`).

    Returns
    -------
    Network, or (Network, ndarray or None) with ``return_input``.

    Raises
    ------
    ValueError
        Naming the file and what is missing, malformed or too large.
    """
    path = Path(path)
    arrays = read_npz(path, "network file", max_memory=max_memory)
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
    # np.shape(w)[:1]: a malformed (0-d) W reaches from_arrays, which names it
    biases = [arrays.get(f"b{k}", np.zeros(np.shape(w)[:1])) for k, w in zip(layers, weights)]
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


# --- importers -----------------------------------------------------------------------

#: scikit-learn activation names -> noiseprop specs ("softmax": see from_sklearn).
_SKLEARN_ACTIVATIONS = {**names_in("sklearn_name"), "softmax": "linear"}


def from_sklearn(model) -> Network:
    """A fitted scikit-learn ``MLPClassifier`` or ``MLPRegressor`` as a Network.

    Weights come from ``coefs_`` (transposed to (N_k, N_{k-1})), biases from
    ``intercepts_``, hidden activations from ``activation`` ("identity" ->
    linear, "logistic" -> sigmoid, "tanh", "relu") and the output activation
    from ``out_activation_``.  A softmax output (multi-class classifiers) is
    imported as linear: the network outputs the logits, whose arg-max is the
    predicted class and whose softmax is ``predict_proba``.

    Raises
    ------
    ValueError
        When the model is not a fitted MLP or uses an unsupported activation
        (naming the layer).
    """
    if not all(hasattr(model, a) for a in ("coefs_", "intercepts_", "activation", "out_activation_")):
        raise ValueError(
            f"expected a fitted scikit-learn MLPClassifier or MLPRegressor, got {type(model).__name__} "
            "(no coefs_/intercepts_/activation/out_activation_; fit it first)"
        )
    depth = len(model.coefs_)
    names = [model.activation] * (depth - 1) + [model.out_activation_]
    specs = []
    for k, name in enumerate(names, start=1):
        if name not in _SKLEARN_ACTIVATIONS:
            raise ValueError(
                f"layer {k}: scikit-learn activation {name!r} is not supported; "
                f"supported: {', '.join(_SKLEARN_ACTIVATIONS)}"
            )
        specs.append(_SKLEARN_ACTIVATIONS[name])
    return Network.from_arrays([np.asarray(w).T for w in model.coefs_], list(model.intercepts_), specs)


def from_torch(module) -> Network:
    """A PyTorch ``nn.Sequential`` of dense layers as a Network.

    Supported modules: ``nn.Linear`` (a layer), followed by at most one
    activation ``nn.Sigmoid``, ``nn.Tanh`` or ``nn.ReLU`` (a Linear without
    one is a linear layer); ``nn.Identity``, ``nn.Flatten`` and
    ``nn.Dropout`` are skipped (they change nothing at inference on flat
    inputs).  Parameters are copied as float64.

    Raises
    ------
    ValueError
        Naming the position and type of an unsupported module, or of an
        activation that does not directly follow a Linear.
    ImportError
        When PyTorch is not installed (extra ``train``).
    """
    torch = require("torch", "train", "importing PyTorch models")
    nn = torch.nn
    activations, pass_through = _torch_modules(nn)
    if not isinstance(module, nn.Sequential):
        raise ValueError(f"expected a torch.nn.Sequential, got {type(module).__name__}")
    weights, biases, specs = [], [], []
    activated = False  # whether the last Linear already has its activation
    for index, layer in enumerate(module):
        kind = type(layer).__name__
        if type(layer) is nn.Linear:
            weights.append(layer.weight.detach().cpu().double().numpy())
            biases.append(np.zeros(layer.out_features) if layer.bias is None
                          else layer.bias.detach().cpu().double().numpy())
            specs.append("linear")
            activated = False
        elif type(layer) in activations:
            if not weights or activated:
                raise ValueError(f"module {index} ({kind}): an activation must follow a Linear layer")
            specs[-1] = activations[type(layer)]
            activated = True
        elif type(layer) not in pass_through:
            raise ValueError(
                f"module {index} ({kind}) is not supported; supported: Linear, "
                f"{', '.join(names_in('torch_module'))} "
                "(Identity, Flatten, Dropout are skipped)"
            )
    if not weights:
        raise ValueError("the Sequential has no Linear layer")
    return Network.from_arrays(weights, biases, specs)


def _torch_modules(nn) -> tuple[dict, tuple]:
    """The activation modules (-> spec) and the skipped modules that :func:`from_torch` supports."""
    activations = {getattr(nn, module): name for module, name in names_in("torch_module").items()}
    return activations, (nn.Identity, nn.Flatten, nn.Dropout)


def torch_allowed_classes(nn) -> list:
    """Every class a safely loaded ``.pt`` file may contain: the modules :func:`from_torch` imports."""
    activations, pass_through = _torch_modules(nn)
    return [nn.Sequential, nn.Linear, *activations, *pass_through]


#: ONNX activation operators -> noiseprop specs.
_ONNX_ACTIVATIONS = names_in("onnx_op")
#: ONNX operators that pass values unchanged on flat inputs.
_ONNX_PASS_THROUGH = ("Identity", "Flatten", "Dropout")


def from_onnx(model) -> Network:
    """An ONNX model of dense layers as a Network.

    The graph must be a chain from its one data input to its one output of
    ``MatMul`` (data times a constant matrix), ``Gemm`` (data as A, constant
    B and C, any ``alpha``, ``beta``, ``transB``; ``transA = 0``) and ``Add``
    (a constant bias) nodes, each layer closed by at most one activation
    node ``Sigmoid``, ``Tanh``, ``Relu`` or ``Erf``; ``Identity``,
    ``Flatten`` and ``Dropout`` are skipped.  Constants are graph
    initializers or ``Constant`` nodes (``value``, ``value_float(s)``,
    ``value_int(s)``).  Inputs are row vectors (batch, N_0), as exported by
    PyTorch and scikit-learn converters; a graph that multiplies a matrix by
    the data from the left (``W x``) is refused, not transposed silently.

    Parameters
    ----------
    model : onnx.ModelProto, str or path
        The model, or the path of an ``.onnx`` file.

    Raises
    ------
    ValueError
        Naming the node (name and operator) that is unsupported or breaks
        the chain.
    ImportError
        When onnx is not installed (extra ``onnx``).
    """
    onnx = require("onnx", "onnx", "importing ONNX models")
    if isinstance(model, (str, os.PathLike)):
        try:
            model = onnx.load(os.fspath(model))
        except Exception as err:  # onnx raises protobuf's DecodeError and others
            raise ValueError(f"{model} is not a readable ONNX model ({err})") from None
    if not isinstance(model, onnx.ModelProto):
        raise ValueError(f"expected an onnx.ModelProto or the path of an .onnx file, got {type(model).__name__}")
    graph = model.graph
    constants = {t.name: onnx.numpy_helper.to_array(t).astype(float) for t in graph.initializer}
    data_inputs = [i.name for i in graph.input if i.name not in constants]
    if len(data_inputs) != 1 or len(graph.output) != 1:
        raise ValueError(
            f"the ONNX graph must have one data input and one output, got inputs {data_inputs} "
            f"and outputs {[o.name for o in graph.output]}"
        )
    current = data_inputs[0]
    layers: list[dict] = []  # {"W": (N_k, N_k-1), "b": (N_k,), "f": spec or None}
    for index, node in enumerate(graph.node):
        label = f"node {index} {node.name!r} ({node.op_type})"
        if node.op_type == "Constant":
            constants[node.output[0]] = _onnx_constant(node, label, onnx)
            continue
        if current not in node.input:
            raise ValueError(f"{label} does not take the output of the previous layer: only chains are supported")
        if node.op_type in ("MatMul", "Gemm") and node.input[0] != current:
            raise ValueError(
                f"{label}: the data must be the first operand (x W, rows of inputs); "
                "a matrix times the data (W x) is not supported"
            )
        others = [constants.get(name) for name in node.input if name != current]
        if any(value is None for value in others):
            raise ValueError(f"{label}: every input other than the data must be a constant")
        if node.op_type in ("MatMul", "Gemm", "Add") and not others:
            raise ValueError(f"{label}: needs a constant weight or bias besides the data")
        _onnx_layer_step(node, label, others, layers, onnx)
        current = node.output[0]
    if current != graph.output[0].name:
        raise ValueError(f"the ONNX graph output {graph.output[0].name!r} is not the end of the chain ({current!r})")
    if not layers:
        raise ValueError("the ONNX graph has no MatMul or Gemm layer")
    return Network.from_arrays(
        [layer["W"] for layer in layers],
        [np.zeros(len(layer["W"])) if layer["b"] is None else layer["b"] for layer in layers],
        [layer["f"] or "linear" for layer in layers],
    )


#: Attributes of an ONNX ``Constant`` node that hold numbers.
_ONNX_CONSTANT_ATTRIBUTES = ("value", "value_float", "value_floats", "value_int", "value_ints")


def _onnx_constant(node, label: str, onnx) -> np.ndarray:
    """The numbers of a ``Constant`` node as a float array."""
    attributes = {a.name: a for a in node.attribute}
    found = [name for name in _ONNX_CONSTANT_ATTRIBUTES if name in attributes]
    if not found:
        raise ValueError(
            f"{label}: constant attribute {sorted(attributes)} is not supported; "
            f"supported: {', '.join(_ONNX_CONSTANT_ATTRIBUTES)}"
        )
    value = onnx.helper.get_attribute_value(attributes[found[0]])
    try:
        return np.asarray(onnx.numpy_helper.to_array(value) if found[0] == "value" else value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{label}: the constant is not numeric") from None


def _onnx_layer_step(node, label: str, constants: list, layers: list, onnx) -> None:
    """Apply one ONNX node to the list of layers being built."""
    op = node.op_type
    if op == "MatMul":
        (matrix,) = constants
        layers.append({"W": _onnx_matrix(matrix, label).T, "b": None, "f": None})
    elif op == "Gemm":
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("transA", 0):
            raise ValueError(f"{label}: transA=1 is not supported")
        matrix = _onnx_matrix(constants[0], label)
        weight = attrs.get("alpha", 1.0) * (matrix if attrs.get("transB", 0) else matrix.T)
        layers.append({"W": weight, "b": None, "f": None})
        if len(constants) > 1:
            _add_onnx_bias(layers[-1], attrs.get("beta", 1.0) * constants[1], label)
    elif op == "Add":
        if not layers or layers[-1]["f"] is not None:
            raise ValueError(f"{label}: a bias Add must follow a MatMul or Gemm, before the activation")
        _add_onnx_bias(layers[-1], constants[0], label)
    elif op in _ONNX_ACTIVATIONS:
        if not layers or layers[-1]["f"] is not None:
            raise ValueError(f"{label}: an activation must follow a MatMul, Gemm or Add")
        layers[-1]["f"] = _ONNX_ACTIVATIONS[op]
    elif op not in _ONNX_PASS_THROUGH:
        raise ValueError(
            f"{label} is not supported; supported: MatMul, Gemm, Add, {', '.join(_ONNX_ACTIVATIONS)} "
            f"({', '.join(_ONNX_PASS_THROUGH)} are skipped)"
        )


def _onnx_matrix(value: np.ndarray, label: str) -> np.ndarray:
    if value.ndim != 2:
        raise ValueError(f"{label}: the weight must be a matrix, got shape {value.shape}")
    return value


def _add_onnx_bias(layer: dict, bias: np.ndarray, label: str) -> None:
    n = layer["W"].shape[0]
    try:
        bias = np.broadcast_to(bias, (1, n)).reshape(n)
    except ValueError:
        raise ValueError(f"{label}: bias of shape {bias.shape} does not fit a layer of {n} neurons") from None
    layer["b"] = bias if layer["b"] is None else layer["b"] + bias


_MODEL_READERS = {".npz": "npz", ".onnx": "onnx", ".pt": "torch", ".pth": "torch"}


def load_model(path: "str | os.PathLike", return_input: bool = False, *, trust: bool = False,
               max_memory=None):
    """Read a network from a file, choosing the reader by its extension.

    - ``.npz``: the noiseprop format (:func:`load_network`);
    - ``.onnx``: :func:`from_onnx` (extra ``onnx``);
    - ``.pt``, ``.pth``: a whole ``nn.Sequential`` saved with ``torch.save``
      (extra ``train``), then :func:`from_torch`.  It is read **safely** with
      ``torch.load(weights_only=True)``: the file may contain tensors and
      only the module classes that :func:`from_torch` supports
      (:func:`torch_allowed_classes`: Sequential, Linear, Sigmoid, Tanh,
      ReLU, Identity, Flatten, Dropout).  Anything else is refused before
      it is built, with a message naming the classes and how to convert the
      model (save a plain ``nn.Sequential``; load a ``state_dict`` into your
      architecture and pass the model to :func:`from_torch`; or export ONNX).

    Parameters
    ----------
    path : str or path
    return_input : bool, default False
        Also return the stored input ``x`` (only ``.npz`` files hold one;
        None otherwise).
    trust : bool, default False
        For ``.pt``/``.pth``: unpickle with ``weights_only=False``, the old
        behaviour.  **Risk**: a pickle can run any code on load (delete files,
        install malware) with your permissions; use it only for files you
        made yourself or fully trust.  CLI: ``--trust-pickle``.
    max_memory : size, optional
        Memory limit while reading ``.npz`` files (see :func:`load_network`).

    Returns
    -------
    Network, or (Network, ndarray or None) with ``return_input``.

    Raises
    ------
    ValueError
        Naming the file and what is wrong (unknown type, unreadable, unsafe,
        unsupported module).
    MissingDependency
        When the reader's optional dependency is not installed.
    """
    path = Path(path)
    kind = _MODEL_READERS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path}: unknown model file type {path.suffix!r}; known: {', '.join(_MODEL_READERS)}")
    if kind == "npz":
        return load_network(path, return_input=return_input, max_memory=max_memory)
    if not path.is_file():
        raise ValueError(f"model file {path} does not exist")
    try:
        with memory_limit(max_memory):
            net = from_onnx(path) if kind == "onnx" else from_torch(_torch_load(path, trust))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return (net, None) if return_input else net


_CONVERT = (
    "to use it, save a plain torch.nn.Sequential of supported modules (torch.save(model, path)); "
    "or load a state_dict into your architecture (model.load_state_dict(...)) and pass the model "
    "to noiseprop.from_torch; or export it to ONNX (torch.onnx.export) and load the .onnx file"
)


def _torch_load(path: Path, trust: bool = False):
    """The object in a PyTorch file: only allow-listed classes unless ``trust`` (see :func:`load_model`)."""
    torch = require("torch", "train", "reading PyTorch files")
    if trust:
        try:
            return torch.load(path, weights_only=False)
        except Exception as err:  # pickle and zip errors of many kinds
            raise ValueError(f"not a readable PyTorch file ({type(err).__name__}: {_first_line(err)})") from None
    allowed = torch_allowed_classes(torch.nn)
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in allowed}
    try:
        needed = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not a zip checkpoint: the safe unpickler below decides
        needed = set()
    refused = sorted(needed - names)
    if refused:
        raise ValueError(_unsafe_message(refused))
    try:
        with torch.serialization.safe_globals(allowed):
            loaded = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:
        text = _first_line(err)
        if isinstance(err, pickle.UnpicklingError) or "weights only" in str(err).lower():
            unsupported = re.findall(r"GLOBAL ([\w.]+)", str(err))
            raise ValueError(_unsafe_message(sorted(set(unsupported)) or ["(unknown)"])) from None
        raise ValueError(f"not a readable PyTorch file ({type(err).__name__}: {text})") from None
    if isinstance(loaded, dict):
        raise ValueError(
            "the file holds a state_dict (parameter tensors without the architecture: "
            f"{', '.join(list(map(str, loaded))[:6])}{', ...' if len(loaded) > 6 else ''}); noiseprop needs "
            f"the layers and activations too: {_CONVERT}"
        )
    return loaded


def _unsafe_message(classes) -> str:
    return (
        f"refusing to load: the file needs {', '.join(classes)}, which noiseprop does not import "
        "(unpickling other classes can run arbitrary code from the file; allowed: Sequential, Linear, "
        f"Sigmoid, Tanh, ReLU, Identity, Flatten, Dropout); {_CONVERT}. Only for a file you fully "
        "trust: --trust-pickle (load_model(..., trust=True)) runs its code"
    )


def _first_line(err: BaseException) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else "empty or truncated file"
