"""Bad input gets a ValueError that names what is wrong."""
import numpy as np
import pytest

from noiseprop import Network, Noise, predict


def test_shape_mismatch_names_layer_and_both_shapes():
    with pytest.raises(ValueError, match=r"layer 2: weights of shape \(3, 5\).*layer 1 has 4 neurons \(weights \(4, 2\)\)"):
        Network.from_arrays([np.ones((4, 2)), np.ones((3, 5))])


def test_bias_shape_mismatch():
    with pytest.raises(ValueError, match=r"layer 1: biases have shape \(3,\), expected \(4,\)"):
        Network.from_arrays([np.ones((4, 2))], [np.ones(3)])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(bad):
    w = np.ones((3, 3))
    w[1, 2] = bad
    with pytest.raises(ValueError, match=r"layer 2: weights have a non-finite entry at \(1, 2\)"):
        Network.from_arrays([np.ones((3, 2)), w])


def test_non_finite_bias():
    with pytest.raises(ValueError, match="layer 1: biases have a non-finite entry"):
        Network.from_arrays([np.ones((2, 2))], [np.array([0.0, np.nan])])


def test_unknown_activation_lists_known_names():
    with pytest.raises(ValueError, match="layer 2: unknown activation 'softplus'; known names: linear, sigmoid, tanh, relu, erf"):
        Network.from_arrays([np.ones((2, 2)), np.ones((2, 2))], None, ["tanh", "softplus"])


@pytest.mark.parametrize("kwargs, message", [
    ({"biases": [np.zeros(2)]}, "got 1 bias vectors for 2 layers"),
    ({"activations": ["tanh"] * 3}, "got 3 activations for 2 layers"),
    ({"biases": 0.5}, "biases must be a sequence .*got float"),
    ({"activations": 3}, "activations must be a sequence .*got int"),
])
def test_count_mismatches(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Network.from_arrays([np.ones((2, 2)), np.ones((2, 2))], **kwargs)


@pytest.mark.parametrize("weights, message", [
    ([], "at least one layer"),
    (None, r"weights must be a sequence \(the weight matrices W_1..W_L\), got NoneType"),
    ([np.ones((2, 2)) * 1j], "layer 1: weights must be real numbers, got a complex array"),
    ([[[1.0, 2.0], [3.0]]], "layer 1: weights must be a numeric matrix"),
    ([np.ones(3)], r"layer 1: weights must be a non-empty 2-D array \(N_k, N_k-1\), got shape \(3,\)"),
    ([np.ones((2, 2)), "abc"], "layer 2: weights must be a numeric matrix"),
])
def test_bad_weight_arrays(weights, message):
    with pytest.raises(ValueError, match=message):
        Network.from_arrays(weights)


@pytest.mark.parametrize("field", ["AU", "AC", "MU", "MC"])
@pytest.mark.parametrize("value", [-1e-3, np.nan, np.inf])
def test_bad_noise_intensity_names_field(field, value):
    with pytest.raises(ValueError, match=f"noise intensity {field} must be a finite variance >= 0"):
        Noise(**{field: value})


def test_bad_placement():
    with pytest.raises(ValueError, match=r"placement must be one of \('post', 'pre'\), got 'middle'"):
        Noise(placement="middle")


def test_noise_sequence_length_must_match_depth():
    net = Network.symmetric(3, 2, 0.5)
    with pytest.raises(ValueError, match="noise sequence has 2 entries, the network has 3 layers"):
        predict(net, [Noise(), Noise()], np.ones(2))


def test_noise_sequence_entries_must_be_noise():
    net = Network.symmetric(2, 2, 0.5)
    with pytest.raises(ValueError, match="noise of layer 2 must be a Noise, got float"):
        predict(net, [Noise(), 1e-3], np.ones(2))


@pytest.mark.parametrize("x, message", [
    (np.ones(3), r"input x has shape \(3,\); the network expects \(2,\) or a batch \(B, 2\)"),
    (np.ones((2, 2, 2)), r"input x has shape \(2, 2, 2\)"),
    (np.array([1.0, np.nan]), "non-finite"),
    ("ab", "input x must be numeric"),
    (np.ones((0, 2)), r"input x is an empty batch \(shape \(0, 2\)\)"),
])
def test_bad_inputs(x, message):
    net = Network.symmetric(2, 2, 0.5)
    with pytest.raises(ValueError, match=message):
        predict(net, Noise(), x)


def test_predict_needs_a_network():
    with pytest.raises(ValueError, match="net must be a noiseprop.Network, got list"):
        predict([np.ones((2, 2))], Noise(), np.ones(2))


@pytest.mark.parametrize("kwargs, message", [
    ({"depth": 0}, "depth must be a positive integer, got 0"),
    ({"width": 2.5}, "width must be a positive integer, got 2.5"),
    ({"n_inputs": "x"}, "n_inputs must be a positive integer"),
    ({"weight": "abc"}, "weight must be a number, got 'abc'"),
    ({"bias": None}, "bias must be a number, got None"),
    ({"weight": np.inf}, "weight must be finite, got inf"),
])
def test_symmetric_parameters(kwargs, message):
    args = {"depth": 2, "width": 3, "weight": 0.1} | kwargs
    with pytest.raises(ValueError, match=message):
        Network.symmetric(**args)


def test_network_attributes_and_repr():
    net = Network.symmetric(3, 4, 0.25, 0.1, "tanh(gain=0.5)", n_inputs=6)
    assert net.sizes == (6, 4, 4, 4) and net.depth == 3
    assert net.weights[0].shape == (4, 6) and net.biases[2].tolist() == [0.1] * 4
    assert repr(net) == "Network(6-4-4-4; activations: tanh(gain=0.5), tanh(gain=0.5), tanh(gain=0.5))"
    with pytest.raises(ValueError):
        net.weights[0][0, 0] = 1.0  # read-only: a network does not change under the user


@pytest.mark.parametrize("weight, depth, layer", [(1e300, 1, 1), (1e160, 3, 1), (1e100, 3, 2)])
def test_overflowing_signal_names_the_layer(weight, depth, layer):
    """A mean (or its square) beyond the float range is bad input, not a table of nan."""
    net = Network.symmetric(depth, 5, weight)
    message = f"layer {layer}: the mean signal or its power E\\[y\\]\\^2 overflows"
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(ValueError, match=message):
        predict(net, Noise(AU=1e-3), np.ones(5))



@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1, "0.9", None])
def test_check_confidence_refuses_values_outside_the_open_unit_interval(confidence):
    """check_confidence lives with the other validators; the old import from studies.accuracy still works."""
    from noiseprop.studies.accuracy import check_confidence as old_home
    from noiseprop.utils.validation import check_confidence

    assert old_home is check_confidence
    check_confidence(0.95)
    with pytest.raises(ValueError, match=r"confidence must be a probability in \(0, 1\)"):
        check_confidence(confidence)


