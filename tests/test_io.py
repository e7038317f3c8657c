"""The .npz network format: round trip, atomic writes, clear errors."""
import numpy as np
import pytest

from noiseprop import Network
from noiseprop.io.networks import load_network, save_network


@pytest.fixture
def net():
    rng = np.random.default_rng(0)
    return Network.from_arrays(
        [rng.standard_normal((4, 3)), rng.standard_normal((2, 4))],
        [rng.standard_normal(4), rng.standard_normal(2)],
        ["tanh(gain=0.5)", "linear(slope=2.0,offset=0.1)"],
    )


def test_round_trip_with_input(tmp_path, net):
    x = np.array([0.1, 0.2, 0.3])
    save_network(tmp_path / "net.npz", net, x)
    loaded, loaded_x = load_network(tmp_path / "net.npz", return_input=True)
    assert loaded == net
    np.testing.assert_array_equal(loaded_x, x)
    assert load_network(tmp_path / "net.npz") == net


def test_round_trip_with_a_batch_of_inputs(tmp_path, net):
    batch = np.array([[0.1, 0.2, 0.3], [-1.0, 0.5, 2.0]])
    save_network(tmp_path / "net.npz", net, batch)
    _, loaded_x = load_network(tmp_path / "net.npz", return_input=True)
    np.testing.assert_array_equal(loaded_x, batch)


def test_save_needs_a_network(tmp_path):
    with pytest.raises(ValueError, match="net must be a noiseprop.Network, got str"):
        save_network(tmp_path / "net.npz", "net")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite(tmp_path, net):
    path = tmp_path / "net.npz"
    path.write_bytes(b"user data")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        save_network(path, net)
    assert path.read_bytes() == b"user data"
    save_network(path, net, overwrite=True)
    assert load_network(path) == net
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]  # no temporary left


def test_failed_write_leaves_nothing(tmp_path, net):
    with pytest.raises(ValueError):
        save_network(tmp_path / "net.npz", net, x=np.ones(5))
    assert list(tmp_path.iterdir()) == []


def test_minimal_file_defaults(tmp_path):
    np.savez(tmp_path / "m.npz", W1=np.ones((2, 3)), W2=np.ones((1, 2)))
    net = load_network(tmp_path / "m.npz")
    assert net.sizes == (3, 2, 1)
    assert all(f.spec == "linear" for f in net.activations)
    assert all(not b.any() for b in net.biases)


@pytest.mark.parametrize("arrays, message", [
    ({"b1": np.ones(2)}, "no weight matrices W1..WL found"),
    ({"W1": np.ones((2, 2)), "W3": np.ones((2, 2))}, r"numbered W1..W2, found W\[1, 3\]"),
    ({"W1": np.ones((2, 2)), "W2": np.ones((2, 3))}, r"layer 2: weights of shape \(2, 3\)"),
    ({"W1": np.ones((2, 2)), "activations": np.array(["sigmoid", "soft"])}, "got 2 activations for 1 layers"),
    ({"W1": np.ones((2, 2)), "activations": np.array(["soft"])}, "unknown activation 'soft'"),
    ({"W1": np.ones((2, 2)), "activations": np.array([1.0])}, "'activations' must hold strings"),
    ({"W1": np.ones((2, 2)), "x": np.ones(3)}, r"input x has shape \(3,\)"),
    ({"W1": np.float64(2.0)}, r"layer 1: weights must be a non-empty 2-D array .* got shape \(\)"),
])
def test_malformed_files_name_the_file_and_the_problem(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message) as err:
        load_network(path)
    assert "bad.npz" in str(err.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_network(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="junk.npz is not a readable .npz network file"):
        load_network(tmp_path / "junk.npz")


def test_written_files_follow_the_umask(tmp_path, net):
    import os
    mask = os.umask(0o022)
    try:
        path = save_network(tmp_path / "net.npz", net)
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_default_network_loads_without_torch_or_scikit_learn():
    """The shipped network is package data in this format, read with NumPy alone."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'sklearn', 'onnx'):\n"
        "            raise ImportError(f'{name} is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from noiseprop import default_network\n"
        "net, x = default_network(return_input=True)\n"
        "assert net.sizes == (64, 100, 100, 100, 10) and x.shape == (64,)\n"
        "assert int(net.forward(x)[-1].argmax()) == 8\n"
        "assert not {'torch', 'sklearn', 'onnx'} & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
