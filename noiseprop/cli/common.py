"""Options and helpers shared by the CLI commands."""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ..noise import NOISE_TYPES, PLACEMENTS, REFERENCE_INTENSITY, Noise
from ..utils.validation import noise_overflow_message

if TYPE_CHECKING:
    from ..model import Network

__all__ = [
    "EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "EXIT_INTERNAL", "CLIError", "add_network_options",
    "add_resource_options", "seed_value", "count_value", "finite_value", "output_path", "input_path",
    "check_noise_scale", "add_noise_options", "network_from_args",
    "noise_from_args", "describe_noise", "noise_text", "print_network_and_noise", "print_json",
    "refuse_existing", "add_quiet_option", "progress_from_args", "option_message",
]

#: Exit status for bad input, an unreadable or unsafe file, a missing optional
#: dependency or a resource limit (1 is reserved for a failed check).
EXIT_BAD_INPUT = 2
#: Exit status for an unexpected internal error (a bug: please report it).
EXIT_INTERNAL = 3
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


class CLIError(ValueError):
    """Bad command-line input (exit code 2)."""


#: An API error that begins with a parameter name: ``eval_levels must ...``,
#: ``hidden[1] must ...``, ``generate=3 ...``.
_PARAMETER_FIRST = re.compile(r"(?P<name>[A-Za-z_]\w*)(?:\[(?P<index>\d+)\])?(?= must\b|=)")


def option_message(message: str, options: Mapping[str, str]) -> str:
    """``message`` naming the command-line option instead of the API parameter it begins with.

    ``options`` maps parameter names to options (the command's
    ``parameter_options``, set up by :func:`noiseprop.cli.build_parser`):
    "eval_levels must be positive ..." becomes "--eval-levels must be
    positive ...", "hidden[1] must be ..." becomes "--hidden (value 2) must
    be ...".  Other messages are returned unchanged.
    """
    match = _PARAMETER_FIRST.match(message)
    if match is None or match["name"] not in options:
        return message
    entry = "" if match["index"] is None else f" (value {int(match['index']) + 1})"
    return f"{options[match['name']]}{entry}{message[match.end():]}"


# ------------------------------------------------------------ argument types
# (argparse reports their errors as "argument --OPTION: ...", naming the option)


def seed_value(text: str) -> int:
    """A random seed: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"the seed must be a non-negative integer, got {text}")
    return value


def count_value(text: str) -> int:
    """A count (samples, epochs, batch size): an integer >= 1 (also written 1e5)."""
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if not (np.isfinite(number) and number.is_integer()):
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
        value = int(number)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def finite_value(text: str) -> float:
    """A finite real number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def output_path(text: str) -> Path:
    """An output file: a non-empty path (an empty one would silently write nothing)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the output path is empty")
    return Path(text)


def input_path(text: str) -> Path:
    """An input file: a non-empty path."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the file name is empty")
    return Path(text)


def add_resource_options(parser: argparse.ArgumentParser) -> None:
    """``--max-memory`` and ``--max-time`` (read by the CLI's main())."""
    group = parser.add_argument_group("resource limits (a job over a limit is refused before it starts, exit 2)")
    group.add_argument(
        "--max-memory", metavar="SIZE",
        help="memory a job may allocate, e.g. 4G, 512M or 80%% (of the available memory); default: "
        "NOISEPROP_MAX_MEMORY or 50%% of the available memory",
    )
    group.add_argument(
        "--max-time", metavar="DURATION",
        help="estimated run time a job may take, e.g. 600, 30m, 2h; default: NOISEPROP_MAX_TIME or 1d",
    )


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """Options that choose the network, its input and its noise."""
    group = parser.add_argument_group("network and input")
    group.add_argument(
        "network", nargs="?", type=input_path,
        help="network file: .npz (W1..WL, b1..bL, activations, optional x), .onnx, or .pt/.pth "
        "(a saved torch nn.Sequential, read safely: only Sequential, Linear, Sigmoid, Tanh, ReLU, "
        "Identity, Flatten, Dropout; see --trust-pickle); default: the shipped trained digits network "
        "64-100-100-100-10 and its stored test digit",
    )
    add_trust_option(group)
    group.add_argument(
        "--reference", action="store_true",
        help="the reference benchmark network 784-100-100-100-100-10 (random weights) instead",
    )
    group.add_argument(
        "--symmetric", metavar="DEPTH,WIDTH,WEIGHT,BIAS,ACTIVATION",
        help="a symmetric network instead, e.g. 10,100,0.01,0,linear(slope=0.9)",
    )
    source = group.add_mutually_exclusive_group()
    source.add_argument("--input", type=input_path, metavar="FILE", help="input vector (.npy or text)")
    source.add_argument("--input-value", type=finite_value, metavar="V", help="every input equal to V")
    add_noise_options(parser)
    add_resource_options(parser)


