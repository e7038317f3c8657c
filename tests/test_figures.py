"""The paper figures: every one is regenerated in fast mode and its key numbers
are held against independent computations.

Statistical checks (Monte Carlo points vs analytic curves) use the figures'
fixed seeds and a two-sided normal threshold for a false-failure probability
of 1e-6 per test after Bonferroni over every point compared.  The analytic
curves themselves are checked exactly against the closed forms and the scalar
recursion of docs/model.md §5, written out here independently of ``predict``.
"""
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from extras import needs
from scipy.stats import norm

from noiseprop.cli import main
from noiseprop.figures import FIGURES, figure_ids, make_figures, unavailable

ROOT = Path(__file__).resolve().parents[1]
FALSE_FAILURE = 1e-6


def z_threshold(comparisons: int) -> float:
    """|z| above which a correct prediction fails with probability FALSE_FAILURE overall."""
    return float(norm.isf(FALSE_FAILURE / (2 * comparisons)))


@pytest.fixture(scope="module")
def figures_dir(tmp_path_factory):
    """Every figure, generated once in fast mode through the command line."""
    outdir = tmp_path_factory.mktemp("figures") / "out"
    assert main(["figures", str(outdir), "--fast"]) == 0
    return outdir


def record(outdir: Path, figure_id: str) -> dict:
    return json.loads((outdir / f"{FIGURES[figure_id].STEM}.json").read_text())


def assert_monte_carlo_agrees(curves: dict, estimate: str, predicted: str, stderr: str) -> float:
    """Every Monte Carlo point ``curve[estimate]`` within the z threshold (Bonferroni over
    the points of all curves) of ``curve[predicted]``; returns the threshold."""
    threshold = z_threshold(sum(len(c[estimate]) for c in curves.values()))
    for key, curve in curves.items():
        z = (np.array(curve[estimate]) - curve[predicted]) / np.array(curve[stderr])
        assert np.max(np.abs(z)) < threshold, key
    return threshold


def symmetric_recursion(depth, width, slope, level, AU=0.0, AC=0.0, MU=0.0, MC=0.0):
    """Var of layers 1..depth of the mean-preserving symmetric network (docs/model.md §5,
    w = 1/N, every mean equal to ``level``)."""
    u = c = 0.0
    out = []
    for _ in range(depth):
        common = slope**2 / width * (u + width * c)  # s^2 w^2 N (u + N c) with w = 1/N
        u = (level**2 + common) * MU + AU
        c = common * (1 + MC) + level**2 * MC + AC
        out.append(u + c)
    return np.array(out)


@pytest.mark.slow
def test_every_figure_writes_png_and_json(figures_dir, capsys):
    made = {fid: module for fid, module in FIGURES.items() if fid not in unavailable(FIGURES)}
    assert set(FIGURES) - set(made) <= {"F8", "F13"}  # only F8 and F13 need an extra (train)
    for figure_id, module in made.items():
        png = figures_dir / f"{module.STEM}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure_id
        data = record(figures_dir, figure_id)
        assert data["fast"] is True and data["caption"] == module.CAPTION
        assert data["numbers"], figure_id
    assert sorted(p.name for p in figures_dir.iterdir()) == sorted(
        f"{m.STEM}{suffix}" for m in made.values() for suffix in (".png", ".json"))


