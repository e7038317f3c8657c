"""Symbolic derivation of the noise recursions (docs/model.md §§2, 4, 5 and 6).

The linear-response step of docs/model.md §4 is written with sympy on
covariances of the form ``u I + c J`` (``J`` = all-ones matrix: ``u`` the
uncorrelated and ``c`` the correlated part, docs/model.md §3), and the per-layer
recursions, their closed forms, deep limits, gains, the bounded-noise
condition, the critical slope and the SNR ceiling are read off from it; no
result is typed in by hand.

Two network families:

``"symmetric"`` (docs/model.md §5)
    Every layer has N neurons, every weight is w, every bias b, every neuron
    has slope s at its working point and signal (mean output) m.  The weight
    step ``W X W^T`` with ``W = w J`` is computed exactly in the algebra of
    ``u I + c J`` matrices (``J J = N J``).
``"trained"`` (docs/model.md §6)
    Layer k has fan-in N = N_{k-1}; its weights are summarised by their mean
    ``mu`` and mean square ``nu``, its slopes at the working point by their
    mean ``s_mean`` and mean square ``s_sq``, its signals by their power
    ``P`` (mean of m_i^2) and coherence ``r`` (mean(m)^2 / P).  See
    :data:`TRAINED_ASSUMPTIONS` for what the recursion assumes.

Conventions: intensities are variances; the state of layer k is its mean
uncorrelated part u_k and correlated part c_k, Var_k = u_k + c_k (the layer's
mean neuron variance); layer 0 is the noise-free input (u_0 = c_0 = 0).  The
noise acts after the activation (the default "post" placement).

Examples
--------
>>> from noiseprop.analysis import symbolic
>>> d = symbolic.derive("AC")
>>> d.critical_slope.subs(symbolic.SYMBOLS["w"], 1 / symbolic.SYMBOLS["N"])
1
>>> symbolic.symmetric_variances(3, 4, 0.25, 0.5, 1.0, AC=1e-3).round(8).tolist()
[0.0, 0.001, 0.00125, 0.0013125]
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Union

import numpy as np
import sympy as sp

from ..model import Network
from ..noise import NOISE_TYPES, Noise, NoiseSpec, per_layer_noise
from ..utils.validation import as_input, finite_number, positive_int, require_network

__all__ = [
    "FAMILIES",
    "SYMBOLS",
    "TRAINED_ASSUMPTIONS",
    "SYMMETRIC_ASSUMPTIONS",
    "Recursion",
    "Derivation",
    "RecursionAverages",
    "recursion",
    "derive",
    "symmetric_variances",
    "statistics_recursion",
]

#: The network families of the derivation.
FAMILIES = ("symmetric", "trained")

_k = sp.Symbol("k", integer=True, positive=True)
_positive = ("N", "nu", "s_sq", "P")
#: The symbols of the derivation by name (D_AU .. D_MC are the intensities).
SYMBOLS: dict[str, sp.Symbol] = {"k": _k}
for _name in ("u_prev", "c_prev", "N", "w", "b", "s", "m", "mu", "nu", "s_mean", "s_sq", "P", "r"):
    SYMBOLS[_name] = sp.Symbol(_name, positive=True) if _name in _positive else sp.Symbol(_name, real=True)
for _name in NOISE_TYPES:
    SYMBOLS[f"D_{_name}"] = sp.Symbol(f"D_{_name}", nonnegative=True)

_LATEX_NAMES = {
    SYMBOLS["u_prev"]: "u_{k-1}",
    SYMBOLS["c_prev"]: "c_{k-1}",
    SYMBOLS["s_mean"]: r"\bar{s}",
    SYMBOLS["s_sq"]: r"\overline{s^{2}}",
    **{SYMBOLS[f"D_{n}"]: rf"D_{{\mathrm{{{n}}}}}" for n in NOISE_TYPES},
}

SYMMETRIC_ASSUMPTIONS = (
    "every layer has N neurons (the input too), every weight is w, every bias b",
    "every neuron of layer k has the same slope s and signal m at its working point",
    "linear response (docs/model.md §4): exact for affine activations, first order in the noise otherwise",
    "noise after the activation ('post' placement); the input is noise-free",
)

TRAINED_ASSUMPTIONS = (
    "the weights of layer k act like i.i.d. draws with mean mu and mean square nu "
    "(E[W_il W_jl'] = nu if (i,l) = (j,l'), else mu^2), independent of the noise, "
    "the slopes and the signals",
    "slopes act like i.i.d. draws with mean s_mean and mean square s_sq; signals like "
    "i.i.d. draws with power P = mean(m^2) and pair product r*P = mean(m)^2",
    "a layer's covariance enters only through its mean diagonal (u + c) and mean "
    "off-diagonal entry (c); the result is the expected layer average",
    "linear response (docs/model.md §4), noise after the activation, noise-free input",
)


# --------------------------------------------------------------------------
# The algebra of matrices u I + c J (J the all-ones matrix of size N)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class _IJ:
    """The N x N matrix ``u I + c J``: diagonal u + c, off-diagonal c."""

    u: sp.Expr
    c: sp.Expr

    def __add__(self, other: "_IJ") -> "_IJ":
        return _IJ(self.u + other.u, self.c + other.c)

    def matmul(self, other: "_IJ", n: sp.Expr) -> "_IJ":
        """Matrix product, using I J = J I = J and J J = N J."""
        return _IJ(self.u * other.u, self.u * other.c + self.c * other.u + n * self.c * other.c)

    def hadamard(self, other: "_IJ") -> "_IJ":
        """Element-wise product: I o I = I o J = I, J o J = J."""
        return _IJ(self.u * other.u + self.u * other.c + self.c * other.u, self.c * other.c)

    @classmethod
    def from_entries(cls, diagonal: sp.Expr, off_diagonal: sp.Expr) -> "_IJ":
        return cls(diagonal - off_diagonal, off_diagonal)


def _symmetric_weights(x: _IJ) -> _IJ:
    """W X W^T for W = w J (every weight w), computed exactly."""
    n, w = SYMBOLS["N"], SYMBOLS["w"]
    weights = _IJ(sp.Integer(0), w)
    return weights.matmul(x, n).matmul(weights, n)


def _ensemble_weights(x: _IJ) -> _IJ:
    """E[W X W^T] for i.i.d. weights (mean mu, mean square nu), X = u I + c J.

    Entry (i, j) is sum_{l,l'} X_ll' E[W_il W_jl']: on the diagonal N terms
    X_ll (u + c) with nu and N(N-1) terms X_ll' (c) with mu^2; off the
    diagonal all N^2 terms with mu^2.
    """
    n, mu, nu = SYMBOLS["N"], SYMBOLS["mu"], SYMBOLS["nu"]
    diagonal = n * (x.u + x.c) * nu + n * (n - 1) * x.c * mu**2
    off_diagonal = (n * (x.u + x.c) + n * (n - 1) * x.c) * mu**2
    return _IJ.from_entries(diagonal, off_diagonal)


def _symmetric_slopes(x: _IJ) -> _IJ:
    """J_s X J_s with J_s = s I."""
    return _IJ(SYMBOLS["s"] ** 2 * x.u, SYMBOLS["s"] ** 2 * x.c)


def _ensemble_slopes(x: _IJ) -> _IJ:
    """E[s_i s_j X_ij]: s_sq on the diagonal, s_mean^2 off it."""
    return _IJ.from_entries(SYMBOLS["s_sq"] * (x.u + x.c), SYMBOLS["s_mean"] ** 2 * x.c)


def _layer_step(family: str) -> _IJ:
    """docs/model.md §4 applied to Sigma_{k-1} = u_prev I + c_prev J; returns Sigma_k."""
    previous = _IJ(SYMBOLS["u_prev"], SYMBOLS["c_prev"])
    if family == "symmetric":
        slopes_times_weights = _symmetric_slopes(_symmetric_weights(previous))
        signal = _IJ(sp.Integer(0), SYMBOLS["m"] ** 2)  # m m^T with every m_i = m
    else:
        slopes_times_weights = _ensemble_slopes(_ensemble_weights(previous))
        power, coherence = SYMBOLS["P"], SYMBOLS["r"]
        signal = _IJ.from_entries(power, coherence * power)
    d = {name: SYMBOLS[f"D_{name}"] for name in NOISE_TYPES}
    multiplicative = _IJ(d["MU"], d["MC"])
    additive = _IJ(d["AU"], d["AC"])
    noisy = slopes_times_weights + (signal + slopes_times_weights).hadamard(multiplicative) + additive
    return _IJ(sp.expand(noisy.u), sp.expand(noisy.c))


# --------------------------------------------------------------------------
# Recursions
# --------------------------------------------------------------------------
def _latex(expr) -> str:
    return sp.latex(expr, symbol_names=_LATEX_NAMES)


@dataclass(frozen=True)
class Recursion:
    """One layer of the noise recursion: (u_{k-1}, c_{k-1}) -> (u_k, c_k).

    Attributes
    ----------
    family : {"symmetric", "trained"}
    u, c : sympy.Expr
        Uncorrelated and correlated part of layer k in the symbols ``u_prev``,
        ``c_prev`` (layer k-1) and the layer parameters (see :data:`SYMBOLS`).
    assumptions : tuple of str
    """

    family: str
    u: sp.Expr
    c: sp.Expr
    assumptions: tuple

    @property
    def variance(self) -> sp.Expr:
        """Var_k = u_k + c_k, the mean neuron variance of layer k."""
        return sp.expand(self.u + self.c)

    @property
    def matrix(self) -> sp.Matrix:
        """The linear part A: (u_k, c_k) = A (u_{k-1}, c_{k-1}) + drive."""
        state = [SYMBOLS["u_prev"], SYMBOLS["c_prev"]]
        return sp.Matrix([[sp.diff(e, v) for v in state] for e in (self.u, self.c)])

    @property
    def drive(self) -> sp.Matrix:
        """The noise that layer k adds to a noise-free input: (u_k, c_k) at u_{k-1} = c_{k-1} = 0."""
        zero = {SYMBOLS["u_prev"]: 0, SYMBOLS["c_prev"]: 0}
        return sp.Matrix([self.u.subs(zero), self.c.subs(zero)])

    @property
    def gains(self) -> dict[str, sp.Expr]:
        """How the noise of layer k-1 is carried into layer k.

        ``uncorrelated``: d Var_k / d u_{k-1}; ``correlated``: d c_k / d c_{k-1},
        both with the multiplicative noise of layer k switched off (docs/model.md §6).
        """
        quiet = {SYMBOLS["D_MU"]: 0, SYMBOLS["D_MC"]: 0}
        return {
            "uncorrelated": sp.factor(sp.diff(self.variance, SYMBOLS["u_prev"]).subs(quiet)),
            "correlated": sp.factor(sp.diff(self.c, SYMBOLS["c_prev"]).subs(quiet)),
        }

    def restricted(self, noise_types: Iterable[str]) -> "Recursion":
        """The recursion with every intensity not in ``noise_types`` set to zero."""
        off = {SYMBOLS[f"D_{n}"]: 0 for n in NOISE_TYPES if n not in noise_types}
        return Recursion(self.family, sp.expand(self.u.subs(off)), sp.expand(self.c.subs(off)), self.assumptions)

    def collected(self, part: str) -> sp.Expr:
        """``u`` or ``c`` collected in u_{k-1}, c_{k-1} with factored coefficients."""
        state = [SYMBOLS["u_prev"], SYMBOLS["c_prev"]]
        return sp.collect(getattr(self, part), state, sp.factor)

    def latex(self) -> str:
        """The two lines of the recursion in LaTeX."""
        return "\n".join(rf"{part}_{{k}} = {_latex(self.collected(part))}" for part in ("u", "c"))

    def pretty(self) -> str:
        """The two lines of the recursion as text."""
        return "\n".join(f"{part}_k = {self.collected(part)}" for part in ("u", "c"))

    def step_function(self) -> Callable:
        """Lambdified step ``f(u_prev, c_prev, **parameters) -> (u_k, c_k)``
        (NumPy, broadcasting); parameters are named as in :data:`SYMBOLS`."""
        return _lambdified((self.u, self.c))


@functools.lru_cache(maxsize=None)
def recursion(family: str = "symmetric") -> Recursion:
    """The per-layer recursion of ``family`` derived from docs/model.md §4.

    Parameters
    ----------
    family : {"symmetric", "trained"}

    Returns
    -------
    Recursion
        For "symmetric" (docs/model.md §5) with c' = s^2 w^2 N (u_{k-1} + N c_{k-1}):
        u_k = (m^2 + c') D_MU + D_AU, c_k = c' (1 + D_MC) + m^2 D_MC + D_AC.
    """
    _check_family(family)
    step = _layer_step(family)
    assumptions = SYMMETRIC_ASSUMPTIONS if family == "symmetric" else TRAINED_ASSUMPTIONS
    return Recursion(family, step.u, step.c, assumptions)


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown network family {family!r}; choose one of {FAMILIES}")


# --------------------------------------------------------------------------
# Lambdified numeric functions
# --------------------------------------------------------------------------
class _NumericFunction:
    """A lambdified expression called with keyword parameters named as in SYMBOLS."""

    def __init__(self, exprs):
        free = set().union(*(sp.sympify(e).free_symbols for e in np.ravel(exprs)))
        self.names = tuple(sorted(str(s) for s in free))
        self._function = sp.lambdify([SYMBOLS[n] for n in self.names], exprs, "numpy")

    def __call__(self, *args, **parameters):
        if args:
            parameters.update(zip(("u_prev", "c_prev"), args))
        missing = [n for n in self.names if n not in parameters]
        if missing:
            raise ValueError(f"missing parameter(s) {missing}; this expression needs {list(self.names)}")
        return self._function(*(_floating(parameters[n]) for n in self.names))


def _floating(value):
    """Integers (Python, NumPy scalars or integer arrays) as floats: a closed
    form such as (s^2 w^2 N)^k would otherwise be evaluated in fixed-width
    integer arithmetic, e.g. N**k with N, k of type np.int64, and overflow
    silently."""
    if isinstance(value, (bool, np.bool_)):
        return value
    if isinstance(value, (int, np.integer)):
        return float(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "iub":
        return value.astype(float)
    if isinstance(value, (list, tuple)):
        array = np.asarray(value)
        return array.astype(float) if array.dtype.kind in "iub" else array
    return value


@functools.lru_cache(maxsize=None)
def _lambdified(exprs) -> _NumericFunction:
    return _NumericFunction(exprs)


# --------------------------------------------------------------------------
# Closed forms, limits and conditions
# --------------------------------------------------------------------------
NoiseTypes = Union[str, Iterable[str]]


def _noise_types(noise: NoiseTypes) -> tuple[str, ...]:
    if isinstance(noise, str):
        noise = NOISE_TYPES if noise == "all" else (noise,)
    types = tuple(noise)
    bad = [n for n in types if n not in NOISE_TYPES]
    if bad or not types:
        raise ValueError(f"unknown noise type(s) {bad or types}; choose from {NOISE_TYPES} or 'all'")
    return tuple(n for n in NOISE_TYPES if n in types)


@dataclass(frozen=True)
class Derivation:
    """Recursion, closed form, deep limit and conditions for one family and noise.

    Results are sympy expressions in the symbols of :data:`SYMBOLS` and, for
    the trained family, in the abbreviations of ``definitions`` (entries
    ``a_ij`` of the recursion matrix, its drive ``d_i = d0_i + P e_i`` and its
    eigenvalues ``lambda_1 >= lambda_2``).

    Attributes
    ----------
    family : str
    noise : tuple of str
        The noise types switched on (the other intensities are zero).
    recursion : Recursion
    definitions : dict of sympy.Symbol -> sympy.Expr
        Abbreviations used by the results (empty for the symmetric family).
    closed_form : dict of str -> sympy.Expr
        ``u``, ``c``, ``variance`` of layer k >= 1 as functions of ``k`` for a
        stack of identical layers (symmetric: constant signal m; trained: the
        same statistics in every layer), valid for gain g != 1, and
        ``variance_unit_gain``, its limit at g = 1 (symmetric family only).
    gain : sympy.Expr
        The accumulation gain g per layer (the largest eigenvalue of the
        recursion matrix): the noise stays bounded with depth iff g < 1.
    gains : dict
        The uncorrelated and correlated gains (:attr:`Recursion.gains`).
    fixed_point : dict of str -> sympy.Expr
        ``u``, ``c``, ``variance`` of a deep network (k -> oo) when g < 1.
    bounded : sympy.Rel
        The condition for bounded accumulation, g < 1.
    critical_slope : sympy.Expr
        The largest uniform slope s with bounded noise (g(s) = 1).
    snr_deep : sympy.Expr
        Deep-network layer SNR: signal power (m^2, or P) / fixed-point variance.
    snr_limit : sympy.Expr
        Its limit for an arbitrarily strong signal: oo with additive noise
        only, finite with multiplicative noise.
    conditions : tuple of str
    """

    family: str
    noise: tuple
    recursion: Recursion
    definitions: dict
    closed_form: dict
    gain: sp.Expr
    gains: dict
    fixed_point: dict
    bounded: sp.Basic
    critical_slope: sp.Expr
    snr_deep: sp.Expr
    snr_limit: sp.Expr
    conditions: tuple

    def expanded(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with the abbreviations of :attr:`definitions` written out."""
        for symbol, value in reversed(list(self.definitions.items())):
            expr = expr.subs(symbol, value)
        return expr

    def function(self, name: str) -> Callable:
        """Lambdified numeric function of a result, called with keyword
        parameters named as in :data:`SYMBOLS` (``k`` for closed forms).

        ``name``: "u", "c", "variance" (closed form; "variance_unit_gain"
        for the symmetric family), "fixed_u", "fixed_c", "fixed_variance",
        "gain", "critical_slope", "snr_deep", "snr_limit".
        """
        exprs = {
            **self.closed_form,
            **{f"fixed_{key}": value for key, value in self.fixed_point.items()},
            "gain": self.gain,
            "critical_slope": self.critical_slope,
            "snr_deep": self.snr_deep,
            "snr_limit": self.snr_limit,
        }
        if name not in exprs:
            raise ValueError(f"unknown result {name!r}; choose from {sorted(exprs)}")
        return _lambdified(self.expanded(exprs[name]))

    def _items(self) -> list[tuple[str, object]]:
        closed = [("closed form u_k", self.closed_form["u"]), ("closed form c_k", self.closed_form["c"]),
                  ("closed form Var_k", self.closed_form["variance"])]
        if "variance_unit_gain" in self.closed_form:
            closed.append(("closed form Var_k at g = 1", self.closed_form["variance_unit_gain"]))
        return [
            ("recursion u_k", self.recursion.collected("u")),
            ("recursion c_k", self.recursion.collected("c")),
            ("uncorrelated gain", self.gains["uncorrelated"]),
            ("correlated gain", self.gains["correlated"]),
            *[(f"where {symbol}", value) for symbol, value in self.definitions.items()],
            ("accumulation gain g", self.gain),
            *closed,
            ("deep limit u", self.fixed_point["u"]),
            ("deep limit c", self.fixed_point["c"]),
            ("deep limit Var", self.fixed_point["variance"]),
            ("bounded if", self.bounded),
            ("critical slope", self.critical_slope),
            ("deep-network SNR", self.snr_deep),
            ("SNR limit (strong signal)", self.snr_limit),
        ]

    def pretty(self) -> str:
        """Plain-text report: one labelled line per result, then the conditions."""
        lines = [f"family: {self.family}; noise: {', '.join(self.noise)}"]
        lines += [f"{label}: {value}" for label, value in self._items()]
        lines += ["conditions:"] + [f"  - {text}" for text in self.conditions]
        return "\n".join(lines)

    def latex(self) -> str:
        """LaTeX report: a comment line naming each result, then its formula."""
        lines = [f"% family: {self.family}; noise: {', '.join(self.noise)}"]
        lines += [f"% {label}\n{_latex(value)}" for label, value in self._items()]
        lines += [f"% condition: {text}" for text in self.conditions]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready form: every result as text and as LaTeX, and the conditions."""
        return {
            "family": self.family,
            "noise": list(self.noise),
            "results": {label: {"text": str(value), "latex": _latex(value)} for label, value in self._items()},
            "conditions": list(self.conditions),
        }


@functools.lru_cache(maxsize=None)
def _derive_cached(family: str, noise: tuple) -> Derivation:
    rec = recursion(family).restricted(noise)
    build = _symmetric_results if family == "symmetric" else _trained_results
    return build(rec, noise)


def derive(noise: NoiseTypes = "all", family: str = "symmetric") -> Derivation:
    """Derive closed form, deep limit, gains and conditions (cached).

    Parameters
    ----------
    noise : "AU", "AC", "MU", "MC", "all" or a sequence of them
        The noise types switched on (the other intensities are zero).
    family : {"symmetric", "trained"}

    Returns
    -------
    Derivation
    """
    _check_family(family)
    return _derive_cached(family, _noise_types(noise))


_GAIN = sp.Symbol("g", positive=True)


def _symmetric_results(rec: Recursion, noise: tuple) -> Derivation:
    """Closed form via the pre-activation variance v: W Sigma W^T = v J carries everything."""
    n, w, s, m = SYMBOLS["N"], SYMBOLS["w"], SYMBOLS["s"], SYMBOLS["m"]
    v = sp.Symbol("v", nonnegative=True)  # pre-activation variance of layer k (Sigma_z = v J)
    through_weights = _symmetric_weights(_IJ(SYMBOLS["u_prev"], SYMBOLS["c_prev"]))
    if sp.simplify(through_weights.u) != 0:
        raise RuntimeError("w J should leave no uncorrelated pre-activation noise")
    # Sigma_k as a function of v_k: any previous layer with w^2 N^2 c_prev = v.
    into_v = {SYMBOLS["c_prev"]: v / (w**2 * n**2), SYMBOLS["u_prev"]: 0}
    u_of_v, c_of_v = (sp.expand(e.subs(into_v)) for e in (rec.u, rec.c))
    # v_{k+1} = w^2 N (u_k + N c_k): an affine scalar recurrence v_{k+1} = g v_k + d.
    next_v = sp.expand(_symmetric_weights(_IJ(u_of_v, c_of_v)).c)
    gain = sp.factor(sp.diff(next_v, v))
    drive = sp.factor(next_v.subs(v, 0))
    v_general, v_unit = _solve_affine_recurrence(drive)  # v_1 = 0: the input is noise-free
    u_k, c_k = (sp.factor(e.subs(v, v_general.subs(_GAIN, gain))) for e in (u_of_v, c_of_v))
    unit_gain = sp.factor((u_of_v + c_of_v).subs(v, v_unit).subs(_GAIN, 1))
    v_star = sp.solve(sp.Eq(v, next_v), v)[0]
    u_star, c_star = (sp.factor(e.subs(v, v_star)) for e in (u_of_v, c_of_v))
    var_star = sp.factor(u_star + c_star)
    return Derivation(
        family="symmetric",
        noise=noise,
        recursion=rec,
        definitions={},
        closed_form={"u": u_k, "c": c_k, "variance": sp.factor(u_k + c_k), "variance_unit_gain": unit_gain},
        gain=gain,
        gains=rec.gains,
        fixed_point={"u": u_star, "c": c_star, "variance": var_star},
        bounded=sp.StrictLessThan(gain, 1),
        critical_slope=_critical_slope(gain, s),
        snr_deep=sp.factor(m**2 / var_star),
        snr_limit=_strong_signal_limit(var_star.subs(m, sp.sqrt(SYMBOLS["P"])), SYMBOLS["P"]),
        conditions=SYMMETRIC_ASSUMPTIONS + (
            "closed form and limits: the same signal m in every layer k >= 1, i.e. f(w N m + b) = m; "
            "for linear f(z) = s z that needs b = m (1 - s w N) / s (e.g. s = 0.9, w = 1/N, b = m/9, "
            "input m: g = 0.81 (1 + D_MC + D_MU/N) < 1); s w N = 1 with b = 0 also keeps m but forces g >= 1",
            "closed form for g != 1; 'at g = 1' is its limit (linear growth in k)",
            "deep limit, SNR: for g < 1",
        ),
    )


def _solve_affine_recurrence(drive: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """x_k for x_k = g x_{k-1} + drive with x_1 = 0, solved by rsolve: for a
    symbolic gain g and its limit at g = 1."""
    x = sp.Function("x")
    j = sp.Symbol("j", integer=True, nonnegative=True)
    solution = sp.rsolve(x(j) - _GAIN * x(j - 1) - drive, x(j), {x(0): 0}).subs(j, _k - 1)
    return sp.factor(solution), sp.factor(sp.limit(solution, _GAIN, 1))


def _critical_slope(gain: sp.Expr, slope: sp.Symbol) -> sp.Expr:
    """The slope at which the gain reaches 1, using that the gain is g(1) s^2."""
    at_one = gain.subs(slope, 1)
    if sp.simplify(gain - at_one * slope**2) != 0:
        raise RuntimeError(f"the gain {gain} is not proportional to {slope}^2")
    return sp.simplify(1 / sp.sqrt(at_one))


def _strong_signal_limit(variance: sp.Expr, power: sp.Symbol) -> sp.Expr:
    """lim power / variance for power -> oo, with variance = alpha * power + beta."""
    alpha = sp.factor(sp.diff(variance, power))
    if sp.simplify(sp.diff(alpha, power)) != 0:
        raise RuntimeError(f"the deep variance {variance} is not affine in {power}")
    return sp.oo if alpha == 0 else sp.factor(1 / alpha)


#: Abbreviations of the trained-family results.
_A = sp.Matrix(2, 2, sp.symbols("a_11 a_12 a_21 a_22"))
_D0 = sp.Matrix(sp.symbols("d0_1 d0_2"))
_E = sp.Matrix(sp.symbols("e_1 e_2"))
_LAMBDA = sp.symbols("lambda_1 lambda_2")


def _trained_results(rec: Recursion, noise: tuple) -> Derivation:
    """Stationary stack: x_k = (I - A^k) x* with x_0 = 0 and x* = (I - A)^-1 d."""
    power = SYMBOLS["P"]
    drive = rec.drive
    definitions = {
        **{a: sp.factor(v) for a, v in zip(_A, rec.matrix)},
        **{d: sp.factor(v.subs(power, 0)) for d, v in zip(_D0, drive)},
        **{e: sp.factor(sp.diff(v, power)) for e, v in zip(_E, drive)},
    }
    trace, det = _A.trace(), _A.det()
    root = sp.sqrt(trace**2 - 4 * det)  # real: A has non-negative entries
    definitions[_LAMBDA[0]] = (trace + root) / 2
    definitions[_LAMBDA[1]] = (trace - root) / 2
    resolvent = (sp.eye(2) - _A).inv()
    fixed = (resolvent * (_D0 + power * _E)).applyfunc(sp.factor)
    fixed_of_e = resolvent * _E
    lam1, lam2 = _LAMBDA
    a_power = (lam1**_k * (_A - lam2 * sp.eye(2)) - lam2**_k * (_A - lam1 * sp.eye(2))) / (lam1 - lam2)
    closed = (sp.eye(2) - a_power) * fixed
    var_star = sp.factor(fixed[0] + fixed[1])
    derivation = Derivation(
        family="trained",
        noise=noise,
        recursion=rec,
        definitions=definitions,
        closed_form={"u": closed[0], "c": closed[1], "variance": closed[0] + closed[1]},
        gain=lam1,
        gains=rec.gains,
        fixed_point={"u": fixed[0], "c": fixed[1], "variance": var_star},
        bounded=sp.StrictLessThan(lam1, 1),
        critical_slope=sp.Integer(0),
        snr_deep=power / var_star,
        snr_limit=sp.oo if fixed_of_e.is_zero_matrix else sp.factor(1 / (fixed_of_e[0] + fixed_of_e[1])),
        conditions=TRAINED_ASSUMPTIONS + (
            "closed form and limits: the same statistics in every layer (a stationary stack); "
            "closed form for lambda_1 != lambda_2 (Sylvester's formula for A^k)",
            "deep limit, SNR: for g = lambda_1 < 1",
            "critical slope: every slope equal (s_mean = s, s_sq = s^2)",
            "SNR limit: signal power P -> oo at fixed coherence r",
        ),
    )
    uniform = {SYMBOLS["s_sq"]: SYMBOLS["s"] ** 2, SYMBOLS["s_mean"]: SYMBOLS["s"]}
    slope = _critical_slope(sp.expand(derivation.expanded(lam1).subs(uniform)), SYMBOLS["s"])
    return replace(derivation, critical_slope=slope)


# --------------------------------------------------------------------------
# Numeric evaluation of the derived recursions
# --------------------------------------------------------------------------
def symmetric_variances(
    depth: int,
    width: int,
    weight: float,
    slope: float,
    signal: float,
    bias: float = 0.0,
    AU: float = 0.0,
    AC: float = 0.0,
    MU: float = 0.0,
    MC: float = 0.0,
) -> np.ndarray:
    """Mean neuron variance of layers 0..depth of a symmetric linear network.

    Evaluates the derived symmetric recursion (:func:`recursion`) layer by
    layer for f(z) = slope * z; equals :func:`noiseprop.predict` on
    ``Network.symmetric(depth, width, weight, bias, Linear(slope))`` with every
    input equal to ``signal``.

    Parameters
    ----------
    depth, width : int
        L >= 1 layers of N neurons (the input has N values too).
    weight, bias, slope : float
        w, b and the slope s of the linear activation.
    signal : float
        The value m_0 of every input; the signal of layer k is
        m_k = s (w N m_{k-1} + b).
    AU, AC, MU, MC : float, default 0
        Noise intensities (variances) of every layer 1..L.

    Returns
    -------
    ndarray (depth + 1,)
        Var_k = u_k + c_k for k = 0..depth (Var_0 = 0: noise-free input).
    """
    depth, width = positive_int("depth", depth), positive_int("width", width)
    noise = Noise(AU=AU, AC=AC, MU=MU, MC=MC)  # validates the intensities
    weight, slope, signal, bias = (finite_number(name, value) for name, value in
                                   (("weight", weight), ("slope", slope), ("signal", signal), ("bias", bias)))
    step = recursion("symmetric").step_function()
    parameters = dict(N=width, w=weight, s=slope, **{f"D_{n}": v for n, v in noise.intensities.items()})
    u = c = 0.0
    m = float(signal)
    variances = [0.0]
    for _ in range(depth):
        m = slope * (weight * width * m + bias)
        u, c = step(u, c, m=m, **parameters)
        variances.append(u + c)
    return np.array(variances, dtype=float)


@dataclass(frozen=True)
class RecursionAverages:
    """Per-layer averages from the statistics-only recursion (layers 0..L).

    Attributes
    ----------
    correlated, uncorrelated : ndarray (L+1,)
        Correlated part c_k and uncorrelated part u_k of the mean neuron variance.
    signal_power : ndarray (L+1,)
        P_k = mean_i E[y_k,i]^2 at the working point.
    statistics : list of dict
        The layer statistics used (layer k = 1..L): fan_in, mu, nu, s_mean,
        s_sq, P, r.
    """

    correlated: np.ndarray
    uncorrelated: np.ndarray
    signal_power: np.ndarray
    statistics: list

    @property
    def variance(self) -> np.ndarray:
        """Mean neuron variance Var_k = u_k + c_k of every layer."""
        return self.uncorrelated + self.correlated

    @property
    def layer_snr(self) -> np.ndarray:
        """sum E[y]^2 / sum Var[y] of every layer (inf for the noise-free input)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.signal_power / self.variance


def working_point_statistics(net: Network, x) -> list[dict]:
    """The statistics of the trained recursion for layers 1..L at input ``x``.

    Weight and slope statistics, the signal power and the signal coherence
    r_k = mean(m)^2 / mean(m^2) come from one noise-free forward pass
    (:func:`noiseprop.analysis.gains.layer_statistics`).

    Parameters
    ----------
    net : Network
    x : array_like(float), shape (N_0,)
        One input.

    Returns
    -------
    list of dict
        Per layer: N (fan-in), mu, nu, s_mean, s_sq, P, r (names of :data:`SYMBOLS`).
    """
    from .gains import layer_statistics

    require_network(net)
    x, batched = as_input(x, net.sizes[0])
    if batched and len(x) > 1:
        raise ValueError(f"the statistics-only recursion takes one input (N_0,), got a batch of {len(x)}")
    gains = layer_statistics(net, x[0])
    rows = []
    for layer in gains:
        power = layer.signal_power
        rows.append({
            "N": layer.fan_in, "mu": layer.mu, "nu": layer.nu,
            "s_mean": float(np.mean(layer.slope)), "s_sq": float(layer.slope_sq_mean),
            "P": power, "r": float(layer.output_mean**2 / power) if power > 0 else 0.0,
        })
    return rows


def statistics_recursion(net: Network, noise: NoiseSpec, x) -> RecursionAverages:
    """Evaluate the statistics-only (trained-family) recursion on a network.

    Each layer k is reduced to its fan-in, weight mean mu_k and mean square
    nu_k, slope mean and mean square at the working point, signal power and
    coherence (:func:`working_point_statistics`); the derived recursion
    (:func:`recursion` ("trained")) then carries (u, c) from layer to layer.
    Compare with :func:`noiseprop.predict`, which uses the full matrices.

    Parameters
    ----------
    net : Network
    noise : Noise or sequence of Noise
        Intensities (variances) per layer; "post" placement only.
    x : array_like(float), shape (N_0,)

    Returns
    -------
    RecursionAverages
    """
    statistics = working_point_statistics(net, x)
    layer_noise = per_layer_noise(noise, net.depth)
    if any(n.placement != "post" for n in layer_noise):
        raise ValueError("the statistics-only recursion is derived for placement 'post' only")
    step = recursion("trained").step_function()
    u = c = 0.0
    us, cs, powers = [0.0], [0.0], [float(np.mean(np.square(x)))]
    for stats, nz in zip(statistics, layer_noise):
        u, c = step(u, c, **stats, **{f"D_{name}": value for name, value in nz.intensities.items()})
        us.append(float(u))
        cs.append(float(c))
        powers.append(stats["P"])
    return RecursionAverages(np.array(cs), np.array(us), np.array(powers), statistics)
