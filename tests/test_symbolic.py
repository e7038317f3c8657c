"""The symbolic derivation against independent computations.

- the span{I, J} algebra against explicit sympy matrices (docs/model.md §4 written out);
- the symmetric recursion against predict to 1e-12 and against the closed
  forms printed in docs/model.md §5;
- closed forms against the iterated recursion, deep limits against fixed points;
- the trained (statistics-only) recursion against the average of predict over
  an ensemble of random weight matrices (statistical, fixed seed).
"""
import json
import math
import re
import runpy
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from noiseprop import Linear, Network, Noise, predict
from noiseprop.analysis import symbolic as S
from noiseprop.analysis.gains import layer_statistics

SYM = S.SYMBOLS
N, w, s, m, k = SYM["N"], SYM["w"], SYM["s"], SYM["m"], SYM["k"]
D = {name: SYM[f"D_{name}"] for name in ("AU", "AC", "MU", "MC")}
NOISE_CASES = [{"AU": 1e-3}, {"AC": 2e-3}, {"MU": 3e-3}, {"MC": 1e-3},
               {"AU": 1e-3, "AC": 2e-3, "MU": 3e-3, "MC": 4e-3}]


def test_symmetric_recursion_equals_explicit_matrices():
    """docs/model.md §4 with explicit 3 x 3 sympy matrices, W = w * ones, J = s I."""
    n = 3
    u, c = SYM["u_prev"], SYM["c_prev"]
    ones = sp.ones(n, n)
    sigma = u * sp.eye(n) + c * ones
    weights = w * ones
    sigma_f = s**2 * (weights * sigma * weights.T)
    signal = m**2 * ones
    noise_mult = D["MU"] * sp.eye(n) + D["MC"] * ones
    sigma_k = sigma_f + (signal + sigma_f).multiply_elementwise(noise_mult) + D["AU"] * sp.eye(n) + D["AC"] * ones
    rec = S.recursion("symmetric")
    assert sp.expand(sigma_k[0, 1] - rec.c.subs(N, n)) == 0
    assert sp.expand(sigma_k[1, 1] - rec.variance.subs(N, n)) == 0


@pytest.mark.parametrize("noise", NOISE_CASES)
@pytest.mark.parametrize("slope, bias, weight", [(1.3, -0.1, 0.3), (0.7, 0.2, 0.25), (1.0, 0.0, 0.2)])
def test_symmetric_variances_equal_predict(noise, slope, bias, weight):
    depth, width, signal = 7, 5, 0.4
    net = Network.symmetric(depth, width, weight, bias, Linear(slope))
    expected = predict(net, Noise(**noise), np.full(width, signal), method="linear").noise_var
    got = S.symmetric_variances(depth, width, weight, slope, signal, bias=bias, **noise)
    assert got[0] == 0.0
    np.testing.assert_allclose(got[1:], expected[1:], rtol=1e-12, atol=0)


def test_spec5_closed_forms_follow_from_the_derivation():
    at = {w: 1 / N}
    ac = S.derive("AC").closed_form["variance"].subs(at)
    assert sp.simplify(ac - D["AC"] * (1 - s ** (2 * k)) / (1 - s**2)) == 0
    au = S.derive("AU").closed_form["variance"].subs(at)
    expected = D["AU"] * (1 + (s**2 / N) * (1 - s ** (2 * (k - 1))) / (1 - s**2))
    assert sp.simplify(au - expected) == 0
    unit = S.derive("AC").closed_form["variance_unit_gain"].subs({w: 1 / N, s: 1})
    assert sp.simplify(unit - k * D["AC"]) == 0


def test_critical_slope_is_one_for_mean_preserving_weights():
    for noise in ("AC", "AU"):
        assert sp.simplify(S.derive(noise).critical_slope.subs(w, 1 / N)) == 1
    assert sp.simplify(S.derive("AC").bounded.lhs.subs(w, 1 / N) - s**2) == 0
    # correlated multiplicative noise lowers the critical slope: 1/sqrt(1 + D_MC)
    mc = S.derive("MC").critical_slope.subs(w, 1 / N)
    assert sp.simplify(mc - 1 / sp.sqrt(1 + D["MC"])) == 0


