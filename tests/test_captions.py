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
