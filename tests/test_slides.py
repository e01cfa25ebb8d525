"""The seminar decks (scripts/slides.py): which cells a deck keeps, and every deck opened offline in Chromium.

The unit tests run the builder on a small synthetic notebook. The browser tests build the decks from the executed
chapters the book build leaves in _build/jupyter_execute (as `make slides` does), plus one deck from a copy of an
executed chapter with cells tagged here (so the walk sees figures, tables, code and math even before the chapters are
tagged), open each from a loopback server with every other request refused, walk every slide with the arrow key and
check it: no page error, nothing outside the slide, no raw TeX left; the PDF handout has one page per slide.
"""

from __future__ import annotations

import copy
import html
import inspect
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.helpers.serve import serve
from tests.test_book import browser, open_page  # noqa: F401  (browser: test_book's Chromium fixture)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import slides  # noqa: E402

SHOTS = ROOT / "artifacts" / "screenshots"
GLUE = "application/papermill.record/"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def synthetic():
    md = nbformat.v4.new_markdown_cell
    code = nbformat.v4.new_code_cell
    glued = nbformat.v4.new_output("display_data", data={GLUE + "text/html": "<table id='glance'></table>",
                                                        GLUE + "text/plain": "Glance"},
                                   metadata={"scrapbook": {"name": "ch_glance", "mime_prefix": GLUE}})
    shown = nbformat.v4.new_output("stream", name="stdout", text="visible output\n")
    noise = nbformat.v4.new_output("stream", name="stderr", text="progress 10%\n")
    shown_glance = nbformat.v4.new_output("display_data", data={"text/html": "<table id='glance'></table>",
                                                                "text/plain": "Glance"})  # glued, then displayed
    return nbformat.v4.new_notebook(cells=[
        md("# A chapter title\n\nThe problem, with $a^2$.", metadata={"tags": ["slide"]}),
        code("untagged_code = 1"),
        md(":::{admonition} Results at a glance\n:class: tip\n\n**Claim.**\n\n```{glue} ch_glance\n```\n:::",
           metadata={"tags": ["slide"]}),
        code("hidden_plotting_code = 2", outputs=[glued, noise, shown_glance],
             metadata={"tags": ["slide", "hide-input"]}),
        code("shown_idea_code = 3", outputs=[shown], metadata={"tags": ["slide-more"]}),
        md("untagged prose"),
        code("removed_input = 4", metadata={"tags": ["slide", "remove-input"]}),
        md("(target)=\n## The idea\n\n```{literalinclude} ../scripts/slides.py\n:pyobject: unglued\n```",
           metadata={"tags": ["slide"]}),
    ])


def test_deck_keeps_tagged_cells_in_order():
    deck = slides.slide_notebook(synthetic(), "ch")
    kinds = [c.metadata["slideshow"]["slide_type"] for c in deck.cells]
    assert kinds == ["slide", "slide", "slide", "slide", "-", "slide", "slide"]  # title, then the tagged cells
    assert "A chapter title" in deck.cells[0].source
    assert "A chapter title" not in deck.cells[1].source and "The problem" in deck.cells[1].source  # once
    sources = "\n".join(c.source for c in deck.cells)
    assert "untagged_code" not in sources and "untagged prose" not in sources
    hidden = [c for c in deck.cells if c.metadata.get("transient", {}).get("remove_source")]
    assert [c.source for c in hidden] == ["hidden_plotting_code = 2", "removed_input = 4"]


def test_deck_shows_glue_and_drops_hidden_code():
    page = slides.render(synthetic(), "ch")
    assert "hidden_plotting_code" not in page and "removed_input" not in page
    assert "shown_idea_code" in page and "visible output" in page
    assert "progress 10%" not in page  # stderr stays off the slides
    # the glued output (displayed too: shown once) and its {glue} reference
    assert page.count("id='glance'") + page.count('id="glance"') == 2
    assert GLUE not in page
    assert re.search(r'class="admonition tip"', page)
    assert "(target)=" not in page and "{literalinclude}" not in page
    loads = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"|import .* from .([^\'"]+)', page)
    assert loads and not [u for pair in loads for u in pair if u.startswith(("http:", "https:", "//"))], loads
    assert len(re.findall(r"<section", page)) == 2 * 6  # nbconvert: a slide is a section holding one sub-section


