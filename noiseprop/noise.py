"""Noise intensities of the noisy neurons (docs/model.md §2).

Four independent zero-mean Gaussian white noises act on every noisy neuron:
additive (A) and multiplicative (M), each uncorrelated (U: a draw per neuron)
or correlated (C: one draw per layer, shared by its neurons).  The intensity
D of each is its **variance** (standard deviation sqrt(D)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence, Union

__all__ = ["Noise", "NOISE_TYPES", "PLACEMENTS", "REFERENCE_INTENSITY", "per_layer_noise"]

#: The four noise types, in the order used everywhere.
NOISE_TYPES = ("AU", "AC", "MU", "MC")
#: Where the noise acts: on the output f(z) ("post") or on the pre-activation z ("pre").
PLACEMENTS = ("post", "pre")
#: Intensity of every noise type in the reference benchmark and the CLI's default noise.
REFERENCE_INTENSITY = 1e-3


@dataclass(frozen=True)
class Noise:
    """Noise intensities (variances) of one layer's neurons.

    Parameters
    ----------
    AU, AC : float, default 0
        Variance of the additive noise, uncorrelated (one draw per neuron) and
        correlated (one draw shared by the layer).  Units of the neuron
        output squared.
    MU, MC : float, default 0
        Variance of the multiplicative noise (dimensionless; the output is
        multiplied by 1 + xi), uncorrelated and correlated.
    placement : {"post", "pre"}, default "post"
        "post": y = f(z) (1 + xi_MU + xi_MC) + xi_AU + xi_AC.
        "pre": y = f(z (1 + xi_MU + xi_MC) + xi_AU + xi_AC).

    Examples
    --------
    >>> Noise(AU=1e-3, MC=1e-4)
    Noise(AU=0.001, AC=0.0, MU=0.0, MC=0.0001, placement='post')
    """

    AU: float = 0.0
    AC: float = 0.0
    MU: float = 0.0
    MC: float = 0.0
    placement: str = "post"

    def __post_init__(self) -> None:
        for name in NOISE_TYPES:
            value = getattr(self, name)
            try:
                if isinstance(value, complex) or getattr(getattr(value, "dtype", None), "kind", "") == "c":
                    raise TypeError("complex")  # float() would drop the imaginary part
                value = float(value)
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"noise intensity {name} must be a number, got {value!r}") from None
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"noise intensity {name} must be a finite variance >= 0, got {value}"
                )
            object.__setattr__(self, name, value)
        if self.placement not in PLACEMENTS:
            raise ValueError(
                f"noise placement must be one of {PLACEMENTS}, got {self.placement!r}"
            )

    @property
    def intensities(self) -> dict[str, float]:
        """``{"AU": D_AU, "AC": D_AC, "MU": D_MU, "MC": D_MC}``."""
        return {name: getattr(self, name) for name in NOISE_TYPES}

    @property
    def is_zero(self) -> bool:
        """True when every intensity is zero."""
        return not any(self.intensities.values())

    @property
    def has_uncorrelated(self) -> bool:
        """True when some noise is drawn per neuron (AU > 0 or MU > 0): the part
        that pooling K copies of a neuron averages down."""
        return self.AU > 0 or self.MU > 0

    @property
    def has_correlated(self) -> bool:
        """True when some noise is one draw shared by the layer (AC > 0 or MC > 0):
        the part that a ghost neuron cancels."""
        return self.AC > 0 or self.MC > 0

    @property
    def has_multiplicative(self) -> bool:
        """True when some noise scales the neuron's output (MU > 0 or MC > 0), so
        that its variance depends on the signal (and on the signal's own noise)."""
        return self.MU > 0 or self.MC > 0

    def scaled(self, factor: float) -> "Noise":
        """The same noise with every intensity multiplied by ``factor``."""
        return replace(self, **{k: v * factor for k, v in self.intensities.items()})


NoiseSpec = Union[Noise, Sequence[Noise]]


def per_layer_noise(noise: NoiseSpec, depth: int) -> tuple[Noise, ...]:
    """Expand a noise spec to one :class:`Noise` per layer 1..depth.

    A single :class:`Noise` applies to every layer; a sequence must hold
    exactly ``depth`` of them (``None`` entries mean a noise-free layer).
    """
    if isinstance(noise, Noise):
        return (noise,) * depth
    if isinstance(noise, (str, bytes)) or not isinstance(noise, Sequence):
        raise ValueError(
            f"noise must be a Noise or a sequence of {depth} Noise objects, got {type(noise).__name__}"
        )
    if len(noise) != depth:
        raise ValueError(
            f"noise sequence has {len(noise)} entries, the network has {depth} layers "
            "(one Noise per layer 1..L)"
        )
    layers = []
    for k, item in enumerate(noise, start=1):
        if item is None:
            item = Noise()
        if not isinstance(item, Noise):
            raise ValueError(f"noise of layer {k} must be a Noise, got {type(item).__name__}")
        layers.append(item)
    return tuple(layers)

