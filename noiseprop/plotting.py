"""Plotting: one house style and atomic figure output.

matplotlib is used with the non-interactive Agg backend (no display needed).
Every figure function in noiseprop draws through :func:`figure` and writes
through :func:`save_figure`, so that files are written whole or not at all.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ._files import atomic_write  # noqa: E402

__all__ = ["STYLE", "NOISE_COLORS", "figure", "save_figure"]

#: rc parameters of the house style.
STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

#: One colour per noise type, used by every figure.
NOISE_COLORS = {"AU": "tab:blue", "AC": "tab:orange", "MU": "tab:green", "MC": "tab:red"}


def figure(nrows: int = 1, ncols: int = 1, size=(6.0, 4.0), **kwargs):
    """A new (figure, axes) pair in the house style."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=size, **kwargs)
    for ax in getattr(axes, "flat", [axes]):
        ax.grid(True, alpha=STYLE["grid.alpha"])
    return fig, axes


def save_figure(fig, path: "str | os.PathLike", overwrite: bool = False) -> Path:
    """Write ``fig`` atomically (format from the suffix, e.g. .png, .pdf) and close it.

    Raises FileExistsError if ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    with plt.rc_context(STYLE):
        fig.tight_layout()
    try:
        return atomic_write(path, lambda handle: fig.savefig(handle, format=fmt), overwrite=overwrite)
    finally:
        plt.close(fig)
