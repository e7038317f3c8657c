"""One seed convention for every random result of noiseprop.

A seed may be a non-negative integer, a :class:`numpy.random.SeedSequence` or a
:class:`numpy.random.Generator`; the same seed gives the same numbers whatever
the number of threads.  A Generator is consumed (one 64-bit draw) to derive
the seed, so passing the same Generator twice gives different, reproducible
streams.
"""
from __future__ import annotations

import operator

import numpy as np

__all__ = ["SeedLike", "seed_sequence", "seed_key", "spawn_seeds", "int_seed"]

SeedLike = "int | np.random.SeedSequence | np.random.Generator"


def seed_sequence(seed, name: str = "seed") -> np.random.SeedSequence:
    """The :class:`~numpy.random.SeedSequence` of a seed (int >= 0, SeedSequence or Generator)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2**63)))
    try:
        if isinstance(seed, bool):
            raise TypeError
        value = operator.index(seed)
    except TypeError:
        raise ValueError(
            f"{name} must be a non-negative integer, a numpy SeedSequence or a Generator, got {seed!r}"
        ) from None
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}")
    return np.random.SeedSequence(value)


def seed_key(seed) -> np.uint64:
    """The 64-bit key of the counter-based random streams of the Monte Carlo kernels."""
    return seed_sequence(seed).generate_state(1, dtype=np.uint64)[0]


def spawn_seeds(seed, count: int) -> list[int]:
    """``count`` independent integer seeds derived from ``seed`` (one per chunk, point or run)."""
    return [int(child.generate_state(1)[0]) for child in seed_sequence(seed).spawn(count)]


def int_seed(seed) -> int:
    """An integer in [0, 2**64) for libraries that take one (e.g. ``torch.Generator.manual_seed``)."""
    if isinstance(seed, (np.random.SeedSequence, np.random.Generator)):
        return int(seed_sequence(seed).generate_state(1, dtype=np.uint64)[0])
    sequence = seed_sequence(seed)
    value = int(sequence.entropy)
    if value >= 2**64:
        raise ValueError(f"seed must be a non-negative integer below 2**64, got {value}")
    return value
