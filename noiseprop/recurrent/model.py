"""The recurrent network (echo state network / leaky RNN) and its file format.

State x_t (N reservoir neurons), input u_t (N_in values), output y_t (N_out):

    z_t = W_in u_t + W x_{t-1} + b
    x_t = (1 - a) x_{t-1} + a F(z_t)            (leak rate a in (0, 1]; a = 1: plain RNN)
    y_t = W_out x_t + b_out

F is the activation f with the neuron noise of the feed-forward model
(:class:`~noiseprop.noise.Noise`, post or pre placement), drawn afresh at
every step; correlated noise is shared by the reservoir at that step.  The
readout may carry noise of its own (``output_noise``).  *Driven*: u_t is
given.  *Self-closed* (``feedback=True``, N_out = N_in): after a warm-up
driven by data, u_t = y_{t-1} (autonomous generation).  The initial state
x_0 is noise-free (zeros unless given).

File format (``.npz``, written atomically): ``kind = "recurrent"``,
``W_in``, ``W``, ``W_out``, ``b``, ``b_out``, ``leak``, ``activation`` (a
spec string), ``feedback`` and optionally ``u`` (an input sequence
(T, N_in)).
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ..activations import Activation, get_activation
from ..utils.resources import FLOAT, check_memory, check_run_time
from ..utils.seeds import seed_sequence
from ..utils.validation import finite_number as _finite_number
from ..utils.validation import positive_int as _positive_int

__all__ = [
    "RecurrentNetwork",
    "echo_state_network",
    "save_recurrent",
    "load_recurrent",
    "is_recurrent_file",
    "as_sequence",
]

#: Value of the ``kind`` entry that marks a recurrent-network ``.npz`` file.
FILE_KIND = "recurrent"


class RecurrentNetwork:
    """A leaky recurrent network (echo state network) with a linear readout.

    Build it with ``RecurrentNetwork(W_in, W, W_out, ...)`` (the same as :meth:`from_arrays`,
    which documents and validates the arguments) or :func:`echo_state_network`.

    Attributes
    ----------
    W_in : ndarray (N, N_in)
        Input weights.
    W : ndarray (N, N)
        Reservoir (recurrent) weights.
    W_out : ndarray (N_out, N)
        Readout weights.
    bias : ndarray (N,)
    output_bias : ndarray (N_out,)
    leak : float
        Leak rate a in (0, 1].
    activation : Activation
        f of every reservoir neuron.
    feedback : bool
        Whether the network runs self-closed after its driven warm-up
        (u_t = y_{t-1}); needs N_out = N_in.
    n, n_in, n_out : int
        N, N_in, N_out.
    """

    def __init__(self, W_in, W, W_out, bias=None, output_bias=None, leak: float = 1.0,
                 activation: "str | Activation" = "tanh", feedback: bool = False):
        """Validated copies of the arrays, as :meth:`from_arrays` describes (the caller's arrays are
        neither kept nor made read-only)."""
        W_in, W, W_out, bias, output_bias, leak, activation, feedback = _validated(
            W_in, W, W_out, bias, output_bias, leak, activation, feedback)
        self.W_in, self.W, self.W_out = W_in, W, W_out
        self.bias, self.output_bias = bias, output_bias
        self.leak = leak
        self.activation = activation
        self.feedback = feedback
        self.n, self.n_in = W_in.shape
        self.n_out = W_out.shape[0]
        for array in (W_in, W, W_out, bias, output_bias):
            array.setflags(write=False)

    @classmethod
    def from_arrays(
        cls,
        W_in,
        W,
        W_out,
        bias=None,
        output_bias=None,
        leak: float = 1.0,
        activation: "str | Activation" = "tanh",
        feedback: bool = False,
    ) -> "RecurrentNetwork":
        """Build a recurrent network from its matrices.

        Parameters
        ----------
        W_in : array_like (N, N_in)
        W : array_like (N, N), square
        W_out : array_like (N_out, N)
        bias : array_like (N,), optional (zeros)
        output_bias : array_like (N_out,), optional (zeros)
        leak : float in (0, 1], default 1
        activation : str or Activation, default "tanh"
            Names or specs as for :class:`~noiseprop.model.Network`, e.g.
            "linear(slope=0.9)".
        feedback : bool, default False
            Self-closed operation after the warm-up (needs N_out = N_in).

        Raises
        ------
        ValueError
            Naming the matrix and the shapes when they do not fit together,
            a non-finite entry, a leak outside (0, 1] or a bad activation.
        """
        return cls(W_in, W, W_out, bias, output_bias, leak, activation, feedback)

    @property
    def loop_matrix(self) -> np.ndarray:
        """W + W_in W_out: the recurrence of the self-closed loop (feedback)."""
        return self.W + self.W_in @ self.W_out

    def forward(self, u, generate: int = 0, x0=None) -> tuple[np.ndarray, np.ndarray]:
        """Noise-free states and outputs.

        Parameters
        ----------
        u : array_like (T, N_in)
            Driving inputs u_1..u_T (warm-up of a self-closed network).
        generate : int, default 0
            Self-closed steps after u (only with ``feedback``).
        x0 : array_like (N,), optional
            Initial state (zeros).

        Returns
        -------
        states, outputs : ndarray (T + generate + 1, N), (T + generate + 1, N_out)
            Row t is time step t; row 0 is the initial state and its output.
        """
        u, generate, x = self.check_run(u, generate, x0)
        total = u.shape[0] + generate
        states, outputs = np.empty((total + 1, self.n)), np.empty((total + 1, self.n_out))
        states[0], outputs[0] = x, self.W_out @ x + self.output_bias
        a, f = self.leak, self.activation
        for t in range(1, total + 1):
            drive = u[t - 1] if t <= u.shape[0] else outputs[t - 1]
            x = (1.0 - a) * x + a * f(self.W_in @ drive + self.W @ x + self.bias)
            states[t], outputs[t] = x, self.W_out @ x + self.output_bias
        return states, outputs

    def check_run(self, u, generate, x0) -> tuple[np.ndarray, int, np.ndarray]:
        """Validated (u (T, N_in), generate, x0 (N,)) for a run of this network."""
        generate = _non_negative_int("generate", generate)
        if generate and not self.feedback:
            raise ValueError(
                f"generate={generate} self-closed steps need a network built with feedback=True"
            )
        u = as_sequence(u, self.n_in, allow_empty=generate > 0)
        if x0 is None:
            x0 = np.zeros(self.n)
        else:
            x0 = _vector("x0", x0, self.n)
        return u, generate, x0

    @property
    def is_affine(self) -> bool:
        """True for an affine activation (the analytic propagation is exact)."""
        return self.activation.is_affine

    def spectral_radius(self) -> float:
        """Spectral radius of W."""
        return float(np.max(np.abs(np.linalg.eigvals(self.W))))

    def __repr__(self) -> str:
        mode = ", feedback" if self.feedback else ""
        return (f"RecurrentNetwork({self.n_in}-{self.n}-{self.n_out}; activation {self.activation.spec}, "
                f"leak {self.leak:g}{mode})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecurrentNetwork):
            return NotImplemented
        arrays = ("W_in", "W", "W_out", "bias", "output_bias")
        return (self.activation == other.activation and self.leak == other.leak
                and self.feedback == other.feedback
                and all(np.array_equal(getattr(self, k), getattr(other, k)) for k in arrays))

    __hash__ = None


def require_recurrent(net) -> None:
    """A ValueError unless ``net`` is a :class:`RecurrentNetwork`."""
    if not isinstance(net, RecurrentNetwork):
        raise ValueError(f"net must be a noiseprop.recurrent.RecurrentNetwork, got {type(net).__name__}")


def as_sequence(u, n_in: int, allow_empty: bool = False) -> np.ndarray:
    """An input sequence as a float array (T, N_in); (T,) is read as T steps of one input.

    Raises
    ------
    ValueError
        For a wrong shape, an empty sequence (unless allowed) or a non-finite
        entry (naming the first bad step).
    """
    try:
        array = np.array(u, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"input sequence u must be numeric, got {type(u).__name__}") from None
    if array.ndim == 1 and n_in == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != n_in:
        raise ValueError(f"input sequence u has shape {array.shape}; the network expects (T, {n_in}) "
                         f"(one row of {n_in} inputs per time step)")
    if array.shape[0] == 0 and not allow_empty:
        raise ValueError("input sequence u is empty; give at least one time step")
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"input sequence u has a non-finite entry (nan or inf) at step {bad[0][0] + 1}, "
                         f"input {bad[0][1]}")
    return array


#: N x N arrays :func:`echo_state_network` holds at once: W, and the band's index arrays and
#: their temporaries (5 measured by tracemalloc at N = 400), plus the eigenvalue solver's copy of W.
ESN_ARRAYS = 6
#: Operations of the eigenvalues of W, per N^3 (Hessenberg reduction and QR iterations).
EIGENVALUE_OPERATIONS = 10


def echo_state_network(
    n: int,
    n_in: int = 1,
    n_out: int = 1,
    spectral_radius: float = 0.9,
    density: "float | None" = None,
    bandwidth: "int | None" = None,
    input_scale: float = 1.0,
    seed: int = 0,
    *,
    leak: float = 1.0,
    activation: "str | Activation" = "tanh",
    feedback: bool = False,
    bias_scale: float = 0.0,
) -> RecurrentNetwork:
    """A random echo state network: uniform or band reservoir.

    Reservoir entries are uniform in [-1, 1]; ``density`` keeps a random
    fraction of them (random-uniform reservoir) and ``bandwidth`` keeps only
    the band |i - j| <= bandwidth (band reservoir); W is then rescaled to the
    given spectral radius.  W_in is uniform in [-input_scale, input_scale],
    the biases uniform in [-bias_scale, bias_scale], and W_out uniform in
    [-1, 1] / N (a placeholder until a readout is trained, e.g. with
    :func:`noiseprop.recurrent.training.ridge_readout`).

    Parameters
    ----------
    n, n_in, n_out : int
        Reservoir, input and output sizes.
    spectral_radius : float > 0, default 0.9
    density : float in (0, 1], optional
        Fraction of non-zero reservoir weights (dense when omitted).
    bandwidth : int >= 0, optional
        Band reservoir: non-zero only for |i - j| <= bandwidth.
    input_scale : float, default 1
    seed : int, SeedSequence or Generator, default 0
    leak, activation, feedback :
        As for :meth:`RecurrentNetwork.from_arrays`.
    bias_scale : float, default 0

    Raises
    ------
    ValueError
        For bad sizes or parameters, or a reservoir whose spectral radius is 0
        (too sparse to rescale).
    ResourceLimit
        (a ValueError) Before any allocation, when the N x N reservoir and its
        temporaries would exceed the memory limit, or its eigenvalues the
        run-time limit (:mod:`noiseprop.utils.resources`).
    """
    n, n_in, n_out = (_positive_int(name, v) for name, v in (("n", n), ("n_in", n_in), ("n_out", n_out)))
    what = f"n={n}: a random reservoir of {n} neurons"
    check_memory(ESN_ARRAYS * FLOAT * n * n, f"{what} (N x N weights and their temporaries)", "use a smaller n")
    check_run_time(EIGENVALUE_OPERATIONS * n**3, f"{what} (the eigenvalues of its N x N weights)", "use a smaller n")
    radius = _finite_number("spectral_radius", spectral_radius)
    if radius <= 0:
        raise ValueError(f"spectral_radius must be > 0, got {radius}")
    rng = np.random.default_rng(seed_sequence(seed))
    W = rng.uniform(-1.0, 1.0, (n, n))
    if density is not None:
        density = _finite_number("density", density)
        if not 0.0 < density <= 1.0:
            raise ValueError(f"density must lie in (0, 1], got {density}")
        W *= rng.random((n, n)) < density
    if bandwidth is not None:
        bandwidth = _non_negative_int("bandwidth", bandwidth)
        rows, cols = np.indices((n, n))
        W *= np.abs(rows - cols) <= bandwidth
    current = float(np.max(np.abs(np.linalg.eigvals(W))))
    if current < 1e-12:
        sparsity = f"density={density}" if density is not None else f"bandwidth={bandwidth}"
        raise ValueError(f"{sparsity} leaves the random reservoir with spectral radius 0 (nothing to rescale); "
                         "make it denser")
    W *= radius / current
    scale = _finite_number("input_scale", input_scale)
    W_in = rng.uniform(-scale, scale, (n, n_in))
    bias = rng.uniform(-1.0, 1.0, n) * _finite_number("bias_scale", bias_scale)
    W_out = rng.uniform(-1.0, 1.0, (n_out, n)) / n
    return RecurrentNetwork.from_arrays(W_in, W, W_out, bias, None, leak, activation, feedback)


def save_recurrent(path: "str | os.PathLike", net: RecurrentNetwork, u=None, overwrite: bool = False) -> Path:
    """Write ``net`` (and optionally an input sequence ``u``) to an ``.npz`` file
    (module docstring), atomically; an existing file is replaced only with
    ``overwrite=True``."""
    from ..utils.files import atomic_write

    require_recurrent(net)
    arrays = dict(kind=np.array(FILE_KIND), W_in=net.W_in, W=net.W, W_out=net.W_out, b=net.bias,
                  b_out=net.output_bias, leak=np.array(net.leak), activation=np.array(net.activation.spec),
                  feedback=np.array(net.feedback))
    if u is not None:
        arrays["u"] = as_sequence(u, net.n_in)
    return atomic_write(path, lambda handle: np.savez(handle, **arrays), overwrite=overwrite)


def is_recurrent_file(path: "str | os.PathLike") -> bool:
    """Whether ``path`` is an ``.npz`` file holding a recurrent network."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return "kind" in data.files and str(data["kind"]) == FILE_KIND
    except (OSError, ValueError, zipfile.BadZipFile):
        return False


