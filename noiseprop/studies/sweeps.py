"""Parameter sweeps through any :class:`concurrent.futures.Executor`.

:func:`sweep` evaluates a function at every point of a parameter grid, on
local processes by default or on any executor (threads, a Dask distributed
cluster through :func:`dask_executor` for several machines).  Finished points
are written atomically to a CSV or JSON file as they come in, and a sweep
started again with the same file computes only the points that are missing,
so an interrupted sweep resumes where it stopped.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import io
import itertools
import json
import os
import pickle
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

import numpy as np
from tqdm.auto import tqdm

from ..utils.files import atomic_write

__all__ = ["sweep", "grid_points", "dask_executor", "SweepError"]

Scalar = Union[bool, int, float, str]
Grid = Union[Mapping[str, Sequence[Any]], Sequence[Mapping[str, Any]]]
_FORMATS = (".csv", ".json")


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
        Results file, ``.csv`` or ``.json``.  Rewritten atomically with every
        finished point (at most every ``checkpoint_interval`` seconds, and
        always at the end or when the sweep stops on an error or Ctrl-C).
    resume : bool, default True
        If ``path`` exists, take its finished points (matched by the text
        form of their parameter values: 1 and 1.0 are different points) and
        compute only the others.  Rows of the file not in ``grid`` are kept.
    overwrite : bool, default False
        With ``resume=False``: replace an existing file (otherwise
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
        Results of resumed points are read back from the file (CSV cells
        as int, float or str; empty cells as None).

    Raises
    ------
    SweepError
        When ``function`` fails at a point; the points finished so far are
        written first, so that running the sweep again resumes.
    ValueError
        For a bad grid, a bad file suffix or a file whose columns do not
        match the grid's parameters.
    FileNotFoundError
        If the folder of ``path`` does not exist (before anything is computed).

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
    store = _ResultsFile(path, names, points) if path is not None else None
    done: dict[tuple, dict] = {}
    if store is not None:
        done = store.prepare(resume=resume, overwrite=overwrite)
    todo = [p for p in points if _key(p, names) not in done]
    if todo:
        with _executor_for(executor, function, max_workers) as pool:
            _run(function, todo, names, pool, done, store, progress, len(points), checkpoint_interval)
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
            if store is not None and time.monotonic() - last_write >= checkpoint_interval:
                store.write(done)
                last_write = time.monotonic()
    finally:
        bar.close()
        for future, point in futures.items():
            if not future.cancel():
                _keep_if_finished(future, point, names, done)
        if store is not None:
            store.write(done)


def _keep_if_finished(future, point, names, done) -> None:
    """Record a point that finished while the sweep was stopping."""
    key = _key(point, names)
    if key in done or not future.done() or future.cancelled() or future.exception() is not None:
        return
    try:
        done[key] = {**point, **_as_result(future.result(), names)}
    except ValueError:
        pass  # a bad result is reported when the point is computed again


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
    """Text form of a value: the CSV cell, and the key that matches points."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _parse_cell(text: str):
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _key(point: Mapping, names) -> tuple:
    return tuple(_cell(point[name]) for name in names)


class _ResultsFile:
    """The finished rows of a sweep in a CSV or JSON file."""

    def __init__(self, path, names, points):
        self.path = Path(path)
        self.names = names
        self.order = {_key(p, names): i for i, p in enumerate(points)}
        if self.path.suffix.lower() not in _FORMATS:
            raise ValueError(f"results file {self.path} must end in one of {_FORMATS}")

    def prepare(self, resume: bool, overwrite: bool) -> dict:
        """Finished rows by key (empty for a new file); refuses a missing folder
        before anything is computed."""
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"cannot write {self.path}: folder {self.path.parent} does not exist")
        if not self.path.exists():
            return {}
        if not resume:
            if not overwrite:
                raise FileExistsError(f"{self.path} exists; resume it (resume=True) or ask for overwrite")
            return {}
        rows = self._read()
        missing = [n for n in self.names if rows and n not in rows[0]]
        if missing:
            raise ValueError(f"{self.path}: columns {list(rows[0])} lack the grid parameters {missing}")
        return {_key(row, self.names): row for row in rows}

    def write(self, done: dict) -> None:
        # grid order first, then the file's rows that are not grid points
        rank = {key: self.order.get(key, len(self.order)) for key in done}
        rows = [done[key] for key in sorted(done, key=rank.__getitem__)]
        columns = list(self.names)
        for row in rows:
            columns += [c for c in row if c not in columns]
        if self.path.suffix.lower() == ".csv":
            text = _csv_text(columns, rows)
        else:
            text = json.dumps({"parameters": self.names, "rows": rows}, indent=1)
        atomic_write(self.path, lambda handle: handle.write(text.encode()), overwrite=True)

    def _read(self) -> list[dict]:
        try:
            text = self.path.read_text()
            if self.path.suffix.lower() == ".csv":
                return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]
            return list(json.loads(text)["rows"])
        except (OSError, ValueError, KeyError, TypeError, csv.Error) as err:
            raise ValueError(f"cannot resume from {self.path}: {err}") from None


def _csv_text(columns, rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()
