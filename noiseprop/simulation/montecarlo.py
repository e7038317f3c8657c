"""Monte Carlo simulation of noisy networks (docs/model.md §2), numba-accelerated.

:func:`simulate` draws realisations of every neuron of every layer exactly as
in the noise model (both placements, all four noise types, per-layer
intensities, one input or a batch) and estimates the per-layer statistics of
:class:`~noiseprop.statistics.LayerStatistics` with standard errors.
:func:`sample_outputs` returns the raw noisy outputs of one layer.

How it is fast and exact at once:

- The input is noise-free, so layer 1's pre-activation (and, with the noise
  after the activation, its f(z)) is computed once, not per realisation.
- Given f(z), the uncorrelated terms f xi_MU + xi_AU form one Gaussian of
  variance f^2 D_MU + D_AU (z^2 D_MU + D_AU before the activation): one draw
  per neuron instead of two.
- The matrix products go to BLAS; activation, noise and the running sums are
  fused in one parallel compiled kernel (:mod:`noiseprop.simulation._kernels`).
- Random numbers are counter based, keyed by (seed, realisation, input,
  layer): the numbers depend on the seed only, not on the thread count or the
  chunk size.
- ``dtype="float32"`` runs products, noise and activations in float32 (its
  own vectorised float32 generator: other draws than float64's, equally
  distributed) with float64 sums (of float32 block sums); ``dtype="auto"`` takes it only where
  :mod:`noiseprop.simulation.precision` proves its rounding negligible.

Memory does not grow with ``samples``: realisations are processed in chunks
and only running sums are kept.  The sums are of d = y - m, m the noise-free
(linear-response) mean, which keeps them numerically stable (the shifted-data
algorithm).

The control variate (``control_variate=True``) pushes the same noise draws
through the network linearised at its working point, whose mean and
covariance ``predict`` gives exactly, and samples only the difference:

    E[y]   = m + mean(y - y_lin)
    Var[y] = Var_lin + S^2(y) - S^2(y_lin)

Unbiased for any network (E[y_lin] and Var[y_lin] are known exactly), exact
with zero error for affine networks, and with a variance smaller by a factor
of order 1/D for small noise intensity D.
"""
from __future__ import annotations

import operator

import numpy as np

from ..activations import Activation
from ..model import Network
from ..noise import Noise, NoiseSpec, per_layer_noise
from ..propagation import predict
from ..statistics import LayerStatistics
from ..utils.progress import progress_bar
from ..utils.resources import check_memory, check_run_time
from ..utils.seeds import seed_key
from ..utils.threads import blas_controller as _blas_controller  # noqa: F401  (tests use it)
from ..utils.threads import single_threaded_blas as _single_threaded_blas
from ..utils.validation import as_input, positive_int, require_network
from . import _kernels
from .compilation import announce_compilation
from .precision import BLOCK_ROWS, block_sum_error, float32_error_bound, float32_suffices, noise_floor

__all__ = ["simulate", "sample_outputs", "Simulation", "seed_key", "Z_95", "DTYPES"]

#: Values of ``dtype``: the type of the products, noise and activations (sums are float64).
DTYPES = ("float64", "float32", "auto")
#: Two-sided 95 % normal quantile, the confidence of ``rtol``.
Z_95 = 1.959963984540054
#: Parallel tiles (blocks of realisations) per chunk the kernel aims at.
_TILES = 64
#: Neuron values per chunk (realisations x inputs x widest layer) by default.
_CHUNK_VALUES = 1 << 20
#: Samples before ``rtol`` is first checked (standard errors need a few hundred).
_RTOL_MIN_SAMPLES = 1_000
#: Realisations of the pilot run that sets the scale of the running sums.
_PILOT_SAMPLES = 64
#: Largest |log2 scale| for which float32 runs sum the moments in float32 blocks.
_FLOAT32_SCALE_EXPONENT = 60
#: Runs with more noisy neuron updates than this show a progress bar (on a TTY).
_PROGRESS_UPDATES = 2e8

_IDENTITY = (_kernels.ACTIVATION_CODES["linear"], 1.0, 0.0)

announce_compilation(_kernels.simulate_tiles, estimate="about 5-15 s")  # measured: 5-12 s CPU on 2 cores


