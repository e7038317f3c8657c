"""Robustness: accuracy under noise, walking noise, noise-aware training.

Statistical tests use fixed seeds and tolerances from the sample size with a
false-failure probability <= 1e-6 per test (Bonferroni over the points
compared); each also shows that it detects a prediction wrong by a few
percent.
"""
import json
import math

import numpy as np
import pytest
from extras import needs
from scipy import integrate, stats

from noiseprop import Network, Noise, default_network
from noiseprop.cli import main
from noiseprop.io.datasets import load_digits
from noiseprop.io.networks import save_network
from noiseprop.plotting import plot_noise_training, plot_walking_noise, save_figure
from noiseprop.studies.accuracy import accuracy, analytic_accuracy, clean_accuracy, level_variances
from noiseprop.studies.noise_training import noise_aware_training, weight_statistics
from noiseprop.studies.walking import midpoint_level, walking_noise

CLASSES = 4
#: Layer gains of the walking-noise network; signal amplitudes after each
#: layer 2, 0.25, 8: layer 2 is the most sensitive to additive noise (8x
#: smaller midpoint than layer 1), then layer 1, then layer 3 (4x larger).
GAINS = (2.0, 0.125, 32.0)


def z_for(false_failure: float, comparisons: int) -> float:
    """Two-sided z-score for a per-test false-failure probability."""
    return float(stats.norm.isf(false_failure / comparisons / 2))


@pytest.fixture(scope="module")
def sensitive_net():
    """Linear 4-4-4-4 classifier with one layer known to be the most sensitive.

    With W_k = g_k I, additive noise of standard deviation s in layer k
    reaches the output as s * (g_{k+1} ... g_L) against a signal x * (g_1 ...
    g_L): the accuracy depends on s / A_k only, A_k = g_1 ... g_k.
    """
    net = Network.from_arrays([g * np.eye(CLASSES) for g in GAINS], None, "linear")
    labels = np.arange(40) % CLASSES
    X = np.eye(CLASSES)[labels] * np.random.default_rng(5).uniform(0.5, 1.5, (40, 1))
    return net, X, labels


@pytest.fixture(scope="module")
def digits_test():
    return load_digits()[2:]


# ------------------------------------------------------- analytic accuracy


def probability_largest_by_quadrature(mean, sd, label):
    """P(Y_label is the largest) for independent Y_j ~ N(mean_j, sd^2)."""
    others = [j for j in range(len(mean)) if j != label]

    def integrand(t):
        return stats.norm.pdf(t, mean[label], sd) * np.prod(stats.norm.cdf((t - mean[others]) / sd))

    value, _ = integrate.quad(integrand, mean[label] - 12 * sd, mean[label] + 12 * sd, epsabs=1e-12)
    return value


def test_analytic_accuracy_equals_quadrature_for_independent_outputs():
    # One linear layer with output noise AU = D: outputs independent N(Wx, D).
    rng = np.random.default_rng(0)
    net = Network.from_arrays([rng.uniform(0.5, 1.5, (CLASSES, CLASSES))], None, "linear")
    X = rng.uniform(0, 1, (12, CLASSES))
    means = net.forward(X)[-1]
    labels = np.argsort(means, axis=1)[np.arange(12), -1 - np.arange(12) % 2]  # best or second best
    D = 0.05
    predicted = analytic_accuracy(net, Noise(AU=D), X, labels, per_input=True, abseps=1e-5)
    exact = np.array([probability_largest_by_quadrature(m, math.sqrt(D), c) for m, c in zip(means, labels)])
    assert np.all((exact > 0.01) & (exact < 0.99))  # the CDF path, not the bounds, is tested
    # abseps is 3 standard errors per input: 6 s.e. gives < 1e-6 over 12 inputs.
    np.testing.assert_allclose(predicted, exact, atol=2e-5, rtol=0)
    wrong = analytic_accuracy(net, Noise(AU=1.05 * D), X, labels, per_input=True, abseps=1e-5)
    assert np.max(np.abs(wrong - exact)) > 1e-3  # a 5 % error in the noise is seen


