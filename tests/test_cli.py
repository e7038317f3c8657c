"""The command line: tables, JSON and exit codes."""
import json

import numpy as np
import pytest

from noiseprop import Network, Noise, predict
from noiseprop.cli import main
from noiseprop.io.builtin import default_network, reference_network
from noiseprop.io.networks import save_network


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_default_is_the_shipped_trained_network(capsys):
    code, out, _ = run(capsys, "predict", "--json", "--method", "moments")
    assert code == 0
    payload = json.loads(out)
    net, x = default_network(return_input=True)
    expected = predict(net, Noise(AU=1e-3, AC=1e-3, MU=1e-3, MC=1e-3), x, method="moments")
    assert payload["sizes"] == [64, 100, 100, 100, 10] and payload["method"] == "moments"
    for k, row in enumerate(payload["layers"]):
        assert row["noise_var"] == pytest.approx(float(np.mean(expected.var[k])), rel=1e-12)


def test_predict_reference_network(capsys):
    code, out, _ = run(capsys, "predict", "--reference", "--json")
    assert code == 0
    payload = json.loads(out)
    net, x, noise = reference_network()
    expected = predict(net, noise, x)
    assert payload["sizes"] == [784, 100, 100, 100, 100, 10]
    assert payload["noise"] == {"AU": 1e-3, "AC": 1e-3, "MU": 1e-3, "MC": 1e-3, "placement": "post"}
    for row, k in zip(payload["layers"], range(6)):
        assert row["noise_var"] == pytest.approx(float(np.mean(expected.var[k])), rel=1e-12)
    assert payload["layers"][0]["snr_db"] is None  # infinite: noise-free input


def test_predict_table_for_symmetric_network(capsys):
    code, out, _ = run(capsys, "predict", "--symmetric", "4,5,0.2,0,linear(slope=0.5)", "--AC", "1e-3")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Network(5-5-5-5-5; activations: linear(slope=0.5), linear(slope=0.5), linear(slope=0.5), linear(slope=0.5))"
    assert lines[1] == "noise: AU=0.0, AC=0.001, MU=0.0, MC=0.0, placement=post"
    last = lines[-2].split()
    expected = 1e-3 * (1 - 0.5**8) / (1 - 0.5**2)
    assert last[0] == "4" and float(last[3]) == pytest.approx(expected, rel=1e-3)


def test_predict_npz_with_per_layer_noise(tmp_path, capsys):
    rng = np.random.default_rng(0)
    net = Network.from_arrays([rng.standard_normal((3, 2)), rng.standard_normal((2, 3))], None, ["tanh", "linear"])
    x = np.array([0.3, -0.2])
    save_network(tmp_path / "n.npz", net, x)
    code, out, _ = run(capsys, "predict", str(tmp_path / "n.npz"), "--AU", "1e-3,0", "--MC", "2e-3",
                       "--placement", "pre", "--json", "--per-neuron")
    assert code == 0
    payload = json.loads(out)
    noise = [Noise(AU=1e-3, MC=2e-3, placement="pre"), Noise(MC=2e-3, placement="pre")]
    expected = predict(net, noise, x)
    np.testing.assert_allclose(payload["layers"][2]["var"], expected.var[2], rtol=1e-12)
    np.testing.assert_allclose(payload["layers"][1]["mean"], expected.mean[1], rtol=1e-12)


@pytest.mark.parametrize("argv, message", [
    (["--symmetric", "3,4,0.1,0,softplus"], "unknown activation 'softplus'"),
    (["--symmetric", "3,4,0.1"], "--symmetric needs DEPTH,WIDTH,WEIGHT,BIAS,ACTIVATION"),
    (["--AU", "-1"], "noise intensity AU must be a finite variance >= 0"),
    (["--AU", "1e-3,1e-3"], "--AU: got 2 values for a network of 4 layers"),
    (["--MC", "lots"], "--MC: expected a number"),
    (["--noise", "lots"], "--noise: expected a number"),
    (["--symmetric", "3,4,1e300,0,linear"], "layer 1: the mean signal or its power E[y]^2 overflows"),
    (["missing.npz"], "network file missing.npz does not exist"),
    (["--input-value", "1", "--symmetric", "2,2,1,0,linear", "n.npz"],
     "give one network: a network file and --symmetric were both given"),
    (["--reference", "--symmetric", "2,2,1,0,linear"], "--symmetric and --reference"),
    (["net.h5"], "unknown model file type '.h5'"),
])
def test_bad_input_exits_2_with_a_message(capsys, argv, message):
    code, out, err = run(capsys, "predict", *argv)
    assert code == 2 and out == ""
    assert message in err


def test_input_file(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.full(3, 0.5))
    code, out, _ = run(capsys, "predict", "--symmetric", "2,3,0.5,0,linear", "--input", str(tmp_path / "x.npy"), "--json")
    assert code == 0
    # y1 = 0.5 * 3 * 0.5 = 0.75, y2 = 0.5 * 3 * 0.75 = 1.125
    assert json.loads(out)["layers"][2]["signal_power"] == pytest.approx(1.125**2, rel=1e-12)


def test_warnings_are_one_line_naming_the_command(capsys):
    """The mixture's error estimate over 5 % (shipped network, AU = 0.1:
    15 % at the output) reaches a CLI user as one line naming the command,
    not as Python's 'file.py:NN: UserWarning' with the source line."""
    code, out, err = run(capsys, "predict", "--AU", "0.1")
    assert code == 0 and "est. error" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "noiseprop predict: warning: predict(method='mixture'): the estimated error of layer 4's")
    assert "UserWarning" not in err and ".py:" not in err
