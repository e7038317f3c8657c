"""Analytic linear-response propagation of noise (docs/model.md §4).

With m_k the mean and Sigma_k the covariance of y_k (m_0 = x, Sigma_0 = 0):

    zbar_k  = W_k m_{k-1} + b_k
    Sz_k    = W_k Sigma_{k-1} W_k^T
    m_k     = f_k(zbar_k),   J_k = diag f_k'(zbar_k),   Sf_k = J_k Sz_k J_k
    Sigma_k = Sf_k + (m_k m_k^T + Sf_k) o (D_MU I + D_MC 11^T) + D_AU I + D_AC 11^T

("post" placement; "pre" applies the noise term to (zbar_k, Sz_k) before the
activation).  Every line is exact for affine activations and first order in
the noise otherwise.

The "moments" method replaces the third line by averages over a Gaussian
z_k ~ N(zbar_k, Sz_k) (see :mod:`noiseprop.moments`):

    m_k      = E[f_k(z_k)]
    Sf_k,ii  = Var[f_k(z_k,i)]                                   (exact for Gaussian z)
    Sf_k,ij  = E[f'_i] E[f'_j] Sz_k,ij + E[f''_i] E[f''_j] Sz_k,ij^2 / 2     (i != j)

with f'_i = f_k'(z_k,i).  The off-diagonal line is Mehler's expansion of the
covariance of two functions of jointly Gaussian variables, cut after the
second order in Sz_k,ij (the first term alone is Stein's lemma, statistical
linearisation).
"""
from __future__ import annotations

import warnings

import numpy as np

from .methods import DEFAULT_METHOD, METHODS
from .model import Network
from .moments import clamp_rounding, gaussian_moments, largest_variance, mehler_covariance
from .noise import Noise, NoiseSpec, per_layer_noise
from .statistics import LayerStatistics, mean_off_diagonal
from .utils.resources import check_memory, check_predict, predict_bytes
from .utils.validation import as_input, require_network

__all__ = ["predict", "Prediction", "propagate_layer", "add_noise_covariance", "METHODS",
           "DEFAULT_METHOD", "ERROR_WARNING", "initial_state", "propagate_state", "state_moments"]

#: ``predict`` warns when a layer's relative error estimate exceeds this.
ERROR_WARNING = 0.05
#: Calibration of the mixture's error estimate (docs/closure.md): weights of
#: its relative distance to "moments", to "linear" and of the size of the
#: second-order Mehler term (layer-mean variances), chosen on the closure
#: matrix (benchmarks/closure_matrix.py): they cover the measured error in
#: 96.6 % of its 960 (case, layer) pairs (chosen on its previous run, 95.2 %),
#: and no error there exceeds 5 %.
ERROR_WEIGHT_MOMENTS = 1.0
ERROR_WEIGHT_LINEAR = 0.1
ERROR_WEIGHT_MEHLER = 1.0

class Prediction(LayerStatistics):
    """Result of :func:`predict`: per-layer statistics (see
    :class:`~noiseprop.statistics.LayerStatistics`), ``method`` (one of
    :data:`METHODS`), ``layers`` (the layers whose noise statistics were
    computed: all of them unless ``predict(..., layers=...)`` chose some) and,
    when asked for, ``cov``: list indexed by layer of covariances (N_k, N_k) or
    (B, N_k, N_k).  For a layer not in ``layers`` the variances, SNRs and
    correlated parts are NaN and ``cov[k]`` is None; its mean is still given.
    ``error_estimate`` is the estimated relative error of every layer's
    ``noise_var``, shaped like ``noise_var`` ((L+1,) or (L+1, B); 0 for the
    input), or None where it was not computed (see :func:`predict`).
    """

    def __init__(self, mean, var, correlated, batched, cov=None, method="linear", error_estimate=None,
                 layers=None):
        super().__init__(mean, var, correlated, batched)
        self.cov = None if cov is None else [None if c is None else self._shape(c) for c in cov]
        self.method = method
        self.layers = tuple(range(self.depth + 1)) if layers is None else tuple(layers)
        self.error_estimate = None if error_estimate is None else self._stack(error_estimate)

    def summary(self) -> list[dict]:
        """The rows of :meth:`LayerStatistics.summary` plus ``error_estimate``:
        the relative error estimate of the layer's ``noise_var`` (largest over
        the batch; None where it was not computed)."""
        rows = super().summary()
        for k, row in enumerate(rows):
            row["error_estimate"] = (None if self.error_estimate is None
                                     else float(np.max(self.error_estimate[k])))
        return rows

    def __repr__(self) -> str:
        snr = ", ".join(f"{row['snr_db']:.1f}" for row in self.summary()[1:])
        return (
            f"Prediction(sizes={self.sizes}, method={self.method!r}, "
            f"layer SNR [dB] of layers 1..L: [{snr}])"
        )