def test_literalinclude_pyobject_is_the_real_source():
    page = slides.myst("```{literalinclude} ../scripts/slides.py\n:pyobject: unglued\n```", {})
    text = html.unescape(re.sub(r"<[^>]+>", "", page.replace("&#10;", "\n")))
    assert inspect.getsource(slides.unglued).strip() in text


def test_glued_values_are_found_unprefixed():
    assert slides.glued(synthetic()) == {"ch_glance": {"text/html": "<table id='glance'></table>",
                                                        "text/plain": "Glance"}}


# ---- the built decks ---------------------------------------------------------------------------------------------

def tagged_copy(nb):
    """A copy of an executed chapter with slides tagged here: the first markdown cell, every figure (code hidden),
    a visible code cell, every HTML table (code hidden), the first markdown cell with math."""
    nb = copy.deepcopy(nb)
    first_md = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
    picks = {first_md: ["slide"]}
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for i in code:
        kinds = {k for o in nb.cells[i].get("outputs", []) for k in o.get("data", {})}
        if "image/png" in kinds or "text/html" in kinds:
            picks[i] = ["slide", "hide-input"]
    visible = next(i for i in code[2:] if i not in picks and len(nb.cells[i].source.splitlines()) <= 15)
    picks[visible] = ["slide"]
    math = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "$" in c.source and i != first_md]
    if math:
        picks[math[0]] = ["slide"]
    for i, tags in picks.items():
        nb.cells[i].metadata["tags"] = tags
    return nb


def decks_are_current(names: list[str]) -> bool:
    """Whether every deck and PDF in _build/html/slides is newer than what it is made from (the executed chapter,
    scripts/slides.py, its templates): then `make slides` built them from today's notebooks and builder."""
    inputs = [Path(slides.__file__), *[p for p in slides.TEMPLATES.rglob("*") if p.is_file()],
              *[slides.EXECUTED / f"{n}.ipynb" for n in names]]
    newest = max(p.stat().st_mtime for p in inputs)
    built = [slides.OUT / f"{n}.{kind}" for n in names for kind in ("html", "pdf")]
    return all(p.exists() and p.stat().st_mtime > newest for p in built)


@pytest.fixture(scope="session")
def decks(tmp_path_factory) -> dict[str, Path]:
    """Every chapter's deck and PDF (built as `make slides` builds them, unless `make slides` already built them from
    the current executed chapters and builder), plus one deck tagged here and built here, in a folder beside the
    book's _static. Name -> the folder served."""
    missing = [str(p) for p in [slides.EXECUTED / f"{n}.ipynb" for n in slides.chapters()]
               + [slides.HTML / "_static" / s for s in slides.NEEDS] if not p.exists()]
    if missing:
        pytest.skip(f"the book is not built (`make book`): missing {', '.join(missing)}")
    if not decks_are_current(slides.chapters()):
        run = subprocess.run([sys.executable, str(ROOT / "scripts" / "slides.py")], cwd=ROOT, capture_output=True,
                             text=True)
        assert run.returncode == 0, run.stdout + run.stderr
    site = tmp_path_factory.mktemp("site")
    (site / "_static").symlink_to(slides.HTML / "_static")
    executed = tmp_path_factory.mktemp("executed")
    nbformat.write(tagged_copy(slides.executed_notebook(slides.EXECUTED / "01_icm.ipynb")),
                   executed / "tagged_01_icm.ipynb")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "slides.py"), "tagged_01_icm", "--executed",
                          str(executed), "--out", str(site / "slides")], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return {**{n: slides.HTML for n in slides.chapters()}, "tagged_01_icm": site}


DECKS = slides.chapters() + ["tagged_01_icm"]

# a slide shows text, an image or a typeset formula (a tagged code cell whose output is missing shows nothing)
SHOWS_SOMETHING = """() => {
  const s = Reveal.getCurrentSlide();
  const seen = [...s.querySelectorAll('img, svg, mjx-container, canvas')].some(e => {
    const r = e.getBoundingClientRect(); return r.width > 20 && r.height > 20; });
  return seen || s.innerText.trim().length > 0;
}"""

