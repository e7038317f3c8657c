"""``noiseprop robustness accuracy | walking | train-noisy``: classifiers under noise.

Every sub-command prints a table (or ``--json``) and can draw a figure
(``--plot PATH``, never over an existing file without ``--force``).  The
network defaults to the shipped digits classifier and the data to the digits
test set (:func:`noiseprop.io.datasets.load_digits`).
"""
from __future__ import annotations

import argparse

import numpy as np

from ..methods import DEFAULT_METHOD, METHODS
from ..noise import NOISE_TYPES, PLACEMENTS
from ..utils.estimate import announce_long_run
from ..utils.jsonutil import finite_or_none
from ..utils.tables import format_table
from .common import (
    CLIError,
    add_noise_options,
    add_quiet_option,
    add_resource_options,
    add_trust_option,
    check_noise_scale,
    count_value,
    describe_noise,
    finite_value,
    input_path,
    noise_from_args,
    noise_text,
    output_path,
    print_json,
    progress_from_args,
    refuse_existing,
    seed_value,
)

__all__ = ["register"]

#: Most levels a MIN:MAX:N range may ask for (each level is a whole Monte Carlo run).
MAX_LEVELS = 10_000


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "robustness", help="accuracy of a classifier under noise",
        description="Accuracy under noise (Monte Carlo and analytic), walking noise, noise-aware training.",
    )
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    _register_accuracy(tasks)
    _register_walking(tasks)
    _register_training(tasks)


# ------------------------------------------------------------ sub-commands


def _register_accuracy(tasks) -> None:
    parser = tasks.add_parser(
        "accuracy", help="Monte Carlo accuracy with confidence interval beside the analytic prediction",
        description="Accuracy of the noisy network on a data set: Monte Carlo over noise realisations "
        "(with a confidence interval on this data set) and the analytic prediction P(right class "
        "has the largest output) from the predicted output mean and covariance.",
    )
    _add_network_and_data(parser)
    add_noise_options(parser)
    parser.add_argument("--factors", default="1", metavar="F1,F2,..|MIN:MAX:N",
                        help="evaluate at these multiples of the noise intensities (default 1)")
    parser.add_argument("--confidence", type=finite_value, default=0.95, help="confidence level (default 0.95)")
    _add_common(parser, samples=1000)
    parser.set_defaults(run=_run_accuracy)


def _register_walking(tasks) -> None:
    parser = tasks.add_parser(
        "walking", help="noise in one layer at a time: accuracy vs level and midpoint per layer",
        description="Walking noise: one noise type in one layer at a time, the others noise-free. "
        "Prints each layer's midpoint noise level (accuracy half-way from clean to chance, "
        "log interpolation) measured and predicted, and the layer ranking.",
    )
    _add_network_and_data(parser)
    parser.add_argument("--type", required=True, choices=NOISE_TYPES, dest="noise_type", help="noise type")
    _add_levels(parser, "--levels", "noise levels, increasing", required=True)
    parser.add_argument("--layers", metavar="K1,K2,..", help="layers to walk through (default all)")
    parser.add_argument("--placement", choices=PLACEMENTS, default="post")
    _add_common(parser, samples=200)
    parser.set_defaults(run=_run_walking)


def _register_training(tasks) -> None:
    parser = tasks.add_parser(
        "train-noisy", help="train at several noise levels; accuracy vs inference noise and weight statistics",
        description="Noise-aware training on the digits data set (needs the 'train' extra: PyTorch). "
        "Each network is trained with noise of one type on every layer, then tested at every "
        "inference level; the weight statistics and noise gains show what training did.",
    )
    parser.add_argument("--type", required=True, choices=NOISE_TYPES, dest="noise_type", help="noise type")
    _add_levels(parser, "--train-levels", "training noise levels, increasing (0: clean)", required=True)
    _add_levels(parser, "--eval-levels", "inference noise levels, increasing", required=True, scale=False)
    parser.add_argument("--hidden", default="100,100,100",
                        help="hidden layer widths (default 100,100,100; bounded by --max-memory and --max-time)")
    parser.add_argument("--activation", default="sigmoid", help="hidden activation (default sigmoid)")
    parser.add_argument("--epochs", type=count_value, default=100, help="training epochs (default 100)")
    parser.add_argument("--batch-size", type=count_value, default=32, help="training batch size (default 32)")
    parser.add_argument("--lr", type=finite_value, default=1e-3, help="Adam learning rate (default 0.001)")
    _add_common(parser, samples=200)
    parser.set_defaults(run=_run_training)