@pytest.mark.parametrize("present", [set(c) for c in
                                     ([], ["AU"], ["AC"], ["MU"], ["MC"], ["AU", "AC"], ["MU", "MC"], ["AC", "MU"],
                                      ["AU", "AC", "MU", "MC"])], ids=lambda p: "+".join(sorted(p)) or "none")
def test_noise_kind_properties(present):
    """has_uncorrelated / has_correlated / has_multiplicative from the types present (a tiny intensity counts)."""
    noise = Noise(**{name: 1e-300 for name in present})
    assert noise.has_uncorrelated == bool(present & {"AU", "MU"})
    assert noise.has_correlated == bool(present & {"AC", "MC"})
    assert noise.has_multiplicative == bool(present & {"MU", "MC"})


@pytest.mark.parametrize("build", ["constructor", "from_arrays"])
def test_the_constructor_validates_like_from_arrays_and_copies(build):
    """Network(...) once kept the caller's arrays (and made them read-only) and
    took activation names unchecked, failing deep inside predict."""
    w, b = np.full((3, 3), 0.2), np.zeros(3)
    make = Network if build == "constructor" else Network.from_arrays
    net = make([w, w], [b, b], ["tanh", "relu"])
    assert net == Network.from_arrays([w, w], [b, b], ["tanh", "relu"])
    assert w.flags.writeable and b.flags.writeable and net.weights[0] is not w
    assert predict(net, Noise(AU=1e-3), np.ones(3), method="linear").noise_var[-1] > 0
    with pytest.raises(ValueError, match=r"layer 2: weights of shape \(2, 2\) need 2 inputs"):
        make([w, np.ones((2, 2))])
    with pytest.raises(ValueError, match="layer 1: unknown activation 'foo'"):
        make([w], None, ["foo"])


def test_the_recurrent_constructor_validates_like_from_arrays_and_copies():
    from noiseprop.recurrent import RecurrentNetwork

    w_in, w, w_out = np.ones((3, 1)), np.full((3, 3), 0.1), np.ones((1, 3))
    net = RecurrentNetwork(w_in, w, w_out, activation="linear")
    reference = RecurrentNetwork.from_arrays(w_in, w, w_out, activation="linear")
    assert np.array_equal(net.W, reference.W) and net.activation == reference.activation and net.leak == 1.0
    assert w.flags.writeable and net.W is not w
    with pytest.raises(ValueError, match=r"W_out has shape \(1, 2\): it needs 3 columns"):
        RecurrentNetwork(w_in, w, np.ones((1, 2)))
