"""The ipywidgets API the course uses exists in the ipywidgets this interpreter runs, and lib.display.widgets works
there.

Run in the main suite, it checks the book's ipywidgets (8.x, pinned in constraints.txt). Run by the Colab rehearsal
with the Colab-like venv's python and ``COURSE_EXPECT_IPYWIDGETS=7.7.1``, it checks Colab's 7.7.1: a widget class
that 7.7 lacks (``Stack``, ``TagsInput``, ...) anywhere in ``lib/`` or a chapter's code cells fails here.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.M | re.S)


def expected_version() -> str:
    """``$COURSE_EXPECT_IPYWIDGETS``, else the ipywidgets pin in constraints.txt."""
    if os.environ.get("COURSE_EXPECT_IPYWIDGETS"):
        return os.environ["COURSE_EXPECT_IPYWIDGETS"]
    pins = re.findall(r"^ipywidgets==(\S+)", (ROOT / "constraints.txt").read_text(), re.M)
    assert len(pins) == 1, "constraints.txt must pin ipywidgets exactly once"
    return pins[0]


def code_cells(markdown: str) -> list[str]:
    """The Python of each MyST code cell: cell options (``:tags:`` lines, a ``---`` block) and magics removed."""
    cells = []
    for body in CODE_CELL.findall(markdown):
        lines = body.splitlines()
        if lines and lines[0].strip() == "---":
            end = lines.index("---", 1)
            lines = lines[end + 1:]
        while lines and re.match(r":\w+:", lines[0]):
            lines = lines[1:]
        cells.append("\n".join("" if l.lstrip().startswith(("%", "!")) else l for l in lines))
    return cells


def ipywidgets_uses(sources: list[str]) -> set[str]:
    """Dotted names used from ipywidgets (``Tab``, ``embed.embed_data``) in ``sources``, read as one module.

    An alias counts from ``import ipywidgets [as x]`` or ``import ipywidgets.sub``; ``from ipywidgets[.sub] import
    a`` counts ``[sub.]a``. Attribute chains rooted at an alias give their full dotted path.
    """
    trees = [ast.parse(s) for s in sources]
    aliases, used = set(), set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "ipywidgets" or a.name.startswith("ipywidgets."):
                        aliases.add(a.asname or "ipywidgets")
                        if a.name != "ipywidgets":
                            used.add(a.name.removeprefix("ipywidgets."))
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and \
                    (node.module == "ipywidgets" or node.module.startswith("ipywidgets.")):
                prefix = node.module.removeprefix("ipywidgets").lstrip(".")
                used |= {f"{prefix}.{a.name}" if prefix else a.name for a in node.names}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                parts, base = [], node
                while isinstance(base, ast.Attribute):
                    parts.append(base.attr)
                    base = base.value
                if isinstance(base, ast.Name) and base.id in aliases:
                    used.add(".".join(reversed(parts)))
    # a chain a.b.c also walks a.b: keep only the longest (a.b is checked on the way to a.b.c)
    return {u for u in used if not any(v.startswith(u + ".") for v in used)}


def course_sources() -> dict[str, list[str]]:
    """lib/**/*.py as one source each; each chapter's code cells (book/*.md) as one list."""
    out = {str(p.relative_to(ROOT)): [p.read_text()] for p in sorted((ROOT / "lib").rglob("*.py"))}
    for md in sorted((ROOT / "book").glob("*.md")):
        cells = code_cells(md.read_text())
        if cells:
            out[str(md.relative_to(ROOT))] = cells
    return out


def resolve(dotted: str):
    """getattr along ``dotted`` from ipywidgets, importing submodules as Python would."""
    obj, path = importlib.import_module("ipywidgets"), "ipywidgets"
    for part in dotted.split("."):
        path += "." + part
        if not hasattr(obj, part):
            try:
                importlib.import_module(path)
            except ModuleNotFoundError:
                pass
        obj = getattr(obj, part)
    return obj


def test_running_ipywidgets_is_the_one_under_test():
    import ipywidgets

    installed = importlib.metadata.version("ipywidgets")
    assert ipywidgets.__version__ == installed, \
        f"imported ipywidgets {ipywidgets.__version__} from {ipywidgets.__file__}, but this interpreter's " \
        f"environment has {installed} installed: another ipywidgets shadows it (PYTHONPATH?)"
    assert Path(ipywidgets.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), \
        f"ipywidgets comes from {ipywidgets.__file__}, outside this interpreter's environment {sys.prefix}"
    assert installed == expected_version(), \
        f"running ipywidgets {installed}, but this run tests {expected_version()} (set COURSE_EXPECT_IPYWIDGETS " \
        f"to the version the venv is meant to reproduce, e.g. 7.7.1 for Colab)"


def test_scan_finds_what_the_course_uses():
    found = ipywidgets_uses([src for srcs in course_sources().values() for src in srcs])
    assert {"jslink", "SelectionSlider", "Dropdown", "Image", "HTML", "VBox"} <= found, found
    # the scanner itself: aliases, from-imports and submodules, and names from other modules ignored
    demo = ["import ipywidgets as w\nimport lib.display.widgets as widgets\nw.Stack([]); widgets.switcher({})",
            "from ipywidgets import TagsInput\nfrom ipywidgets.embed import embed_data\nimport ipywidgets\n"
            "ipywidgets.widgets.Box"]
    assert ipywidgets_uses(demo) == {"Stack", "TagsInput", "embed.embed_data", "widgets.Box"}


def test_every_ipywidgets_name_the_course_uses_exists():
    missing = {}
    for where, sources in course_sources().items():
        for name in sorted(ipywidgets_uses(sources)):
            try:
                resolve(name)
            except AttributeError:
                missing.setdefault(name, []).append(where)
    import ipywidgets

    assert not missing, f"ipywidgets {ipywidgets.__version__} lacks what the course uses: {missing}"


def test_widgets_build_and_serialise(monkeypatch):
    import ipywidgets as w
    from ipywidgets.embed import embed_data

    from lib.display import widgets

    image = np.zeros((8, 8, 3), np.uint8)
    static = widgets.switcher({"black": image, "text": "<b>hi</b>"}, description="panel")
    monkeypatch.setenv("COURSE_LIVE", "0")
    built = widgets.explore(lambda v: np.full((4, 4, 3), v, np.uint8), [0, 255], control="dropdown")
    monkeypatch.setenv("COURSE_LIVE", "1")
    live = widgets.explore(lambda v: f"<i>{v}</i>", [1, 2])
    live.children[0].value = 2
    assert live.children[1].value == "<i>2</i>"
    typed = widgets.live(lambda s: s.upper(), w.Text(value="a, b", continuous_update=False))

    data = embed_data(views=[static, built, live, typed])
    state = data["manager_state"]["state"]
    json.dumps(data)  # what the book writes into the page
    models = {m["model_name"] for m in state.values()}
    assert {"TabModel", "LinkModel", "SelectionSliderModel", "DropdownModel", "ImageModel", "TextModel"} <= models
    assert [v["model_id"] for v in data["view_specs"]] == [b.model_id for b in (static, built, live, typed)]
    link = state[static.link.model_id]["state"]
    assert link["source"][1] == "index" and link["target"][1] == "selected_index"
    assert link["target"][0] == "IPY_MODEL_" + static.children[1].model_id
