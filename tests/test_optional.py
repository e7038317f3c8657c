"""Missing optional dependencies: a clear message with the pip command, exit 2 in the CLI,
never a traceback.  Each CLI case runs in a subprocess where the packages cannot be
imported, as on a plain ``pip install .``: a finder at the head of ``sys.meta_path``
refuses them.  (Setting ``sys.modules[name] = None`` instead also blocks the import, but
scipy then mistakes the None for an imported torch and fails on its own.)"""
import subprocess
import sys
import textwrap

import pytest

from noiseprop.utils.optional import MissingDependency, available, missing_message, require

#: Prefix of a subprocess script that makes the packages ``modules`` unimportable.
BLOCK = textwrap.dedent("""
    import sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {modules!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
            return None

    sys.meta_path.insert(0, Blocker())
""")


def run_cli_without(modules, args, tmp_path):
    """Run ``noiseprop ARGS`` in a fresh interpreter where ``modules`` cannot be imported."""
    code = BLOCK.format(modules=list(modules)) + textwrap.dedent(f"""
        from noiseprop.cli import main
        sys.exit(main({list(args)!r}))
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)


def assert_clean_exit_2(result, extra):
    assert result.returncode == 2, result.stderr
    assert f"pip install 'noiseprop[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_require_names_package_and_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingDependency, match=r"importing ONNX models needs onnx.*noiseprop\[onnx\]"):
        require("onnx", "onnx", "importing ONNX models")
    assert issubclass(MissingDependency, ImportError)
    assert not available("onnx") and available("numpy")
    assert require("json", "x", "y").dumps([1]) == "[1]"


def test_missing_torch_for_pt_file(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"not read: torch is missing")
    assert_clean_exit_2(run_cli_without(["torch"], ["predict", "model.pt"], tmp_path), "train")


def test_missing_onnx_for_onnx_file(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not read: onnx is missing")
    assert_clean_exit_2(run_cli_without(["onnx"], ["predict", "model.onnx"], tmp_path), "onnx")


def test_missing_torch_for_noise_aware_training(tmp_path):
    args = ["robustness", "train-noisy", "--type", "AU", "--variance", "--train-levels", "0", "--eval-levels", "0.1",
            "--epochs", "1", "--samples", "2", "--quiet"]
    assert_clean_exit_2(run_cli_without(["torch"], args, tmp_path), "train")


def test_missing_torch_for_requested_figure_is_refused_before_work(tmp_path):
    result = run_cli_without(["torch"], ["figures", "out", "--fast", "--only", "F8"], tmp_path)
    assert_clean_exit_2(result, "train")
    assert not (tmp_path / "out").exists()


def test_missing_dask(monkeypatch):
    from noiseprop.studies.sweeps import dask_executor

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingDependency, match=r"noiseprop\[dask\]"):
        with dask_executor(n_workers=1):
            pass


def test_plain_install_paths_need_no_extra(tmp_path):
    """Digits, the default network and its analysis work with every extra unimportable."""
    code = BLOCK.format(modules=["torch", "onnx", "sklearn", "dask", "distributed"]) + textwrap.dedent("""
        import noiseprop
        from noiseprop.io.datasets import load_digits
        net = noiseprop.default_network()
        _, _, X, y = load_digits()
        print(float((net.forward(X)[-1].argmax(axis=1) == y).mean()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) == pytest.approx(0.98)


def test_figures_skip_what_needs_an_extra(monkeypatch, tmp_path):
    """Without torch, all figures but F8 and F13 are available; they are skipped with the pip command."""
    from noiseprop.figures import FIGURES, unavailable

    monkeypatch.setitem(sys.modules, "torch", None)
    missing = unavailable(FIGURES)
    assert list(missing) == ["F8", "F13"]
    assert all("pip install 'noiseprop[train]'" in missing[figure] for figure in missing)


def test_missing_message_text():
    assert missing_message("sklearn.datasets", "test-all", "comparing digits") == (
        "comparing digits needs sklearn, which is not installed: pip install 'noiseprop[test-all]'")


@pytest.mark.slow
def test_fast_figures_without_extras(tmp_path):
    """``noiseprop figures OUT --fast`` on a plain install: F8 and F13 skipped with the pip command."""
    result = run_cli_without(["torch", "onnx", "sklearn", "dask", "distributed"],
                             ["figures", "out", "--fast", "--quiet"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "F8: skipped" in result.stderr and "pip install 'noiseprop[train]'" in result.stderr
    assert "F13: skipped" in result.stderr
    written = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    # every figure but F8 and F13 (torch): F1-F7, the mitigation figures F9, F10, the recurrent F11, F12
    assert sorted(name.split("_")[0] for name in written) == sorted(
        ["F1", "F2", "F3", "F4", "F5", "F6", "F7", "F9", "F10", "F11", "F12"])
