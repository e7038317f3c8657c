"""Where the benchmark scripts write their results, checked before the run and written as one unit.

Every script calls :func:`result_paths` before its run: the ``--out`` folder
is made, and a result file that exists (without ``--force``) or that is a
symbolic link, device or FIFO (even with ``--force``) ends the script at once
with a one-line error and exit status 2, not with a traceback after minutes of
work.  :func:`write_results` then writes a script's files (its .md, .json,
.png) all or none (:func:`noiseprop.utils.files.write_together`).

The scripts import this module from their own folder (``python
benchmarks/NAME.py`` puts it first on the path).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Mapping, NoReturn, Sequence

from noiseprop.utils.files import check_target, write_together

__all__ = ["result_paths", "write_results"]

#: Exit status of a refused output, as for bad input in the noiseprop CLI.
EXIT_REFUSED = 2


def result_paths(folder: Path, names: Sequence[str], force: bool) -> list[Path]:
    """``folder / name`` for every name, checked before the run (module docstring).

    Raises
    ------
    SystemExit
        With status 2, after a one-line error on stderr, when the folder
        cannot be made or a result may not be written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return [check_target(folder / name, force) for name in names]
    except (OSError, ValueError) as err:  # ValueError: a link or device (UnsafeTarget)
        _refuse(err)


def write_results(contents: Mapping[Path, "str | bytes"], force: bool) -> list[Path]:
    """Write each path's content (text as UTF-8) as one unit: all of the files or none of them.

    A target that changed since :func:`result_paths` (e.g. made by another
    run meanwhile) ends the script with a one-line error and exit status 2.
    """
    items = [(path, lambda handle, data=data: handle.write(data.encode() if isinstance(data, str) else data))
             for path, data in contents.items()]
    try:
        return write_together(items, overwrite=force)
    except (OSError, ValueError) as err:
        _refuse(err)


def _refuse(err: Exception) -> NoReturn:
    print(f"error: {err}", file=sys.stderr)
    raise SystemExit(EXIT_REFUSED)