class Simulation(LayerStatistics):
    """Result of :func:`simulate`: Monte Carlo estimates with standard errors.

    Indexed like :class:`~noiseprop.propagation.Prediction` (layers k = 0..L;
    per-neuron arrays (N_k,) for one input, (B, N_k) for a batch), with the
    same ``mean``, ``var``, ``snr``, ``layer_snr``, ``correlated``,
    ``uncorrelated``, ``summary()`` and ``to_dict()``.

    Attributes
    ----------
    mean_stderr, var_stderr : list of ndarray
        Standard errors of ``mean[k]`` and ``var[k]`` (the variance's from the
        sample kurtosis, not assuming Gaussian outputs).
    correlated_stderr, noise_var_stderr : ndarray (L+1,) or (L+1, B)
        Standard errors of ``correlated`` and of ``noise_var`` (the layer's
        per-neuron average variance, including the correlation between its
        neurons' estimates).
    samples : int
        Realisations R used (fewer than asked when ``rtol`` was reached).
    seed : int
    control_variate : bool
        Whether the variance-reduced estimator was used.
    converged : bool or None
        With ``rtol``: whether every noisy layer's ``noise_var`` reached the
        asked precision; None without ``rtol``.
    dtype : str
        "float64" or "float32": the engine that produced the numbers.
    """

    def __init__(self, mean, var, correlated, batched, *, mean_stderr, var_stderr,
                 correlated_stderr, noise_var_stderr, samples, seed, control_variate, converged,
                 dtype="float64"):
        super().__init__(mean, var, correlated, batched)
        self.mean_stderr = [self._shape(e) for e in mean_stderr]
        self.var_stderr = [self._shape(e) for e in var_stderr]
        self.correlated_stderr = self._stack(correlated_stderr)
        self.noise_var_stderr = self._stack(noise_var_stderr)
        self.samples = samples
        self.seed = seed
        self.control_variate = control_variate
        self.converged = converged
        self.dtype = dtype

    def summary(self) -> list[dict]:
        """The per-layer rows of :meth:`LayerStatistics.summary` plus the
        standard errors ``noise_var_stderr`` and ``correlated_stderr`` of the
        batch-averaged ``noise_var`` and ``correlated``."""
        rows = super().summary()
        for row, nv_se, c_se in zip(rows, self.noise_var_stderr, self.correlated_stderr):
            row["noise_var_stderr"] = _batch_mean_stderr(nv_se)
            row["correlated_stderr"] = _batch_mean_stderr(c_se)
        return rows

    def to_dict(self, per_neuron: bool = True) -> dict:
        """JSON-ready form (see :meth:`LayerStatistics.to_dict`), with the
        standard errors, the sample count, seed and estimator."""
        payload = super().to_dict(per_neuron)
        if per_neuron:
            for row, m_se, v_se in zip(payload["layers"], self.mean_stderr, self.var_stderr):
                row["mean_stderr"] = m_se.tolist()
                row["var_stderr"] = v_se.tolist()
        payload.update(samples=self.samples, seed=self.seed, control_variate=self.control_variate,
                       converged=self.converged, dtype=self.dtype)
        return payload

    def __repr__(self) -> str:
        return (f"Simulation(sizes={self.sizes}, samples={self.samples}, "
                f"control_variate={self.control_variate}, dtype={self.dtype!r})")


def _batch_mean_stderr(stderr) -> float:
    """Standard error of the mean over independent inputs."""
    stderr = np.atleast_1d(stderr)
    largest = float(np.max(stderr))
    if not largest > 0:  # zeros (or nan)
        return largest
    return largest * float(np.sqrt(np.sum((stderr / largest) ** 2))) / stderr.size  # scaled: no overflow



def _kernel_activation(f: Activation, k: int) -> tuple[int, float, float]:
    """Kernel code and parameters (p0, p1) of layer k's activation (a code the kernel
    has a branch for: :func:`_kernels.check_codes`)."""
    if f.name not in _kernels.ACTIVATION_CODES:
        raise ValueError(
            f"layer {k}: activation {f.spec!r} has no Monte Carlo kernel; "
            f"supported: {', '.join(_kernels.ACTIVATION_CODES)}"
        )
    code = _kernels.ACTIVATION_CODES[f.name]
    _kernels.check_codes([code])
    return (code, *f.kernel_params())


