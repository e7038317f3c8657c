"""Figure captions state what their data show (numbers checked against predict)."""
import re

import numpy as np
import pytest

from noiseprop import Noise, predict
from noiseprop.figures import f1_symmetric
from noiseprop.figures._common import mean_preserving_network


def test_f1_caption_states_the_uncorrelated_growth_that_predict_gives():
    """At slope 1.2 uncorrelated additive noise reaches 5.2 D by layer 10: it
    does not 'stay near D'.  Every number in the caption is predict's."""
    caption = f1_symmetric.CAPTION
    assert "stays near D" not in caption
    stated = {float(s): float(v) for v, s in re.findall(r"([\d.]+) D \(s = ([\d.]+)\)", caption)}
    assert sorted(stated) == sorted(f1_symmetric.SLOPES)
    d = f1_symmetric.INTENSITY
    for slope, ratio in stated.items():
        net, x = mean_preserving_network(f1_symmetric.DEPTH, f1_symmetric.WIDTH, slope, f1_symmetric.LEVEL)
        var = predict(net, Noise(AU=d), x).noise_var[-1]
        assert var / d == pytest.approx(ratio, rel=5e-3)  # three significant digits
    assert stated[1.2] == pytest.approx(5.19, abs=0.01)
    # its excess over D is about 1/N of the correlated noise at slope 1.2
    net, x = mean_preserving_network(f1_symmetric.DEPTH, f1_symmetric.WIDTH, 1.2, f1_symmetric.LEVEL)
    correlated = predict(net, Noise(AC=d), x).noise_var[-1] / d
    assert (stated[1.2] - 1) * f1_symmetric.WIDTH == pytest.approx(correlated, rel=0.1)
    assert np.isfinite(correlated)


def test_f5_text_states_the_linearisation_benchmark_numbers():
    """docs/figures.md's F5 text quotes the output-layer errors of linear
    response and "moments" for AU and AC at D = 1e-2 and 0.1 from the
    10^6-sample benchmark (benchmarks/results/linearisation_error.json), to
    two significant digits (it once swapped AU and AC: "-0.7 % / -1 %")."""
    import json
    import math
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    rows = json.loads((root / "benchmarks" / "results" / "linearisation_error.json").read_text())["rows"]

    def error(method, kind, d):
        row = next(r for r in rows if r["noise"] == kind and r["D"] == d)
        return 100 * (row[method]["noise_var"][-1] / row["mc"]["noise_var"][-1] - 1)

    text = (root / "docs" / "figures.md").read_text()
    paragraph = text[text.index("**F5."):text.index("{noiseprop-figure} F5_")]
    sentence = re.search(r"−7\.1 % \(AU\).*?−4\.1 %", paragraph, flags=re.S).group(0)
    stated = [-float(v) for v in re.findall(r"−([\d.]+) %", sentence)]
    expected = [error("linear", "AU", 1e-2), error("linear", "AC", 1e-2), error("linear", "AU", 0.1),
                error("linear", "AC", 0.1), error("moments", "AU", 1e-2), error("moments", "AC", 1e-2),
                error("moments", "AU", 0.1), error("moments", "AC", 0.1)]
    assert len(stated) == len(expected)
    for value, exact in zip(stated, expected):
        unit = 10.0 ** (math.floor(math.log10(abs(exact))) - 1)       # second significant digit
        assert value == pytest.approx(exact, abs=0.5 * unit + 1e-12), (value, exact)
