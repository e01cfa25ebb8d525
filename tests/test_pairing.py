"""Chapters are MyST .md sources paired with output-free .ipynb notebooks (Colab opens the notebook)."""

from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p for p in (ROOT / "book").glob("*.md") if "jupytext:" in p.read_text()[:400])


def test_there_are_chapters():
    assert CHAPTERS, "no paired chapter found in book/"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_pair_in_sync_and_output_free(md):
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"{md.name} has no paired notebook: run `make sync`"
    src = jupytext.read(md)
    nb = nbformat.read(ipynb, as_version=4)
    pairs = list(zip([(c.cell_type, c.source) for c in src.cells], [(c.cell_type, c.source) for c in nb.cells]))
    assert len(src.cells) == len(nb.cells), f"{ipynb.name} is out of sync with {md.name}: run `make sync`"
    for i, (a, b) in enumerate(pairs):
        assert a == b, f"cell {i} of {ipynb.name} differs from {md.name}: run `make sync`"
    for c in nb.cells:
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, f"{ipynb.name} carries outputs: commit it output-free"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


def test_notebook_is_in_the_toc():
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    for md in CHAPTERS:
        assert md.stem in files, f"{md.name} is not in _toc.yml"


def test_colab_install_never_reinstalls_colab_core():
    req = (ROOT / "colab" / "requirements.txt").read_text().lower().split("\n")
    names = {line.split("=")[0].split("<")[0].split(">")[0].strip() for line in req if line and not line.startswith("#")}
    assert not names & {"torch", "torchvision", "torchaudio", "numpy", "ipywidgets"}
    script = (ROOT / "colab" / "install.sh").read_text()
    assert "-c \"$pins\"" in script and "--no-deps compressai" in script


def test_colab_installs_exactly_the_data_packages_lib_reads():
    import re

    script = (ROOT / "colab" / "install.sh").read_text()
    colab = set(re.search(r"^data_packages=\((.*?)\)", script, re.M).group(1).split())
    read = {m for p in (ROOT / "lib").rglob("*.py") for m in re.findall(r"\bapt=\"([^\"]+)\"", p.read_text())}
    assert read and colab == read
    make = set(re.search(r"^APT_PACKAGES := (.*)$", (ROOT / "Makefile").read_text(), re.M).group(1).split())
    assert colab == make - {"chromium", "fonts-dejavu-core", "git", "make"}  # the browser test and the build tools


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_first_cell_is_the_colab_cell_with_the_configured_url(md):
    """The clone URL lives in _config.yml alone: every chapter's first cell (.md and .ipynb) is the one
    `make sync` writes from it."""
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from sync_notebooks import first_cell, repository_url

    want = first_cell(repository_url())
    assert repository_url() in want
    assert max(map(len, want.splitlines())) <= 88, "the Colab cell is wider than the book's code column"
    for nb in (jupytext.read(md), nbformat.read(md.with_suffix(".ipynb"), as_version=4)):
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert first.source == want, f"the first cell of {md.name} is not _config.yml's Colab cell: run `make sync`"
