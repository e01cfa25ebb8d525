"""Write the Colab first cell into every chapter, with the repository URL from `_config.yml`, then re-pair.

    python scripts/sync_notebooks.py      # what `make sync` runs

The URL lives in one place, `_config.yml` (`repository.url`); the cell keeps to 15 lines of at most 88 characters
(the book's code column); `tests/test_pairing.py` fails when a chapter's first
cell (in the .md or its .ipynb) differs from :func:`first_cell` for that URL.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = '''\
# Colab: fetch the course, install what Colab lacks (elsewhere: find the course code).
import os, subprocess, sys
REPO, HOME = "{url}", "/content/course"
USE_DRIVE = False  # True: the cache goes to Google Drive (survives a disconnect)
ON_COLAB = "google.colab" in sys.modules
if ON_COLAB and not os.path.exists(f"{{HOME}}/.installed"):  # a finished install
    cmd = f"rm -rf {{HOME}} && git clone -q --depth 1 {{REPO}} {{HOME}}"
    r = subprocess.run(f"{{cmd}} && bash {{HOME}}/colab/install.sh", shell=True, text=True,
        capture_output=True, env={{**os.environ, "GIT_TERMINAL_PROMPT": "0"}})
    if r.returncode:
        print(r.stdout[-3000:], r.stderr[-3000:], sep="\\n")
        err = (r.stderr.strip() or r.stdout.strip() or "?").splitlines()[-1]
        raise RuntimeError(f"set-up failed: {{err}} (the output above says more)")
sys.path.insert(0, HOME if ON_COLAB else os.path.abspath(".."))
if ON_COLAB: import lib.colab; lib.colab.use_drive(USE_DRIVE)'''

CELL = re.compile(r"(```\{code-cell\} ipython3\n)(.*?)(\n```)", re.S)


def repository_url(config: Path = ROOT / "_config.yml") -> str:
    url = str((yaml.safe_load(config.read_text()).get("repository") or {}).get("url") or "")
    url = url.rstrip("/")
    # it goes into a Python string and a shell command: plain https URLs only
    if not re.fullmatch(r"https://[A-Za-z0-9.-]+(/[A-Za-z0-9._~-]+)+", url):
        raise SystemExit(f"_config.yml repository.url must be the course's https:// repository URL, got {url!r}")
    return url


def first_cell(url: str) -> str:
    return TEMPLATE.format(url=url)


def chapters() -> list[Path]:
    return sorted(p for p in (ROOT / "book").glob("[0-9]*.md") if "jupytext:" in p.read_text()[:400])


def main() -> None:
    cell = first_cell(repository_url())
    for md in chapters():
        text = md.read_text()
        new = CELL.sub(lambda m: m.group(1) + cell + m.group(3), text, count=1)
        if new != text:
            md.write_text(new)
            print(f"{md.relative_to(ROOT)}: first cell written")
    jupytext = Path(sys.executable).with_name("jupytext")
    subprocess.run([str(jupytext), "--sync", *map(str, chapters())], check=True)


if __name__ == "__main__":
    main()
