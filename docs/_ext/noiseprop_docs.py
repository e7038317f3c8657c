"""Local Sphinx extension: ``noiseprop-figure``, a paper figure with its own caption.

``{noiseprop-figure} F1_symmetric`` shows ``paper_figures/output/F1_symmetric.png``
with the caption stored beside it in ``F1_symmetric.json`` (written by the figure
code), so the documentation always shows the caption of the committed figure.
"""
import json
import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

FIGURES = Path(__file__).resolve().parents[2] / "paper_figures" / "output"


class NoisepropFigure(SphinxDirective):
    required_arguments = 1  # the file stem, e.g. F1_symmetric
    option_spec = {"width": directives.unchanged}

    def run(self):
        stem = self.arguments[0]
        png, data = FIGURES / f"{stem}.png", FIGURES / f"{stem}.json"
        if not png.is_file() or not data.is_file():
            raise self.error(f"noiseprop-figure: {png} or {data} is missing")
        self.env.note_dependency(str(data))
        caption = json.loads(data.read_text())["caption"]
        # image paths are relative to the document's folder
        doc_dir = Path(self.env.doc2path(self.env.docname)).parent
        uri = Path(*[".."] * len(doc_dir.relative_to(self.env.srcdir).parts), "..", "paper_figures",
                   "output", f"{stem}.png").as_posix()
        image = nodes.image(uri=uri, alt=stem, width=self.options.get("width", "100%"))
        figure = nodes.figure("", image, nodes.caption(caption, caption))
        figure["ids"].append(nodes.make_id(stem))
        return [figure]


#: ``|x|`` (an absolute value in plain-text docstrings) outside code: reST would read a substitution.
_BARS = re.compile(r"(?<![`\\|])\|([^|`\n]+)\|(?![`|_])")


def escape_absolute_values(app, what, name, obj, options, lines):
    """Docstrings write absolute values as ``|z|``; show them as such, not as substitutions.

    Lines of examples (``>>>``, ``...``) and literal blocks are left alone."""
    literal = None  # indentation of the current literal block, if any
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if literal is not None and (not stripped or indent > literal):
            continue
        literal = None
        if stripped.startswith((">>>", "...")):
            continue
        lines[i] = _BARS.sub(r"\\|\1\\|", line)
        if stripped.endswith("::"):
            literal = indent


def module_namespace_for_doctests(app, doctree):
    """Run the docstring examples of an API page in their module's namespace.

    Docstring examples use the names of their module, as ``pytest --doctest-modules``
    runs them; ``sphinx-build -b doctest`` gets a hidden setup block that imports the
    module's namespace on every generated page ``generated/noiseprop.X``."""
    docname = app.env.docname
    if not docname.startswith("generated/noiseprop"):
        return
    module = docname.split("/", 1)[1]
    code = f"import importlib\nglobals().update(vars(importlib.import_module({module!r})))"
    setup_node = nodes.comment(code, code)
    setup_node["testnodetype"] = "testsetup"
    setup_node["groups"] = ["default"]
    setup_node["options"] = {}
    doctree.insert(0, setup_node)


def setup(app):
    app.add_directive("noiseprop-figure", NoisepropFigure)
    app.connect("autodoc-process-docstring", escape_absolute_values)
    app.connect("doctree-read", module_namespace_for_doctests)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
