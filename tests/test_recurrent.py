"""Recurrent networks: model validation, analytic propagation through time, stationary state."""
import math

import numpy as np
import pytest

from noiseprop import Noise
from noiseprop.recurrent import (
    RecurrentNetwork,
    echo_state_network,
    load_recurrent,
    predict,
    save_recurrent,
    stationary,
    time_to_snr_below,
)

NOISES = {
    "AU": Noise(AU=0.04),
    "AC": Noise(AC=0.03),
    "MU": Noise(MU=0.05),
    "MC": Noise(MC=0.02),
    "all": Noise(AU=0.02, AC=0.01, MU=0.03, MC=0.02),
}


def _linear_net(feedback=False, leak=0.6, seed=3, n=6, n_io=2, slope=0.8, offset=0.1):
    rng = np.random.default_rng(seed)
    W = rng.normal(0, 1, (n, n))
    W *= 0.7 / np.max(np.abs(np.linalg.eigvals(W)))
    W_in = rng.normal(0, 0.5, (n, n_io))
    W_out = rng.normal(0, 0.3, (n_io, n))
    return RecurrentNetwork.from_arrays(W_in, W, W_out, rng.normal(0, 0.2, n), rng.normal(0, 0.2, n_io),
                                        leak=leak, activation=f"linear(slope={slope},offset={offset})",
                                        feedback=feedback)


def second_moment_recursion(net, noise, out_noise, u, generate):
    """Independent exact recursion for a linear reservoir: raw second moments
    E[v v^T] of v = (x, 1), with E[(1 + xi_i)(1 + xi_j)] = 1 + D_MU d_ij + D_MC,
    expanded directly (no covariance update is reused)."""
    n = net.n
    alpha, beta = net.activation.slope, net.activation.offset
    a = net.leak
    ones = lambda k: np.ones((k, k))  # noqa: E731
    gain = lambda nz, k: 1.0 + nz.MU * np.eye(k) + nz.MC * ones(k)  # noqa: E731
    additive = lambda nz, k: nz.AU * np.eye(k) + nz.AC * ones(k)  # noqa: E731
    out_noise = out_noise or Noise()
    S = np.zeros((n + 1, n + 1))
    S[n, n] = 1.0
    O = np.hstack([net.W_out, net.output_bias[:, None]])
    Wb = np.hstack([net.W, net.bias[:, None]])

    def outputs(S):
        Eo, Eoo = O @ S[:, n], O @ S @ O.T
        Eyy = Eoo * gain(out_noise, net.n_out) + additive(out_noise, net.n_out)
        return Eo, Eyy - np.outer(Eo, Eo)

    results = [outputs(S) + (S[:n, n].copy(), np.zeros((n, n)))]
    for t in range(len(u) + generate):
        Ev = S[:, n]
        if t < len(u):
            G = np.hstack([net.W, (net.W_in @ u[t] + net.bias)[:, None]])
            Ez, Ezz, Exz = G @ Ev, G @ S @ G.T, S[:n] @ G.T
        else:
            Eo, Eoo = O @ Ev, O @ S @ O.T
            Eyy = Eoo * gain(out_noise, net.n_out) + additive(out_noise, net.n_out)
            Evy = S @ O.T  # E[v y^T] = E[v o^T]
            Ez = Wb @ Ev + net.W_in @ Eo
            Ezz = Wb @ S @ Wb.T + net.W_in @ Eyy @ net.W_in.T
            Ezz += Wb @ Evy @ net.W_in.T + (Wb @ Evy @ net.W_in.T).T
            Exz = S[:n] @ Wb.T + Evy[:n] @ net.W_in.T
        if noise.placement == "pre":
            Ezz = Ezz * gain(noise, n) + additive(noise, n)
        Eg = alpha * Ez + beta
        Egg = alpha**2 * Ezz + alpha * beta * (np.outer(Ez, np.ones(n)) + np.outer(np.ones(n), Ez)) + beta**2
        Exg = alpha * Exz + beta * np.outer(S[:n, n], np.ones(n))
        EFF = Egg * gain(noise, n) + additive(noise, n) if noise.placement == "post" else Egg
        new = np.empty_like(S)
        new[:n, :n] = (1 - a) ** 2 * S[:n, :n] + a * (1 - a) * (Exg + Exg.T) + a * a * EFF
        new[:n, n] = new[n, :n] = (1 - a) * S[:n, n] + a * Eg
        new[n, n] = 1.0
        S = new
        mean = S[:n, n]
        results.append(outputs(S) + (mean.copy(), S[:n, :n] - np.outer(mean, mean)))
    return results