# A stack of identical layers with a constant signal m and slope s.
CONSTANT = dict(N=5, s=0.8, w=0.2, m=0.7)


def iterate_symmetric(params, depth):
    step = S.recursion("symmetric").step_function()
    u = c = 0.0
    variances = [0.0]
    for _ in range(depth):
        u, c = step(u, c, **params)
        variances.append(u + c)
    return np.array(variances)


@pytest.mark.parametrize("noise", ["AU", "AC", "MU", "MC", "all"])
def test_symmetric_closed_form_and_limit_equal_iteration(noise):
    derivation = S.derive(noise)
    intensities = {name: 1e-3 * (i + 1) for i, name in enumerate(derivation.noise)}
    params = {**CONSTANT, **{f"D_{n}": intensities.get(n, 0.0) for n in ("AU", "AC", "MU", "MC")}}
    iterated = iterate_symmetric(params, 30)
    closed = derivation.function("variance")
    for layer in range(1, 12):
        assert closed(k=layer, **params) == pytest.approx(iterated[layer], rel=1e-12)
    gain = derivation.function("gain")(**params)
    assert gain < 1
    fixed = derivation.function("fixed_variance")(**params)
    # the distance to the fixed point shrinks by the gain per layer
    distance = fixed - iterated
    assert distance[-1] / distance[-2] == pytest.approx(gain, rel=1e-5)
    assert abs(distance[-1]) < 1e-5 * fixed
    snr = derivation.function("snr_deep")(**params)
    assert snr == pytest.approx(CONSTANT["m"] ** 2 / fixed, rel=1e-12)


def test_closed_form_equals_predict_on_a_sigmoid_network_at_its_fixed_point():
    """Sigmoid layers whose input sits at the mean's fixed point m = f(w N m + b):
    every layer has the same signal m and slope s, as the closed form assumes."""
    width, weight, bias, depth = 6, 0.25, -1.0, 25
    activation = Network.symmetric(1, width, weight, bias, "sigmoid(gain=2)").activations[0]
    m_fixed = 0.5
    for _ in range(200):
        m_fixed = float(activation(weight * width * m_fixed + bias))
    slope = float(activation.derivative(weight * width * m_fixed + bias))
    net = Network.symmetric(depth, width, weight, bias, activation)
    noise = Noise(AU=1e-3, AC=2e-3, MU=3e-3, MC=4e-3)
    result = predict(net, noise, np.full(width, m_fixed), method="linear")
    params = dict(N=width, w=weight, s=slope, m=m_fixed, D_AU=1e-3, D_AC=2e-3, D_MU=3e-3, D_MC=4e-3)
    closed = S.derive("all").function("variance")
    for layer in range(1, depth + 1):
        assert closed(k=layer, **params) == pytest.approx(result.noise_var[layer], rel=1e-10)


@pytest.mark.parametrize("noise, finite", [("AU", False), ("AC", False), ("MU", True), ("MC", True)])
def test_snr_limit_bounded_only_for_multiplicative_noise(noise, finite):
    derivation = S.derive(noise)
    params = {**CONSTANT, f"D_{noise}": 1e-3}
    limit = derivation.snr_limit
    assert (limit != sp.oo) == finite
    if finite:
        strong = {**params, "m": 1e6}
        deep_snr = derivation.function("snr_deep")(**strong)
        assert deep_snr == pytest.approx(derivation.function("snr_limit")(**params), rel=1e-9)


def test_trained_recursion_reduces_to_symmetric():
    trained = S.recursion("trained")
    symmetric = S.recursion("symmetric")
    reduce = {SYM["mu"]: w, SYM["nu"]: w**2, SYM["s_mean"]: s, SYM["s_sq"]: s**2, SYM["r"]: 1, SYM["P"]: m**2}
    assert sp.expand(trained.u.subs(reduce) - symmetric.u) == 0
    assert sp.expand(trained.c.subs(reduce) - symmetric.c) == 0


