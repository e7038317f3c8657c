"""The examples for hardware engineers run (fast mode) and say what they should."""
import re
import runpy
import sys
from pathlib import Path

import pytest
from extras import needs

from noiseprop import Noise, default_network, predict

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str) -> dict:
    """The example's namespace (its ``main`` not yet run)."""
    return runpy.run_path(str(EXAMPLES / name))


def test_photonic_noise_budget(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["photonic_noise_budget.py", "--fast"])
    runpy.run_path(str(EXAMPLES / "photonic_noise_budget.py"), run_name="__main__")
    out = capsys.readouterr().out
    shares = [float(s) for s in re.findall(r"([\d.]+) %", out)]
    assert len(shares) == 4 and sum(shares) == pytest.approx(100, abs=1.0)  # first-order parts add up
    factor = float(re.search(r"shrink by a factor ([\d.]+)", out).group(1))
    # the advertised reduction meets the target SNR (printed to 3 digits)
    namespace = load("photonic_noise_budget.py")
    noise = Noise(**{k: v**2 for k, v in namespace["MEASURED_STD"].items()})
    net, x = default_network(return_input=True)
    snr = predict(net, noise.scaled(1 / factor), x).layer_snr_db[-1]
    assert snr == pytest.approx(namespace["TARGET_SNR_DB"], abs=0.05)


def test_choose_activation_slope(capsys):
    load("choose_activation_slope.py")["main"](fast=True)
    out = capsys.readouterr().out
    verdicts = dict(re.findall(r"^\s*(\S+)\s+\S+\s+\S+\s+\S+\s+(yes|NO)\s", out, flags=re.M))
    assert verdicts["linear(slope=1.05)"] == "NO" and verdicts["linear"] == "NO"
    assert verdicts["linear(slope=0.9,offset=0.05)"] == "yes" and verdicts["tanh(gain=2)"] == "yes"
    assert "choice: sigmoid(gain=4)" in out


@pytest.mark.slow
def test_verify_your_pytorch_and_onnx_model(tmp_path, capsys):
    torch = needs("torch")
    needs("onnx")
    from noiseprop.io.networks import load_network

    example = load("verify_your_model.py")
    path = tmp_path / "model.npz"
    assert example["main"](fast=True, save=str(path)) is True
    out = capsys.readouterr().out
    assert "test accuracy" in out
    assert float(re.search(r"test accuracy ([\d.]+) %", out).group(1)) > 85  # the stand-in model learned
    # the same kind of model as an ONNX file: imported to the same outputs, verified
    model = example["train_torch_model"](epochs=3)
    onnx_path = tmp_path / "model.onnx"
    with pytest.warns(DeprecationWarning):  # the legacy exporter, which needs no extra package
        torch.onnx.export(model, torch.zeros(1, 64), str(onnx_path), dynamo=False)
    assert example["main"](fast=True, onnx=str(onnx_path), save=str(tmp_path / "onnx.npz")) is True
    net, x = load_network(tmp_path / "onnx.npz", return_input=True)
    with torch.no_grad():
        expected = model(torch.tensor(x[None], dtype=torch.float32)).numpy()[0]
    assert net.forward(x)[-1] == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_rank_layers():
    rankings = load("rank_layers.py")["main"](fast=True)
    # uncorrelated additive noise: the first layer's is amplified by every later layer,
    # the output layer's reaches the output unchanged and smallest
    assert rankings["AU"][0] == 1 and rankings["AU"][-1] == 4
    assert sorted(rankings["MC"]) == [1, 2, 3, 4]


@pytest.mark.slow
def test_statistics_recursion_report(capsys):
    main = load("statistics_recursion_report.py")["main"]
    main(["--fast"])
    out = capsys.readouterr().out
    rows = re.findall(r"^\s*(AU|AC|MU|MC)\s+(\d)\s+([+-]?[\d.]+)%\s+([\d.]+)%", out, flags=re.M)
    assert len(rows) == 4 * 4 and "5 test digits" in out
    # layer 1 sees a noise-free input: the statistics-only recursion is exact there
    assert all(float(worst) == 0.0 for _, layer, _, worst in rows if layer == "1")
    assert any(float(worst) > 1.0 for *_, worst in rows)  # and not elsewhere
    with pytest.raises(SystemExit) as info:
        main(["--inputs", "0"])
    assert info.value.code == 2 and "--inputs must lie in 1..450" in capsys.readouterr().err


def test_mitigate_noisy_classifier(capsys):
    result = load("mitigate_noisy_classifier.py")["main"](fast=True)
    out = capsys.readouterr().out
    plan, rows = result["plan"], result["accuracy"]
    assert plan.extra_neurons <= plan.max_extra_neurons == 300
    assert plan.output_snr_db_after > plan.output_snr_db_before  # the plan helps (predicted)
    original, mitigated = rows
    assert mitigated["hidden_neurons"] <= 2 * original["hidden_neurons"]
    assert original["clean"] == mitigated["clean"]               # the function is preserved
    assert "recovered" in out and "decision output SNR" in out
