"""``noiseprop derive``: text, LaTeX, JSON and exit codes."""
import json

import pytest
import sympy as sp

from noiseprop.analysis import symbolic
from noiseprop.cli import main


def run(capsys, *argv):
    code = main(["derive", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output_names_every_result(capsys):
    code, out, _ = run(capsys, "--noise", "AC")
    assert code == 0
    lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line and not line.startswith("  -"))
    assert out.startswith("family: symmetric; noise: AC\n")
    w, n, s = (symbolic.SYMBOLS[name] for name in ("w", "N", "s"))
    gain = sp.sympify(lines["accumulation gain g"], locals=symbolic.SYMBOLS)
    assert sp.simplify(gain.subs(w, 1 / n) - s**2) == 0
    assert sp.simplify(sp.sympify(lines["critical slope"], locals=symbolic.SYMBOLS).subs(w, 1 / n)) == 1
    for label in ("recursion c_k", "closed form Var_k", "deep limit Var", "bounded if", "SNR limit (strong signal)"):
        assert label in lines
    assert "conditions:" in out


def test_json_output_matches_the_api(capsys):
    code, out, _ = run(capsys, "--noise", "MU,MC", "--family", "trained", "--json")
    assert code == 0
    payload = json.loads(out)
    expected = symbolic.derive(["MU", "MC"], "trained")
    assert payload["family"] == "trained" and payload["noise"] == ["MU", "MC"]
    assert payload["results"]["SNR limit (strong signal)"]["text"] == str(expected.snr_limit)
    assert payload["results"]["correlated gain"]["latex"] == r"N^{2} \mu^{2} \bar{s}^{2}"
    assert payload["conditions"] == list(expected.conditions)


def test_latex_output(capsys):
    code, out, _ = run(capsys, "--noise", "AU", "--latex")
    assert code == 0
    assert out.startswith("% family: symmetric; noise: AU")
    assert r"D_{\mathrm{AU}}" in out and "u_{k-1}" in out


@pytest.mark.parametrize("argv, message", [
    (["--noise", "AX"], "unknown noise type(s) ['AX']"),
    (["--noise", "AU,"], "unknown noise type(s) ['']"),
])
def test_bad_noise_exits_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err


def test_bad_family_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["derive", "--family", "random"])
    assert info.value.code == 2
    assert "invalid choice: 'random'" in capsys.readouterr().err


def test_printed_example_condition_keeps_the_signal_and_has_a_bounded_gain(capsys):
    """The example printed for 'constant signal m' (f(z) = 0.9 z, w = 1/N,
    b = m/9) keeps m in every layer and has g < 1, so the printed deep
    limit applies to it: it equals what 200 layers of predict reach."""
    import numpy as np

    from noiseprop import Network, Noise, predict

    code, out, _ = run(capsys)
    assert code == 0
    assert "b = m (1 - s w N) / s" in out and "s = 0.9, w = 1/N, b = m/9" in out
    assert "(linear f: s w N = 1, b = 0)" not in out
    n, m = 8, 0.7
    noise = dict(D_AU=1e-3, D_AC=2e-3, D_MU=3e-3, D_MC=1e-3)
    derivation = symbolic.derive("all", "symmetric")
    values = dict(N=n, s=0.9, w=1 / n, m=m, **noise)
    assert derivation.function("gain")(**values) == pytest.approx(0.81 * (1 + 1e-3 + 3e-3 / n))
    net = Network.symmetric(200, n, 1 / n, m / 9, "linear(slope=0.9)")
    deep = predict(net, Noise(**{key[2:]: value for key, value in noise.items()}), np.full(n, m))
    np.testing.assert_allclose(deep.mean[1:], m, rtol=1e-12)
    assert derivation.function("fixed_variance")(**values) == pytest.approx(deep.noise_var[-1], rel=1e-9)