def _run_accuracy(args) -> int:
    from ..plotting import figure, plot_accuracy_curve, save_figure
    from ..studies.accuracy import accuracy
    from ..utils.validation import check_confidence

    refuse_existing(args.plot, "--plot", args.force)
    check_confidence(args.confidence)  # before the run-time estimate is announced
    factors = _parse_levels(args.factors, "--factors")
    if np.any(factors < 0):
        raise CLIError(f"--factors: the noise is scaled by each factor, which must be >= 0, got {args.factors!r}")
    net, X, y = _network_and_data(args)
    noise = noise_from_args(args, net.depth)
    check_noise_scale(args, net, X[0], [n.scaled(float(factors.max())) for n in noise], args.method)
    _check_accuracy_time(net, len(y), len(factors), args.samples)
    announce_long_run("robustness accuracy", "accuracy", net.sizes, inputs=len(y), samples=args.samples,
                      repeats=len(factors), method=args.method)
    results = [
        accuracy(net, [n.scaled(f) for n in noise], X, y, args.samples, args.seed,
                 confidence=args.confidence, method=args.method, progress=progress_from_args(args))
        for f in factors
    ]
    if args.json:
        print_json(finite_or_none({
            "network": repr(net), "noise": describe_noise(noise), "inputs": len(y),
            "results": [{"factor": float(f), **r.to_dict()} for f, r in zip(factors, results)],
        }))
    else:
        print(f"{net}; {len(y)} inputs; noise: {noise_text(noise)}")
        headers = ["factor", "accuracy", f"{args.confidence:.0%} CI", "predicted", "in CI", "clean"]
        rows = [
            [f"{f:g}", f"{r.accuracy:.4f}", f"{r.ci[0]:.4f}..{r.ci[1]:.4f}", f"{r.predicted:.4f}",
             "yes" if r.covers_prediction else "no", f"{r.clean:.4f}"]
            for f, r in zip(factors, results)
        ]
        print(format_table(headers, rows))
        print(f"(Monte Carlo: {args.samples} realisations per input; predicted: Gaussian output, "
              f"{args.method} propagation)")
    if args.plot:
        fig, ax = figure()
        plot_accuracy_curve(ax, factors, [r.accuracy for r in results], [r.ci[0] for r in results],
                            [r.ci[1] for r in results], [r.predicted for r in results],
                            label=f"Monte Carlo ({args.confidence:.0%} CI)", predicted_label="analytic (Gaussian output)")
        ax.axhline(results[0].clean, color="0.5", ls=":", lw=1, label="noise-free")
        ax.set_xlabel("noise intensity factor (x the given intensities)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"Accuracy under noise, {len(y)} inputs")
        ax.legend()
        save_figure(fig, args.plot, overwrite=args.force)
    return 0


def _check_accuracy_time(net, inputs: int, factors: int, samples: int) -> None:
    """Refuse a run whose estimated time exceeds --max-time, showing the estimate."""
    from ..utils.resources import check_run_time

    macs = sum(n * m for m, n in zip(net.sizes[:-1], net.sizes[1:]))
    check_run_time(float(factors) * samples * inputs * macs,
                   f"{factors} --factors x {samples} --samples x {inputs} inputs",
                   "use fewer --factors or --samples")


def _run_walking(args) -> int:
    from ..plotting import plot_walking_noise, save_figure
    from ..studies.walking import walking_noise

    refuse_existing(args.plot, "--plot", args.force)
    net, X, y = _network_and_data(args)
    layers = None if args.layers is None else _parse_integers(args.layers, "--layers")
    result = walking_noise(
        net, X, y, args.noise_type, _parse_levels(args.levels, "--levels"), scale=args.scale,
        samples=args.samples, seed=args.seed, layers=layers, placement=args.placement, method=args.method,
        progress=progress_from_args(args),
    )
    if args.json:
        print_json(finite_or_none({"network": repr(net), "inputs": len(y), **result.to_dict()}))
    else:
        print(f"{net}; {len(y)} inputs; {args.noise_type} noise in one layer at a time; levels as "
              f"{'standard deviations' if args.scale == 'std' else 'variances'}")
        print(f"clean accuracy {result.clean:.4f}, chance {result.chance:.4f}, "
              f"midpoint target {(result.clean + result.chance) / 2:.4f}")
        headers = ["layer", "midpoint", "predicted", "midpoint (variance)"]
        rows = [
            [str(k), _midpoint_text(result.midpoint[i], result.bracket[i]),
             _midpoint_text(result.predicted_midpoint[i], result.predicted_bracket[i]),
             _midpoint_text(result.midpoint_variance[i], result.bracket[i])]
            for i, k in enumerate(result.layers)
        ]
        print(format_table(headers, rows))
        print("most to least sensitive: measured", _layers_text(result.ranking),
              "| predicted", _layers_text(result.predicted_ranking))
    if args.plot:
        save_figure(plot_walking_noise(result), args.plot, overwrite=args.force)
    return 0


def _run_training(args) -> int:
    from ..io.datasets import load_digits
    from ..plotting import plot_noise_training, save_figure
    from ..studies.noise_training import noise_aware_training

    refuse_existing(args.plot, "--plot", args.force)
    hidden = tuple(_parse_integers(args.hidden, "--hidden"))
    result = noise_aware_training(
        *load_digits(), args.noise_type, _parse_levels(args.train_levels, "--train-levels"),
        _parse_levels(args.eval_levels, "--eval-levels"), scale=args.scale, samples=args.samples,
        seed=args.seed, method=args.method, hidden=hidden, activation=args.activation,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, progress=progress_from_args(args),
    )
    if args.json:
        print_json(finite_or_none(result.to_dict()))
    else:
        print(f"digits; {args.noise_type} noise on every layer; levels as "
              f"{'standard deviations' if args.scale == 'std' else 'variances'}")
        headers = ["trained at", "clean", *[f"acc @ {v:g}" for v in result.eval_levels],
                   "SNR dB @ first", "rms w per layer", "binarity per layer", "gain U per layer"]
        rows = []
        for i, level in enumerate(result.train_levels):
            stats = result.weights[i]
            rows.append([
                f"{level:g}", f"{result.clean[i]:.3f}",
                *[f"{a:.3f} ({p:.3f})" for a, p in zip(result.accuracy[i], result.predicted[i])],
                f"{result.output_snr_db[i, 0]:.1f}",
                "/".join(f"{s['rms']:.3f}" for s in stats),
                "/".join(f"{s['binarity']:.3f}" for s in stats),
                "/".join(f"{s['gain_uncorrelated']:.3g}" for s in stats),
            ])
        print(format_table(headers, rows))
        print("(accuracy: Monte Carlo (analytic); binarity = mean|w|/rms, 0.80 Gaussian, 1 binary; "
              "gain U = mean f'^2 * fan-in * mean w^2)")
        first = result.weights[0]
        for i, level in enumerate(result.train_levels[1:], start=1):
            growth = "/".join(f"{s['rms'] / f['rms']:.2f}" for s, f in zip(result.weights[i], first))
            gain = result.output_snr_db[i, 0] - result.output_snr_db[0, 0]
            print(f"trained at {level:g} vs {result.train_levels[0]:g}: weight rms x{growth} per layer, "
                  f"output SNR {gain:+.1f} dB at inference level {result.eval_levels[0]:g}")
        print("Additive noise is fixed, so larger signals (weights) raise the SNR; multiplicative noise "
              "scales with the signal, so only the gains and the weight distribution can limit it.")
    if args.plot:
        save_figure(plot_noise_training(result), args.plot, overwrite=args.force)
    return 0


# ----------------------------------------------------------------- helpers


def _add_network_and_data(parser) -> None:
    parser.add_argument("network", nargs="?", type=input_path,
                        help="network file: .npz, .onnx or .pt/.pth (read safely, see --trust-pickle; "
                        "default: the shipped digits classifier)")
    parser.add_argument("--data", type=input_path, metavar="FILE.npz",
                        help="data set: .npz with arrays X (B, N_0) and y (B,) (default: digits test set)")
    add_trust_option(parser)


def _add_levels(parser, flag: str, text: str, required: bool, scale: bool = True) -> None:
    parser.add_argument(flag, required=required, metavar="L1,L2,..|MIN:MAX:N",
                        help=f"{text}: a list or MIN:MAX:N log-spaced")
    if scale:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--std", dest="scale", action="store_const", const="std",
                           help="levels are standard deviations s (x + N(0, s^2), x * N(1, s^2))")
        group.add_argument("--variance", dest="scale", action="store_const", const="variance",
                           help="levels are variances D = s^2 (noiseprop's intensities)")