def add_noise_covariance(mean: np.ndarray, cov: np.ndarray, noise: Noise) -> np.ndarray:
    """Covariance after the noise of one layer acts on signals (mean, cov).

    Computes cov + (m m^T + cov) o (D_MU I + D_MC 11^T) + D_AU I + D_AC 11^T,
    exact for any signal distribution (the noise is independent of it).

    Parameters
    ----------
    mean : ndarray (B, N)
    cov : ndarray (B, N, N)
    noise : Noise
    """
    out = cov * (1.0 + noise.MC) + noise.AC
    if noise.MC:
        out += noise.MC * mean[:, :, None] * mean[:, None, :]
    diagonal = np.arange(mean.shape[1])
    out[:, diagonal, diagonal] += noise.MU * (mean**2 + cov[:, diagonal, diagonal]) + noise.AU
    return out


def propagate_layer(mean, cov, weight, bias, activation, noise: Noise, method: str = "linear",
                    mehler_order: int = 2):
    """One layer of the recursion (module docstring).

    Parameters
    ----------
    mean : ndarray (B, N_{k-1})
    cov : ndarray (B, N_{k-1}, N_{k-1}) or None
        None stands for a zero covariance (noise-free input).
    weight, bias, activation, noise : layer k's parameters.
    method : {"linear", "moments"}
    mehler_order : {2, 1}
        "moments" only: the order of Mehler's expansion of the covariances
        between neurons (1: Stein's lemma alone; the error estimate uses the
        difference as the size of the truncated series).

    Returns
    -------
    mean, cov : ndarray (B, N_k), ndarray (B, N_k, N_k)
    """
    zbar = mean @ weight.T + bias
    if cov is None:
        cov_z = np.zeros(zbar.shape + zbar.shape[-1:])
    else:
        cov_z = clamp_rounding(weight @ cov @ weight.T, weight, largest_variance(cov))
    if noise.placement == "pre":
        cov_z = add_noise_covariance(zbar, cov_z, noise)
    if method == "moments":
        new_mean, new_cov, _ = activation_moments(zbar, cov_z, activation, mehler_order)
    else:
        slope = activation.derivative(zbar)
        new_mean = activation(zbar)
        new_cov = slope[:, :, None] * cov_z * slope[:, None, :]
    if noise.placement == "post":
        new_cov = add_noise_covariance(new_mean, new_cov, noise)
    return new_mean, new_cov


def initial_state(x: np.ndarray, method: str):
    """The noise-free input (B, N_0) as the state that :func:`propagate_state`
    carries for ``method``: (mean, None) for "linear" and "moments", a
    one-component :class:`~noiseprop.mixture.Mixture` for "mixture"."""
    if method == "mixture":
        from .mixture import initial_mixture

        return initial_mixture(x)
    return x, None


def propagate_state(state, weight, bias, activation, noise: Noise, method: str):
    """One layer of any method on its state (:func:`initial_state`), for
    callers that step through a network layer by layer (e.g. the mitigation
    planner, which reuses the states of unchanged layers).  The mixture's
    step takes the whole batch at once (no chunks, unlike :func:`predict`).
    Every method's step raises a ResourceLimit (ValueError) before allocating
    when its covariances would exceed the memory limit."""
    if method == "mixture":
        from .mixture import propagate_mixture, step_bytes

        check_memory(step_bytes(state, weight.shape[0], noise),
                     f"one mixture step into a layer of {weight.shape[0]} neurons for "
                     f"{state.weight.shape[0]} input(s) at once", "use fewer inputs or method 'moments'")
        return propagate_mixture(state, weight, bias, activation, noise)
    mean = state[0]
    check_memory(predict_bytes(weight.shape[::-1], mean.shape[0], method=method)[0],
                 f"one {method} step into a layer of {weight.shape[0]} neurons (covariance matrices, N^2 per "
                 f"input) for {mean.shape[0]} input(s) at once", "use a narrower network or fewer inputs")
    return propagate_layer(*state, weight, bias, activation, noise, method)


def state_moments(state, method: str):
    """Total (mean (B, N), cov (B, N, N) or None) of a state."""
    if method == "mixture":
        from .mixture import mixture_moments

        return (state.mean[:, 0, :], None) if state.cov is None else mixture_moments(state)
    return state


