"""Memory and run-time guards: refuse a job before it allocates what it cannot have.

Every allocation that grows with the input (covariance matrices, Monte Carlo
buffers, training tensors, arrays declared in a file's header, grids) is
estimated first and compared with a limit.  Too large a job raises
:class:`ResourceLimit` (a ``ValueError``, exit status 2 in the command-line
interface) naming the option or layer and the estimate, instead of swapping
the machine to death or dying with a NumPy ``MemoryError`` traceback.

The memory limit, in this order of precedence:

1. :func:`memory_limit` used as a context manager (the CLI's ``--max-memory``,
   the ``max_memory=`` argument of the readers);
2. the environment variable ``NOISEPROP_MAX_MEMORY``;
3. :data:`DEFAULT_FRACTION` (50 %) of the memory available now
   (``MemAvailable`` of ``/proc/meminfo``, else ``os.sysconf``).

A limit is a size such as ``"4G"``, ``"512M"``, ``"1.5GiB"``, a number of
bytes, or a percentage of the available memory (``"80%"``).  Run time is
bounded the same way (``--max-time``, ``NOISEPROP_MAX_TIME``, default one
day), from a deliberately optimistic estimate of the work.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
from typing import Iterator

from .. import mixture

__all__ = [
    "ResourceLimit",
    "DEFAULT_FRACTION",
    "DEFAULT_MAX_SECONDS",
    "available_memory",
    "memory_limit",
    "time_limit",
    "current_memory_limit",
    "current_time_limit",
    "parse_size",
    "parse_duration",
    "format_bytes",
    "format_seconds",
    "check_memory",
    "check_run_time",
    "check_count",
    "predict_bytes",
    "check_predict",
    "network_bytes",
]

#: Default memory limit: this fraction of the memory available when the check runs.
DEFAULT_FRACTION = 0.5
#: Default run-time limit in seconds (one day).
DEFAULT_MAX_SECONDS = 86_400.0
#: Optimistic throughput (multiply-adds or random draws per second) behind run-time estimates.
OPERATIONS_PER_SECOND = 2e9
#: Bytes of one float64.
FLOAT = 8

_MEMORY_ENV = "NOISEPROP_MAX_MEMORY"
_TIME_ENV = "NOISEPROP_MAX_TIME"
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGTP]?)(I?B)?\s*$", re.IGNORECASE)


class _Settings:
    """Limits chosen by :func:`memory_limit` / :func:`time_limit` (process-wide, so that
    worker threads see them too)."""

    memory: "int | None" = None
    time: "float | None" = None


_settings = _Settings()


class ResourceLimit(ValueError):
    """A job would exceed the memory or run-time limit (exit status 2 in the CLI)."""


# ------------------------------------------------------------------ limits


def available_memory() -> int:
    """Bytes of memory available to new allocations now (``MemAvailable``;
    ``os.sysconf`` free pages where /proc/meminfo is missing; 4 GiB if neither)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 * 1024**3