def _add_common(parser, samples: int) -> None:
    parser.add_argument("--samples", type=count_value, default=samples,
                        help=f"noise realisations per input (default {samples}; bounded by --max-time)")
    parser.add_argument("--seed", type=seed_value, default=0, help="random seed, an integer >= 0 (default 0)")
    parser.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                        help=f"propagation of the analytic prediction (default {DEFAULT_METHOD})")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--plot", type=output_path, metavar="PATH",
                        help="write a figure (.png, .pdf, ...), atomically")
    parser.add_argument("--force", action="store_true",
                        help="overwrite an existing --plot file (a regular file only: a symbolic link, "
                        "device or FIFO is never replaced)")
    add_resource_options(parser)
    add_quiet_option(parser)


def _network_and_data(args):
    from ..io.builtin import default_network
    from ..io.networks import load_model

    net = load_model(args.network, trust=args.trust_pickle) if args.network else default_network()
    if args.data is None:
        from ..io.datasets import load_digits

        _, _, X, y = load_digits()
    else:
        from ..io.arrays import read_npz

        try:
            stored = read_npz(args.data, "data set", required=("X", "y"))
        except ValueError as err:
            raise CLIError(f"--data: {err}; it needs X (B, N_0) and y (B,)") from None
        from ..utils.validation import as_labelled_data

        try:
            X, y = as_labelled_data(stored["X"], stored["y"], net.sizes[0], net.sizes[-1])
        except ValueError as err:
            raise CLIError(f"--data {args.data}: {err}") from None
    return net, X, y


