"""Training fully connected networks with back-propagation (PyTorch).

:func:`train_mlp` trains a multilayer perceptron on a classification data set
(e.g. :func:`noiseprop.io.datasets.load_digits`) and returns it as a
:class:`noiseprop.Network` with its test accuracy.  Optionally the noise of
docs/model.md (§2) is injected into every layer during training
(noise-aware training).  PyTorch is an optional dependency:
``pip install 'noiseprop[train]'``.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Sequence

from ..activations import Activation, get_activation
from ..model import Network
from ..noise import Noise, NoiseSpec, per_layer_noise
from ..utils.optional import require
from ..utils.progress import progress_bar
from ..utils.resources import check_memory, check_run_time, network_bytes
from ..utils.seeds import int_seed
from ..utils.validation import as_labelled_data, positive_int

__all__ = ["TrainingResult", "train_mlp"]


@dataclass(frozen=True)
class TrainingResult:
    """The outcome of :func:`train_mlp`.

    Attributes
    ----------
    network : Network
        The trained network; its output layer gives one value per class
        (the predicted class is the arg-max).
    test_accuracy : float
        Fraction of the test set classified correctly by ``network`` without
        noise, in [0, 1].
    history : dict of str to list of float
        Per epoch: ``"loss"`` (mean training cross-entropy, with the injected
        noise if any, in nats) and ``"test_accuracy"`` (noise-free).
    """

    network: Network
    test_accuracy: float
    history: dict[str, list[float]] = field(default_factory=dict)


def train_mlp(
    X_train,
    y_train,
    X_test,
    y_test,
    hidden: Sequence[int] = (100, 100, 100),
    activation: "str | Activation" = "sigmoid",
    output: "str | Activation" = "linear",
    epochs: int = 100,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    noise: "NoiseSpec | None" = None,
    progress: "bool | None" = None,
) -> TrainingResult:
    """Train an MLP classifier with Adam on the cross-entropy of its outputs.

    The network is N_0 - hidden[0] - ... - hidden[-1] - n_classes, with
    N_0 the number of features and n_classes = max label + 1.  Its output
    layer values are the logits of a softmax cross-entropy loss.

    Parameters
    ----------
    X_train : array_like (n_train, N_0)
        Training inputs.
    y_train : array_like of int (n_train,)
        Training labels 0..n_classes-1.
    X_test : array_like (n_test, N_0)
    y_test : array_like of int (n_test,)
        Test set for the reported accuracy (never trained on).
    hidden : sequence of int, default (100, 100, 100)
        Widths of the hidden layers; ``()`` gives a single layer.
    activation : str or Activation, default "sigmoid"
        Activation of the hidden layers, by name or spec of
        :mod:`noiseprop.activations`, e.g. ``"sigmoid(gain=2)"``,
        ``"tanh(gain=0.5)"``, ``"linear(slope=0.9)"``, ``"relu"``.
    output : str or Activation, default "linear"
        Activation of the output layer.
    epochs : int, default 100
        Passes over the training set.
    batch_size : int, default 32
    lr : float, default 1e-3
        Adam learning rate.
    seed : int, default 0
        A non-negative integer; seeds the weight initialisation (PyTorch's
        default for dense layers: uniform in +-1/sqrt(fan-in)), the shuffling
        and the injected noise.
        The same seed gives identical weights: training runs on one thread
        with PyTorch's deterministic algorithms, in float64.
    noise : Noise or sequence of L Noise, optional
        Noise injected during training exactly as in docs/model.md §2: on
        every layer 1..L (hidden and output), placement "post" or "pre", the
        four types with intensities = variances; uncorrelated noise is drawn
        per neuron and sample, correlated noise once per layer and sample.
        The test accuracy is measured without noise.
    progress : bool, optional
        Show a progress bar over the epochs; by default only on a terminal.

    Returns
    -------
    TrainingResult
        ``network``, ``test_accuracy`` and per-epoch ``history``.

    Raises
    ------
    ValueError
        For inconsistent shapes, bad labels or bad settings (named).
    ImportError
        When PyTorch is not installed (extra ``train``).
    """
    torch = require("torch", "train", "training")
    X_train, y_train = as_labelled_data(X_train, y_train, part="training")
    X_test, y_test = as_labelled_data(X_test, y_test, part="test")
    if X_test.shape[1] != X_train.shape[1]:
        raise ValueError(
            f"test inputs have {X_test.shape[1]} features, training inputs {X_train.shape[1]}"
        )
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    sizes = (X_train.shape[1], *_widths(hidden), n_classes)
    depth = len(sizes) - 1
    activations = [_layer_activation("activation", activation)] * (depth - 1)
    activations.append(_layer_activation("output", output))
    layer_noise = per_layer_noise(noise if noise is not None else Noise(), depth)
    epochs = positive_int("epochs", epochs)
    batch_size = positive_int("batch_size", batch_size)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    seed = int_seed(seed)
    _check_training_size(sizes, len(y_train), len(y_test), epochs, batch_size)
    with _deterministic_torch(torch):
        return _train(torch, sizes, activations, layer_noise, X_train, y_train, X_test, y_test,
                      epochs, batch_size, float(lr), seed, progress)


def _train(torch, sizes, activations, layer_noise, X_train, y_train, X_test, y_test,
           epochs, batch_size, lr, seed, progress) -> TrainingResult:
    generator = torch.Generator().manual_seed(seed)
    params = _init_params(torch, sizes, generator)
    functions = [_torch_activation(torch, f) for f in activations]
    optimizer = torch.optim.Adam([p for layer in params for p in layer], lr=lr)
    inputs = torch.as_tensor(X_train, dtype=torch.float64)
    labels = torch.as_tensor(y_train)
    test_inputs = torch.as_tensor(X_test, dtype=torch.float64)
    history: dict[str, list[float]] = {"loss": [], "test_accuracy": []}
    with progress_bar(epochs, desc="training", unit="epoch", enabled=progress) as bar:
        for _ in range(epochs):
            order = torch.randperm(len(labels), generator=generator)
            total = 0.0
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                logits = _forward(torch, params, functions, inputs[batch], layer_noise, generator)
                loss = torch.nn.functional.cross_entropy(logits, labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            with torch.no_grad():
                predicted = _forward(torch, params, functions, test_inputs, None, generator).argmax(1)
            history["loss"].append(total / len(labels))
            history["test_accuracy"].append(float((predicted.numpy() == y_test).mean()))
            bar.set_postfix(loss=f"{history['loss'][-1]:.4f}", test_acc=f"{history['test_accuracy'][-1]:.3f}")
            bar.update(1)
    net = Network.from_arrays(
        [w.detach().numpy().copy() for w, _ in params],
        [b.detach().numpy().copy() for _, b in params],
        activations,
    )
    accuracy = float((net.forward(X_test)[-1].argmax(axis=1) == y_test).mean())
    return TrainingResult(net, accuracy, history)


def _check_training_size(sizes, n_train: int, n_test: int, epochs: int, batch_size: int) -> None:
    """Refuse a training whose tensors exceed the memory limit or whose work the time limit.

    Memory (float64): parameters with their gradients and two Adam moments
    (4 x weights), the activations of a batch kept for the backward pass and
    the test set's forward pass.  Time: forward and backward, about 3
    multiply-adds per weight, training input and epoch.
    """
    weights = network_bytes(sizes) // 8
    nbytes = 8 * (4 * weights + 3 * min(batch_size, n_train) * sum(sizes) + 2 * n_test * max(sizes))
    check_memory(nbytes, f"training a {'-'.join(map(str, sizes))} network (hidden widths)",
                 "use smaller hidden widths")
    check_run_time(3.0 * epochs * n_train * weights,
                   f"training a {'-'.join(map(str, sizes))} network for {epochs} epochs on {n_train} inputs",
                   "use smaller hidden widths or fewer epochs")


def _init_params(torch, sizes, generator):
    """PyTorch's default dense-layer initialisation, drawn from ``generator``."""
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(n_in)
        w = (torch.rand(n_out, n_in, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        b = (torch.rand(n_out, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        params.append((w.requires_grad_(), b.requires_grad_()))
    return params


def _forward(torch, params, functions, y, layer_noise, generator):
    """Outputs of the last layer; with ``layer_noise`` the noise of docs/model.md §2 is injected."""
    for (w, b), f, noise in zip(params, functions, layer_noise or [None] * len(params)):
        z = y @ w.T + b
        if noise is None or noise.is_zero:
            y = f(z)
        elif noise.placement == "pre":
            y = f(_apply_noise(torch, z, noise, generator))
        else:
            y = _apply_noise(torch, f(z), noise, generator)
    return y


def _apply_noise(torch, values, noise: Noise, generator):
    """values * (1 + xi_MU + xi_MC) + xi_AU + xi_AC for a batch (B, N).

    Uncorrelated terms are drawn per neuron and sample (B, N), correlated
    ones per sample and shared by the layer (B, 1); intensities are variances.
    """
    batch, width = values.shape

    def draw(intensity, shape):
        return math.sqrt(intensity) * torch.randn(*shape, generator=generator, dtype=values.dtype)

    if noise.has_multiplicative:
        gain = 1.0
        if noise.MU:
            gain = gain + draw(noise.MU, (batch, width))
        if noise.MC:
            gain = gain + draw(noise.MC, (batch, 1))
        values = values * gain
    if noise.AU:
        values = values + draw(noise.AU, (batch, width))
    if noise.AC:
        values = values + draw(noise.AC, (batch, 1))
    return values


def _torch_activation(torch, f: Activation):
    """The PyTorch counterpart of a noiseprop activation (same parameters)."""
    return f.torch_function(torch)


@contextlib.contextmanager
def _deterministic_torch(torch):
    """One thread and deterministic algorithms inside, the caller's settings restored after."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)





def _widths(hidden) -> tuple[int, ...]:
    try:
        widths = tuple(hidden)
    except TypeError:
        raise ValueError(f"hidden must be a sequence of layer widths, got {hidden!r}") from None
    return tuple(positive_int(f"hidden[{i}]", n) for i, n in enumerate(widths))


def _layer_activation(field_name: str, spec) -> Activation:
    try:
        return get_activation(spec)
    except ValueError as err:
        raise ValueError(f"{field_name}: {err}") from None
