"""Produce ``default_network.npz``, the network of :func:`noiseprop.default_network`.

A 64-100-100-100-10 MLP (sigmoid hidden layers, linear output) trained with
:func:`noiseprop.studies.training.train_mlp` on the 8x8 digits of
:func:`noiseprop.io.datasets.load_digits` (seed 0, Adam, lr 1e-3, batch 32,
150 epochs, no noise).  The stored input ``x`` is the first test image
(``X_test[0]``, a digit 8).

Run from the repository root (needs the ``train`` extra)::

    python noiseprop/data/generate_default_network.py --force

The same seed gives the same weights on the same machine and PyTorch build
(one thread, deterministic algorithms, float64); other CPUs may differ in the
last bits.
"""
from __future__ import annotations

import argparse
from pathlib import Path

SETTINGS = dict(hidden=(100, 100, 100), activation="sigmoid", output="linear",
                epochs=150, batch_size=32, lr=1e-3, seed=0)
OUTPUT = Path(__file__).with_name("default_network.npz")


def main(argv=None) -> None:
    from noiseprop.io.datasets import load_digits
    from noiseprop.io.networks import save_network
    from noiseprop.studies.training import train_mlp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    X_train, y_train, X_test, y_test = load_digits()
    result = train_mlp(X_train, y_train, X_test, y_test, **SETTINGS)
    save_network(OUTPUT, result.network, X_test[0], overwrite=args.force)
    print(f"wrote {OUTPUT}: {result.network}, test accuracy {result.test_accuracy:.4f} "
          f"({round(result.test_accuracy * len(y_test))}/{len(y_test)}); x = X_test[0], label {y_test[0]}")


if __name__ == "__main__":
    main()
