"""Optional dependencies: imported on use, with an error that says how to install them."""
from __future__ import annotations

import importlib

__all__ = ["MissingDependency", "require"]


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
        package = module.split(".")[0]
        raise MissingDependency(
            f"{purpose} needs {package}, which is not installed: pip install 'noiseprop[{extra}]'"
        ) from None
