"""Command-line interface ``noiseprop <command>``: a thin layer over the API.

Each command lives in its own module with a ``register(commands)`` function
that adds its sub-parser and sets ``run``.

Exit codes (the same for every command, so that CI can trust them):

- 0: success;
- 1: a check failed (``verify``: prediction and simulation disagree;
  ``check``: a design rule fails) -- and nothing else;
- 2: bad input: a bad option or value, an unreadable, corrupt, unsafe or too
  large file, an output that may not be written, a missing optional
  dependency, a job over the memory or time limit; one line on stderr names
  the culprit;
- 3: an internal error (a bug in noiseprop; the traceback is printed);
- 130: interrupted with Ctrl-C (SIGINT); 143: terminated (SIGTERM).
  Temporary files are removed in both cases; one line, no traceback.
"""
from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
import traceback
import warnings
import zipfile
import zlib
from typing import Sequence

from . import check, derive, figures, mitigate, predict, recurrent, robustness, verify
from .common import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, option_message

__all__ = ["main", "build_parser", "EXIT_CODES"]

#: Command modules, in the order of ``noiseprop --help``.
COMMANDS = [predict, check, figures, verify, robustness, derive, recurrent, mitigate]

#: Exit codes and their meaning (module docstring).
EXIT_CODES = {0: "success", 1: "a check failed", 2: "bad input or resource limit",
              EXIT_INTERNAL: "internal error", EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
              143: "terminated (SIGTERM)"}

#: Errors that mean bad input (or an environment that cannot run the job): exit 2.
BAD_INPUT_ERRORS = (ValueError, OSError, ImportError, zipfile.BadZipFile, zlib.error, EOFError,
                    OverflowError, MemoryError)

#: A negative number, also in exponent form or as a list / range: -1e-3, -.5, -1e-3,2e-3.
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?([,:].*)?$")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (exit 2) naming the option."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="noiseprop",
        description="Noise propagation in deep networks of noisy analog neurons.",
        epilog="Exit codes: 0 success, 1 a check failed (verify, check), 2 bad input, unreadable or "
        "unsafe file, missing optional dependency or resource limit, 3 internal error, 130 Ctrl-C, "
        "143 SIGTERM. Safety: .pt files are read without running code (see --trust-pickle); outputs "
        "are written atomically and never replace a symbolic link, device or FIFO.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(commands)
    _name_options(parser)
    return parser


def _name_options(parser: argparse.ArgumentParser) -> None:
    """Give every command's parser its map from API parameter names to options
    (``eval_levels`` -> ``--eval-levels``, the dest of each option, plus the
    command's ``parameter_aliases``), so that an error of the API names the
    option the user typed (:func:`.common.option_message`), and its full name
    ("noiseprop robustness accuracy"), which begins its error lines."""
    # argparse keeps a parser's arguments and sub-commands in ``_actions`` (no public accessor)
    commands = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    for action in commands:
        for child in action.choices.values():
            _name_options(child)
    if commands:
        return
    options = {action.dest: max(action.option_strings, key=len) for action in parser._actions
               if action.option_strings and action.dest != argparse.SUPPRESS}
    options.update(parser.get_default("parameter_aliases") or {})
    parser.set_defaults(parameter_options=options, command_name=parser.prog)


def protect_negative_numbers(argv: Sequence[str]) -> list[str]:
    """``--opt -1e-3`` as ``--opt=-1e-3``: argparse takes a value that starts with '-' for an
    option unless it is a plain negative number (-1, -0.5), so exponent forms and lists need this."""
    out: list[str] = []
    for token in argv:
        previous = out[-1] if out else ""
        if (_NEGATIVE_NUMBER.match(token) and previous.startswith("--") and "=" not in previous
                and previous != "--"):
            out[-1] = f"{previous}={token}"
        else:
            out.append(token)
    return out


def main(argv: "Sequence[str] | None" = None) -> int:
    """Run ``noiseprop`` with ``argv`` (default: sys.argv[1:]); return the exit code.

    Usage errors (and ``--help``) raise ``SystemExit`` from argparse, with
    code 2 (0 for help) and one line naming the option.
    """
    from ..utils.files import Terminated, raise_terminated

    argv = list(sys.argv[1:] if argv is None else argv)
    command, args = "noiseprop", None
    with _sigterm_raises(raise_terminated), warnings.catch_warnings():
        warnings.showwarning = _warning_line(lambda: command, warnings.showwarning)
        try:
            args = build_parser().parse_args(protect_negative_numbers(argv))
            command = args.command_name
            return _run(args)
        except KeyboardInterrupt:
            print(f"\n{command}: interrupted (Ctrl-C); temporary files removed", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Terminated as stop:
            print(f"{command}: terminated (SIGTERM); temporary files removed", file=sys.stderr)
            return int(stop.code)
        except BAD_INPUT_ERRORS as err:
            text = _one_line(err)
            if isinstance(err, ValueError):
                text = option_message(text, getattr(args, "parameter_options", {}))
            print(f"{command}: error: {text}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except Exception:  # a bug: show it, but never as exit 1 ("check failed")
            traceback.print_exc()
            print(f"{command}: internal error (a bug in noiseprop; please report it with the traceback above)",
                  file=sys.stderr)
            return EXIT_INTERNAL


def _warning_line(command, show_default):
    """A ``warnings.showwarning`` that prints noiseprop's own warnings to the
    user (UserWarning, e.g. a prediction's error estimate over 5 %) as one
    line, ``noiseprop predict: warning: ...``, not with the source file and
    line of the call; other categories keep Python's format."""
    def show(message, category, filename, lineno, file=None, line=None):
        if category is UserWarning:
            print(f"{command()}: warning: {message}", file=sys.stderr if file is None else file)
        else:
            show_default(message, category, filename, lineno, file, line)
    return show


def _run(args) -> int:
    from ..utils.resources import memory_limit, time_limit

    try:
        limits = (memory_limit(getattr(args, "max_memory", None)), time_limit(getattr(args, "max_time", None)))
    except ValueError as err:
        raise ValueError(f"--max-memory / --max-time: {err}") from None
    with limits[0], limits[1]:
        return args.run(args)


def _one_line(err: BaseException) -> str:
    """The error's message on one line (MemoryError and messageless errors named by type)."""
    if isinstance(err, MemoryError):
        return (f"out of memory ({err or 'MemoryError'}); lower the sizes, or the memory limit "
                "(--max-memory) so that the job is refused before it starts")
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    if isinstance(err, KeyError) or not text:
        text = f"{type(err).__name__}: {text or 'no details'}"
    return text


class _sigterm_raises:
    """SIGTERM raises :class:`Terminated` in the main thread (so that clean-up runs) while active."""

    def __init__(self, handler):
        self.handler, self.previous = handler, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self.handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False
