"""One default prediction method, noiseprop.propagation.DEFAULT_METHOD, shared
by predict, verify, check_design, the robustness studies and the CLI."""
import inspect

import pytest

from noiseprop.analysis.design import check_design, noise_budget, noise_scale_budget
from noiseprop.cli import build_parser
from noiseprop.propagation import DEFAULT_METHOD, METHODS, predict
from noiseprop.simulation.verification import verify
from noiseprop.studies.accuracy import accuracy, analytic_accuracy
from noiseprop.studies.noise_training import noise_aware_training
from noiseprop.studies.walking import walking_noise


def test_default_method_is_a_method():
    assert DEFAULT_METHOD in METHODS


@pytest.mark.parametrize("function", [verify, check_design, noise_budget, noise_scale_budget, accuracy,
                                      analytic_accuracy, noise_aware_training, walking_noise])
def test_api_defaults(function):
    assert inspect.signature(function).parameters["method"].default == DEFAULT_METHOD


def test_predict_default_is_the_same():
    default = inspect.signature(predict).parameters["method"].default
    assert default == DEFAULT_METHOD


def _subparser(parser, names):
    """The parser of a (nested) subcommand, e.g. ("robustness", "walking")."""
    import argparse

    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("names", [("predict",), ("verify",), ("check",), ("robustness", "accuracy"),
                                   ("robustness", "walking"), ("robustness", "train-noisy")])
def test_cli_defaults(names):
    sub = _subparser(build_parser(), names)
    assert sub.get_default("method") == DEFAULT_METHOD
    option = next(a for a in sub._actions if "--method" in a.option_strings)
    assert tuple(option.choices) == METHODS
