"""Hardening (issue 14): untrusted model files, memory guards, safe writes, exit codes.

Each test reproduces one defect of the issue (it failed before the fix).
The sweep defects are in test_sweep_hardening.py.
"""
import io
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from noiseprop import Network, Noise, predict
from noiseprop.cli import main, protect_negative_numbers
from noiseprop.io.arrays import read_npy, read_npz
from noiseprop.utils.files import UnsafeTarget, atomic_write, recover_unit, write_together
from noiseprop.utils.resources import (
    ResourceLimit,
    available_memory,
    check_predict,
    memory_limit,
    parse_size,
    predict_bytes,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--symmetric", "2,3,0.3,0,sigmoid", "--input-value", "0.5"]


def run(capsys, *argv):
    """main(argv): (exit code, stdout, stderr); argparse usage errors count as their SystemExit code."""
    try:
        code = main(list(argv))
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *names):
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for name in names:
        assert name in err, err


def run_python(code: str, *args, env=None, timeout=120):
    """Run ``code`` in a fresh interpreter with this checkout first on the path."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=environment,
                          capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------ 1. safe loading


class Marker:
    """Unpickling creates the file ``path`` (stands in for any code an attacker could run)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def test_evil_pickle_does_not_run_and_exits_2(tmp_path, capsys, torch):
    marker = tmp_path / "MARKER"
    seq = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Sigmoid())
    seq.evil = Marker(marker)
    torch.save(seq, tmp_path / "evil.pt")
    code, out, err = run(capsys, "predict", str(tmp_path / "evil.pt"))
    assert not marker.exists()
    assert_one_line_error(code, err, "evil.pt", "refusing to load", "io.open", "--trust-pickle", "ONNX")
    assert out == ""


def test_trust_pickle_is_the_explicit_opt_in(tmp_path, capsys, torch):
    from noiseprop.io.networks import load_model

    marker = tmp_path / "MARKER"
    seq = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Sigmoid())
    seq.evil = Marker(marker)
    torch.save(seq, tmp_path / "evil.pt")
    net = load_model(tmp_path / "evil.pt", trust=True)
    assert marker.exists() and net.sizes == (3, 2)


def test_supported_sequential_loads_safely(tmp_path, torch):
    from noiseprop.io.networks import from_torch, load_model

    seq = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Dropout(0.1),
                              torch.nn.Linear(5, 2), torch.nn.Identity())
    torch.save(seq, tmp_path / "ok.pt")
    assert load_model(tmp_path / "ok.pt") == from_torch(seq)


@pytest.mark.parametrize("make, message", [
    (lambda nn: nn.Sequential(nn.Linear(3, 2)).state_dict(), "holds a state_dict"),
    (lambda nn: nn.Sequential(nn.Linear(3, 2), nn.GELU()), "torch.nn.modules.activation.GELU"),
])
def test_unsupported_torch_files_get_advice(tmp_path, torch, make, message):
    from noiseprop.io.networks import load_model

    torch.save(make(torch.nn), tmp_path / "m.pt")
    with pytest.raises(ValueError, match=message) as info:
        load_model(tmp_path / "m.pt")
    assert "load_state_dict" in str(info.value) and "ONNX" in str(info.value)


# ------------------------------------------------------------ 2. safe writing


def write_new(handle):
    handle.write(b"new")


def special_targets(tmp_path):
    """(path, description) of a symlink, a FIFO and (as root) a character device."""
    target = tmp_path / "target.png"
    target.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    targets = [(link, "symbolic link"), (fifo, "FIFO")]
    device = tmp_path / "null.png"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null; needs root
        targets.append((device, "character device"))
    except (PermissionError, OSError):
        pass
    return target, targets


def snapshot(path):
    info = os.lstat(path)
    return stat.S_IFMT(info.st_mode), info.st_ino, os.readlink(path) if stat.S_ISLNK(info.st_mode) else None


def test_atomic_write_refuses_special_files_even_with_overwrite(tmp_path):
    target, targets = special_targets(tmp_path)
    for path, kind in targets:
        before = snapshot(path)
        with pytest.raises(UnsafeTarget, match=kind):
            atomic_write(path, write_new, overwrite=True)
        assert snapshot(path) == before
    assert target.read_bytes() == b"old"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_cli_force_leaves_special_files_as_they_were(tmp_path, capsys):
    _, targets = special_targets(tmp_path)
    for path, kind in targets:
        before = snapshot(path)
        code, _, err = run(capsys, "verify", *SMALL, "--samples", "100", "--plot", str(path), "--force")
        assert_one_line_error(code, err, "--plot", kind)
        assert snapshot(path) == before


@pytest.mark.parametrize("signum, error", [(signal.SIGTERM, SystemExit), (signal.SIGINT, KeyboardInterrupt)])
def test_temporary_file_is_removed_on_signals(tmp_path, signum, error):
    def write(handle):
        handle.write(b"partial")
        os.kill(os.getpid(), signum)  # delivered to this (the main) thread while writing
        time.sleep(1)

    with pytest.raises(error):
        atomic_write(tmp_path / "out.png", write)
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the default handler is back


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.png.{dead.stdout.strip()}.abc123.tmp"
    stale.write_bytes(b"left by kill -9")
    atomic_write(tmp_path / "out.png", write_new)
    assert sorted(os.listdir(tmp_path)) == ["out.png"]


