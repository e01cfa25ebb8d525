"""Write the Colab first cell into every chapter, with the repository URL from `_config.yml`, then re-pair.

    python scripts/sync_notebooks.py      # what `make sync` runs

The URL lives in one place, `_config.yml` (`repository.url`); `tests/test_pairing.py` fails when a chapter's first
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
# Colab: fetch the course and install what Colab lacks (elsewhere: only find the course code).
import os, subprocess, sys
REPO, HOME = "{url}", "/content/course"  # REPO: `make sync` writes it from _config.yml
USE_DRIVE = False  # True: the course cache goes to Google Drive, so training survives a disconnect
if "google.colab" in sys.modules:
    if not os.path.exists(f"{{HOME}}/.installed"):  # written only when an install finished: re-run to retry
        r = subprocess.run(f"rm -rf {{HOME}} && git clone -q --depth 1 {{REPO}} {{HOME}} && bash {{HOME}}/colab/install.sh",
                           shell=True, capture_output=True, text=True, env={{**os.environ, "GIT_TERMINAL_PROMPT": "0"}})
        if r.returncode:
            print(r.stdout[-3000:], r.stderr[-3000:], sep="\\n")
            raise RuntimeError("set-up failed: " + (r.stderr.strip() or r.stdout.strip() or "?").splitlines()[-1])
    sys.path.insert(0, HOME)
    import lib.colab; lib.colab.use_drive(USE_DRIVE)
else:
    sys.path.insert(0, os.path.abspath(".."))'''

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
