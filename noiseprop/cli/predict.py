"""``noiseprop predict``: the analytic per-layer noise table."""
from __future__ import annotations

import argparse
import warnings

import numpy as np

from ..methods import DEFAULT_METHOD, METHODS
from ..utils.estimate import announce_long_run
from ..utils.tables import layer_table
from .common import (
    add_network_options,
    check_noise_scale,
    describe_noise,
    network_from_args,
    noise_from_args,
    print_json,
    print_network_and_noise,
)

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "predict", help="analytic per-layer noise prediction",
        description="Predict per-layer mean, noise variance and SNR (--method).",
    )
    add_network_options(parser)
    parser.add_argument(
        "--method", choices=METHODS, default=DEFAULT_METHOD,
        help="linear: linear response (exact for affine activations); moments: Gaussian moments of "
        f"f(z) (default {DEFAULT_METHOD})",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--per-neuron", action="store_true", help="with --json: every neuron's mean and variance")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    net, x = network_from_args(args)
    noise = noise_from_args(args, net.depth)
    announce_long_run("predict", "predict", net.sizes, method=args.method)
    result = _predict_once(args, net, x, noise)
    if args.json:
        payload = {"network": repr(net), "noise": describe_noise(noise), "method": args.method,
                   **result.to_dict(args.per_neuron)}
        print_json(payload)
    else:
        print_network_and_noise(net, noise)
        print(layer_table(result))
        method = {"linear": "linear-response", "moments": "Gaussian-moments"}.get(args.method, args.method)
        print(f"({method} prediction; layer SNR = sum E[y]^2 / sum Var[y])")
    return 0


def _predict_once(args: argparse.Namespace, net, x, noise):
    """The prediction, propagated once.  Only where it fails (ValueError) or its
    variances overflow does :func:`check_noise_scale` run, to turn a failure
    that is the noise's fault into its one-line error naming the noise options;
    the failing run's numpy warnings are not shown, its own (UserWarning) are
    shown when a result is returned."""
    from ..propagation import predict

    failure = result = None
    with warnings.catch_warnings(record=True) as caught, np.errstate(over="ignore", invalid="ignore"):
        try:
            result = predict(net, noise, x, method=args.method)
        except ValueError as err:
            failure = err
    if failure is not None or not all(np.all(np.isfinite(var)) for var in result.var):
        check_noise_scale(args, net, x, noise, args.method)
        if failure is not None:
            raise failure  # not the noise's fault: the prediction's own message
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return result
