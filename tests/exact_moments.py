"""Exact moments of affine noisy networks by brute-force symbolic expansion.

An independent computation for testing ``predict``: every neuron output of an
affine network of noisy neurons is a multilinear polynomial in the independent
zero-mean noise variables (each enters at most linearly).  With the polynomial
written as {frozenset(variables): coefficient}, E[p] is the constant term and
Cov(p, q) = sum over non-empty monomials S of p[S] q[S] prod_{v in S} D_v.
No covariance recursion is used.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

EMPTY = frozenset()


class Polynomials:
    """Noise variables (their variances) and multilinear polynomial algebra."""

    def __init__(self):
        self.variances: list[float] = []

    def variable(self, variance: float) -> dict:
        if variance == 0.0:
            return {}
        self.variances.append(variance)
        return {frozenset([len(self.variances) - 1]): 1.0}

    @staticmethod
    def add(*polys) -> dict:
        out = defaultdict(float)
        for p in polys:
            for key, c in p.items():
                out[key] += c
        return dict(out)

    @staticmethod
    def scale(p: dict, c: float) -> dict:
        return {key: c * v for key, v in p.items()}

    @staticmethod
    def multiply(p: dict, q: dict) -> dict:
        out = defaultdict(float)
        for kp, cp in p.items():
            for kq, cq in q.items():
                if kp & kq:
                    raise AssertionError("noise variable appears twice: not multilinear")
                out[kp | kq] += cp * cq
        return dict(out)

    def covariance(self, p: dict, q: dict) -> float:
        total = 0.0
        for key, c in p.items():
            if key and key in q:
                total += c * q[key] * np.prod([self.variances[v] for v in key])
        return total


def exact_moments(weights, biases, slopes, offsets, noises, x):
    """Mean and covariance of every layer of an affine noisy network.

    ``noises`` holds one noiseprop.Noise per layer (placement "post" or "pre").
    Returns lists (indexed by layer 0..L) of mean vectors and covariance matrices.
    """
    algebra = Polynomials()
    y = [{EMPTY: float(v)} for v in x]
    layers = [y]
    for w, b, slope, offset, noise in zip(weights, biases, slopes, offsets, noises):
        z = [
            algebra.add({EMPTY: float(b[i])}, *(algebra.scale(y[j], float(w[i, j])) for j in range(len(y))))
            for i in range(w.shape[0])
        ]
        mc, ac = algebra.variable(noise.MC), algebra.variable(noise.AC)

        def noisy(signal):
            factor = algebra.add({EMPTY: 1.0}, algebra.variable(noise.MU), mc)
            return algebra.add(algebra.multiply(signal, factor), algebra.variable(noise.AU), ac)

        def affine(p):
            return algebra.add(algebra.scale(p, slope), {EMPTY: offset})

        if noise.placement == "post":
            y = [noisy(affine(zi)) for zi in z]
        else:
            y = [affine(noisy(zi)) for zi in z]
        layers.append(y)
    means = [np.array([p.get(EMPTY, 0.0) for p in layer]) for layer in layers]
    covs = [np.array([[algebra.covariance(p, q) for q in layer] for p in layer]) for layer in layers]
    return means, covs
