"""Symbolic mitigation results (symmetric family) against predict on transformed networks."""
import numpy as np
import pytest

sp = pytest.importorskip("sympy")

import functools  # noqa: E402

import noiseprop  # noqa: E402
from noiseprop import Network, Noise  # noqa: E402
from noiseprop.analysis.symbolic import SYMBOLS  # noqa: E402
from noiseprop.mitigation import ghost_neurons, intra_layer, pool  # noqa: E402
from noiseprop.mitigation import symbolic as S  # noqa: E402

M = S.MITIGATION_SYMBOLS
N, W = 6, 0.3
NOISE = dict(AU=0.02, AC=0.01, MU=0.03, MC=0.015)

#: Linear response: exact for the affine networks compared here.
predict = functools.partial(noiseprop.predict, method="linear")


def symmetric_pair(bias=0.2):
    """Layer 1 noisy (symmetric), layer 2 linear with slope 1 and noise-free: Var[y_2] = passed on."""
    net = Network.from_arrays([np.full((N, N), 0.1), np.full((2, N), W)], [np.full(N, bias), np.zeros(2)],
                              ["linear(slope=0.8)", "linear"])
    return net, np.full(N, 0.7), [Noise(**NOISE), Noise()]


def values(result, u=None, c=None, m=None, **extra):
    subs = {SYMBOLS["N"]: N, SYMBOLS["w"]: W, **{SYMBOLS[f"D_{k}"]: v for k, v in NOISE.items()}}
    if u is not None:
        subs.update({M["u"]: u, M["c"]: c})
    if m is not None:
        subs[SYMBOLS["m"]] = m
    subs.update({M[k]: v for k, v in extra.items()})
    return float(result.subs(subs))


def test_pooling_law_matches_prediction():
    net, x, noise = symmetric_pair()
    layer = predict(net, noise, x)
    u, c = float(layer.uncorrelated[1][0]), float(layer.correlated[1])
    d = S.pooling()
    assert d["uncorrelated_factor"] == 1 / M["K"] and d["correlated_factor"] == 1
    assert np.isclose(values(d["passed_on_original"], u, c), layer.var[2][0], rtol=1e-12)
    for K in (2, 5):
        pooled = predict(pool(net, K), noise, x).var[2][0]
        assert np.isclose(values(d["passed_on"], u, c, K=K), pooled, rtol=1e-12)


@pytest.mark.parametrize("groups", [1, 2, 3])
def test_ghost_formula_matches_prediction(groups):
    net, x, noise = symmetric_pair(bias=0.0)
    m = float(net.forward(x)[1][0])
    level = 0.4
    d = S.ghost()
    assert d["AC_coefficient"] == 0
    predicted = predict(ghost_neurons(net, groups=groups, level=level), noise, x).var[2][0]
    assert np.isclose(values(d["passed_on"], m=m, G=groups, c0=level), predicted, rtol=1e-12)
    assert np.isclose(values(d["passed_on_original"], m=m), predict(net, noise, x).var[2][0], rtol=1e-12)
    # MC residual vanishes when the ghost outputs the members' signal
    assert values(d["MC_residual"], m=m, c0=m) == 0


def test_intra_layer_suppression_and_condition():
    net = Network.symmetric(depth=2, width=N, weight=1 / N, bias=0.1, activation="linear(slope=0.9)")
    x = np.ones(N)
    noise = Noise(AU=0.02, AC=0.005)
    before = predict(net, noise, x)
    d = S.intra_layer()
    for a in (0.3, 0.9):
        alpha, beta = 1 - a, a / N
        coupled = predict(intra_layer(net, a, layers=1), [noise, Noise(), noise], x)
        u, c = float(before.uncorrelated[1][0]), float(before.correlated[1])
        subs = {M["u"]: u, M["c"]: c, M["alpha"]: alpha, M["beta"]: beta, SYMBOLS["N"]: N}
        assert np.isclose(float(d["uncorrelated"].subs(subs)), coupled.uncorrelated[2][0], rtol=1e-12)
        assert np.isclose(float(d["correlated"].subs(subs)), coupled.correlated[2], rtol=1e-12)
        # the same suppression from the row statistics of V
        v = (1 - a) * np.eye(N) + a / N
        mu, nu = v[0].mean(), (v[0] ** 2).mean()
        by_stats = float(d["uncorrelated_suppression_stats"].subs({M["mu"]: mu, M["nu"]: nu, SYMBOLS["N"]: N}))
        assert np.isclose(by_stats, alpha**2 / (alpha + N * beta) ** 2, rtol=1e-12)
        assert bool(d["condition"].subs({M["mu"]: mu, M["nu"]: nu, SYMBOLS["N"]: N}))
    assert d["undone"].u == 1 and d["undone"].c == 0
    # a coupling whose rows have N mu^2 < nu (e.g. the identity scaled) does not suppress
    assert not bool(d["condition"].subs({M["mu"]: 1 / N, M["nu"]: 1 / N, SYMBOLS["N"]: N}))
