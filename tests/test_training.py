"""Training with PyTorch: determinism, accuracy, the shipped default network and
the noise injected during training (spec section 2)."""
import numpy as np
import pytest
from exact_moments import exact_moments
from scipy import stats

from noiseprop import Noise, default_network
from noiseprop.activations import Activation, get_activation
from noiseprop.io.builtin import DEFAULT_NETWORK_ACCURACY
from noiseprop.io.datasets import load_digits

torch = pytest.importorskip("torch")
from noiseprop.studies.training import _apply_noise, _forward, _torch_activation, train_mlp  # noqa: E402

#: Test accuracy floor of the small network trained in these tests.
ACCURACY_FLOOR = 0.90


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def small_digits(digits):
    X_train, y_train, X_test, y_test = digits
    return X_train[:300], y_train[:300], X_test[:100], y_test[:100]


def test_same_seed_gives_identical_weights_whatever_the_thread_count(small_digits):
    kwargs = dict(hidden=(16, 8), epochs=3, progress=False, seed=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    first = train_mlp(*small_digits, **kwargs)
    torch.set_num_threads(1)
    second = train_mlp(*small_digits, **kwargs)
    torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads  # the caller's setting is restored
    assert not torch.are_deterministic_algorithms_enabled()
    assert first.network == second.network
    assert first.history == second.history
    other = train_mlp(*small_digits, **{**kwargs, "seed": 4})
    assert not np.array_equal(other.network.weights[0], first.network.weights[0])


def test_accuracy_on_digits_above_floor(digits):
    result = train_mlp(*digits, hidden=(32,), epochs=15, lr=3e-3, progress=False)
    assert result.network.sizes == (64, 32, 10)
    assert result.test_accuracy > ACCURACY_FLOOR
    # the converted Network classifies like the PyTorch model did in the last epoch
    assert result.history["test_accuracy"][-1] == result.test_accuracy
    assert len(result.history["loss"]) == 15
    assert result.history["loss"][-1] < result.history["loss"][0]


def test_activation_specs_reach_the_network(small_digits):
    result = train_mlp(*small_digits, hidden=(8, 8), activation="tanh(gain=0.5)",
                       output="linear(slope=0.9)", epochs=1, progress=False)
    assert [f.spec for f in result.network.activations] == ["tanh(gain=0.5)"] * 2 + ["linear(slope=0.9)"]


@pytest.mark.parametrize("spec", ["linear(slope=0.7,offset=0.2)", "sigmoid(gain=2.5)", "tanh(gain=0.5)",
                                  "relu", "erf(gain=1.5)"])
def test_torch_activations_equal_noiseprop_activations(spec):
    f = get_activation(spec)
    z = np.linspace(-4, 4, 81)
    np.testing.assert_allclose(_torch_activation(torch, f)(torch.as_tensor(z)).numpy(), f(z),
                               rtol=1e-14, atol=1e-15)


def test_untrainable_activation_is_named(small_digits):
    class Step(Activation):
        name = "step"

    with pytest.raises(ValueError, match="activation 'step' cannot be trained"):
        train_mlp(*small_digits, hidden=(4,), activation=Step(), epochs=1, progress=False)


def test_noise_changes_training_deterministically(small_digits):
    kwargs = dict(hidden=(16,), epochs=2, progress=False)
    noisy = [Noise(AU=1e-2, MC=1e-2), Noise(MU=1e-2, placement="pre")]
    first = train_mlp(*small_digits, noise=noisy, **kwargs)
    assert first.network == train_mlp(*small_digits, noise=noisy, **kwargs).network
    clean = train_mlp(*small_digits, **kwargs)
    assert not np.array_equal(first.network.weights[0], clean.network.weights[0])


@pytest.mark.parametrize("bad, message", [
    (dict(hidden=(10, 0)), r"hidden\[1\] must be a positive integer"),
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(lr=-1.0), "lr must be a positive finite number"),
    (dict(seed=1.5), "seed must be a non-negative integer, a numpy SeedSequence or a Generator, got 1.5"),
    (dict(seed=-1), "seed must be a non-negative integer, got -1"),
    (dict(seed=None), "seed must be a non-negative integer, a numpy SeedSequence or a Generator, got None"),
    (dict(activation="softsign"), "activation: unknown activation 'softsign'"),
    (dict(noise=[Noise()] * 3), "noise sequence has 3 entries, the network has 2 layers"),
])
def test_bad_settings_are_named(small_digits, bad, message):
    with pytest.raises(ValueError, match=message):
        train_mlp(*small_digits, **{"hidden": (4,), "epochs": 1, "progress": False, **bad})


