"""Symbolic derivations of the mitigation strategies for the symmetric family (sympy).

Setting (the symmetric family of :mod:`noiseprop.analysis.symbolic`): a layer
of N neurons, every neuron with signal (noise-free output) m, covariance
u I + c J after its noise (J the all-ones matrix; u the uncorrelated and c the
correlated part), read by the next layer with every weight w, so that the
next layer's pre-activation has variance ``passed_on`` = w^2 1^T Sigma 1.
Linear response, noise after the activation ("post").  Nothing is typed in
by hand: every result is computed from the covariances with sympy.

- :func:`pooling`: the 1/K law.
- :func:`ghost`: exact cancellation of the layer's additive correlated noise,
  the multiplicative correlated residual, the ghosts' own noise, and the
  condition under which a ghost helps.
- :func:`intra_layer`: the coupling V = alpha I + beta J and the condition on
  its row statistics (mean entry mu, mean square nu) under which it
  suppresses the uncorrelated noise: N mu^2 > nu, i.e. the squared row sum
  exceeds the row's sum of squares; full suppression when every entry is
  equal (nu = mu^2).

sympy is imported by this module only; ``import noiseprop.mitigation`` does
not load it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

from ..analysis.symbolic import _IJ, SYMBOLS

__all__ = ["MitigationDerivation", "pooling", "ghost", "intra_layer", "MITIGATION_SYMBOLS"]

#: Extra symbols of the mitigation derivations.
MITIGATION_SYMBOLS = {
    "K": sp.Symbol("K", positive=True, integer=True),      # copies per neuron
    "G": sp.Symbol("G", positive=True, integer=True),      # ghost groups
    "u": sp.Symbol("u", nonnegative=True),                 # layer's uncorrelated part
    "c": sp.Symbol("c", nonnegative=True),                 # layer's correlated part
    "c0": sp.Symbol("c_0", real=True),                     # ghost output level
    "alpha": sp.Symbol("alpha", real=True, nonzero=True),  # coupling: own weight (minus beta)
    "beta": sp.Symbol("beta", real=True),                  # coupling: weight to every neuron
    "mu": sp.Symbol("mu_V", real=True),                    # mean entry of a coupling row
    "nu": sp.Symbol("nu_V", positive=True),                # mean square entry of a coupling row
}


@dataclass(frozen=True)
class MitigationDerivation:
    """Named sympy expressions of one strategy and the assumptions they rest on."""

    strategy: str
    results: dict
    assumptions: tuple

    def __getitem__(self, name: str) -> sp.Expr:
        return self.results[name]

    def latex(self) -> dict:
        return {name: sp.latex(expr) for name, expr in self.results.items()}


_COMMON = (
    "symmetric family: N neurons of signal m, covariance u I + c J, next-layer weights all equal w",
    "linear response (exact for affine activations), noise after the activation ('post')",
)


def _passed_on(sigma: _IJ, weight: sp.Expr, n: sp.Expr) -> sp.Expr:
    """Variance of sum_i weight * y_i for Cov(y) = sigma (n neurons): weight^2 1^T Sigma 1."""
    row = _IJ(sp.Integer(0), weight)               # a matrix whose rows are all 'weight'
    product = row.matmul(sigma, n).matmul(row, n)  # weight^2 (1^T Sigma 1) J
    return sp.expand(product.c + product.u)


@functools.lru_cache(maxsize=None)
def pooling() -> MitigationDerivation:
    """Each neuron becomes K copies (same input, independent uncorrelated noise,
    shared correlated draw); the next layer reads the K N copies with weight w/K.

    Results: ``passed_on`` (pooled), ``passed_on_original``,
    ``uncorrelated_factor`` (= 1/K) and ``correlated_factor`` (= 1).
    """
    n, w = SYMBOLS["N"], SYMBOLS["w"]
    K, u, c = (MITIGATION_SYMBOLS[s] for s in ("K", "u", "c"))
    original = _passed_on(_IJ(u, c), w, n)
    pooled = _passed_on(_IJ(u, c), w / K, K * n)
    factor = lambda part: sp.cancel(pooled.coeff(part) / original.coeff(part))  # noqa: E731
    return MitigationDerivation("pool", {
        "passed_on": sp.factor(pooled), "passed_on_original": sp.factor(original),
        "uncorrelated_factor": factor(u), "correlated_factor": factor(c),
    }, _COMMON + ("the K copies of a neuron lie in the same layer: independent U draws, one shared C draw",))


@functools.lru_cache(maxsize=None)
def ghost() -> MitigationDerivation:
    """G ghost neurons (each for N/G members) of output level c0, read with weight -w N/G.

    The layer's own noise only (noise-free input to the layer; noise that
    arrives from upstream is not seen by a ghost and is not cancelled).

    Results: ``passed_on`` and ``passed_on_original`` (the layer's own noise
    passed on), ``AC_coefficient`` (the weight of xi_AC in the next
    pre-activation: 0), ``MC_residual``, ``ghost_noise``, and ``helps``: the
    condition passed_on < passed_on_original.
    """
    n, w, m = SYMBOLS["N"], SYMBOLS["w"], SYMBOLS["m"]
    G, c0 = MITIGATION_SYMBOLS["G"], MITIGATION_SYMBOLS["c0"]
    d = {name: SYMBOLS[f"D_{name}"] for name in ("AU", "AC", "MU", "MC")}
    # unit-variance noise variables: common to the layer, of one member, of one ghost
    x_ac, x_mc, x_au, x_mu, g_au, g_mu = sp.symbols("xi_AC xi_MC xi_AU_i xi_MU_i xi_AU_g xi_MU_g")
    member = m * (1 + sp.sqrt(d["MU"]) * x_mu + sp.sqrt(d["MC"]) * x_mc) + sp.sqrt(d["AU"]) * x_au \
        + sp.sqrt(d["AC"]) * x_ac
    ghost_out = c0 * (1 + sp.sqrt(d["MU"]) * g_mu + sp.sqrt(d["MC"]) * x_mc) + sp.sqrt(d["AU"]) * g_au \
        + sp.sqrt(d["AC"]) * x_ac
    size = n / G                                   # members per ghost
    # z = w sum_i member_i - sum_g (w N/G) ghost_g; per-neuron draws enter N (or G) times
    common = sp.expand(w * n * member - w * size * G * ghost_out)
    per_member, per_ghost = (x_au, x_mu), (g_au, g_mu)
    variance = sum(sp.diff(common, x) ** 2 for x in (x_ac, x_mc))
    variance += n * sum((w * sp.diff(member, x)) ** 2 for x in per_member)
    variance += G * sum((w * size * sp.diff(ghost_out, x)) ** 2 for x in per_ghost)
    variance = sp.expand(variance)
    original = sp.expand(sum((w * n * sp.diff(member, x)) ** 2 for x in (x_ac, x_mc))
                         + n * sum((w * sp.diff(member, x)) ** 2 for x in per_member))
    ghost_noise = sp.expand(G * sum((w * size * sp.diff(ghost_out, x)) ** 2 for x in per_ghost))
    return MitigationDerivation("ghost", {
        "passed_on": sp.factor(variance), "passed_on_original": sp.factor(original),
        "AC_coefficient": sp.expand(sp.diff(common, x_ac)),
        "MC_residual": sp.factor(sp.diff(common, x_mc) ** 2),
        "ghost_noise": sp.factor(ghost_noise),
        "helps": sp.factor(variance - original) < 0,
    }, _COMMON[:1] + (
        "noise after the activation; the ghost outputs c_0 (zero input weights) and shares the layer's "
        "correlated draws",
        "only the layer's own noise: upstream noise reaches the members but not the ghost",
    ))


@functools.lru_cache(maxsize=None)
def intra_layer() -> MitigationDerivation:
    """A coupling V = alpha I + beta J applied to the layer's outputs.

    Results: ``uncorrelated`` (u' = alpha^2 u), ``correlated`` (c'),
    ``signal_gain`` (m'/m = alpha + N beta), ``uncorrelated_suppression``
    ((u'/m'^2) / (u/m^2)) in terms of alpha, beta and of the row statistics
    mu, nu, the ``condition`` for suppression, and ``undone``: the inverse
    V^-1 = (1/alpha) I - beta / (alpha (alpha + N beta)) J times V, which is I
    (the next layer undoes the coupling, and then what reaches it is unchanged).
    """
    n = SYMBOLS["N"]
    u, c, alpha, beta, mu, nu = (MITIGATION_SYMBOLS[s] for s in ("u", "c", "alpha", "beta", "mu", "nu"))
    v = _IJ(alpha, beta)
    coupled = v.matmul(_IJ(u, c), n).matmul(v, n)
    gain = alpha + n * beta
    suppression = sp.cancel(coupled.u / gain**2 / u)
    # row statistics of V: mean entry mu = (alpha + N beta)/N, mean square nu
    mu_expr = gain / n
    nu_expr = ((alpha + beta) ** 2 + (n - 1) * beta**2) / n
    variance_gap = sp.factor(sp.expand(nu_expr - mu_expr**2))       # nu - mu^2 = alpha^2 (N - 1) / N^2
    # alpha^2 = N^2 (nu - mu^2) / (N - 1) and (alpha + N beta)^2 = N^2 mu^2: confirm, then substitute
    via_stats = (variance_gap * n**2 / (n - 1)) / (n * mu_expr) ** 2
    assert sp.cancel(suppression - via_stats) == 0, "row-statistics form of the suppression"
    suppression_stats = sp.cancel(((nu - mu**2) * n**2 / (n - 1)) / (n * mu) ** 2)
    inverse = _IJ(1 / alpha, -beta / (alpha * gain))
    identity = inverse.matmul(v, n)
    return MitigationDerivation("intra", {
        "uncorrelated": sp.factor(coupled.u), "correlated": sp.factor(coupled.c),
        "signal_gain": gain, "uncorrelated_suppression": suppression,
        "variance_gap": variance_gap,
        "uncorrelated_suppression_stats": suppression_stats,
        "condition": suppression_stats < 1,
        "undone": _IJ(sp.cancel(identity.u), sp.cancel(identity.c)),
    }, _COMMON + (
        "the coupling is noise-free; with the next layer reading W V^-1 the noise that reaches it is "
        "unchanged (V^-1 V = I)",
    ))