def parse_size(text: "str | int | float", what: str = "memory limit") -> int:
    """Bytes from ``"4G"``, ``"512MB"``, ``"1.5GiB"``, ``"80%"`` (of the available memory) or a number.

    Raises
    ------
    ValueError
        Naming ``what`` when the text is not a positive size.
    """
    if isinstance(text, bool):
        raise ValueError(f"{what} must be a size such as 4G, 512M or 80%, got {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        stripped = str(text).strip()
        if stripped.endswith("%"):
            try:
                percent = float(stripped[:-1])
            except ValueError:
                percent = math.nan
            if not 0 < percent <= 100:
                raise ValueError(f"{what}: a percentage must lie in (0, 100], got {text!r}")
            return int(available_memory() * percent / 100)
        match = _SIZE.match(stripped)
        if not match:
            raise ValueError(f"{what} must be a size such as 4G, 512M, 1.5GiB or 80%, got {text!r}")
        value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(f"{what} must be a positive size, got {text!r}")
    return int(value)


def parse_duration(text: "str | int | float", what: str = "time limit") -> float:
    """Seconds from ``"90"``, ``"30s"``, ``"15m"``, ``"2h"``, ``"1d"`` or a number."""
    units = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = re.match(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([smhd]?)\s*$", str(text), re.IGNORECASE)
        if not match:
            raise ValueError(f"{what} must be a duration such as 90, 30s, 15m, 2h or 1d, got {text!r}")
        value = float(match.group(1)) * units[match.group(2).lower()]
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a positive duration, got {text!r}")
    return value


@contextlib.contextmanager
def memory_limit(limit: "str | int | float | None") -> Iterator[None]:
    """Use ``limit`` (see :func:`parse_size`; None: keep the current one) within the block (process-wide)."""
    with _setting("memory", None if limit is None else parse_size(limit)):
        yield


@contextlib.contextmanager
def time_limit(limit: "str | int | float | None") -> Iterator[None]:
    """Use ``limit`` (see :func:`parse_duration`; None: keep the current one) within the block (process-wide)."""
    with _setting("time", None if limit is None else parse_duration(limit)):
        yield


@contextlib.contextmanager
def _setting(name: str, value) -> Iterator[None]:
    if value is None:
        yield
        return
    previous = getattr(_settings, name)
    setattr(_settings, name, value)
    try:
        yield
    finally:
        setattr(_settings, name, previous)


def _limit_in_force(chosen, option: str, env_name: str, parse, default, default_source: str):
    """The limit set by the API/CLI option, else by the environment variable, else the default."""
    if chosen is not None:
        return chosen, option
    env = os.environ.get(env_name)
    if env:
        return parse(env, env_name), env_name
    return default, default_source


def current_memory_limit() -> tuple[int, str]:
    """The memory limit in bytes and where it comes from (for messages)."""
    default = int(available_memory() * DEFAULT_FRACTION)
    return _limit_in_force(_settings.memory, "--max-memory / max_memory", _MEMORY_ENV, parse_size,
                           default, f"{DEFAULT_FRACTION:.0%} of the available memory")


def current_time_limit() -> tuple[float, str]:
    """The run-time limit in seconds and where it comes from."""
    return _limit_in_force(_settings.time, "--max-time", _TIME_ENV, parse_duration,
                           DEFAULT_MAX_SECONDS, "the default of one day")


# ------------------------------------------------------------------ checks


def format_bytes(nbytes: float) -> str:
    """``1.5 GiB`` style text."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.3g} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.3g} EiB"  # pragma: no cover - the loop returns


def format_seconds(seconds: float) -> str:
    """``3.2 h`` style text."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def check_memory(nbytes: float, what: str, advice: str = "") -> None:
    """A :class:`ResourceLimit` naming ``what`` when ``nbytes`` exceeds the memory limit.

    Parameters
    ----------
    nbytes : float
        The estimate (Python ints: no overflow however large the input).
    what : str
        The culprit, e.g. "predict: layer 1 (20000 neurons) covariances".
    advice : str
        How to make the job smaller, e.g. "use fewer --samples".
    """
    limit, source = current_memory_limit()
    if nbytes > limit:
        hint = f"{advice}; or " if advice else ""
        raise ResourceLimit(
            f"{what} needs about {format_bytes(nbytes)}, more than the memory limit "
            f"{format_bytes(limit)} ({source}); {hint}raise the limit with --max-memory or {_MEMORY_ENV}"
        )


def check_run_time(operations: float, what: str, advice: str = "") -> float:
    """A :class:`ResourceLimit` when ``operations`` would take longer than the time limit.

    Returns the estimated seconds (at :data:`OPERATIONS_PER_SECOND`, an
    optimistic rate: the real run is usually slower).
    """
    seconds = float(operations) / OPERATIONS_PER_SECOND
    limit, source = current_time_limit()
    if seconds > limit:
        hint = f"{advice}; or " if advice else ""
        raise ResourceLimit(
            f"{what} would take at least {format_seconds(seconds)} (estimate), more than the time limit "
            f"{format_seconds(limit)} ({source}); {hint}raise the limit with --max-time or {_TIME_ENV}"
        )
    return seconds


def check_count(value: int, what: str, maximum: int) -> int:
    """``value`` unless it exceeds ``maximum`` (a :class:`ResourceLimit` naming ``what``)."""
    if value > maximum:
        raise ResourceLimit(f"{what} is {value}; at most {maximum} are allowed")
    return value


# ------------------------------------------------------------------ estimates


def network_bytes(sizes) -> int:
    """Bytes of the float64 weights and biases of a network with layer sizes N_0..N_L."""
    sizes = [int(n) for n in sizes]
    return FLOAT * sum(n * (m + 1) for m, n in zip(sizes[:-1], sizes[1:]))


def predict_bytes(sizes, batch: int, full_covariance: bool = False, method: str = "linear",
                  layers: "list[int] | None" = None, noise=None) -> tuple[int, int]:
    """Peak bytes of an analytic prediction and the layer that needs the most.

    Per layer k the recursion holds the previous covariance (B, N_{k-1}^2),
    the product W Sigma (B, N_k N_{k-1}) and about four (six with the moments
    method) arrays of (B, N_k^2); the mixture method adds, per chunk of
    inputs (:func:`noiseprop.mixture.layer_chunk`, at least one input), the
    work of one step (:func:`noiseprop.mixture.layer_values`, for the
    layer's ``noise``: one Noise per layer 1..L, or None for the largest
    over every noise; for layers of 1000 neurons or more about 90 N_k^2 per
    input with the noise after the activation, 70 N_k^2 before it).  Every
    layer's covariance is kept until the statistics are taken (all layers,
    or only ``layers`` when given), whether or not ``full_covariance``
    returns them.
    """
    sizes = [int(n) for n in sizes]
    batch = int(batch)
    work = 6 if method == "moments" else 4
    layer_noise = [None] * (len(sizes) - 1) if noise is None else list(noise)

    flags = mixture.carried(layer_noise)

    def layer_bytes(m: int, n: int, nz, first: bool, carry: bool) -> int:
        values = batch * (work * n * n + n * m + m * m + 8 * n)
        if method == "mixture":
            chunk = min(batch, mixture.layer_chunk(m, n, nz, first, carry))
            values += mixture.layer_values(m, n, nz, chunk, first=first, carry=carry)
        return FLOAT * values

    per_layer = [layer_bytes(m, n, nz, k == 0, flags[k])
                 for k, (m, n, nz) in enumerate(zip(sizes[:-1], sizes[1:], layer_noise))]
    worst = max(range(len(per_layer)), key=per_layer.__getitem__) + 1
    chosen = range(1, len(sizes)) if layers is None else layers
    kept = FLOAT * batch * sum(sizes[k] ** 2 for k in chosen)
    if full_covariance:
        kept += FLOAT * batch * sizes[0] ** 2  # the input's (zero) covariance
    return max(per_layer) + kept + network_bytes(sizes), worst


def check_predict(sizes, batch: int, full_covariance: bool = False, method: str = "linear",
                  layers: "list[int] | None" = None, noise=None) -> None:
    """Refuse a prediction whose covariances would exceed the memory limit (names
    the widest layer; ``noise``: :func:`predict_bytes`)."""
    nbytes, worst = predict_bytes(sizes, batch, full_covariance, method, layers, noise)
    batch_text = f" for a batch of {batch} inputs" if batch > 1 else ""
    check_memory(
        nbytes,
        f"the prediction (covariance matrices, N^2 per input; largest: layer {worst} with "
        f"{sizes[worst]} neurons{batch_text})",
        "use a narrower network or fewer inputs per call",
    )
