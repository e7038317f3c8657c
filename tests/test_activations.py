"""Every activation: slope against a central finite difference, known values,
and the text spec round trip."""
import math

import numpy as np
import pytest

from noiseprop.activations import ACTIVATIONS, Erf, Heaviside, Linear, ReLU, Sigmoid, Tanh, get_activation

ALL = [Linear(0.7, 0.2), Sigmoid(), Sigmoid(2.5), Tanh(), Tanh(0.3), ReLU(), Erf(), Erf(1.7), Heaviside()]


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.spec)
def test_derivative_matches_finite_difference(f):
    z = np.array([-2.3, -0.7, -0.1, 0.05, 0.4, 1.9])  # away from relu's kink
    h = 1e-6
    numeric = (f(z + h) - f(z - h)) / (2 * h)
    np.testing.assert_allclose(f.derivative(z), numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.spec)
def test_second_derivative_matches_finite_difference(f):
    z = np.array([-2.3, -0.7, -0.1, 0.05, 0.4, 1.9])  # away from the kinks
    h = 1e-6
    numeric = (f.derivative(z + h) - f.derivative(z - h)) / (2 * h)
    np.testing.assert_allclose(f.second_derivative(z), numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("f, z, value, slope", [
    (Sigmoid(2.0), 0.0, 0.5, 0.5),
    (Tanh(3.0), 0.0, 0.0, 3.0),
    (Erf(1.0), 0.0, 0.0, 2 / math.sqrt(math.pi)),
    (Linear(0.5, 1.0), 2.0, 2.0, 0.5),
    (ReLU(), -1.0, 0.0, 0.0),
    (ReLU(), 2.0, 2.0, 1.0),
    (Heaviside(), -1e-300, 0.0, 0.0),
    (Heaviside(), 0.0, 0.0, 0.0),
    (Heaviside(), 1e-300, 1.0, 0.0),
    (Sigmoid(1.0), 1.0, 1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1)) ** 2),
])
def test_known_values(f, z, value, slope):
    assert f(np.array(z)) == pytest.approx(value, rel=1e-14)
    assert f.derivative(np.array(z)) == pytest.approx(slope, rel=1e-14)


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.spec)
def test_spec_round_trip(f):
    assert get_activation(f.spec) == f


def test_names_give_default_parameters():
    assert get_activation("linear") == Linear(1.0, 0.0)
    assert set(ACTIVATIONS) == {"linear", "sigmoid", "tanh", "relu", "erf", "heaviside"}
    assert get_activation("Sigmoid( gain = 2 )") == Sigmoid(2.0)


def test_vectorised_shapes():
    z = np.zeros((3, 4))
    for f in ALL:
        assert f(z).shape == (3, 4) and f.derivative(z).shape == (3, 4)
        assert f.second_derivative(z).shape == (3, 4)


@pytest.mark.parametrize("spec, message", [
    ("softmax", "known names: linear, sigmoid, tanh, relu, erf"),
    ("sigmoid(slope=2)", "sigmoid takes ['gain']"),
    ("linear(slope)", "key=number"),
    ("tanh(gain=inf)", "'gain' must be finite"),
    (3, "must be a name"),
])
def test_bad_activation_specs(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        get_activation(spec)


def test_activations_are_immutable():
    f = Sigmoid(2.0)
    with pytest.raises(AttributeError):
        f.gain = 3.0


# --- the registry: every activation declares everything the rest of noiseprop needs ---------

REGISTERED = [cls() for cls in ACTIVATIONS.values()] + [Linear(0.7, 0.2), Sigmoid(2.5), Tanh(0.3), Erf(1.7)]


@pytest.mark.parametrize("f", REGISTERED, ids=lambda f: f.spec)
def test_every_activation_has_a_moment_rule(f):
    from noiseprop.moments import MOMENT_RULES, gaussian_moments

    assert f.name in MOMENT_RULES
    # at vanishing variance the Gaussian mean of f is f itself
    assert gaussian_moments(f, np.array([0.37]), np.array([1e-14])).mean[0] == pytest.approx(f(0.37), abs=1e-6)


@pytest.mark.parametrize("f", REGISTERED, ids=lambda f: f.spec)
def test_every_activation_runs_in_the_monte_carlo_kernel(f):
    from noiseprop import Network, Noise
    from noiseprop.simulation.montecarlo import sample_outputs

    w = np.array([[1.3, -0.4], [0.2, 0.9], [-1.1, 0.5]])
    b = np.array([0.1, -0.2, 0.05])
    x = np.array([0.6, -0.8])
    net = Network.from_arrays([w], [b], [f])
    noise_free = sample_outputs(net, Noise(), x, samples=2)
    np.testing.assert_allclose(noise_free[0], f(w @ x + b), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.spec)
def test_lipschitz_constant_is_the_largest_slope(f):
    z = np.linspace(-6.0, 6.0, 120_001)  # contains z = 0, where every smooth one peaks
    if f.name == "heaviside":
        assert f.lipschitz() == math.inf
    else:
        assert f.lipschitz() == pytest.approx(np.max(np.abs(f.derivative(z))), rel=1e-9)


@pytest.mark.parametrize("f", REGISTERED, ids=lambda f: f.spec)
def test_every_activation_states_its_torch_counterpart(f):
    torch = pytest.importorskip("torch", reason="torch counterparts need the 'train' extra")
    z = np.linspace(-2.0, 2.0, 9)
    if f.name == "heaviside":
        with pytest.raises(ValueError, match="cannot be trained"):
            f.torch_function(torch)
    else:
        out = f.torch_function(torch)(torch.as_tensor(z, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(out, f(z), rtol=1e-12, atol=1e-12)
    if f.torch_module:
        module = getattr(torch.nn, f.torch_module)()
        np.testing.assert_allclose(module(torch.as_tensor(z)).numpy(), type(f)()(z), rtol=1e-12)


@pytest.mark.parametrize("cls", list(ACTIVATIONS.values()), ids=lambda c: c.name)
def test_library_names_are_strings_or_none(cls):
    for field in ("torch_module", "onnx_op", "sklearn_name"):
        value = getattr(cls, field)
        assert value is None or (isinstance(value, str) and value)
