"""Data loaders: the digits split and scaling; IDX files (plain and gzipped) that the
tests write themselves."""
import gzip
import struct

import numpy as np
import pytest

from noiseprop.io.datasets import DIGITS_SPLIT_SEED, DIGITS_TEST_SIZE, IDX_FILES, load_digits, load_idx


def test_digits_split_and_scaling():
    from sklearn.datasets import load_digits as sklearn_digits

    X_train, y_train, X_test, y_test = load_digits()
    assert X_train.shape == (1797 - DIGITS_TEST_SIZE, 64) and X_test.shape == (DIGITS_TEST_SIZE, 64)
    assert y_train.dtype == np.int64 and set(np.unique(y_test)) == set(range(10))
    raw = sklearn_digits()
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(1797)
    np.testing.assert_array_equal(np.vstack([X_train, X_test]), raw.data[order] / 16.0)
    np.testing.assert_array_equal(np.concatenate([y_train, y_test]), raw.target[order])
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    again = load_digits()
    assert all(np.array_equal(a, b) for a, b in zip(again, (X_train, y_train, X_test, y_test)))


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic 00 00 08 ndim, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder, gz_roles=(), n_train=5, n_test=3, rows=4, cols=3):
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, rows, cols)),
        "train_labels": rng.integers(0, 10, n_train),
        "test_images": rng.integers(0, 256, (n_test, rows, cols)),
        "test_labels": rng.integers(0, 10, n_test),
    }
    for role, array in arrays.items():
        data = idx_bytes(array)
        if role in gz_roles:
            (folder / f"{IDX_FILES[role]}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / IDX_FILES[role]).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz_roles", [(), tuple(IDX_FILES), ("train_images", "test_labels")])
def test_idx_round_trip_plain_and_gzipped(tmp_path, gz_roles):
    arrays = write_idx_folder(tmp_path, gz_roles)
    X_train, y_train, X_test, y_test = load_idx(tmp_path)
    np.testing.assert_array_equal(X_train, arrays["train_images"].reshape(5, 12) / 255.0)
    np.testing.assert_array_equal(X_test, arrays["test_images"].reshape(3, 12) / 255.0)
    np.testing.assert_array_equal(y_train, arrays["train_labels"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])
    assert X_train.dtype == np.float64 and y_train.dtype == np.int64


def test_idx_pixels_are_flattened_row_by_row(tmp_path):
    arrays = write_idx_folder(tmp_path)
    X_train = load_idx(tmp_path)[0]
    image = arrays["train_images"][2]
    assert X_train[2, 1 * 3 + 2] == image[1, 2] / 255.0


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(ValueError, match="IDX data folder .*nowhere does not exist"):
        load_idx(tmp_path / "nowhere")
    write_idx_folder(tmp_path)
    with pytest.raises(ValueError, match="IDX data folder .*train-images-idx3-ubyte is not a folder"):
        load_idx(tmp_path / IDX_FILES["train_images"])
    (tmp_path / IDX_FILES["test_labels"]).unlink()
    with pytest.raises(ValueError, match=r"missing IDX file t10k-labels-idx1-ubyte \(or t10k-labels-idx1-ubyte.gz\)"):
        load_idx(tmp_path)


def test_malformed_files_name_the_file_and_the_problem(tmp_path):
    write_idx_folder(tmp_path)
    images = tmp_path / IDX_FILES["train_images"]
    good = images.read_bytes()
    images.write_bytes(good[:-1])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: IDX data of shape \(5, 4, 3\) "
                                         r"needs 60 bytes after the header, found 59"):
        load_idx(tmp_path)
    images.write_bytes(bytes([0, 0, 0x0D, 3]) + good[4:])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: not an unsigned-byte IDX file with 3 "
                                         "dimension.*magic number 00 00 0d 03, expected 00 00 08 03"):
        load_idx(tmp_path)
    images.write_bytes(b"")
    with pytest.raises(ValueError, match=r"magic number \(empty file\)"):
        load_idx(tmp_path)
    images.write_bytes(good[:10])
    with pytest.raises(ValueError, match=r"truncated IDX header \(10 bytes, expected 16\)"):
        load_idx(tmp_path)
    images.unlink()
    (tmp_path / f"{IDX_FILES['train_images']}.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: cannot read IDX file"):
        load_idx(tmp_path)


def test_label_files_must_be_one_dimensional(tmp_path):
    write_idx_folder(tmp_path)
    (tmp_path / IDX_FILES["test_labels"]).write_bytes(idx_bytes(np.zeros((3, 1))))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: not an unsigned-byte IDX file with 1 dimension"):
        load_idx(tmp_path)


def test_image_and_label_counts_must_agree(tmp_path):
    write_idx_folder(tmp_path)
    (tmp_path / IDX_FILES["train_labels"]).write_bytes(idx_bytes(np.zeros(4)))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte holds 5 images but "
                                         "train-labels-idx1-ubyte holds 4 labels"):
        load_idx(tmp_path)


def test_train_and_test_images_must_have_the_same_size(tmp_path):
    write_idx_folder(tmp_path)
    (tmp_path / IDX_FILES["test_images"]).write_bytes(idx_bytes(np.zeros((3, 2, 2))))
    with pytest.raises(ValueError, match="training images have 12 pixels, test images 4"):
        load_idx(tmp_path)
