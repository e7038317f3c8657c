"""Optional dependencies: imported on use, with an error that says how to install them."""
from __future__ import annotations

import importlib
import importlib.util

__all__ = ["MissingDependency", "require", "available", "missing_message"]


class MissingDependency(ImportError):
    """An optional dependency is not installed; the message gives the pip command.

    The command-line interface turns it into exit status 2 with that message.
    """


def require(module: str, extra: str, purpose: str):
    """Import ``module`` or raise :class:`MissingDependency`.

    Parameters
    ----------
    module : str
        The module to import, e.g. "torch" or "sklearn.datasets".
    extra : str
        The noiseprop extra that installs it, e.g. "train".
    purpose : str
        What needs it, for the message, e.g. "reading PyTorch files".
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(missing_message(module, extra, purpose)) from None


def missing_message(module: str, extra: str, purpose: str) -> str:
    """The message of :class:`MissingDependency`: what needs the package and the pip command.

    Examples
    --------
    >>> missing_message("torch", "train", "training")
    "training needs torch, which is not installed: pip install 'noiseprop[train]'"
    """
    package = module.split(".")[0]
    return f"{purpose} needs {package}, which is not installed: pip install 'noiseprop[{extra}]'"


def available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (cheap).

    Examples
    --------
    >>> available("json"), available("no_such_module_here")
    (True, False)
    """
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module set to None
        return False
