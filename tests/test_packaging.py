"""Packaging metadata: PEP 621 in pyproject.toml, extras, ranges rather than pins,
LICENSE, CITATION.cff and the package data of a plain install."""
import re
import sys
from importlib import resources
from pathlib import Path

import pytest

import noiseprop

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli",
                              reason="reading pyproject.toml needs Python 3.11 or tomli")


@pytest.fixture(scope="module")
def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_metadata_lives_in_pyproject(project):
    assert not (ROOT / "setup.cfg").exists()
    assert project["name"] == "noiseprop" and "version" in project["dynamic"]
    assert project["license"] == "MIT" and project["scripts"] == {"noiseprop": "noiseprop.cli:main"}
    assert set(project["optional-dependencies"]) == {"test", "test-all", "train", "onnx", "dask", "reservoir", "docs"}


def test_ranges_not_pins_except_torch(project):
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pinned = {re.split(r"[=\[]", r)[0] for r in requirements if "==" in r}
    assert pinned == {"torch"}  # the CPU build; the reason is a comment in pyproject.toml
    assert "CPU" in (ROOT / "pyproject.toml").read_text().split("train = [")[0].rsplit("\n\n", 1)[-1]


def test_light_test_extra_and_test_all(project):
    extras = project["optional-dependencies"]
    assert all(r.split(">")[0] in ("pytest", "hypothesis") for r in extras["test"])
    assert "noiseprop[test,train,onnx,dask,reservoir]" in extras["test-all"]


def test_license_and_citation():
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License") and "2026 The noiseprop developers" in license_text
    assert "scikit-learn" in license_text and "BSD" in license_text  # the shipped digits
    citation = (ROOT / "CITATION.cff").read_text()
    assert "cff-version: 1.2.0" in citation and "The noiseprop developers" in citation
    assert re.search(r"^version: (\S+)$", citation, re.M).group(1) == noiseprop.__version__
    assert re.search(r"^license: MIT$", citation, re.M)


def test_package_data_is_shipped():
    data = resources.files("noiseprop.data")
    assert {"default_network.npz", "digits.npz"} <= {p.name for p in data.iterdir()}
