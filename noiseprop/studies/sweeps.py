"""Parameter sweeps through any :class:`concurrent.futures.Executor`.

:func:`sweep` evaluates a function at every point of a parameter grid, on
local processes by default or on any executor (threads, a Dask distributed
cluster through :func:`dask_executor` for several machines).  Finished points
are appended to a journal as they come in, and a sweep started again with the
same file computes only the points that are missing, so an interrupted sweep
resumes where it stopped.

Results file (``path``)
-----------------------
The record of a sweep is an append-only **journal** in JSON Lines: the file
itself when ``path`` ends in ``.jsonl``; ``PATH.jsonl`` beside a ``.csv`` or
``.json`` ``path``, which is then a table *view* rewritten atomically from
the journal (at most every ``checkpoint_interval`` seconds and at the end).

- First line: ``{"noiseprop_sweep": 1, "parameters": [names]}``; then one
  line per finished point: ``{"point": {...}, "result": {...}, "types":
  {name: tag}}`` with the tags ``bool``, ``int``, ``float``, ``str``,
  ``none`` and ``float:nan``, ``float:inf``, ``float:-inf`` (the value is
  then ``null``: standard JSON has no NaN).  Values come back with their
  types on resume: ``True`` stays a bool, ``'2'`` a string, ``''`` an empty
  string, ``None`` None, 1.0 a float.
- Points are matched by type and value: ``1``, ``1.0``, ``"1"``, ``True``
  are four different points.  The last line of a point wins.
- Every append holds an exclusive ``fcntl.flock`` lock on the journal, so
  several processes (or machines on a file system with working locks) can
  sweep into one file: no row is lost, and each view is rebuilt from the
  whole journal under the same lock.
- The journal (and the view's folder) is checked writable before the first
  point is computed.  If saving fails later (disk full, folder removed), a
  warning says so, computing goes on and the rows are still returned.
- A line cut short by a crash (SIGKILL, power loss) is skipped on reading.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import io
import itertools
import json
import math
import os
import pickle
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

import numpy as np
from tqdm.auto import tqdm

from ..utils.files import atomic_write, check_target
from ..utils.jsonutil import dumps
from ..utils.resources import check_memory

__all__ = ["sweep", "grid_points", "dask_executor", "SweepError", "journal_path"]

Scalar = Union[bool, int, float, str]
Grid = Union[Mapping[str, Sequence[Any]], Sequence[Mapping[str, Any]]]
_FORMATS = (".csv", ".json", ".jsonl")
#: Estimated bytes per parameter value of a grid point held in memory (dict entry, boxed value).
_BYTES_PER_VALUE = 200


class SweepError(RuntimeError):
    """A sweep point failed; ``point`` holds its parameters.  The points
    finished before it are already in the results file."""

    def __init__(self, point: dict, error: BaseException):
        super().__init__(f"sweep point {point} failed: {type(error).__name__}: {error}")
        self.point = point


def grid_points(grid: Grid) -> list[dict]:
    """The points of a grid, in order.

    Parameters
    ----------
    grid : mapping of str to sequence, or sequence of mappings
        ``{"depth": [2, 4], "D": [1e-4, 1e-3]}`` gives the Cartesian product
        (the last name varies fastest); a sequence of dicts gives the points
        themselves (all with the same names).  Values are scalars: bool, int,
        float or str (NumPy scalars are converted).

    Returns
    -------
    list of dict

    Examples
    --------
    >>> grid_points({"a": [1, 2], "b": ["x", "y"]})
    [{'a': 1, 'b': 'x'}, {'a': 1, 'b': 'y'}, {'a': 2, 'b': 'x'}, {'a': 2, 'b': 'y'}]
    """
    if isinstance(grid, Mapping):
        names = list(grid)
        for name in names:
            values = grid[name]
            if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
                raise ValueError(f"grid: values of {name!r} must be a sequence, got {type(values).__name__}")
            if len(values) == 0:
                raise ValueError(f"grid: {name!r} has no values")
        count = math.prod(len(grid[n]) for n in names)
        check_memory(count * (len(names) + 1) * _BYTES_PER_VALUE,
                     f"a grid of {count} points ({' x '.join(str(len(grid[n])) for n in names)})",
                     "sweep fewer values")
        points = [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]
    elif isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)):
        points = [dict(p) if isinstance(p, Mapping) else _not_a_point(i, p) for i, p in enumerate(grid)]
        names = list(points[0]) if points else []
        for i, point in enumerate(points):
            if list(point) != names:
                raise ValueError(f"grid point {i} has parameters {list(point)}, point 0 has {names}")
    else:
        raise ValueError(f"grid must be a dict of value lists or a list of dicts, got {type(grid).__name__}")
    if not points:
        raise ValueError("grid has no points")
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"grid parameter names must be non-empty strings, got {name!r}")
    return [{name: _scalar(name, value) for name, value in point.items()} for point in points]


def sweep(
    function: Callable[..., Any],
    grid: Grid,
    executor: "cf.Executor | None" = None,
    path: "str | os.PathLike | None" = None,
    *,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    max_workers: "int | None" = None,
    checkpoint_interval: float = 1.0,
) -> list[dict]:
    """Evaluate ``function(**point)`` at every point of ``grid``.

    Parameters
    ----------
    function : callable
        Called with the point's parameters as keyword arguments; returns a
        dict of scalar results (names different from the parameters) or one
        scalar (stored as ``"value"``).  It must be picklable (a module-level
        function) for process and Dask executors; for repeatable random
        results it takes its seed from the point.
    grid : dict of sequences or sequence of dicts
        See :func:`grid_points`.
    executor : concurrent.futures.Executor, optional
        Where the points run: any executor, e.g. ``ThreadPoolExecutor``, or a
        Dask cluster's (:func:`dask_executor`).  It is not shut down.
        Default: a ``ProcessPoolExecutor(max_workers)`` for this call.
    path : str or path-like, optional
        Results file: ``.jsonl`` (the journal itself), or ``.csv`` / ``.json``
        (a table view, with the journal ``PATH.jsonl`` beside it); see the
        module docstring.  Every finished point is appended to the journal at
        once; the view is rewritten atomically at most every
        ``checkpoint_interval`` seconds, and always at the end or when the
        sweep stops on an error or Ctrl-C.
    resume : bool, default True
        If the journal exists, take its finished points (matched by type and
        value: 1, 1.0, "1" and True are different points) and compute only
        the others.  Rows of the journal not in ``grid`` are kept.
    overwrite : bool, default False
        With ``resume=False``: start the journal and view afresh (otherwise
        FileExistsError before anything is computed).
    progress : bool, default True
        Show a progress bar (tqdm).
    max_workers : int, optional
        Processes of the default executor (default: the number of CPUs).
    checkpoint_interval : float, default 1.0
        Shortest time in seconds between two rewrites of the file.

    Returns
    -------
    list of dict
        One row per grid point, in grid order: its parameters and results.
        Results of resumed points are read back from the journal with their
        types.  Rows are returned even when saving failed (with a warning).

    Raises
    ------
    SweepError
        When ``function`` fails at a point; the points finished so far are
        written first, so that running the sweep again resumes.
    ValueError
        For a bad grid, a bad file suffix, a journal whose parameters do not
        match the grid's, a view without its journal, or an output that is
        a symbolic link, device or FIFO.
    OSError
        If the folder of ``path`` does not exist or is not writable (before
        anything is computed).

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> def area(width, height):
    ...     return {"area": width * height}
    >>> with ThreadPoolExecutor(2) as pool:
    ...     rows = sweep(area, {"width": [1, 2], "height": [3]}, executor=pool, progress=False)
    >>> rows
    [{'width': 1, 'height': 3, 'area': 3}, {'width': 2, 'height': 3, 'area': 6}]
    """
    if not callable(function):
        raise ValueError(f"function must be callable, got {type(function).__name__}")
    points = grid_points(grid)
    names = list(points[0])
    store = _Journal(path, names, points) if path is not None else None
    done: dict[tuple, dict] = {}
    if store is not None:
        done = store.prepare(resume=resume, overwrite=overwrite)
    todo = [p for p in points if _key(p, names) not in done]
    if todo:
        with _executor_for(executor, function, max_workers) as pool:
            _run(function, todo, names, pool, done, store, progress, len(points), checkpoint_interval)
    elif store is not None:
        store.checkpoint(final=True)
    return [{**point, **_results(done[_key(point, names)], names)} for point in points]


@contextlib.contextmanager
def dask_executor(address: "str | None" = None, **cluster_options) -> Iterator[cf.Executor]:
    """A Dask distributed cluster's executor, for :func:`sweep` across machines.

    Parameters
    ----------
    address : str, optional
        The scheduler to connect to, e.g. ``"tcp://scheduler:8786"`` (start
        it with ``dask scheduler`` and the workers with ``dask worker
        ADDRESS`` on each machine).  Without it, a ``LocalCluster`` is started
        on this machine with ``cluster_options`` (e.g. ``n_workers=4``).

    Yields
    ------
    concurrent.futures.Executor
        Closed, with the client and any local cluster, on leaving the block.

    Examples
    --------
    >>> with dask_executor(n_workers=1, processes=False) as pool:  # doctest: +SKIP
    ...     rows = sweep(area, grid, executor=pool)
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError(
            "dask_executor needs Dask distributed: pip install 'noiseprop[dask]'"
        ) from None
    with contextlib.ExitStack() as stack:
        if address is None:
            cluster = stack.enter_context(LocalCluster(**cluster_options))
            client = stack.enter_context(Client(cluster))
        else:
            if cluster_options:
                raise ValueError("cluster options are for a local cluster; give them or an address, not both")
            client = stack.enter_context(Client(address))
        yield client.get_executor()


