"""Recurrent networks: Mackey-Glass data, ridge readout, NRMSE, Elman training, design check, CLI."""
import json

import numpy as np
import pytest

from noiseprop import Noise
from noiseprop.cli import main
from noiseprop.recurrent import RecurrentNetwork, echo_state_network, predict, save_recurrent, stationary
from noiseprop.recurrent.data import mackey_glass
from noiseprop.recurrent.design import check_recurrent, noise_budget
from noiseprop.recurrent.training import generation_nrmse, nrmse, one_step_nrmse, ridge_readout


def test_mackey_glass_properties():
    x = mackey_glass(2000)
    assert x.shape == (2000,) and 0.2 < x.min() < 0.6 and 1.1 < x.max() < 1.45
    # the integration converges: halving dt changes the early series little
    fine = mackey_glass(100, dt=0.05, discard=0)
    coarse = mackey_glass(100, dt=0.1, discard=0)
    assert np.max(np.abs(fine[:50] - coarse[:50])) < 1e-3
    # tau = 17 is chaotic (largest Lyapunov exponent ~ 0.006 per time unit): histories 1e-6 apart separate
    a, b = mackey_glass(4000, discard=0), mackey_glass(4000, discard=0, x0=1.2 + 1e-6)
    assert np.max(np.abs(a[-300:] - b[-300:])) > 0.05
    with pytest.raises(ValueError, match="tau = 17.05 must be a non-negative multiple of dt"):
        mackey_glass(10, tau=17.05)


def test_ridge_readout_predicts_mackey_glass():
    s = mackey_glass(1600) - 0.9
    net = echo_state_network(100, 1, 1, 1.0, density=0.1, seed=0, leak=0.3, feedback=True, bias_scale=0.1)
    trained = ridge_readout(net, s[:1200, None], s[1:1201], ridge=1e-8, warmup=100)
    assert one_step_nrmse(trained, s[1000:], warmup=100) < 0.01
    assert generation_nrmse(trained, s, warmup=1200, horizon=50) < 0.3
    assert nrmse(s[:10], s[:10]) == 0.0
    # against an independent ridge solution (least squares on the augmented system)
    states, _ = net.forward(s[:400, None])
    X = np.hstack([states[51:], np.ones((350, 1))])
    lam = 1e-4
    A = np.vstack([X, np.sqrt(lam) * np.hstack([np.eye(100), np.zeros((100, 1))])])
    coef = np.linalg.lstsq(A, np.concatenate([s[51:401], np.zeros(100)]), rcond=None)[0]
    fit = ridge_readout(net, s[:400, None], s[1:401], ridge=lam, warmup=50)
    np.testing.assert_allclose(fit.W_out[0], coef[:-1], rtol=1e-6, atol=1e-8)
    assert fit.output_bias[0] == pytest.approx(coef[-1], rel=1e-6, abs=1e-9)


@pytest.mark.slow
def test_train_elman_small_and_seeded():
    pytest.importorskip("torch")
    from noiseprop.recurrent.training import train_elman

    s = mackey_glass(80) - 0.9
    a = train_elman(s, 4, epochs=2, window=10, seed=3, noise=Noise(AU=1e-3, MC=1e-3))
    b = train_elman(s, 4, epochs=2, window=10, seed=3, noise=Noise(AU=1e-3, MC=1e-3))
    c = train_elman(s, 4, epochs=2, window=10, seed=3)
    assert isinstance(a, RecurrentNetwork) and a.n == 4 and a.feedback
    np.testing.assert_array_equal(a.W, b.W)
    assert not np.array_equal(a.W, c.W)


def test_design_check_rules_and_budget():
    net = RecurrentNetwork.from_arrays([[1.0]], [[0.5]], [[1.0]], activation="linear")
    report = check_recurrent(net, Noise(AU=1e-3), [1.0], target_snr_db=20.0)
    # x* = 2, Var = D / (1 - 0.25): SNR = 4 * 0.75 / D; budget where it equals 100
    assert report.passed and report.output_snr_db == pytest.approx(10 * np.log10(3 / 1e-3))
    assert report.budgets["AU"] == pytest.approx(0.03, rel=1e-6)
    assert report.budgets["AC"] == pytest.approx(0.03, rel=1e-6)  # one neuron: AC acts as AU
    mu = report.budgets["MU"]
    s = stationary(net, Noise(MU=mu), [1.0])
    assert 10 * np.log10(s.output_snr) == pytest.approx(20.0, abs=1e-4)
    assert noise_budget(net, "AU", -400.0, [1.0]) == np.inf
    unstable = RecurrentNetwork.from_arrays([[1.0]], [[1.2]], [[1.0]], activation="linear")
    failed = check_recurrent(unstable, Noise(AU=1e-3), [1.0])
    assert not failed.passed and not failed.state.bounded and "lower the spectral radius" in failed.table()


