"""The chapters read as a book (issue 15): short code cells, modules under their own names, a results-at-a-glance
box whose glued results the chapter makes, and the cells its seminar deck is built from."""

import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("0*.md"))
PAPERS = [p for p in CHAPTERS if not p.stem.startswith("00_")]
MAX_LINES = 15


def cells(md: Path):
    return jupytext.read(md).cells


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_no_code_cell_is_longer_than_15_lines(md):
    long = [(i, len(c.source.splitlines())) for i, c in enumerate(cells(md))
            if c.cell_type == "code" and len(c.source.splitlines()) > MAX_LINES]
    assert not long, f"{md.name}: code cells (index, lines) over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_no_code_line_is_wider_than_the_code_column(md):
    """88 characters: what the book's code column holds at 1280 px (the browser test measures the rendered page)."""
    wide = [line for c in cells(md) if c.cell_type == "code" for line in c.source.splitlines() if len(line) > 88]
    assert not wide, f"{md.name}: code lines over 88 characters: {wide[:3]}"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_modules_are_imported_under_their_own_names(md):
    code = "\n".join(c.source for c in cells(md) if c.cell_type == "code")
    aliases = re.findall(r"^\s*(?:from \S+ )?import .*\bas ([A-Z][A-Z0-9]?)\b", code, flags=re.M)
    aliases += re.findall(r",\s*\w+ as ([A-Z][A-Z0-9]?)\b", code)
    assert not aliases, f"{md.name} imports modules under one-letter names: {sorted(set(aliases))}"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_results_at_a_glance_made_by_the_chapter(md):
    cs = cells(md)
    opening = "\n".join(c.source for c in cs[:4] if c.cell_type == "markdown")
    assert "{admonition} Results at a glance" in opening, f"{md.name}: no results-at-a-glance box at the top"
    wanted = set(re.findall(r"```\{glue(?::\w+)?\}\s+(\w+)", opening))
    assert wanted, f"{md.name}: the glance box pastes no glued result"
    code = "\n".join(c.source for c in cs if c.cell_type == "code")
    glued = set(re.findall(r"""\bglue\(\s*["'](\w+)["']""", code))
    assert wanted <= glued, f"{md.name}: the glance box pastes {sorted(wanted - glued)}, which no cell glues"


@pytest.mark.parametrize("md", PAPERS, ids=lambda p: p.stem)
def test_paper_chapter_has_its_deck_and_seminar_questions(md):
    cs = cells(md)
    tags = [set(c.metadata.get("tags", [])) for c in cs]
    assert sum("slide" in t for t in tags) >= 5, f"{md.name}: fewer than 5 cells tagged `slide` (its seminar deck)"
    seminar = [i for i, c in enumerate(cs) if c.cell_type == "markdown" and "## For the seminar" in c.source]
    assert seminar, f"{md.name}: no `## For the seminar` section"
    asked = [i for i in range(seminar[0], len(cs)) if cs[i].cell_type == "markdown"
             and len(re.findall(r"^\s*\d\.\s", cs[i].source, flags=re.M)) >= 3]
    assert asked, f"{md.name}: no cell of its seminar section holds three numbered questions"
    assert any(tags[i] & {"slide", "slide-more"} for i in asked), f"{md.name}: the seminar questions are not on the deck"
