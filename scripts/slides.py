"""The seminar decks: one reveal.js deck per chapter notebook, and a PDF handout of it, from the executed chapters.

Reads `_build/jupyter_execute/<name>.ipynb` (what `make book` executed, its outputs from jupyter-cache), keeps the cells tagged
`slide` (starts a slide) or `slide-more` (adds to the slide before), in order, after a title slide made from the
chapter's H1. A code cell shows its code unless it is tagged `hide-input` or `remove-input`, and its outputs but
stderr (a widget becomes a link to the chapter). Outputs glued without display (myst_nb's `glue`) are shown, once;
the MyST that nbconvert's Markdown renderer does not know (admonitions, `{glue}` references, figures,
`{literalinclude}`, roles) is turned into Markdown and HTML first; content that does not fit 1280×720 is scaled
down in the browser (the template). nbconvert's
SlidesExporter renders the deck (scripts/slides_template: reveal.js and MathJax from the book's `_static`, no CDN);
Chromium prints it (reveal.js's `?print-pdf`) to the handout. Both land in `_build/html/slides/`, written atomically.

    python scripts/slides.py [NAME ...]       (default: every chapter notebook of _toc.yml; `make slides`)
"""

from __future__ import annotations

import argparse
import ast
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


def distinct(outputs: list) -> list:
    """The outputs without repeats (a value glued, then displayed, shows once)."""
    seen, kept = [], []
    for o in outputs:
        key = o.get("data") or o.get("text")
        if key not in seen:
            seen.append(key)
            kept.append(o)
    return kept


def widget_note(name: str) -> dict:
    """What a slide shows for a widget: a link to the chapter, where it works."""
    note = f'<p><em>An interactive widget: open it in the <a href="../{name}.html">chapter</a>.</em></p>'
    return nbformat.v4.new_output("display_data", data={"text/html": note})


def keep_output(output: dict) -> bool:
    """Slides leave out stderr (progress bars, warnings)."""
    return not (output.get("output_type") == "stream" and output.get("name") == "stderr")


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
    """Raw HTML without blank lines, so that Markdown keeps it one HTML block."""
    return "\n".join(line for line in text.splitlines() if line.strip())


# ---- MyST -> Markdown + HTML -----------------------------------------------------------------------------------------

FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[^}\s]+)\}\s*(?P<arg>.*)$")
ROLE = re.compile(r"\{(?P<name>[a-zA-Z:_-]+)\}`(?P<text>[^`]*)`")
IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)")
ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error", "seealso"}