def test_cli_recurrent(tmp_path, capsys):
    net = echo_state_network(8, 1, 1, 0.7, seed=1, activation="linear(slope=0.9)", feedback=True)
    path = save_recurrent(tmp_path / "esn.npz", net, np.full((20, 1), 0.5))
    assert main(["recurrent", "predict", str(path), "--AU", "1e-3", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["reservoir"]["steps"]) == 21
    assert main(["recurrent", "stationary", str(path), "--AU", "1e-3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bounded"] is True
    assert main(["recurrent", "verify", str(path), "--noise", "1e-2", "--samples", "4000", "--generate", "5"]) == 0
    assert "agrees" in capsys.readouterr().out
    assert main(["recurrent", "check", str(path), "--AU", "1e-3", "--target-snr", "200"]) == 1
    capsys.readouterr()
    assert main(["recurrent", "predict", str(path), "--generate", "-1"]) == 2
    assert "--generate must be a non-negative integer" in capsys.readouterr().err
    assert main(["recurrent", "predict"]) == 2
    assert main(["recurrent", "predict", str(tmp_path / "missing.npz")]) == 2


def test_symbolic_recursion_equals_predict_and_stationary(capsys):
    pytest.importorskip("sympy")
    from noiseprop.recurrent.stationary_state import fixed_point
    from noiseprop.recurrent.symbolic import derive_recurrent

    n, w, s, a = 5, 0.15, 0.8, 0.6
    net = RecurrentNetwork.from_arrays(np.ones((n, 1)), np.full((n, n), w), np.ones((1, n)) / n,
                                       activation=f"linear(slope={s},offset=0.3)", leak=a)
    x0 = fixed_point(net, np.array([0.5]))  # start at the stationary mean: m constant
    for types, noise in (("all", Noise(AU=1e-2, AC=2e-2, MU=3e-2, MC=1e-2)),
                         (["AU", "AC", "MC"], Noise(AU=1e-2, AC=2e-2, MC=1e-2))):
        d = derive_recurrent(types)
        res = predict(net, noise, np.full((30, 1), 0.5), x0=x0)
        values = dict(N=n, w=w, s=s, a=a, m=x0[0], **{f"D_{k}": v for k, v in noise.intensities.items()})
        next_u, next_c = d.function("next_u"), d.function("next_c")
        u_t = c_t = 0.0
        for step in range(1, 31):
            u_t, c_t = next_u(**values, u=u_t, c=c_t), next_c(**values, u=u_t, c=c_t)
            assert u_t + c_t == pytest.approx(res.var[step, 0], rel=1e-12)
            assert c_t == pytest.approx(res.reservoir.correlated[step], rel=1e-12)
        assert d.function("stationary_variance")(**values) == pytest.approx(
            stationary(net, noise, [0.5]).var[0], rel=1e-12)
        if d.closed_form is not None:
            assert d.function("variance")(**values, t=30) == pytest.approx(res.var[30, 0], rel=1e-12)
    assert main(["derive", "--family", "recurrent", "--noise", "AU,AC"]) == 0
    assert "|1 - a + a s w N| < 1" in capsys.readouterr().out


@pytest.mark.slow
def test_figure_f11_fast(tmp_path):
    pytest.importorskip("matplotlib")
    from noiseprop.figures import f11_recurrent_time

    out = f11_recurrent_time.make(tmp_path, fast=True)
    assert out.png.read_bytes()[:4] == b"\x89PNG"
    record = json.loads(out.data.read_text())
    assert record["caption"] == f11_recurrent_time.CAPTION
    # driven phase: lines and points agree (4 types x 40 steps, |z| < 6: false failure < 1e-6)
    for name, numbers in record["numbers"].items():
        assert numbers["max_abs_z_driven"] < 6.0, name
