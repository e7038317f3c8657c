import pytest

from noiseprop.plotting import figure, save_figure


def test_save_figure_is_atomic_and_does_not_overwrite(tmp_path):
    fig, ax = figure()
    ax.plot([0, 1], [0, 1])
    path = save_figure(fig, tmp_path / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig, ax = figure()
    with pytest.raises(FileExistsError):
        save_figure(fig, tmp_path / "f.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


# --- content of the study and design figures: curves, labels and scales --------------

from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402

from noiseprop import Noise  # noqa: E402
from noiseprop.plotting import (  # noqa: E402
    plot_accuracy_curve,
    plot_design_chart,
    plot_noise_training,
    plot_walking_noise,
)


def lines_with_data(ax, xdata):
    """The Line2D objects of ``ax`` drawn over exactly ``xdata``."""
    return [line for line in ax.get_lines() if np.array_equal(line.get_xdata(), xdata)]


def test_accuracy_curve_draws_points_with_interval_and_the_prediction():
    fig, ax = figure()
    levels = np.array([0.01, 0.1, 1.0])
    acc, low, high, pred = np.array([0.9, 0.7, 0.2]), np.array([0.85, 0.6, 0.1]), np.array([0.95, 0.8, 0.3]), \
        np.array([0.92, 0.65, 0.25])
    plot_accuracy_curve(ax, levels, acc, low, high, pred, label="measured", predicted_label="predicted")
    assert ax.get_xscale() == "log"
    drawn = lines_with_data(ax, levels)  # points, the two rows of caps, the line
    (points,) = [line for line in drawn if line.get_marker() == "o"]
    (line,) = [line for line in drawn if line.get_linestyle() == "-"]
    np.testing.assert_array_equal(points.get_ydata(), acc)
    np.testing.assert_array_equal(line.get_ydata(), pred)
    assert points.get_color() == line.get_color()  # one colour per curve
    segments = ax.collections[0].get_segments()      # the error bars: from low to high
    np.testing.assert_allclose([s[:, 1] for s in segments], np.column_stack([low, high]))
    assert [t.get_text() for t in ax.legend().get_texts()] == ["predicted", "measured"]


def walking_result():
    return SimpleNamespace(
        noise_type="AU", scale="std", levels=np.array([0.1, 1.0, 3.0]), layers=(1, 2),
        accuracy=np.array([[0.95, 0.5, 0.1], [0.96, 0.8, 0.3]]),
        ci_low=np.full((2, 3), 0.0), ci_high=np.full((2, 3), 1.0),
        predicted=np.array([[0.94, 0.55, 0.12], [0.97, 0.78, 0.35]]),
        midpoint=np.array([1.1, np.nan]), bracket=("inside", "above"), clean=0.98, chance=0.1,
    )


def test_walking_noise_figure_content():
    result = walking_result()
    ax = plot_walking_noise(result).axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylim() == (0, 1.02)
    assert ax.get_xlabel() == "AU noise level (standard deviation s) in one layer"
    assert ax.get_ylabel() == "accuracy"
    for i in range(2):  # measured points and predicted line of every layer
        ydata = [line.get_ydata() for line in lines_with_data(ax, result.levels)]
        assert any(np.array_equal(y, result.accuracy[i]) for y in ydata)
        assert any(np.array_equal(y, result.predicted[i]) for y in ydata)
    horizontal = {float(line.get_ydata()[0]) for line in ax.get_lines() if line.get_xdata()[0] == 0}
    assert horizontal >= {0.5 * (0.98 + 0.1), 0.1}        # midpoint target and chance
    vertical = [line for line in ax.get_lines() if line.get_ydata()[0] == 0 and line.get_xdata()[0] == 1.1]
    assert len(vertical) == 1                              # only the finite midpoint is marked
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "layer 1 (midpoint 1.1)" in labels and "layer 2 (midpoint above range)" in labels


def test_noise_training_figure_content():
    weights = [[{"layer": 1, "rms": r, "binarity": b}, {"layer": 2, "rms": r / 2, "binarity": b}]
               for r, b in ((0.3, 0.8), (0.4, 0.9))]
    result = SimpleNamespace(
        noise_type="MU", scale="variance", train_levels=np.array([0.0, 0.1]), eval_levels=np.array([0.01, 1.0]),
        accuracy=np.array([[0.9, 0.5], [0.88, 0.6]]), ci_low=np.zeros((2, 2)), ci_high=np.ones((2, 2)),
        predicted=np.array([[0.91, 0.45], [0.87, 0.62]]), weights=weights,
    )
    fig = plot_noise_training(result)
    left, right, twin = fig.axes
    assert left.get_xscale() == "log" and left.get_xlabel() == "inference MU noise level D (every layer)"
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["trained at 0", "trained at 0.1"]
    assert any(np.array_equal(line.get_ydata(), [0.91, 0.45]) for line in left.get_lines())
    np.testing.assert_allclose(sorted(tuple(line.get_ydata()) for line in right.get_lines()),
                               [(0.15, 0.2), (0.3, 0.4)])          # rms per layer vs training level
    np.testing.assert_allclose([tuple(line.get_ydata()) for line in twin.get_lines()], [(0.8, 0.9)] * 2)
    assert [t.get_text() for t in right.get_xticklabels()] == ["0", "0.1"]


def test_design_chart_content():
    slopes, depths = np.array([0.5, 1.0, 1.5]), np.array([1, 2, 3, 4])
    noise_var = np.array([[1e-3 * (1 - s ** (2 * d)) / (1 - s**2) if s != 1 else 1e-3 * d for d in depths]
                          for s in slopes])
    accumulation = SimpleNamespace(slopes=slopes, depths=depths, noise_var=noise_var, width=10, noise=Noise(AC=1e-3))
    budgets = SimpleNamespace(depths=depths, budgets={"AU": np.array([1e-2, 5e-3, 3e-3, 2e-3]),
                                                      "AC": np.array([1e-3, np.nan, 4e-4, 3e-4])},
                              target_snr_db=20.0, slope=0.9, noise=Noise(AC=1e-3))
    fig = plot_design_chart(accumulation, budgets, mark=(1.2, 3))
    left, right = fig.axes[0], fig.axes[1]                 # axes[2] is the colour bar
    mesh = left.collections[0]
    np.testing.assert_allclose(np.ravel(mesh.get_array()), np.ravel((noise_var / noise_var[:, :1]).T))
    assert mesh.norm.vmin == 1.0
    boundary = [line for line in left.get_lines() if list(line.get_xdata()) == [1.0, 1.0]]
    assert len(boundary) == 1 and boundary[0].get_linestyle() == "--"
    assert left.get_xlabel().startswith("activation slope s") and left.get_ylabel() == "depth L"
    assert "N = 10" in left.get_title()
    assert right.get_yscale() == "log" and right.get_xlabel() == "depth L"
    curves = {line.get_label(): line.get_ydata() for line in right.get_lines()}
    np.testing.assert_array_equal(curves["AU"], budgets.budgets["AU"])
    assert np.isnan(curves["AC"][1])                        # a missing budget is a gap, not a zero
    assert "20 dB" in right.get_title()
