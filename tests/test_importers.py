"""Importers: every framework's model gives a Network with the framework's own outputs;
unsupported layers and nodes are named."""
import warnings

import numpy as np
import pytest
from scipy.special import softmax

from noiseprop import Network
from noiseprop.io.networks import from_onnx, from_sklearn, from_torch, load_model, save_network

RNG = np.random.default_rng(5)
X = RNG.uniform(-1, 1, (40, 4))


# --- scikit-learn ----------------------------------------------------------------------

def fitted(estimator, y):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_sklearn_regressor_round_trip(activation):
    from sklearn.neural_network import MLPRegressor

    model = fitted(MLPRegressor(hidden_layer_sizes=(6, 5), activation=activation, max_iter=50, random_state=0),
                   X @ [1.0, -2.0, 0.5, 0.3])
    net = from_sklearn(model)
    assert net.sizes == (4, 6, 5, 1)
    np.testing.assert_allclose(net.forward(X)[-1][:, 0], model.predict(X), rtol=1e-12, atol=1e-14)


def test_sklearn_multiclass_classifier_gives_logits():
    from sklearn.neural_network import MLPClassifier

    model = fitted(MLPClassifier(hidden_layer_sizes=(7,), activation="tanh", max_iter=50, random_state=0), np.arange(40) % 3)
    net = from_sklearn(model)
    assert net.activations[-1].spec == "linear"
    logits = net.forward(X)[-1]
    np.testing.assert_allclose(softmax(logits, axis=1), model.predict_proba(X), rtol=1e-12, atol=1e-14)


def test_sklearn_binary_classifier_has_a_sigmoid_output():
    from sklearn.neural_network import MLPClassifier

    model = fitted(MLPClassifier(hidden_layer_sizes=(3,), max_iter=50, random_state=0), np.arange(40) % 2)
    net = from_sklearn(model)
    assert net.activations[-1].spec == "sigmoid"
    np.testing.assert_allclose(net.forward(X)[-1][:, 0], model.predict_proba(X)[:, 1], rtol=1e-12)


def test_sklearn_errors_name_the_problem():
    from sklearn.neural_network import MLPRegressor

    with pytest.raises(ValueError, match="expected a fitted scikit-learn MLPClassifier or MLPRegressor"):
        from_sklearn(MLPRegressor())
    model = fitted(MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0), X[:, 0])
    model.activation = "softplus"
    with pytest.raises(ValueError, match="layer 1: scikit-learn activation 'softplus' is not supported"):
        from_sklearn(model)


# --- PyTorch ---------------------------------------------------------------------------

def test_torch_round_trip():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.Sigmoid(), nn.Dropout(0.5), nn.Linear(6, 5),
                           nn.Tanh(), nn.Linear(5, 5, bias=False), nn.ReLU(), nn.Linear(5, 3), nn.Identity())
    net = from_torch(module)
    assert [f.spec for f in net.activations] == ["sigmoid", "tanh", "relu", "linear"]
    module = module.double().eval()
    with torch.no_grad():
        expected = module(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(net.forward(X)[-1], expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("layers, message", [
    (lambda nn: [nn.Linear(4, 3), nn.ReLU(), nn.ReLU()], r"module 2 \(ReLU\): an activation must follow"),
    (lambda nn: [nn.Sigmoid(), nn.Linear(4, 3)], r"module 0 \(Sigmoid\): an activation must follow"),
    (lambda nn: [nn.Linear(4, 3), nn.LeakyReLU()], r"module 1 \(LeakyReLU\) is not supported"),
    (lambda nn: [nn.Conv1d(1, 1, 2)], r"module 0 \(Conv1d\) is not supported"),
    (lambda nn: [nn.Identity()], "the Sequential has no Linear layer"),
])
def test_torch_unsupported_modules_are_named(layers, message):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=message):
        from_torch(torch.nn.Sequential(*layers(torch.nn)))


def test_torch_needs_a_sequential():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="expected a torch.nn.Sequential, got Linear"):
        from_torch(torch.nn.Linear(2, 2))


# --- ONNX ------------------------------------------------------------------------------

