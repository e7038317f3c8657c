"""Safe file output: a result is written whole or not at all, and only where a file belongs.

Rules of every writer of noiseprop (:func:`atomic_write`, :func:`write_together`):

- The data go to a temporary file beside the target (``.NAME.PID.XXXX.tmp``),
  are flushed to disk and then renamed over the target, so that a reader
  never sees half a file.
- Targets must be regular files or new paths.  A symbolic link, device node,
  FIFO, socket or folder is refused with a :class:`UnsafeTarget` error
  (a ``ValueError``) and left exactly as it was, even with ``overwrite``:
  renaming over it would silently replace a device by a regular file, or a
  link by a copy while its target stays stale.  Write to the link's target
  (or to a regular file) explicitly instead.
- The temporary file is removed on every exit path: errors, Ctrl-C, and
  SIGTERM (turned into ``SystemExit(143)`` while a write is in progress).
  Temporary files left by a process killed with SIGKILL are removed by the
  next write to the same target (their process id is in their name).
- :func:`write_together` writes several files as one unit (a figure and its
  JSON): a kill between the renames leaves a small ``.STEM.unit`` record,
  and :func:`recover_unit` (called by the next write) removes exactly the
  files that the interrupted unit had written, so that no half unit survives.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import IO, Callable, Iterator, Sequence

__all__ = ["atomic_write", "write_together", "recover_unit", "check_target", "UnsafeTarget", "Terminated",
           "raise_terminated"]


class UnsafeTarget(ValueError):
    """An output path is a symbolic link, device, FIFO, socket or folder: refused, left as it was."""


def check_target(path: "str | os.PathLike", overwrite: bool = False) -> Path:
    """Check, before any work, that ``path`` may be written.

    Returns the path.  Raises :class:`UnsafeTarget` for anything that is not
    a regular file or a new path, ``FileExistsError`` for an existing file
    without ``overwrite``, ``FileNotFoundError`` / ``NotADirectoryError`` when
    the folder is missing, and ``ValueError`` for an empty path.
    """
    if str(path) == "":
        raise ValueError("the output path is empty")
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            raise UnsafeTarget(
                f"{path} is a symbolic link; refusing to replace it (write to its target "
                f"{os.readlink(path)!r} or to a regular file instead)"
            )
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeTarget(f"{path} is a {_kind(info.st_mode)}, not a regular file; refusing to write to it")
        if not overwrite:
            raise FileExistsError(f"{path} exists; refusing to overwrite it (ask for overwrite / --force)")
    parent = path.parent
    if not parent.is_dir():
        if parent.exists():
            raise NotADirectoryError(f"cannot write {path}: {parent} is not a folder")
        raise FileNotFoundError(f"cannot write {path}: folder {parent} does not exist")
    return path


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"  # pragma: no cover - every kind is listed


def atomic_write(
    path: "str | os.PathLike",
    write: Callable[[IO], None],
    overwrite: bool = False,
    binary: bool = True,
) -> Path:
    """Write a file through ``write(fileobj)`` into a temporary file beside
    ``path``, then rename it into place (module docstring).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False (nothing is written).
    UnsafeTarget
        If ``path`` is a symbolic link, device, FIFO, socket or folder.
    """
    path = check_target(path, overwrite)
    with _terminate_raises():
        tmp = _temporary(path, write, binary)
        try:
            check_target(path, overwrite)  # again: the target may have changed meanwhile
            os.replace(tmp, path)
        except BaseException:
            _remove(tmp)
            raise
    return path


def write_together(
    items: Sequence[tuple["str | os.PathLike", Callable[[IO], None]]],
    overwrite: bool = False,
) -> list[Path]:
    """Write several files as one unit: all of them or none (module docstring).

    Parameters
    ----------
    items : sequence of (path, write)
        Every path in the same folder; ``write(fileobj)`` writes its bytes.
    overwrite : bool
        Replace existing regular files.

    Returns
    -------
    list of Path
    """
    paths = [Path(p) for p, _ in items]
    if len({p.parent for p in paths}) != 1:
        raise ValueError(f"write_together: the files must share one folder, got {[str(p) for p in paths]}")
    recover_unit(paths)
    for path in paths:
        check_target(path, overwrite)
    marker = _unit_marker(paths)
    temporaries: list[str] = []
    with _terminate_raises():
        try:
            for path, (_, write) in zip(paths, items):
                temporaries.append(_temporary(path, write, binary=True))
            for path in paths:
                check_target(path, overwrite)
            record = {"files": [p.name for p in paths], "sha256": [_digest(t) for t in temporaries]}
            _write_marker(marker, record)
            for tmp, path in zip(temporaries, paths):
                os.replace(tmp, path)
            _remove(str(marker))
        except BaseException:
            for tmp in temporaries:
                _remove(tmp)
            recover_unit(paths)  # remove what this unit renamed into place already
            raise
    return paths


def recover_unit(paths: Sequence["str | os.PathLike"]) -> list[Path]:
    """Remove the files of an interrupted :func:`write_together` of ``paths``.

    Only files whose content matches what the interrupted unit wrote (by
    SHA-256, from its ``.STEM.unit`` record) are removed; other files are
    left alone.  Returns the removed paths.
    """
    paths = [Path(p) for p in paths]
    marker = _unit_marker(paths)
    removed = []
    try:
        record = json.loads(marker.read_text())
        written = dict(zip(record["files"], record["sha256"]))
    except FileNotFoundError:
        return removed
    except (OSError, ValueError, KeyError, TypeError):
        written = {}
    for path in paths:
        if path.name in written and path.is_file() and not path.is_symlink() and _digest(path) == written[path.name]:
            _remove(str(path))
            removed.append(path)
    _remove(str(marker))
    return removed


# ------------------------------------------------------------------ helpers


def _temporary(path: Path, write: Callable[[IO], None], binary: bool) -> str:
    """A flushed temporary file beside ``path`` holding what ``write`` writes; its name."""
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the usual umask permissions.
        os.chmod(tmp, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def _remove_stale_temporaries(path: Path) -> None:
    """Remove ``.NAME.PID.*.tmp`` files beside ``path`` left by processes that no longer run."""
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            _remove(os.path.join(path.parent, name))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _remove(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)


def _unit_marker(paths: Sequence[Path]) -> Path:
    return paths[0].parent / f".{paths[0].stem}.unit"


def _write_marker(marker: Path, record: dict) -> None:
    text = json.dumps(record).encode()
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _digest(path: "str | os.PathLike") -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


class Terminated(SystemExit):
    """SIGTERM during a write: unwinds (removing temporary files) and exits with 143."""


def raise_terminated(signum, frame):
    raise Terminated(128 + signum)


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """SIGTERM raises (so that ``finally`` blocks run) while a write is in progress.

    Only where Python lets us (the main thread) and only when no handler of
    the application is installed; SIGINT already raises KeyboardInterrupt.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except (ValueError, AttributeError):  # pragma: no cover - platforms without SIGTERM
        yield
        return
    install = previous in (signal.SIG_DFL, None)
    if install:
        signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        if install:
            signal.signal(signal.SIGTERM, previous)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
