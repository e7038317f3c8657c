"""Options and helpers shared by the CLI commands."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..noise import NOISE_TYPES, PLACEMENTS, REFERENCE_INTENSITY, Noise

if TYPE_CHECKING:
    from ..model import Network

__all__ = [
    "EXIT_BAD_INPUT", "CLIError", "add_network_options", "add_noise_options", "network_from_args",
    "noise_from_args", "describe_noise", "noise_text", "print_network_and_noise", "print_json",
    "refuse_existing",
]

EXIT_BAD_INPUT = 2


class CLIError(ValueError):
    """Bad command-line input (exit code 2)."""


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """Options that choose the network, its input and its noise."""
    group = parser.add_argument_group("network and input")
    group.add_argument(
        "network", nargs="?", type=Path,
        help="network file: .npz (W1..WL, b1..bL, activations, optional x), .onnx, or .pt/.pth "
        "(a saved torch nn.Sequential); default: the shipped trained digits network "
        "64-100-100-100-10 and its stored test digit",
    )
    group.add_argument(
        "--reference", action="store_true",
        help="the reference benchmark network 784-100-100-100-100-10 (random weights) instead",
    )
    group.add_argument(
        "--symmetric", metavar="DEPTH,WIDTH,WEIGHT,BIAS,ACTIVATION",
        help="a symmetric network instead, e.g. 10,100,0.01,0,linear(slope=0.9)",
    )
    source = group.add_mutually_exclusive_group()
    source.add_argument("--input", type=Path, metavar="FILE", help="input vector (.npy or text)")
    source.add_argument("--input-value", type=float, metavar="V", help="every input equal to V")
    add_noise_options(parser)


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
    from ..io.networks import load_model

    """The network and its input chosen by :func:`add_network_options`."""
    chosen = [name for name, given in (("a network file", args.network), ("--symmetric", args.symmetric),
                                       ("--reference", args.reference)) if given]
    if len(chosen) > 1:
        raise CLIError(f"give one network: {' and '.join(chosen)} were both given")
    stored_x = None
    if args.symmetric:
        net = _symmetric_from_text(args.symmetric)
    elif args.network:
        net, stored_x = load_model(args.network, return_input=True)
    elif args.reference:
        net, stored_x, _ = reference_network()
    else:
        net, stored_x = default_network(return_input=True)
    if args.input is not None:
        x = _read_vector(args.input)
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
    return [
        Noise(**{name: values[k] for name, values in per_layer.items()}, placement=args.placement)
        for k in range(depth)
    ]


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
    return Network.symmetric(depth, width, weight, bias, parts[4].strip())


def _read_vector(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.loadtxt(path, ndmin=1)
    except (OSError, ValueError) as err:
        raise CLIError(f"cannot read input vector from {path}: {err}") from None


def print_json(payload: dict) -> None:
    print(json.dumps(payload, indent=2, allow_nan=False))


def refuse_existing(path, option: str, force: bool) -> None:
    """A CLIError, before any work, when the output file of ``option`` exists and --force is not given."""
    if path and not force and Path(path).exists():
        raise CLIError(f"{option}: {path} exists; add --force to overwrite it")


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
