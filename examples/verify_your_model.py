"""Verifying one's own trained PyTorch or ONNX model.

Imports a trained model into noiseprop and verifies the analytic noise
prediction layer by layer against Monte Carlo (``noiseprop.verify``): the
table shows predicted and simulated noise variance with standard errors and
a pass/fail per layer.

- ``--onnx FILE``: your ONNX model (a chain of MatMul/Gemm/Add and
  Sigmoid/Tanh/Relu/Erf nodes; extra ``onnx``).
- otherwise: a small PyTorch ``nn.Sequential`` trained here on the bundled
  digits stands in for your PyTorch model (extra ``train``).

``--save FILE.npz`` stores the imported network in noiseprop's .npz format,
so that the shell can do the same: ``noiseprop verify FILE.npz``.

Run: ``python examples/verify_your_model.py [--onnx model.onnx] [--fast] [--save model.npz]``
"""
import argparse

from noiseprop import Noise, verify
from noiseprop.io.datasets import load_digits
from noiseprop.io.networks import from_torch, load_model, save_network
from noiseprop.studies.accuracy import clean_accuracy

#: Intensities (variances) of the noise of every layer, e.g. from measurements.
NOISE = Noise(AU=1e-4, AC=1e-5, MU=1e-4, MC=1e-5)


def train_torch_model(epochs: int):
    """Stand-in for your model: a torch nn.Sequential trained on the digits."""
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


def main(fast: bool = False, onnx: "str | None" = None, save: "str | None" = None) -> bool:
    net = load_model(onnx) if onnx else from_torch(train_torch_model(epochs=30 if fast else 200))
    _, _, X_test, y_test = load_digits()
    print(f"{net}; test accuracy {100 * clean_accuracy(net, X_test, y_test):.1f} %")
    x = X_test[0]
    report = verify(net, NOISE, x, samples=20_000 if fast else 200_000, seed=0)
    print(report.table())
    if save:
        save_network(save, net, x)
        print(f"saved {save}; check it from the shell: noiseprop verify {save}")
    return report.passed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", metavar="FILE", help="verify this ONNX model (default: a PyTorch model trained here)")
    parser.add_argument("--fast", action="store_true", help="shorter training, fewer Monte Carlo samples")
    parser.add_argument("--save", metavar="FILE.npz", help="also store the network (.npz format)")
    args = parser.parse_args()
    raise SystemExit(0 if main(args.fast, args.onnx, args.save) else 1)
