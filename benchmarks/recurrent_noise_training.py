"""Benefit of noise-injection training for a small Elman RNN on Mackey-Glass.

Two Elman RNNs (20 tanh neurons) are trained by BPTT on one-step prediction
of the Mackey-Glass series (noiseprop.recurrent.data, centred by 0.9), one
clean and one with additive uncorrelated noise D_AU = 1e-2 injected into the
hidden neurons, same seed and epochs.  On held-out data each is evaluated at
the inference noise D_AU = 1e-2: the clean one-step NRMSE, and the output
noise variance and SNR (sum E^2 / sum Var averaged over the steps after a
warm-up), predicted (Gaussian-moment closure) and simulated (Monte Carlo).

Usage: python benchmarks/recurrent_noise_training.py [--epochs 150] [--out DIR] [--force]
Writes DIR/recurrent_noise_training.json (default benchmarks/results).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _outputs import result_paths, write_results  # this folder: the script's own path comes first

from noiseprop import Noise
from noiseprop.recurrent import predict, simulate
from noiseprop.recurrent.data import mackey_glass
from noiseprop.recurrent.training import one_step_nrmse, train_elman

D_TRAIN = D_INFER = 1e-2
WARMUP = 50


def evaluate(net, series, samples):
    noise = Noise(AU=D_INFER)
    u = series[:-1, None]
    pred = predict(net, noise, u, method="moments")
    sim = simulate(net, noise, u, samples, seed=1)
    out_pred = np.array(pred.output.noise_var[1 + WARMUP:])
    out_sim = np.array(sim.output.noise_var[1 + WARMUP:])
    signal = np.array(pred.output.signal_power[1 + WARMUP:])
    return {
        "clean_one_step_nrmse": one_step_nrmse(net, series, warmup=WARMUP),
        "output_noise_var_predicted": float(out_pred.mean()),
        "output_noise_var_simulated": float(out_sim.mean()),
        "output_snr_db_predicted": float(10 * np.log10(np.mean(signal / out_pred))),
        "output_snr_db_simulated": float(10 * np.log10(np.mean(signal / out_sim))),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    [path] = result_paths(args.out, ["recurrent_noise_training.json"], args.force)  # now, not after the training
    series = mackey_glass(1300) - 0.9
    train, test = series[:1000], series[1000:]
    results = {}
    for name, noise in (("clean", None), ("noise_injected", Noise(AU=D_TRAIN))):
        net = train_elman(train, 20, noise=noise, epochs=args.epochs, seed=0)
        results[name] = evaluate(net, test, args.samples)
        print(name, results[name])
    payload = {"d_train": D_TRAIN, "d_inference": D_INFER, "epochs": args.epochs, "hidden": 20,
               "samples": args.samples, "results": results}
    write_results({path: json.dumps(payload, indent=2)}, args.force)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