TRAINED = dict(N=30, mu=0.01, nu=0.003, s_mean=0.5, s_sq=0.3, P=0.4, r=0.6,
               D_AU=1e-3, D_AC=2e-3, D_MU=3e-3, D_MC=4e-3)


def test_trained_closed_form_and_fixed_point_equal_iteration():
    derivation = S.derive("all", "trained")
    step = S.recursion("trained").step_function()
    closed_u, closed_c = derivation.function("u"), derivation.function("c")
    u = c = 0.0
    for layer in range(1, 80):
        u, c = step(u, c, **TRAINED)
        if layer < 10:
            assert closed_u(k=layer, **TRAINED) == pytest.approx(u, rel=1e-10)
            assert closed_c(k=layer, **TRAINED) == pytest.approx(c, rel=1e-10)
    gain = derivation.function("gain")(**TRAINED)
    assert 0 < gain < 1
    fixed_u, fixed_c = derivation.function("fixed_u")(**TRAINED), derivation.function("fixed_c")(**TRAINED)
    assert step(fixed_u, fixed_c, **TRAINED) == pytest.approx((fixed_u, fixed_c), rel=1e-12)
    assert (u, c) == pytest.approx((fixed_u, fixed_c), rel=1e-9)
    # the gain is the spectral radius of the recursion matrix
    matrix = np.array(sp.lambdify(list(SYM.values()), S.recursion("trained").matrix)(
        *[TRAINED.get(str(sym), 0.0) for sym in SYM.values()]), dtype=float)
    assert gain == pytest.approx(max(abs(np.linalg.eigvals(matrix))), rel=1e-12)


def test_trained_critical_slope_makes_the_gain_one():
    derivation = S.derive("all", "trained")
    params = {key: v for key, v in TRAINED.items() if key not in ("s_mean", "s_sq")}
    slope = derivation.function("critical_slope")(**params)
    gain = derivation.function("gain")(**params, s_mean=slope, s_sq=slope**2)
    assert gain == pytest.approx(1.0, rel=1e-12)


def test_gains_agree_with_the_gains_module_on_symmetric_networks():
    net = Network.symmetric(3, 6, 0.15, 0.05, "tanh(gain=0.8)")
    x = np.full(6, 0.3)
    rec = S.recursion("symmetric")
    for layer in layer_statistics(net, x)[1:]:
        params = {N: 6, w: 0.15, s: layer.slope[0]}
        assert float(rec.gains["uncorrelated"].subs(params)) == pytest.approx(layer.uncorrelated_gain, rel=1e-12)
        assert float(rec.gains["correlated"].subs(params)) == pytest.approx(layer.correlated_gain, rel=1e-12)


def test_statistics_recursion_is_exact_on_symmetric_linear_networks():
    net = Network.symmetric(5, 4, 0.3, 0.1, Linear(0.9))
    noise = Noise(AU=1e-3, AC=2e-3, MU=3e-3, MC=4e-3)
    x = np.full(4, 0.5)
    result = S.statistics_recursion(net, noise, x)
    expected = predict(net, noise, x, method="linear")
    np.testing.assert_allclose(result.variance, expected.noise_var, rtol=1e-12)
    np.testing.assert_allclose(result.correlated, expected.correlated, rtol=1e-12)
    np.testing.assert_allclose(result.layer_snr[1:], expected.layer_snr[1:], rtol=1e-12)


def test_working_point_statistics_of_a_random_network():
    """Each statistic recomputed from the weights and the noise-free forward pass."""
    rng = np.random.default_rng(2)
    weights = [rng.normal(0.1, 0.5, (5, 4)), rng.normal(-0.2, 0.5, (3, 5))]
    net = Network.from_arrays(weights, [rng.normal(0, 0.3, 5), rng.normal(0, 0.3, 3)], ["tanh", "sigmoid"])
    x = rng.uniform(-1, 1, 4)
    outputs = net.forward(x)
    for k, stats in enumerate(S.working_point_statistics(net, x), start=1):
        w, f, m = weights[k - 1], net.activations[k - 1], outputs[k]
        slope = f.derivative(w @ outputs[k - 1] + net.biases[k - 1])
        assert stats["N"] == w.shape[1]
        assert (stats["mu"], stats["nu"]) == (pytest.approx(w.mean(), rel=1e-12), pytest.approx((w**2).mean(), rel=1e-12))
        assert stats["s_mean"] == pytest.approx(slope.mean(), rel=1e-12)
        assert stats["s_sq"] == pytest.approx((slope**2).mean(), rel=1e-12)
        assert stats["P"] == pytest.approx((m**2).mean(), rel=1e-12)
        assert stats["r"] == pytest.approx(m.mean() ** 2 / (m**2).mean(), rel=1e-12)
        assert 0 < stats["r"] < 1


