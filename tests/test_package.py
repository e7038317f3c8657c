"""The package's shape: a cheap, side-effect-free import and a visible layout."""
import importlib
import subprocess
import sys

import pytest

import noiseprop

HEAVY = ("numba", "matplotlib", "sympy", "scipy.stats", "torch")


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


def test_import_loads_no_heavy_dependency():
    loaded = _run(f"import sys, noiseprop; print([m for m in {HEAVY!r} if m in sys.modules])")
    assert loaded.strip() == "[]"


def test_import_leaves_the_matplotlib_backend_alone():
    code = (
        "import matplotlib; matplotlib.use('svg'); import noiseprop, numpy as np\n"
        "from noiseprop.plotting import figure, save_figure\n"
        "fig, ax = figure(); ax.plot([0, 1])\n"
        "print(matplotlib.get_backend())"
    )
    assert _run(code).strip() == "svg"


@pytest.mark.parametrize("name", noiseprop.__all__)
def test_every_public_name_resolves(name):
    assert getattr(noiseprop, name) is not None


@pytest.mark.parametrize("name", noiseprop._SUBMODULES)
def test_subpackages_are_attributes(name):
    assert getattr(noiseprop, name) is importlib.import_module(f"noiseprop.{name}")


def test_every_public_module_of_the_package_is_listed():
    """``noiseprop.recurrent`` (and the core modules mixture, output_statistics) were not attributes."""
    import pkgutil

    public = {m.name for m in pkgutil.iter_modules(noiseprop.__path__) if not m.name.startswith("_")}
    assert public - {"data"} == set(noiseprop._SUBMODULES)


def test_no_module_shadows_a_function():
    assert callable(noiseprop.sweep)
    assert callable(importlib.import_module("noiseprop.studies.sweeps").grid_points)
    for name in noiseprop.__all__:
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"noiseprop.{name}")


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        noiseprop.nonexistent