def test_analytic_accuracy_with_correlated_outputs_matches_gaussian_sampling():
    # Correlated output noise: check the differences' covariance by sampling
    # the same Gaussian directly (an independent route to the probability).
    rng = np.random.default_rng(1)
    net = Network.from_arrays([rng.normal(0, 1, (3, 3)), rng.normal(0, 1, (CLASSES, 3))], None, "linear")
    X = rng.uniform(0, 1, (6, 3))
    labels = np.argmax(net.forward(X)[-1], axis=1)
    noise = [Noise(AU=0.1, AC=0.05, MU=0.05), Noise(AU=0.02, MC=0.03)]
    predicted = analytic_accuracy(net, noise, X, labels, per_input=True, abseps=1e-4)
    moments = __import__("noiseprop").predict(net, noise, X, full_covariance=True)
    draws = 400_000
    sampled = np.array([
        np.mean(np.argmax(rng.multivariate_normal(m, c, draws), axis=1) == label)
        for m, c, label in zip(moments.mean[-1], moments.cov[-1], labels)
    ])
    z = z_for(1e-6, len(labels))
    tolerance = z * np.sqrt(predicted * (1 - predicted) / draws) + 1e-4
    assert np.all(np.abs(sampled - predicted) < tolerance)
    assert np.all(tolerance < 0.005)


def test_common_output_noise_cannot_change_the_winner():
    # AC on the output layer only shifts every output together.
    rng = np.random.default_rng(2)
    net = Network.from_arrays([rng.normal(0, 1, (CLASSES, 3))], None, "linear")
    X = rng.uniform(0, 1, (20, 3))
    labels = rng.integers(0, CLASSES, 20)
    result = accuracy(net, Noise(AC=10.0), X, labels, samples=50, seed=0)
    clean = clean_accuracy(net, X, labels)
    assert result.accuracy == result.predicted == clean


@pytest.mark.slow  # the mixture over the 450 test digits: about 40 s of CPU
def test_ci_covers_analytic_prediction_on_default_network(digits_test):
    X, labels = digits_test
    D = 3e-3  # three times the reference intensity, all four types on every layer
    result = accuracy(default_network(), Noise(AU=D, AC=D, MU=D, MC=D), X, labels,
                                 samples=500, seed=3, confidence=1 - 1e-6)
    assert result.clean > result.accuracy > 0.9
    assert result.covers_prediction, (result.ci, result.predicted)
    assert result.ci[1] - result.ci[0] < 0.005  # a prediction off by 0.5 % accuracy fails


def test_accuracy_is_reproducible_and_seed_dependent(sensitive_net):
    net, X, labels = sensitive_net
    noise = [Noise(), Noise(AU=0.04), Noise()]
    first = accuracy(net, noise, X, labels, samples=300, seed=7, analytic=False)
    again = accuracy(net, noise, X, labels, samples=300, seed=7, analytic=False)
    other = accuracy(net, noise, X, labels, samples=300, seed=8, analytic=False)
    np.testing.assert_array_equal(first.per_input, again.per_input)
    assert not np.array_equal(first.per_input, other.per_input)
    assert first.predicted is None


def test_confidence_interval_has_its_coverage(sensitive_net):
    # 100 independent runs of a 95 % interval around the exact (affine)
    # accuracy: the number of misses is Binomial(100, <= 0.05).
    net, X, labels = sensitive_net
    noise = [Noise(), Noise(AU=0.06), Noise()]
    truth = analytic_accuracy(net, noise, X, labels, abseps=1e-5)
    misses = 0
    for seed in range(100):
        result = accuracy(net, noise, X, labels, samples=40, seed=seed, analytic=False)
        misses += not result.ci[0] <= truth <= result.ci[1]
    assert misses <= stats.binom.isf(1e-6, 100, 0.05)
    # and it is not needlessly wide: an interval of 1 standard error would miss ~32 %
    assert stats.binom.cdf(misses, 100, 0.32) < 1e-6


