"""Monte Carlo simulation of noisy recurrent networks and verification of :func:`predict`.

:func:`simulate` draws realisations of the model of
:mod:`noiseprop.recurrent.model` exactly (independent noise at every step,
neuron and realisation; correlated noise shared by the reservoir at a step;
driven and self-closed steps) in a compiled kernel (dense reservoirs
through BLAS, reservoirs with at most 20 % non-zero weights in
compressed-row form)
(:mod:`noiseprop.recurrent._kernels`) and keeps only running sums:
memory ~ chunk_size x N for the states plus (tiles x recorded steps x N) for
the sums, independent of the number of realisations, and of the number of
steps T when a fixed set of ``steps`` is recorded.  The statistics are
estimated exactly as in the feed-forward engine (shifted sums, standard
errors of variances from the sample kurtosis), with the recorded time steps
in place of layers.

:func:`verify` holds :func:`~noiseprop.recurrent.propagation.predict`
against the plain Monte Carlo estimate with the feed-forward verdict rules
(:class:`noiseprop.simulation.verification.VerificationReport`: every neuron's mean and
variance and every step's per-neuron average variance within z standard
errors, z set by a Bonferroni-corrected false-failure probability), once
for the reservoir and once for the output, each with half the
false-failure probability.
"""
from __future__ import annotations

import operator

import numpy as np

from ..noise import Noise
from ..propagation import Prediction
from ..simulation import _kernels as _ff_kernels
from ..simulation.compilation import announce_compilation
from ..simulation.montecarlo import (
    Simulation,
    _kernel_activation,
    _layer_estimates,
    _progress_bar,
    _single_threaded_blas,
    simulation_from_estimates,
)
from ..simulation.verification import VerificationReport
from ..utils.resources import check_run_time
from ..utils.seeds import seed_key
from ..utils.validation import open_probability
from ..utils.validation import positive_int as _positive_int
from . import _kernels
from .model import RecurrentNetwork, require_recurrent
from .propagation import check_noise, predict

announce_compilation(_kernels.simulate_chunk)
__all__ = ["simulate", "verify", "RecurrentSimulation", "RecurrentVerification"]

#: Most tiles (parallel blocks of realisations) per chunk: fixed, so results do not depend on threads.
_TILES = 16
#: Neuron values (realisations x N) per chunk by default.
_CHUNK_VALUES = 1 << 20
#: Largest fraction of non-zero reservoir weights for which the kernel multiplies sparsely.
_SPARSE = 0.2
#: Arithmetic of the reservoir product of the deviations (see :func:`simulate`).
_PRECISIONS = ("mixed", "double")
#: Bytes the per-tile sums may take in all.
_SUM_BYTES = 1 << 28


class RecurrentSimulation:
    """Result of :func:`simulate`.

    Attributes
    ----------
    steps : ndarray (K + 1,)
        Time steps of the statistics: 0 (the noise-free initial state,
        zero variance) and the K recorded steps.
    reservoir, output : noiseprop.simulation.montecarlo.Simulation
        Monte Carlo estimates with standard errors; their "layers" are the
        entries of ``steps``.
    samples, seed : int
    """

    def __init__(self, steps, reservoir: Simulation, output: Simulation, samples: int, seed: int):
        self.steps = steps
        self.reservoir, self.output = reservoir, output
        self.samples, self.seed = samples, seed

    @property
    def var(self) -> np.ndarray:
        """Reservoir variances (K + 1, N)."""
        return np.array(self.reservoir.var)

    @property
    def output_var(self) -> np.ndarray:
        return np.array(self.output.var)

    def to_dict(self, per_neuron: bool = False) -> dict:
        return {"steps": self.steps.tolist(), "samples": self.samples, "seed": self.seed,
                "reservoir": self.reservoir.to_dict(per_neuron), "output": self.output.to_dict(per_neuron)}

    def __repr__(self) -> str:
        return f"RecurrentSimulation(recorded steps={len(self.steps) - 1}, samples={self.samples})"


