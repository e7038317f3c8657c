"""The benchmark scripts check where they will write before they run (minutes of work were
lost to a missing --out folder or an existing result file without --force).  The runs
themselves are replaced by a stub that fails if called: no benchmark is timed here."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


class Ran(Exception):
    """The benchmark started its run."""


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _refuse_to_run(*args, **kwargs):
    raise Ran


# script, its first costly step (replaced by the stub), extra arguments, the result it writes
SCRIPTS = [
    ("scaling", "run_all", ["--fast"], "scaling.md"),
    ("reference_benchmark", "speed", ["--quick", "--speed-only"], "reference_benchmark_quick_speed.md"),
    ("closure_miss_diagnosis", "diagnose", [], "closure_miss_diagnosis.md"),
    ("recurrent_statistics_accuracy", "mackey_glass", [], "recurrent_statistics_accuracy.json"),
    ("recurrent_noise_training", "mackey_glass", [], "recurrent_noise_training.json"),
]


@pytest.mark.parametrize("name, step, extra, result", SCRIPTS)
def test_an_existing_result_is_refused_before_the_run(tmp_path, monkeypatch, name, step, extra, result):
    module = _script(name)
    monkeypatch.setattr(module, step, _refuse_to_run)
    (tmp_path / result).write_text("kept")
    try:
        code = module.main(["--out", str(tmp_path), *extra])
    except FileExistsError:
        code = 2
    assert code == 2
    assert (tmp_path / result).read_text() == "kept"
    with pytest.raises(Ran):  # with --force it runs
        module.main(["--out", str(tmp_path), "--force", *extra])


@pytest.mark.parametrize("name, step, extra", [(n, s, e) for n, s, e, _ in SCRIPTS[:3]])
def test_a_missing_out_folder_is_made_before_the_run(tmp_path, monkeypatch, name, step, extra):
    module = _script(name)
    monkeypatch.setattr(module, step, _refuse_to_run)
    out = tmp_path / "new" / "results"
    with pytest.raises(Ran):
        module.main(["--out", str(out), *extra])
    assert out.is_dir()


@pytest.mark.parametrize("name, step, extra, result", SCRIPTS[:3])
def test_a_linked_result_is_refused_in_one_line_even_with_force(tmp_path, monkeypatch, capsys, name, step, extra,
                                                                 result):
    """A symbolic link in place of a result is refused (check_target's UnsafeTarget, a ValueError)
    with exit 2 and a one-line error, not a traceback; the link and its target are left alone."""
    module = _script(name)
    monkeypatch.setattr(module, step, _refuse_to_run)
    (tmp_path / "target").write_text("kept")
    (tmp_path / result).symlink_to(tmp_path / "target")
    assert module.main(["--out", str(tmp_path), "--force", *extra]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert (tmp_path / result).is_symlink() and (tmp_path / "target").read_text() == "kept"


def test_exact_relu_covariance_of_the_miss_diagnosis():
    """closure_miss_diagnosis.exact_relu_covariance (Price's theorem, Gauss-Legendre in the
    correlation) against the arc-cosine closed form at zero mean, sd_i sd_j (sqrt(1 - r^2) +
    r (pi - arccos r) - 1) / (2 pi), and against 10^6 Monte Carlo draws (seed 0) at non-zero
    means within 5 standard errors."""
    import numpy as np

    exact_relu_covariance = _script("closure_miss_diagnosis").exact_relu_covariance
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