# ------------------------------------------------------------ walking noise


def test_midpoint_is_log_interpolated():
    # accuracy 0.9 at 0.1 and 0.3 at 1.0; target (1 + 0.2)/2 = 0.6 is half-way: sqrt(0.1 * 1)
    assert midpoint_level([0.1, 1.0], [0.9, 0.3], 1.0, 0.2) == pytest.approx(math.sqrt(0.1))
    assert midpoint_level([0.1, 1.0, 10.0], [0.95, 0.8, 0.5], 1.0, 0.2) == pytest.approx(
        10 ** (2 / 3))  # crosses 0.6 two thirds of the way (in log) from 1 to 10
    assert math.isnan(midpoint_level([0.1, 1.0], [0.9, 0.8], 1.0, 0.2))  # above the range
    assert math.isnan(midpoint_level([0.1, 1.0], [0.5, 0.3], 1.0, 0.2))  # below the range
    for levels in ([1.0, 0.1], [0.0, 1.0]):  # not increasing, or not on a log scale
        with pytest.raises(ValueError, match="positive and strictly increasing"):
            midpoint_level(levels, [0.9, 0.3], 1.0, 0.2)


def test_levels_scale_is_explicit_and_converted():
    np.testing.assert_array_equal(level_variances([0.1, 0.3], scale="std"), [0.1**2, 0.3**2])
    np.testing.assert_array_equal(level_variances([0.1, 0.3], scale="variance"), [0.1, 0.3])
    with pytest.raises(ValueError, match="scale must be one of"):
        level_variances([0.1], scale="sigma")
    with pytest.raises(ValueError, match="positive and strictly increasing"):
        level_variances([0.3, 0.1], scale="std")
    with pytest.raises(TypeError):
        walking_noise(None, None, None, "AU", [0.1])  # no default for scale


@pytest.mark.slow
def test_walking_noise_finds_the_most_sensitive_layer(sensitive_net):
    net, X, labels = sensitive_net
    levels = 2.0 ** np.arange(-4, 5)  # factor-2 grid: the curves are exact shifts of each other
    samples = 3000
    result = walking_noise(net, X, labels, "AU", levels, scale="std", samples=samples, seed=0)
    assert result.layers == (1, 2, 3) and result.clean == 1.0 and result.chance == 0.25
    assert result.ranking == result.predicted_ranking == (2, 1, 3)
    assert result.bracket == result.predicted_bracket == ("found",) * 3
    # analytic midpoints scale exactly with the signal amplitudes 2 : 0.25 : 8
    predicted = result.predicted_midpoint
    assert predicted[0] / predicted[1] == pytest.approx(8, rel=2e-3)
    assert predicted[2] / predicted[0] == pytest.approx(4, rel=2e-3)
    # Monte Carlo vs the exact (affine, Gaussian) accuracy at all 27 points
    p = result.predicted
    z = z_for(1e-6, p.size)
    tolerance = z * np.sqrt(p * (1 - p) * len(labels) / samples) / len(labels) + 1e-4
    assert np.all(np.abs(result.accuracy - p) <= tolerance)
    # ... which detects a noise standard deviation wrong by 5 %
    wrong = np.array([[analytic_accuracy(net, _one_layer(k, 1.1025 * s**2), X, labels)
                       for s in levels] for k in result.layers])
    assert np.any(np.abs(result.accuracy - wrong) > tolerance)
    np.testing.assert_allclose(result.midpoint, predicted, rtol=0.03)


def _one_layer(k, variance):
    return [Noise(AU=variance) if j == k else Noise() for j in (1, 2, 3)]


