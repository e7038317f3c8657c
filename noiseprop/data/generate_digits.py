"""Produce ``digits.npz``, the 8x8 handwritten digits of :func:`noiseprop.io.datasets.load_digits`.

The images are scikit-learn's bundled copy of the UCI "Optical Recognition of
Handwritten Digits" test set (1797 images of 8x8 pixels, integers 0..16,
10 classes), distributed under scikit-learn's BSD 3-clause license
(Copyright (c) 2007-2024 The scikit-learn developers).  They are stored
unchanged, in scikit-learn's order, so that :func:`load_digits` needs NumPy
alone:

- ``images``: uint8 array (1797, 64), the raw pixel counts 0..16;
- ``labels``: uint8 array (1797,), the digit 0..9 of each image.

Run from the repository root (needs scikit-learn)::

    python noiseprop/data/generate_digits.py --force
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

OUTPUT = Path(__file__).with_name("digits.npz")


def main(argv=None) -> None:
    from noiseprop.utils.files import atomic_write
    from noiseprop.utils.optional import require

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    bunch = require("sklearn.datasets", "test-all", "generating the digits file").load_digits()
    images = np.asarray(bunch.data)
    labels = np.asarray(bunch.target)
    if images.shape != (1797, 64) or not np.array_equal(images, np.round(images)) \
            or images.min() < 0 or images.max() > 16:
        raise SystemExit(f"unexpected digits data: shape {images.shape}, range {images.min()}..{images.max()}")
    atomic_write(OUTPUT, lambda handle: np.savez_compressed(
        handle, images=images.astype(np.uint8), labels=labels.astype(np.uint8)), overwrite=args.force)
    print(f"wrote {OUTPUT}: {images.shape[0]} images, {OUTPUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