def _record_steps(steps, total: int) -> np.ndarray:
    if steps is None:
        return np.arange(1, total + 1)
    try:
        chosen = np.unique(np.asarray(steps, dtype=np.int64).ravel())
    except (TypeError, ValueError):
        raise ValueError(f"steps must be integers 1..{total}, got {steps!r}") from None
    if chosen.size == 0 or chosen[0] < 1 or chosen[-1] > total:
        raise ValueError(f"steps must be integers in 1..{total} (the steps of this run), got {steps!r}")
    return chosen


def _estimates(acc, rows, n, shift):
    """Per-step estimates from the summed tiles (steps play the feed-forward batch axis)."""
    fields = acc.shape[1] // shift.shape[1]
    neuron = np.moveaxis(acc.reshape(acc.shape[0], fields, shift.shape[1]) / n, 1, 0)
    return _layer_estimates(neuron, np.moveaxis(rows / n, 1, 0), n, shift, None)


def _as_simulation(x0_stats, est, samples, seed) -> Simulation:
    """The per-step estimates (arrays (K, N) and (K,)) as a Simulation whose
    "layers" are step 0 (noise-free x0_stats) and the K recorded steps."""
    per_step = {key: [np.atleast_1d(row)[None] if np.ndim(row) else np.array([row]) for row in values]
                for key, values in est.items()}
    return simulation_from_estimates(x0_stats[None], per_step, False, samples=samples, seed=seed,
                                     control_variate=False, converged=None)


