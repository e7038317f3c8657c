"""The accuracy section of README.md and docs/closure.md is the closure
matrix's stored results, rendered.

The section between the ``closure-matrix`` markers (and docs/closure.md's
calibration table, between the ``closure-calibration`` markers) is written by
``python benchmarks/closure_matrix.py --from-json
benchmarks/results/closure_matrix.json --update-readme``; rendering it again
from the JSON must give exactly the text in both pages, so that they cannot
drift from the data (rerun that command after a new matrix run).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "closure_matrix.json"


@pytest.fixture(scope="module")
def closure_matrix():
    spec = importlib.util.spec_from_file_location("closure_matrix", ROOT / "benchmarks" / "closure_matrix.py")
    module = importlib.util.module_from_spec(spec)
    with pytest.MonkeyPatch.context() as patch:  # its folder first on the path, as when it is run
        patch.syspath_prepend(str(ROOT / "benchmarks"))
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def payload():
    return json.loads(RESULTS.read_text())


@pytest.mark.parametrize("page", ["README.md", "docs/closure.md"])
def test_page_holds_the_accuracy_section_rendered_from_the_stored_matrix(closure_matrix, payload, page):
    block = closure_matrix.accuracy_block(payload)
    expected = f"{closure_matrix.README_BEGIN}\n{block}\n{closure_matrix.README_END}"
    assert expected in (ROOT / page).read_text(), (
        f"{page}'s accuracy section differs from benchmarks/results/closure_matrix.json; run: "
        "python benchmarks/closure_matrix.py --from-json benchmarks/results/closure_matrix.json --update-readme")
    assert ROOT / page in closure_matrix.ACCURACY_PAGES


def test_closure_page_holds_the_calibration_table_rendered_from_the_stored_matrix(closure_matrix, payload):
    block = closure_matrix.calibration_block(payload)
    expected = f"{closure_matrix.CALIBRATION_BEGIN}\n{block}\n{closure_matrix.CALIBRATION_END}"
    assert expected in (ROOT / "docs" / "closure.md").read_text()
    shipped = payload["calibration"]["shipped"]
    assert f"{100 * shipped['coverage']:.1f} % (requirement" in block
    assert f"| {shipped['warned_pairs']} of {payload['summary'][payload['default']]['pairs']} |" in block


def test_the_section_names_the_default_and_its_worst_cases(closure_matrix, payload):
    block = closure_matrix.accuracy_block(payload)
    default = payload["default"]
    assert f"**{default}** (default)" in block
    for column in ("worst_variance", "worst_mean", "worst_vs_linear"):
        worst = payload["summary"][default][column]
        assert f"{worst['case']} L{worst['layer']}:" in block
    assert f"{100 * payload['calibration']['shipped']['coverage']:.1f} % of the pairs" in block


def test_update_readme_rewrites_only_the_section(closure_matrix, payload, tmp_path):
    readme = tmp_path / "README.md"
    begin, end = closure_matrix.README_BEGIN, closure_matrix.README_END
    calibration_begin, calibration_end = closure_matrix.CALIBRATION_BEGIN, closure_matrix.CALIBRATION_END
    readme.write_text(f"# title\n\n{begin}\nstale numbers\n{end}\n\nmore text\n"
                      f"{calibration_begin}\nstale table\n{calibration_end}\n")
    closure_matrix.update_readme(payload, [readme])
    text = readme.read_text()
    assert text == (f"# title\n\n{begin}\n{closure_matrix.accuracy_block(payload)}\n{end}\n\nmore text\n"
                    f"{calibration_begin}\n{closure_matrix.calibration_block(payload)}\n{calibration_end}\n")
    closure_matrix.update_readme(payload, [readme])
    assert readme.read_text() == text                      # idempotent
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="markers"):
        closure_matrix.update_readme(payload, [readme])


def test_stored_monte_carlo_run_reads_back_the_same_statistics(closure_matrix, tmp_path):
    """--mc-cache: the first run stores its statistics (one .npz, no temporary left), a second
    run with the same key, samples and seed reads them back unchanged instead of simulating."""
    import numpy as np

    from noiseprop import Network, Noise

    net, x, noise = Network.symmetric(2, 3, 0.3, 0.1, "tanh"), np.ones(3), Noise(AU=1e-2)
    first = closure_matrix.simulation(net, x, noise, 500, 3, tmp_path, "case")
    assert [p.name for p in tmp_path.iterdir()] == ["case_R500_s3.npz"]
    stored = closure_matrix.simulation(net, x, noise, 500, 3, tmp_path, "case")
    assert isinstance(stored, closure_matrix._StoredSimulation) and stored.samples == first.samples
    for field in ("mean", "var", "mean_stderr"):
        for got, expected in zip(getattr(stored, field), getattr(first, field), strict=True):
            np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(stored.noise_var, first.noise_var)
    np.testing.assert_array_equal(stored.noise_var_stderr, first.noise_var_stderr)


def test_stored_rows_of_several_files_take_each_case_from_the_last(closure_matrix, tmp_path):
    """--from-json FULL PART: the cases measured again (PART, e.g. --noise MU)
    replace those of the full run, in their places; the others are kept."""
    def row(network, noise, value):
        return {"network": network, "noise": noise, "placement": "post", "D": 0.1, "samples": 400_000,
                "mc": [value]}

    full = tmp_path / "full.json"
    full.write_text(json.dumps({"samples": 400_000, "seed": 0,
                                "rows": [row("a", "AU", 1.0), row("a", "MU", 2.0), row("b", "MU", 3.0)]}))
    part = tmp_path / "part.jsonl"
    part.write_text(json.dumps(row("a", "MU", 20.0)) + "\n" + json.dumps(row("b", "MU", 30.0)) + "\n")
    samples, seed, rows = closure_matrix.stored_rows([full, part], seed=5)
    assert (samples, seed) == (400_000, 0)
    assert [(r["network"], r["noise"], r["mc"][0]) for r in rows] == [("a", "AU", 1.0), ("a", "MU", 20.0),
                                                                      ("b", "MU", 30.0)]