def test_walking_noise_std_and_variance_levels_agree(sensitive_net):
    net, X, labels = sensitive_net
    stds = np.array([0.05, 0.2, 0.8])
    by_std = walking_noise(net, X, labels, "MU", stds, scale="std", samples=100, seed=1, layers=[2])
    by_var = walking_noise(net, X, labels, "MU", stds**2, scale="variance", samples=100, seed=1,
                                      layers=[2])
    np.testing.assert_array_equal(by_std.accuracy, by_var.accuracy)
    np.testing.assert_array_equal(by_std.variances, by_var.levels)
    np.testing.assert_allclose(by_std.midpoint_variance, by_var.midpoint, rtol=1e-12)
    np.testing.assert_allclose(by_std.midpoint**2, by_var.midpoint, rtol=1e-12)


def test_multiplicative_noise_is_equally_harmful_in_every_linear_layer(sensitive_net):
    # x * N(1, s^2) scales with the signal: the gains cancel, every layer has the same curve.
    net, X, labels = sensitive_net
    result = walking_noise(net, X, labels, "MU", [0.2, 0.5, 1.0, 2.0], scale="std", samples=50, seed=2)
    np.testing.assert_allclose(result.predicted, result.predicted[[0, 0, 0]], atol=3e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"noise_type": "AX"}, "noise_type must be one of"),
        ({"layers": [0]}, "layers must be distinct layer numbers in 1..3"),
        ({"levels": [0.0, 1.0]}, "positive and strictly increasing"),
        ({"chance": 1.5}, r"chance must be an accuracy in \[0, 1\)"),
    ],
)
def test_walking_noise_bad_input(sensitive_net, kwargs, message):
    net, X, labels = sensitive_net
    arguments = {"noise_type": "AU", "levels": [0.1, 1.0], "scale": "std", "samples": 5}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        walking_noise(net, X, labels, **arguments)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.arange(40) % 5, r"labels must lie in 0..3"),
        (np.zeros(39, int), "got 39 labels for 40 inputs"),
        (np.full(40, 0.5), "1-D array of integer class indices"),
    ],
)
def test_bad_labels_are_named(sensitive_net, labels, message):
    net, X, _ = sensitive_net
    with pytest.raises(ValueError, match=message):
        accuracy(net, Noise(AU=0.1), X, labels, samples=5)


# ------------------------------------------------------ noise-aware training


def test_weight_statistics_against_direct_computation():
    w1 = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0]])  # binary weights, mean 0
    w2 = np.array([[0.5, 1.0, -2.0]])
    net = Network.from_arrays([w1, np.vstack([w2, 2 * w2])], None, ["tanh", "linear"])
    X = np.array([[0.2, 0.1], [0.4, -0.3]])
    first, second = weight_statistics(net, X)
    assert first["binarity"] == pytest.approx(1.0) and first["excess_kurtosis"] == pytest.approx(-2.0)
    slope_square = np.mean((1 - np.tanh(X @ w1.T) ** 2) ** 2)
    assert first["gain_uncorrelated"] == pytest.approx(slope_square * 2 * 1.0)
    # statistics-only: row sums of i.i.d. weights of mean 0 and mean square 1 have variance N = 2
    assert first["gain_correlated"] == pytest.approx(slope_square * 2 * 1.0)
    mean, mean_square = -0.25, 26.25 / 6  # of the weights 0.5, 1, -2, 1, 2, -4
    assert second["mean_square"] == pytest.approx(mean_square) and second["slope_square"] == 1.0
    assert second["gain_uncorrelated"] == pytest.approx(3 * mean_square)
    assert second["gain_correlated"] == pytest.approx(9 * mean**2 + 3 * (mean_square - mean**2))
    assert second["binarity"] == pytest.approx(np.mean([0.5, 1, 2, 1, 2, 4]) / math.sqrt(mean_square))


