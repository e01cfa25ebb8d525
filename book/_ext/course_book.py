"""Sphinx glue that keeps the built book offline and free of page errors.

- Drops sphinx-thebe's scripts. Jupyter Book 1 registers them twice (a page error: "Identifier 'THEBE_JS_URL' has
  already been declared"), and thebe needs a Binder server on the internet: this book launches on Colab instead.
- Links each chapter notebook's page, under its title, to its seminar deck and PDF handout (`make slides` writes them
  to slides/<name>.html and .pdf beside the pages; scripts/slides.py).
"""

from pathlib import Path

from docutils import nodes


def _drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    context["script_files"] = [
        s for s in scripts
        if "sphinx-thebe" not in str(s) and "THEBE_JS_URL" not in (getattr(s, "attributes", {}) or {}).get("body", "")
    ]


def _deck_link(app, doctree, docname):
    if not (Path(app.srcdir) / f"{docname}.ipynb").exists():
        return
    up, name = "../" * docname.count("/"), docname.rsplit("/", 1)[-1]
    link = (f'<p class="course-deck">Seminar deck: <a href="{up}slides/{name}.html">slides</a> · '
            f'<a href="{up}slides/{name}.pdf">PDF handout</a></p>')
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is not None and section.children and isinstance(section[0], nodes.title):
        section.insert(1, nodes.raw("", link, format="html"))


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("doctree-resolved", _deck_link)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
