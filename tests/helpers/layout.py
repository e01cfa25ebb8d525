"""What sticks out of a page's text column, measured in the browser (the book's pages and the seminar decks).

:func:`overflowing` runs :data:`MEASURE` in a Playwright page. An element is an offender when

- it scrolls or clips sideways (``scrollWidth > clientWidth + 1`` and its computed ``overflow-x`` is not
  ``visible``): a reader must scroll it, or cannot see all of it; or
- its rendered box ends right of the column's right edge (more than 1 px), unless an ancestor inside the column
  already scrolls or clips it, or sticks out itself (then that ancestor is the offender, reported once).

Inside a formula only MathJax's ``mjx-container`` is measured (its inner boxes clip by design), and MathJax's copy for
screen readers (clipped to nothing) is left out while measuring. ``code_may_scroll`` lets code blocks scroll (a ``pre`` inside ``div.highlight``, anything inside ``.cell_input``): at
a phone's width, code may scroll sideways; nothing else may.
"""

from __future__ import annotations

COLUMN = "article.bd-article"   # sphinx-book-theme's text column

MEASURE = r"""
([column, codeMayScroll]) => {
  const col = document.querySelector(column);
  if (!col) return [{tag: "-", cls: "-", text: `no element ${column} on the page`, kind: "missing", px: 0}];
  const style = getComputedStyle(col);
  const right = col.getBoundingClientRect().right - parseFloat(style.paddingRight || "0");
  const isCode = el => codeMayScroll && (el.closest(".cell_input") !== null ||
                                         (el.tagName === "PRE" && el.closest("div.highlight") !== null));
  const visible = el => {
    const s = getComputedStyle(el);
    if (s.display === "none" || s.visibility === "hidden") return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const scrolls = el => getComputedStyle(el).overflowX !== "visible";
  const reported = new Set();
  const contained = el => {           // an ancestor inside the column scrolls, clips or is reported already
    for (let a = el.parentElement; a && a !== col; a = a.parentElement)
      if (scrolls(a) || reported.has(a)) return true;
    return false;
  };
  const hiddenByDetails = el => {     // inside a closed <details> (a folded cell): not rendered
    for (let a = el.parentElement; a && a !== col; a = a.parentElement)
      if (a.tagName === "DETAILS" && !a.open) return true;
    return false;
  };
  // MathJax's copy of each formula for screen readers is clipped to nothing, yet widens its parent's scrollWidth
  const sr = document.createElement("style");
  sr.textContent = "mjx-assistive-mml { display: none !important; }";
  document.head.appendChild(sr);
  const tex = el => {                 // a formula's TeX source, as MathJax keeps it
    try {
      if (el.tagName !== "MJX-CONTAINER" || !window.MathJax || !MathJax.startup.document) return "";
      const item = MathJax.startup.document.getMathItemsWithin(el)[0];
      return item ? "TeX: " + item.math : "";
    } catch (e) { return ""; }
  };
  const out = [];
  for (const el of col.querySelectorAll("*")) {
    if (!visible(el) || hiddenByDetails(el) || isCode(el)) continue;
    if (el.parentElement.closest("mjx-container")) continue;   // MathJax's inner boxes: the formula is measured whole
    const r = el.getBoundingClientRect();
    let kind = null, px = 0;
    if (scrolls(el) && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) {
      kind = "scrolls"; px = el.scrollWidth - el.clientWidth;
    } else if (r.right > right + 1 && !contained(el)) {
      kind = "sticks out"; px = Math.round(r.right - right);
    }
    if (!kind) continue;
    reported.add(el);
    const cls = (typeof el.className === "string" ? el.className : (el.getAttribute("class") || "")).trim();
    out.push({tag: el.tagName.toLowerCase(), cls: cls.slice(0, 60), kind, px,
              text: (tex(el) || el.innerText || el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 60)});
  }
  sr.remove();
  return out;
}
"""


def overflowing(page, code_may_scroll: bool = False, column: str = COLUMN) -> list[dict]:
    """The elements of ``page``'s column wider than the column (see the module's docstring), in document order."""
    return page.evaluate(MEASURE, [column, code_may_scroll])


def describe(found: list[dict]) -> str:
    """One line per offender: tag.class, how (scrolls / sticks out) by how many px, and its first 60 characters."""
    return "\n".join(f"  <{f['tag']}{'.' + f['cls'].replace(' ', '.') if f['cls'] else ''}> {f['kind']} "
                     f"{f['px']} px: {f['text']!r}" for f in found)