def test_noise_aware_training_converts_levels_and_evaluates_every_network(sensitive_net):
    net, X, labels = sensitive_net
    given = []

    def trainer(X_train, y_train, X_test, y_test, noise, seed, progress, scale_by):
        given.append(noise)
        trained = Network.from_arrays([w * scale_by for w in net.weights], None, "linear")
        return type("Trained", (), {"network": trained})()

    result = noise_aware_training(
        X, labels, X, labels, "AU", [0.0, 0.5], [0.25, 1.0], scale="std", samples=200, seed=4,
        train=trainer, scale_by=1.0,
    )
    assert given == [Noise(AU=0.0), Noise(AU=0.25)]
    assert result.accuracy.shape == result.predicted.shape == result.output_snr_db.shape == (2, 2)
    direct = accuracy(net, Noise(AU=1.0), X, labels, samples=200,
                                 seed=int(np.random.SeedSequence(4).spawn(4)[1].generate_state(1)[0]))
    assert result.accuracy[0, 1] == direct.accuracy and result.predicted[0, 1] == direct.predicted
    assert np.all(result.output_snr_db[:, 0] > result.output_snr_db[:, 1])


@pytest.mark.slow
def test_noise_aware_training_with_pytorch_end_to_end(digits_test, tmp_path):
    needs("torch")
    X_train, y_train = load_digits()[:2]
    X_test, y_test = digits_test
    result = noise_aware_training(
        X_train[:300], y_train[:300], X_test[:60], y_test[:60], "AU", [0.0, 0.5], [0.1, 0.5],
        scale="std", samples=50, hidden=(16,), epochs=3, batch_size=32, lr=1e-2,
    )
    assert result.clean.shape == (2,) and np.all(result.clean > 0.3)  # far above chance (0.1)
    # training with noise changes the weights; the analytic accuracy tracks the measured one
    assert not np.array_equal(result.networks[0].weights[0], result.networks[1].weights[0])
    assert np.all(np.abs(result.accuracy - result.predicted) < 0.1)
    json.dumps(result.to_dict())
    path = save_figure(plot_noise_training(result), tmp_path / "training.png")
    assert path.stat().st_size > 10_000


# ------------------------------------------------------------- figures, CLI


@pytest.mark.slow
def test_walking_noise_figure_is_written(sensitive_net, tmp_path):
    net, X, labels = sensitive_net
    result = walking_noise(net, X, labels, "AU", [0.1, 0.3, 1, 3], scale="std", samples=50)
    path = save_figure(plot_walking_noise(result), tmp_path / "walking.png")
    assert path.stat().st_size > 10_000
    with pytest.raises(FileExistsError):
        save_figure(plot_walking_noise(result), path)


@pytest.fixture
def network_and_data(sensitive_net, tmp_path):
    net, X, labels = sensitive_net
    save_network(tmp_path / "net.npz", net)
    np.savez(tmp_path / "data.npz", X=X, y=labels)
    return str(tmp_path / "net.npz"), str(tmp_path / "data.npz")