def test_a_unit_killed_between_its_renames_is_removed_and_can_be_rewritten(tmp_path):
    # the child dies (like kill -9: no clean-up) right after the PNG is renamed into place
    code = """
        import os, sys
        from noiseprop.utils import files
        real = os.replace
        def replace_then_die(src, dst):
            real(src, dst)
            os._exit(9)
        os.replace = replace_then_die
        files.write_together([(sys.argv[1] + "/F.png", lambda h: h.write(b"png")),
                              (sys.argv[1] + "/F.json", lambda h: h.write(b"{}"))])
    """
    assert run_python(code, tmp_path).returncode == 9
    left = sorted(os.listdir(tmp_path))  # half a unit, and the JSON's temporary (no clean-up after kill -9)
    assert left[1:] == [".F.unit", "F.png"] and left[0].startswith(".F.json.") and left[0].endswith(".tmp")
    paths = [tmp_path / "F.png", tmp_path / "F.json"]
    # without overwrite: the next write removes the half unit first (it wrote those bytes)
    write_together([(paths[0], lambda h: h.write(b"png2")), (paths[1], lambda h: h.write(b"{}"))])
    assert sorted(os.listdir(tmp_path)) == ["F.json", "F.png"]
    assert paths[0].read_bytes() == b"png2"


def test_recovery_leaves_files_it_did_not_write(tmp_path):
    (tmp_path / "F.png").write_bytes(b"the user's own")
    (tmp_path / ".F.unit").write_text('{"files": ["F.png", "F.json"], "sha256": ["00", "00"]}')
    assert recover_unit([tmp_path / "F.png", tmp_path / "F.json"]) == []
    assert sorted(os.listdir(tmp_path)) == ["F.png"]


def test_make_figures_removes_a_half_written_figure_before_the_existing_check(tmp_path, monkeypatch):
    import noiseprop.figures as figures
    from noiseprop.figures._common import FigureOutput, output_paths

    module = figures.FIGURES["F1"]
    png, data = output_paths(tmp_path, module.STEM)
    png.write_bytes(b"half")
    import hashlib
    (tmp_path / f".{module.STEM}.unit").write_text(
        '{"files": ["%s", "%s"], "sha256": ["%s", "x"]}' % (png.name, data.name, hashlib.sha256(b"half").hexdigest()))
    monkeypatch.setattr(module, "make", lambda outdir, fast, overwrite: FigureOutput("F1", png, data, {}))
    assert [o.figure_id for o in figures.make_figures(tmp_path, only="F1")] == ["F1"]
    assert not png.exists()  # the stub wrote nothing; the half unit is gone, no --force needed


@pytest.mark.parametrize("argv, name", [
    (["verify", *SMALL, "--plot", ""], "--plot"),
    (["figures", ""], "OUTDIR"),
    (["robustness", "accuracy", "--plot", ""], "--plot"),
])
def test_empty_output_paths_are_refused(capsys, argv, name):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, name, "empty")


# ------------------------------------------------------------ 3. memory and size guards


def wide_npz(path, width=20000):
    np.savez_compressed(path, W1=np.zeros((width, 1)))
    return path


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak memory from Linux's /proc")
def test_small_wide_file_is_refused_before_its_memory_is_allocated(tmp_path):
    path = wide_npz(tmp_path / "wide.npz")
    assert path.stat().st_size < 1000
    env = {}
    if available_memory() * 0.5 > predict_bytes([1, 20000], 1)[0]:  # a machine so big the default allows it
        env["NOISEPROP_MAX_MEMORY"] = "4G"
    # The peak resident memory is read from /proc (VmHWM, this process's own address space):
    # getrusage's ru_maxrss survives exec on Linux, so a child started by a large pytest
    # process would report the parent's peak.
    code = """
        import re, sys
        from noiseprop.cli import main
        status = main(["predict", sys.argv[1]])
        with open("/proc/self/status") as status_file:
            peak_kib = re.search(r"VmHWM:\\s*(\\d+) kB", status_file.read()).group(1)
        print(peak_kib)
        sys.exit(status)
    """
    result = run_python(code, path, env=env)
    max_rss_kib = float(result.stdout)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "layer 1 with 20000 neurons" in result.stderr and "GiB" in result.stderr
    assert max_rss_kib < 500 * 1024  # the 20000 x 20000 covariance alone is 3.2 GB


def test_predict_guard_names_the_layer_and_the_estimate():
    net = Network.from_arrays([np.ones((2000, 3)), np.ones((2, 2000))], [np.zeros(2000), np.zeros(2)])
    from noiseprop import predict

    with memory_limit("50M"), pytest.raises(ResourceLimit, match=r"layer 1 with 2000 neurons.*needs about 1\d\d MiB"):
        predict(net, Noise(AU=1e-3), np.ones(3), method="linear")
    with memory_limit("300M"), pytest.raises(ResourceLimit, match=r"needs about [5-9]\d\d MiB"):
        predict(net, Noise(AU=1e-3), np.ones(3), method="mixture")  # 16 components of 2000 neurons
    with memory_limit("50M"), pytest.raises(ResourceLimit, match="batch of 8 inputs"):
        check_predict(net.sizes, 8)
    with memory_limit("1G"):
        predict(net, Noise(AU=1e-3), np.ones(3), method="linear")  # under the limit: computed


