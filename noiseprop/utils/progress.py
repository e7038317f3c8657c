"""Progress bars: one rule for every long computation of the library and the CLI.

A bar is shown on a terminal only: :func:`progress_bar` returns a tqdm bar
when asked to (``enabled=True``), never when ``enabled=False``, and by default
(``enabled=None``) only when the standard error stream is a TTY and the work is
large enough to be worth one.  The CLI passes ``enabled=False`` for
``--quiet`` and ``None`` otherwise.  tqdm is imported only when a bar is shown.
"""
from __future__ import annotations

import sys

__all__ = ["progress_bar", "show_progress"]


def show_progress(enabled: "bool | None" = None, work: "float | None" = None,
                  min_work: "float | None" = None) -> bool:
    """Whether to show a progress bar.

    Parameters
    ----------
    enabled : bool, optional
        True or False decide; None (default): only when ``sys.stderr`` is a
        terminal and ``work`` exceeds ``min_work`` (when both are given).
    work, min_work : float, optional
        The size of the job and the size below which it is too short for a
        bar, in any common unit (e.g. noisy neuron updates).

    Examples
    --------
    >>> show_progress(True), show_progress(False)
    (True, False)
    >>> show_progress(True, work=1, min_work=10)   # an explicit choice wins
    True
    """
    if enabled is not None:
        return bool(enabled)
    if work is not None and min_work is not None and work <= min_work:
        return False
    stream = sys.stderr
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def progress_bar(total: "int | None" = None, *, desc: str, unit: str = "it",
                 enabled: "bool | None" = None, work: "float | None" = None,
                 min_work: "float | None" = None, leave: bool = False, initial: int = 0):
    """A tqdm progress bar on standard error, or a silent stand-in.

    Both have ``update(n)``, ``set_description(text)``, ``set_postfix(...)``,
    ``write(text)``, ``close()`` and work as context managers, so callers
    need no branch.

    Parameters
    ----------
    total : int, optional
        Number of steps.
    desc, unit : str
        Label and unit shown by the bar.
    enabled, work, min_work :
        Whether to show it, see :func:`show_progress`.
    leave : bool, default False
        Keep the finished bar on the screen.
    initial : int, default 0
        Steps already done (a resumed job).

    Examples
    --------
    >>> with progress_bar(3, desc="demo", enabled=False) as bar:
    ...     for _ in range(3):
    ...         bar.update(1)
    >>> bar.n
    3
    """
    if not show_progress(enabled, work, min_work):
        return _SilentBar(total, initial)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=leave, initial=initial, file=sys.stderr)


class _SilentBar:
    """What :func:`progress_bar` returns when no bar is shown: counts, prints nothing."""

    def __init__(self, total=None, initial=0):
        self.total, self.n = total, initial

    def update(self, n=1):
        self.n += n

    def set_description(self, desc=None, refresh=True):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def write(self, text: str) -> None:
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
