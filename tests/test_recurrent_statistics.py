"""Statistics-only time recursion (mean and mean square of W and W_out)."""
from __future__ import annotations

import numpy as np
import pytest

from noiseprop import Noise
from noiseprop.recurrent import RecurrentNetwork, echo_state_network, predict
from noiseprop.recurrent.symbolic import statistics_predict, statistics_step

NOISES = [Noise(AU=1e-3), Noise(AC=1e-3), Noise(MU=1e-3), Noise(MC=1e-3), Noise(AU=1e-3, AC=2e-3, MU=3e-3, MC=4e-3)]


@pytest.mark.parametrize("activation", ["linear(slope=0.9)", "tanh"])
@pytest.mark.parametrize("noise", NOISES, ids=lambda nz: ",".join(k for k, v in nz.intensities.items() if v))
def test_symmetric_reservoir_is_exact_driven_and_self_closed(activation, noise):
    """Constant weights: the ensemble statistics are the weights themselves, every
    neuron has the same working point, and the recursion must equal the full
    linear-response propagation (an independent computation with the matrices)."""
    n = 6
    net = RecurrentNetwork.from_arrays(np.full((n, 1), 0.5), np.full((n, n), 0.12), np.full((1, n), 0.2),
                                       np.full(n, 0.1), [0.3], leak=0.6, activation=activation, feedback=True)
    u = np.sin(0.3 * np.arange(15))[:, None] + 0.5
    full = predict(net, noise, u, generate=10)
    stats = statistics_predict(net, noise, u, generate=10)
    reservoir = np.asarray(full.reservoir.noise_var).ravel()
    output = np.asarray(full.output.noise_var).ravel()
    np.testing.assert_allclose(stats.var, reservoir, rtol=1e-12, atol=1e-12 * reservoir.max())
    np.testing.assert_allclose(stats.output_var, output, rtol=1e-12, atol=1e-12 * output.max())


def test_step_reduces_to_the_symmetric_recursion():
    """mu = w, nu = w^2, s_mean = s, s_sq = s^2, P r = P = m^2: the symmetric-reservoir step."""
    import sympy as sp

    from noiseprop.analysis.symbolic import SYMBOLS as FF
    from noiseprop.recurrent.symbolic import SYMBOLS, derive_recurrent

    nu, nc = statistics_step()
    w, s, m = SYMBOLS["w"], SYMBOLS["s"], SYMBOLS["m"]
    subs = {FF["mu"]: w, FF["nu"]: w**2, FF["s_mean"]: s, FF["s_sq"]: s**2, FF["P"]: m**2, FF["r"]: 1,
            FF["u_prev"]: SYMBOLS["u"], FF["c_prev"]: SYMBOLS["c"]}
    rec = derive_recurrent("all").recursion
    assert sp.simplify(nu.subs(subs) - rec["u"]) == 0
    assert sp.simplify(nc.subs(subs) - rec["c"]) == 0


def test_statistics_of_a_random_reservoir_and_bad_input():
    net = echo_state_network(30, 1, 1, 0.9, seed=1)
    u = np.full((20, 1), 0.3)
    stats = statistics_predict(net, Noise(AU=1e-4), u)
    assert stats.var.shape == (21,) and stats.var[0] == 0 and np.all(stats.var[1:] > 0)
    assert stats.statistics["mu"] == pytest.approx(net.W.mean()) and stats.statistics["nu_out"] == pytest.approx(
        np.mean(net.W_out**2))
    with pytest.raises(ValueError, match="placement 'post'"):
        statistics_predict(net, Noise(AU=1e-4, placement="pre"), u)
    with pytest.raises(ValueError, match="noise must be a Noise"):
        statistics_predict(net, {"AU": 1e-4}, u)