def _run(function, todo, names, pool, done, store, progress, total, checkpoint_interval):
    futures = {pool.submit(function, **point): point for point in todo}
    last_write = time.monotonic()
    bar = tqdm(total=total, initial=total - len(todo), disable=not progress, desc="sweep", unit="point")
    try:
        for future in cf.as_completed(futures):
            point = futures[future]
            try:
                result = _as_result(future.result(), names)
            except Exception as err:
                raise SweepError(point, err) from err
            done[_key(point, names)] = {**point, **result}
            bar.update()
            if store is not None:
                store.append(point, result)
                if time.monotonic() - last_write >= checkpoint_interval:
                    store.checkpoint()
                    last_write = time.monotonic()
    finally:
        bar.close()
        for future, point in futures.items():
            if not future.cancel():
                row = _keep_if_finished(future, point, names, done)
                if row is not None and store is not None:
                    store.append(point, _results(row, names))
        if store is not None:
            store.checkpoint(final=True)


def _keep_if_finished(future, point, names, done) -> "dict | None":
    """Record a point that finished while the sweep was stopping; its row, or None."""
    key = _key(point, names)
    if key in done or not future.done() or future.cancelled() or future.exception() is not None:
        return None
    try:
        done[key] = {**point, **_as_result(future.result(), names)}
    except ValueError:
        return None  # a bad result is reported when the point is computed again
    return done[key]


