"""Verifying one's own trained PyTorch model.

Trains a small PyTorch MLP on the bundled 8x8 digits (stand-in for your own
model), hands its weights to noiseprop, and verifies the analytic noise
prediction layer by layer against Monte Carlo (``noiseprop.verify``): the
table shows predicted and simulated noise variance with standard errors and
a pass/fail per layer.  ``--save FILE.npz`` stores the network in the .npz
format, so that the shell can do the same: ``noiseprop verify FILE.npz``.

Needs PyTorch (``pip install -e ".[train]"``).

Run: ``python examples/verify_your_model.py [--fast] [--save model.npz]``
"""
import argparse

import numpy as np

from noiseprop import Network, Noise, verify
from noiseprop.datasets import load_digits
from noiseprop.io import save_network

ACTIVATIONS = {"Tanh": "tanh", "Sigmoid": "sigmoid", "ReLU": "relu"}


def train_torch_model(epochs: int):
    """Your model: a torch nn.Sequential of Linear layers and activations."""
    import torch

    torch.manual_seed(0)
    X, y, _, _ = load_digits()
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.Tanh(),
        torch.nn.Linear(32, 32), torch.nn.Tanh(),
        torch.nn.Linear(32, 10),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    inputs, labels = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    for _ in range(epochs):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), labels).backward()
        optimiser.step()
    return model


def to_network(model) -> Network:
    """nn.Sequential -> Network: W_k = Linear.weight (N_k x N_{k-1}), b_k = Linear.bias;
    each Linear takes the activation that follows it (none: linear)."""
    layers = list(model)
    weights, biases, activations = [], [], []
    for i, layer in enumerate(layers):
        if type(layer).__name__ != "Linear":
            continue
        weights.append(layer.weight.detach().double().numpy())
        biases.append(layer.bias.detach().double().numpy())
        following = type(layers[i + 1]).__name__ if i + 1 < len(layers) else None
        activations.append(ACTIVATIONS.get(following, "linear"))
    return Network.from_arrays(weights, biases, activations)


def main(fast: bool = False, save: "str | None" = None) -> bool:
    model = train_torch_model(epochs=30 if fast else 200)
    net = to_network(model)
    _, _, X_test, y_test = load_digits()
    accuracy = np.mean(net.forward(X_test)[-1].argmax(axis=1) == y_test)
    print(f"{net}; test accuracy {100 * accuracy:.1f} %")
    x = X_test[0]
    noise = Noise(AU=1e-4, AC=1e-5, MU=1e-4, MC=1e-5)
    report = verify(net, noise, x, samples=20_000 if fast else 200_000, seed=0)
    print(report.table())
    if save:
        save_network(save, net, x)
        print(f"saved {save}; check it from the shell: noiseprop verify {save}")
    return report.passed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="shorter training, fewer Monte Carlo samples")
    parser.add_argument("--save", metavar="FILE.npz", help="also store the network (.npz format)")
    args = parser.parse_args()
    raise SystemExit(0 if main(args.fast, args.save) else 1)
