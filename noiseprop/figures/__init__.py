"""The paper figures, regenerated with one command.

Each figure is one module with ``FIGURE_ID``, ``STEM`` (the file name
without suffix), ``CAPTION``, optionally ``REQUIRES`` (an optional
dependency: module, extra, purpose) and ``make(outdir, fast=False, overwrite=False)``,
which writes ``STEM.png`` and ``STEM.json`` (caption, settings, key numbers and
the plotted curves) and returns a :class:`FigureOutput`.  ``fast=True`` uses
small Monte Carlo sample counts (for tests); the default is full quality.

:func:`make_figures` runs several of them; ``noiseprop figures`` and
``paper_figures/make_all.py`` call it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..utils.files import recover_unit
from ..utils.optional import MissingDependency, available, missing_message
from . import (
    f1_symmetric,
    f2_depth,
    f3_slope,
    f4_trained_layers,
    f5_trained_snr,
    f6_accuracy,
    f7_walking,
    f8_noisy_training,
    f9_mitigation,
    f10_mitigated_accuracy,
    f11_recurrent_time,
    f12_recurrent_readout,
    f13_recurrent_training,
)
from ._common import FigureOutput, output_paths

__all__ = ["FIGURES", "FigureOutput", "make_figures", "figure_ids", "unavailable"]

#: Figure modules by id, in order.
FIGURES = {
    module.FIGURE_ID: module
    for module in (
        f1_symmetric, f2_depth, f3_slope, f4_trained_layers, f5_trained_snr, f6_accuracy, f7_walking,
        f8_noisy_training, f9_mitigation, f10_mitigated_accuracy, f11_recurrent_time, f12_recurrent_readout,
        f13_recurrent_training,
    )
}


def figure_ids(only: "str | Iterable[str] | None" = None) -> list[str]:
    """Validate a selection such as ``"F1,F3"`` (case-insensitive); all if None."""
    if only is None:
        return list(FIGURES)
    items = only.split(",") if isinstance(only, str) else list(only)
    chosen = [item.strip().upper() for item in items if item.strip()]
    unknown = [item for item in chosen if item not in FIGURES]
    if unknown or not chosen:
        raise ValueError(
            f"unknown figure id(s) {unknown or only!r}; available: {', '.join(FIGURES)}"
        )
    return list(dict.fromkeys(chosen))


def unavailable(ids: Iterable[str]) -> dict[str, str]:
    """The figures among ``ids`` whose optional dependency is not installed.

    Returns
    -------
    dict
        Figure id -> message naming the package and the pip command.
    """
    missing = {}
    for fid in ids:
        requirement = getattr(FIGURES[fid], "REQUIRES", None)
        if requirement is not None and not available(requirement[0]):
            missing[fid] = missing_message(*requirement)
    return missing


def make_figures(
    outdir: "str | os.PathLike",
    only: "str | Iterable[str] | None" = None,
    fast: bool = False,
    overwrite: bool = False,
    progress=None,
) -> list[FigureOutput]:
    """Regenerate figures into ``outdir`` (created if missing).

    Parameters
    ----------
    outdir : path
        Folder for the PNG and JSON files.
    only : str or iterable of str, optional
        Figure ids, e.g. ``"F1,F3"``; default all.
    fast : bool, default False
        Small Monte Carlo sample counts (seconds, for tests); else full quality.
    overwrite : bool, default False
        Replace existing files.  Without it, existing targets are reported
        before anything is computed and nothing is written.
    progress : callable(str), optional
        Called with a line of text before (``"FN: computing ..."``) and after
        (``"FN: wrote ..."``) each figure, and for each figure skipped
        (``"FN: skipped: ..."``).

    Returns
    -------
    list of FigureOutput
        The figures written.  With ``only`` None, figures whose optional
        dependency is missing (F8 and F13 need PyTorch, extra ``train``) are skipped,
        with a ``progress`` line that gives the pip command.

    Raises
    ------
    FileExistsError
        If a target exists and ``overwrite`` is False.
    ValueError
        For an unknown figure id.
    MissingDependency
        If a figure asked for by ``only`` needs a package that is not
        installed (before anything is computed).
    """
    ids = figure_ids(only)
    missing = unavailable(ids)
    if missing and only is not None:
        raise MissingDependency(next(iter(missing.values())))
    for fid, message in missing.items():
        if progress:
            progress(f"{fid}: skipped: {message}")
    ids = [fid for fid in ids if fid not in missing]
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"output folder {outdir} is a file")
    if str(outdir) == "":
        raise ValueError("the output folder is empty; give a folder name (e.g. . for the current one)")
    outdir = Path(outdir)
    if outdir.is_dir():  # a unit (PNG + JSON) half-written by a killed run is removed first
        for fid in ids:
            recover_unit(output_paths(outdir, FIGURES[fid].STEM))
    existing = [str(p) for fid in ids for p in output_paths(outdir, FIGURES[fid].STEM) if os.path.lexists(p)]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(existing)} exist(s); refusing to overwrite (use --force / overwrite=True)"
        )
    outdir.mkdir(parents=True, exist_ok=True)
    outputs = []
    for fid in ids:
        if progress:
            progress(f"{fid}: computing ({'fast' if fast else 'full quality'}) ...")
        outputs.append(FIGURES[fid].make(outdir, fast=fast, overwrite=overwrite))
        if progress:
            progress(f"{fid}: wrote {outputs[-1].png} and {outputs[-1].data}")
    return outputs