@contextlib.contextmanager
def _executor_for(executor, function, max_workers) -> Iterator[cf.Executor]:
    if executor is not None:
        if not isinstance(executor, cf.Executor):
            raise ValueError(f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}")
        yield executor
        return
    try:
        pickle.dumps(function)
    except Exception as err:
        raise ValueError(
            f"function {function!r} cannot be sent to worker processes ({err}); use a "
            "module-level function or pass executor=ThreadPoolExecutor()"
        ) from None
    pool = cf.ProcessPoolExecutor(max_workers)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _as_result(value, names) -> dict:
    if not isinstance(value, Mapping):
        value = {"value": value}
    result = {}
    for name, item in value.items():
        if not isinstance(name, str) or name in names:
            raise ValueError(f"result name {name!r} must be a string different from the parameters {names}")
        result[name] = _scalar(name, item)
    return result


def _results(row: dict, names) -> dict:
    return {k: v for k, v in row.items() if k not in names}


def _not_a_point(index: int, value):
    raise ValueError(f"grid point {index} must be a dict of parameter values, got {type(value).__name__}")


def _scalar(name: str, value) -> Scalar:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"{name!r}: sweep values must be scalars (bool, int, float, str), got {type(value).__name__}")


def _cell(value) -> str:
    """Text of a CSV cell (the CSV is a view: the journal keeps the types)."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _key(point: Mapping, names) -> tuple:
    """A point's identity: the type and value of every parameter (1, 1.0, "1", True differ)."""
    return tuple((_tag(point[name]), repr(point[name])) for name in names)