def test_header_that_lies_about_its_size_is_refused_before_allocating(tmp_path, capsys):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)})
    with zipfile.ZipFile(tmp_path / "liar.npz", "w") as archive:
        archive.writestr("W1.npy", header.getvalue() + b"\0" * 64)
    code, _, err = run(capsys, "predict", str(tmp_path / "liar.npz"))
    assert_one_line_error(code, err, "liar.npz", "(100000, 100000)", "74.5 GiB", "truncated or corrupt")
    (tmp_path / "liar.npy").write_bytes(header.getvalue() + b"\0" * 24)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_npy(tmp_path / "liar.npy")


def test_decompression_bomb_is_refused_before_inflating(tmp_path):
    path = tmp_path / "bomb.npz"
    header = io.BytesIO()
    count = 100 * 1024**2 // 8
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (count,)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("W1.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            block = bytes(1 << 22)
            for _ in range(25):
                member.write(block)
    assert path.stat().st_size < 1024**2
    with pytest.raises(ValueError, match="decompression bomb"):
        read_npz(path)
    np.savez(tmp_path / "plain.npz", W1=np.zeros(200_000))  # a genuine archive over a low limit
    with pytest.raises(ResourceLimit, match="member 'W1.npy' needs about 1.53 MiB"):
        read_npz(tmp_path / "plain.npz", max_memory="1M")


def test_memory_limit_sources(monkeypatch):
    from noiseprop.utils.resources import current_memory_limit

    monkeypatch.setenv("NOISEPROP_MAX_MEMORY", "3G")
    assert current_memory_limit() == (3 * 1024**3, "NOISEPROP_MAX_MEMORY")
    with memory_limit("512M"):
        assert current_memory_limit()[0] == 512 * 1024**2
    assert parse_size("1.5GiB") == 3 * 1024**3 // 2 and parse_size("100%") == pytest.approx(available_memory(), rel=0.2)
    for bad in ("lots", "0", "-1G", "150%"):
        with pytest.raises(ValueError, match="memory limit"):
            parse_size(bad)


@pytest.mark.parametrize("argv, names", [
    (["predict", "--symmetric", "2,100000,0.1,0,linear"], ["--symmetric", "width 100000", "GiB"]),
    (["predict", "--symmetric", "99999999999999999999,3,0.1,0,linear"], ["--symmetric", "depth 99999999999999999999"]),
    (["predict", *SMALL, "--max-memory", "100"], ["needs about 192 B", "limit 100 B"]),
    (["predict", *SMALL, "--max-memory", "lots"], ["memory limit", "'lots'"]),
    (["verify", *SMALL, "--samples", "99999999999999999999999"], ["samples", "years", "--max-time"]),
    (["robustness", "accuracy", "--factors", "0.1:1:100000000000"], ["--factors", "100000000000 levels"]),
    (["robustness", "accuracy", "--samples", "1e9", "--factors", "1,2,3"], ["--samples", "would take"]),
])
def test_size_options_are_bounded(capsys, argv, names):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *names)


def test_monte_carlo_and_grid_guards():
    from noiseprop.simulation.montecarlo import sample_outputs, simulate
    from noiseprop.studies.sweeps import grid_points

    net = Network.symmetric(2, 3, 0.3)
    with pytest.raises(ResourceLimit, match="sampled outputs"):
        sample_outputs(net, Noise(AU=1e-3), np.ones(3), samples=10**12)
    with pytest.raises(ResourceLimit, match="Monte Carlo realisations"):
        simulate(net, Noise(AU=1e-3), np.ones(3), samples=10**20)
    with pytest.raises(ResourceLimit, match="a grid of 10000000000 points"):
        grid_points({"a": range(10**5), "b": range(10**5)})


def test_training_size_is_bounded(torch):
    from noiseprop.studies.training import train_mlp

    X, y = np.random.default_rng(0).random((20, 4)), np.arange(20) % 2
    with pytest.raises(ResourceLimit, match="training a 4-99999999999-2 network"):
        train_mlp(X, y, X, y, hidden=(99999999999,))


# ------------------------------------------------------------ 4. exit codes that never lie


