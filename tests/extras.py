"""Skipping tests whose optional dependency is not installed, visibly and saying how to get it."""
import pytest

#: Optional module -> the noiseprop extra that installs it.
EXTRAS = {"torch": "train", "onnx": "onnx", "sklearn": "test-all", "distributed": "dask", "dask": "dask"}


def needs(module: str):
    """Import ``module`` or skip the test with the pip command (``-ra`` lists the reason)."""
    top = module.split(".")[0]
    return pytest.importorskip(
        module, reason=f"needs {top}, not installed: pip install 'noiseprop[{EXTRAS[top]}]'"
    )