def test_trained_recursion_is_the_ensemble_average_of_predict():
    """Random W_2 with i.i.d. entries (mean mu, variance sigma^2) after a layer
    with additive noise (covariance D_AU I + D_AC J): the mean over R draws of
    predict's layer-2 variance and correlated part estimates the recursion's
    expectation.  Tolerance: z = 5.6 standard errors of the mean (two-sided
    Gaussian tail 2e-8 per quantity, 2 quantities: < 1e-6); with R = 3000 the
    standard error is < 0.6 % of the value, so a 4 % error fails."""
    rng = np.random.default_rng(12345)
    n, draws, slope, mu, sigma = 12, 3000, 0.8, 0.15, 0.2
    noise = [Noise(AU=1e-3, AC=2e-3), Noise()]
    x = np.full(n, 0.5)
    variances, correlated = np.empty(draws), np.empty(draws)
    for i in range(draws):
        w2 = mu + sigma * rng.standard_normal((n, n))
        net = Network.from_arrays([np.eye(n), w2], None, ["linear", Linear(slope)])
        result = predict(net, noise, x, method="linear")
        variances[i], correlated[i] = result.noise_var[2], result.correlated[2]
    step = S.recursion("trained").step_function()
    expected_u, expected_c = step(
        1e-3, 2e-3, N=n, mu=mu, nu=mu**2 + sigma**2, s_mean=slope, s_sq=slope**2,
        P=1.0, r=1.0, D_AU=0.0, D_AC=0.0, D_MU=0.0, D_MC=0.0,
    )
    for samples, expected in ((variances, expected_u + expected_c), (correlated, expected_c)):
        standard_error = samples.std(ddof=1) / math.sqrt(draws)
        assert standard_error < 0.006 * expected
        assert abs(samples.mean() - expected) < 5.6 * standard_error


def test_outputs_latex_pretty_json():
    derivation = S.derive("all", "trained")
    payload = json.loads(json.dumps(derivation.to_dict()))
    assert payload["family"] == "trained" and payload["noise"] == ["AU", "AC", "MU", "MC"]
    assert r"\bar{s}" in payload["results"]["recursion c_k"]["latex"]
    assert "lambda_1" in derivation.pretty()
    assert r"D_{\mathrm{AC}}" in S.derive("AC").latex()
    assert "c_k =" in S.recursion("symmetric").pretty()


@pytest.mark.parametrize("call, message", [
    (lambda: S.derive("XY"), "unknown noise type"),
    (lambda: S.derive("AC", family="random"), "unknown network family 'random'"),
    (lambda: S.symmetric_variances(0, 4, 0.25, 1.0, 1.0), "depth must be a positive integer"),
    (lambda: S.symmetric_variances(3, 4, 0.25, 1.0, 1.0, AU=-1.0), "noise intensity AU must be a finite variance >= 0"),
    (lambda: S.symmetric_variances(3, 4, float("nan"), 1.0, 1.0), "weight must be finite"),
    (lambda: S.derive("AC").function("gain")(N=3), "missing parameter(s) ['s', 'w']"),
    (lambda: S.derive("AC").function("speed"), "unknown result 'speed'"),
    (lambda: S.statistics_recursion(Network.symmetric(2, 3, 0.3), Noise(AU=1e-3, placement="pre"), np.ones(3)),
     "placement 'post' only"),
    (lambda: S.statistics_recursion(Network.symmetric(2, 3, 0.3), Noise(), np.ones((2, 3))), "one input"),
])
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_import_noiseprop_does_not_load_sympy():
    import subprocess
    import sys

    code = "import sys, noiseprop; assert 'sympy' not in sys.modules; noiseprop.derive('AC')"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the statistics-only recursion on the shipped trained network (table in docs/symbolic.md) -------

