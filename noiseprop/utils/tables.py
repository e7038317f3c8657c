"""Plain-text tables for people (the CLI's default output)."""
from __future__ import annotations

from typing import Sequence

from ..statistics import LayerStatistics

__all__ = ["format_table", "layer_table"]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Right-aligned columns under a header line and a rule."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    def line(cells):
        return "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))
    return "\n".join([line(headers), line("-" * w for w in widths), *map(line, rows)])


def format_estimate(fraction: float) -> str:
    """An error estimate (a fraction) as a percentage with three significant digits,
    e.g. "0.491%", "1.9e+160%" for an enormous one, "inf%" where it is unbounded."""
    return f"{100 * fraction:.3g}%"


def layer_table(stats: LayerStatistics) -> str:
    """Per-layer table: size, signal power, noise variance (total,
    uncorrelated, correlated) and layer SNR in dB; batch-averaged.  A
    prediction that carries an error estimate gets an "est. error" column
    (the estimated relative error of the layer's noise variance)."""
    summary = stats.summary()
    with_estimate = any(row.get("error_estimate") is not None for row in summary)
    headers = ["layer", "size", "signal E[y]^2", "noise Var", "uncorrelated", "correlated", "SNR [dB]"]
    if with_estimate:
        headers.append("est. error")
    rows = []
    for row in summary:
        cells = [
            str(row["layer"]),
            str(row["size"]),
            f"{row['signal_power']:.4g}",
            f"{row['noise_var']:.4g}",
            f"{row['uncorrelated']:.4g}",
            f"{row['correlated']:.4g}",
            f"{row['snr_db']:.2f}",
        ]
        if with_estimate:
            estimate = row.get("error_estimate")
            cells.append("-" if estimate is None else format_estimate(estimate))
        rows.append(cells)
    return format_table(headers, rows)
