"""Sphinx configuration of the noiseprop documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors);
doctests of the pages and of the API docstrings: ``sphinx-build -W -b doctest docs docs/_build/doctest``.
"""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document this checkout, not another installed copy
sys.path.insert(0, str(Path(__file__).parent / "_ext"))
os.environ.setdefault("MPLBACKEND", "Agg")

import noiseprop  # noqa: E402

project = "noiseprop"
author = "The noiseprop developers"
copyright = "2026, The noiseprop developers"
version = release = noiseprop.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinxarg.ext",
    "noiseprop_docs",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "_templates", "_ext", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# API reference: one page per module, generated from the docstrings.
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections state the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Docstring examples are run by pytest (--doctest-modules) and by `-b doctest` here.
doctest_global_setup = """
import numpy as np
import noiseprop
"""

html_theme = "alabaster"
html_title = f"noiseprop {release}"
html_static_path = []
suppress_warnings = ["ref.python"]  # short names such as "symbolic" exist in several subpackages