def load_recurrent(path: "str | os.PathLike", return_input: bool = False):
    """Read a recurrent network written by :func:`save_recurrent`.

    Returns
    -------
    RecurrentNetwork, or (RecurrentNetwork, ndarray or None) with ``return_input``.

    Raises
    ------
    ValueError
        Naming the file and the missing or malformed entry.
    """
    from ..io.arrays import read_npz

    arrays = read_npz(path, "recurrent network file")
    if str(arrays.get("kind", "")) != FILE_KIND:
        raise ValueError(f"{path}: not a recurrent network file (no kind='{FILE_KIND}' entry)")
    missing = [key for key in ("W_in", "W", "W_out") if key not in arrays]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    try:
        net = RecurrentNetwork.from_arrays(
            arrays["W_in"], arrays["W"], arrays["W_out"], arrays.get("b"), arrays.get("b_out"),
            float(arrays.get("leak", 1.0)), str(arrays.get("activation", "tanh")),
            bool(arrays.get("feedback", False)),
        )
        u = arrays.get("u")
        if u is not None:
            u = as_sequence(u, net.n_in)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: {err}") from None
    return (net, u) if return_input else net


def _non_negative_int(name: str, value) -> int:
    try:
        valid = not isinstance(value, (bool, np.bool_)) and int(value) == value and value >= 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _validated(W_in, W, W_out, bias, output_bias, leak, activation, feedback) -> tuple:
    """The arguments of :meth:`RecurrentNetwork.from_arrays` as float arrays, a float leak, an
    Activation and a bool; a ValueError naming the matrix and shapes for anything else."""
    W = _matrix("W", W)
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"W (reservoir weights) must be square (N, N), got shape {W.shape}")
    n = W.shape[0]
    W_in = _matrix("W_in", W_in)
    if W_in.shape[0] != n:
        raise ValueError(
            f"W_in has shape {W_in.shape}: it needs {n} rows, one per reservoir neuron (W is {W.shape})"
        )
    W_out = _matrix("W_out", W_out)
    if W_out.shape[1] != n:
        raise ValueError(
            f"W_out has shape {W_out.shape}: it needs {n} columns, one per reservoir neuron (W is {W.shape})"
        )
    bias = _vector("bias", np.zeros(n) if bias is None else bias, n)
    output_bias = _vector("output_bias", np.zeros(W_out.shape[0]) if output_bias is None else output_bias,
                          W_out.shape[0])
    leak = _finite_number("leak", leak)
    if not 0.0 < leak <= 1.0:
        raise ValueError(f"leak must lie in (0, 1] (a = 1: no leak), got {leak}")
    try:
        activation = get_activation(activation)
    except ValueError as err:
        raise ValueError(f"activation: {err}") from None
    if not isinstance(feedback, (bool, np.bool_)):
        raise ValueError(f"feedback must be True or False, got {feedback!r}")
    if feedback and W_out.shape[0] != W_in.shape[1]:
        raise ValueError(
            f"feedback=True feeds the output back as input: W_out has {W_out.shape[0]} outputs "
            f"but W_in takes {W_in.shape[1]} inputs (N_out must equal N_in)"
        )

    return W_in, W, W_out, bias, output_bias, leak, activation, bool(feedback)


def _matrix(name: str, value) -> np.ndarray:
    try:
        raw = np.asarray(value)
        if raw.dtype.kind == "c":
            raise ValueError(f"{name} must be real numbers, got a complex array")
        array = np.array(raw, dtype=float)
    except (TypeError, ValueError) as err:
        if "complex" in str(err):
            raise
        raise ValueError(f"{name} must be a numeric matrix") from None
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(f"{name} has a non-finite entry at {bad}")
    return array


def _vector(name: str, value, n: int) -> np.ndarray:
    try:
        array = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric") from None
    if array.shape != (n,):
        raise ValueError(f"{name} has shape {array.shape}, expected ({n},)")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has a non-finite entry")
    return array
