"""Sphinx glue that keeps the built book offline and free of page errors.

- Drops sphinx-thebe's scripts. Jupyter Book 1 registers them twice (a page error: "Identifier 'THEBE_JS_URL' has
  already been declared"), and thebe needs a Binder server on the internet: this book launches on Colab instead.
"""


def _drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    context["script_files"] = [
        s for s in scripts
        if "sphinx-thebe" not in str(s) and "THEBE_JS_URL" not in (getattr(s, "attributes", {}) or {}).get("body", "")
    ]


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
