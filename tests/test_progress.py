"""Progress bars: shown on a terminal only, never with --quiet, by every long CLI command."""
import io

import numpy as np
import pytest

from noiseprop.cli import main
from noiseprop.utils.progress import progress_bar, show_progress


class Terminal(io.StringIO):
    """A standard error stream that says it is a terminal."""

    def isatty(self):
        return True


def use_terminal(monkeypatch) -> Terminal:
    """Make standard error a terminal for the rest of the test (called in the test body:
    pytest's own capture replaces sys.stderr again after fixtures are set up)."""
    stream = Terminal()
    monkeypatch.setattr("sys.stderr", stream)
    return stream


def test_show_progress_rules(monkeypatch):
    use_terminal(monkeypatch)
    assert show_progress() is True                          # a terminal
    assert show_progress(work=10, min_work=100) is False     # too little work for a bar
    assert show_progress(False) is False and show_progress(True, work=1, min_work=2) is True
    monkeypatch.setattr("sys.stderr", io.StringIO())         # not a terminal (a pipe, a log)
    assert show_progress() is False and show_progress(True) is True


def test_bar_and_silent_stand_in(monkeypatch):
    terminal = use_terminal(monkeypatch)
    with progress_bar(4, desc="demo", unit="step", leave=True) as bar:
        bar.update(4)
    assert "demo" in terminal.getvalue() and "4/4" in terminal.getvalue()
    with progress_bar(4, desc="hidden", enabled=False) as silent:
        silent.update(2)
        silent.set_postfix(x=1)
        silent.set_description("still hidden")
    assert silent.n == 2 and "hidden" not in terminal.getvalue()


@pytest.fixture
def small_data(tmp_path):
    from noiseprop.io.datasets import load_digits

    _, _, X, y = load_digits()
    path = tmp_path / "data.npz"
    np.savez(path, X=X[:12], y=y[:12])
    return str(path)


@pytest.mark.parametrize("command, desc", [
    (["robustness", "accuracy", "--samples", "20", "--noise", "1e-2"], "accuracy"),
    (["robustness", "walking", "--type", "AU", "--variance", "--levels", "0.01,1", "--layers", "1",
      "--samples", "10", "--method", "linear"], "walking noise"),
])
def test_robustness_commands_show_a_bar_on_a_terminal(monkeypatch, capsys, small_data, command, desc):
    terminal = use_terminal(monkeypatch)
    assert main([*command, "--data", small_data]) == 0
    assert desc in terminal.getvalue()
    before = len(terminal.getvalue())
    assert main([*command, "--data", small_data, "--quiet"]) == 0
    assert terminal.getvalue()[before:] == ""


def test_verify_bar_follows_quiet(monkeypatch, capsys):
    terminal = use_terminal(monkeypatch)
    args = ["verify", "--symmetric", "2,3,0.3,0,linear", "--AU", "1e-3", "--samples", "4000"]
    # a short run: simulate decides (no bar below its work threshold); --quiet forbids one
    assert main(args) in (0, 1)
    assert main([*args, "--quiet"]) in (0, 1)
    assert "simulate" not in terminal.getvalue()


@pytest.mark.slow
def test_figures_bar_counts_figures(monkeypatch, capsys, tmp_path):
    terminal = use_terminal(monkeypatch)
    assert main(["figures", str(tmp_path / "out"), "--fast", "--only", "F3"]) == 0
    assert "figures" in terminal.getvalue() and "1/1" in terminal.getvalue()
    before = len(terminal.getvalue())
    assert main(["figures", str(tmp_path / "out"), "--fast", "--only", "F3", "--force", "--quiet"]) == 0
    assert terminal.getvalue()[before:] == ""


def test_recurrent_simulation_shows_a_bar_on_a_terminal_only(monkeypatch):
    """recurrent.simulate's bar (issue 16 item 5): counts the realisations, off when asked."""
    from noiseprop import Noise
    from noiseprop.recurrent import echo_state_network, simulate, simulation

    bars = []

    def recorded_bar(*args, **kwargs):
        bars.append(make_bar(*args, **kwargs))
        return bars[-1]

    make_bar = simulation._progress_bar
    monkeypatch.setattr(simulation, "_progress_bar", recorded_bar)
    net, u = echo_state_network(6, 1, 1, 0.9, seed=0), np.full((5, 1), 0.5)
    terminal = use_terminal(monkeypatch)
    simulate(net, Noise(AU=1e-3), u, 400, 0, progress=True)
    # the count is read from the bar: what tqdm draws of a fast run depends on its refresh interval
    assert "simulate" in terminal.getvalue() and "/400" in terminal.getvalue() and bars[0].n == 400
    terminal.truncate(0)
    terminal.seek(0)
    simulate(net, Noise(AU=1e-3), u, 400, 0, progress=False)
    assert terminal.getvalue() == ""
