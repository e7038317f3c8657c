"""noiseprop verify: exit codes, JSON and the plot file."""
import json

import numpy as np
import pytest

from noiseprop import Network
from noiseprop.cli import main
from noiseprop.io.networks import save_network


def run(capsys, *argv):
    code = main(["verify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_affine_network_agrees_exit_0(capsys, tmp_path):
    code, out, _ = run(capsys, "--symmetric", "3,4,0.3,0.1,linear(slope=0.9)", "--noise", "1e-2",
                       "--samples", "20000", "--plot", str(tmp_path / "v.png"))
    assert code == 0
    assert "verdict: all layers agree" in out and out.startswith("Network(4-4-4-4;")
    assert out.splitlines()[1] == "noise: AU=0.01, AC=0.01, MU=0.01, MC=0.01, placement=post"
    assert (tmp_path / "v.png").stat().st_size > 0


def test_linearisation_error_exit_1_and_json(capsys, tmp_path):
    rng = np.random.default_rng(0)
    net = Network.from_arrays([3 * rng.standard_normal((5, 3)), rng.standard_normal((2, 5))], None, ["tanh", "linear"])
    save_network(tmp_path / "n.npz", net, np.array([0.2, -0.4, 0.1]))
    code, out, _ = run(capsys, str(tmp_path / "n.npz"), "--AU", "0.3", "--placement", "pre", "--samples", "20000", "--seed", "3", "--json",
                       "--method", "linear")
    assert code == 1
    payload = json.loads(out)
    assert payload["passed"] is False and payload["samples"] == 20000 and payload["seed"] == 3
    assert payload["noise"]["AU"] == 0.3 and len(payload["layers"]) == 2


def test_bad_input_exit_2(capsys, tmp_path):
    code, out, err = run(capsys, "--symmetric", "2,3,0.3,0,linear", "--samples", "2")
    assert code == 2 and out == "" and "samples must be at least 4" in err
    (tmp_path / "v.png").write_bytes(b"keep")
    code, _, err = run(capsys, "--symmetric", "2,3,0.3,0,linear", "--plot", str(tmp_path / "v.png"))
    assert code == 2 and "exists" in err and (tmp_path / "v.png").read_bytes() == b"keep"
    code, _, err = run(capsys, "--symmetric", "2,3,0.3,0,linear", "--false-failure", "2")
    assert code == 2 and "--false-failure must be" in err


def test_main_job_default_network_linear_vs_moments(capsys):
    """The README's main job: on the shipped trained network at D = 1e-3 the
    default and both named predictions agree with plain sampling within the
    default tolerances; the strict test shows the first-order prediction's
    (small but resolved) error in the neuron means."""
    code, out, _ = run(capsys)  # whatever the default method is
    assert code == 0, out
    code, out, _ = run(capsys, "--method", "moments", "--json")
    payload = json.loads(out)
    assert code == 0 and payload["passed"]
    code, out, _ = run(capsys, "--method", "linear", "--json")
    payload = json.loads(out)
    assert code == 0 and payload["passed"] and payload["rtol"] == 0.05 and payload["mean_tol"] == 0.2
    verdicts = {row[key] for row in payload["layers"] for key in ("means", "variances", "layer_var")}
    assert "resolved but within tolerance" in verdicts and "FAIL" not in verdicts
    code, out, _ = run(capsys, "--method", "linear", "--strict")
    assert code == 1
    assert "linearisation error of the first-order prediction" in out and "Strict:" in out


def test_tolerance_options(capsys):
    """--rtol 0 --mean-tol 0 is the strict test; a bad tolerance exits 2."""
    code, out, _ = run(capsys, "--method", "linear", "--rtol", "0", "--mean-tol", "0", "--json")
    payload = json.loads(out)
    assert code == 1 and payload["strict"] is False and payload["rtol"] == 0.0
    assert any(row["means"] == "FAIL" for row in payload["layers"])
    code, _, err = run(capsys, "--symmetric", "2,3,0.3,0,linear", "--rtol", "-1")
    assert code == 2 and "rtol must be a finite number >= 0" in err


@pytest.mark.parametrize("method", ["linear", "moments", "mixture"])
def test_affine_network_at_enormous_noise_exit_0(capsys, method):
    code, out, err = run(capsys, "--symmetric", "2,3,0.3,0.1,linear", "--AU", "1e160", "--samples", "1000",
                         "--strict", "--method", method)
    assert code == 0 and "nan" not in out and "inf" not in out
    assert "warning" not in err.lower()


@pytest.mark.parametrize("given, named", [(["--rtol", "0.3"], "--rtol"), (["--mean-tol", "0"], "--mean-tol"),
                                          (["--rtol", "1", "--mean-tol", "1"], "--rtol and --mean-tol")])
def test_strict_with_a_tolerance_is_refused(capsys, given, named):
    """--strict sets both tolerances to 0: a tolerance given with it was
    silently ignored; now exit 2 naming it, before any work."""
    code, out, err = run(capsys, "--symmetric", "2,3,0.3,0.1,tanh", "--samples", "100", "--strict", *given)
    assert code == 2 and out == ""
    assert err.strip() == f"noiseprop verify: error: --strict sets every tolerance to 0: give it without {named}"
