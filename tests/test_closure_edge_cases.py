"""Edge cases of the closures ("moments", "mixture"): affine networks at
enormous noise, exact cancellation behind ghost neurons, and the mitigation
planner with every method.  Deterministic (no Monte Carlo)."""
import json
import warnings

import numpy as np
import pytest

from noiseprop import Network, Noise, predict
from noiseprop.io.builtin import default_network
from noiseprop.methods import METHODS
from noiseprop.mitigation import Strategy, compare, ghost_neurons, plan
from noiseprop.moments import clamp_rounding, gaussian_moments, mehler_covariance
from noiseprop.propagation import propagate_layer

AFFINE = "linear(slope=0.8,offset=0.1)"
X = np.random.default_rng(9).uniform(0, 1, 5)


def two_layer_affine(seed=4):
    rng = np.random.default_rng(seed)
    w1, w2 = rng.standard_normal((6, 5)) / 2, rng.standard_normal((4, 6)) / 2
    return Network.from_arrays([w1, w2], [rng.standard_normal(6) * 0.2, np.zeros(4)], [AFFINE, "linear"])


# ----------------------------------------------------------------- enormous noise


@pytest.mark.parametrize("method", ["moments", "mixture"])
@pytest.mark.parametrize("intensity", [1e160, 1e300])
def test_affine_network_is_exact_and_finite_at_enormous_noise(method, intensity):
    """Every method is exact for affine activations: same covariances as linear
    response (finite), no overflow warning (the curvature term vanishes)."""
    net = Network.symmetric(2, 3, 0.3, 0.1, "linear")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = predict(net, Noise(AU=intensity), np.ones(3), method=method, full_covariance=True,
                      error_estimate=True)
    exact = predict(net, Noise(AU=intensity), np.ones(3), method="linear", full_covariance=True)
    for k in (1, 2):
        assert np.all(np.isfinite(got.cov[k]))
        np.testing.assert_allclose(got.cov[k], exact.cov[k], rtol=1e-12)
    assert np.all(np.isfinite(got.correlated)) and np.all(got.error_estimate == 0.0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_overflowing_signal_is_reported_before_the_noise_terms_overflow(method, activation):
    """Weights 1e300: the signal itself overflows in layer 1.  Every method
    says so with its ValueError before computing the noise terms, which
    would overflow with it and print numpy warnings first; the noise
    options do not change the verdict."""
    net = Network.symmetric(2, 3, 1e300, 0.0, activation)
    for noise in (Noise(AU=1e-3), Noise(AU=1e-3, AC=1e-3, MU=1e-3, MC=1e-3, placement="pre")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match="layer 1: the mean signal or its power E\\[y\\]\\^2 overflows"):
                predict(net, noise, np.ones(3), method=method)


def test_a_large_finite_signal_still_passes_the_check():
    """Weights 1e75 over two layers: signals 3e150 (power 9e300) are finite
    and answered, for every method, without a warning."""
    net = Network.symmetric(2, 3, 1e75, 0.0, "linear")
    for method in METHODS:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = predict(net, Noise(AU=1e-3), np.ones(3), method=method)
        assert np.all(np.isfinite(result.mean[2])) and result.mean[2][0] == pytest.approx(9e150)


def test_mehler_covariance_without_curvature_never_forms_the_square():
    cov_z = np.array([[[np.inf, 1e300], [1e300, 1e300]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = mehler_covariance(np.ones((1, 2)), np.zeros((1, 2)), cov_z)
    np.testing.assert_array_equal(out, cov_z)
    curved = mehler_covariance(np.zeros((1, 2)), np.array([[1.0, 2.0]]), np.array([[[1.0, 0.5], [0.5, 2.0]]]))
    np.testing.assert_allclose(curved, 0.5 * np.array([[[1.0, 0.5], [0.5, 16.0]]]))


# ----------------------------------------------------------------- exact cancellation


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("placement", ["post", "pre"])
def test_ghost_cancellation_gives_zero_not_an_error(method, placement):
    """A ghost cancels additive correlated noise exactly; the rounding left in
    W S W^T (sometimes -1e-34) is neither an error nor a warning."""
    net = two_layer_affine()
    noise = [Noise(AC=0.05, placement=placement), Noise(placement=placement)]
    ghosted = ghost_neurons(net, groups=3, level=0.4)
    before = predict(net, noise, X, method="linear").var[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after = predict(ghosted, noise, X, method=method, error_estimate=True)
    np.testing.assert_allclose(after.var[-1], 0.0, atol=1e-15 * before.max())
    assert np.all(after.var[-1] >= 0.0)
    assert np.all(after.error_estimate == 0.0)


@pytest.mark.parametrize("method", ["moments", "mixture"])
def test_ghost_neurons_on_the_shipped_network(method):
    """Sigmoid layers, ghosts on every hidden layer, correlated noise after the
    activation: a valid prediction with non-negative variances."""
    net, x = default_network(return_input=True)
    ghosted = ghost_neurons(net)
    result = predict(ghosted, ghosted.noise_for(Noise(AC=1e-2, AU=1e-4)), x, method=method,
                     error_estimate=False)
    for k in range(1, ghosted.depth + 1):
        assert np.all(np.isfinite(result.var[k])) and np.all(result.var[k] >= 0.0)
    np.testing.assert_allclose(result.noise_var[-1],
                               predict(ghosted, ghosted.noise_for(Noise(AC=1e-2, AU=1e-4)), x,
                                       method="linear").noise_var[-1], rtol=0.2)


def test_rounding_clamp_keeps_real_negative_variances():
    """An invalid covariance (|S_12| > sd_1 sd_2) gives a negative variance far
    beyond rounding: it is reported, not set to 0."""
    cov = np.array([[[1.0, 2.0], [2.0, 1.0]]])
    weight = np.array([[1.0, -1.0]])
    cov_z = clamp_rounding(weight @ cov @ weight.T, weight, np.ones((1, 1)))
    assert cov_z[0, 0, 0] == -2.0
    tiny = clamp_rounding(np.array([[[-1e-17]]]), weight, np.ones((1, 1)))
    assert tiny[0, 0, 0] == 0.0
    with pytest.raises(ValueError, match="variance of z"):
        gaussian_moments(Network.symmetric(1, 1, 1.0).activations[0], 0.0, cov_z[0, 0, 0])
    with pytest.raises(ValueError, match="variance of z"):
        propagate_layer(np.zeros((1, 2)), cov, weight, np.zeros(1), Network.symmetric(1, 1, 1.0, 0.0, "tanh")
                        .activations[0], Noise(), "moments")


# ----------------------------------------------------------------- mitigation with every method


def test_plan_and_compare_accept_every_method():
    """On an affine network every method is exact: the same plan and SNRs."""
    rng = np.random.default_rng(2)
    sizes = [6, 12, 12, 3]
    net = Network.from_arrays([rng.standard_normal((b, a)) / np.sqrt(a) + 0.3 / a
                               for a, b in zip(sizes[:-1], sizes[1:])], None, ["linear(slope=0.9)"] * 2 + ["linear"])
    x = np.linspace(0.2, 1.0, 6)
    noise = Noise(AU=0.01, AC=0.02, MU=0.005, MC=0.001)
    plans = {m: plan(net, noise, x, 13, samples=0, method=m) for m in METHODS}
    for m in METHODS:
        assert plans[m].choices == plans["linear"].choices
        assert plans[m].output_snr_db_after == pytest.approx(plans["linear"].output_snr_db_after, abs=1e-9)
        result = compare(net, noise, x, [Strategy("ghost", groups=2)], samples=0, method=m).results[0]
        assert result.output_snr_db_after == pytest.approx(
            compare(net, noise, x, [Strategy("ghost", groups=2)], samples=0, method="linear")
            .results[0].output_snr_db_after, abs=1e-9)


@pytest.mark.parametrize("method", ["moments", "mixture"])
def test_cli_predict_at_enormous_additive_noise_answers(capsys, method):
    """The shipped network at AU = 1e300: every statistic is finite (the output
    variance is about 1e301), so the CLI answers instead of refusing the noise."""
    from noiseprop.cli import main

    code = main(["predict", "--method", method, "--AU", "1e300", "--json"])
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert code == 0
    for row in layers[1:]:
        assert row["noise_var"] >= 1e300 and row["snr_db"] is not None and row["correlated"] is not None


def test_plan_with_the_mixture_refuses_a_step_beyond_the_memory_limit():
    """The planner's mixture steps take the whole batch at once: checked first."""
    from noiseprop.utils.resources import ResourceLimit, memory_limit

    net = Network.symmetric(2, 30, 0.05, 0.1, "tanh")
    batch = np.random.default_rng(0).uniform(0, 1, (50, 30))
    with memory_limit("10 MB"), pytest.raises(ResourceLimit, match="mixture step into a layer of 30 neurons"):
        plan(net, Noise(AC=0.01, MC=0.01), batch, 10, samples=0, method="mixture")