def simulate(
    net: RecurrentNetwork,
    noise: Noise,
    u,
    samples: int = 10_000,
    seed: int = 0,
    *,
    generate: int = 0,
    x0=None,
    output_noise: "Noise | None" = None,
    steps=None,
    chunk_size: "int | None" = None,
    progress: "bool | None" = None,
    precision: str = "mixed",
) -> RecurrentSimulation:
    """Monte Carlo estimate of mean, variance and SNR of every neuron at every recorded step.

    Parameters
    ----------
    net, noise, u, generate, x0, output_noise :
        As for :func:`noiseprop.recurrent.predict`.
    samples : int, default 10_000
        Realisations (>= 4).
    seed : int, default 0
        Non-negative; the same seed gives the same numbers with any number
        of threads and any ``chunk_size`` (up to the rounding of the sums).
    steps : sequence of int, optional
        Time steps (1..T) whose statistics are kept (all by default); the
        memory of the sums grows with their number, not with T.
    chunk_size : int, optional
        Realisations per kernel call (memory ~ 5 chunk_size N x 8 bytes).
    progress : bool, optional
        tqdm progress bar (by default on a terminal for long runs).
    precision : {"mixed", "double"}, default "mixed"
        The kernel propagates each realisation's deviation from the
        noise-free trajectory (double precision).  "mixed": the deviations
        (reservoir product, noise, activation deviation, leak) in single
        precision, written so that their rounding is about 1e-7 relative to
        the *noise*, not to the signal: far below the Monte Carlo error at
        any noise level (checked down to D = 1e-18); about twice as fast.
        "double": all in double precision.  Sums are always double precision.

    Returns
    -------
    RecurrentSimulation

    Raises
    ------
    ValueError
        For bad arguments (as :func:`predict`), samples, seed or steps.
    """
    require_recurrent(net)
    check_noise(noise, output_noise)
    u, generate, x0 = net.check_run(u, generate, x0)
    samples = _positive_int("samples", samples)
    if samples < 4:
        raise ValueError(f"samples must be at least 4 to estimate variances, got {samples}")
    key = seed_key(seed)
    code, p0, p1 = _kernel_activation(net.activation, 1)
    total = u.shape[0] + generate
    check_run_time(samples * total * (net.n * (net.n + net.n_in + 4) + net.n_out * (net.n + 4)),
                   f"{samples} Monte Carlo realisations (samples) of {total} steps of a reservoir of {net.n} "
                   "neurons", "use fewer samples or steps")
    recorded = _record_steps(steps, total)
    record = np.full(total + 1, -1, dtype=np.int64)
    record[recorded] = np.arange(recorded.size)
    states, outputs = net.forward(u, generate, x0)
    shift_x, shift_y = np.ascontiguousarray(states[recorded]), np.ascontiguousarray(outputs[recorded])
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_VALUES // max(net.n, net.n_out))
    chunk_size = min(_positive_int("chunk_size", chunk_size), samples)
    fx, fr = _ff_kernels.NEURON_FIELDS[False], _ff_kernels.ROW_FIELDS[False]
    tile_bytes = 8 * recorded.size * (fx * (net.n + net.n_out) + 2 * fr)
    out_noise = output_noise or Noise()
    args = (
        *_weights(net, precision), _noise_free_drive(net, u, states, outputs), outputs,
        u.shape[0], generate, float(net.leak), code, p0, p1, np.sqrt(list(noise.intensities.values())),
        noise.placement == "pre", np.sqrt(list(out_noise.intensities.values())), key,
    )
    sums_x = np.zeros((recorded.size, fx * net.n))
    rows_x = np.zeros((recorded.size, fr))
    sums_y = np.zeros((recorded.size, fx * net.n_out))
    rows_y = np.zeros((recorded.size, fr))
    done = 0
    updates = samples * total * (net.n + net.n_out)
    with _progress_bar(samples, progress, updates) as bar, _single_threaded_blas():
        while done < samples:
            count = min(chunk_size, samples - done)
            tiles = max(1, min(_TILES, count, _SUM_BYTES // max(tile_bytes, 1)))
            acc_x = np.zeros((tiles, recorded.size, fx * net.n))
            row_x = np.zeros((tiles, recorded.size, fr))
            acc_y = np.zeros((tiles, recorded.size, fx * net.n_out))
            row_y = np.zeros((tiles, recorded.size, fr))
            _kernels.simulate_chunk(*args, done, count, tiles, record, acc_x, row_x, acc_y, row_y)
            sums_x += acc_x.sum(axis=0)
            rows_x += row_x.sum(axis=0)
            sums_y += acc_y.sum(axis=0)
            rows_y += row_y.sum(axis=0)
            done += count
            bar.update(count)
    seed = operator.index(seed)
    reservoir = _as_simulation(x0, _estimates(sums_x, rows_x, done, shift_x), done, seed)
    output = _as_simulation(outputs[0], _estimates(sums_y, rows_y, done, shift_y), done, seed)
    return RecurrentSimulation(np.concatenate([[0], recorded]), reservoir, output, done, seed)


def _noise_free_drive(net: RecurrentNetwork, u: np.ndarray, states: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """z-bar (T + 1, N): the noise-free pre-activations W_in u-bar_t + W x-bar_{t-1} + b
    (u-bar_t = y-bar_{t-1} in self-closed steps; row 0 zero)."""
    zbar = np.zeros_like(states)
    for t in range(1, states.shape[0]):  # row by row: no (T, N) temporaries beside the result
        drive = u[t - 1] if t <= u.shape[0] else outputs[t - 1]
        np.dot(net.W, states[t - 1], out=zbar[t])
        zbar[t] += net.W_in @ drive + net.bias
    return zbar


def _weights(net: RecurrentNetwork, precision: str) -> tuple:
    """The kernel's weight arguments (W_t, single, sparse, indptr, indices, values,
    W_in_t, W_out_t), in float32 for "mixed" and float64 for "double"."""
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, _PRECISIONS))}, got {precision!r}")
    real = np.float32 if precision == "mixed" else np.float64
    sparse, indptr, indices, values = _compressed_rows(net.W)
    as_real = lambda M: np.ascontiguousarray(M, dtype=real)  # noqa: E731
    return (as_real(net.W.T), precision == "mixed", sparse, indptr, indices, as_real(values), as_real(net.W_in.T),
            as_real(net.W_out.T))