def test_bad_data_is_named(small_digits):
    X, y, Xt, yt = small_digits
    with pytest.raises(ValueError, match="training got 299 labels for 300 inputs"):
        train_mlp(X, y[:-1], Xt, yt, progress=False)
    with pytest.raises(ValueError, match="test inputs have 63 features, training inputs 64"):
        train_mlp(X, y, Xt[:, 1:], yt, progress=False)
    with pytest.raises(ValueError, match="training labels y must be a 1-D array of integer class indices"):
        train_mlp(X, y + 0.5, Xt, yt, progress=False)


def test_default_network_has_its_stated_accuracy(digits):
    net, x = default_network(return_input=True)
    _, _, X_test, y_test = digits
    assert net.sizes == (64, 100, 100, 100, 10)
    assert [f.spec for f in net.activations] == ["sigmoid"] * 3 + ["linear"]
    accuracy = (net.forward(X_test)[-1].argmax(axis=1) == y_test).mean()
    assert accuracy == DEFAULT_NETWORK_ACCURACY
    np.testing.assert_array_equal(x, X_test[0])


# --- injected noise against the exact moments of an affine network -----------------
#
# R samples of one input pass the noisy forward pass of training; the mean, the
# variance of each output neuron and the mean off-diagonal covariance (correlated
# part) are compared with the exact moments (tests/exact_moments.py).  Standard
# errors come from the samples themselves (the variance's from the sample kurtosis:
# outputs with multiplicative noise are not Gaussian).  Tolerance: z standard
# errors, z for a two-sided false-failure probability of 1e-6 after Bonferroni over
# the 2 N_L + 1 = 7 comparisons; with R = 400 000 a variance is held to ~1.3 %,
# so an injection wrong by a few percent fails.

R = 400_000
WEIGHTS = [np.array([[0.8, -0.5, 0.3], [0.4, 0.9, -0.7], [-0.6, 0.2, 1.1]]),
           np.array([[0.7, 0.5, -0.4], [-0.3, 0.8, 0.6], [0.5, -0.9, 0.2]])]
BIASES = [np.array([0.1, -0.2, 0.3]), np.array([0.2, 0.1, -0.1])]
SLOPES, OFFSETS = [0.9, 1.2], [0.1, -0.2]
X0 = np.array([0.5, -1.0, 0.8])


@pytest.mark.parametrize("placement", ["post", "pre"])
@pytest.mark.parametrize("kind", ["AU", "AC", "MU", "MC", "all"])
def test_injected_noise_has_the_exact_moments(kind, placement):
    intensities = {k: 0.04 for k in ("AU", "AC", "MU", "MC")} if kind == "all" else {kind: 0.04}
    noise = Noise(**intensities, placement=placement)
    means, covs = exact_moments(WEIGHTS, BIASES, SLOPES, OFFSETS, [noise, noise], X0)
    generator = torch.Generator().manual_seed(11)
    params = [(torch.as_tensor(w), torch.as_tensor(b)) for w, b in zip(WEIGHTS, BIASES)]
    functions = [_torch_activation(torch, get_activation(f"linear(slope={s},offset={o})"))
                 for s, o in zip(SLOPES, OFFSETS)]
    inputs = torch.as_tensor(np.tile(X0, (R, 1)))
    y = _forward(torch, params, functions, inputs, [noise, noise], generator).numpy()
    n = y.shape[1]
    z = stats.norm.isf(1e-6 / (2 * (2 * n + 1)))
    deviation = y - y.mean(axis=0)
    var = deviation.var(axis=0, ddof=1)
    kurtosis = (deviation**4).mean(axis=0) / var**2
    assert np.all(np.abs(y.mean(axis=0) - means[2]) < z * np.sqrt(var / R)), (y.mean(axis=0), means[2])
    var_tolerance = z * var * np.sqrt((kurtosis - 1) / R)
    assert np.all(np.abs(var - np.diag(covs[2])) < var_tolerance), (var, np.diag(covs[2]))
    off_diagonal = ~np.eye(n, dtype=bool)
    products = (deviation[:, :, None] * deviation[:, None, :])[:, off_diagonal].mean(axis=1)
    exact_correlated = covs[2][off_diagonal].mean()
    assert abs(products.mean() - exact_correlated) < z * products.std() / np.sqrt(R)


def test_correlated_noise_is_one_draw_per_sample_and_layer():
    generator = torch.Generator().manual_seed(0)
    values = torch.ones(5, 4, dtype=torch.float64)
    shared = _apply_noise(torch, values, Noise(AC=1.0, MC=1.0), generator).numpy()
    assert np.all(shared == shared[:, :1]) and len(np.unique(shared[:, 0])) == 5
    own = _apply_noise(torch, values, Noise(AU=1.0, MU=1.0), generator).numpy()
    assert len(np.unique(own)) == own.size
