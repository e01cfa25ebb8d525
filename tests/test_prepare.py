"""scripts/prepare.py (``python -m scripts.prepare``): the parallel preparation of the book (steps, scheduling, when a
notebook is executed again)."""
from __future__ import annotations

import time

import pytest

from scripts import prepare


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
    assert {n for n, s in steps.items() if n.startswith("spoof")} == set(steps["02_spoof"].after)
    assert {n for n, s in steps.items() if n.startswith("icm")} == set(steps["01_icm"].after)
    assert steps["00_pipeline"].after == [] and steps["03_lseg"].after == []


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
    steps = [S("a", "call", "time:sleep", (2,)), S("b", "call", "time:sleep", (2,)),
             S("c", "call", "time:sleep", (0,), after=["a"]), S("bad", "call", "math:sqrt", (-1,)),
             S("after-bad", "call", "time:sleep", (0,), after=["bad"])]
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


def test_spoof_steps_only_where_the_corpus_is_built_offline(monkeypatch):
    """Chapter 2's memoised steps build and train on the offline corpus: a scale that reads real data has none."""
    from lib.spoof import experiment

    for scale, cfg in experiment.CONFIGS.items():
        monkeypatch.setenv("COURSE_SCALE", scale)
        built = isinstance(cfg.data, experiment.BuiltCorpus)
        assert bool(prepare.memo_steps()) == built, scale


def test_killed_run_stops_its_workers_and_keeps_what_finished(tmp_path):
    """SIGTERM during the parallel stage: the run stops within seconds, its workers with it, and says so; the steps
    that finished before are kept (their durations recorded)."""
    import os
    import signal
    import subprocess
    import sys

    code = (
        "from scripts import prepare\n"
        "S = prepare.Step\n"
        "prepare.run([S('quick', 'call', 'time:sleep', (0,)), S('slow', 'call', 'time:sleep', (120,), after=['quick']),"
        " S('slow2', 'call', 'time:sleep', (120,))], jobs=2, threads=1)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=prepare.ROOT, env={**os.environ, "COURSE_CACHE": str(tmp_path)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = ""
    t0 = time.time()
    while "start slow " not in out.replace("\n", " ") + " " and time.time() - t0 < 60:
        out += proc.stdout.readline()
    time.sleep(1)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert children, "the run should have worker processes"
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)   # as `timeout` does: the process, then its group
    out += proc.communicate(timeout=30)[0]
    assert proc.returncode != 0 and "interrupted" in out, out
    time.sleep(1)
    alive = [c for c in children if os.path.exists(f"/proc/{c}") and "zombie" not in open(f"/proc/{c}/status").read()]
    assert not alive, f"workers left running: {alive}"
    import json

    assert "quick" in json.loads((tmp_path / prepare.TIMES).read_text())


def _slow_memo(key, value):
    from lib.storage import cache

    def compute():
        time.sleep(1)
        return {"x": [value] * 100_000}
    return cache.memo(key, compute)


def test_two_processes_computing_one_memo_key(tmp_path, monkeypatch):
    """Two worker processes compute the same lib.storage.cache key at once: both get their result, and the file left is
    whole and reads back (writes are atomic: each goes to its own temporary file, then one rename)."""
    import concurrent.futures as cf
    import multiprocessing

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_slow_memo, ["same-key", "same-key"], [7, 7]))
    assert results[0] == results[1] == {"x": [7] * 100_000}
    files = list((tmp_path / "memo").iterdir())
    assert len(files) == 1, files   # no temporary file left behind
    from lib.storage import cache

    assert cache.memo("same-key", lambda: pytest.fail("should read back, not recompute")) == {"x": [7] * 100_000}


def test_icm_steps_are_the_chapters_finetunings():
    """The finetuning steps are the chapter's own runs: both come from ``lib.icm.experiment.finetune_grid`` (so the
    memo keys are the same), and every ``X.run_finetune`` call in the chapter takes its run from that grid."""
    import re

    import lib
    from lib import icm
    from lib.icm import experiment as X

    cfg = lib.scale.pick(icm.CONFIGS, chapter="1")
    grid = X.finetune_grid(cfg)
    steps = prepare.icm_steps()
    assert all(s.target == "scripts.prepare:icm_finetune" and s.needed_by == ["01_icm"] for s in steps)
    assert [s.args for s in steps] == list(grid.values()) and len(steps) == 7
    assert len({lib.storage.cache.key("r", run=run) for run, _ in grid.values()}) == 7   # seven runs, seven memo keys
    text = (prepare.ROOT / "book" / "01_icm.md").read_text()
    assert "runs = cfg.runs()" in text                                   # the runs the configuration names ...
    calls = re.findall(r"experiment\.run_finetune\(base, train_photos, (\w+)\.settings,\s*milestones=(\w+)\.milestones,",
                       text)
    assert calls == [("run", "run"), ("run", "run")], calls             # ... each with its own snapshot steps
    assert [s.args for s in steps] == [(r.settings, r.milestones) for r in cfg.runs().all()]
