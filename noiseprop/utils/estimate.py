"""Run-time estimates of the expensive calls, from a fitted cost model.

Every task's time is modelled as a linear function of a few *work counts*
of the network (layer sizes N_0..N_L), the number of inputs B and of noise
realisations R:

================  ============================================================
task              work counts (besides a constant start-up time)
================  ============================================================
simulate          R B sum_k N_{k-1} N_k  (multiply-adds),  R B sum_k N_k (neurons)
predict           B sum_k (N_k N_{k-1}^2 + N_k^2 N_{k-1}),  B sum_k N_k^2
predict-mixture   the same as predict (method "mixture", with its error estimate)
predict-output    B N_L sum_{k<L} N_{k-1} N_k + B sum_k N_{k-1} N_k,  B sum_k N_k
accuracy-cdf      B  (one Gaussian CDF of the C - 1 class differences per input)
================  ============================================================

``verify`` is predict + simulate; the robustness accuracy is simulate
(``sample_outputs``) + predict-output (the full prediction for a method
other than "linear") + accuracy-cdf per noise factor (:func:`elementary_tasks`).  The
coefficients (seconds per unit of work) are fitted by non-negative least
squares in ``benchmarks/scaling.py`` on the development machine (a loaded
2-core x86 server) and copied here; that script prints its fit beside these
values.  They are estimates: expect a factor of 2-3 either way on another
machine or load.  "predict" is method "linear" (and "moments", estimated
alike); the default method "mixture" has its own coefficients,
"predict-mixture", fitted by ``benchmarks/scaling.py --mixture``: it costs
about a hundred times linear response on one input of the 100-800-wide
networks there (benchmarks/results/scaling_mixture.md), and the model
underestimates it by up to 2x on batches of 10-100 inputs and at depth 10.
This is a realistic estimate for the user; :mod:`noiseprop.utils.resources`
holds the optimistic lower bounds that the time limits (--max-time) refuse by.
"""
from __future__ import annotations

import sys
from typing import Sequence, TextIO

import numpy as np

from .resources import format_seconds

__all__ = ["COST_MODEL", "LONG_RUN_SECONDS", "work_counts", "elementary_tasks", "estimate_seconds",
           "announce_long_run"]

#: Runs estimated above this many seconds are announced on stderr by the CLI.
LONG_RUN_SECONDS = 10.0

#: Seconds per unit of each work count (constant first), per task; fitted
#: by benchmarks/scaling.py (see the module docstring).
COST_MODEL: dict[str, tuple[float, ...]] = {
    "simulate": (3.8e-2, 2.5e-10, 6.4e-8),
    "predict": (0.0, 2.5e-10, 0.0),
    "predict-mixture": (0.0, 3.0e-9, 3.2e-6),  # benchmarks/scaling.py --mixture
    "predict-output": (3.7e-4, 6.6e-10, 1.9e-7),
    "accuracy-cdf": (0.0, 3.8e-2),
}

TASKS = ("simulate", "predict", "predict-mixture", "predict-output", "accuracy-cdf", "verify", "accuracy")


def work_counts(task: str, sizes: Sequence[int], inputs: int = 1, samples: int = 0) -> np.ndarray:
    """The work counts of one elementary task (table above), constant term first."""
    n = np.asarray(sizes, dtype=float)
    below, above = n[:-1], n[1:]
    macs, neurons = float(np.sum(below * above)), float(np.sum(above))
    if task == "simulate":
        return np.array([1.0, samples * inputs * macs, samples * inputs * neurons])
    if task in ("predict", "predict-mixture"):
        cubic = float(np.sum(above * below**2 + above**2 * below))
        return np.array([1.0, inputs * cubic, inputs * float(np.sum(above**2))])
    if task == "predict-output":
        backward = n[-1] * float(np.sum(below[:-1] * above[:-1]))
        return np.array([1.0, inputs * (backward + macs), inputs * neurons])
    if task == "accuracy-cdf":
        return np.array([1.0, float(inputs)])
    raise ValueError(f"task must be one of {TASKS[:5]}, got {task!r}")


def elementary_tasks(task: str, method: str = "linear") -> tuple[str, ...]:
    """The elementary tasks (keys of :data:`COST_MODEL`) of ``task`` run with prediction ``method``.

    Method "mixture" costs "predict-mixture" for every prediction (output-only
    statistics included: only "linear" has the adjoint path); "moments" is
    estimated as "linear" (its extra work per neuron is not cubic in the widths).
    """
    prediction = "predict-mixture" if method == "mixture" else "predict"
    output = "predict-output" if method == "linear" else prediction
    parts = {"predict": (prediction,), "verify": (prediction, "simulate"),
             "accuracy": ("simulate", output, "accuracy-cdf")}
    return parts.get(task, (task,))


def estimate_seconds(task: str, sizes: Sequence[int], inputs: int = 1, samples: int = 0,
                     repeats: int = 1, model: "dict | None" = None, method: str = "linear") -> float:
    """Estimated wall time in seconds of ``repeats`` runs of ``task``.

    Parameters
    ----------
    task : {"simulate", "predict", "predict-mixture", "predict-output", "accuracy-cdf", "verify", "accuracy"}
        ``"verify"``: predict + simulate; ``"accuracy"``: Monte Carlo outputs
        + output-only prediction + one CDF per input.
    sizes : sequence of int
        The layer sizes N_0..N_L.
    inputs, samples : int
        Inputs B and noise realisations R (per input).
    repeats : int
        Number of such runs (e.g. noise factors of an accuracy curve).
    model : dict, optional
        Coefficients per elementary task (default :data:`COST_MODEL`).
    method : {"linear", "mixture", "moments"}, default "linear"
        Prediction method of the run (:func:`elementary_tasks`).
    """
    model = COST_MODEL if model is None else model
    total = 0.0
    for part in elementary_tasks(task, method):
        if part not in model:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        total += float(np.dot(model[part], work_counts(part, sizes, inputs, samples)))
    return repeats * total


def announce_long_run(command: str, task: str, sizes: Sequence[int], inputs: int = 1, samples: int = 0,
                      repeats: int = 1, stream: "TextIO | None" = None,
                      threshold: float = LONG_RUN_SECONDS, method: str = "linear") -> float:
    """Print the estimated run time on ``stream`` (stderr) when above ``threshold``; return the estimate.

    Nothing is printed for a run beyond the time limit (:func:`~noiseprop.utils.resources.current_time_limit`):
    that run is refused with its own one-line message.
    """
    from .resources import current_time_limit

    seconds = estimate_seconds(task, sizes, inputs, samples, repeats, method=method)
    if threshold < seconds <= current_time_limit()[0]:
        print(f"noiseprop {command}: this run will take about {format_seconds(seconds)} "
              f"(estimate from the fitted cost model; machines differ by 2-3x)",
              file=sys.stderr if stream is None else stream, flush=True)
    return seconds