def _compressed_rows(W: np.ndarray):
    """(sparse, indptr, indices, values): W in compressed-row form, used by the
    kernel when at most a fraction _SPARSE of the entries are non-zero."""
    nonzero = W != 0
    sparse = bool(nonzero.mean() <= _SPARSE)
    indptr = np.concatenate([[0], np.cumsum(nonzero.sum(axis=1))]).astype(np.int64)
    rows, cols = np.nonzero(nonzero)
    return sparse, indptr, cols.astype(np.int64), np.ascontiguousarray(W[rows, cols])


class RecurrentVerification:
    """Result of :func:`verify`: the feed-forward verdict for the reservoir and the output.

    Attributes
    ----------
    reservoir, output : noiseprop.simulation.verification.VerificationReport
        Their "layers" 1..K are the recorded time steps ``steps[1:]``.
    steps : ndarray
    passed : bool
        Both passed.
    """

    def __init__(self, reservoir: VerificationReport, output: VerificationReport, steps: np.ndarray):
        self.reservoir, self.output, self.steps = reservoir, output, steps
        for report in (reservoir, output):
            for row in report.layers:
                row["step"] = int(steps[row["layer"]])
        self.passed = reservoir.passed and output.passed

    def table(self) -> str:
        """Both tables (a "layer" k is the k-th recorded time step) and the verdict."""
        steps = self.steps[1:]
        shown = f"{steps[0]}..{steps[-1]}" if steps.size > 1 else str(steps[0])
        return "\n".join([
            f"reservoir (rows = recorded time steps {shown}, in order):", self.reservoir.table(), "",
            "output:", self.output.table(), "",
            f"verdict: {'the prediction agrees with the simulation' if self.passed else 'DISAGREEMENT'}",
        ])

    def to_dict(self) -> dict:
        return {"passed": self.passed, "steps": self.steps[1:].tolist(),
                "reservoir": self.reservoir.to_dict(), "output": self.output.to_dict()}

    def __repr__(self) -> str:
        return f"RecurrentVerification(passed={self.passed}, steps={len(self.steps) - 1})"


def _select(stats: Prediction, steps: np.ndarray) -> Prediction:
    """The prediction at ``steps`` (index 0 kept as the initial state)."""
    pick = lambda values: [values[int(t)][None] for t in steps]  # noqa: E731
    return Prediction(pick(stats.mean), pick(stats.var), [np.array([stats.correlated[int(t)]]) for t in steps],
                      False, None, stats.method)


def verify(
    net: RecurrentNetwork,
    noise: Noise,
    u,
    samples: int = 10_000,
    seed: int = 0,
    *,
    generate: int = 0,
    x0=None,
    output_noise: "Noise | None" = None,
    steps=None,
    method: str = "linear",
    false_failure: float = 1e-6,
    chunk_size: "int | None" = None,
    progress: "bool | None" = None,
) -> RecurrentVerification:
    """Hold :func:`predict` (``method``) against :func:`simulate` at the recorded steps.

    Same verdict rules as the feed-forward :func:`noiseprop.verify`; for an
    affine activation the prediction is exact and must pass at any noise
    level.  ``false_failure`` is split equally between the reservoir and the
    output.

    Returns
    -------
    RecurrentVerification
    """
    open_probability("false_failure", false_failure)
    prediction = predict(net, noise, u, generate=generate, x0=x0, output_noise=output_noise, method=method)
    simulation = simulate(net, noise, u, samples, seed, generate=generate, x0=x0, output_noise=output_noise,
                          steps=steps, chunk_size=chunk_size, progress=progress)
    chosen = simulation.steps
    reports = [
        VerificationReport(_select(pred, chosen), sim, false_failure / 2, net.is_affine)
        for pred, sim in ((prediction.reservoir, simulation.reservoir), (prediction.output, simulation.output))
    ]
    return RecurrentVerification(*reports, chosen)