def add_trust_option(parser) -> None:
    """``--trust-pickle``: unpickle .pt/.pth files with code execution (the old, unsafe way)."""
    parser.add_argument(
        "--trust-pickle", action="store_true",
        help="read a .pt/.pth file with full pickle (torch.load(weights_only=False)). RISK: the file "
        "can run any code with your permissions while it loads; use only for files you made or fully "
        "trust. Without it, files with other classes than the supported modules are refused",
    )


def add_noise_options(parser: argparse.ArgumentParser) -> None:
    """Options that set the noise intensities and placement (read by :func:`noise_from_args`)."""
    noise = parser.add_argument_group(
        "noise (variances; a number for every layer or L comma-separated numbers; "
        f"with no noise option, all four types at {REFERENCE_INTENSITY:g})"
    )
    for name, text in zip(NOISE_TYPES, (
        "additive uncorrelated", "additive correlated",
        "multiplicative uncorrelated", "multiplicative correlated",
    )):
        noise.add_argument(f"--{name}", metavar="D", help=f"{text} noise intensity")
    noise.add_argument("--noise", metavar="D", help="set all four intensities")
    noise.add_argument("--placement", choices=PLACEMENTS, default="post",
                       help="noise after the activation (post, default) or before it (pre)")


def network_from_args(args) -> tuple[Network, np.ndarray]:
    from ..io.builtin import default_network, reference_network
    """The network and its input chosen by :func:`add_network_options`."""
    from ..io.arrays import read_vector
    from ..io.networks import load_model

    chosen = [name for name, given in (("a network file", args.network), ("--symmetric", args.symmetric),
                                       ("--reference", args.reference)) if given]
    if len(chosen) > 1:
        raise CLIError(f"give one network: {' and '.join(chosen)} were both given")
    stored_x = None
    if args.symmetric:
        net = _symmetric_from_text(args.symmetric)
    elif args.network:
        net, stored_x = load_model(args.network, return_input=True, trust=args.trust_pickle)
    elif args.reference:
        net, stored_x, _ = reference_network()
    else:
        net, stored_x = default_network(return_input=True)
    if args.input is not None:
        x = read_vector(args.input, "--input vector")
    elif args.input_value is not None:
        x = np.full(net.sizes[0], args.input_value)
    elif stored_x is not None:
        x = stored_x
    else:
        x = np.ones(net.sizes[0])
    if np.ndim(x) != 1 or len(x) != net.sizes[0]:
        raise CLIError(f"input has shape {np.shape(x)}; the network expects ({net.sizes[0]},)")
    return net, x


def noise_from_args(args, depth: int) -> list[Noise]:
    """One Noise per layer from the noise options."""
    # {type: (the option that set it, its text)}, so that an error names the option given
    given = {name: (f"--{name}", getattr(args, name)) for name in NOISE_TYPES
             if getattr(args, name) is not None}
    if args.noise is not None:
        given = {name: given.get(name, ("--noise", args.noise)) for name in NOISE_TYPES}
    elif not given:
        given = {name: (name, str(REFERENCE_INTENSITY)) for name in NOISE_TYPES}
    per_layer = {name: _per_layer_values(option, text, depth) for name, (option, text) in given.items()}
    try:
        return [
            Noise(**{name: values[k] for name, values in per_layer.items()}, placement=args.placement)
            for k in range(depth)
        ]
    except ValueError as err:
        raise CLIError(f"{noise_options_given(args)}: {err}") from None


def noise_options_given(args) -> str:
    """The noise options on the command line, for messages (e.g. "--noise" or "--AU, --MC")."""
    given = [f"--{name}" for name in (*NOISE_TYPES, "noise") if getattr(args, name, None) is not None]
    return ", ".join(given) or "the default noise"


