"""Run-time estimates (noiseprop.utils.estimate) and the CLI's long-run notice.

Nothing here is timed: the estimator is checked against hand-computed work
counts, and the CLI message with the expensive call replaced by a stub.
"""
from __future__ import annotations

import io

import numpy as np
import pytest

from noiseprop.cli import main
from noiseprop.utils import estimate
from noiseprop.utils.estimate import announce_long_run, estimate_seconds, work_counts

SIZES = (3, 4, 2)  # multiply-adds 3*4 + 4*2 = 20, neurons 6


def test_work_counts_by_hand():
    assert work_counts("simulate", SIZES, inputs=2, samples=10).tolist() == [1, 10 * 2 * 20, 10 * 2 * 6]
    # full covariance: N_k N_{k-1}^2 + N_k^2 N_{k-1} = 4*9 + 16*3 + 2*16 + 4*4 = 132; sum N_k^2 = 20
    assert work_counts("predict", SIZES, inputs=3).tolist() == [1, 3 * 132, 3 * 20]
    # adjoint: N_L * (sum over layers below the last of N_{k-1} N_k) = 2 * 12, plus the forward 20
    assert work_counts("predict-output", SIZES, inputs=5).tolist() == [1, 5 * (24 + 20), 5 * 6]
    assert work_counts("accuracy-cdf", SIZES, inputs=7).tolist() == [1, 7]
    with pytest.raises(ValueError, match="task must be one of"):
        work_counts("train", SIZES)


def test_estimate_combines_tasks_linearly():
    model = {"simulate": (1.0, 2.0, 3.0), "predict": (0.5, 1.0, 0.0), "predict-output": (0.0, 1.0, 1.0),
             "accuracy-cdf": (0.0, 0.25)}
    simulate = 1 + 2 * 400 + 3 * 120
    assert estimate_seconds("simulate", SIZES, 2, 10, model=model) == simulate
    assert estimate_seconds("verify", SIZES, 2, 10, model=model) == simulate + 0.5 + 2 * 132
    accuracy = simulate + 2 * (44 + 6) + 0.5
    assert estimate_seconds("accuracy", SIZES, 2, 10, repeats=3, model=model) == pytest.approx(3 * accuracy)
    with pytest.raises(ValueError, match="task must be one of"):
        estimate_seconds("everything", SIZES, model=model)


def test_method_picks_the_prediction_cost():
    """Method "mixture" costs "predict-mixture" wherever a prediction is made (the
    output-only adjoint is "linear"'s alone); "moments" is estimated as "linear"."""
    model = {"simulate": (1.0, 0.0, 0.0), "predict": (2.0, 0.0, 0.0), "predict-mixture": (0.0, 3.0, 0.0),
             "predict-output": (5.0, 0.0, 0.0), "accuracy-cdf": (7.0, 0.0)}
    assert estimate_seconds("predict", SIZES, 2, model=model, method="mixture") == 3 * 2 * 132
    assert estimate_seconds("predict", SIZES, 2, model=model, method="moments") == 2
    assert estimate_seconds("verify", SIZES, 2, 10, model=model, method="mixture") == 1 + 3 * 2 * 132
    assert estimate_seconds("accuracy", SIZES, 2, 10, model=model, method="mixture") == 1 + 3 * 2 * 132 + 7
    assert estimate_seconds("accuracy", SIZES, 2, 10, model=model, method="linear") == 1 + 5 + 7


def test_mixture_estimate_follows_its_fitted_model_and_exceeds_linear():
    sizes = (1024,) * 4 + (10,)
    mixture = estimate_seconds("predict", sizes, 3, method="mixture")
    assert mixture == pytest.approx(float(np.dot(estimate.COST_MODEL["predict-mixture"],
                                                 work_counts("predict", sizes, 3))))
    assert work_counts("predict-mixture", sizes, 3).tolist() == work_counts("predict", sizes, 3).tolist()
    for width in (100, 400, 2048):  # measured 30-140x (benchmarks/results/scaling_mixture.md)
        sizes = (width,) * 4 + (10,)
        assert estimate_seconds("predict", sizes, method="mixture") > 10 * estimate_seconds("predict", sizes)


