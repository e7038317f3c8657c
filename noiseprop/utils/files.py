"""Atomic file output: a result is either written whole or not at all."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable

__all__ = ["atomic_write"]


def atomic_write(
    path: "str | os.PathLike",
    write: Callable[[IO], None],
    overwrite: bool = False,
    binary: bool = True,
) -> Path:
    """Write a file through ``write(fileobj)`` into a temporary file beside
    ``path``, then rename it into place.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False (nothing is written).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; refusing to overwrite it (ask for overwrite)")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the usual umask permissions.
        os.chmod(tmp, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