def bad_files(folder: Path) -> dict:
    """Broken inputs of the issue, by name."""
    good = folder / "good_c.npz"
    np.savez_compressed(good, W1=np.random.default_rng(0).random((5, 3)))
    data = bytearray(good.read_bytes())
    start = data.find(b"W1.npy") + 6 + 40  # inside the deflate stream
    data[start:start + 30] = b"\x00" * 30
    files = {
        "empty.npz": b"",
        "corrupt.npz": bytes(data),
        "trunc.npz": good.read_bytes()[:50],
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    np.save(folder / "empty.npy", np.zeros(0))
    np.savez(folder / "w01.npz", W01=np.ones((2, 2)))
    np.savez(folder / "no_x.npz", y=np.zeros(3))
    return {name: folder / name for name in [*files, "empty.npy", "w01.npz", "no_x.npz"]}


@pytest.fixture
def broken(tmp_path):
    return bad_files(tmp_path)


@pytest.mark.parametrize("argv, names", [
    (["predict", "{empty.npz}"], ["empty.npz", "not a readable .npz"]),
    (["predict", "{corrupt.npz}"], ["corrupt.npz", "not a readable .npz"]),
    (["predict", "{trunc.npz}"], ["trunc.npz", "BadZipFile"]),
    (["predict", "--input", "{empty.npy}"], ["--input", "empty.npy", "empty"]),
    (["predict", "{w01.npz}"], ["w01.npz", "W01", "W1..WL"]),
    (["robustness", "accuracy", "--data", "{trunc.npz}"], ["--data", "trunc.npz"]),
    (["robustness", "accuracy", "--data", "{empty.npz}"], ["--data", "empty.npz"]),
    (["robustness", "accuracy", "--data", "{no_x.npz}"], ["--data", "no_x.npz", "lacks the array(s) X"]),
    (["robustness", "accuracy", "--factors", ",", "--plot", "{out.png}"], ["--factors", "no values"]),
    (["predict", "--symmetric", "99999999999999999999,3,0.1,0,linear"], ["--symmetric"]),
    (["verify", "--seed", "-3"], ["--seed", "non-negative"]),
    (["predict", "--noise", "1e300", "--method", "linear"], ["--noise", "overflows", "layer"]),
    (["predict", "--noise", "1e300"], ["--noise", "layer"]),
    (["predict", "--method", "moments", "--noise", "1e300"], ["--noise", "layer"]),
    (["predict", "--noise", "-1e-3"], ["--noise", "AU must be a finite variance >= 0"]),
    (["mitigate", "--MU", "1e160"], ["--MU", "overflows", "layer 2"]),
    (["mitigate", "--input-value", "1e308"], ["layer 1", "mean signal", "overflows"]),
    (["recurrent", "predict", "--esn", "20,0.9", "--MU", "1e160"], ["--MU", "overflows", "at step 2"]),
    (["recurrent", "verify", "--esn", "20,0.9", "--samples", "100", "--MU", "1e160"], ["--MU", "at step 2"]),
    (["recurrent", "predict", "--esn", "20,0.9", "--output-AU", "1e308", "--AU", "1e308"],
     ["--AU, --output-AU", "at step 1"]),
    (["predict", "missing.pt"], ["missing.pt", "does not exist"]),
])
def test_bad_input_is_exit_2_with_one_line(capsys, broken, tmp_path, argv, names):
    names_to_paths = {**{f"{{{k}}}": str(v) for k, v in broken.items()}, "{out.png}": str(tmp_path / "out.png")}
    argv = [names_to_paths.get(a, a) for a in argv]
    code, out, err = run(capsys, *argv)
    assert_one_line_error(code, err, *names)
    assert out == ""


@pytest.mark.parametrize("method", ["linear", "mixture"])
def test_noise_scale_check_runs_one_prediction_unless_it_fails(monkeypatch, method):
    """The noise-free prediction (which tells whose fault a failure is) runs
    only when the noisy one fails or overflows; neither computes an error estimate."""
    import argparse

    import noiseprop.propagation as propagation
    from noiseprop.cli.common import CLIError, check_noise_scale

    calls = []

    def counting(*args, **kwargs):
        calls.append(kwargs.get("error_estimate"))
        return predict(*args, **kwargs)

    monkeypatch.setattr(propagation, "predict", counting)
    args = argparse.Namespace(AU=None, AC=None, MU=None, MC=None, noise="1e-3")
    net = Network.symmetric(3, 4, 0.25, 0.0, "linear")
    check_noise_scale(args, net, np.ones(4), [Noise(AU=1e-3)] * 3, method)
    assert calls == [False]
    with pytest.raises(CLIError, match="--noise: .*layer"):
        check_noise_scale(args, net, np.ones(4), [Noise(AU=1e300, MU=1e300)] * 3, method)
    assert calls == [False, False, False]
    broken = Network.symmetric(3, 4, 1e300, 0.0, "linear")  # the noise-free network overflows
    check_noise_scale(args, broken, np.ones(4), [Noise(AU=1e300, MU=1e300)] * 3, method)
    assert calls == [False] * 5


def test_negative_numbers_in_exponent_form_parse(capsys):
    assert protect_negative_numbers(["--noise", "-1e-3", "--x", "-.5e2,1", "-1e-3"]) == [
        "--noise=-1e-3", "--x=-.5e2,1", "-1e-3"]
    code, out, _ = run(capsys, "predict", "--symmetric", "2,3,0.3,0,linear", "--input-value", "-1e-3", "--json")
    assert code == 0 and '"snr_db"' in out


def test_missing_dependency_resource_limit_interrupt_and_bug_codes(capsys, monkeypatch):
    from noiseprop.cli import predict as predict_command
    from noiseprop.utils.optional import MissingDependency

    outcomes = {
        MissingDependency("reading PyTorch files needs torch, which is not installed: pip install 'noiseprop[train]'"): 2,
        ResourceLimit("the prediction needs about 9 GiB"): 2,
        MemoryError("Unable to allocate 7.28 TiB"): 2,
        KeyboardInterrupt(): 130,
        RuntimeError("a bug"): 3,
    }
    for error, expected in outcomes.items():
        def fail(args, error=error):
            raise error

        monkeypatch.setattr(predict_command, "run", fail)
        code, out, err = run(capsys, "predict")
        assert code == expected, (error, err)
        if expected != 3:
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        else:
            assert "Traceback" in err and "internal error" in err


@pytest.mark.slow
def test_ctrl_c_is_exit_130_in_one_line_without_traceback():
    process = subprocess.Popen(
        [sys.executable, "-m", "noiseprop", "verify", "--samples", "300000000", "--max-time", "30d"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A shell without job control starts background jobs with SIGINT ignored, and Python
        # then installs no KeyboardInterrupt handler: give the child the default disposition.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(6)  # imports and compilation done: inside the simulation
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    # the long run's time estimate may come first; then exactly one line for the interruption
    lines = [line for line in err.strip().splitlines() if line and "this run will take about" not in line]
    assert "Traceback" not in err and lines == ["noiseprop verify: interrupted (Ctrl-C); temporary files removed"]


FRAGMENTS = [
    [], ["--noise", "{n}"], ["--AU", "{n}"], ["--MC", "{n},{n}"], ["--input-value", "{n}"],
    ["--symmetric", "{i},{i},{n},{n},sigmoid"], ["--symmetric", "{i},{i},{n},0,{s}"], ["--placement", "{s}"],
    ["--method", "moments"], ["--max-memory", "{s}"], ["--input", "{f}"], ["{f}"], ["--json"],
    ["--target-snr", "{n}"], ["--reference"],
]
NUMBERS = ["0", "1e-3", "-1e-3", "1e300", "-1e300", "nan", "inf", "", ",", "1e-3,", "99999999999999999999", "x", "-0"]
INTEGERS = ["0", "1", "3", "-2", "99999999999999999999", "1e2", "x", ""]
STRINGS = ["", "post", "relu", "linear(slope=2)", "1K", "50%", "-1", "softplus"]


@pytest.mark.slow
def test_fuzzed_command_lines_never_trace_back_and_exit_0_1_or_2(capsys, broken):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    files = [str(p) for p in broken.values()] + ["missing.npz", "", "x.h5"]
    fragment = st.tuples(st.sampled_from(FRAGMENTS), st.sampled_from(NUMBERS), st.sampled_from(INTEGERS),
                         st.sampled_from(STRINGS), st.sampled_from(files))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.sampled_from(["predict", "check"]), st.lists(fragment, max_size=3))
    def check(command, parts):
        argv = [command]
        for template, n, i, s, f in parts:
            argv += [t.format(n=n, i=i, s=s, f=f) for t in template]
        if command == "predict" and "--target-snr" in argv:
            return
        with memory_limit("2G"):
            code, _, err = run(capsys, *argv)
        assert "Traceback" not in err, (argv, err)
        assert code in (0, 1, 2), (argv, code, err)
        if code == 2:
            assert len(err.strip().splitlines()) == 1, (argv, err)

    check()


# ------------------------------------------------------------ 9. the rest


@pytest.mark.parametrize("make", [
    lambda: Noise(AU=np.complex64(1e-3 + 1j)),
    lambda: Noise(AU=np.complex128(1e-3)),
    lambda: Network.from_arrays([np.ones((2, 2))], [np.array([1 + 1j, 0])]),
    lambda: Network.symmetric(2, 2, np.complex64(1)),
    lambda: __import__("noiseprop.utils.validation", fromlist=["x"]).as_labelled_data(np.ones((2, 2)) * 1j, [0, 1]),
    lambda: __import__("noiseprop.utils.validation", fromlist=["x"]).as_vector("levels", [1e-3 + 1j]),
])
def test_complex_input_is_refused_not_truncated(make):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ComplexWarning would mean the imaginary part was dropped
        with pytest.raises(ValueError, match="number|complex"):
            make()


def test_infinite_sample_counts_are_named_errors():
    from noiseprop.simulation.montecarlo import sample_outputs, simulate
    from noiseprop.studies.accuracy import accuracy

    net = Network.symmetric(2, 3, 0.3)
    for call in (lambda: simulate(net, Noise(AU=1e-3), np.ones(3), samples=float("inf")),
                 lambda: sample_outputs(net, Noise(AU=1e-3), np.ones(3), samples=float("inf")),
                 lambda: accuracy(net, Noise(AU=1e-3), np.ones((2, 3)), [0, 1], samples=float("inf"))):
        with pytest.raises(ValueError, match="samples must be a positive integer"):
            call()


def test_blas_thread_limit_survives_overlapping_simulations():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from noiseprop.simulation.montecarlo import _blas_controller, _single_threaded_blas

    if _blas_controller() is None or not _blas_controller().select(user_api="blas").lib_controllers:
        pytest.skip("no BLAS thread pool found")
    blas = lambda: [c.num_threads for c in threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers]
    before = blas()
    if max(before) < 2:
        pytest.skip("BLAS runs on one thread already: nothing to restore")
    # Two simulations overlapping as when run from two threads: the first to start is the
    # first to finish.  (The enters and exits are made from this thread because OpenBLAS
    # ignores thread counts set from other threads once the main thread has set one.)
    first, second = _single_threaded_blas(), _single_threaded_blas()
    first.__enter__()
    second.__enter__()
    assert max(blas()) == 1
    first.__exit__(None, None, None)
    assert max(blas()) == 1  # the second simulation still runs: still one thread
    second.__exit__(None, None, None)
    assert blas() == before  # the last to finish restores what was there before


def test_layer_by_layer_propagation_is_guarded_like_predict():
    """The mitigation planner steps through a network with propagate_state: a 20000-wide layer
    must be refused before its covariance is allocated (it ran to 9 GB RSS), by the planner
    and by ``noiseprop mitigate``, with the layer named."""
    from noiseprop.mitigation import plan
    from noiseprop.propagation import initial_state, propagate_state

    wide = Network.from_arrays([np.zeros((20000, 1))])
    x = np.ones((1, 1))
    for method in ("linear", "moments"):
        with memory_limit("1G"), pytest.raises(ResourceLimit, match="layer of 20000 neurons"):
            propagate_state(initial_state(x, method), wide.weights[0], wide.biases[0], wide.activations[0],
                            Noise(AU=1e-3), method)
    with memory_limit("1G"), pytest.raises(ResourceLimit, match="20000 neurons"):
        plan(wide, Noise(AU=1e-3), np.ones(1), 10)
    small = Network.symmetric(2, 3, 0.3)
    with memory_limit("1G"):  # under the limit: computed
        state = propagate_state(initial_state(np.ones((1, 3)), "linear"), small.weights[0], small.biases[0],
                                small.activations[0], Noise(AU=1e-3), "linear")
    assert state[1].shape == (1, 3, 3)


def test_mitigate_refuses_a_wide_file_before_any_layer_is_propagated(tmp_path, capsys, monkeypatch):
    """The refusal comes before the work: no layer step (whose N x N covariance ran to 9 GB) is started."""
    from noiseprop import propagation

    def no_layer_step(*args, **kwargs):
        raise AssertionError("a layer was propagated before the size was checked")

    monkeypatch.setattr(propagation, "propagate_layer", no_layer_step)
    np.savez_compressed(tmp_path / "wide.npz", W1=np.zeros((20000, 1)))
    code, out, err = run(capsys, "mitigate", str(tmp_path / "wide.npz"), "--max-memory", "1G")
    assert_one_line_error(code, err, "20000 neurons", "GiB", "--max-memory")


@pytest.mark.parametrize("argv, names", [
    (["recurrent", "predict", "--esn", "100000,0.9"], ["--esn", "100000 neurons", "GiB"]),
    (["recurrent", "predict", "--esn", "50,0.9", "--steps", "99999999999"], ["--steps", "99999999999"]),
    (["recurrent", "predict", "--esn", "50,0.9", "--steps", "99999999999999999999999"], ["--steps"]),
    (["recurrent", "verify", "--esn", "50,0.9", "--samples", "99999999999999"], ["samples", "--max-time"]),
    (["recurrent", "predict", "--esn", "3000,0.9", "--max-memory", "10M"], ["--esn", "limit 10 MiB"]),
])
def test_recurrent_sizes_are_bounded(capsys, argv, names):
    """The recurrent commands allocated (or ran) whatever was asked: a 100000-neuron reservoir
    ended in numpy's MemoryError, 1e23 steps in 'Maximum allowed dimension exceeded' (no option
    named), and 1e14 samples ran for ever."""
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *names)


def test_snr_time_is_size_guarded_over_its_whole_run():
    """time_to_snr_below checked only its warm-up: 10 warm-up steps passed the time limit while
    up to max_steps = 100000 self-closed steps followed.  Its memory does not grow with the steps
    (only the current state is kept), so a tight memory limit does not refuse a long run."""
    from noiseprop.recurrent import echo_state_network, time_to_snr_below
    from noiseprop.utils.resources import time_limit

    net = echo_state_network(50, 1, 1, 0.9, seed=0, feedback=True)
    u, loud = np.full((10, 1), 0.5), Noise(AU=10.0)  # the SNR is below 1 at the first self-closed step
    with time_limit("1s"), pytest.raises(ResourceLimit, match="self-closed SNR time .* over 100010 steps"):
        time_to_snr_below(net, loud, u)  # 2 x 100010 x 50^3 operations: 12.5 s at the assumed rate
    with time_limit("1s"):
        assert time_to_snr_below(net, loud, u, max_steps=100) == 1
    with memory_limit("5M"):  # the per-step statistics of 100010 steps would be 245 MB
        assert time_to_snr_below(net, loud, u) == 1


@pytest.mark.parametrize("max_steps", [0, -1, 2.5])
def test_snr_time_names_max_steps(max_steps):
    """A bad max_steps was reported as 'generate must be ...' (or, for 0, answered None)."""
    from noiseprop.recurrent import echo_state_network, time_to_snr_below

    net = echo_state_network(10, 1, 1, 0.9, seed=0, feedback=True)
    with pytest.raises(ValueError, match="max_steps must be a positive integer"):
        time_to_snr_below(net, Noise(AU=1e-3), [[0.5]], max_steps=max_steps)


def test_echo_state_network_is_size_guarded_before_allocating():
    """The --esn guard lived in the CLI only: echo_state_network itself refuses a reservoir whose
    N x N weights (and temporaries) exceed the memory limit, or whose eigenvalues the time limit,
    naming n; its estimate bounds the peak measured by tracemalloc (a band reservoir holds the most)."""
    import tracemalloc

    from noiseprop.recurrent import echo_state_network
    from noiseprop.recurrent.model import ESN_ARRAYS
    from noiseprop.utils.resources import time_limit

    with memory_limit("10M"), pytest.raises(ResourceLimit, match=r"n=3000: a random reservoir of 3000 neurons"
                                                                 r".* limit 10 MiB"):
        echo_state_network(3000)
    with time_limit("1s"), pytest.raises(ResourceLimit, match=r"n=2000: .*eigenvalues.*--max-time"):
        echo_state_network(2000)  # 10 x 2000^3 operations: 40 s at the assumed rate
    n = 400
    echo_state_network(8, bandwidth=2)  # first-call imports and caches out of the measurement
    tracemalloc.start()
    try:
        echo_state_network(n, density=0.5, bandwidth=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= ESN_ARRAYS * 8 * n * n


@pytest.mark.parametrize("action", ["predict", "stationary", "check", "verify"])
def test_recurrent_network_file_is_size_guarded(tmp_path, capsys, action):
    """A reservoir read from a file went into the N x N recursion unguarded (only --esn and
    --steps were checked): now it is refused under --max-memory, naming its size."""
    from noiseprop.recurrent import echo_state_network, save_recurrent

    path = save_recurrent(tmp_path / "esn.npz", echo_state_network(400, 1, 1, 0.9, seed=0))
    samples = ["--samples", "100"] if action == "verify" else []
    code, _, err = run(capsys, "recurrent", action, str(path), "--steps", "5", *samples, "--max-memory", "5M")
    assert_one_line_error(code, err, "reservoir of 400 neurons", "limit 5 MiB", "--max-memory")
    code, _, err = run(capsys, "recurrent", "predict", str(path), "--steps", "5", "--max-memory", "50M")
    assert code == 0, err


def test_recurrent_analytic_functions_are_size_guarded():
    """predict, stationary and time_to_snr_below refuse a reservoir over the memory limit, and
    predict a run over the time limit, before the first N x N array (API, as predict is)."""
    from noiseprop.recurrent import echo_state_network, predict, stationary, time_to_snr_below
    from noiseprop.utils.resources import time_limit

    net = echo_state_network(300, 1, 1, 0.9, seed=0, feedback=True)
    u, noise = np.full((3, 1), 0.5), Noise(AU=1e-3)
    with memory_limit("2M"):
        with pytest.raises(ResourceLimit, match="recurrent prediction of a reservoir of 300 neurons over 3 steps"):
            predict(net, noise, u)
        with pytest.raises(ResourceLimit, match="stationary state of a reservoir of 300 neurons"):
            stationary(net, noise)
        with pytest.raises(ResourceLimit, match="self-closed SNR time"):
            time_to_snr_below(net, noise, u)
    with time_limit("1s"), pytest.raises(ResourceLimit, match="over 100000 steps.*--max-time"):
        predict(net, noise, np.full((100_000, 1), 0.5))
    with memory_limit("50M"):
        assert predict(net, noise, u).var.shape == (4, 300)
    # the covariance history is counted: 2001 x 300 x 300 values are 1.3 GiB
    with memory_limit("1G"), pytest.raises(ResourceLimit, match="over 2000 steps"):
        predict(net, noise, np.full((2000, 1), 0.5), full_covariance=True)


@pytest.mark.parametrize("argv, expected, parameter", [
    (["robustness", "train-noisy", "--type", "AU", "--variance", "--train-levels", "0", "--eval-levels", "0"],
     "--eval-levels must be positive", "eval_levels"),
    (["robustness", "train-noisy", "--type", "AU", "--variance", "--train-levels", "0", "--eval-levels", "0.1",
      "--hidden", "10,0"], "--hidden (value 2) must be a positive integer", "hidden[1]"),
    (["robustness", "train-noisy", "--type", "AU", "--variance", "--train-levels", "0", "--eval-levels", "0.1",
      "--lr", "-1"], "--lr must be", "lr"),
    (["robustness", "walking", "--type", "AU", "--variance", "--levels", "0,1"], "--levels must be", "levels"),
    (["robustness", "accuracy", "--samples", "10", "--confidence", "2"], "--confidence must", "confidence"),
    (["robustness", "accuracy", "--factors", "-1"], "--factors", "noise intensity"),
    (["verify", "--false-failure", "2"], "--false-failure must", "false_failure"),
    (["recurrent", "verify", "--esn", "20,0.9", "--steps", "5", "--seed", "-1"], "argument --seed", "seed"),
    (["recurrent", "verify", "--esn", "20,0.9", "--steps", "5", "--samples", "0"], "argument --samples", "samples"),
    (["recurrent", "predict", "--esn", "20,0.9", "--steps", "5", "--generate", "3"], "--generate=3", "generate"),
    (["recurrent", "predict", "--esn", "20,0.9", "--steps", "5", "--every", "0"], "argument --every", "every"),
    (["recurrent", "predict", "--esn", "20,0.9", "--steps", "5", "--output-AU", "-1"], "--output-AU:", "noise intensity"),
    (["recurrent", "check", "--esn", "20,0.9", "--target-snr", "nan"], "--target-snr must", "target_snr_db"),
    (["recurrent", "predict", "--esn", "20,1e400"], "--esn RADIUS must be finite", "spectral_radius"),
    (["mitigate", "--seed", "-1"], "argument --seed", "seed"),
    (["mitigate", "--max-copies", "0"], "--max-copies must", "max_copies"),
    (["mitigate", "--target-snr", "nan"], "--target-snr must", "target_snr_db"),
    (["mitigate", "--symmetric", "3,10,0,0,linear", "--samples", "0"], "--objective='snr' needs", "objective"),
    (["mitigate", "--symmetric", "3,10,0.1,0,linear(slope=0.9)", "--samples", "0", "--objective", "decision"],
     "--objective='decision' needs", "objective"),
    (["mitigate", "--AU", "0", "--noise", "0", "--samples", "0"], "--AU, --noise: every noise intensity is 0",
     "noise"),
    (["recurrent", "predict", "--esn", "20,0.9,0.001"], "--esn DENSITY=0.001 leaves", "density"),
    (["recurrent", "predict", "--esn", "20,0.9", "--input-value", "nan"], "argument --input-value", "input"),
])
def test_errors_name_the_option_not_the_python_parameter(capsys, argv, expected, parameter):
    """An error raised by the API for a command-line value names the option the user typed
    (it said eval_levels, hidden[1], seed, ...); --every 0 was silently taken as the default."""
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, expected)
    assert f"error: {parameter}" not in err


@pytest.mark.parametrize("argv, prefix", [
    (["robustness", "accuracy", "--samples", "10", "--confidence", "2"], "noiseprop robustness accuracy: error: "),
    (["recurrent", "predict", "--esn", "10"], "noiseprop recurrent predict: error: "),
    (["mitigate", "--max-copies", "0"], "noiseprop mitigate: error: "),
])
def test_errors_begin_with_the_full_command(capsys, argv, prefix):
    """Errors of a command's action named the command only ('noiseprop robustness: error: ...'),
    unlike argparse's own errors ('noiseprop robustness accuracy: error: ...')."""
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err)
    assert err.startswith(prefix), err