def test_estimate_grows_with_samples_and_width():
    small = estimate_seconds("verify", (784, 100, 100, 10), samples=10_000)
    assert estimate_seconds("verify", (784, 100, 100, 10), samples=100_000) > 5 * small
    assert estimate_seconds("predict", (1024,) * 5) > 50 * estimate_seconds("predict", (256,) * 5)


def test_announce_only_long_runs():
    stream = io.StringIO()
    short = announce_long_run("verify", "verify", SIZES, samples=10, stream=stream)
    assert short < 10 and stream.getvalue() == ""
    long = announce_long_run("verify", "verify", (784, 100, 100, 10), samples=10**9, stream=stream)
    assert long > 10 and "noiseprop verify: this run will take about" in stream.getvalue()


class _Report:
    passed = True

    def table(self):
        return "stub table"


def test_cli_verify_prints_estimate_before_a_long_run(capsys, monkeypatch):
    calls = []

    def stub(*args, **kwargs):
        calls.append(kwargs["samples"])
        return _Report()

    monkeypatch.setattr("noiseprop.simulation.verification.verify", stub)
    assert main(["verify", "--reference", "--samples", "1000000000"]) == 0
    err = capsys.readouterr().err
    assert "noiseprop verify: this run will take about" in err and calls == [10**9]
    assert main(["verify", "--reference", "--samples", "100"]) == 0
    assert "will take about" not in capsys.readouterr().err


def test_cli_accuracy_prints_estimate_before_a_long_run(capsys, monkeypatch, tmp_path):
    class _Result:
        accuracy, ci, predicted, clean = 0.5, (0.4, 0.6), 0.5, 0.9
        covers_prediction = True

    monkeypatch.setattr("noiseprop.studies.accuracy.accuracy", lambda *a, **k: _Result())
    data = tmp_path / "d.npz"
    np.savez(data, X=np.zeros((50, 64)), y=np.zeros(50, dtype=int))
    assert main(["robustness", "accuracy", "--data", str(data), "--samples", "1000000",
                 "--factors", "1,2"]) == 0
    assert "noiseprop robustness accuracy: this run will take about" in capsys.readouterr().err


def test_cli_predict_prints_estimate_before_a_long_run(capsys, monkeypatch):
    """A wide network's full prediction takes minutes (140 s at width 4096): say so first,
    from the cost model of the method used (one propagation)."""
    assert main(["predict"]) == 0
    assert "will take about" not in capsys.readouterr().err
    monkeypatch.setitem(estimate.COST_MODEL, "predict-mixture", (20.0, 0.0, 0.0))
    assert main(["predict"]) == 0
    assert "noiseprop predict: this run will take about 20 s" in capsys.readouterr().err
    assert main(["predict", "--method", "linear"]) == 0
    assert "will take about" not in capsys.readouterr().err
    monkeypatch.setitem(estimate.COST_MODEL, "predict", (30.0, 0.0, 0.0))
    assert main(["predict", "--method", "linear"]) == 0
    assert "noiseprop predict: this run will take about 30 s" in capsys.readouterr().err


@pytest.mark.parametrize("argv, propagations", [
    (["predict"], 1),
    (["predict", "--noise", "1e300"], 3),  # failed: the check's noisy and noise-free runs tell whose fault
])
def test_cli_predict_propagates_the_mixture_once(capsys, monkeypatch, argv, propagations):
    import noiseprop.propagation as propagation

    calls = []
    original = propagation._mixture_layers

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(propagation, "_mixture_layers", counting)
    code = main(argv)
    err = capsys.readouterr().err
    assert len(calls) == propagations
    if propagations == 1:
        assert (code, err) == (0, "")
    else:
        assert code == 2 and err.count("\n") == 1 and "--noise" in err


def test_constants_are_positive():
    for task, coefficients in estimate.COST_MODEL.items():
        assert all(c >= 0 for c in coefficients) and any(c > 0 for c in coefficients), task
