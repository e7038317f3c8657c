"""``noiseprop recurrent {predict,stationary,verify,check}``: recurrent networks (echo state networks).

The model comes from a recurrent ``.npz`` file (:func:`noiseprop.recurrent.save_recurrent`),
a pickled reservoirpy ``Reservoir >> Ridge`` model (``.pkl``, with
``--trust-pickle``; extra ``reservoir``) or ``--esn N,RADIUS[,DENSITY]`` (a random tanh echo state network, one
input, one output).  Noise options as for the feed-forward commands (one
value: the reservoir is one layer), ``--output-AU`` ... for the readout.
Exit codes: 0 success, 1 a failed verification or design rule, 2 bad input.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..noise import NOISE_TYPES, Noise
from ..utils.resources import FLOAT, check_memory
from ..utils.tables import format_table
from ..utils.validation import noise_overflow_message
from .check import EXIT_RULE_FAILED
from .common import (
    CLIError,
    add_noise_options,
    add_resource_options,
    count_value,
    finite_value,
    noise_from_args,
    noise_options_given,
    noise_text,
    print_json,
    seed_value,
)

__all__ = ["register"]

#: Suffixes of pickled reservoirpy models.
_PICKLES = (".pkl", ".pickle")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "recurrent", help="recurrent networks: noise through time, stationary level, verify, check",
        description="Noise propagation through time in recurrent networks (echo state networks): "
        "analytic prediction per step, stationary noise and growth rate, Monte Carlo verification, "
        "design check.  Exit codes: 0 success, 1 a failed verification or rule, 2 bad input.",
    )
    sub = parser.add_subparsers(dest="recurrent_command", metavar="ACTION", required=True)
    for name, helptext, run in (
        ("predict", "mean, variance and SNR per time step (analytic)", _predict),
        ("stationary", "stationary noise for a constant input, growth rate, time constant", _stationary),
        ("verify", "hold the prediction against Monte Carlo (exit 1 on disagreement)", _verify),
        ("check", "design rules: bounded, stable, target SNR, budgets (exit 1 if a rule fails)", _check),
    ):
        action = sub.add_parser(name, help=helptext, description=helptext)
        _add_model_options(action)
        add_resource_options(action)
        action.add_argument("--json", action="store_true", help="machine-readable output")
        # API parameters whose option has another name (errors name the option; see cli.build_parser)
        action.set_defaults(run=run, parameter_aliases={"target_snr_db": "--target-snr", "n": "--esn N",
                                                        "spectral_radius": "--esn RADIUS",
                                                        "density": "--esn DENSITY"})
        if name in ("predict", "verify"):
            action.add_argument("--generate", type=int, default=0, metavar="G",
                                help="self-closed steps after the input (feedback networks)")
            action.add_argument("--method", choices=("linear", "moments"), default="linear",
                                help="linear response (exact for linear activations) or Gaussian moments")
        if name == "predict":
            action.add_argument("--every", type=count_value, metavar="K", help="print every K-th step (default: ~20 rows)")
        if name == "verify":
            action.add_argument("--samples", type=count_value, default=10_000, help="Monte Carlo realisations")
            action.add_argument("--seed", type=seed_value, default=0, help="random seed, an integer >= 0 (default 0)")
        if name == "check":
            action.add_argument("--target-snr", type=float, metavar="DB", help="target stationary output SNR (dB)")
        if name == "stationary":
            action.add_argument("--snr-time", action="store_true",
                                help="feedback networks: self-closed steps after the input until the output SNR < 1")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("network and input")
    group.add_argument("network", nargs="?", type=Path,
                       help="recurrent network file (.npz, kind='recurrent'), or a pickled reservoirpy "
                       "Reservoir >> Ridge model (.pkl/.pickle; needs --trust-pickle and reservoirpy)")
    group.add_argument("--trust-pickle", action="store_true",
                       help="read a pickled reservoirpy model (.pkl). RISK: the file can run any code with your "
                       "permissions while it loads; use only for files you made or fully trust")
    group.add_argument("--feedback", action="store_true",
                       help="a reservoirpy model: mark it for self-closed generation (--generate)")
    group.add_argument("--esn", metavar="N,RADIUS[,DENSITY]",
                       help="a random tanh echo state network instead (1 input, 1 output, seed 0)")
    group.add_argument("--input", type=Path, metavar="FILE", help="input sequence (T, N_in): .npy or text")
    group.add_argument("--input-value", type=finite_value, metavar="V",
                       help="constant input V (all inputs) for --steps steps (default: the file's sequence, else 0.5)")
    group.add_argument("--steps", type=int, default=100, metavar="T", help="steps of a constant input (default 100)")
    add_noise_options(parser)
    out = parser.add_argument_group("output-neuron noise (variances; default none)")
    for name in NOISE_TYPES:
        out.add_argument(f"--output-{name}", type=float, metavar="D", default=0.0)


#: Values kept per time step and neuron (input, mean, variances, SNR).
_VALUES_PER_STEP = 4


def _model(args):
    from ..recurrent import echo_state_network, load_recurrent
    from ..recurrent.model import as_sequence

    if (args.network is None) == (args.esn is None):
        raise CLIError("give a recurrent network file or --esn N,RADIUS[,DENSITY] (one of them)")
    stored = None
    if args.esn is not None:
        parts = args.esn.split(",")
        try:
            n, radius = int(parts[0]), float(parts[1])
            density = float(parts[2]) if len(parts) > 2 else None
        except (ValueError, IndexError):
            raise CLIError(f"--esn needs N,RADIUS[,DENSITY], got {args.esn!r}") from None
        net = echo_state_network(n, 1, 1, radius, density=density, seed=0)
    elif args.network.suffix.lower() in _PICKLES:
        from ..recurrent.interop import load_reservoirpy

        net = load_reservoirpy(args.network, trust=args.trust_pickle, feedback=args.feedback)
    else:
        net, stored = load_recurrent(args.network, return_input=True)
    if args.input is not None:
        try:
            u = np.load(args.input) if args.input.suffix == ".npy" else np.loadtxt(args.input, ndmin=2)
            u = as_sequence(u, net.n_in)
        except (OSError, ValueError) as err:
            raise CLIError(f"--input {args.input}: {err}") from None
    elif args.input_value is not None or stored is None:
        if args.steps < 1:
            raise CLIError(f"--steps must be >= 1, got {args.steps}")
        check_memory(_VALUES_PER_STEP * FLOAT * args.steps * (net.n_in + net.n + net.n_out),
                     f"--steps {args.steps}: the input and the per-step statistics of {args.steps} steps",
                     "use fewer steps")
        value = 0.5 if args.input_value is None else args.input_value
        u = np.full((args.steps, net.n_in), value)
    else:
        u = stored
    noise = noise_from_args(args, 1)[0]
    return net, u, noise, _output_noise(args)


def _output_noise(args) -> "Noise | None":
    """The readout's noise from --output-AU ... (None when there is none); an error names the option."""
    values = {name: getattr(args, f"output_{name}") for name in NOISE_TYPES}
    try:
        output = Noise(**values)
    except ValueError as err:
        given = ", ".join(f"--output-{name}" for name, value in values.items() if value != 0)
        raise CLIError(f"{given}: {err}") from None
    return None if output.is_zero else output


