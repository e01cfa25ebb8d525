"""The Colab rehearsal: every chapter notebook executed as a learner on Colab would run it, here, offline.

    make colab-rehearsal                 # builds the Colab-like venv, then runs this inside a private mount namespace

What stands in for Colab:
- the kernel is the Colab-like venv's Python (colab/runtime.txt: Colab's Python, numpy, ipywidgets, ipykernel,
  IPython, torch), started with the stand-in ``google.colab`` imported, as Colab's kernel is;
- ``/content`` is a fresh tmpfs for every notebook (a new runtime's disk); the first cell clones the course from the
  URL in ``_config.yml``, which git sends to a snapshot of this working tree, and runs ``colab/install.sh`` itself;
- "Google Drive" is a folder that outlives ``/content``; the learner's switch ``USE_DRIVE = True`` is set in the colab
  runs, as a learner who wants to survive a disconnect would;
- every download goes to a loopback mirror of miniature files in the real formats (``mirror.py``), with
  ``COURSE_REHEARSAL=1``: each chapter's rehearsal budget shrinks step and item counts, never a code path.

Each notebook runs at ``colab`` (a GPU runtime) and at ``tiny`` (a CPU runtime, reusing ``$COURSE_CACHE``, the book
build's cache). A JSON report per run goes to ``artifacts/colab-rehearsal/``. A run passes when it executed without
error, took the Colab branch, ran on numpy 2 and ipywidgets 7, used no config of another scale (no silent fall-back
to ``tiny``) and verified every download, each naming what vouches for its file's format (``vouched_by``, from the
makers' ``FORMATS``: ``README.md``); a chapter whose colab path is not built yet passes only by stopping with
``ScaleNotBuilt`` (:data:`PENDING`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import mirror  # noqa: E402

CONTENT = Path("/content")
REPORTS = ROOT / "artifacts" / "colab-rehearsal"
# Chapters whose colab path is not built yet: at `colab` they must stop with ScaleNotBuilt (never run tiny instead).
PENDING: dict[str, str] = {}   # notebook -> the issue that builds its colab path (none left)
VERIFIED_BY = {"sha256", "hash_prefix", "md5", "first_use"}

REPORT_CELL = r'''
import json, sys, importlib.metadata as _md
import lib
_scale = getattr(lib, "scale")
_in_force = getattr(_scale, "in_force", {})
_cards = getattr(lib.display.provenance, "scorecards", [])
print("REHEARSAL-REPORT " + json.dumps({
    "scale": _scale.current(), "rehearsal": getattr(_scale, "rehearsal", lambda: None)(),
    "python": sys.version.split()[0], "numpy": _md.version("numpy"), "ipywidgets": _md.version("ipywidgets"),
    "torch": _md.version("torch"), "device": lib.runtime.hardware(),
    "colab_branch": "google.colab" in sys.modules and lib.__file__.startswith("/content/course/"),
    "configs": {k: {"scale": v.scale, **{f: str(x) for f, x in v.describe().items()}} for k, v in _in_force.items()},
    "numbers": [[c.title, r["metric"], r["ours"]] for c in _cards for r in c.rows],
}, default=str))
'''


def sh(*cmd, **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def repository_url() -> str:
    sys.path.insert(0, str(ROOT / "scripts"))
    from sync_notebooks import repository_url as url

    return url()


def snapshot(work: Path) -> str:
    """A bare repository holding this working tree's tracked files (uncommitted edits included) as ``main``;
    git's ``insteadOf`` sends the first cell's clone there. Returns the git config file to use."""
    bare = work / "course.git"
    shutil.rmtree(bare, ignore_errors=True)
    sh("git", "init", "-q", "--bare", "-b", "main", str(bare))
    # `stash create` fails on an index whose stat data is stale (the book's preparation touches chapters' mtimes):
    # refresh it first (its exit status is 1 when files really changed, which is what stash then records)
    subprocess.run(["git", "-C", str(ROOT), "update-index", "-q", "--refresh"], capture_output=True)
    commit = sh("git", "-C", str(ROOT), "stash", "create") or sh("git", "-C", str(ROOT), "rev-parse", "HEAD")
    sh("git", "-C", str(ROOT), "push", "-q", "--force", str(bare), f"{commit}:refs/heads/main")
    config = work / "gitconfig"
    config.write_text(f'[url "file://{bare}"]\n\tinsteadOf = {repository_url()}\n'
                      f'[protocol "file"]\n\tallow = always\n[user]\n\tname = rehearsal\n\temail = r@localhost\n')
    return str(config)


def fresh_content() -> None:
    """A new, empty ``/content``, as on a new Colab runtime (a tmpfs in this process's own mount namespace)."""
    subprocess.run(["umount", "-l", str(CONTENT)], capture_output=True)
    CONTENT.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8g", "tmpfs", str(CONTENT)], check=True)


def prepare(name: str, scale: str):
    import nbformat

    nb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    if scale == "colab":  # the learner's switch for surviving a disconnect
        if "USE_DRIVE = False" not in first.source:
            raise SystemExit(f"{name}: its first cell has no `USE_DRIVE = False` switch (run `make sync`)")
        first.source = first.source.replace("USE_DRIVE = False", "USE_DRIVE = True")
    nb.cells.append(nbformat.v4.new_code_cell(REPORT_CELL))
    return nb


def execute(name: str, scale: str, env: dict, kill_when=None) -> dict:
    """Execute one notebook in the Colab-like kernel; returns the raw facts (report cell, errors, times)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    nb = prepare(name, scale)
    fresh_content()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    client = NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(CONTENT)}},
                            allow_errors=False, record_timing=True)
    errors, killed, done = [], False, threading.Event()
    if kill_when is not None:
        def watch():  # SIGKILL the kernel, as a disconnect would, once kill_when() holds
            nonlocal killed
            while not done.wait(0.5):
                km = getattr(client, "km", None)
                if kill_when() and km is not None and km.has_kernel:
                    killed = True
                    os.kill(km.provisioner.process.pid, signal.SIGKILL)
                    return
        threading.Thread(target=watch, daemon=True).start()
    t0 = time.time()
    try:
        client.execute()
    except CellExecutionError as err:
        errors.append({"ename": err.ename, "evalue": str(err.evalue)[:2000]})
    except DeadKernelError as err:
        errors.append({"ename": "DeadKernelError", "evalue": str(err)[:500]})
    finally:
        done.set()
        seconds = time.time() - t0
        os.environ.clear()
        os.environ.update(saved)
    report, cells = None, []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.get("metadata", {}).get("execution", {})
        start, end = meta.get("iopub.execute_input"), meta.get("shell.execute_reply")
        cells.append({"index": i, "seconds": _span(start, end)})
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            m = re.search(r"^REHEARSAL-REPORT (.*)$", text, re.M)
            if m:
                report = json.loads(m.group(1))
            if out.get("output_type") == "error" and not errors:
                errors.append({"ename": out["ename"], "evalue": out["evalue"][:2000], "cell": i})
    return {"report": report, "errors": errors, "seconds": round(seconds, 1), "cells": cells, "killed": killed}


def _span(start, end):
    from datetime import datetime

    if not start or not end:
        return None
    f = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return round((f(end) - f(start)).total_seconds(), 2)


def read_downloads(path: Path, manifest: dict | None = None) -> list[dict]:
    """The download log's entries, each with what vouches for its file's format (``vouched_by``, from the mirror's
    manifest; None for a URL the manifest does not vouch for)."""
    if not path.exists():
        return []
    files = (manifest or {}).get("files", {})
    return [{**entry, "vouched_by": files.get(entry.get("url"), {}).get("vouched_by")}
            for entry in (json.loads(line) for line in path.read_text().splitlines() if line.strip())]


def check(name: str, scale: str, facts: dict, downloads: list[dict]) -> list[str]:
    """What is wrong with one run (empty: it passed)."""
    problems = []
    rep = facts["report"]
    pending = scale == "colab" and name in PENDING
    if pending:
        if not facts["errors"] or facts["errors"][0]["ename"] != "ScaleNotBuilt":
            problems.append(f"its colab path is pending ({PENDING[name]}): it must stop with ScaleNotBuilt, "
                            f"got {facts['errors'] or 'no error'}")
        return problems
    if facts["errors"]:
        problems.append(f"errors: {facts['errors']}")
    if rep is None:
        return problems + ["the report cell did not run"]
    if not rep["colab_branch"]:
        problems.append("the Colab branch was not taken (google.colab missing or lib not from /content/course)")
    if not rep["numpy"].startswith("2."):
        problems.append(f"numpy {rep['numpy']}, Colab has 2.x")
    if not rep["ipywidgets"].startswith("7."):
        problems.append(f"ipywidgets {rep['ipywidgets']}, Colab has 7.x")
    if rep["scale"] != scale:
        problems.append(f"ran at scale {rep['scale']}, asked for {scale}")
    for chapter, cfg in rep["configs"].items():
        if cfg["scale"] != scale:
            problems.append(f"{chapter} ran its {cfg['scale']} config at {scale}: a silent fall-back")
    if scale == "colab" and rep["configs"] and not downloads:
        problems.append("a colab configuration ran but nothing was downloaded (is COURSE_DOWNLOAD_LOG reaching lib?)")
    for d in downloads:
        if d.get("verified_by") not in VERIFIED_BY:
            problems.append(f"download not verified: {d}")
        if not d.get("mirror"):
            problems.append(f"download did not go to the mirror: {d.get('url')}")
        if not d.get("vouched_by"):
            problems.append(f"nothing vouches for the format of {d.get('url')}: add its entry to FORMATS in "
                            f"colab/rehearsal/makers/")
    return problems


def environment(scale: str, work: Path, base_url: str, gitconfig: str, drive: Path, log: Path) -> dict:
    venv_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "PYTHON", "VIRTUAL_ENV", "JUPYTER"))}
    env.update({
        "PATH": f"{venv_bin}:{env.get('PATH', '/usr/bin:/bin')}", "VIRTUAL_ENV": str(venv_bin.parent),
        "HOME": str(work / "home"), "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache/pip")),
        "IPYTHONDIR": str(work / "ipython"), "PYTHONPATH": str(HERE / "standin"),
        "GIT_CONFIG_GLOBAL": gitconfig, "GIT_CONFIG_NOSYSTEM": "1",
        "COURSE_SCALE": scale, "COURSE_MIRROR": base_url, "COURSE_DOWNLOAD_LOG": str(log),
        "REHEARSAL_DRIVE": str(drive), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
        "COURSE_THREADS": os.environ.get("COURSE_THREADS", "1"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "PYTHONHASHSEED": "0", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    })
    if scale == "colab":
        env["COURSE_REHEARSAL"] = "1"
    else:  # a CPU runtime: tiny, reusing the book build's cache (the first cell keeps USE_DRIVE = False)
        env["COURSE_CACHE"] = os.environ.get("COURSE_CACHE") or str(Path.home() / ".cache" / "repro-course")
    return env


def write_report(name: str, scale: str, facts: dict, downloads: list[dict], problems: list[str]) -> dict:
    from importlib.metadata import version

    # a run that stopped before its report cell ran in this same venv: its versions are the runner's
    rep = facts["report"] or {"python": sys.version.split()[0], "numpy": version("numpy"),
                              "ipywidgets": version("ipywidgets"), "torch": version("torch")}
    out = {"notebook": name, "scale": rep.get("scale", scale), "rehearsal": rep.get("rehearsal"),
           "python": rep.get("python"), "numpy": rep.get("numpy"), "ipywidgets": rep.get("ipywidgets"),
           "torch": rep.get("torch"), "device": rep.get("device"), "colab_branch": rep.get("colab_branch"),
           "configs": rep.get("configs"), "numbers": rep.get("numbers"),
           "pending": PENDING.get(name) if scale == "colab" else None,
           "cells": facts["cells"], "errors": facts["errors"], "seconds": facts["seconds"],
           "downloads": [{k: d.get(k) for k in ("url", "source", "sha256", "verified_by", "vouched_by", "loaded_with",
                                                "bytes", "cached")} for d in downloads],
           "passed": not problems, "problems": problems}
    REPORTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if scale == "colab" else ".cpu-tiny"
    (REPORTS / f"{name}{suffix}.json").write_text(json.dumps(out, indent=1))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebooks", nargs="*", help="names such as 01_icm (default: every chapter)")
    ap.add_argument("--scales", default="colab,tiny")
    ap.add_argument("--work", default=str(ROOT / ".cache" / "colab-rehearsal" / "work"))
    ap.add_argument("--kill-test", default="", help="a notebook to kill during its training and run again")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the rehearsal mounts a fresh /content for each notebook: run it as root, through "
                         "`make colab-rehearsal` (which starts it in its own mount namespace)")
    names = args.notebooks or sorted(p.stem for p in (ROOT / "book").glob("[0-9]*.ipynb"))
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    (work / "home").mkdir(parents=True)
    shutil.copytree(HERE / "standin" / "ipython", work / "ipython")
    gitconfig = snapshot(work)
    mirror_dir = ROOT / ".cache" / "colab-rehearsal" / "mirror"
    subprocess.run([str(ROOT / ".venv" / "bin" / "python"), str(HERE / "mirror.py"), "build", str(mirror_dir)],
                   check=True)
    results = []
    manifest = json.loads((mirror_dir / "manifest.json").read_text())
    with mirror.serve(mirror_dir) as (base_url, served):
        for scale in args.scales.split(","):
            for name in names:
                log = work / f"downloads-{name}-{scale}.jsonl"
                env = environment(scale, work, base_url, gitconfig, work / "drive", log)
                facts = execute(name, scale, env)
                downloads = read_downloads(log, manifest)
                problems = check(name, scale, facts, downloads)
                out = write_report(name, scale, facts, downloads, problems)
                results.append(out)
                verdict = "passed" if not problems else "FAILED: " + "; ".join(problems)
                if out["pending"] and not problems:
                    verdict = f"passed (colab path pending, {out['pending']}: stopped with ScaleNotBuilt)"
                print(f"{name} at {scale}: {facts['seconds']:.0f} s, {len(downloads)} downloads, {verdict}",
                      flush=True)
        if args.kill_test:
            results.append(kill_and_resume(args.kill_test, work, base_url, gitconfig, results))
    results.append(colab_tests(work))
    failed = sum(not r["passed"] for r in results)
    print(f"rehearsal: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def runtime_pin(name: str) -> str:
    """The version colab/runtime.txt names for ``name``."""
    return re.search(rf"^{re.escape(name)}==(\S+)", (ROOT / "colab" / "runtime.txt").read_text(), re.M).group(1)


def colab_tests(work: Path) -> dict:
    """The tests that must hold in Colab's own packages (tests/colab: e.g. every widget the course builds exists in
    Colab's ipywidgets), run with the Colab-like venv's Python."""
    from importlib.metadata import version

    env = {**os.environ, "HOME": str(work / "home"), "COURSE_SCALE": "tiny",
           "COURSE_EXPECT_IPYWIDGETS": runtime_pin("ipywidgets")}
    assert version("ipywidgets") == env["COURSE_EXPECT_IPYWIDGETS"], "run the rehearsal with the Colab-like venv"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                        str(ROOT / "tests" / "colab")], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=900)
    last = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"tests/colab in the Colab-like venv: {last}", flush=True)
    out = {"notebook": "tests/colab", "passed": r.returncode == 0, "summary": last,
           "problems": [] if r.returncode == 0 else [r.stdout[-3000:] + r.stderr[-2000:]]}
    (REPORTS / "tests-colab.json").write_text(json.dumps(out, indent=1))
    return out


def _step(path: Path):
    """The step a training checkpoint of lib.train.fit was saved at (None if it holds none)."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True).get("step")
    except Exception:  # a memo file or another format: not a training checkpoint
        return None


def kill_and_resume(name: str, work: Path, base_url: str, gitconfig: str, results: list[dict]) -> dict:
    """Kill ``name`` at colab once a training checkpoint is on "Drive", run it again on the same Drive, and compare
    its numbers with the uninterrupted run's."""
    drive = work / "drive-kill"
    log = work / f"downloads-{name}-kill.jsonl"
    env = environment("colab", work, base_url, gitconfig, drive, log)
    ckpts = lambda: [p for p in drive.rglob("*.pt") if "memo" not in p.parts]  # noqa: E731
    first = execute(name, "colab", env, kill_when=lambda: bool(ckpts()))
    found = {str(p.relative_to(drive)): _step(p) for p in ckpts()}
    second = execute(name, "colab", env)
    full = next((r for r in results if r["notebook"] == name and r["scale"] == "colab"), None)
    problems = []
    if not first["killed"]:
        problems.append("the kernel was never killed: no training checkpoint appeared on Drive")
    if second["errors"]:
        problems.append(f"the second run failed: {second['errors']}")
    numbers = (second["report"] or {}).get("numbers")
    if full is None or numbers != full["numbers"]:
        problems.append(f"numbers after resuming differ from the uninterrupted run: {numbers} vs "
                        f"{full and full['numbers']}")
    if not numbers:
        problems.append("the chapter reported no numbers to compare")
    if first["killed"] and not any(step for step in found.values()):
        problems.append(f"no checkpoint on Drive held a training step at the kill: {found}")
    out = {"notebook": f"{name}.kill-and-resume", "scale": "colab", "checkpoints_at_kill": found,
           "killed": first["killed"], "seconds": [first["seconds"], second["seconds"]], "numbers": numbers,
           "passed": not problems, "problems": problems}
    (REPORTS / f"{name}.kill-and-resume.json").write_text(json.dumps(out, indent=1))
    print(f"{name} killed during training and run again: {'passed' if not problems else 'FAILED: ' + '; '.join(problems)}")
    return out


if __name__ == "__main__":
    sys.exit(main())