def check_noise_scale(args, net: Network, x, noise: Sequence[Noise], method: str = "linear") -> None:
    """A CLIError naming the noise option(s) when the predicted noise variance overflows.

    Intensities are variances: one of 1e300 squares to inf in the next layer,
    and every statistic after it is meaningless (inf or nan).  Judged on the
    method the command uses (every method is finite wherever the exact
    statistics of an affine network are).  Problems of
    the noise-free network are left to the command (they are not the noise's):
    only when the noisy prediction fails is the noise-free one run, to tell which.
    """
    from ..propagation import predict

    try:
        with np.errstate(all="ignore"):
            var = predict(net, noise, x, method=method, error_estimate=False).var
    except ValueError as err:
        problem = f"{err}; intensities are variances: use smaller values"
    else:
        overflowing = [k for k in range(1, net.depth + 1) if not np.all(np.isfinite(var[k]))]
        if not overflowing:
            return
        problem = noise_overflow_message(f"the noise variance in layer {overflowing[0]}")
    if _fails_without_noise(net, x, method):
        return  # not the noise's fault: the command reports it in its own words
    raise CLIError(f"{noise_options_given(args)}: {problem}")


def _fails_without_noise(net: Network, x, method: str) -> bool:
    """Whether the noise-free prediction raises a ValueError."""
    from ..noise import Noise
    from ..propagation import predict

    try:
        with np.errstate(all="ignore"):
            predict(net, Noise(), x, method=method, error_estimate=False)
    except ValueError:
        return True
    return False


def _per_layer_values(option: str, text: str, depth: int) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise CLIError(f"{option}: expected a number or {depth} comma-separated numbers, got {text!r}") from None
    if len(values) == 1:
        return values * depth
    if len(values) != depth:
        raise CLIError(f"{option}: got {len(values)} values for a network of {depth} layers")
    return values


def _symmetric_from_text(text: str) -> Network:
    from ..model import Network

    parts = text.split(",", 4)
    if len(parts) != 5:
        raise CLIError(f"--symmetric needs DEPTH,WIDTH,WEIGHT,BIAS,ACTIVATION, got {text!r}")
    try:
        depth, width, weight, bias = int(parts[0]), int(parts[1]), float(parts[2]), float(parts[3])
    except ValueError:
        raise CLIError(f"--symmetric: DEPTH and WIDTH must be integers, WEIGHT and BIAS numbers; got {text!r}") from None
    try:
        return Network.symmetric(depth, width, weight, bias, parts[4].strip())
    except ValueError as err:
        raise CLIError(f"--symmetric {text}: {err}") from None


def print_json(payload: dict) -> None:
    print(json.dumps(payload, indent=2, allow_nan=False))


def refuse_existing(path, option: str, force: bool) -> None:
    """A CLIError, before any work, when the output file of ``option`` exists and --force is not
    given, or is not a regular file (symbolic link, device, FIFO: refused even with --force)."""
    from ..utils.files import check_target

    if path is None:
        return
    try:
        check_target(path, overwrite=force)
    except FileExistsError:
        raise CLIError(f"{option}: {path} exists; add --force to overwrite it") from None
    except (ValueError, OSError) as err:
        raise CLIError(f"{option}: {err}") from None


def describe_noise(noise: Sequence[Noise]) -> dict:
    """Per-type intensities (one number if equal in every layer) and placement."""
    described = {}
    for name in NOISE_TYPES:
        values = [getattr(n, name) for n in noise]
        described[name] = values[0] if len(set(values)) == 1 else values
    described["placement"] = noise[0].placement
    return described


def noise_text(noise: Sequence[Noise]) -> str:
    """:func:`describe_noise` on one line: ``AU=0.001, AC=0.001, ..., placement=post``."""
    return ", ".join(f"{k}={v}" for k, v in describe_noise(noise).items())


def print_network_and_noise(net: Network, noise: Sequence[Noise]) -> None:
    """The first two lines of a command's text output."""
    print(net)
    print("noise:", noise_text(noise))


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bar (bars show only on a terminal anyway)."""
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (one is shown on a terminal for long runs)")


def progress_from_args(args) -> "bool | None":
    """The ``progress`` argument of the API for :func:`add_quiet_option`'s flag:
    False with ``--quiet``, else None (a bar when standard error is a terminal)."""
    return False if getattr(args, "quiet", False) else None
