"""Data sets for training and analysing networks; nothing is downloaded.

- :func:`load_digits`: scikit-learn's bundled 8x8 handwritten digits
  (1797 images, 10 classes), with a fixed train/test split.
- :func:`load_idx`: MNIST-format IDX files (MNIST, Fashion-MNIST), plain or
  gzipped, from a local folder.

Every loader returns ``(X_train, y_train, X_test, y_test)``: X of shape
(n_samples, n_pixels), float64 in [0, 1]; y of shape (n_samples,), int64 class
labels.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["load_digits", "load_idx", "DIGITS_SPLIT_SEED", "DIGITS_TEST_SIZE", "IDX_FILES"]

#: Seed of the permutation that splits the digits into train and test sets.
DIGITS_SPLIT_SEED = 0
#: Number of digits images in the test set (the other 1347 are for training).
DIGITS_TEST_SIZE = 450

#: The four files of an MNIST-format folder, by role (each may end in ``.gz``).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# IDX magic numbers: 0x0000 08 0n = unsigned bytes with n dimensions.
_IDX_UBYTE = 0x08


def load_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits bundled with scikit-learn, split in two.

    Split: the 1797 images are permuted with
    ``np.random.default_rng(DIGITS_SPLIT_SEED).permutation(1797)``; the first
    1347 are the training set and the last :data:`DIGITS_TEST_SIZE` = 450 the
    test set (always the same images).

    Scaling: the raw pixels are integers 0..16 (counts of set pixels in 4x4
    blocks of the original 32x32 bitmaps); they are divided by 16, so every
    pixel lies in [0, 1].

    Returns
    -------
    X_train : ndarray (1347, 64), float64 in [0, 1]
    y_train : ndarray (1347,), int64 digits 0..9
    X_test : ndarray (450, 64), float64 in [0, 1]
    y_test : ndarray (450,), int64 digits 0..9

    Raises
    ------
    ImportError
        When scikit-learn is not installed (extra ``train`` or ``test``).
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError(
            "load_digits needs scikit-learn: pip install 'noiseprop[train]'"
        ) from None
    bunch = sklearn_digits()
    X = np.asarray(bunch.data, dtype=float) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(y))
    train, test = order[:-DIGITS_TEST_SIZE], order[-DIGITS_TEST_SIZE:]
    return X[train], y[train], X[test], y[test]


def load_idx(directory: "str | os.PathLike") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read an MNIST-format data set (MNIST, Fashion-MNIST) from a folder.

    The folder holds the four files of :data:`IDX_FILES`
    (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), each plain or
    gzipped (name + ``.gz``).  Debian's package ``dataset-fashion-mnist``
    installs such a folder.

    Scaling: pixels are bytes 0..255, divided by 255 into [0, 1]; each image
    of R x C pixels is flattened row by row to R*C values.

    Returns
    -------
    X_train : ndarray (n_train, R*C), float64 in [0, 1]
    y_train : ndarray (n_train,), int64
    X_test : ndarray (n_test, R*C), float64 in [0, 1]
    y_test : ndarray (n_test,), int64

    Raises
    ------
    ValueError
        Naming the file when it is missing, not an unsigned-byte IDX file of
        the expected number of dimensions, truncated, or when images and
        labels disagree in number.
    """
    directory = Path(directory)
    if not directory.is_dir():
        problem = "is not a folder" if directory.exists() else "does not exist"
        raise ValueError(f"IDX data folder {directory} {problem}")
    arrays = {role: _read_idx(_find_idx_file(directory, name), ndim=3 if "images" in role else 1)
              for role, name in IDX_FILES.items()}
    result = []
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if len(images) != len(labels):
            raise ValueError(
                f"{directory}: {IDX_FILES[part + '_images']} holds {len(images)} images but "
                f"{IDX_FILES[part + '_labels']} holds {len(labels)} labels"
            )
        result += [images.reshape(len(images), -1) / 255.0, labels.astype(np.int64)]
    if result[0].shape[1] != result[2].shape[1]:
        raise ValueError(
            f"{directory}: training images have {result[0].shape[1]} pixels, "
            f"test images {result[2].shape[1]}"
        )
    return tuple(result)


def _find_idx_file(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise ValueError(f"{directory}: missing IDX file {name} (or {name}.gz)")


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read one unsigned-byte IDX file with ``ndim`` dimensions."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot read IDX file ({err})") from None
    header_size = 4 + 4 * ndim
    expected_magic = f"00 00 {_IDX_UBYTE:02x} {ndim:02x}"
    if len(raw) < 4 or raw[0:2] != b"\0\0" or raw[2] != _IDX_UBYTE or raw[3] != ndim:
        found = " ".join(f"{b:02x}" for b in raw[:4])
        raise ValueError(
            f"{path}: not an unsigned-byte IDX file with {ndim} dimension(s): "
            f"magic number {found or '(empty file)'}, expected {expected_magic}"
        )
    if len(raw) < header_size:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, expected {header_size})")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    size = int(np.prod(shape))
    if len(raw) - header_size != size:
        raise ValueError(
            f"{path}: IDX data of shape {shape} needs {size} bytes after the header, "
            f"found {len(raw) - header_size}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)