def test_recurrent_input_file_errors_name_the_option(tmp_path, capsys):
    """A non-finite entry or a wrong shape in --input FILE named neither the option nor the file."""
    np.save(tmp_path / "u.npy", np.array([[0.5], [np.nan]]))
    np.save(tmp_path / "wide.npy", np.ones((3, 2)))
    code, _, err = run(capsys, "recurrent", "predict", "--esn", "20,0.9", "--input", str(tmp_path / "u.npy"))
    assert_one_line_error(code, err, "--input", "u.npy", "non-finite entry (nan or inf) at step 2")
    code, _, err = run(capsys, "recurrent", "predict", "--esn", "20,0.9", "--input", str(tmp_path / "wide.npy"))
    assert_one_line_error(code, err, "--input", "wide.npy", "shape (3, 2)")


def test_option_message_rewrites_only_a_leading_parameter():
    from noiseprop.cli.common import option_message

    options = {"hidden": "--hidden", "input": "--input"}
    assert option_message("hidden[0] must be a positive integer", options) == \
        "--hidden (value 1) must be a positive integer"
    assert option_message("input has shape (3,)", options) == "input has shape (3,)"
    assert option_message("the hidden widths must ...", options) == "the hidden widths must ..."
    assert option_message("seed must be >= 0", options) == "seed must be >= 0"


@pytest.mark.parametrize("noise", [Noise(AU=1e-2, AC=1e-2, MU=1e-2),
                                   Noise(AC=1e-2, MC=1e-2, MU=1e-2, placement="pre")], ids=["post", "pre"])
def test_mixture_memory_estimate_bounds_the_measured_peak(noise):
    """predict's guard must not under-estimate the mixture: its children per input
    (components x a 5 x 5 grid of shared nodes x the principal split) are
    measured here by tracemalloc on a 40-wide network with uncorrelated
    multiplicative noise (the co-skewness is carried) and one or both
    correlated types; before the activation every child has its own
    covariance (the largest case: before the children went through the
    activation in blocks it peaked at 236 MB against an estimate of 202 MB)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    sizes = [20, 40, 40, 40]
    net = Network.from_arrays([rng.standard_normal((b, a)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:])],
                              None, ["tanh"] * 3)
    x = rng.uniform(size=(2, 20))
    tracemalloc.start()
    try:
        predict(net, noise, x, method="mixture")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert predict_bytes(sizes, 2, method="mixture")[0] >= peak
