"""The built HTML book, as a reader sees it: built with warnings as errors, opened offline in a real browser.

The session fixture builds the book (`make book`: chapters execute at `tiny` scale; jupyter-cache and lib.storage.cache
make a second build cheap). The browser test serves the HTML on 127.0.0.1, opens every page in Debian's Chromium through
Playwright, refuses every request that would leave the machine, and checks what a reader would: no page error, math
typeset, nothing wider than the text column (at 1280 px nothing, at a phone's 390 px nothing but code blocks), widgets
drawn and switching, Colab links pointing at notebooks. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from tests.helpers.layout import describe, overflowing
from tests.helpers.serve import serve

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [c["file"] for c in part.get("chapters", [])]
    return pages


def notebook_pages() -> list[str]:
    return [p for p in toc_pages() if (ROOT / "book" / f"{p}.ipynb").exists()]


@pytest.fixture(scope="session")
def built_book() -> Path:
    proc = subprocess.run(["make", "book"], cwd=ROOT, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, "the book build failed (warnings are errors):\n" + log[-6000:]
    return HTML


def test_book_builds_every_page(built_book):
    for page in toc_pages():
        assert (built_book / f"{page}.html").exists(), f"{page}.html was not built"


def test_config_keeps_execution_strict():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["execute"]["raise_on_error"] is True
    assert cfg["execute"].get("allow_errors", False) is False
    assert cfg["execute"]["execute_notebooks"] in ("cache", "force")
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"BOOK_FLAGS :=.*-W.*--keep-going", makefile), "the book must build with warnings as errors"


def test_pages_reference_no_cdn(built_book):
    """Every script and stylesheet a page loads is local (the browser test below also blocks the network)."""
    for page in toc_pages():
        html = (built_book / f"{page}.html").read_text()
        for src in re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html):
            if src.startswith(("http://", "https://", "//")):
                assert re.match(r"https://(github\.com|colab\.research\.google\.com)/", src), \
                    f"{page}.html loads {src} from the internet"


@pytest.fixture(scope="session")
def server(built_book):
    with serve(built_book) as url:
        yield url


@pytest.fixture(scope="module")   # one sync Playwright at a time per process: test_slides opens its own after
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: `apt-get install chromium` (the README's set-up installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}   # a laptop's window; a phone held upright


def _local(url: str) -> bool:
    return url.startswith(("data:", "blob:")) or urlparse(url).hostname == "127.0.0.1"


def open_page(browser, url: str, viewport: tuple[int, int] = WIDTHS["desktop"]):
    """Open ``url`` with every non-local request refused (the page's, its frames' and workers': the route is the
    page's own browser context's; service workers blocked; a WebSocket to elsewhere is recorded too); wait until
    MathJax has typeset; return the page and what went wrong on it. ``page.close()`` closes its context too."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]}, service_workers="block")
    problems: dict[str, list[str]] = {"page errors": [], "left the machine": [], "failed": []}

    def route(r):
        if _local(r.request.url):
            r.continue_()
        else:
            problems["left the machine"].append(r.request.url)
            r.abort()

    page.context.route("**/*", route)
    page.on("websocket", lambda ws: _local(ws.url) or problems["left the machine"].append(ws.url))
    page.on("pageerror", lambda e: problems["page errors"].append(str(e)))
    page.on("response", lambda resp: resp.status >= 400 and not resp.url.endswith("favicon.ico")
            and problems["failed"].append(f"{resp.status} {resp.url}"))
    page.goto(url, wait_until="networkidle")
    page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")  # typesetting done
    page.wait_for_timeout(800)
    return page, problems


@pytest.fixture(scope="module")
def book_pages(browser, server):
    """Each page of the book opened once (:func:`open_page`) and kept open for the tests below: ``get(name, width)``
    returns the page and its problems, the viewport set to that width (a width change lays the page out again, as
    when a reader resizes the window)."""
    opened: dict[str, tuple] = {}

    def get(name: str, width: str = "desktop"):
        if name not in opened:
            opened[name] = open_page(browser, f"{server}/{name}.html", WIDTHS[width])
        page, problems = opened[name]
        if page.viewport_size != {"width": WIDTHS[width][0], "height": WIDTHS[width][1]}:
            page.set_viewport_size({"width": WIDTHS[width][0], "height": WIDTHS[width][1]})
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            page.wait_for_timeout(300)
        return page, problems

    yield get
    for page, _ in opened.values():
        page.close()


@pytest.mark.parametrize("name,width", [(n, w) for n in toc_pages() for w in WIDTHS],
                         ids=[f"{n}-{w}" for n in toc_pages() for w in WIDTHS])
