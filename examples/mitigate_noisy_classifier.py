"""Mitigate the noise of an analog digits classifier within a neuron budget.

The shipped digits classifier (64-100-100-100-10, sigmoid hidden layers,
linear output) runs on analog hardware whose neurons carry all four noise
types at intensity (variance) D.  Its accuracy drops by about five points.
The script asks :func:`noiseprop.mitigation.plan` for the combination of
ghost neurons and per-neuron pooling that best protects the decision (the
output noise that can change the arg-max: not common to all outputs, not
along the output vector itself) with at most as many extra noisy neurons as
the network has hidden neurons, checks the prediction by Monte Carlo, and
measures the accuracy of the original and the mitigated network on the test
digits.

Hardware assumptions (see docs/mitigation.md): copies of a neuron share its
layer's correlated noise and have their own uncorrelated noise; a ghost
neuron shares its layer's correlated draw; transforming the output layer
needs a noise-free read-out (e.g. digital averaging of the output copies).

Run: ``python examples/mitigate_noisy_classifier.py [--fast]``
"""
import argparse

from noiseprop import Noise, default_network
from noiseprop.io.datasets import load_digits
from noiseprop.mitigation import plan
from noiseprop.mitigation.accuracy import hidden_neurons, mitigated_accuracy

#: Intensity (variance) of each of the four noise types in every layer.
INTENSITY = 0.0224


def main(fast: bool = False) -> dict:
    net = default_network()
    X_train, _, X_test, y_test = load_digits()
    noise = Noise(AU=INTENSITY, AC=INTENSITY, MU=INTENSITY, MC=INTENSITY)
    budget = hidden_neurons(net)
    print(f"{net}; noise: all four types at D = {INTENSITY}; budget: {budget} extra neurons")
    result = plan(net, noise, X_train[:4], budget, objective="decision", allocation="neuron",
                  samples=2_000 if fast else 20_000)
    print(result.summary())
    if fast:
        X_test, y_test = X_test[:100], y_test[:100]
    rows = mitigated_accuracy(net, noise, X_test, y_test, {"mitigated": result.network},
                              samples=20 if fast else 200, analytic=False)
    for row in rows:
        recovered = "" if row["recovered"] is None else f", recovered {100 * row['recovered']:.0f} % of the loss"
        print(f"{row['label']:>10s}: accuracy {100 * row['accuracy']:.2f} % "
              f"(95 % CI {100 * row['ci'][0]:.2f}..{100 * row['ci'][1]:.2f}; clean {100 * row['clean']:.2f} %), "
              f"{row['hidden_neurons']} hidden neurons{recovered}")
    return {"plan": result, "accuracy": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="fewer samples and test digits (seconds)")
    main(parser.parse_args().fast)
