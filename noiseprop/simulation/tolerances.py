"""Default tolerances of :func:`~noiseprop.simulation.verification.verify`
(a light module: the CLI reads them without importing the numba engine).

Why these values (see ``docs/verification.md``):

- a noise *variance* known to 5 % is known to 0.2 dB of SNR, finer than the
  margins of a noise budget and than the spread between devices of one kind;
- a *mean* off by b noise standard deviations adds b^2 to the neuron's mean
  squared deviation from the predicted mean (Var + bias^2 = Var (1 + b^2)):
  b = 0.2 adds 4 %, within the 5 % accepted on the variance.  (0.1 sd is
  too tight for first-order predictions of trained sigmoid networks at
  D = 1e-3: the shipped network's linear-response means are off by up to
  0.116 sd, a verdict that 400 000 samples resolve although every
  variance is within 4.4 %.)
"""
from __future__ import annotations

__all__ = ["DEFAULT_RTOL", "DEFAULT_MEAN_TOL", "FLOAT_RTOL"]

#: Tolerance of a variance (a neuron's, or a layer's mean noise variance),
#: relative to the predicted value.
DEFAULT_RTOL = 0.05
#: Tolerance of a neuron's mean, in units of its predicted noise standard deviation.
DEFAULT_MEAN_TOL = 0.2
#: Relative floor of every tolerance: the rounding of the compiled kernels
#: (e.g. exp) against NumPy/SciPy, far below any sampling error.
FLOAT_RTOL = 1e-9