def test_page_in_browser(book_pages, name, width):
    """The page as a reader sees it at this width: no error, nothing fetched from outside, math typeset, and nothing
    wider than the text column (at the phone's width, code blocks may scroll sideways; nothing else may)."""
    page, problems = book_pages(name, width)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{WIDTHS[width][0]}.png"), full_page=False)
    assert not problems["page errors"], problems
    assert not problems["left the machine"], problems
    assert not problems["failed"], problems
    source = (HTML / f"{name}.html").read_text()
    if 'class="math' in source:
        assert page.locator("mjx-container").count() > 0, f"{name}: math was not typeset (MathJax did not run)"
        assert page.locator("text=\\frac").count() == 0, f"{name}: raw LaTeX left on the page"
        assert page.locator("mjx-merror").count() == 0, f"{name}: MathJax could not typeset a formula"
        untypeset = page.locator("article .math:not(:has(mjx-container))").count()
        assert untypeset == 0, f"{name}: {untypeset} formula(s) not typeset"
    for link in page.locator('a[href*="colab.research.google.com"]').all():
        assert link.get_attribute("href").endswith(".ipynb"), link.get_attribute("href")
    if name in notebook_pages():
        assert page.locator('a[href*="colab.research.google.com"]').count() > 0, f"{name}: no Colab launch link"
    wide = overflowing(page, code_may_scroll=width == "phone")
    assert not wide, (f"{name} at {WIDTHS[width][0]} px: {len(wide)} element(s) wider than the text column "
                      f"(scroll sideways or stick out):\n{describe(wide)}")


LAYOUT_FIXTURE = """<html><body><article class="bd-article" style="width: 300px; padding: 0 10px">
<div class="highlight"><pre style="overflow-x: auto">code code code code code code code code code code code</pre></div>
<div class="scroller" style="overflow-x: auto"><table><tr><td style="white-space: nowrap">a wide table row
a wide table row a wide table row</td></tr></table></div>
<div class="outer" style="width: 400px"><span class="inner">inside a box that sticks out</span></div>
<img class="wide" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" style="width: 500px; height: 2px">
<span class="math" style="display: inline-flex; overflow: hidden"><mjx-container style="position: relative">x
<mjx-assistive-mml style="position: absolute; width: 900px; clip: rect(1px, 1px, 1px, 1px)">x</mjx-assistive-mml>
</mjx-container></span>
<details><summary>folded</summary><div style="width: 900px">hidden</div></details>
<p>fits</p></article></body></html>"""


def test_layout_measure_finds_what_sticks_out(browser):
    """The measure behind the width check, on a page made to fail it: it names the box that scrolls and the
    outermost box that sticks out, lets code scroll only when told, and ignores what is not drawn (a closed
    <details>, MathJax's clipped copy for screen readers)."""
    page = browser.new_page(viewport={"width": 1280, "height": 600})
    page.set_content(LAYOUT_FIXTURE)
    for code_may_scroll in (False, True):
        found = {(f["tag"], f["cls"], f["kind"]) for f in overflowing(page, code_may_scroll=code_may_scroll)}
        expected = {("div", "scroller", "scrolls"), ("div", "outer", "sticks out"), ("img", "wide", "sticks out")}
        if not code_may_scroll:
            expected.add(("pre", "", "scrolls"))
        assert found == expected, (code_may_scroll, found)
    page.close()


def test_widgets_render_and_switch_offline(book_pages):
    """Every switcher widget is drawn and shows another panel when its control moves (no kernel behind it)."""
    seen = 0
    for name in notebook_pages():
        page, problems = book_pages(name, "desktop")
        switchers = page.locator(".course-switcher")
        source = (HTML / f"{name}.html").read_text()
        if "application/vnd.jupyter.widget-view+json" in source:
            page.wait_for_selector(".jupyter-widgets", state="attached", timeout=15000)
        for i in range(switchers.count()):
            box = switchers.nth(i)
            box.scroll_into_view_if_needed()
            deck = box.locator(".widget-tab-contents").first  # lib.display.widgets.switcher's Tab of panels
            assert not box.locator(".widget-tab-bar").first.is_visible(), f"{name}: switcher {i} shows its tab bar"
            before = deck.inner_html()
            handle = box.locator(".noUi-handle")
            if handle.count():
                handle.first.focus()
                page.keyboard.press("ArrowRight")
            else:
                select = box.locator("select").first
                select.select_option(index=1)
            page.wait_for_timeout(300)
            after = deck.inner_html()
            assert after != before, f"{name}: switcher {i} did not change its panel"
            if i == 0:
                SHOTS.mkdir(parents=True, exist_ok=True)
                box.screenshot(path=str(SHOTS / f"{name}-widget.png"))
            seen += 1
        assert not problems["page errors"], problems
    assert seen > 0, "no widget was found in the book"


@pytest.mark.parametrize("name", notebook_pages())
def test_reused_notebook_execution_is_complete(request, name):
    """A notebook that nbval did not execute again in this run (conftest.py: the book build's execution is recorded
    for its current inputs) must have a complete, error-free execution in the book's jupyter-cache."""
    if name not in getattr(request.config, "course_reused", []):
        pytest.skip(f"{name} is executed under nbval in this run")
    from scripts import prepare

    nb = prepare.cached_execution(name)
    assert nb is not None, f"{name}: no stored execution matches the chapter's code cells"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), f"{name}: a code cell was not executed"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{name}: stored execution has errors: {errors[:1]}"