def data_uri(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def pyobject(source: str, name: str) -> str:
    """The source of a top-level (or Class.method) definition, as Sphinx's literalinclude :pyobject: finds it."""
    tree = ast.parse(source)
    body = tree.body
    node = None
    for part in name.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            raise SystemExit(f"slides: literalinclude :pyobject: {name} not found")
        body = node.body
    lines = source.splitlines()
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return "\n".join(lines[start - 1:node.end_lineno])


def line_ranges(spec: str, lines: list[str]) -> list[str]:
    picked = []
    for part in spec.split(","):
        a, _, b = part.strip().partition("-")
        lo = int(a) if a else 1
        hi = (int(b) if b else len(lines)) if _ else lo
        picked += lines[lo - 1:hi]
    return picked


def literalinclude(arg: str, options: dict) -> str:
    source = (BOOK / arg).read_text()
    if "pyobject" in options:
        source = pyobject(source, options["pyobject"])
    if "lines" in options:
        source = "\n".join(line_ranges(options["lines"], source.splitlines()))
    language = options.get("language", "python" if arg.endswith(".py") else "")
    return f"```{language}\n{source.rstrip()}\n```"


def role(match: re.Match, glue: dict) -> str:
    name, text = match["name"], match["text"]
    if name == "math":
        return f"${text}$"
    if name.startswith("glue"):
        value = "".join(glue.get(text.split(":")[0], {}).get("text/plain", text))
        return value.strip("'\"")
    if name in ("cite", "cite:p", "cite:t"):
        return f"[{text}]"
    if name in ("code", "literal", "file", "command"):
        return f"`{text}`"
    if name in ("sub", "sup"):
        return f"<{name}>{text}</{name}>"
    label = re.match(r"^(.*?)\s*<[^>]*>$", text)  # {ref}`words <target>`
    return label[1] if label else text


def directive(name: str, arg: str, options: dict, body: str, glue: dict) -> str:
    """Markdown/HTML for one MyST directive."""
    if name == "admonition" or name in ADMONITIONS:
        title = arg or name.title()
        kind = options.get("class", name)
        return (f'<div class="admonition {html.escape(kind)}">\n<p class="admonition-title">{html.escape(title)}</p>'
                f"\n\n{myst(body, glue)}\n\n</div>")
    if name in ("glue", "glue:any"):
        return one_block(shown(glue[arg])) if arg in glue else ""
    if name == "glue:figure":
        figure = one_block(shown(glue[arg])) if arg in glue else ""
        return f"{figure}\n\n<div class=\"course-caption\">\n\n{myst(body, glue)}\n\n</div>"
    if name in ("figure", "image"):
        img = f'<img src="{data_uri(BOOK / arg)}" alt="{html.escape(options.get("alt", ""))}">'
        return img + (f"\n\n<div class=\"course-caption\">\n\n{myst(body, glue)}\n\n</div>" if body.strip() else "")
    if name == "literalinclude":
        return literalinclude(arg, options)
    if name in ("code", "code-block", "sourcecode"):
        return f"```{arg}\n{body.rstrip()}\n```"
    if name == "math":
        return f"$$\n{body.strip()}\n$$"
    if name in ("toctree", "bibliography", "margin", "sidebar", "raw", "glossary", "tableofcontents"):
        return ""
    if name == "dropdown":
        return f"**{arg}**\n\n{myst(body, glue)}" if arg else myst(body, glue)
    return myst(body, glue)  # containers (tab-set, div, only, ...): their content


def myst(source: str, glue: dict) -> str:
    """MyST Markdown to the CommonMark + HTML that nbconvert renders (math is left to MathJax)."""
    lines, out, i = source.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        opening = FENCE.match(line.strip())
        if opening:
            fence = opening["fence"]
            j = i + 1
            while j < len(lines) and not (lines[j].strip() and set(lines[j].strip()) == {fence[0]}
                                          and len(lines[j].strip()) >= len(fence)):
                j += 1
            body = lines[i + 1:j]
            options = {}
            while body and re.match(r"^:[\w-]+:", body[0].strip()):
                key, _, value = body.pop(0).strip()[1:].partition(":")
                options[key] = value.strip()
            out.append(directive(opening["name"], opening["arg"].strip(), options, "\n".join(body), glue))
            i = j + 1
            continue
        if re.match(r"^\s*\([\w.:-]+\)=\s*$", line) or line.startswith("%"):
            i += 1  # MyST targets and comments
            continue
        out.append(line)
        i += 1
    text = "\n".join(out)
    text = ROLE.sub(lambda m: role(m, glue), text)
    return IMAGE.sub(lambda m: m[0] if m["src"].startswith(("http", "data:")) or not (BOOK / m["src"]).exists()
                     else f'![{m["alt"]}]({data_uri(BOOK / m["src"])})', text)


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
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if not tags & {"slide", "slide-more"} or "remove-cell" in tags:
            continue
        cell = copy.deepcopy(cell)
        cell.metadata["slideshow"] = {"slide_type": "slide" if "slide" in tags else "-"}
        if cell.cell_type == "markdown":  # the chapter's H1 is on the title slide already
            cell.source = myst(re.sub(rf"^#\s+{re.escape(title)}\s*$\n?", "", cell.source, count=1, flags=re.M), glue)
        elif cell.cell_type == "code":
            outputs = [] if "remove-output" in tags else cell.get("outputs", [])
            cell.outputs = distinct([unglued(o) for o in outputs if keep_output(o)])
            cell.outputs = [widget_note(name) if WIDGET in o.get("data", {}) else o for o in cell.outputs]
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
    """The pages of a PDF: its ``/Type /Page`` objects, also those in compressed object streams."""
    import zlib

    data = path.read_bytes()
    parts = [data]
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        try:
            parts.append(zlib.decompressobj().decompress(m.group(1)))
        except zlib.error:
            pass
    return sum(len(re.findall(rb"/Type\s*/Page(?![s\w])", p)) for p in parts)


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
