"""The README as a guide, and docs/build.md with its timings table generated from docs/timings.json."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BUILD = ROOT / "docs" / "build.md"

_spec = importlib.util.spec_from_file_location("timings", ROOT / "scripts" / "timings.py")
timings = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(timings)


def prose(markdown: str) -> str:
    """What a reader reads as text: fenced code blocks and HTML comments removed."""
    markdown = re.sub(r"^(```|~~~).*?^\1\s*$", "", markdown, flags=re.S | re.M)
    return re.sub(r"<!--.*?-->", "", markdown, flags=re.S)


def words(markdown: str) -> int:
    """Words outside code blocks (a table's bars and rules are not words)."""
    return sum(1 for w in prose(markdown).split() if re.search(r"\w", w))


def test_word_count_skips_code_and_comments():
    assert words("one two\n\n```bash\nmake course  # three four\n```\n| a | b |\n|---|---|\n<!-- five -->") == 4


def test_readme_is_a_short_guide():
    text = README.read_text()
    assert words(text) < 900, f"README.md has {words(text)} words outside code blocks; keep it under 900"
    body = prose(text)
    # a guide, not a log: no issue numbers, run dates or commit hashes
    assert not re.search(r"\bissues?\s*#?\d+|\(#\d+\)", body, re.I)
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", body)
    assert not [h for h in re.findall(r"\b[0-9a-f]{7,40}\b", body) if re.search(r"[a-f]", h) and re.search(r"\d", h)]
    for command in ("make course", "make test", "COURSE_SCALE", "COURSE_REHEARSAL", "USE_DRIVE", "docs/build.md"):
        assert command in text


def _targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


@pytest.mark.parametrize("page", [README, BUILD], ids=lambda p: p.name)
def test_links_and_make_targets_exist(page):
    text = prose(page.read_text())
    links = [t for t in re.findall(r"\]\(([^)#\s]+)", text) if not re.match(r"[a-z]+:", t)]
    assert links, "expected relative links"
    missing = [t for t in links if not (page.parent / t).exists()]
    assert not missing, f"{page.name} links to files that do not exist: {missing}"
    named = set(re.findall(r"`make ([a-z][\w-]*)", text))
    assert named and not named - _targets(), f"{page.name} names make targets the Makefile lacks: {named - _targets()}"


def test_build_page_documents_every_target():
    phony = re.search(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    documented = set(re.findall(r"^\| `make ([a-z][\w-]*)`", BUILD.read_text(), re.M))
    assert set(phony) == documented, f"undocumented: {set(phony) - documented}; not targets: {documented - set(phony)}"


def test_timings_table_is_generated_from_the_file():
    page, data = BUILD.read_text(), timings.load()
    assert data["runs"], "docs/timings.json holds no run"
    assert timings.render(page, data) == page, "run `python3 scripts/timings.py --write`"
    assert timings.main([]) == 0
    # the table reflects the file: a changed number makes it stale
    data["runs"][-1]["stages"][0]["seconds"] += 1
    assert timings.render(page, data) != page


def _run(stages, **extra):
    return {"what": "a test run", "date": "2026-01-02", "commit": "abc1234",
            "machine": {"cores": 2, "memory_gb": 24}, "stages": stages, **extra}


def test_table_newest_first_with_missing_and_failed_stages():
    data = {"runs": [_run([{"stage": "make setup", "seconds": 100}, {"stage": "make data", "seconds": 300}],
                          total_seconds=400),
                     _run([{"stage": "make setup", "seconds": 90}, {"stage": "make test", "seconds": 7,
                                                                     "status": "failed"}], date="2026-02-03")]}
    rows = timings.table(data).splitlines()
    assert rows[0] == "| stage | run 1: 2026-02-03 | run 2: 2026-01-02 |"
    assert rows[2:6] == ["| `make setup` | 90 s | 100 s |", "| `make data` | not run | 300 s (5.0 min) |",
                         "| `make test` | 7 s, failed | not run |", "| **total** | not recorded | 400 s (6.7 min) |"]
    many = {"runs": [_run([{"stage": "x", "seconds": i}], date=f"2026-01-{i + 1:02d}")
                     for i in range(timings.SHOWN + 2)]}
    text = timings.table(many)
    assert re.findall(r"run \d+: (\S+)", text.splitlines()[0]) == [f"2026-01-{i:02d}" for i in range(6, 2, -1)]
    assert "2 older runs" in text


def test_a_ci_run_recorded_stage_by_stage_then_added(tmp_path):
    ci = tmp_path / "ci-timings.json"
    timings.start(ci, "`.ci/run` on a fresh clone")
    timings.stage(ci, "make setup", 12)
    timings.stage(ci, "make data", 3.5, failed=True)
    timings.finish(ci, 20)
    run = timings.load(ci)["runs"][-1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", run["date"])
    assert run["machine"]["cores"] == len(os.sched_getaffinity(0)) and run["machine"]["memory_gb"] > 0
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True)
    assert run["commit"].split("-")[0] == head.stdout.strip()
    assert run["stages"] == [{"stage": "make setup", "seconds": 12},
                             {"stage": "make data", "seconds": 3.5, "status": "failed"}]
    assert run["total_seconds"] == 20
    target = tmp_path / "timings.json"
    shutil.copy(timings.TIMINGS, target)
    before = len(timings.load(target)["runs"])
    timings.add(ci, target)
    timings.add(ci, target)   # the same run is not added twice
    assert timings.load(target)["runs"][before:] == [run]


def test_bad_timings_files_say_what_is_wrong(tmp_path):
    f = tmp_path / "t.json"
    f.write_text("{not json")
    with pytest.raises(timings.BadTimings, match="is not JSON"):
        timings.load(f)
    f.write_text(json.dumps({"runs": [_run([{"stage": "a", "seconds": -1}])]}))
    with pytest.raises(timings.BadTimings, match="seconds must be a number"):
        timings.load(f)
    f.write_text(json.dumps({"runs": [_run([], machine={"cores": 2})]}))
    with pytest.raises(timings.BadTimings, match="memory_gb"):
        timings.load(f)
    f.write_text(json.dumps({"runs": [_run([{"stage": "a", "seconds": 1}, {"stage": "a", "seconds": 2}])]}))
    with pytest.raises(timings.BadTimings, match="names a stage twice"):
        timings.load(f)
    with pytest.raises(timings.BadTimings, match="no run to add"):
        timings.stage(tmp_path / "empty.json", "make data", 1)
    with pytest.raises(timings.BadTimings, match="markers|begin"):
        timings.render("a page without markers", {"runs": []})


def _fake_tools(bin_dir: Path, fail: str) -> None:
    bin_dir.mkdir()
    (bin_dir / "make").write_text(f'#!/bin/sh\necho "fake make $1"\n[ "$1" = "{fail}" ] && exit 3\nexit 0\n')
    (bin_dir / "npm").write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)


@pytest.mark.skipif(subprocess.run([sys.executable, "-c", "import venv, ensurepip"]).returncode != 0 or
                    not shutil.which("git"), reason=".ci/run would install python3-venv or git first")
def test_ci_run_writes_each_stage_and_keeps_the_failing_exit(tmp_path):
    """.ci/run with a stand-in `make` (its `make colab-rehearsal` fails): the stages before it and the failed one are
    in artifacts/ci-timings.json, in docs/timings.json's format, and the script exits with make's status."""
    clone = tmp_path / "clone"
    (clone / ".ci").mkdir(parents=True)
    (clone / "scripts").mkdir()
    shutil.copy(ROOT / ".ci" / "run", clone / ".ci" / "run")
    shutil.copy(ROOT / "scripts" / "timings.py", clone / "scripts" / "timings.py")
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "a clone"], check=True)
    _fake_tools(tmp_path / "bin", fail="colab-rehearsal")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{Path(sys.executable).parent}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(clone / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "== make colab-rehearsal failed (exit 3)" in r.stdout
    data = timings.load(clone / "artifacts" / "ci-timings.json")
    (run,) = data["runs"]
    assert [s["stage"] for s in run["stages"]] == ["make setup", "make data", "make book", "make slides",
                                                  "make colab-rehearsal"]
    assert run["stages"][-1]["status"] == "failed" and "total_seconds" not in run
    assert run["commit"] == subprocess.run(git[:3] + ["rev-parse", "--short=7", "HEAD"], capture_output=True,
                                           text=True).stdout.strip()
    # the same script, every stage passing: the total is recorded too
    _fake_tools(tmp_path / "bin-ok", fail="none")
    env["PATH"] = f"{tmp_path / 'bin-ok'}:{env['PATH']}"
    r = subprocess.run(["bash", str(clone / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    (run,) = timings.load(clone / "artifacts" / "ci-timings.json")["runs"]
    stages = re.findall(r"^stage make ", (ROOT / ".ci" / "run").read_text(), re.M)
    assert len(run["stages"]) == len(stages) and run["total_seconds"] >= 0 and "failed" not in json.dumps(run)
