"""Reading NumPy files that may be hostile or broken, safely.

:func:`read_npz` and :func:`read_npy` check what a file declares before
anything is decompressed or allocated: every archive member's uncompressed
size (from the zip directory) and every array's shape and dtype (from the
``.npy`` header) are compared with the memory limit
(:mod:`noiseprop.utils.resources`), with the bytes the file really holds
(a header that claims 100000 x 100000 over 64 bytes is corrupt), and with
the compressed size (a member that inflates more than
:data:`MAX_COMPRESSION_RATIO` times to over 64 MiB is refused as a
decompression bomb).  Every failure, whatever the library raises (zip,
zlib, EOF, missing key), becomes one ``ValueError`` naming the file.
Pickled (object) arrays are never loaded.
"""
from __future__ import annotations

import math
import os
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..utils.resources import ResourceLimit, check_memory, format_bytes, memory_limit

__all__ = ["read_npz", "read_npy", "read_vector", "MAX_COMPRESSION_RATIO"]

#: Largest ratio of uncompressed to compressed size of an archive member above 64 MiB.
MAX_COMPRESSION_RATIO = 500
_BOMB_FLOOR = 64 * 1024**2
#: Errors that NumPy, zipfile and zlib raise for broken files.
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, RuntimeError,
                NotImplementedError, OverflowError, TypeError, UnicodeDecodeError)


def read_npz(
    path: "str | os.PathLike",
    what: str = "archive",
    required: "tuple[str, ...]" = (),
    max_memory: "str | int | None" = None,
) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` archive, after the checks of the module docstring.

    Parameters
    ----------
    path : str or path
    what : str
        What the file is, for messages ("network file", "data set").
    required : tuple of str
        Arrays that must be present (a ValueError lists what the file holds).
    max_memory : size, optional
        Memory limit for this read (see :func:`noiseprop.utils.resources.parse_size`).

    Raises
    ------
    ValueError
        Naming the file and what is wrong (ResourceLimit for sizes over the limit).
    """
    path = _existing(path, what)
    with memory_limit(max_memory):
        try:
            with zipfile.ZipFile(path) as archive:
                declared = _declared_sizes(archive, path)
            missing = [key for key in required if key not in declared]
            if missing:
                raise ValueError(
                    f"{path} lacks the array(s) {', '.join(missing)} (it holds: {', '.join(sorted(declared)) or 'nothing'})"
                )
            check_memory(sum(declared.values()), f"{what} {path} (arrays {', '.join(sorted(declared))})")
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except ResourceLimit:
            raise
        except _READ_ERRORS as err:
            if isinstance(err, ValueError) and str(err).startswith(str(path)):
                raise
            raise ValueError(f"{path} is not a readable .npz {what} ({_describe(err)})") from None


def read_npy(path: "str | os.PathLike", what: str = "array file", max_memory: "str | int | None" = None) -> np.ndarray:
    """One array from a ``.npy`` file, its header checked against the file size and the memory limit."""
    path = _existing(path, what)
    with memory_limit(max_memory):
        try:
            with open(path, "rb") as handle:
                nbytes, label = _npy_header(handle, path.name)
                available = os.fstat(handle.fileno()).st_size - handle.tell()
            _check_declared(path, label, nbytes, available)
            check_memory(nbytes, f"{what} {path} ({label})")
            return np.load(path, allow_pickle=False)
        except ResourceLimit:
            raise
        except _READ_ERRORS as err:
            if isinstance(err, ValueError) and str(err).startswith(str(path)):
                raise
            raise ValueError(f"{path} is not a readable .npy {what} ({_describe(err)})") from None


def read_vector(path: "str | os.PathLike", what: str = "input vector") -> np.ndarray:
    """A vector from a ``.npy`` file or a text file of numbers (checked like :func:`read_npy`)."""
    path = _existing(path, what)
    if path.suffix.lower() == ".npy":
        array = read_npy(path, what)
    else:
        # text: at most one number per two bytes, parsed into float64 (and loadtxt's lists)
        check_memory(path.stat().st_size * 40, f"{what} {path} (text of {format_bytes(path.stat().st_size)})")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
                array = np.loadtxt(path, ndmin=1)
        except _READ_ERRORS as err:
            raise ValueError(f"cannot read {what} from {path} ({_describe(err)})") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what} {path} must hold real numbers, got dtype {array.dtype}")
    if array.size == 0:
        raise ValueError(f"{what} {path} is empty")
    return array


# ------------------------------------------------------------------ helpers


def _existing(path, what: str) -> Path:
    if str(path) == "":
        raise ValueError(f"{what}: the path is empty")
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{what} {path} does not exist")
    if not path.is_file():
        raise ValueError(f"{what} {path} is not a regular file")
    return path


def _describe(err: BaseException) -> str:
    """One line: the error's type and first line ("empty or truncated" when it has no text)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else 'the file is empty or truncated'}"


def _declared_sizes(archive: zipfile.ZipFile, path: Path) -> dict[str, int]:
    """Bytes each member declares (array name -> bytes), checked as in the module docstring."""
    sizes = {}
    for info in archive.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if info.file_size > _BOMB_FLOOR and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise ValueError(
                f"{path}: member {info.filename!r} inflates {format_bytes(info.compress_size)} to "
                f"{format_bytes(info.file_size)} (more than {MAX_COMPRESSION_RATIO} times: a decompression "
                "bomb?); save the arrays with np.savez (uncompressed) if they are genuine"
            )
        nbytes = info.file_size
        if info.filename.endswith(".npy"):
            check_memory(info.file_size, f"{path}: member {info.filename!r}")
            with archive.open(info) as member:
                nbytes, label = _npy_header(member, info.filename)
                _check_declared(path, f"member {name!r} {label}", nbytes, info.file_size - member.tell())
        sizes[name] = max(nbytes, info.file_size)
    return sizes


def _npy_header(handle, name: str) -> tuple[int, str]:
    """Declared bytes of the array whose ``.npy`` header starts at ``handle``, and a description."""
    fmt = np.lib.format
    version = fmt.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = fmt.read_array_header_1_0(handle)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = fmt.read_array_header_2_0(handle)
    else:
        raise ValueError(f"{name}: unsupported .npy format version {version}")
    if dtype.hasobject:
        raise ValueError(f"{name} holds Python objects (a pickle); only numeric arrays are read")
    count = math.prod(int(n) for n in shape)
    nbytes = count * dtype.itemsize
    return nbytes, f"shape {tuple(shape)} {dtype} ({format_bytes(nbytes)})"


def _check_declared(path: Path, label: str, nbytes: int, available: int) -> None:
    if nbytes > available:
        raise ValueError(
            f"{path}: {label} is declared, but the file holds only {format_bytes(max(available, 0))} "
            "of data: the file is truncated or corrupt"
        )