# --- model and bad input ---------------------------------------------------------------------

def test_bad_input_names_the_culprit():
    W, W_in, W_out = np.eye(3) * 0.5, np.ones((3, 2)), np.ones((2, 3))
    cases = [
        (dict(W=np.ones((3, 4))), "W (reservoir weights) must be square"),
        (dict(W_in=np.ones((2, 2))), "W_in has shape (2, 2): it needs 3 rows"),
        (dict(W_out=np.ones((2, 4))), "W_out has shape (2, 4): it needs 3 columns"),
        (dict(leak=0.0), "leak must lie in (0, 1]"),
        (dict(leak=1.5), "leak must lie in (0, 1]"),
        (dict(W_out=np.ones((1, 3)), feedback=True), "N_out must equal N_in"),
        (dict(W=[[np.nan, 0, 0], [0, 0, 0], [0, 0, 0]]), "W has a non-finite entry at (0, 0)"),
        (dict(activation="tanhh"), "activation: unknown activation 'tanhh'"),
        (dict(bias=np.ones(2)), "bias has shape (2,), expected (3,)"),
    ]
    for change, message in cases:
        kwargs = dict(W_in=W_in, W=W, W_out=W_out) | change
        with pytest.raises(ValueError) as err:
            RecurrentNetwork.from_arrays(**kwargs)
        assert message in str(err.value), (change, str(err.value))
    net = RecurrentNetwork.from_arrays(W_in, W, W_out)
    u = np.ones((4, 2))
    u[2, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite entry .* at step 3, input 1"):
        predict(net, Noise(AU=1e-3), u)
    with pytest.raises(ValueError, match=r"u has shape \(4, 3\); the network expects \(T, 2\)"):
        predict(net, Noise(AU=1e-3), np.ones((4, 3)))
    with pytest.raises(ValueError, match="feedback=True"):
        predict(net, Noise(AU=1e-3), np.ones((4, 2)), generate=3)
    with pytest.raises(ValueError, match="noise must be a noiseprop.Noise"):
        predict(net, [Noise()], np.ones((4, 2)))
    with pytest.raises(ValueError, match="method must be one of"):
        predict(net, Noise(), np.ones((4, 2)), method="exact")


def test_echo_state_network_reservoirs():
    dense = echo_state_network(40, 2, 3, spectral_radius=0.95, seed=1)
    assert dense.spectral_radius() == pytest.approx(0.95, rel=1e-12)
    sparse = echo_state_network(40, spectral_radius=0.5, density=0.1, seed=1)
    assert 0.03 < np.mean(sparse.W != 0) < 0.2
    band = echo_state_network(40, spectral_radius=0.5, bandwidth=2, seed=1)
    rows, cols = np.nonzero(band.W)
    assert np.max(np.abs(rows - cols)) == 2 and band.spectral_radius() == pytest.approx(0.5)
    assert echo_state_network(10, seed=4) == echo_state_network(10, seed=4)
    with pytest.raises(ValueError, match="density must lie in"):
        echo_state_network(10, density=1.5)
    with pytest.raises(ValueError, match="bandwidth must be a non-negative integer"):
        echo_state_network(10, bandwidth=-1)


def test_save_load_round_trip(tmp_path):
    net = echo_state_network(8, 2, 2, 0.9, seed=2, leak=0.3, activation="sigmoid(gain=2.0)", feedback=True)
    u = np.arange(10.0).reshape(5, 2)
    path = save_recurrent(tmp_path / "esn.npz", net, u)
    loaded, stored = load_recurrent(path, return_input=True)
    assert loaded == net and np.array_equal(stored, u)
    with pytest.raises(FileExistsError):
        save_recurrent(path, net)
    np.savez(tmp_path / "ff.npz", W1=np.eye(2))
    with pytest.raises(ValueError, match="not a recurrent network file"):
        load_recurrent(tmp_path / "ff.npz")


# --- analytic propagation --------------------------------------------------------------------

@pytest.mark.parametrize("name", list(NOISES))
@pytest.mark.parametrize("placement", ["post", "pre"])
@pytest.mark.parametrize("feedback", [False, True])
def test_linear_predict_equals_independent_recursion(name, placement, feedback):
    noise = Noise(**NOISES[name].intensities, placement=placement)
    out_noise = Noise(AU=0.01, MU=0.02, AC=0.005, MC=0.01) if feedback else None
    net = _linear_net(feedback=feedback)
    u = np.random.default_rng(0).uniform(-1, 1, (15, 2))
    generate = 20 if feedback else 0
    res = predict(net, noise, u, generate=generate, output_noise=out_noise, full_covariance=True)
    ref = second_moment_recursion(net, noise, out_noise, u, generate)
    assert len(ref) == len(res.steps) == 15 + generate + 1
    for t, (o_mean, o_cov, mean, cov) in enumerate(ref):
        scale = np.max(np.abs(cov)) + 1e-300
        np.testing.assert_allclose(res.mean[t], mean, rtol=0, atol=1e-12 * (1 + np.max(np.abs(mean))))
        np.testing.assert_allclose(res.cov[t], cov, rtol=0, atol=1e-12 * max(scale, 1e-3))
        np.testing.assert_allclose(res.output_mean[t], o_mean, rtol=0, atol=1e-12 * (1 + np.max(np.abs(o_mean))))
        np.testing.assert_allclose(res.output_var[t], np.diag(o_cov), rtol=1e-12, atol=1e-15)
    assert res.closed.sum() == generate
    assert np.all(res.var[1:].sum(axis=1) > 0)


def test_scalar_closed_forms():
    # x_t = w x_{t-1} + u + xi_AU: Var_t = D (1 - w^2t) / (1 - w^2)
    net = RecurrentNetwork.from_arrays([[1.0]], [[0.6]], [[2.0]], activation="linear")
    res = predict(net, Noise(AU=0.01), np.ones((30, 1)))
    t = np.arange(31)
    np.testing.assert_allclose(res.var[:, 0], 0.01 * (1 - 0.36**t) / (1 - 0.36), rtol=1e-13)
    np.testing.assert_allclose(res.output_var[:, 0], 4 * 0.01 * (1 - 0.36**t) / (1 - 0.36), rtol=1e-13)
    # leaky: x_t = (1-a) x + a (w x + xi): Var = a^2 D / (1 - (1 - a + a w)^2) in the limit
    leaky = RecurrentNetwork.from_arrays([[1.0]], [[0.6]], [[1.0]], activation="linear", leak=0.25)
    s = stationary(leaky, Noise(AU=0.01), [1.0])
    assert s.var[0] == pytest.approx(0.0625 * 0.01 / (1 - 0.9**2), rel=1e-12)
    assert s.growth_rate == pytest.approx(0.81, rel=1e-12)
    assert s.time_constant == pytest.approx(-1 / math.log(0.81), rel=1e-12)


def test_memory_independent_of_steps():
    net = _linear_net()
    res = predict(net, Noise(AU=1e-3), np.ones((50, 2)))
    assert res.cov is None and res.final_cov.shape == (6, 6)


def test_moments_method_equals_linear_for_affine_and_shifts_tanh_mean():
    net = _linear_net(feedback=True)
    u = np.ones((10, 2))
    a = predict(net, NOISES["all"], u, generate=5)
    b = predict(net, NOISES["all"], u, generate=5, method="moments")
    np.testing.assert_allclose(a.var, b.var, rtol=1e-12)
    tanh = echo_state_network(10, 1, 1, 0.9, seed=0, input_scale=1.0)
    lin = predict(tanh, Noise(AU=0.1), np.ones((20, 1)))
    mom = predict(tanh, Noise(AU=0.1), np.ones((20, 1)), method="moments")
    # step 2 is the first with a noisy pre-activation, about the same zbar in both methods:
    # tanh (odd, concave for z > 0) pulls E[tanh(z)] towards 0
    np.testing.assert_array_equal(mom.mean[1], lin.mean[1])
    assert np.all(np.abs(mom.mean[2]) < np.abs(lin.mean[2]))


# --- stationary state --------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", list(NOISES))
@pytest.mark.parametrize("placement", ["post", "pre"])
def test_stationary_equals_long_time_predict(name, placement):
    noise = Noise(**NOISES[name].intensities, placement=placement)
    net = _linear_net(leak=0.8)
    u = np.array([0.4, -0.7])
    s = stationary(net, noise, u)
    res = predict(net, noise, np.tile(u, (5000, 1)))
    assert s.bounded and s.growth_rate < 1
    scale = np.max(np.abs(s.cov))
    np.testing.assert_allclose(res.final_cov, s.cov, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(res.final_mean, s.mean, rtol=1e-9)
    np.testing.assert_allclose(res.output_var[-1], s.output_var, rtol=1e-9)
    assert s.solver == ("gmres" if noise.MU or noise.MC else "lyapunov")


@pytest.mark.slow
def test_stationary_closed_loop_and_tanh():
    net = _linear_net(feedback=True, leak=0.5)
    out_noise = Noise(AU=0.01, MU=0.01)
    s = stationary(net, NOISES["all"], output_noise=out_noise)
    res = predict(net, NOISES["all"], np.zeros((0, 2)), generate=2000, output_noise=out_noise)
    np.testing.assert_allclose(res.final_cov, s.cov, rtol=0, atol=1e-9 * np.max(np.abs(s.cov)))
    esn = echo_state_network(20, 1, 1, 0.8, seed=5, bias_scale=0.2)
    st = stationary(esn, Noise(AU=1e-4, MU=1e-4), [0.3])
    long = predict(esn, Noise(AU=1e-4, MU=1e-4), np.full((1500, 1), 0.3))
    np.testing.assert_allclose(long.final_cov, st.cov, rtol=0, atol=1e-9 * np.max(np.abs(st.cov)))


@pytest.mark.parametrize("placement", ["post", "pre"])
@pytest.mark.parametrize("closed", [False, True])
@pytest.mark.parametrize("schur", [False, True])
def test_stationary_with_multiplicative_noise_equals_a_dense_solve(placement, closed, schur, monkeypatch):
    """vec(P) = (I - L)^-1 vec(Q) with L built column by column (N^2 = 64) and
    solved densely, against GMRES preconditioned by the diagonalised Stein
    solve or (schur) by scipy's Schur-based one; leak < 1, with the fed-back
    output noise (multiplicative too) in self-closed mode."""
    from noiseprop import positive_maps
    from noiseprop.recurrent.propagation import step_moments

    if schur:
        monkeypatch.setattr(positive_maps, "MAX_EIGENBASIS_CONDITION", 0.0)
    net = _linear_net(feedback=closed, leak=0.7, n=8)
    noise = Noise(AU=0.02, AC=0.01, MU=0.2, MC=0.1, placement=placement)
    out_noise, u = (Noise(AU=0.01, MU=0.05), None) if closed else (None, np.array([0.4, -0.7]))
    s = stationary(net, noise, u, output_noise=out_noise)
    n = net.n

    def affine(P):
        return step_moments(net, noise, out_noise, s.mean, P, u)[1]

    Q = affine(np.zeros((n, n)))
    L = np.column_stack([(affine(e.reshape(n, n)) - Q).ravel() for e in np.eye(n * n)])
    dense = np.linalg.solve(np.eye(n * n) - L, Q.ravel()).reshape(n, n)
    assert s.solver == "gmres" and s.bounded and s.growth_rate > s.state_radius**2
    assert s.growth_rate == pytest.approx(np.max(np.abs(np.linalg.eigvals(L))), rel=1e-12)
    np.testing.assert_allclose(s.cov, dense, rtol=0, atol=1e-12 * np.max(np.abs(dense)))
    assert s.residual < 1e-14


@pytest.mark.parametrize("multiplicative", [False, True])
def test_growth_rate_crosses_one_where_the_stationary_state_ends(multiplicative):
    """Scale the reservoir (additive noise) or the multiplicative intensity
    (fixed reservoir) across the crossing: below it the long-time variance
    settles at the stationary value, above it it keeps growing."""
    base = _linear_net(leak=1.0, slope=1.0, offset=0.0)
    radius = np.max(np.abs(np.linalg.eigvals(base.W)))
    rates = []
    contractive = base.W * (0.9 / radius)
    mu_c = _critical_mu(contractive) if multiplicative else None
    for scale in (0.9, 1.1):
        if multiplicative:  # rho(A)^2 = 0.81 < 1; the multiplicative noise pushes rho(L) across 1
            W, noise = contractive, Noise(AU=1e-3, MU=mu_c * scale)
        else:
            W, noise = base.W * (scale / radius), Noise(AU=1e-3)
        net = RecurrentNetwork.from_arrays(base.W_in, W, base.W_out, activation="linear")
        s = stationary(net, noise, [0.0, 0.0])
        rates.append(s.growth_rate)
        var = predict(net, noise, np.zeros((600, 2))).var.sum(axis=1)
        if s.bounded:
            assert var[-1] == pytest.approx(np.trace(s.cov), rel=1e-4)  # slow approach near 1
        else:
            assert np.all(np.isinf(s.cov)) and var[-1] > 10 * var[200] > 0
            assert (var[-1] / var[-301]) ** (1 / 300) == pytest.approx(s.growth_rate, rel=2e-2)
    assert rates[0] < 1 < rates[1]


def _critical_mu(W):
    """D_MU at which rho(L) = 1 (bisection on stationary's growth rate)."""
    net = RecurrentNetwork.from_arrays(np.ones((W.shape[0], 2)), W, np.ones((2, W.shape[0])), activation="linear")
    lo, hi = 0.0, 10.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if stationary(net, Noise(MU=mid), [0.0, 0.0]).growth_rate < 1 else (lo, mid)
    return 0.5 * (lo + hi)


def test_time_to_snr_below_matches_predict():
    """Self-closed linear loop started at its (unstable) fixed point: the mean
    stays put while noise of intensity 1e-20 grows like rho(L)^t."""
    from noiseprop.recurrent.stationary_state import fixed_point

    base = _linear_net(feedback=True, leak=1.0, slope=1.0, offset=0.0)
    net = RecurrentNetwork.from_arrays(base.W_in, base.W * 1.6, base.W_out, base.bias, base.output_bias + 1,
                                       activation="linear", feedback=True)
    x0 = fixed_point(net, None)
    noise = Noise(AU=1e-20)
    empty = np.zeros((0, 2))
    g = time_to_snr_below(net, noise, empty, x0=x0, max_steps=2000)
    res = predict(net, noise, empty, generate=g, x0=x0)
    snr = res.output_snr
    assert snr[-1] < 1 <= np.min(snr[1:-1])
    np.testing.assert_allclose(res.output_mean[-1], res.output_mean[0], rtol=1e-4)  # rounding grows too
    rate = stationary(net, noise).growth_rate
    assert rate > 1 and 10 < g < 2 * math.log(snr[1]) / math.log(rate) + 10
    with pytest.raises(ValueError, match="feedback=True"):
        time_to_snr_below(_linear_net(), noise, np.ones((5, 2)))


def test_output_variance_from_statistics_exact_for_split_covariance():
    from noiseprop.recurrent.propagation import output_variance_from_statistics

    rng = np.random.default_rng(4)
    W_out = rng.normal(0.1, 0.5, (3, 7))
    u, c = 0.02, 0.005
    cov = u * np.eye(7) + c * np.ones((7, 7))
    np.testing.assert_allclose(output_variance_from_statistics(W_out, cov),
                               np.diag(W_out @ cov @ W_out.T), rtol=1e-13)


def test_stationary_state_at_enormous_noise_scales_or_is_refused():
    """Additive noise: the stationary covariance is linear in it, up to the
    floating-point range (scipy's Lyapunov solver returned 1e-309 for
    1e307); correlated multiplicative noise: the growth rate is linear in it
    beyond ARPACK's range (1e200 was an internal error); a noise whose
    per-step covariance overflows is a ValueError that says why."""
    net = echo_state_network(30, spectral_radius=0.9, seed=3)
    u = np.ones(1)
    small = stationary(net, Noise(AU=1e-3), u)
    huge = stationary(net, Noise(AU=1e306), u)
    np.testing.assert_allclose(huge.cov / 1e306, small.cov / 1e-3, rtol=1e-10, atol=1e-12 * np.max(small.cov / 1e-3))
    rates = [stationary(net, Noise(MC=d), u).growth_rate / d for d in (1e10, 1e200)]
    assert rates[1] == pytest.approx(rates[0], rel=1e-8)
    with pytest.raises(ValueError, match="overflows.*variances"):
        stationary(net, Noise(AU=1e308), u)
