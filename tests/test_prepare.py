"""scripts/prepare.py: the parallel preparation of the book (steps, scheduling, when a notebook is executed again)."""
from __future__ import annotations

import shutil
import time

import pytest

from tests.helpers.prepare import prepare


def test_spoof_steps_are_the_chapters_calls(monkeypatch):
    """The memoised steps call tiny_run for exactly the (training set, splice, seed) the chapter's tiny_all runs."""
    from lib.spoof import experiment

    seen = []
    monkeypatch.setattr(experiment, "tiny_run", lambda *a: seen.append(a[:3]) or {})
    experiment.tiny_all(experiment.TINY, progress=False)
    steps = prepare.memo_steps()
    assert steps[0].target == "lib.spoof.experiment:tiny_base" and steps[0].args == (experiment.TINY,)
    runs = [s.args[:3] for s in steps if s.target == "lib.spoof.experiment:tiny_run"]
    assert sorted(runs) == sorted(seen) and len(runs) == len(set(runs))
    assert all(s.args[3] == experiment.TINY for s in steps[1:])
    assert all("spoof corpus" in s.after for s in steps[1:])


def test_notebook_steps_wait_for_what_they_read():
    steps = {s.name: s for s in prepare.all_steps()}
    assert [s for s in steps if steps[s].kind == "notebook"] == prepare.BOOK == ["00_pipeline", "01_icm", "02_spoof",
                                                                                   "03_lseg"]
    assert {n for n, s in steps.items() if s.kind == "memo"} <= set(steps["02_spoof"].after)
    assert steps["01_icm"].after == [] and steps["03_lseg"].after == []


def test_inputs_hash_follows_notebook_lib_and_env(tmp_path, monkeypatch):
    for d in ("lib", "book"):
        (tmp_path / d).mkdir()
    (tmp_path / "lib" / "a.py").write_text("x = 1\n")
    (tmp_path / "book" / "nb.md").write_text("# one\n")
    (tmp_path / "_config.yml").write_text("execute: {}\n")
    monkeypatch.setattr(prepare, "ROOT", tmp_path)
    monkeypatch.setenv("COURSE_COMMIT", "abc")
    h0 = prepare.inputs_hash("nb")
    assert prepare.inputs_hash("nb") == h0
    (tmp_path / "lib" / "a.py").write_text("x = 2\n")
    h1 = prepare.inputs_hash("nb")
    (tmp_path / "book" / "nb.md").write_text("# two\n")
    h2 = prepare.inputs_hash("nb")
    monkeypatch.setenv("COURSE_SCALE", "colab")
    h3 = prepare.inputs_hash("nb")
    monkeypatch.setenv("COURSE_COMMIT", "def")
    h4 = prepare.inputs_hash("nb")
    assert len({h0, h1, h2, h3, h4}) == 5


def test_scheduler_parallel_ordered_and_failures_stop_dependents(tmp_path, monkeypatch):
    """Two workers run two steps at once; a step starts only after the one it waits for; a failure is reported,
    its dependents are not run, the others are."""
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    S = prepare.Step
    steps = [S("a", "memo", "time:sleep", (2,)), S("b", "memo", "time:sleep", (2,)),
             S("c", "memo", "time:sleep", (0,), after=["a"]), S("bad", "memo", "math:sqrt", (-1,)),
             S("after-bad", "memo", "time:sleep", (0,), after=["bad"])]
    log = []
    t0 = time.time()
    with pytest.raises(SystemExit, match="bad"):
        prepare.run(steps, jobs=2, threads=1, log=lambda m: log.append((time.time() - t0, m)))
    text = "\n".join(m for _, m in log)
    assert "FAIL  bad" in text and "skip  after-bad" in text and "done  c" in text
    start = {m.split()[1]: t for t, m in log if m.strip().startswith("start")}
    done = {m.split()[1]: t for t, m in log if m.strip().startswith("done")}
    assert start["c"] >= done["a"]
    assert start["b"] < done["a"], "two workers: b (or bad) should start while a runs"
    assert (tmp_path / prepare.TIMES).exists()


def test_scale_without_spoof_config_has_no_spoof_steps(monkeypatch):
    monkeypatch.setenv("COURSE_SCALE", "paper")
    assert prepare.memo_steps() == []
