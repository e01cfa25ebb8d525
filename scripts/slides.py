"""The seminar decks: one reveal.js deck per chapter notebook, and a PDF handout of it, from the executed chapters.

Reads `_build/jupyter_execute/<name>.ipynb` (what `make book` executed, its outputs from jupyter-cache) and keeps the
cells tagged `slide` (starts a slide) or `slide-more` (adds to the slide before), after a title slide made from the
chapter's H1. A code cell shows its code unless tagged `hide-input`/`remove-input`, and its outputs but stderr (a
widget becomes a link to the chapter); glued outputs (myst-nb's `glue`) show once. A Markdown cell is parsed by
myst-parser's own markdown-it parser with the book's extensions and rendered to HTML; its directives and roles
(admonitions, `{glue}`, figures, `{literalinclude}` through Sphinx's own reader) by the rules in :func:`parser`.
nbconvert's SlidesExporter renders the deck (scripts/slides_template: reveal.js and MathJax from the book's
`_static`, no CDN); Chromium prints it (reveal.js's `?print-pdf`) to the handout, whose pages pypdf counts. Both land
in `_build/html/slides/`, written atomically.

    python scripts/slides.py [NAME ...]       (default: every chapter notebook of _toc.yml; `make slides`)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import functools
import html
import http.server
import mimetypes
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
EXECUTED = ROOT / "_build" / "jupyter_execute"
JCACHE = ROOT / "_build" / ".jupyter_cache"
HTML = ROOT / "_build" / "html"
OUT = HTML / "slides"
STATIC = "../_static"  # the book's static folder, as a deck in slides/ sees it
NEEDS = ("reveal.js/dist/reveal.js", "reveal.js/plugin/notes/notes.js", "mathjax/es5/tex-chtml.js")
TEMPLATES = Path(__file__).resolve().parent / "slides_template"
GLUE_PREFIX = "application/papermill.record/"
HIDE_INPUT = {"hide-input", "remove-input"}
WIDGET = "application/vnd.jupyter.widget-view+json"  # a slide has no widget manager: it points to the chapter

WIDTH, HEIGHT = 1280, 720
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chapters() -> list[str]:
    """The notebook chapters of _toc.yml, in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [f for f in files if (BOOK / f"{f}.ipynb").exists()]


# ---- outputs -------------------------------------------------------------------------------------------------------

def unglued(output: dict) -> dict:
    """The output with a glued (display=False) mimebundle's prefix removed, so that it shows."""
    data = output.get("data", {})
    if not any(k.startswith(GLUE_PREFIX) for k in data):
        return output
    output = copy.deepcopy(output)
    output["data"] = {k.removeprefix(GLUE_PREFIX): v for k, v in data.items()}
    return output


def glued(nb) -> dict[str, dict]:
    """Every glued value of the notebook: name -> mimebundle (unprefixed)."""
    found = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                found[name] = unglued(out)["data"]
    return found


def shown(bundle: dict) -> str:
    """HTML for a mimebundle: image, HTML, Markdown/LaTeX as source, else its text."""
    for kind in ("image/png", "image/jpeg"):
        if kind in bundle:
            return f'<img src="data:{kind};base64,{"".join(bundle[kind]).strip()}" alt="figure">'
    if "image/svg+xml" in bundle:
        return "".join(bundle["image/svg+xml"])
    if "text/html" in bundle:
        return "".join(bundle["text/html"])
    for kind in ("text/markdown", "text/latex"):
        if kind in bundle:
            return "".join(bundle[kind])
    return f"<pre>{html.escape(''.join(bundle.get('text/plain', '')))}</pre>"


def one_block(text: str) -> str:
    """Raw HTML without blank lines, so that Markdown keeps it one HTML block (newlines inside ``<pre>`` become
    character references, which render the same)."""
    text = re.sub(r"<pre\b.*?</pre>", lambda m: m[0].replace("\n", "&#10;"), text, flags=re.S)
    return "\n".join(line for line in text.splitlines() if line.strip())


# ---- MyST -> HTML: parsed by myst-parser's markdown-it set-up, as the book parses it --------------------------------

ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error", "seealso"}
EXTENSIONS = {"dollarmath", "amsmath", "colon_fence", "deflist", "html_image", "substitution"}  # _config.yml's