ROOT = Path(__file__).resolve().parents[1]
TABLE_SECTION = "## How good is the statistics-only recursion on a trained network?"


def readme_recursion_table() -> dict:
    """{(noise, layer): (mean %, max % or None)} from the table in docs/symbolic.md."""
    text = (ROOT / "docs" / "symbolic.md").read_text().split(TABLE_SECTION, 1)[1].split("\n#", 1)[0]
    table = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] not in ("AU", "AC", "MU", "MC"):
            continue
        for layer, cell in enumerate(cells[1:], start=1):
            numbers = re.findall(r"[+\-−]?\d+(?:\.\d+)?", cell)
            mean, worst = (numbers + [None])[:2]
            table[cells[0], layer] = (mean.replace("−", "-"), worst)
    return table


def within_rounding(value_percent: float, stated: str) -> bool:
    """value (in %) rounds to the stated number (half a unit of its last digit)."""
    digits = len(stated.split(".")[1]) if "." in stated else 0
    return abs(value_percent - float(stated)) <= 0.5 * 10.0**-digits + 1e-9


@pytest.mark.slow
def test_readme_table_of_the_statistics_recursion_on_the_default_network():
    """examples/statistics_recursion_report.py reproduces the table in docs/symbolic.md
    (mean and max error over 50 test digits, each noise type at D = 1e-3) and
    the structure factor quoted for the output layer."""
    pytest.importorskip("sklearn")
    from noiseprop import default_network
    from noiseprop.io.datasets import load_digits

    report = runpy.run_path(str(ROOT / "examples" / "statistics_recursion_report.py"))
    net, x0 = default_network(return_input=True)
    inputs = load_digits()[2][:50]
    table = readme_recursion_table()
    assert len(table) == 4 * net.depth
    for noise in ("AU", "AC", "MU", "MC"):
        errors = 100 * np.array([report["relative_errors"](net, x, noise)[0] for x in inputs])
        for layer in range(1, net.depth + 1):
            mean, worst = table[noise, layer]
            assert within_rounding(errors[:, layer - 1].mean(), mean), (noise, layer, mean)
            if worst is not None:
                assert within_rounding(np.abs(errors[:, layer - 1]).max(), worst), (noise, layer, worst)
    # "2.2 times more uncorrelated-noise variance into the output ... (1.1 to 1.2 times for correlated noise)"
    assert report["structure_factors"](net, x0, "AU")[-1] == pytest.approx(2.2, abs=0.05)
    assert 1.05 <= report["structure_factors"](net, x0, "AC")[-1] <= 1.25


def test_closed_forms_take_numpy_integers_without_overflow():
    """k = np.int64(12): evaluated in floating point (it once overflowed
    silently in int64 arithmetic from k >= 8), equal to the recursion of
    spec 5 iterated here and to the result for Python numbers."""
    import numpy as np

    from noiseprop.analysis.symbolic import derive

    n, w, s, d = 20, 0.05, 1.3, 1e-3
    u, c = d, 0.0  # layer 1 of a noise-free input: additive uncorrelated noise only
    for _ in range(11):
        u, c = d, s**2 * w**2 * n * (u + n * c)
    closed = derive("AU", "symmetric").function("variance")
    assert closed(k=np.int64(12), N=np.int64(n), w=w, s=s, D_AU=d) == pytest.approx(u + c, rel=1e-12)
    assert closed(k=np.int64(12), N=n, w=w, s=s, D_AU=d) == pytest.approx(0.0402109, rel=1e-5)
    ks = np.arange(1, 13)
    assert closed(k=ks, N=n, w=w, s=s, D_AU=d)[-1] == pytest.approx(u + c, rel=1e-12)