def test_cli_accuracy_json_matches_api(network_and_data, sensitive_net, capsys):
    net_path, data_path = network_and_data
    code = main(["robustness", "accuracy", net_path, "--data", data_path, "--AU", "0,0.04,0",
                 "--samples", "200", "--seed", "3", "--factors", "1,2", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    net, X, labels = sensitive_net
    expected = accuracy(net, [Noise(), Noise(AU=0.08), Noise()], X, labels, samples=200, seed=3)
    assert payload["results"][1]["factor"] == 2.0
    assert payload["results"][1]["accuracy"] == expected.accuracy
    assert payload["results"][1]["predicted"] == pytest.approx(expected.predicted, abs=1e-12)


def test_cli_accuracy_table_and_existing_plot(network_and_data, tmp_path, capsys):
    net_path, data_path = network_and_data
    argv = ["robustness", "accuracy", net_path, "--data", data_path, "--AU", "0,0.04,0", "--samples", "20"]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith(
        "Network(4-4-4-4; activations: linear, linear, linear); 40 inputs; "
        "noise: AU=[0.0, 0.04, 0.0], AC=0.0, MU=0.0, MC=0.0, placement=post\n")
    plot = tmp_path / "accuracy.png"
    plot.write_bytes(b"keep")
    assert main([*argv, "--plot", str(plot)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"--plot: {plot} exists; add --force" in err  # refused before computing
    assert plot.read_bytes() == b"keep"


@pytest.mark.slow
def test_cli_walking_table_and_plot(network_and_data, tmp_path, capsys):
    net_path, data_path = network_and_data
    plot = tmp_path / "walk.png"
    code = main(["robustness", "walking", net_path, "--data", data_path, "--type", "AU", "--std",
                 "--levels", "0.0625:16:9", "--samples", "300", "--plot", str(plot)])
    out = capsys.readouterr().out
    assert code == 0 and plot.exists()
    assert "most to least sensitive: measured 2, 1, 3 | predicted 2, 1, 3" in out
    code = main(["robustness", "walking", net_path, "--data", data_path, "--type", "AU", "--std",
                 "--levels", "0.1,1", "--samples", "10", "--plot", str(plot)])
    assert code == 2 and "exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--type", "AU", "--std", "--levels", "1,0.1"], "strictly increasing"),
        (["--type", "AU", "--variance", "--levels", "1:0.1:3"], "MIN:MAX:N needs"),
        (["--type", "AU", "--std", "--levels", "0.1,1", "--layers", "4"], "layers must be"),
        (["--type", "AU", "--std", "--levels", "0.1,1", "--layers", "1.5"], "--layers: expected comma-separated integers"),
    ],
)
def test_cli_walking_bad_input_exits_2(network_and_data, capsys, argv, message):
    net_path, data_path = network_and_data
    code = main(["robustness", "walking", net_path, "--data", data_path, "--samples", "5", *argv])
    assert code == 2 and message in capsys.readouterr().err


def test_cli_walking_needs_the_level_scale(network_and_data, capsys):
    net_path, data_path = network_and_data
    with pytest.raises(SystemExit) as info:
        main(["robustness", "walking", net_path, "--data", data_path, "--type", "AU", "--levels", "0.1,1"])
    assert info.value.code == 2 and "--std --variance" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--std", "--train-levels", "0.3,0", "--eval-levels", "0.1"], "--train-levels must be non-negative"),
        (["--variance", "--train-levels", "0", "--eval-levels", "0,0.1"], "--eval-levels must be positive"),
        (["--std", "--train-levels", "0", "--eval-levels", "0.1", "--hidden", "16.5"],
         "--hidden: expected comma-separated integers"),
    ],
)
def test_cli_train_noisy_bad_levels_exit_2_before_training(capsys, argv, message):
    code = main(["robustness", "train-noisy", "--type", "MU", *argv])
    assert code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_cli_train_noisy_reports_weights_and_snr(capsys):
    needs("torch")
    code = main(["robustness", "train-noisy", "--type", "AU", "--std", "--train-levels", "0,0.5",
                 "--eval-levels", "0.2", "--hidden", "4", "--epochs", "1", "--samples", "5"])
    out = capsys.readouterr().out
    assert code == 0
    assert "trained at 0.5 vs 0: weight rms x" in out and "dB at inference level 0.2" in out


def test_accuracy_does_not_depend_on_the_thread_count(sensitive_net):
    numba = pytest.importorskip("numba")
    net, X, labels = sensitive_net
    noise = [Noise(MU=0.1), Noise(AU=0.04), Noise(AC=0.1)]
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = accuracy(net, noise, X, labels, samples=500, seed=11)
    finally:
        numba.set_num_threads(threads)
    several = accuracy(net, noise, X, labels, samples=500, seed=11)
    np.testing.assert_array_equal(single.per_input, several.per_input)
    assert single.predicted == several.predicted
