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
