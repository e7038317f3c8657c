"""``noiseprop check``: table, JSON, chart and exit codes (0 met / 1 failed / 2 bad input)."""
import json

import numpy as np
import pytest

from noiseprop import Network, Noise, check_design
from noiseprop.cli import main
from noiseprop.io.networks import save_network


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as stop:  # a usage error found by argparse
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def symmetric(slope):
    return f"6,10,0.1,0,linear(slope={slope})"


@pytest.mark.parametrize("slope, code, growth", [(0.8, 0, "bounded"), (1.0, 1, "linear"), (1.2, 1, "exponential")])
def test_exit_code_follows_the_bounded_verdict(capsys, slope, code, growth):
    exit_code, out, _ = run(capsys, "check", "--symmetric", symmetric(slope), "--AC", "1e-4", "--json")
    assert exit_code == code
    payload = json.loads(out)
    assert payload["bounded"] is (code == 0) and payload["passed"] is (code == 0)
    assert [row["growth"] for row in payload["layers"]] == [growth] * 6
    assert payload["noise"]["AC"] == 1e-4


def test_exit_code_follows_the_target(capsys):
    # bounded network (s = 0.8); output SNR 20.2 dB for AC = 1e-4 on 6 layers
    code, out, _ = run(capsys, "check", "--symmetric", symmetric(0.8), "--AC", "1e-4", "--target-snr", "25")
    assert code == 1
    assert "target SNR: 25.00 dB MISSED" in out and out.rstrip().endswith("verdict: FAIL")
    code, out, _ = run(capsys, "check", "--symmetric", symmetric(0.8), "--AC", "1e-4", "--target-snr", "15")
    assert code == 0 and out.rstrip().endswith("verdict: PASS")


def test_json_matches_the_api_for_a_network_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    net = Network.from_arrays([rng.standard_normal((6, 4)) / 2, rng.standard_normal((3, 6)) / 2.5],
                              None, ["tanh", "linear"])
    x = np.array([0.3, -0.2, 0.5, 0.1])
    save_network(tmp_path / "n.npz", net, x)
    code, out, _ = run(capsys, "check", str(tmp_path / "n.npz"), "--AU", "1e-3,0", "--MC", "2e-3",
                       "--target-snr", "12", "--json")
    expected = check_design(net, [Noise(AU=1e-3, MC=2e-3), Noise(MC=2e-3)], x, target_snr_db=12.0)
    payload = json.loads(out)
    assert code == (0 if expected.passed else 1)
    assert payload["output_snr_db"] == pytest.approx(expected.output_snr_db, rel=1e-12)
    for name, budget in expected.max_noise.items():
        assert payload["max_noise"][name] == pytest.approx(budget, rel=1e-12)
    assert payload["recommendations"] == expected.recommendations


def test_table_and_chart(tmp_path, capsys):
    chart = tmp_path / "chart.png"
    code, out, _ = run(capsys, "check", "--symmetric", symmetric(1.2), "--AC", "1e-4", "--target-snr", "20",
                       "--chart", str(chart))
    assert code == 1
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "lower the slope of layers 2, 3, 4, 5 from 1.2 to below 1 " in out
    assert out.splitlines()[1] == "noise: AU=0.0, AC=0.0001, MU=0.0, MC=0.0, placement=post"
    assert out.splitlines()[2].split()[:4] == ["layer", "size", "rho", "growth"]
    assert "design summary" in out
    # an existing chart is kept unless --force
    code, _, err = run(capsys, "check", "--symmetric", symmetric(1.2), "--chart", str(chart))
    assert code == 2 and "add --force" in err
    code, _, _ = run(capsys, "check", "--symmetric", symmetric(0.8), "--chart", str(chart), "--force")
    assert code == 0


@pytest.mark.parametrize("argv, message", [
    (["--symmetric", "3,4,0.1,0,softplus"], "unknown activation 'softplus'"),
    (["--target-snr", "nan"], "argument --target-snr: expected a finite number, got 'nan'"),
    (["--AC=-1e-3"], "noise intensity AC must be a finite variance >= 0"),
    (["--symmetric", "3,4,1e300,0,linear"], "layer 1: the working point or the noise gains are not finite"),
    (["--symmetric", "3,4,0.25,0,linear", "--input-value", "1", "--noise", "1e-3,2e-3"],
     "--noise: got 2 values for a network of 3 layers"),
    (["--symmetric", "3,4,0.25,0,linear", "--input-value", "1", "--AU", "1,2"],
     "--AU: got 2 values for a network of 3 layers"),
])
def test_bad_input_exits_2(capsys, argv, message):
    code, _, err = run(capsys, "check", *argv)
    assert code == 2
    assert message in err