OUTSIDE = """() => {
  const slide = document.querySelector('.reveal .slides').getBoundingClientRect();
  const section = Reveal.getCurrentSlide();
  const bad = [];
  for (const el of section.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.left < slide.left - 2 || r.right > slide.right + 2 || r.top < slide.top - 2 || r.bottom > slide.bottom + 2)
      bad.push(el.tagName + '.' + el.className + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));
  }
  return bad.slice(0, 5);
}"""

RAW_TEX = """() => {
  const walker = document.createTreeWalker(Reveal.getCurrentSlide(), NodeFilter.SHOW_TEXT);
  const left = [];
  while (walker.nextNode()) {
    const t = walker.currentNode;
    if (t.parentElement.closest('pre, code, mjx-container, script, style')) continue;
    if (/\\$[^$\\s][^$]*\\$|\\\\\\(|\\\\frac|\\\\begin\\{/.test(t.textContent)) left.push(t.textContent.slice(0, 60));
  }
  return left;
}"""


@pytest.mark.parametrize("name", DECKS)
def test_deck_in_browser(browser, decks, name):  # noqa: F811
    with serve(decks[name]) as url:
        page, problems = open_page(browser, f"{url}/slides/{name}.html")
        page.set_viewport_size({"width": slides.WIDTH, "height": slides.HEIGHT})
        page.wait_for_function("document.body.dataset.deckReady === '1'", timeout=30000)
        total = page.evaluate("Reveal.getTotalSlides()")
        source = (decks[name] / "slides" / f"{name}.html").read_text()
        assert total == source.count("<section") // 2, "reveal.js sees another number of slides than the deck has"
        body = re.sub(r"<(pre|script|style)[\s\S]*?</\1>", "", source.split("<body", 1)[1])
        has_math = [bool(re.search(r"\$[^$\s][^$]*\$|\\\(|\\begin\{", part))
                    for part in re.split(r"<section[^>]*>\s*<section[^>]*>", body)[1:]]
        assert len(has_math) == total
        SHOTS.mkdir(parents=True, exist_ok=True)
        for i in range(total):
            assert page.evaluate("Reveal.getIndices().h") == i, f"{name}: the arrow key did not reach slide {i + 1}"
            assert not page.evaluate(OUTSIDE), f"{name}, slide {i + 1}: outside the slide: {page.evaluate(OUTSIDE)}"
            assert not page.evaluate(RAW_TEX), f"{name}, slide {i + 1}: raw TeX: {page.evaluate(RAW_TEX)}"
            assert page.evaluate(SHOWS_SOMETHING), f"{name}, slide {i + 1} is empty (a tagged cell without output?)"
            if has_math[i]:
                typeset = page.evaluate("Reveal.getCurrentSlide().querySelectorAll('mjx-container').length")
                assert typeset > 0, f"{name}, slide {i + 1}: its math was not typeset"
            if i < 4:
                page.screenshot(path=str(SHOTS / f"slides-{name}-{i + 1}.png"))
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(150)
        assert page.evaluate("Reveal.isLastSlide()")
        assert not problems["page errors"], problems
        assert not problems["left the machine"], problems
        assert not problems["failed"], problems
        page.close()
    pdf = decks[name] / "slides" / f"{name}.pdf"
    assert pdf.exists(), f"{pdf} was not printed"
    assert slides.pdf_page_count(pdf) == total, f"{name}.pdf: {slides.pdf_page_count(pdf)} pages for {total} slides"


def test_seminar_guide_links_every_deck():
    guide = (ROOT / "book" / "seminar.md").read_text()
    for name in slides.chapters():
        for kind in ("html", "pdf"):
            assert f'href="slides/{name}.{kind}"' in guide, f"book/seminar.md does not link slides/{name}.{kind}"


def test_chapter_pages_link_their_deck():
    """book/_ext/course_book.py puts the deck's links under each chapter page's title."""
    pages = {n: slides.HTML / f"{n}.html" for n in slides.chapters()}
    if not all(p.exists() for p in pages.values()):
        pytest.skip("the book is not built (`make book`)")
    for name, page in pages.items():
        text = page.read_text()
        for kind in ("html", "pdf"):
            assert f'href="slides/{name}.{kind}"' in text, f"{name}.html does not link its deck's {kind}"