class _Layer:
    """Everything the kernel needs for one layer, prepared once per run."""

    def __init__(self, k, weight, bias, activation, noise: Noise, x_mean, mean, slope_needed):
        self.k = k
        self.weight_t = np.ascontiguousarray(weight.T)
        self.bias = bias
        self.size = weight.shape[0]
        self.sd = np.sqrt(list(noise.intensities.values()))  # AU, AC, MU, MC
        self.pre = noise.placement == "pre"
        self.zbar = x_mean @ weight.T + bias                          # (B, N_k)
        self.shift = mean                                             # f(zbar), (B, N_k)
        self.slope = activation.derivative(self.zbar) if slope_needed else np.zeros_like(mean)
        self.activation = _kernel_activation(activation, k)


def _flat(arrays, real=np.float64) -> np.ndarray:
    """The arrays' values, row-major, one after another, as one array of type ``real``."""
    return np.concatenate([np.zeros(0)] + [np.ravel(a) for a in arrays]).astype(real, copy=False)


class _Engine:
    """Runs chunks of realisations through the layers and keeps running sums.

    ``real`` (numpy.float64 or numpy.float32) is the type of the products, the
    noise and the activations; the running sums are float64 either way.
    """

    def __init__(self, net: Network, layer_noise, x: np.ndarray, *, cv: bool, upto: int,
                 key: np.uint64, accumulate: bool, real=np.float64):
        self.cv, self.accumulate = cv, accumulate
        self.n_inputs = x.shape[0]
        self.prediction = predict(net, layer_noise, x, method="linear") if cv else None
        means = self.prediction.mean if cv else net.forward(x)  # (B, N_k) each: x is a batch
        self.layers = [
            _Layer(k, w, b, f, nz, means[k - 1], means[k], cv)
            for k, w, b, f, nz in zip(range(1, upto + 1), net.weights, net.biases,
                                      net.activations, layer_noise)
        ]
        first = self._first_layer()
        later = self.layers[1:]  # layer 1's weights are not needed: ``first`` holds its output
        self.offsets = np.cumsum([0] + [layer.size for layer in self.layers]).astype(np.int64)
        self.plan = _kernels.Plan(
            first=np.ascontiguousarray(first, dtype=real),
            weights_t=_flat([layer.weight_t for layer in later], real),
            weight_offsets=np.cumsum([0, 0] + [layer.weight_t.size for layer in later]).astype(np.int64),
            biases=_flat([layer.bias for layer in self.layers], real),
            offsets=self.offsets,
            codes=np.array([layer.activation[0] for layer in self.layers], dtype=np.int64),
            params=np.array([layer.activation[1:] for layer in self.layers], dtype=real),
            sds=np.array([layer.sd for layer in self.layers], dtype=real),
            pre=np.array([layer.pre for layer in self.layers]),
            shift=_flat([layer.shift for layer in self.layers]),
            inv_scale=np.ones(sum(layer.shift.size for layer in self.layers)),  # 1/scale: see calibrate
            seed_key=key,
            block_rows=0,  # every realisation's sums in float64 until calibrate has set the scales
        )
        # the control variate's linearised network; None compiles the plain kernel
        self.lin = _kernels.Linearisation(zbar=_flat([layer.zbar for layer in self.layers]),
                                          slope=_flat([layer.slope for layer in self.layers])) if cv else None
        _kernels.check_codes(self.plan.codes)
        self.scales = [np.ones(self.n_inputs) for _ in self.layers]
        self.fields = _kernels.NEURON_FIELDS[cv], _kernels.ROW_FIELDS[cv]
        self.neuron_sums = np.zeros((self.n_inputs, self.fields[0] * self.offsets[-1]))
        self.row_sums = np.zeros((self.n_inputs, len(self.layers), self.fields[1]))
        self.samples_done = 0

    def _first_layer(self) -> np.ndarray:
        """Layer 1 sees the noise-free input: its pre-activation is the same in
        every realisation, and with post placement so is f(z), which is then
        passed with the identity as activation (linearised at f(z))."""
        first = self.layers[0]
        if first.pre:
            return first.zbar
        first.activation = _IDENTITY
        first.zbar, first.slope = first.shift, np.ones_like(first.shift)
        return first.shift

    def calibrate(self, samples: int) -> None:
        """Choose the scale of every layer's running sums from a pilot run of
        ``samples`` realisations, then start afresh (the pilot's sums are
        dropped; the realisations are drawn again, from the same streams).

        The sums hold powers of d = (y - shift) / scale up to d^4 (and, per
        realisation, (sum_i d_i^2)^2): with scale = 1 they overflow once the
        noise variance passes ~1e150.  The scale of layer k and input b is the
        power of two nearest its RMS deviation in the pilot; scaling by a
        power of two is exact, so the estimates are the same to the last
        bit as without it wherever that did not overflow or underflow.
        """
        # The pilot sums with scale 1 may overflow (inf, and nan where infs of
        # both signs meet, in the sums of odd powers): harmless, only its mean
        # d^2 is read (an inf there gives the largest scale) and every sum is
        # then reset, so numpy's overflow warnings are silenced here alone.
        with np.errstate(over="ignore", invalid="ignore"):
            self.run_chunk(samples)
        n = self.samples_done
        parts, largest_exponent = [], 0
        for index, layer in enumerate(self.layers):
            lo, hi = self.offsets[index], self.offsets[index + 1]
            neuron = self.neuron_sums[:, self.fields[0] * lo: self.fields[0] * hi]
            second = neuron.reshape(self.n_inputs, self.fields[0], layer.size)[:, 1] / n  # mean d^2, (B, N)
            with np.errstate(over="ignore", invalid="ignore"):
                rms = np.sqrt(np.mean(second, axis=-1))
            exponent = np.where(np.isfinite(rms), np.round(np.log2(np.where(rms > 0, rms, 1.0))), 400.0)
            self.scales[index] = np.ldexp(1.0, np.clip(exponent, -400, 400).astype(int))
            largest_exponent = max(largest_exponent, float(np.max(np.abs(exponent), initial=0.0)))
            parts.append(np.repeat(1.0 / self.scales[index], layer.size))
        # with d = O(1), float32 runs sum d .. d^4 in float32 over blocks (precision.BLOCK_ROWS),
        # where 1/scale and d^4 stay well inside float32's range (2^-126 .. 2^128)
        float32 = self.plan.first.dtype == np.float32 and largest_exponent <= _FLOAT32_SCALE_EXPONENT
        self.plan = self.plan._replace(inv_scale=np.concatenate(parts), block_rows=BLOCK_ROWS if float32 else 0)
        self.neuron_sums[:] = 0.0
        self.row_sums[:] = 0.0
        self.samples_done = 0

    def run_chunk(self, samples: int, out: "np.ndarray | None" = None) -> None:
        """Simulate the next ``samples`` realisations, adding to the sums;
        write the last layer's outputs into ``out`` (samples, B, N) if given."""
        blocks = min(samples, _TILES)
        if self.accumulate:  # one slot of sums per tile: keep them below the chunk's own size
            blocks = max(1, min(blocks, _CHUNK_VALUES // self.neuron_sums.size))
        # without accumulation the kernel still takes a view of every tile's slot: give
        # it one of width 0 for every tile (no memory) rather than one slot for all
        fields = self.fields if self.accumulate else (0, 0)
        neuron_acc = np.zeros((blocks, self.n_inputs, fields[0] * self.offsets[-1]))
        row_acc = np.zeros((blocks, self.n_inputs, len(self.layers), fields[1]))
        _kernels.simulate_chunk(self.plan, self.lin, self.samples_done, samples, blocks, neuron_acc, row_acc,
                                self.accumulate, np.empty((0, 0, 0)) if out is None else out)
        if self.accumulate:
            self.neuron_sums += neuron_acc.sum(axis=0)
            self.row_sums += row_acc.sum(axis=0)
        self.samples_done += samples

    def estimates(self) -> dict:
        """Per-layer estimates and standard errors from the running sums."""
        n = self.samples_done
        out = {key: [] for key in ("mean", "var", "mean_se", "var_se", "corr", "corr_se", "nv_se")}
        for index, layer in enumerate(self.layers):
            lo, hi = self.offsets[index], self.offsets[index + 1]
            neuron = self.neuron_sums[:, self.fields[0] * lo: self.fields[0] * hi]
            neuron = neuron.reshape(self.n_inputs, self.fields[0], layer.size) / n
            scale = self.scales[index]  # (B,): the sums are of d = (y - shift) / scale
            lin = None
            if self.cv:
                lin = (self.prediction.var[layer.k] / scale[:, None] ** 2, self.prediction.correlated[layer.k] / scale**2)
            sums = np.moveaxis(neuron, 1, 0), np.moveaxis(self.row_sums[:, index] / n, 1, 0)  # fields first
            scaled = _layer_estimates(*sums, n, np.zeros_like(layer.shift), lin)
            for key, value in _unscaled(scaled, layer.shift, scale).items():
                out[key].append(value)
        return out


def _sample_var(mean, mean_sq, n):
    """Unbiased variance from the sample means of x and x^2."""
    return np.maximum(mean_sq - mean**2, 0.0) * (n / (n - 1))


def _layer_estimates(neuron, row, n, shift, lin) -> dict:
    """Estimates from the running sums divided by n (see _kernels.NEURON_FIELDS).

    ``lin`` is None (plain estimator) or the exact (variance, correlated part)
    of the linearised network (control variate).
    """
    K = _kernels
    d1, d2, d3, d4 = neuron[K.N_D1], neuron[K.N_D2], neuron[K.N_D3], neuron[K.N_D4]
    width = shift.shape[-1]
    pairs = width * (width - 1)
    var = _sample_var(d1, d2, n)
    central4 = d4 - 4 * d3 * d1 + 6 * d2 * d1**2 - 3 * d1**4
    sigma2 = d2 - d1**2
    var_se = np.sqrt(np.maximum(central4 - sigma2**2 * (n - 3) / (n - 1), 0.0) / n)
    corr = (_sample_var(row[K.R_S], row[K.R_S2], n) - var.sum(axis=-1)) / pairs if pairs else np.zeros(row.shape[-1])
    corr_se = np.sqrt(_sample_var(row[K.R_P], row[K.R_P2], n) / n)
    nv_se = np.sqrt(_sample_var(row[K.R_Q], row[K.R_Q2], n) / n) / width
    if lin is None:
        return dict(mean=shift + d1, var=var, mean_se=np.sqrt(var / n), var_se=var_se,
                    corr=corr, corr_se=corr_se, nv_se=nv_se)
    lin_var, lin_corr = lin
    e1, e2, diff2 = neuron[K.N_E1], neuron[K.N_E2], neuron[K.N_DIFF2]
    dq, dq2 = neuron[K.N_DQ], neuron[K.N_DQ2]
    var_e = _sample_var(e1, e2, n)
    corr_e = (_sample_var(row[K.R_SE], row[K.R_SE2], n) - var_e.sum(axis=-1)) / pairs if pairs else 0.0
    return dict(
        mean=shift + d1 - e1,
        var=np.maximum(lin_var + var - var_e, 0.0),
        mean_se=np.sqrt(np.maximum(diff2 - (d1 - e1) ** 2, 0.0) / n),
        var_se=np.sqrt(_sample_var(dq, dq2, n) / n),
        corr=lin_corr + corr - corr_e,
        corr_se=np.sqrt(_sample_var(row[K.R_DP], row[K.R_DP2], n) / n),
        nv_se=np.sqrt(_sample_var(row[K.R_DQ], row[K.R_DQ2], n) / n) / width,
    )


def _unscaled(estimates: dict, shift: np.ndarray, scale: np.ndarray) -> dict:
    """Estimates of d = (y - shift) / scale turned into estimates of y
    (``scale`` (B,), one per input; per-neuron arrays are (B, N), layer ones (B,))."""
    per_neuron = scale[:, None]
    return dict(
        mean=shift + estimates["mean"] * per_neuron,
        var=estimates["var"] * per_neuron**2,
        mean_se=estimates["mean_se"] * per_neuron,
        var_se=estimates["var_se"] * per_neuron**2,
        corr=estimates["corr"] * scale**2,
        corr_se=estimates["corr_se"] * scale**2,
        nv_se=estimates["nv_se"] * scale**2,
    )


def _precision_reached(estimates, rtol: float) -> bool:
    """Whether the 95 % half-width of every noisy layer's noise_var is <= rtol of it."""
    for var, nv_se in zip(estimates["var"], estimates["nv_se"]):
        noise_var = var.mean(axis=-1)
        noisy = noise_var > 0
        if np.any(Z_95 * nv_se[noisy] > rtol * noise_var[noisy]):
            return False
    return True


def _validated(net, noise, x, samples, chunk_size, n_min=1):
    require_network(net)
    layer_noise = per_layer_noise(noise, net.depth)
    for k, f in enumerate(net.activations, start=1):
        _kernel_activation(f, k)
    xb, batched = as_input(x, net.sizes[0])
    samples = positive_int("samples", samples)
    if samples < n_min:
        raise ValueError(f"samples must be at least {n_min} to estimate variances, got {samples}")
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_VALUES // (xb.shape[0] * max(net.sizes[1:])))
    chunk_size = min(positive_int("chunk_size", chunk_size), samples)
    _check_resources(net, xb.shape[0], samples, chunk_size)
    return layer_noise, xb, batched, samples, chunk_size


def _check_resources(net: Network, batch: int, samples: int, chunk_size: int) -> None:
    """Refuse a simulation whose buffers exceed the memory limit or whose work the time limit.

    Memory: the chunk's neuron values (chunk x B x widest layer, a few
    copies) and the per-tile running sums (tiles x B x fields x all neurons).
    Time: one multiply-add per weight, realisation and input.
    """
    neurons = sum(net.sizes[1:])
    buffers = 8 * batch * (4 * chunk_size * max(net.sizes[1:]) + _TILES * _kernels.NEURON_FIELDS[True] * neurons)
    check_memory(buffers, f"the Monte Carlo buffers ({batch} inputs x {neurons} neurons)",
                 "use fewer inputs per call or a smaller chunk_size")
    macs = sum(n * m for m, n in zip(net.sizes[:-1], net.sizes[1:]))
    check_run_time(samples * batch * (macs + 4 * neurons),
                   f"{samples} Monte Carlo realisations (samples) of {batch} input(s) through {macs} weights",
                   "use fewer samples")


def simulate(
    net: Network,
    noise: NoiseSpec,
    x,
    samples: int = 100_000,
    seed: int = 0,
    *,
    rtol: "float | None" = None,
    control_variate: bool = False,
    chunk_size: "int | None" = None,
    progress: "bool | None" = None,
    dtype: str = "float64",
) -> Simulation:
    """Monte Carlo estimate of mean, variance and SNR of every neuron in every layer.

    Draws ``samples`` realisations of the noisy network of docs/model.md §2
    (every noise term independent across neurons, layers and realisations as
    the model says) and estimates per-layer statistics with standard errors.

    Parameters
    ----------
    net : Network
        Activations linear, sigmoid, tanh, relu, erf or heaviside.
    noise : Noise or sequence of Noise
        One for every layer 1..L or one per layer (intensities are variances;
        ``None`` entries are noise-free layers).  The input is noise-free.
    x : array_like(float), shape (N_0,) or (B, N_0)
        One input or a batch (independent noise for every input).
    samples : int, default 100_000
        Realisations R (>= 4); with ``rtol`` the most that will be drawn.
    seed : int, default 0
        Non-negative; the same seed gives the same numbers with any number of
        threads and any ``chunk_size`` (up to the rounding of the sums).
    rtol : float, optional
        Stop as soon as every noisy layer's ``noise_var`` (its per-neuron
        average variance) is known to +-rtol relative at 95 % confidence,
        checked after 1000 realisations and then at doubling counts (at
        least every ``chunk_size``).  ``converged`` says whether it was
        reached.
    control_variate : bool, default False
        Use the variance-reduced estimator (module docstring): much faster to
        a given precision for small noise, but it leans on the linear-response
        values of ``predict`` -- use the plain estimator to verify those.
    chunk_size : int, optional
        Realisations per chunk (memory ~ chunk_size x B x widest layer x 8
        bytes, a few per layer); by default about 1e6 neuron values.
    progress : bool, optional
        Show a tqdm progress bar; by default only for long runs (> 2e8 neuron
        updates) on a terminal.
    dtype : {"float64", "float32", "auto"}, default "float64"
        Type of the products, noise draws and activations; the moments are
        accumulated in float64 either way (float32 runs add float32 sums of
        blocks of 32 realisations to them, a bounded error that the "auto"
        rule includes).  float32 is faster and has its
        own generator (a 32-bit hash and a float32 Box-Muller transform), so a
        float32 run and the float64 run of the same seed are different,
        equally distributed realisations: they agree within their standard
        errors, not to rounding.  "auto" takes float32 only
        where its rounding error is provably below a tenth of the run's
        standard errors: a forward error bound e of every neuron (unit
        roundoff 2^-24 through every product, noise step and activation,
        relative error 5e-7 of a draw, in RMS terms) must satisfy e <= 0.1 sigma / sqrt(2 R)
        (sigma the neuron's noise standard deviation, R the samples); never
        with the control variate, a discontinuous activation or a noise-free
        neuron (:mod:`noiseprop.simulation.precision`).  The rule is checked
        before the run on a lower estimate of sigma and again on the measured
        statistics, and the run is repeated in float64 if it fails;
        ``Simulation.dtype`` says which was used.

    Returns
    -------
    Simulation

    Raises
    ------
    ValueError
        For a bad network, noise, input, sample count, seed or rtol.

    Examples
    --------
    >>> from noiseprop import Network, Noise, simulate
    >>> net = Network.symmetric(depth=2, width=3, weight=0.5, activation="linear")
    >>> sim = simulate(net, Noise(AU=1e-2), [1.0, 1.0, 1.0], samples=40_000, seed=1)
    >>> bool(abs(sim.var[2][0] - 1e-2 * (1 + 0.75)) < 4 * sim.var_stderr[2][0])
    True
    """
    layer_noise, xb, batched, samples, chunk = _validated(net, noise, x, samples, chunk_size, n_min=4)
    key = seed_key(seed)
    if rtol is not None and not (isinstance(rtol, (int, float)) and 0 < rtol < 1):
        raise ValueError(f"rtol must be a number in (0, 1), got {rtol!r}")
    dtype = _dtype_name(dtype, allowed=DTYPES)
    cv = bool(control_variate)
    if dtype == "auto":
        dtype = "float32" if not cv and _float32_suffices(net, layer_noise, xb, samples) else "float64"
        engine = _run(net, layer_noise, xb, samples, chunk, key, cv, rtol, progress, dtype)
        if dtype == "float32" and not _float32_suffices(net, layer_noise, xb, engine.samples_done,
                                                        engine.estimates()):
            dtype = "float64"
            engine = _run(net, layer_noise, xb, samples, chunk, key, cv, rtol, progress, dtype)
    else:
        engine = _run(net, layer_noise, xb, samples, chunk, key, cv, rtol, progress, dtype)
    est = engine.estimates()
    return simulation_from_estimates(
        xb, est, batched, samples=engine.samples_done, seed=operator.index(seed), control_variate=cv,
        converged=None if rtol is None else _precision_reached(est, rtol), dtype=dtype,
    )


def _dtype_name(dtype, allowed) -> str:
    """The name of a dtype given as a string or a NumPy float type, checked against ``allowed``."""
    try:
        name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in allowed:
        raise ValueError(f"dtype must be one of {', '.join(map(repr, allowed))}, got {dtype!r}")
    return name


def _run(net, layer_noise, xb, samples, chunk, key, cv, rtol, progress, dtype) -> _Engine:
    """All chunks of one simulate run (until ``samples`` or ``rtol``)."""
    updates = samples * xb.shape[0] * sum(net.sizes[1:])
    with _progress_bar(samples, progress, updates) as bar, _single_threaded_blas():
        engine = _Engine(net, layer_noise, xb, cv=cv, upto=net.depth, key=key, accumulate=True,
                         real=np.dtype(dtype).type)
        engine.calibrate(min(samples, _PILOT_SAMPLES))
        while engine.samples_done < samples:
            step = min(chunk, samples - engine.samples_done)
            if rtol is not None:  # check early, then at doubling sample counts up to the chunk size
                step = min(step, max(_RTOL_MIN_SAMPLES, engine.samples_done))
            engine.run_chunk(step)
            bar.update(step)
            if (rtol is not None and engine.samples_done >= _RTOL_MIN_SAMPLES
                    and _precision_reached(engine.estimates(), rtol)):
                break
    return engine


def simulation_from_estimates(first: np.ndarray, est: dict, batched: bool, **meta) -> Simulation:
    """A :class:`Simulation` from the noise-free layer 0 ``first`` (B, N_0) and the
    per-layer estimates ``est`` (lists over layers 1..L of the keys of
    ``_layer_estimates``); ``meta``: samples, seed, control_variate, converged.
    Layer 0 has zero variance and zero standard errors."""
    zeros = np.zeros(first.shape)
    no_noise = np.zeros(first.shape[0])
    return Simulation(
        [first] + est["mean"], [zeros] + est["var"], [no_noise] + est["corr"], batched,
        mean_stderr=[zeros] + est["mean_se"], var_stderr=[zeros] + est["var_se"],
        correlated_stderr=[no_noise] + est["corr_se"], noise_var_stderr=[no_noise] + est["nv_se"], **meta,
    )


def _float32_suffices(net, layer_noise, xb, samples, estimates=None) -> bool:
    """The float32 rule of :mod:`.precision` for ``samples`` realisations: with a lower
    estimate of every neuron's noise (before a run) or with a run's ``estimates``."""
    if estimates is None:
        means, variances = noise_floor(net, layer_noise, xb)
    else:
        means, variances = [xb] + estimates["mean"], [np.zeros(xb.shape)] + estimates["var"]
    lipschitz = [f.lipschitz() for f in net.activations]
    bounds = float32_error_bound(net, layer_noise, xb, means, variances, lipschitz)
    centres = net.forward(xb)  # the noise-free values the float32 block sums are centred on
    bounds = [e + block_sum_error(v, m - c) for e, v, m, c in zip(bounds, variances[1:], means[1:], centres[1:])]
    return float32_suffices(bounds, variances[1:], samples)


def sample_outputs(net: Network, noise: NoiseSpec, x, samples: int, seed: int = 0, layer: int = -1,
                   dtype: str = "float64") -> np.ndarray:
    """Raw noisy outputs of one layer, realisation by realisation.

    Same noise model and random streams as :func:`simulate` (plain
    estimator), without the statistics.

    Parameters
    ----------
    net, noise, x :
        As for :func:`simulate`.
    samples : int
        Realisations R.
    seed : int, default 0
    layer : int, default -1
        Layer k = 1..L, or negative to count from the output (-1 = L).
    dtype : {"float64", "float32"}, default "float64"
        Type of the products, noise and activations (see :func:`simulate`);
        the outputs are returned as float64.

    Returns
    -------
    ndarray
        (R, B, N_k) for a batch x of shape (B, N_0), (R, N_k) for one input.

    Examples
    --------
    >>> from noiseprop import Network, Noise
    >>> net = Network.symmetric(depth=3, width=4, weight=0.25)
    >>> sample_outputs(net, Noise(AU=1e-3), [1.0] * 4, samples=5, seed=0, layer=2).shape
    (5, 4)
    """
    layer_noise, xb, batched, samples, chunk = _validated(net, noise, x, samples, None)
    try:
        index = operator.index(layer)
    except TypeError:
        index = None
    if index is None or not (-net.depth <= index <= net.depth) or index == 0:
        raise ValueError(f"layer must be 1..{net.depth} or -1..-{net.depth}, got {layer!r}")
    upto = index if index > 0 else net.depth + 1 + index
    real = np.dtype(_dtype_name(dtype, allowed=DTYPES[:2])).type
    check_memory(8 * samples * xb.shape[0] * net.sizes[upto],
                 f"{samples} sampled outputs (samples) of {xb.shape[0]} input(s) x {net.sizes[upto]} neurons",
                 "use fewer samples")
    out = np.empty((samples, xb.shape[0], net.sizes[upto]))
    with _single_threaded_blas():
        engine = _Engine(net, layer_noise, xb, cv=False, upto=upto, key=seed_key(seed), accumulate=False,
                         real=real)
        while engine.samples_done < samples:
            start = engine.samples_done
            step = min(chunk, samples - start)
            engine.run_chunk(step, out[start:start + step])
    return out if batched else out[:, 0]


def _progress_bar(total: int, progress, updates: float):
    """The bar of a run: shown as ``progress`` says, by default for long runs on a terminal."""
    return progress_bar(total, desc="simulate", unit="samples", enabled=progress, work=updates,
                        min_work=_PROGRESS_UPDATES)