def _parse_list(text: str, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"{flag}: expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise CLIError(f"{flag}: no values given ({text!r})")
    if not all(np.isfinite(values)):
        raise CLIError(f"{flag}: values must be finite, got {text!r}")
    return values


def _parse_integers(text: str, flag: str) -> list[int]:
    """Comma-separated integers (layer numbers, widths); 1.5 is an error, not 1."""
    values = _parse_list(text, flag)
    if not values or any(not float(v).is_integer() for v in values):
        raise CLIError(f"{flag}: expected comma-separated integers, got {text!r}")
    return [int(v) for v in values]


def _parse_levels(text: str, flag: str) -> np.ndarray:
    if ":" not in text:
        return np.array(_parse_list(text, flag))
    parts = text.split(":")
    try:
        low, high, count = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3 or not (0 < low < high) or count < 2:
            raise ValueError
    except (ValueError, IndexError):
        raise CLIError(f"{flag}: MIN:MAX:N needs 0 < MIN < MAX and an integer N >= 2, got {text!r}") from None
    if count > MAX_LEVELS:
        raise CLIError(f"{flag}: {count} levels requested; at most {MAX_LEVELS} (each level is a full run)")
    return np.geomspace(low, high, count)


def _midpoint_text(value: float, bracket: str) -> str:
    if bracket == "found":
        return f"{value:.4g}"
    return "< smallest level" if bracket == "below" else "> largest level"


def _layers_text(layers) -> str:
    return "-" if layers is None else ", ".join(str(k) for k in layers)
