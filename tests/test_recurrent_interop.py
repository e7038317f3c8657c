"""Importing reservoirpy echo state networks (extra ``reservoir``)."""
from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

from noiseprop.cli import main
from noiseprop.utils.optional import MissingDependency


def _fitted(activation="tanh", lr=0.4, **kw):
    pytest.importorskip("reservoirpy", minversion="0.4")
    from reservoirpy.nodes import Reservoir, Ridge

    reservoir = Reservoir(units=30, lr=lr, sr=0.9, input_scaling=0.5, bias=0.1, seed=1, activation=activation, **kw)
    ridge = Ridge(ridge=1e-6)
    esn = reservoir >> ridge
    series = np.sin(0.1 * np.arange(300))[:, None]
    esn.fit(series[:-1], series[1:], warmup=50)
    reservoir.reset()
    ridge.reset()
    return esn, series, reservoir, ridge


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "identity"])
def test_imported_network_reproduces_reservoirpy_run(activation):
    from noiseprop.recurrent import from_reservoirpy

    esn, series, _, _ = _fitted(activation, lr=0.4 if activation != "identity" else 0.3)
    net = from_reservoirpy(esn)
    expected = esn.run(series[:120])  # reservoirpy's own run from the zero state
    _, outputs = net.forward(series[:120])
    assert net.leak == (0.4 if activation != "identity" else 0.3)
    assert net.activation.spec.startswith({"tanh": "tanh", "sigmoid": "sigmoid", "identity": "linear"}[activation])
    np.testing.assert_allclose(outputs[1:], expected, rtol=0, atol=1e-12)


def test_import_from_the_node_pair_and_feedback_flag():
    from noiseprop.recurrent import from_reservoirpy

    esn, _, reservoir, ridge = _fitted()
    net = from_reservoirpy((reservoir, ridge), feedback=True)
    assert net.feedback and net == from_reservoirpy(esn, feedback=True)


def test_bad_reservoirpy_models_are_refused_by_name():
    from reservoirpy.nodes import Reservoir, Ridge

    from noiseprop.recurrent import from_reservoirpy

    _, _, reservoir, ridge = _fitted()
    with pytest.raises(ValueError, match="not initialised"):
        from_reservoirpy(Reservoir(units=5) >> Ridge())
    with pytest.raises(ValueError, match="one Reservoir and one Ridge"):
        from_reservoirpy((reservoir,))
    with pytest.raises(ValueError, match="expected a reservoirpy Model"):
        from_reservoirpy(42)
    per_neuron, _, _, _ = _fitted(lr=np.linspace(0.2, 0.5, 30))
    with pytest.raises(ValueError, match="per-neuron leak"):
        from_reservoirpy(per_neuron)


def test_cli_reads_a_pickled_model_only_when_trusted(tmp_path, capsys):
    esn, _, _, _ = _fitted()
    path = tmp_path / "esn.pkl"
    path.write_bytes(pickle.dumps(esn))
    assert main(["recurrent", "predict", str(path), "--AU", "1e-4", "--steps", "5"]) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert main(["recurrent", "predict", str(path), "--trust-pickle", "--AU", "1e-4", "--steps", "5"]) == 0
    assert "1-30-1" in capsys.readouterr().out


def test_missing_reservoirpy_gives_the_pip_command_and_exit_2(tmp_path, monkeypatch, capsys):
    from noiseprop.recurrent import from_reservoirpy

    monkeypatch.setitem(sys.modules, "reservoirpy", None)  # import fails as if not installed
    with pytest.raises(MissingDependency, match=r"noiseprop\[reservoir\]"):
        from_reservoirpy(object())
    path = tmp_path / "esn.pkl"
    path.write_bytes(b"not read")
    assert main(["recurrent", "predict", str(path), "--trust-pickle", "--steps", "5"]) == 2
    assert "pip install 'noiseprop[reservoir]'" in capsys.readouterr().err
