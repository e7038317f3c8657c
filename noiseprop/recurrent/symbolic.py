"""Symbolic time recursion of the noise in a symmetric reservoir (sympy; loaded on use).

Symmetric reservoir: N neurons, every recurrent weight w, leak a, every
neuron at the same working point with slope s and mean output m (a constant
input, at the stationary mean), noise after the activation.  The state
covariance keeps the form P_t = u_t I + c_t 11^T, and the recursion of
:mod:`noiseprop.recurrent.propagation` reduces to two scalars: with
c_z = s^2 w^2 N (u + N c) the (entirely common) noise of the pre-activation,

    u_F = (m^2 + c_z) D_MU + D_AU
    c_F = c_z (1 + D_MC) + m^2 D_MC + D_AC
    u_{t+1} = (1 - a)^2 u_t + a^2 u_F
    c_{t+1} = (1 - a)^2 c_t + 2 a (1 - a) s w (u_t + N c_t) + a^2 c_F

(the middle term of c is the cross-covariance of the old state with the new
activation, P W^T J = s w (u + N c) 11^T).  Written as v_{t+1} = T v_t + d
for v = (u, c): the noise is bounded iff the spectral radius of T is below
1, the stationary level is (I - T)^-1 d, and from a noise-free start
v_t = (I - T^t)(I - T)^-1 d.  Without uncorrelated multiplicative noise T
is triangular with eigenvalues (1 - a)^2 and (1 - a + a g)^2, g = s w N the
loop gain of the mean: bounded iff |1 - a + a g| < 1.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..analysis.symbolic import _latex, _noise_types

__all__ = ["derive_recurrent", "RecurrentDerivation", "SYMBOLS", "statistics_step", "statistics_predict",
           "StatisticsPrediction", "STATISTICS_ASSUMPTIONS"]

N, w, s, a, m, t = sp.symbols("N w s a m t", positive=True)
u, c = sp.symbols("u c")
D = {name: sp.Symbol(f"D_{name}", nonnegative=True) for name in ("AU", "AC", "MU", "MC")}
#: The symbols of the results, by name.
SYMBOLS = {"N": N, "w": w, "s": s, "a": a, "m": m, "t": t, "u": u, "c": c, **{f"D_{k}": v for k, v in D.items()}}


@dataclass
class RecurrentDerivation:
    """Time recursion, closed form, stationary level and bounded condition.

    Attributes
    ----------
    noise : tuple of str
    recursion : dict
        ``u``, ``c``: u_{t+1}, c_{t+1} in terms of u, c.
    matrix, drive : sympy.Matrix
        T and d of v_{t+1} = T v_t + d.
    eigenvalues : list of sympy.Expr
    stationary : dict
        ``u``, ``c``, ``variance`` (= u + c) of the stationary state.
    closed_form : dict or None
        ``u``, ``c``, ``variance`` at step t from a noise-free start (None
        with D_MU switched on, where T is not triangular: use the recursion).
    bounded : str
        The condition (spectral radius of T below 1).
    """

    noise: tuple
    recursion: dict
    matrix: sp.Matrix
    drive: sp.Matrix
    eigenvalues: list
    stationary: dict
    closed_form: "dict | None"
    bounded: str

    def _items(self):
        items = [("recursion u_{t+1}", self.recursion["u"]), ("recursion c_{t+1}", self.recursion["c"]),
                 ("transition matrix T", self.matrix), ("drive d", self.drive)]
        items += [(f"eigenvalue {i + 1} of T", e) for i, e in enumerate(self.eigenvalues)]
        items += [(f"stationary {k}", v) for k, v in self.stationary.items()]
        if self.closed_form is not None:
            items += [(f"closed form {k}_t", v) for k, v in self.closed_form.items()]
        return items

    def pretty(self) -> str:
        lines = [f"family: recurrent (symmetric reservoir); noise: {', '.join(self.noise)}"]
        lines += [f"{label}: {value}" for label, value in self._items()]
        lines.append(f"bounded if: {self.bounded}")
        if self.closed_form is None:
            lines.append("closed form: not given with D_MU (T not triangular); iterate the recursion")
        return "\n".join(lines)

    def latex(self) -> str:
        lines = [f"% family: recurrent (symmetric reservoir); noise: {', '.join(self.noise)}"]
        lines += [f"% {label}\n{_latex(value)}" for label, value in self._items()]
        lines.append(f"% bounded if: {self.bounded}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"family": "recurrent", "noise": list(self.noise),
                "results": {label: {"text": str(v), "latex": _latex(v)} for label, v in self._items()},
                "conditions": [f"bounded if {self.bounded}"]}

    def function(self, name: str):
        """Numeric function (keyword arguments named as in :data:`SYMBOLS`) of
        "stationary_u", "stationary_c", "stationary_variance", "u", "c",
        "variance" (closed form, with t) or "next_u", "next_c" (one step)."""
        exprs = {f"stationary_{k}": v for k, v in self.stationary.items()}
        exprs.update({"next_u": self.recursion["u"], "next_c": self.recursion["c"]})
        if self.closed_form is not None:
            exprs.update(self.closed_form)
        if name not in exprs:
            raise ValueError(f"unknown result {name!r}; choose from {sorted(exprs)}")
        expr = exprs[name]
        names = sorted(str(x) for x in expr.free_symbols)
        compiled = sp.lambdify([SYMBOLS[k] for k in names], expr, "numpy")
        return lambda **values: compiled(*(values.get(k, 0.0) for k in names))


def derive_recurrent(noise="all") -> RecurrentDerivation:
    """The symmetric-reservoir time recursion for the noise types ``noise``
    ("AU", "AC", "MU", "MC", "all" or a sequence); see the module docstring."""
    return _derive(_noise_types(noise))


@functools.lru_cache(maxsize=None)
def _derive(noise: tuple) -> RecurrentDerivation:
    d = {k: (v if k in noise else sp.Integer(0)) for k, v in D.items()}
    cz = s**2 * w**2 * N * (u + N * c)
    u_f = (m**2 + cz) * d["MU"] + d["AU"]
    c_f = cz * (1 + d["MC"]) + m**2 * d["MC"] + d["AC"]
    next_u = sp.expand((1 - a) ** 2 * u + a**2 * u_f)
    next_c = sp.expand((1 - a) ** 2 * c + 2 * a * (1 - a) * s * w * (u + N * c) + a**2 * c_f)
    v = sp.Matrix([u, c])
    nxt = sp.Matrix([next_u, next_c])
    T = nxt.jacobian(v).applyfunc(sp.factor)
    drive = nxt.subs({u: 0, c: 0}).applyfunc(sp.factor)
    eigen = [sp.factor(e) for e in T.eigenvals()]
    fixed = (sp.eye(2) - T).LUsolve(drive).applyfunc(sp.factor)
    stationary = {"u": fixed[0], "c": fixed[1], "variance": sp.factor(fixed[0] + fixed[1])}
    closed = None
    if "MU" not in noise:  # triangular: T^t in closed form
        l1, l2 = T[0, 0], T[1, 1]
        power = sp.Matrix([[l1**t, 0], [T[1, 0] * (l1**t - l2**t) / (l1 - l2), l2**t]])
        vt = ((sp.eye(2) - power) * fixed).applyfunc(sp.factor)
        closed = {"u": vt[0], "c": vt[1], "variance": vt[0] + vt[1]}
    bounded = "max |eigenvalue of T| < 1" + (
        "  (here: |1 - a + a s w N| < 1)" if "MU" not in noise else "")
    return RecurrentDerivation(noise, {"u": next_u, "c": next_c}, T, drive, eigen, stationary, closed, bounded)


# --------------------------------------------------------------------------
# Statistics-only time recursion: driven by the mean and mean square of W and W_out
# --------------------------------------------------------------------------
STATISTICS_ASSUMPTIONS = (
    "the entries of the loop matrix (W driven, W + W_in W_out self-closed) act like i.i.d. draws with "
    "mean mu and mean square nu, independent of the state covariance, the slopes and the signals",
    "slopes F'(z-bar_t) act like i.i.d. draws with mean s_mean and mean square s_sq, the noise-free "
    "activations F(z-bar_t) like draws of power P and coherence r (P r = mean^2), all per time step",
    "the reservoir covariance enters only through its mean diagonal (u + c) and mean off-diagonal "
    "entry (c); output j has variance N nu_j u + N^2 mu_j^2 c (mean mu_j and mean square nu_j of row j "
    "of W_out; output_variance_from_split), averaged over the outputs",
    "linear response, reservoir noise after the activation, no output-neuron noise",
)


@functools.lru_cache(maxsize=None)
def statistics_step():
    """The statistics-only step (u, c) -> (u', c') of the reservoir covariance u I + c J.

    The activation covariance is the feed-forward trained-family layer step
    (:func:`noiseprop.analysis.symbolic.recursion` ("trained")) applied to
    the state covariance; the leak mixes it with the old state:

        P' = (1 - a)^2 P + a (1 - a) (C + C^T) + a^2 Sigma_F,
        C = E[P W^T J_s] = mu s_mean (u + N c) J          (entirely common)

    Returns
    -------
    (sympy.Expr, sympy.Expr)
        u' and c' in the symbols of :data:`noiseprop.analysis.symbolic.SYMBOLS`
        (u_prev, c_prev, N, mu, nu, s_mean, s_sq, P, r, D_*) and ``a``.
    """
    from ..analysis.symbolic import SYMBOLS as FF
    from ..analysis.symbolic import recursion

    layer = recursion("trained")
    u0, c0 = FF["u_prev"], FF["c_prev"]
    cross = FF["mu"] * FF["s_mean"] * (u0 + FF["N"] * c0)
    next_u = sp.expand((1 - a) ** 2 * u0 + a**2 * layer.u)
    next_c = sp.expand((1 - a) ** 2 * c0 + 2 * a * (1 - a) * cross + a**2 * layer.c)
    return next_u, next_c


@dataclass
class StatisticsPrediction:
    """Result of :func:`statistics_predict` (time steps 0..T).

    Attributes
    ----------
    var : ndarray (T + 1,)
        Per-neuron average reservoir noise variance u + c.
    correlated : ndarray (T + 1,)
        Mean off-diagonal covariance c.
    output_var : ndarray (T + 1,)
        Output noise variance averaged over the outputs.
    statistics : dict
        mu, nu (reservoir, and of the loop matrix when self-closed), mu_out,
        nu_out and the per-step s_mean, s_sq, P, r (arrays).
    """

    var: np.ndarray
    correlated: np.ndarray
    output_var: np.ndarray
    statistics: dict


def statistics_predict(net, noise, u, *, generate: int = 0, x0=None) -> StatisticsPrediction:
    """Noise variances through time from the weight statistics alone.

    The reservoir is reduced to N, the mean and mean square of W (of the loop
    matrix W + W_in W_out in self-closed steps) and of W_out, and per time
    step the slope statistics and signal power of the noise-free trajectory;
    :func:`statistics_step` then carries (u, c) through time.  Compare with
    :func:`noiseprop.recurrent.predict`, which uses the full matrices
    (docs/recurrent.md states the accuracy on trained reservoirs).

    Parameters
    ----------
    net : RecurrentNetwork
    noise : Noise
        Reservoir noise, placement "post".
    u, generate, x0 :
        As for :func:`noiseprop.recurrent.predict`.

    Returns
    -------
    StatisticsPrediction
    """
    from ..noise import Noise
    from .model import require_recurrent
    from .propagation import output_variance_from_split

    require_recurrent(net)
    if not isinstance(noise, Noise):
        raise ValueError(f"noise must be a Noise, got {type(noise).__name__}")
    if noise.placement != "post":
        raise ValueError("the statistics-only recursion is derived for placement 'post' only")
    u_in, generate, x0 = net.check_run(u, generate, x0)
    states, outputs = net.forward(u_in, generate, x0)
    driven = u_in.shape[0]
    inputs = np.concatenate([u_in, outputs[driven:-1]]) if generate else u_in
    z = inputs @ net.W_in.T + states[:-1] @ net.W.T + net.bias
    slopes = net.activation.derivative(z)
    signal = net.activation(z)
    power = np.mean(signal**2, axis=1)
    coherence = np.divide(np.mean(signal, axis=1) ** 2, power, out=np.zeros_like(power), where=power > 0)
    loops = {"driven": net.W, "closed": net.loop_matrix if net.feedback else net.W}
    moments = {k: (float(np.mean(m)), float(np.mean(m**2))) for k, m in loops.items()}
    mu_out, nu_out = float(np.mean(net.W_out)), float(np.mean(net.W_out**2))
    exprs = statistics_step()
    names = sorted({str(x) for e in exprs for x in e.free_symbols})
    by_name = {str(x): x for e in exprs for x in e.free_symbols}
    compiled = sp.lambdify([by_name[k] for k in names], exprs, "numpy")

    def step(u_prev, c_prev, **values):
        values.update(u_prev=u_prev, c_prev=c_prev)
        return compiled(*(float(values[k]) for k in names))

    n = net.n
    uu = cc = 0.0
    us, cs = [0.0], [0.0]
    d = {f"D_{k}": v for k, v in noise.intensities.items()}
    for t in range(z.shape[0]):
        mu, nu = moments["driven" if t < driven else "closed"]
        uu, cc = step(uu, cc, N=n, mu=mu, nu=nu, s_mean=float(np.mean(slopes[t])),
                      s_sq=float(np.mean(slopes[t] ** 2)), P=float(power[t]), r=float(coherence[t]),
                      a=net.leak, **d)
        us.append(float(uu))
        cs.append(float(cc))
    us, cs = np.array(us), np.array(cs)
    output_var = output_variance_from_split(net.W_out, us, cs).mean(axis=-1)
    stats = {"N": n, "mu": moments["driven"][0], "nu": moments["driven"][1], "mu_out": mu_out, "nu_out": nu_out,
             "s_mean": slopes.mean(axis=1), "s_sq": (slopes**2).mean(axis=1), "P": power, "r": coherence}
    if generate:
        stats.update(mu_loop=moments["closed"][0], nu_loop=moments["closed"][1])
    return StatisticsPrediction(us + cs, cs, output_var, stats)