@pytest.mark.slow
def test_existing_files_are_not_overwritten_without_force(figures_dir, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in figures_dir.iterdir()}
    assert main(["figures", str(figures_dir), "--fast", "--only", "F1"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in figures_dir.iterdir()} == before


@pytest.mark.slow
def test_script_entry_point_with_force_rewrites_one_figure(figures_dir, monkeypatch, capsys):
    png = figures_dir / "F1_symmetric.png"
    before = png.stat().st_mtime_ns
    monkeypatch.setattr(sys, "argv", ["f1_symmetric.py", str(figures_dir), "--fast", "--force"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "paper_figures" / "f1_symmetric.py"), run_name="__main__")
    assert exit_info.value.code == 0
    assert png.stat().st_mtime_ns > before
    assert capsys.readouterr().out.startswith("F1\t")


@pytest.mark.parametrize("figure_id", list(FIGURES))
def test_one_script_per_figure_passes_its_id(figure_id, monkeypatch):
    import noiseprop.cli

    calls = []
    monkeypatch.setattr(noiseprop.cli, "main", lambda argv: calls.append(argv) or 0)
    script = ROOT / "paper_figures" / f"{FIGURES[figure_id].STEM.lower()}.py"
    monkeypatch.setattr(sys, "argv", [script.name, "OUT", "--fast"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_info.value.code == 0
    assert calls == [["figures", "OUT", "--fast", "--only", figure_id]]


def test_make_all_script_writes_the_chosen_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["make_all.py", str(tmp_path), "--fast", "--only", "F2"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "paper_figures" / "make_all.py"), run_name="__main__")
    assert exit_info.value.code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["F2_snr_vs_depth.json", "F2_snr_vs_depth.png"]


@pytest.mark.parametrize("only, message", [
    ("F1,F99", "unknown figure id"),
    (",", "unknown figure id"),
])
def test_bad_selection_exits_2(tmp_path, capsys, only, message):
    assert main(["figures", str(tmp_path / "x"), "--fast", "--only", only]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_selection_is_case_insensitive_and_ordered():
    assert figure_ids("f3, F1,f3") == ["F3", "F1"]
    assert figure_ids(None) == list(FIGURES)


def test_output_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        make_figures(tmp_path / "file", only="F1", fast=True)


@pytest.mark.slow
def test_f1_analytic_curves_follow_the_symmetric_recursion(figures_dir):
    data = record(figures_dir, "F1")
    for slope in data["slopes"]:
        for name in ("AU", "AC", "MU", "MC"):
            expected = symmetric_recursion(data["depth"], data["width"], slope, data["level"],
                                           **{name: data["intensity"]})
            curve = data["curves"][f"s={slope:g}/{name}"]["analytic"]
            np.testing.assert_allclose(curve, expected, rtol=1e-10, err_msg=f"s={slope}, {name}")
    # correlated additive noise at slope one grows exactly linearly: Var_k = k D
    np.testing.assert_allclose(data["curves"]["s=1/AC"]["analytic"],
                               data["intensity"] * np.arange(1, data["depth"] + 1), rtol=1e-12)


@pytest.mark.slow
def test_f1_monte_carlo_agrees_with_the_analytic_curves(figures_dir):
    data = record(figures_dir, "F1")
    threshold = assert_monte_carlo_agrees(data["curves"], "monte_carlo", "analytic", "stderr")
    # power: for uncorrelated noise a 5 % error of the prediction exceeds the threshold
    relative = np.array(data["curves"]["s=1/AU"]["stderr"]) / data["curves"]["s=1/AU"]["analytic"]
    assert np.max(relative) * threshold < 0.05


@pytest.mark.slow
def test_f2_snr_settles_below_slope_one_and_not_above(figures_dir):
    data = record(figures_dir, "F2")
    numbers = data["numbers"]
    for label in ("linear, s = 0.8", "linear, s = 0.9", "tanh(2z)"):
        assert abs(numbers[label]["change_40_to_50_db"]) < 0.01, label
    assert numbers["tanh(2z)"]["slope"] < 0.2
    # slope one: Var grows linearly, the SNR keeps falling (about 10 log10(50/40) dB)
    assert -1.2 < numbers["linear, s = 1"]["change_40_to_50_db"] < -0.7
    assert numbers["linear, s = 1.1"]["change_40_to_50_db"] < -5
    d = data["intensity"]
    for slope in (0.8, 0.9, 1.0, 1.1):
        var = symmetric_recursion(50, data["width"], slope, 1.0, AU=d, AC=d, MU=d, MC=d)
        np.testing.assert_allclose(data["curves"][f"linear, s = {slope:g}"]["analytic_db"],
                                   -10 * np.log10(var), rtol=1e-9, atol=1e-9)
    # the settled SNR of s = 0.8 is the deep limit of docs/model.md §5 (signal 1)
    u_inf, c_inf = _deep_limit(0.8, data["width"], d)
    assert numbers["linear, s = 0.8"]["snr_db_50"] == pytest.approx(-10 * np.log10(u_inf + c_inf), abs=1e-6)


def _deep_limit(slope, width, d):
    """Fixed point (u, c) of the symmetric recursion with all four intensities d, mean 1."""
    # c = s^2/N (u + N c)(1 + d) + 2 d,  u = (1 + s^2/N (u + N c)) d + d: linear in (u, c)
    g = slope**2 / width
    matrix = np.array([[1 - g * d, -g * width * d], [-g * (1 + d), 1 - g * width * (1 + d)]])
    return np.linalg.solve(matrix, [2 * d, 2 * d])


@pytest.mark.slow
def test_f2_monte_carlo_agrees(figures_dir):
    assert_monte_carlo_agrees(record(figures_dir, "F2")["curves"], "monte_carlo_db", "analytic_at_monte_carlo_db",
                              "stderr_db")


def correlated_gain(slope, width, weight):
    """(c_2 - D) / c_1 for correlated additive noise D through two symmetric
    linear layers, from ``predict`` (docs/model.md §5: s^2 (w N)^2)."""
    from noiseprop import Linear, Network, Noise, predict

    net = Network.symmetric(2, width, weight, activation=Linear(slope=slope))
    result = predict(net, Noise(AC=1.0), np.ones(width))
    return (result.var[2][0] - 1.0) / result.var[1][0]


@pytest.mark.slow
def test_f3_critical_slope_is_one_for_the_mean_preserving_family(figures_dir):
    from scipy.optimize import brentq

    from noiseprop.figures.f3_slope import critical_slope

    data = record(figures_dir, "F3")
    assert data["numbers"]["critical_slope"] == pytest.approx(1.0, abs=1e-12)
    # independently: the slope where the propagated per-layer gain reaches one
    root = brentq(lambda s: correlated_gain(s, data["width"], 1 / data["width"]) - 1, 0.1, 10, xtol=1e-14)
    assert root == pytest.approx(data["numbers"]["critical_slope"], abs=1e-9)
    # and it moves as 1/(w N) when the weights do not preserve the mean
    root = brentq(lambda s: correlated_gain(s, data["width"], 0.5 / data["width"]) - 1, 0.1, 10, xtol=1e-14)
    assert root == pytest.approx(2.0, abs=1e-9)
    assert critical_slope(data["width"], 0.5 / data["width"]) == pytest.approx(root, abs=1e-9)


@pytest.mark.slow
def test_f3_accumulated_noise_matches_closed_forms(figures_dir):
    data = record(figures_dir, "F3")
    depth, slopes = data["depth"], np.array(data["slopes"])
    ac = np.array(data["curves"]["AC"]["analytic"])
    # correlated additive (docs/model.md §5): sum of s^(2j), j < depth
    expected = np.array([np.sum(s ** (2 * np.arange(depth))) for s in slopes])
    np.testing.assert_allclose(ac, expected, rtol=1e-10)
    assert data["numbers"]["AC"]["accumulated_at_s1"] == pytest.approx(depth, rel=1e-12)
    for name in ("AU", "MU", "MC"):
        expected = [symmetric_recursion(depth, data["width"], s, data["level"],
                                        **{name: data["intensity"]})[-1] / data["intensity"] for s in slopes]
        np.testing.assert_allclose(data["curves"][name]["analytic"], expected, rtol=1e-10, err_msg=name)


@pytest.mark.slow
def test_f3_monte_carlo_agrees(figures_dir):
    assert_monte_carlo_agrees(record(figures_dir, "F3")["curves"], "monte_carlo", "predicted_at_monte_carlo",
                              "stderr")


@pytest.mark.slow
def test_f5_both_methods_agree_at_small_noise_and_moments_wins_at_large(figures_dir):
    data = record(figures_dir, "F5")
    d = np.array(data["intensities"])
    small = d <= 1e-4
    numbers = data["numbers"]
    threshold = z_threshold(2 * len(numbers) * int(small.sum()))
    for name, row in numbers.items():
        se = np.array(row["relative_stderr"])
        for method in ("linear", "moments"):
            z = np.array(row[f"{method}_relative_error"])[small] / se[small]
            assert np.max(np.abs(z)) < threshold, (name, method)
    # at D = 0.1 linearisation misses a large part of the additive noise ...
    largest = int(np.argmax(d))
    assert d[largest] == pytest.approx(0.1)
    for name, floor in (("AU", -0.2), ("AC", -0.07)):
        linear = numbers[name]["linear_relative_error"][largest]
        moments = numbers[name]["moments_relative_error"][largest]
        assert linear < floor, name
        # ... which the moments method largely recovers
        assert abs(moments) < 0.5 * abs(linear), name
    assert numbers["AU"]["linear_breaks_down_at"] <= 1e-2


@pytest.mark.slow
def test_f6_accuracy_falls_from_clean_to_chance_as_predicted(figures_dir):
    from noiseprop.studies.accuracy import ANALYTIC_ABSEPS

    data = record(figures_dir, "F6")
    d = np.array(data["intensities"])
    numbers = data["numbers"]
    clean = numbers["clean"]
    small, large = int(np.argmin(d)), int(np.argmax(d))
    assert d[small] == pytest.approx(1e-3) and d[large] == pytest.approx(10)
    # the analytic prediction at small noise, within the Monte Carlo error
    # (plus the bound on the analytic quasi-Monte-Carlo error of the mean)
    threshold = z_threshold(2 * 4)
    analytic_se = ANALYTIC_ABSEPS / (3 * np.sqrt(data["inputs"]))
    for name in ("AU", "AC", "MU", "MC"):
        row = numbers[name]
        se = np.hypot(row["stderr"][small], analytic_se)
        for method in ("linear", "moments"):
            assert abs(row[method][small] - row["monte_carlo"][small]) < threshold * se, (name, method)
        assert row["monte_carlo"][small] == pytest.approx(clean, abs=0.05)
    # uncorrelated noise of variance 10 in every layer leaves about chance (0.1)
    for name in ("AU", "MU"):
        assert numbers[name]["monte_carlo"][large] < 0.25, name
        # the moments method follows it, the linearised prediction is optimistic
        assert numbers[name]["moments"][large] < numbers[name]["linear"][large], name


@pytest.mark.slow
def test_accuracy_figures_use_their_own_number_of_test_digits(figures_dir):
    from noiseprop.figures import f6_accuracy, f7_walking
    from noiseprop.figures._common import digits_test_set

    assert record(figures_dir, "F6")["inputs"] == f6_accuracy.INPUTS_FAST
    assert record(figures_dir, "F7")["inputs"] == f7_walking.INPUTS_FAST
    assert f6_accuracy.INPUTS_FAST != f7_walking.INPUTS_FAST
    X, y = digits_test_set(False, 5)  # full quality: the whole test set
    assert X.shape == (450, 64) and y.shape == (450,)


def test_monte_carlo_interval_bars_span_the_interval():
    import matplotlib.pyplot as plt

    from noiseprop.figures._common import draw_monte_carlo_interval
    from noiseprop.plotting import figure

    fig, ax = figure()
    bars = draw_monte_carlo_interval(ax, [1.0, 2.0], [0.5, 0.8], [0.4, 0.75], [0.7, 0.82], "k")
    segments = bars.lines[2][0].get_segments()
    np.testing.assert_allclose([segment[:, 1] for segment in segments], [[0.4, 0.7], [0.75, 0.82]])
    plt.close(fig)


@pytest.mark.slow
def test_f7_midpoints_are_found_and_predicted(figures_dir):
    data = record(figures_dir, "F7")
    levels = np.array(data["levels_variance"])
    for name in ("AU", "MU"):
        row = data["numbers"][name]
        assert row["bracket"] == ["found"] * 4 and row["predicted_bracket"] == ["found"] * 4, name
        measured, predicted = np.array(row["midpoint_variance"]), np.array(row["predicted_midpoint_variance"])
        assert np.all((levels[0] < measured) & (measured < levels[-1]))
        # the analytic midpoints land within a factor 2 of the measured ones (coarse levels in fast mode)
        np.testing.assert_array_less(np.abs(np.log(predicted / measured)), np.log(2.0))
        assert sorted(row["ranking"]) == [1, 2, 3, 4]
    # additive noise in the output layer is the least harmful: the logits are large
    assert data["numbers"]["AU"]["ranking"][-1] == 4 and data["numbers"]["AU"]["predicted_ranking"][-1] == 4


@pytest.mark.slow
def test_f4_trained_network_layers(figures_dir):
    from noiseprop import default_network

    data = record(figures_dir, "F4")
    numbers = data["numbers"]
    net = default_network()
    np.testing.assert_allclose(numbers["weights"]["mu"], [np.mean(w) for w in net.weights], rtol=1e-12)
    np.testing.assert_allclose(numbers["weights"]["nu"], [np.mean(w**2) for w in net.weights], rtol=1e-12)
    threshold = z_threshold(4 * net.depth)
    for name in ("AU", "AC", "MU", "MC"):
        row = numbers[name]
        full, stats = np.array(row["full"]), np.array(row["statistics_only"])
        # Monte Carlo vs the full propagation (its linearisation error at D = 1e-3 is
        # below 1 %, far under the fast-mode standard error of about 2 %)
        z = (np.array(row["monte_carlo"]) - full) / np.array(row["stderr"])
        assert np.max(np.abs(z)) < threshold, name
        # the statistics-only recursion: exact in layer 1 (noise-free input), close in the
        # hidden layers, within a factor 2.5 at the output
        assert stats[0] == pytest.approx(full[0], rel=1e-9), name
        np.testing.assert_allclose(stats[:3], full[:3], rtol=0.15, err_msg=name)
        assert 1 / 2.5 < stats[-1] / full[-1] < 2.5, name


@pytest.mark.slow
def test_f8_noise_aware_training_accuracy_is_predicted(figures_dir):
    from noiseprop.studies.accuracy import ANALYTIC_ABSEPS

    needs("torch")  # without it the figures run skips F8
    data = record(figures_dir, "F8")
    rows = [row for name in ("AU", "MU") for row in data["numbers"][name].values()]
    levels = len(data["eval_levels_variance"])
    threshold = z_threshold(len(rows) * levels)
    analytic_se = ANALYTIC_ABSEPS / (3 * np.sqrt(data["inputs"]))
    for row in rows:
        assert row["clean"] > 0.6  # the (tiny, fast-mode) networks did learn
        stderr = (np.array(row["ci_high"]) - row["ci_low"]) / (2 * norm.isf(0.025))
        gap = np.abs(np.array(row["monte_carlo"]) - row["predicted"])
        np.testing.assert_array_less(gap, threshold * np.hypot(stderr, analytic_se))
        # accuracy falls with the inference noise (smallest to largest level)
        assert row["monte_carlo"][0] > row["monte_carlo"][-1] + 0.3


@pytest.mark.slow
def test_f12_readout_snr_points_and_statistics_formula(figures_dir):
    data = record(figures_dir, "F12")
    assert_monte_carlo_agrees(data["curves"], "snr_db_monte_carlo", "snr_db", "snr_db_stderr")
    curves = data["curves"]
    k = len(data["means"])
    # (a): correlated additive noise falls fastest with the mean of W_out; (b): every type falls with
    # the mean square (uncorrelated noise by about 10 dB per decade of the mean square)
    drop = {name: c["snr_db"][0] - c["snr_db"][k - 1] for name, c in curves.items()}
    assert drop["AC"] == max(drop.values())
    spreads = np.array(data["spreads"])
    for name in ("AU", "MU"):
        slope = np.polyfit(np.log10(spreads**2), curves[name]["snr_db"][k:], 1)[0]
        assert -11 < slope < -9, name


@pytest.mark.slow
def test_f13_noise_injection_training_gains_snr(figures_dir):
    needs("torch")  # without it the figures run skips F13
    data = record(figures_dir, "F13")
    numbers = {k: v for k, v in data["numbers"].items() if isinstance(v, dict)}
    threshold = z_threshold(sum(len(c["snr_db_monte_carlo"]) for c in data["curves"].values()))
    for name, row in numbers.items():
        assert row["max_abs_z"] < threshold, name
    assert data["numbers"]["snr_gain_db_at_1e-2"] > 1.0


@pytest.mark.parametrize("figure_id", list(FIGURES))
def test_committed_figures_are_full_quality_and_current(figure_id):
    """The documented figures: full quality, made by the current figure code (same caption)."""
    stem = FIGURES[figure_id].STEM
    data = json.loads((ROOT / "paper_figures" / "output" / f"{stem}.json").read_text())
    assert data["fast"] is False and data["caption"] == FIGURES[figure_id].CAPTION
    assert (ROOT / "paper_figures" / "output" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
    assert f"{{noiseprop-figure}} {stem}\n" in (ROOT / "docs" / "figures.md").read_text()