def onnx_model(nodes, initializers, n_out=3):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 4])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.DOUBLE, [None, n_out])],
        [numpy_helper.from_array(np.asarray(v, dtype=float), name) for name, v in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def chain_model(final=None):
    """Gemm-Sigmoid, MatMul(Constant)-Add-Tanh, MatMul-Relu, Gemm[-final activation]."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Gemm", ["x", "B1", "C1"], ["g"], alpha=0.7, beta=1.5, transB=1),
        helper.make_node("Sigmoid", ["g"], ["h1"]),
        helper.make_node("Constant", [], ["B2"], value=numpy_helper.from_array(rng.standard_normal((5, 6)))),
        helper.make_node("MatMul", ["h1", "B2"], ["m2"]),
        helper.make_node("Add", ["b2", "m2"], ["z2"]),
        helper.make_node("Tanh", ["z2"], ["h2"]),
        helper.make_node("MatMul", ["h2", "B3"], ["m3"]),
        helper.make_node("Relu", ["m3"], ["h3"]),
        helper.make_node("Gemm", ["h3", "B4"], ["z4"]),
    ]
    if final:
        nodes.append(helper.make_node(final, ["z4"], ["y"]))
    initializers = {"B1": rng.standard_normal((5, 4)), "C1": rng.standard_normal(5),
                    "b2": rng.standard_normal(6), "B3": rng.standard_normal((6, 4)),
                    "B4": rng.standard_normal((4, 3))}
    return onnx_model(nodes, initializers)


def test_onnx_round_trip():
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    model = chain_model()
    net = from_onnx(model)
    assert net.sizes == (4, 5, 6, 4, 3)
    assert [f.spec for f in net.activations] == ["sigmoid", "tanh", "relu", "linear"]
    (expected,) = ReferenceEvaluator(model).run(None, {"x": X})
    np.testing.assert_allclose(net.forward(X)[-1], expected, rtol=1e-12, atol=1e-14)


def test_onnx_erf_node():
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    model = chain_model(final="Erf")
    net = from_onnx(model)
    assert net.activations[-1].spec == "erf"
    # the reference evaluator computes Erf in float32
    (expected,) = ReferenceEvaluator(model).run(None, {"x": X})
    np.testing.assert_allclose(net.forward(X)[-1], expected, rtol=0, atol=1e-7)


def test_onnx_unsupported_and_broken_graphs_are_named():
    pytest.importorskip("onnx")
    from onnx import helper

    softmax_node = [helper.make_node("MatMul", ["x", "W"], ["z"], name="dense"),
                    helper.make_node("Softmax", ["z"], ["p"], name="probs")]
    with pytest.raises(ValueError, match=r"node 1 'probs' \(Softmax\) is not supported"):
        from_onnx(onnx_model(softmax_node, {"W": np.ones((4, 3))}))
    twice = [helper.make_node("MatMul", ["x", "W"], ["z"]), helper.make_node("Relu", ["z"], ["a"]),
             helper.make_node("Tanh", ["a"], ["t"])]
    with pytest.raises(ValueError, match=r"node 2 '' \(Tanh\): an activation must follow"):
        from_onnx(onnx_model(twice, {"W": np.ones((4, 3))}))
    branch = [helper.make_node("MatMul", ["x", "W"], ["z"]), helper.make_node("Relu", ["x"], ["r"])]
    with pytest.raises(ValueError, match=r"node 1 '' \(Relu\) does not take the output of the previous layer"):
        from_onnx(onnx_model(branch, {"W": np.ones((4, 3))}, n_out=4))
    bad_bias = [helper.make_node("MatMul", ["x", "W"], ["z"]), helper.make_node("Add", ["z", "b"], ["y"])]
    with pytest.raises(ValueError, match=r"bias of shape \(2,\) does not fit a layer of 3 neurons"):
        from_onnx(onnx_model(bad_bias, {"W": np.ones((4, 3)), "b": np.ones(2)}))


def test_onnx_matrix_times_data_is_refused_not_transposed():
    """W x (data as the second operand) would import as W^T: refused."""
    pytest.importorskip("onnx")
    from onnx import helper

    square = {"W": np.arange(16.0).reshape(4, 4)}
    for node in (helper.make_node("MatMul", ["W", "x"], ["y"], name="left"),
                 helper.make_node("Gemm", ["W", "x"], ["y"], name="left")):
        with pytest.raises(ValueError, match=rf"node 0 'left' \({node.op_type}\): the data must be the first operand"):
            from_onnx(onnx_model([node], square, n_out=4))
    square_of_data = [helper.make_node("Gemm", ["x", "x"], ["y"], name="sq")]
    with pytest.raises(ValueError, match=r"node 0 'sq' \(Gemm\): needs a constant weight"):
        from_onnx(onnx_model(square_of_data, {}, n_out=4))


def test_onnx_constant_nodes():
    pytest.importorskip("onnx")
    from onnx import helper

    weight = RNG.standard_normal((4, 3))
    nodes = [helper.make_node("MatMul", ["x", "W"], ["z"]),
             helper.make_node("Constant", [], ["b"], value_floats=[0.5, -1.0, 2.0]),
             helper.make_node("Add", ["z", "b"], ["y"])]
    net = from_onnx(onnx_model(nodes, {"W": weight}))
    np.testing.assert_allclose(net.forward(X)[-1], X @ weight + [0.5, -1.0, 2.0], rtol=1e-12)
    nodes[1] = helper.make_node("Constant", [], ["b"], value_string="bias", name="text")
    with pytest.raises(ValueError, match=r"node 1 'text' \(Constant\): constant attribute \['value_string'\] "
                                         "is not supported"):
        from_onnx(onnx_model(nodes, {"W": np.ones((4, 3))}))


def test_onnx_needs_a_model():
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match="expected an onnx.ModelProto or the path of an .onnx file, got NoneType"):
        from_onnx(None)


# --- load_model by file type -----------------------------------------------------------

def test_load_model_by_file_type(tmp_path):
    onnx = pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")
    model = chain_model()
    onnx.save(model, tmp_path / "m.onnx")
    assert load_model(tmp_path / "m.onnx") == from_onnx(model)
    module = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Tanh())
    torch.save(module, tmp_path / "m.pt")
    net, x = load_model(tmp_path / "m.pt", return_input=True)
    assert net == from_torch(module) and x is None
    save_network(tmp_path / "m.npz", net, X[0])
    loaded, x = load_model(tmp_path / "m.npz", return_input=True)
    assert loaded == net and np.array_equal(x, X[0])
    assert isinstance(load_model(tmp_path / "m.onnx"), Network)


def test_load_model_errors(tmp_path):
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"unknown model file type '.h5'; known: .npz, .onnx, .pt, .pth"):
        load_model(tmp_path / "m.h5")
    with pytest.raises(ValueError, match="model file .*m.onnx does not exist"):
        load_model(tmp_path / "m.onnx")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.pt: not a readable PyTorch file"):
        load_model(tmp_path / "junk.pt")
    (tmp_path / "junk.onnx").write_bytes(b"\xff junk")
    with pytest.raises(ValueError, match="junk.onnx is not a readable ONNX model"):
        load_model(tmp_path / "junk.onnx")