# ------------------------------------------------------------------ the journal

_JOURNAL_VERSION = 1


def _tag(value) -> str:
    """Type tag of a scalar (module docstring)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float:{value!r}"
    return type(value).__name__


def _untag(name: str, value, tag: str):
    """The value of a journal entry, checked against its tag."""
    if tag.startswith("float:"):
        return float(tag[6:])
    kinds = {"none": type(None), "bool": bool, "int": int, "float": (int, float), "str": str}
    if tag not in kinds or not isinstance(value, kinds[tag]) or (tag == "int" and isinstance(value, bool)):
        raise ValueError(f"{name!r} has the value {value!r}, which does not match its type tag {tag!r}")
    return float(value) if tag == "float" else value


def journal_path(path: "str | os.PathLike") -> Path:
    """The journal of a results file: itself for ``.jsonl``, else ``PATH.jsonl``."""
    path = Path(path)
    return path if path.suffix.lower() == ".jsonl" else path.with_name(path.name + ".jsonl")


class _Journal:
    """The append-only, locked JSON Lines record of a sweep and its optional table view."""

    def __init__(self, path, names, points):
        self.view = Path(path)
        if self.view.suffix.lower() not in _FORMATS:
            raise ValueError(f"results file {self.view} must end in one of {_FORMATS}")
        self.path = journal_path(self.view)
        if self.view == self.path:
            self.view = None
        self.names = names
        self.order = {_key(p, names): i for i, p in enumerate(points)}
        self.failed: "str | None" = None
        self.pending = False

    # -- before computing

    def prepare(self, resume: bool, overwrite: bool) -> dict:
        """Finished rows by key (empty for a new journal).  Refuses, before anything is
        computed, a missing or unwritable folder, an unsafe output and a mismatched journal."""
        existing = [p for p in (self.path, self.view) if p is not None and os.path.lexists(p)]
        for target in (self.path, self.view):
            if target is not None:
                check_target(target, overwrite=True)  # folder exists; no link, device or FIFO
        _check_writable(self.path.parent)
        if existing and not resume:
            if not overwrite:
                raise FileExistsError(
                    f"{', '.join(map(str, existing))} exist(s); resume it (resume=True) or ask for overwrite"
                )
            with self._locked() as fd:
                os.ftruncate(fd, 0)
                self._write_header(fd)
            return {}
        if self.view is not None and self.view.exists() and not self.path.exists():
            raise ValueError(
                f"cannot resume from {self.view}: its journal {self.path} is missing (the table alone does "
                "not record the types of the values); pass resume=False, overwrite=True to start afresh"
            )
        with self._locked() as fd:
            rows = self._read(fd)
            if os.fstat(fd).st_size == 0:
                self._write_header(fd)
        return {_key(row, self.names): row for row in rows}

    # -- while computing

    def append(self, point: dict, result: dict) -> None:
        """Append one finished point (a warning, not an error, if that fails)."""
        if self.failed:
            return
        values = {**point, **result}
        line = json.dumps({
            "point": {k: _plain(v) for k, v in point.items()},
            "result": {k: _plain(v) for k, v in result.items()},
            "types": {k: _tag(v) for k, v in values.items()},
        }, allow_nan=False)
        try:
            with self._locked() as fd:
                _append_line(fd, line)
        except OSError as err:
            self._fail(err)
        self.pending = True

    def checkpoint(self, final: bool = False) -> None:
        """Flush the journal to disk and rewrite the view from the whole journal."""
        if self.failed or (not self.pending and not final):
            return
        try:
            with self._locked() as fd:
                os.fsync(fd)
                if self.view is not None:
                    self._write_view(self._read(fd))
        except (OSError, ValueError) as err:
            self._fail(err)
        self.pending = False

    def _fail(self, err: BaseException) -> None:
        self.failed = f"{type(err).__name__}: {err}"
        warnings.warn(
            f"sweep: could not save results to {self.path} ({self.failed}); computing goes on and the "
            "rows are returned, but they are not saved",
            RuntimeWarning, stacklevel=3,
        )

    # -- file access

    @contextlib.contextmanager
    def _locked(self):
        """The journal's descriptor (append mode) under an exclusive flock."""
        import fcntl  # POSIX; imported here so that importing the module works everywhere

        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    def _write_header(self, fd: int) -> None:
        _append_line(fd, json.dumps({"noiseprop_sweep": _JOURNAL_VERSION, "parameters": self.names}))

    def _read(self, fd: int) -> list[dict]:
        """Every row of the journal (the last line of a point wins), types restored."""
        size = os.fstat(fd).st_size
        text = os.pread(fd, size, 0).decode("utf-8", errors="replace") if size else ""
        lines = text.split("\n")
        rows: dict[tuple, dict] = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                if number == len(lines):  # the last line, cut short by a crash: skipped
                    continue
                raise ValueError(f"cannot resume from {self.path}: line {number} is not JSON") from None
            if number == 1 or "noiseprop_sweep" in entry:
                self._check_header(entry)
                continue
            row = self._row(entry, number)
            rows[_key(row, self.names)] = row
        return list(rows.values())

    def _check_header(self, entry) -> None:
        if not isinstance(entry, dict) or entry.get("noiseprop_sweep") != _JOURNAL_VERSION:
            raise ValueError(f"cannot resume from {self.path}: it is not a noiseprop sweep journal")
        if list(entry.get("parameters", [])) != self.names:
            raise ValueError(
                f"cannot resume from {self.path}: its parameters {entry.get('parameters')} differ from the "
                f"grid's {self.names}"
            )

    def _row(self, entry, number: int) -> dict:
        try:
            types = entry["types"]
            values = {**entry["point"], **entry["result"]}
            row = {name: _untag(name, values[name], types[name]) for name in values}
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"cannot resume from {self.path}: line {number} is malformed ({err})") from None
        missing = [n for n in self.names if n not in entry["point"]]
        if missing:
            raise ValueError(f"cannot resume from {self.path}: line {number} lacks the grid parameters {missing}")
        return row

    def _write_view(self, rows: list[dict]) -> None:
        # grid order first, then the journal's rows that are not grid points
        rank = {_key(row, self.names): self.order.get(_key(row, self.names), len(self.order)) for row in rows}
        rows = sorted(rows, key=lambda row: rank[_key(row, self.names)])
        columns = list(self.names)
        for row in rows:
            columns += [c for c in row if c not in columns]
        if self.view.suffix.lower() == ".csv":
            text = _csv_text(columns, rows)
        else:
            text = dumps({"parameters": self.names, "rows": rows}, indent=1)
        atomic_write(self.view, lambda handle: handle.write(text.encode()), overwrite=True)


def _plain(value):
    """A value as standard JSON (non-finite floats as null: the type tag keeps them)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _append_line(fd: int, line: str) -> None:
    """Append ``line`` (after a newline if a crashed writer left the last line unfinished)."""
    size = os.fstat(fd).st_size
    prefix = "\n" if size and os.pread(fd, 1, size - 1) != b"\n" else ""
    data = (prefix + line + "\n").encode()
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _check_writable(folder: Path) -> None:
    """An OSError now, before any point is computed, unless a file can be created in ``folder``.

    (A real probe rather than ``os.access``: it also holds for root, read-only
    mounts and full disks.)"""
    try:
        fd, probe = tempfile.mkstemp(prefix=".noiseprop-write-test.", dir=folder)
    except OSError as err:
        raise type(err)(err.errno, f"cannot write sweep results into {folder}: {err.strerror}") from None
    os.close(fd)
    os.unlink(probe)


def _csv_text(columns, rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()
