"""The benchmark scripts check where they will write before they run (minutes of work were
lost to a missing --out folder or an existing result file without --force), with one shared
helper (benchmarks/_outputs.py).  The runs themselves are replaced by a stub that fails if
called: no benchmark is timed here."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


class Ran(Exception):
    """The benchmark started its run."""


def _script(name: str, monkeypatch):
    """The benchmark script as a module, its folder first on the path (as when it is run)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _refuse_to_run(*args, **kwargs):
    raise Ran


def _exit_status(module, argv) -> int:
    """main(argv)'s exit status, returned or raised (SystemExit, as a script's exit)."""
    try:
        return module.main(argv)
    except SystemExit as stop:
        return stop.code


# script, its first costly step (replaced by the stub), extra arguments, the result it writes
SCRIPTS = [
    ("scaling", "run_all", ["--fast"], "scaling.md"),
    ("reference_benchmark", "speed", ["--quick", "--speed-only"], "reference_benchmark_quick_speed.json"),
    ("closure_miss_diagnosis", "diagnose", [], "closure_miss_diagnosis.md"),
    ("recurrent_statistics_accuracy", "mackey_glass", [], "recurrent_statistics_accuracy.json"),
    ("recurrent_noise_training", "mackey_glass", [], "recurrent_noise_training.json"),
    ("recurrent_benchmark", "run", ["--fast"], "recurrent_benchmark_fast.json"),
    ("mitigation_accuracy", "load_digits", [], "mitigation_accuracy.md"),
    ("mitigation_budget_sweep", "sweep", [], "mitigation_budget_sweep.json"),
    ("linearisation_error", "measure", [], "linearisation_error.png"),
    ("closure_matrix", "measure", ["--fast"], "closure_matrix.md"),
]


@pytest.mark.parametrize("name, step, extra, result", SCRIPTS)
def test_an_existing_result_is_refused_before_the_run(tmp_path, monkeypatch, capsys, name, step, extra, result):
    """Exit 2 and one line naming the file and --force (the recurrent scripts ended in a
    FileExistsError traceback, the mitigation ones in argparse's usage text)."""
    module = _script(name, monkeypatch)
    monkeypatch.setattr(module, step, _refuse_to_run)
    (tmp_path / result).write_text("kept")
    assert _exit_status(module, ["--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert f"error: {tmp_path / result} exists" in err and "--force" in err, err
    assert (tmp_path / result).read_text() == "kept"
    with pytest.raises(Ran):  # with --force it runs
        module.main(["--out", str(tmp_path), "--force", *extra])


@pytest.mark.parametrize("name, step, extra", [(n, s, e) for n, s, e, _ in SCRIPTS])
def test_a_missing_out_folder_is_made_before_the_run(tmp_path, monkeypatch, name, step, extra):
    module = _script(name, monkeypatch)
    monkeypatch.setattr(module, step, _refuse_to_run)
    out = tmp_path / "new" / "results"
    with pytest.raises(Ran):
        module.main(["--out", str(out), *extra])
    assert out.is_dir()


@pytest.mark.parametrize("name, step, extra, result", SCRIPTS)
def test_a_linked_result_is_refused_in_one_line_even_with_force(tmp_path, monkeypatch, capsys, name, step, extra,
                                                                 result):
    """A symbolic link in place of a result is refused (check_target's UnsafeTarget, a ValueError)
    with exit 2 and a one-line error, not a traceback; the link and its target are left alone."""
    module = _script(name, monkeypatch)
    monkeypatch.setattr(module, step, _refuse_to_run)
    (tmp_path / "target").write_text("kept")
    (tmp_path / result).symlink_to(tmp_path / "target")
    assert _exit_status(module, ["--out", str(tmp_path), "--force", *extra]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and len(err.strip().splitlines()) == 1, err
    assert (tmp_path / result).is_symlink() and (tmp_path / "target").read_text() == "kept"


@pytest.mark.parametrize("name, steps, extra, results", [
    ("scaling", ["run_all"], ["--fast"], ["scaling.md", "scaling.json"]),
    ("reference_benchmark", ["speed"], ["--quick", "--speed-only"],
     ["reference_benchmark_quick_speed.md", "reference_benchmark_quick_speed.json"]),
])
def test_the_report_and_its_numbers_are_written_together(tmp_path, monkeypatch, name, steps, extra, results):
    """The .md was written before the .json was even encoded: numbers that do not encode left
    a report without its .json.  Now both are written as one unit, or neither."""
    module = _script(name, monkeypatch)
    for step in steps:
        monkeypatch.setattr(module, step, lambda *args, **kwargs: {"not JSON": object()})
    monkeypatch.setattr(module, "report", lambda results: "the report")
    with pytest.raises(TypeError):
        module.main(["--out", str(tmp_path), *extra])
    assert not any((tmp_path / result).exists() for result in results)


def test_exact_relu_covariance_of_the_miss_diagnosis(monkeypatch):
    """closure_miss_diagnosis.exact_relu_covariance (Price's theorem, Gauss-Legendre in the
    correlation) against the arc-cosine closed form at zero mean, sd_i sd_j (sqrt(1 - r^2) +
    r (pi - arccos r) - 1) / (2 pi), and against 10^6 Monte Carlo draws (seed 0) at non-zero
    means within 5 standard errors."""
    import numpy as np

    exact_relu_covariance = _script("closure_miss_diagnosis", monkeypatch).exact_relu_covariance
    sd, r = np.array([0.7, 1.3]), 0.6
    cov = np.array([[1.0, r], [r, 1.0]]) * np.outer(sd, sd)
    got = exact_relu_covariance(np.zeros((1, 2)), cov[None])[0]
    closed = np.outer(sd, sd) * (np.sqrt(1 - r * r) + r * (np.pi - np.arccos(r)) - 1) / (2 * np.pi)
    assert got[0, 1] == pytest.approx(closed[0, 1], rel=1e-10)
    mean = np.array([0.4, -0.5])
    z = np.random.default_rng(0).multivariate_normal(mean, cov, 1_000_000)
    f = np.maximum(z, 0.0)
    products = (f[:, 0] - f[:, 0].mean()) * (f[:, 1] - f[:, 1].mean())
    got = exact_relu_covariance(mean[None], cov[None])[0, 0, 1]
    assert abs(got - products.mean()) <= 5 * products.std() / np.sqrt(len(products))


def test_closure_matrix_reanalysis_keeps_an_existing_result(tmp_path, monkeypatch):
    """--from-json re-analyses stored rows: without --force it too must not
    overwrite the results in --out (it did, silently)."""
    module = _script("closure_matrix", monkeypatch)
    stored = BENCHMARKS / "results" / "closure_matrix.json"
    (tmp_path / "closure_matrix.json").write_text("kept")
    assert _exit_status(module, ["--from-json", str(stored), "--out", str(tmp_path)]) == 2
    assert (tmp_path / "closure_matrix.json").read_text() == "kept"
    assert not (tmp_path / "closure_matrix.md").exists()