def _header(net, noise, output_noise) -> None:
    print(net)
    print("reservoir noise:", noise_text([noise]))
    if output_noise is not None:
        print("output noise:", noise_text([output_noise]))


def _prediction(args, net, u, noise, output_noise):
    """The recurrent prediction; a CLIError naming the noise options where its variance overflows
    (intensities are variances: an enormous one gives inf and nan from that step on)."""
    from ..recurrent import predict

    with np.errstate(over="ignore", invalid="ignore"):
        res = predict(net, noise, u, generate=args.generate, output_noise=output_noise, method=args.method)
    overflowing = [t for t in res.steps
                   if not (np.all(np.isfinite(res.reservoir.var[t])) and np.all(np.isfinite(res.output.var[t])))]
    if overflowing:
        given = [noise_options_given(args)] + [f"--output-{name}" for name in NOISE_TYPES
                                               if getattr(args, f"output_{name}")]
        raise CLIError(f"{', '.join(given)}: {noise_overflow_message(f'the noise variance at step {overflowing[0]}')} "
                       "(noiseprop recurrent check gives the growth rate)")
    return res


def _predict(args) -> int:
    net, u, noise, output_noise = _model(args)
    res = _prediction(args, net, u, noise, output_noise)
    if args.json:
        print_json({"network": repr(net), "noise": noise_text([noise]), **res.to_dict()})
        return 0
    _header(net, noise, output_noise)
    total = len(res.steps) - 1
    every = args.every or max(1, total // 20)
    rows = []
    reservoir, output = res.reservoir.summary(), res.output.summary()
    for t in list(range(every, total + 1, every)) + ([total] if total % every else []):
        rows.append([str(t), "closed" if res.closed[t] else "driven", f"{reservoir[t]['noise_var']:.4g}",
                     f"{reservoir[t]['correlated']:.3g}", f"{reservoir[t]['snr_db']:.2f}",
                     f"{output[t]['noise_var']:.4g}", f"{output[t]['snr_db']:.2f}"])
    print(format_table(["step", "input", "reservoir Var", "corr. part", "reservoir SNR dB",
                        "output Var", "output SNR dB"], rows))
    print(f"({args.method} prediction; Var: per-neuron average variance; SNR = sum E^2 / sum Var)")
    return 0


def _constant_input(args, net, u):
    if net.feedback:
        return None
    return u[-1]


def _stationary(args) -> int:
    from ..recurrent import stationary, time_to_snr_below

    net, u, noise, output_noise = _model(args)
    state = stationary(net, noise, _constant_input(args, net, u), output_noise=output_noise)
    payload = {"network": repr(net), "noise": noise_text([noise]), **state.to_dict()}
    if args.snr_time:
        if not net.feedback:
            raise CLIError("--snr-time needs a feedback (self-closed) network")
        payload["steps_until_snr_below_1"] = time_to_snr_below(net, noise, u, output_noise=output_noise)
    if args.json:
        print_json(payload)
        return 0
    _header(net, noise, output_noise)
    for key, value in payload.items():
        if key not in ("network", "noise"):
            print(f"{key}: {value}")
    return 0


def _verify(args) -> int:
    from ..recurrent import verify

    net, u, noise, output_noise = _model(args)
    _prediction(args, net, u, noise, output_noise)  # an overflowing noise: refused before sampling
    report = verify(net, noise, u, args.samples, args.seed, generate=args.generate,
                    output_noise=output_noise, method=args.method)
    return _report(args, report, net, noise, output_noise)


def _report(args, report, net, noise, output_noise) -> int:
    """Print a verification or design report (JSON or table); exit 1 unless it passed."""
    if args.json:
        print_json(report.to_dict())
    else:
        _header(net, noise, output_noise)
        print(report.table())
    return 0 if report.passed else EXIT_RULE_FAILED


def _check(args) -> int:
    from ..recurrent import check_recurrent

    net, u, noise, output_noise = _model(args)
    report = check_recurrent(net, noise, _constant_input(args, net, u), output_noise=output_noise,
                             target_snr_db=args.target_snr)
    return _report(args, report, net, noise, output_noise)