def data_uri(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def literalinclude(arg: str, options: dict) -> str:
    """The included source, read by Sphinx's own reader of ``literalinclude`` (``:pyobject:``, ``:lines:``, ...)."""
    from sphinx.config import Config
    from sphinx.directives.code import LiteralIncludeReader

    text, _ = LiteralIncludeReader(str(BOOK / arg), options, Config()).read()
    return code(text, options.get("language", "python" if arg.endswith(".py") else ""))


def code(text: str, language: str) -> str:
    """Highlighted code, as nbconvert highlights a code cell (its ``Highlight2HTML`` filter, Pygments)."""
    from nbconvert.filters.highlight import Highlight2HTML

    return Highlight2HTML()(text.rstrip(), language or "text")


def directive(info: str, content: str, glue: dict) -> str:
    """HTML for one MyST directive (``info``: ``{name} argument``, ``content``: its options and body)."""
    name, _, arg = info.strip()[1:].partition("}")
    arg, lines, options = arg.strip(), content.splitlines(), {}
    while lines and re.match(r"^:[\w-]+:", lines[0].strip()):
        key, _, value = lines.pop(0).strip()[1:].partition(":")
        options[key] = value.strip()
    body = "\n".join(lines)
    if name == "admonition" or name in ADMONITIONS:
        kind = html.escape(options.get("class", name))
        return (f'<div class="admonition {kind}"><p class="admonition-title">{html.escape(arg or name.title())}</p>'
                f"{myst(body, glue)}</div>")
    if name in ("glue", "glue:any", "glue:figure"):
        caption = f'<div class="course-caption">{myst(body, glue)}</div>' if body.strip() else ""
        return (shown(glue[arg]) if arg in glue else "") + caption
    if name in ("figure", "image"):
        caption = f'<div class="course-caption">{myst(body, glue)}</div>' if body.strip() else ""
        return f'<img src="{data_uri(BOOK / arg)}" alt="{html.escape(options.get("alt", ""))}">' + caption
    if name == "literalinclude":
        return literalinclude(arg, options)
    if name in ("code", "code-block", "sourcecode"):
        return code(body, arg)
    if name == "math":
        return f"\\[{html.escape(body.strip())}\\]"
    if name in ("toctree", "bibliography", "margin", "sidebar", "raw", "glossary", "tableofcontents"):
        return ""
    return (f"<p><strong>{html.escape(arg)}</strong></p>" if name == "dropdown" and arg else "") + myst(body, glue)


def role(name: str, text: str, glue: dict) -> str:
    if name == "math":
        return f"\\({html.escape(text)}\\)"
    if name.startswith("glue"):
        return html.escape("".join(glue.get(text.split(":")[0], {}).get("text/plain", text)).strip("'\""))
    if name in ("code", "literal", "file", "command"):
        return f"<code>{html.escape(text)}</code>"
    if name in ("sub", "sup"):
        return f"<{name}>{html.escape(text)}</{name}>"
    label = re.match(r"^(.*?)\s*<[^>]*>$", text)  # {ref}`words <target>`
    return html.escape(label[1] if label else text)


@functools.cache
def parser():
    """myst-parser's markdown-it parser with the book's extensions, rendering to HTML; the MyST parts (directives,
    roles, math, targets, comments, local images) by the rules below."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    md = create_md_parser(MdParserConfig(enable_extensions=EXTENSIONS), RendererHTML)

    def fenced(self, tokens, i, options, env):
        t = tokens[i]
        return directive(t.info, t.content, env["glue"]) if t.info.startswith("{") else code(t.content, t.info)

    def image(self, tokens, i, options, env):
        src = tokens[i].attrGet("src") or ""
        if not src.startswith(("http", "data:")) and (BOOK / src).exists():
            tokens[i].attrSet("src", data_uri(BOOK / src))
        return self.image(tokens, i, options, env)

    rules = {"fence": fenced, "colon_fence": fenced, "image": image,
             "myst_role": lambda self, tokens, i, options, env: role(tokens[i].meta["name"], tokens[i].content,
                                                                     env["glue"]),
             "math_inline": lambda self, tokens, i, options, env: f"\\({html.escape(tokens[i].content)}\\)",
             "math_block": lambda self, tokens, i, options, env: f"\\[{html.escape(tokens[i].content)}\\]\n",
             "amsmath": lambda self, tokens, i, options, env: f"\\[{html.escape(tokens[i].content)}\\]\n",
             "math_block_label": lambda self, tokens, i, options, env: f"\\[{html.escape(tokens[i].content)}\\]\n",
             "myst_target": lambda *a: "", "myst_line_comment": lambda *a: "", "myst_block_break": lambda *a: ""}
    for kind, rule in rules.items():
        md.add_render_rule(kind, rule)
    return md


def myst(source: str, glue: dict) -> str:
    """A MyST Markdown cell as HTML (math left to MathJax), in one block that nbconvert's Markdown keeps as it is."""
    return one_block(f'<div class="course-md">{parser().render(source, {"glue": glue})}</div>')


# ---- the deck ------------------------------------------------------------------------------------------------------

def title_of(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = re.search(r"^#\s+(.+?)\s*$", cell.source, re.M)
            if found:
                return found[1]
    return "Seminar deck"


def slide_notebook(nb, name: str):
    """The deck's notebook: a title slide, then the tagged cells with nbconvert's slide metadata."""
    glue = glued(nb)
    title = title_of(nb)
    opening = nbformat.v4.new_markdown_cell(
        f'<div class="course-title">\n\n# {title}\n\nSeminar deck of the chapter <a href="../{name}.html">{name}</a>, '
        f"built from the notebook that the book build executed: the chapter's own outputs and provenance stamps. "
        f"Arrow keys move; the S key opens the speaker view.\n\n</div>")
    opening.metadata["slideshow"] = {"slide_type": "slide"}
    cells = [opening]
    widget = nbformat.v4.new_output("display_data", data={"text/html": (  # no widget manager on a slide: a link
        f'<p><em>An interactive widget: open it in the <a href="../{name}.html">chapter</a>.</em></p>')})
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if not tags & {"slide", "slide-more"} or "remove-cell" in tags:
            continue
        cell = copy.deepcopy(cell)
        cell.metadata["slideshow"] = {"slide_type": "slide" if "slide" in tags else "-"}
        if cell.cell_type == "markdown":  # the chapter's H1 is on the title slide already
            cell.source = myst(re.sub(rf"^#\s+{re.escape(title)}\s*$\n?", "", cell.source, count=1, flags=re.M), glue)
        elif cell.cell_type == "code":
            kept, seen = [], []
            for o in map(unglued, [] if "remove-output" in tags else cell.get("outputs", [])):
                if o.get("name") == "stderr" or (o.get("data") or o.get("text")) in seen:
                    continue  # slides leave out stderr (progress bars, warnings) and repeats (glued, then shown)
                seen.append(o.get("data") or o.get("text"))
                kept.append(widget if WIDGET in o.get("data", {}) else o)
            cell.outputs = kept
            if tags & HIDE_INPUT:
                cell.metadata.setdefault("transient", {})["remove_source"] = True
        cells.append(cell)
    deck = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(nb.metadata))
    deck.metadata.pop("widgets", None)
    deck.metadata["title"] = title
    return deck


@functools.cache
def exporter():
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    c = Config()
    c.SlidesExporter.extra_template_basedirs = [str(TEMPLATES)]
    c.SlidesExporter.template_name = "course_reveal"
    c.SlidesExporter.reveal_url_prefix = f"{STATIC}/reveal.js"
    c.SlidesExporter.reveal_theme = "white"
    c.SlidesExporter.reveal_width = str(WIDTH)
    c.SlidesExporter.reveal_height = str(HEIGHT)
    c.SlidesExporter.mathjax_url = f"{STATIC}/mathjax/es5/tex-chtml.js"
    c.SlidesExporter.require_js_url = f"{STATIC}/require.js"
    c.SlidesExporter.exclude_input_prompt = True
    c.SlidesExporter.exclude_output_prompt = True
    c.SlidesExporter.exclude_anchor_links = True
    c.SlidesExporter.embed_images = True
    return SlidesExporter(config=c)


def render(nb, name: str) -> str:
    body, _ = exporter().from_notebook_node(slide_notebook(nb, name), resources={"metadata": {"name": name}})
    return body


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


# ---- the handout ---------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def serve(directory: Path):
    """``directory`` over HTTP on a free loopback port; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def pdf_page_count(path: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(path).pages)


def print_pdfs(names: list[str], out: Path = OUT) -> dict[str, int]:
    """Each deck in ``out`` printed by Chromium (reveal.js's print layout, one page per slide) beside it; returns the
    page counts. ``out``'s parent is served (the decks load ../_static from it)."""
    from playwright.sync_api import sync_playwright

    pages = {}
    with serve(out.parent) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name in names:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            outside, errors = [], []

            def route(r, outside=outside):
                if r.request.url.startswith(("data:", "blob:")) or urlparse(r.request.url).hostname == "127.0.0.1":
                    r.continue_()
                else:
                    outside.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.goto(f"{url}/{out.name}/{name}.html?print-pdf", wait_until="networkidle")
            page.wait_for_function("document.body.dataset.deckReady === '1'", timeout=60000)
            if outside or errors:
                raise SystemExit(f"slides: {name}.html asked the internet for {outside} / page errors {errors}")
            pages[name] = page.locator(".pdf-page").count()
            fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.pdf.")
            os.close(fd)
            for attempt in range(3):  # a print taken before the print layout settled has too few pages: again
                page.pdf(path=tmp, prefer_css_page_size=True, print_background=True)
                if pdf_page_count(Path(tmp)) == pages[name]:
                    break
                page.wait_for_timeout(1000)
            else:
                got = pdf_page_count(Path(tmp))
                os.unlink(tmp)
                raise SystemExit(f"slides: {name}.pdf kept printing {got} pages for {pages[name]} slides")
            os.chmod(tmp, 0o644)
            os.replace(tmp, out / f"{name}.pdf")
            page.close()
        browser.close()
    return pages


def executed_notebook(path: Path) -> nbformat.NotebookNode:
    """The chapter as the book build executed it. myst-nb writes ``_build/jupyter_execute/<name>.ipynb`` without
    outputs when it renders from jupyter-cache (what `make data` filled): the outputs the cache holds for the
    notebook's code cells are merged in."""
    nb = nbformat.read(path, as_version=4)
    if any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
        return nb
    from jupyter_cache import get_cache

    try:
        _, merged = get_cache(str(JCACHE)).merge_match_into_notebook(nb)
    except KeyError:
        raise SystemExit(f"slides: {path.name} has no outputs and jupyter-cache ({JCACHE}) holds no execution of its "
                         f"code: build the book first (`make book`)") from None
    return merged


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="chapter notebooks (default: all of _toc.yml)")
    parser.add_argument("--no-pdf", action="store_true", help="only the HTML decks")
    parser.add_argument("--executed", type=Path, default=EXECUTED, help="folder of the executed notebooks")
    parser.add_argument("--out", type=Path, default=OUT, help="where the decks go (beside the book's _static)")
    args = parser.parse_args(argv)
    executed, out = args.executed, args.out
    names = args.names or chapters()
    missing = [str(executed / f"{n}.ipynb") for n in names if not (executed / f"{n}.ipynb").exists()]
    missing += [str(out.parent / "_static" / s) for s in NEEDS if not (out.parent / "_static" / s).exists()]
    if missing:
        print(f"slides: missing {', '.join(missing)}: build the book first (`make book`).", file=sys.stderr)
        return 2
    start = time.perf_counter()
    for name in names:
        nb = executed_notebook(executed / f"{name}.ipynb")
        deck = slide_notebook(nb, name)
        tagged = len([c for c in deck.cells if c.metadata["slideshow"]["slide_type"] == "slide"]) - 1
        write_atomic(out / f"{name}.html", render(nb, name).encode())
        note = "" if tagged else " (no cell tagged `slide` yet: only the title slide)"
        print(f"slides: {out / name}.html, {tagged + 1} slides{note}")
    if not args.no_pdf:
        for name, n in print_pdfs(names, out).items():
            print(f"slides: {out / name}.pdf, {n} pages")
    print(f"slides: {len(names)} decks in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
