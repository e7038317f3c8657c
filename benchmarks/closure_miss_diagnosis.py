"""Why the mixture missed on ReLU depth 8 with MU = 0.1 after the activation.

The closure matrix's last miss before the mixture carried the co-skewness
of uncorrelated multiplicative noise (layer 6: mixture -1.27 % against
linear response's -0.03 %; with the co-skewness +0.37 %, docs/closure.md).
The numbers written now are those of the present mixture.  A plain NumPy Monte
Carlo of that case (the matrix's network, ``--samples`` realisations, its
own seed) keeps, per layer, the power sums of every pre-activation z and of
every ReLU output f = relu(z), and the realisations of layer
``--layer - 1``'s pre-activations; from them it measures:

1. Mehler's truncation: the mixture with its second-order covariances
   between neurons replaced by the exact bivariate-Gaussian ReLU covariance
   (all orders, :func:`exact_relu_covariance`); the per-neuron mean and
   variance are closed forms already.
2. Where the variance of layer L's pre-activations goes wrong: the mixture's
   layer-mean variance of z_L against the Monte Carlo one, split into the
   part carried by the diagonal of layer L-1's output covariance and the
   part carried by its off-diagonal (the covariances between neurons), and
   the off-diagonal part of a Gaussian with the Monte Carlo mean and
   covariance of z_(L-1) (exact bivariate ReLU covariance), and that
   Gaussian's with the Edgeworth terms of the joint third cumulants
   k_iij = E[(z_i - zbar_i)^2 (z_j - zbar_j)] added: the joint law against
   its covariance.
3. The shape per neuron: Var relu(z_L) of a Gaussian with each neuron's
   Monte Carlo mean and variance, and with the Edgeworth corrections of its
   third and fourth cumulants, against the Monte Carlo Var relu(z_L).

Usage::

    python benchmarks/closure_miss_diagnosis.py [--samples R] [--layer 6] [--out DIR] [--force]

writes DIR/closure_miss_diagnosis.md (default DIR benchmarks/results;
R = 400 000: about a minute, 160 MB).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parent))
import closure_matrix  # noqa: E402  (the matrix's network recipe)
from _outputs import result_paths, write_results  # noqa: E402  (this folder)

from noiseprop import Noise, ReLU, mixture, predict  # noqa: E402
from noiseprop.moments import gaussian_moments  # noqa: E402
from noiseprop.noise import per_layer_noise  # noqa: E402

NETWORK, D = "relu8", 0.1
CHUNK = 20_000
LEGENDRE_NODES = 48


def exact_relu_covariance(zbar: np.ndarray, cov_z: np.ndarray) -> np.ndarray:
    """Cov[relu(z_i), relu(z_j)] for z ~ N(zbar, cov_z), (M, N), (M, N, N).

    Price's theorem: d Cov / d S_ij = E[H(z_i) H(z_j)] = Phi2(a_i, a_j; r)
    and d Phi2 / d r = phi2, so with a = zbar / sd and r the correlation,
    Cov = sd_i sd_j [r Phi(a_i) Phi(a_j) + int_0^r (r - t) phi2(a_i, a_j; t) dt]
    (Gauss-Legendre in t); every order of Mehler's series at once.
    """
    sd = np.sqrt(np.maximum(np.diagonal(cov_z, axis1=-2, axis2=-1), 1e-300))
    a = zbar / sd
    ai, aj = a[..., :, None], a[..., None, :]
    r = np.clip(cov_z / (sd[..., :, None] * sd[..., None, :]), -1 + 1e-12, 1 - 1e-12)
    p = special.ndtr(a)
    out = r * p[..., :, None] * p[..., None, :]
    nodes, weights = np.polynomial.legendre.leggauss(LEGENDRE_NODES)
    for node, weight in zip(nodes, weights):
        t = 0.5 * r * (node + 1.0)
        rest = 1.0 - t * t
        density = np.exp(-(ai * ai - 2 * t * ai * aj + aj * aj) / (2 * rest)) / (2 * np.pi * np.sqrt(rest))
        out += 0.5 * r * weight * (r - t) * density
    return out * sd[..., :, None] * sd[..., None, :]


def monte_carlo(net, x, samples: int, layer: int, seed: int) -> dict:
    """Mean powers 1..4 of z and 1..2 of f per layer, and the realisations of z at ``layer - 1``."""
    rng = np.random.default_rng(seed)
    width = net.sizes[1]
    n = (samples // CHUNK) * CHUNK
    sums = {k: np.zeros((6, width)) for k in range(1, net.depth + 1)}     # z, z^2, z^3, z^4, f, f^2
    kept = np.empty((n, width))
    for start in range(0, n, CHUNK):
        y = np.broadcast_to(x, (CHUNK, x.size))
        for k, (w, b) in enumerate(zip(net.weights, net.biases), start=1):
            z = y @ w.T + b
            f = np.maximum(z, 0.0)
            y = f * (1.0 + np.sqrt(D) * rng.standard_normal(f.shape))
            sums[k] += np.stack([z, z**2, z**3, z**4, f, f**2]).sum(axis=1)
            if k == layer - 1:
                kept[start:start + CHUNK] = z
    return {"samples": n, "sums": {k: s / n for k, s in sums.items()}, "z": kept}


def joint_cumulant_terms(z: np.ndarray) -> tuple:
    """Mean, covariance and the Edgeworth terms of Cov[relu(z_i), relu(z_j)]
    (i != j) from the joint third cumulants k_iij, k_ijj of the realisations
    z (n, N): k_iij E[f_i''] E[f_j'] / 2 + k_ijj E[f_i'] E[f_j''] / 2, the
    expectations over a Gaussian with the same mean and variance (to leading
    order in the correlation)."""
    mean = z.mean(axis=0)
    dev = z - mean
    cov = dev.T @ dev / len(z)
    third = (dev * dev).T @ dev / len(z)                                      # k_iij = E[d_i^2 d_j]
    sd = np.sqrt(np.diag(cov))
    a = mean / sd
    slope, curvature = special.ndtr(a), np.exp(-0.5 * a * a) / (np.sqrt(2 * np.pi) * sd)
    half = 0.5 * third * curvature[:, None] * slope[None, :]
    return mean, cov, half + half.T


def cumulants(power: np.ndarray) -> tuple:
    """Mean, variance, third and fourth cumulants from the mean powers 1..4."""
    m1, m2, m3, m4 = power
    var = m2 - m1**2
    k3 = m3 - 3 * m1 * m2 + 2 * m1**3
    k4 = m4 - 4 * m1 * m3 + 6 * m1**2 * m2 - 3 * m1**4 - 3 * var**2
    return m1, var, k3, k4


def edgeworth_relu_var(mean, var, k3, k4) -> tuple:
    """Var relu(z) of a Gaussian with this mean and variance, and with the
    Edgeworth terms k3/6 E[g'''] + k4/24 E[g''''] added to E[relu] and
    E[relu^2] (expectations over the Gaussian, derivatives in the mean)."""
    sd = np.sqrt(var)
    a = mean / sd
    cdf, pdf = special.ndtr(a), np.exp(-0.5 * a * a) / np.sqrt(2 * np.pi)
    first = mean * cdf + sd * pdf
    second = (mean**2 + var) * cdf + mean * sd * pdf
    gaussian = second - first**2
    first += k3 / 6 * (-a * pdf / var) + k4 / 24 * (a * a - 1) * pdf / (var * sd)
    second += k3 / 6 * (2 * pdf / sd) + k4 / 24 * (-2 * a * pdf / var)
    return gaussian, second - first**2


def diagnose(samples: int, layer: int, seed: int) -> str:
    net, x = closure_matrix.networks(False)[NETWORK]
    noise = Noise(MU=D)
    mc = monte_carlo(net, x, samples, layer, seed)
    lines = [f"# The mixture on {NETWORK}, MU = {D:g} after the activation, layer {layer} "
             "(its former miss)", "",
             f"Plain NumPy Monte Carlo, {mc['samples']} realisations, seed {seed} "
             "(`benchmarks/closure_miss_diagnosis.py`); errors relative to it.", ""]

    def mc_noise_var(k):
        s = mc["sums"][k]
        f_mean, f_var = s[4], s[5] - s[4] ** 2
        return float(np.mean(f_var * (1 + D) + D * f_mean**2))   # y = f (1 + xi)

    base = predict(net, noise, x, method="mixture", error_estimate=False).noise_var
    original = mixture._activation

    def exact_activation(zbar, cov_z, activation, scale, shift, d_mu, d_au, count, skew_z=None, *rest):
        mean, cov, skew = original(zbar, cov_z, activation, scale, shift, d_mu, d_au, count, skew_z, *rest)
        if activation.name == "relu" and d_mu == 0 and d_au == 0 and not np.any(shift):
            diagonal = np.arange(zbar.shape[-1])
            mehler = original(zbar, cov_z, activation, scale, shift, d_mu, d_au, count)[1]
            exact = exact_relu_covariance(zbar * scale[:, None], cov_z * (scale * scale)[:, None, None])
            exact += cov - mehler                      # the Edgeworth terms of the co-skewness kept
            exact[:, diagonal, diagonal] = cov[:, diagonal, diagonal]
            cov = exact
        return mean, cov, skew

    mixture._activation = exact_activation
    try:
        exact = predict(net, noise, x, method="mixture", error_estimate=False).noise_var
    finally:
        mixture._activation = original
    lines += ["## 1. Mehler's truncation", "",
              "| layer | mixture | with exact bivariate ReLU covariances |", "| --- | --- | --- |"]
    for k in range(2, net.depth + 1):
        ref = mc_noise_var(k)
        lines.append(f"| {k} | {100 * (base[k] / ref - 1):+.2f} % | {100 * (exact[k] / ref - 1):+.2f} % |")

    w = net.weights[layer - 1]
    z = mc.pop("z")
    f = np.maximum(z, 0.0)
    f_mean = f.mean(axis=0)
    f_cov = (f - f_mean).T @ (f - f_mean) / len(f)
    z_mean, z_cov, skew_terms = joint_cumulant_terms(z)
    del z, f
    mix_cov = mixture.mixture_layers(net, per_layer_noise(noise, net.depth), x[None])[layer - 2][1][0]
    gaussian = exact_relu_covariance(z_mean[None], z_cov[None])[0]
    y_cov = f_cov * (1 + D * np.eye(f_cov.shape[0])) + D * np.diag(f_mean**2)  # Cov(y) from Cov(f)

    def z_var(cov):
        return float(np.mean(np.einsum("ij,jk,ik->i", w, cov, w)))

    def off(cov):
        return cov - np.diag(np.diag(cov))

    total = z_var(y_cov)
    lines += ["", f"## 2. The variance of layer {layer}'s pre-activations", "",
              f"- mixture against Monte Carlo: {100 * (z_var(mix_cov) / total - 1):+.2f} %, of which "
              f"{100 * (z_var(mix_cov - off(mix_cov)) - z_var(y_cov - off(y_cov))) / total:+.2f} points from "
              f"the diagonal of layer {layer - 1}'s output covariance and "
              f"{100 * (z_var(off(mix_cov)) - z_var(off(y_cov))) / total:+.2f} points from its off-diagonal",
              f"- off-diagonal part (covariances between layer {layer - 1}'s neurons): Monte Carlo "
              f"{z_var(off(f_cov)):.4g}, mixture {z_var(off(mix_cov)):.4g}, a Gaussian z_{layer - 1} with the "
              f"Monte Carlo mean and covariance {z_var(off(gaussian)):.4g}, and with the Edgeworth terms of "
              f"the joint third cumulants k_iij of z_{layer - 1} added {z_var(off(gaussian + skew_terms)):.4g}"]

    mean, var, k3, k4 = cumulants(mc["sums"][layer][:4])
    s = mc["sums"][layer]
    ratio = float(np.mean(s[5] - s[4] ** 2))           # the Monte Carlo layer-mean Var relu(z)
    plain, corrected = edgeworth_relu_var(mean, var, k3, k4)
    _, skew_only = edgeworth_relu_var(mean, var, k3, 0 * k4)
    _, kurt_only = edgeworth_relu_var(mean, var, 0 * k3, k4)
    skew, kurt = k3 / var**1.5, k4 / var**2
    if not np.allclose(plain, gaussian_moments(ReLU(), mean, var).var, rtol=1e-9):
        raise AssertionError("the rectified-Gaussian variance differs from noiseprop.moments'")
    lines += ["", f"## 3. The shape of layer {layer}'s pre-activations, per neuron", "",
              f"- excess kurtosis: median {np.median(kurt):.2f}, largest {np.max(kurt):.2f}; skewness: "
              f"5-95 % range {np.quantile(skew, 0.05):+.2f} to {np.quantile(skew, 0.95):+.2f}, correlation "
              f"with the standardised mean zbar / sd {np.corrcoef(skew, mean / np.sqrt(var))[0, 1]:.2f}",
              "- layer-mean Var relu(z) against Monte Carlo: Gaussian with each neuron's Monte Carlo mean "
              f"and variance {100 * (plain.mean() / ratio - 1):+.2f} %; with the Edgeworth terms of the "
              f"third and fourth cumulants {100 * (corrected.mean() / ratio - 1):+.2f} % (third alone "
              f"{100 * (skew_only.mean() / ratio - 1):+.2f} %, fourth alone {100 * (kurt_only.mean() / ratio - 1):+.2f} %)",
              ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400_000)
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--force", action="store_true", help="overwrite existing results")
    args = parser.parse_args(argv)
    if not 3 <= args.layer <= closure_matrix.DEPTHS[-1]:
        print(f"--layer must be in 3..{closure_matrix.DEPTHS[-1]}", file=sys.stderr)
        return 2
    [path] = result_paths(args.out, ["closure_miss_diagnosis.md"], args.force)  # now, not after the run
    text = diagnose(args.samples, args.layer, args.seed)
    write_results({path: text}, args.force)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