def activation_moments(zbar, cov_z, activation, mehler_order: int = 2):
    """Mean and covariance of f(z) for Gaussian z ~ N(zbar, cov_z), per input,
    and the mean slopes E[f'(z)] (Stein's lemma: Cov(v, f(z)) = Cov(v, z)
    diag E[f'(z)] for any v jointly Gaussian with z).

    Diagonal: the exact Var[f(z_i)]; off-diagonal: Mehler's expansion to
    second order, E[f'_i] E[f'_j] S_ij + E[f''_i] E[f''_j] S_ij^2 / 2.  The
    result is positive semi-definite: both terms are (Schur products of
    positive semi-definite matrices), and the exact variance is at least
    their diagonal (Mehler's series has non-negative terms on the diagonal).
    """
    diagonal = np.arange(zbar.shape[1])
    moments = gaussian_moments(activation, zbar, cov_z[:, diagonal, diagonal])
    curvature = moments.curvature if mehler_order >= 2 else np.zeros_like(moments.curvature)
    cov_f = mehler_covariance(moments.slope, curvature, cov_z)
    cov_f[:, diagonal, diagonal] = moments.var
    return moments.mean, cov_f, moments.slope



def _check_finite_mean(mean: np.ndarray, k: int) -> None:
    """A ValueError naming layer k when its mean or its square (the signal power) overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.all(np.isfinite(mean * mean))
    if not finite:
        raise ValueError(
            f"layer {k}: the mean signal or its power E[y]^2 overflows; rescale the weights, biases or input"
        )


def _check_signal(mean: np.ndarray, weight, bias, activation, k: int) -> None:
    """:func:`_check_finite_mean` on f(W m + b) for the mean m (B, N_{k-1})
    of the layer below, before layer k's work: a signal that overflows is
    reported by that ValueError rather than after numpy's overflow warnings
    from the noise terms computed with it.  It overflows only where layer
    k's mean E[f(z)] does too: equal for affine f, at least relu(E z) by
    Jensen for relu, and the other activations are bounded."""
    with np.errstate(over="ignore", invalid="ignore"):
        signal = activation(mean @ weight.T + bias)
    _check_finite_mean(signal, k)


def _layers(net: Network, layer_noise, x: np.ndarray, method: str, mehler_order: int = 2):
    """(mean, cov) of layers 1..L for inputs x (B, N_0), by one method
    (``mehler_order``: :func:`propagate_layer`)."""
    if method == "mixture":
        return _mixture_layers(net, layer_noise, x)
    mean, cov, out = x, None, []
    for k, (w, b, f, nz) in enumerate(zip(net.weights, net.biases, net.activations, layer_noise), start=1):
        _check_signal(mean, w, b, f, k)
        try:
            mean, cov = propagate_layer(mean, cov, w, b, f, nz, method, mehler_order)
        except ValueError as err:
            raise ValueError(f"layer {k}: {err}") from None
        _check_finite_mean(mean, k)
        out.append((mean, cov))
    return out


def _mixture_layers(net: Network, layer_noise, x: np.ndarray):
    """The "mixture" closure (:mod:`noiseprop.mixture`), inputs in chunks
    whose work arrays stay below about 64 MB; the chunks' layers are joined
    one layer at a time (at most one layer's covariances held twice)."""
    from .mixture import chunk_size, mixture_layers

    step = chunk_size(net.sizes, layer_noise)
    parts = [mixture_layers(net, layer_noise, x[i:i + step], _check_finite_mean, _check_signal)
             for i in range(0, x.shape[0], step)]
    if len(parts) == 1:
        return parts[0]
    layers = []
    for k in range(net.depth):
        pieces = [part[k] for part in parts]
        for part in parts:
            part[k] = None
        layers.append(tuple(np.concatenate(arrays) for arrays in zip(*pieces)))
    return layers


def _relative(a: np.ndarray, b: np.ndarray, floor: "np.ndarray | float" = 0.0) -> np.ndarray:
    """|a - b| / |a|; 0 where |a - b| <= floor (rounding: e.g. a variance that
    cancels exactly, as behind a ghost neuron) and where both are equal."""
    return _distance(a, b, a, floor)


#: Differences of layer variances below this times the largest layer
#: variance up to that layer count as rounding in the error estimate.
_ROUNDING_RELATIVE = 1e-12


def _layer_noise_var(layers) -> np.ndarray:
    """Per-layer mean variance (L, B) of a list of (mean, cov) per layer."""
    return np.array([np.mean(np.diagonal(cov, axis1=1, axis2=2), axis=-1) for _, cov in layers])


def _error_estimate(net, layer_noise, x, method, layers) -> np.ndarray:
    """Relative error estimate (L + 1, B) of each layer's mean variance.

    For "mixture": ERROR_WEIGHT_MOMENTS |V_mix - V_moments| / V_mix +
    ERROR_WEIGHT_LINEAR |V_mix - V_linear| / V_mix + ERROR_WEIGHT_MEHLER
    |V_moments - V_moments,1| / V_mix, the size of what the shared-noise
    treatment, the curvature of the activations and the last kept order of
    Mehler's series (V_moments,1: "moments" with its first order only) change,
    weighted as calibrated on the closure matrix; the neglected orders are
    taken to be at most as large as the last kept one.  For another method:
    its distance to "mixture" plus the mixture's own estimate.
    """
    computed = {method: _layer_noise_var(layers)}
    with np.errstate(over="ignore", invalid="ignore"):  # a method that overflows: an unbounded estimate
        for other in METHODS:
            if other not in computed:
                computed[other] = _layer_noise_var(_layers(net, layer_noise, x, other))
        stein = _layer_noise_var(_layers(net, layer_noise, x, "moments", mehler_order=1))
    mix = computed["mixture"]
    floor = _ROUNDING_RELATIVE * np.maximum.accumulate(np.abs(mix), axis=0)
    estimate = (ERROR_WEIGHT_MOMENTS * _relative(mix, computed["moments"], floor)
                + ERROR_WEIGHT_LINEAR * _relative(mix, computed["linear"], floor)
                + ERROR_WEIGHT_MEHLER * _distance(computed["moments"], stein, mix, floor))
    if method != "mixture":
        estimate = estimate + _relative(computed[method], mix, floor)
    estimate = np.where(np.isnan(estimate), np.inf, estimate)  # inf - inf: no bound either
    return np.concatenate([np.zeros((1, x.shape[0])), estimate])


def _distance(a: np.ndarray, b: np.ndarray, scale: np.ndarray, floor) -> np.ndarray:
    """|a - b| / |scale|; 0 where a = b or |a - b| <= floor (rounding)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.abs(a - b) / np.abs(scale)
    return np.where((a == b) | (np.abs(a - b) <= floor), 0.0, out)


def _warn_error(estimate: np.ndarray, method: str) -> None:
    """A warning naming the worst layer when an estimate exceeds ERROR_WARNING."""
    worst = np.max(estimate, axis=1)
    if np.max(worst) > ERROR_WARNING:
        k = int(np.argmax(worst))
        warnings.warn(
            f"predict(method={method!r}): the estimated error of layer {k}'s noise variance is "
            f"{100 * worst[k]:.1f} % (over {100 * ERROR_WARNING:g} %); check with simulate()",
            stacklevel=3,
        )


def predict(
    net: Network,
    noise: NoiseSpec,
    x,
    full_covariance: bool = False,
    method: str = DEFAULT_METHOD,
    error_estimate: "bool | None" = None,
    layers=None,
) -> Prediction:
    """Predict mean, variance and SNR of every neuron in every layer.

    Propagation of mean and covariance layer by layer (docs/model.md §4), by
    one of three methods:

    - ``"mixture"`` (default, :data:`DEFAULT_METHOD`): the shared-noise
      mixture closure of :mod:`noiseprop.mixture`.  Like "moments", but the
      correlated draws (xi_AC, xi_MC: one scalar per layer) are integrated
      explicitly by quadrature and the law of each layer is carried as a
      mixture of 16 components, so that common random shifts and scales are
      not folded into a Gaussian; before every nonlinear activation each
      component is also split along the two leading directions of its
      pre-activation covariance (quadrature), so that the non-Gaussian law
      those spreads acquire is carried too; uncorrelated multiplicative
      noise before the activation is averaged by quadrature.  With shared
      noise alone the draws are integrated on a tensor grid (no merge).
      Costs several to tens of times "moments" (docs/closure.md).  The
      most accurate method on the closure matrix.
    - ``"linear"``: linear response, m_k = f(zbar_k) and
      J = diag f'(zbar_k); exact for affine activations, first order in the
      noise intensities otherwise.
    - ``"moments"``: the mean and variance of f(z) are averaged over a
      Gaussian pre-activation z ~ N(zbar_k, diag Sz_k) (closed forms or
      quadrature, :mod:`noiseprop.moments`); covariances between neurons by
      Mehler's expansion to second order, E[f'_i] E[f'_j] Sz_ij +
      E[f''_i] E[f''_j] Sz_ij^2 / 2.  Identical to "linear" for affine
      activations.  Its approximations: z is taken as Gaussian (a sum over
      many inputs; it is not exactly, since f of the previous layer and
      multiplicative noise skew it) and the off-diagonal covariances omit
      the third and higher orders in Sz_ij.  It captures the shift of the mean
      and the change of the variance caused by the curvature of f at large
      noise, and carries noise through activations whose slope vanishes at
      the working point (relu below 0, heaviside); it can be far off (tens of
      percent) under correlated or multiplicative noise of 1e-2 and more.

    Parameters
    ----------
    net : Network
    noise : Noise or sequence of Noise
        One Noise for every layer 1..L, or one per layer (intensities are
        variances).  The input is noise-free.
    x : array_like(float), shape (N_0,) or (B, N_0)
        One input or a batch of inputs.
    full_covariance : bool, default False
        Also return the covariance matrix of every layer (``.cov``).
    method : {"mixture", "linear", "moments"}, default :data:`DEFAULT_METHOD`
        How the mean and covariance pass through the activations (above).
    error_estimate : bool, optional
        Compute ``.error_estimate`` (and warn when it exceeds
        :data:`ERROR_WARNING`).  Default: only for "mixture", whose estimate
        costs "linear" and "moments" runs (cheap beside it); for the other
        methods it costs a "mixture" run.  Not given with ``layers``.
    layers : int or sequence of int, optional
        Compute the noise statistics of these layers (0..L) only.  With
        "linear" they are found by adjoint propagation from each chosen
        layer back to every noise source (:mod:`noiseprop.output_statistics`):
        O(N_t N^2) instead of O(N^3) per layer and input, no N x N matrix
        of the other layers, inputs in memory-bounded chunks.  It keeps every
        term of the full recursion except uncorrelated multiplicative noise
        acting on the noise that reaches a hidden layer (second order in the
        intensities; exact without MU noise).  Other layers get NaN variances
        and ``cov[k] = None``; every mean is given.  Other methods need every
        hidden variance: they run the full propagation and keep the chosen
        layers (no saving).

    Returns
    -------
    Prediction
        ``.mean[k]``, ``.var[k]``, ``.snr[k]`` for layers k = 0..L, each
        (N_k,) or (B, N_k); ``.layer_snr``, ``.correlated`` and
        ``.uncorrelated`` (docs/model.md §3); ``.cov`` if asked; ``.method``;
        ``.error_estimate``: per layer, the estimated relative error of the
        layer's mean noise variance ``noise_var`` (shape of ``noise_var``;
        None when not computed).

    Raises
    ------
    ValueError
        For a bad network, noise, input or method, and naming the layer
        whose mean signal (or its square) overflows.
    noiseprop.utils.resources.ResourceLimit
        (a ValueError) before anything is allocated, when the covariances
        (about 4 B N_k^2 floats for the widest layer) exceed the memory limit.  An overflowing *variance*
        (enormous noise) is not an error: it shows as inf or nan.

    Warns
    -----
    UserWarning
        When a layer's error estimate exceeds :data:`ERROR_WARNING` (5 %).

    Examples
    --------
    >>> from noiseprop import Network, Noise, predict
    >>> net = Network.symmetric(depth=3, width=4, weight=0.25, activation="linear")
    >>> res = predict(net, Noise(AC=1e-3), [1.0, 1.0, 1.0, 1.0])
    >>> [round(float(v), 6) for v in res.var[3][:1]]
    [0.003]
    >>> res.method, round(float(res.error_estimate[3]), 9)
    ('mixture', 0.0)
    """
    require_network(net)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if layers is not None:
        from .output_statistics import selected_layers

        return selected_layers(net, noise, x, layers, full_covariance, method)
    layer_noise = per_layer_noise(noise, net.depth)
    mean, batched = as_input(x, net.sizes[0])
    # before any allocation that grows with the widths: covariances are N_k^2 per input
    check_predict(net.sizes, mean.shape[0], full_covariance, method, noise=layer_noise)
    zeros = np.zeros(mean.shape[0])
    means, variances, correlated = [mean], [np.zeros_like(mean)], [zeros]
    covariances = [np.zeros(mean.shape + mean.shape[-1:])] if full_covariance else None
    layers = _layers(net, layer_noise, mean, method)
    for layer_mean, cov in layers:
        means.append(layer_mean)
        variances.append(np.diagonal(cov, axis1=1, axis2=2).copy())
        correlated.append(mean_off_diagonal(cov))
        if full_covariance:
            covariances.append(cov)
    estimate = None
    if error_estimate or (error_estimate is None and method == "mixture"):
        estimate = _error_estimate(net, layer_noise, mean, method, layers)
        _warn_error(estimate, method)
    return Prediction(means, variances, correlated, batched, covariances, method, estimate)
