"""Standard JSON: non-finite floats become null (JSON has no NaN or Infinity)."""
from __future__ import annotations

import json
import math

import numpy as np

__all__ = ["finite_or_none", "dumps"]


def finite_or_none(value):
    """``value`` with every non-finite float (also inside dicts, lists, tuples, arrays) replaced by None."""
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return finite_or_none(value.tolist())
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def dumps(value, indent: "int | None" = 2) -> str:
    """Standard JSON text of ``value`` (NumPy scalars and arrays allowed; non-finite -> null)."""
    return json.dumps(finite_or_none(value), indent=indent, allow_nan=False)
