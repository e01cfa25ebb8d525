"""The book's preparation: the chapters' expensive steps and the chapter notebooks, on parallel worker processes.

    python -m scripts.prepare [--jobs N] [--force] [--list]     # `make data` (and so `make book`) runs this

Memoised steps (chapter 2's corpus and countermeasures, chapter 1's finetunings: the chapter's own calls, so the same
``lib.storage.cache`` keys) and notebooks (executed by jupyter-cache's ``single_nb_execution`` after the steps they
read, stored in the book's jupyter-cache for ``jupyter-book build``) share ``--jobs`` workers (default: one per
core), each with ``$COURSE_THREADS`` torch threads; the longest chain starts first, by the last measured durations.
jupyter-cache matches an execution by the notebook's code cells alone, so a notebook is executed again whenever
anything it depends on changed (:func:`inputs_hash`: the notebook, ``lib/``, ``_config.yml``, the pins, Python, the
environment that changes what it prints, the commit it prints); the record of those inputs (:data:`RECORD`) is also
what the test suite reads to reuse an execution instead of running it again under nbval (``conftest.py``). A killed
run keeps what finished. Run as a module from the repository root: the workers import its functions as
``scripts.prepare``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import importlib
import json
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lib import runtime

ROOT = Path(__file__).resolve().parent.parent
JCACHE = ROOT / "_build" / ".jupyter_cache"               # where myst-nb keeps executed notebooks (cache mode)
RECORD = JCACHE / "course-executions.json"                # {notebook: {"inputs": hash, ...}} of good executions
TIMES = "prepare-times.json"                              # in $COURSE_CACHE: each step's last duration (scheduling)
# Each step's seconds in a fresh build on the course's 2-core machine (``--save-times`` writes it from $COURSE_CACHE's
# record): the order of a first build, whose cache has no durations yet.
MEASURED = ROOT / "scripts" / "prepare-times.json"
# The environment that changes what a notebook prints (scale, threads, mirror, ...); COURSE_CACHE does not.
ENV = ("COURSE_SCALE", "COURSE_REHEARSAL", "COURSE_THREADS", "OMP_NUM_THREADS", "PYTHONHASHSEED", "HF_HUB_OFFLINE",
       "COURSE_MIRROR", "COURSE_LSEG_CHECKPOINTS", "COURSE_LIVE", "COURSE_COMMIT")


def book_notebooks() -> list[str]:
    """The pages of ``_toc.yml`` that are notebooks (MyST Markdown with a kernel), in the book's order."""
    import yaml
    from myst_nb.core.read import is_myst_markdown_notebook

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [p for p in pages if (ROOT / "book" / f"{p}.md").exists()
            and is_myst_markdown_notebook((ROOT / "book" / f"{p}.md").read_text())]


BOOK = book_notebooks()


# ---- what a notebook's execution depends on -------------------------------------------------------------------------
def _files_digest(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def common_inputs() -> dict:
    """What every notebook depends on besides itself."""
    lib_files = [p for p in (ROOT / "lib").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return {"lib": _files_digest(lib_files),
            "config": _files_digest([ROOT / f for f in ("_config.yml", "requirements.txt", "constraints.txt")
                                     if (ROOT / f).exists()]),
            "env": {k: os.environ.get(k) for k in ENV}, "python": sys.executable + " " + sys.version,
            "commit": runtime.commit()}   # what the notebooks print


def inputs_hash(notebook: str, common: dict | None = None) -> str:
    """The hash of everything ``notebook``'s execution depends on (see the module's docstring)."""
    common = common if common is not None else common_inputs()
    own = _files_digest([p for p in (ROOT / "book" / f"{notebook}.md", ROOT / "book" / f"{notebook}.ipynb")
                         if p.exists()])
    return hashlib.sha256(json.dumps({**common, "notebook": own}, sort_keys=True).encode()).hexdigest()


# ---- the book's jupyter-cache --------------------------------------------------------------------------------------
def read_md_notebook(notebook: str):
    """The chapter's MyST .md read as myst-nb reads it (so jupyter-cache's hash of its code cells is the book's)."""
    from myst_nb.core.read import myst_nb_reader_plugin

    return myst_nb_reader_plugin(str(ROOT / "book" / f"{notebook}.md"))


def load_record() -> dict:
    try:
        return json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return {}


def _cache_record(cache, notebook: str):
    try:
        return cache.match_cache_notebook(read_md_notebook(notebook))
    except KeyError:
        return None


def cached_execution(notebook: str):
    """The executed notebook jupyter-cache holds for the chapter's current code cells, or None."""
    from jupyter_cache import get_cache

    if not JCACHE.exists():
        return None
    cache = get_cache(str(JCACHE))
    record = _cache_record(cache, notebook)
    return cache.get_cache_bundle(record.pk).nb if record else None


def up_to_date(notebook: str, common: dict | None = None) -> bool:
    """True when the book build's execution of ``notebook`` is recorded for the current inputs and jupyter-cache
    still holds it: executing it again would compute the same thing."""
    rec = load_record().get(notebook)
    return bool(rec and rec.get("inputs") == inputs_hash(notebook, common) and cached_execution(notebook) is not None)


@dataclass
class Step:
    name: str
    kind: str                     # "memo" (seed, set the threads, call), "call" (only call) or "notebook"
    target: str                   # "module:function" or the notebook's name
    args: tuple = ()
    after: list[str] = field(default_factory=list)
    needed_by: list[str] = field(default_factory=list)   # notebooks that read its result


# ---- the steps ------------------------------------------------------------------------------------------------------
def memo_steps() -> list[Step]:
    """Chapter 2's corpus and countermeasures at the current scale, as the chapter calls them."""
    import lib
    from lib.spoof import experiment

    try:
        cfg = lib.scale.pick(experiment.CONFIGS, chapter="2")
    except lib.scale.ScaleNotBuilt:
        return []
    if not isinstance(cfg.data, experiment.BuiltCorpus):
        return []   # tiny_base and tiny_run are the steps of the corpus built offline; real data is read in the chapter
    first = next(iter(experiment.SPLICES))
    steps = [Step("spoof corpus", "memo", "lib.spoof.experiment:tiny_base", (cfg,), needed_by=["02_spoof"])]
    for s in cfg.seeds:
        for sp in experiment.SPLICES:
            for tr in ("full", "partial"):
                # the fully-spoof-trained CM of a seed is one checkpoint for every splice condition: train it once
                after = ["spoof corpus"] + ([f"spoof full-{first}-s{s}"] if tr == "full" and sp != first else [])
                steps.append(Step(f"spoof {tr}-{sp}-s{s}", "memo", "lib.spoof.experiment:tiny_run", (tr, sp, s, cfg),
                                  after=after, needed_by=["02_spoof"]))
    return steps


def icm_finetune(run, milestones) -> None:
    """One of chapter 1's finetunings, memoised by ``lib.icm.experiment.run_finetune`` under the chapter's key."""
    import lib
    from lib import icm
    from lib.icm import experiment as X

    cfg = lib.scale.pick(icm.CONFIGS, chapter="1")
    device = lib.runtime.setup(seed=0)
    train_photos, _ = X.photos_split()
    base, _ = X.base_codec(cfg, train_photos, None, None, device=device)
    X.run_finetune(base, train_photos, run, milestones=milestones, tag=cfg.scale, device=device)


def icm_steps() -> list[Step]:
    """Chapter 1's finetunings, where its base codec is the committed one (at ``colab`` the chapter trains it first)."""
    import lib
    from lib import icm
    from lib.icm import experiment as X

    try:
        cfg = lib.scale.pick(icm.CONFIGS, chapter="1")
    except lib.scale.ScaleNotBuilt:
        return []
    if not isinstance(cfg.base_source, icm.config.CommittedBase):
        return []
    return [Step(f"icm {name}", "memo", "scripts.prepare:icm_finetune", (run, ms), needed_by=["01_icm"])
            for name, (run, ms) in X.finetune_grid(cfg).items()]


def all_steps(notebooks=None) -> list[Step]:
    """The memoised steps, then one step per notebook, which waits for the memoised steps it reads."""
    memo = memo_steps() + icm_steps()
    return memo + [Step(n, "notebook", n, after=[m.name for m in memo if n in m.needed_by])
                   for n in (BOOK if notebooks is None else notebooks)]


def run_step(step: Step, threads: int) -> dict:
    """Run one step in this (worker) process; returns its seconds (and a notebook's execution). Raises on failure."""
    t0 = time.time()
    os.environ["COURSE_THREADS"] = str(threads)
    if step.kind == "notebook":
        from jupyter_cache.executors.utils import single_nb_execution

        nb = read_md_notebook(step.target)
        result = single_nb_execution(nb, cwd=str(ROOT / "book"), allow_errors=False, timeout=_timeout())
        if result.err is not None:
            raise RuntimeError(f"executing book/{step.target}.md failed:\n{result.exc_string}")
        return {"seconds": time.time() - t0, "nb": nb, "execution_seconds": result.time}
    if step.kind == "memo":
        import lib

        lib.runtime.setup(seed=0, threads=threads)
    module, fn = step.target.split(":")
    getattr(importlib.import_module(module), fn)(*step.args)
    return {"seconds": time.time() - t0}


def _timeout() -> int:
    import yaml

    return int(yaml.safe_load((ROOT / "_config.yml").read_text())["execute"].get("timeout", 900))


def store_execution(notebook: str, nb, seconds: float, inputs: str) -> None:
    """Put an executed notebook into the book's jupyter-cache and record the inputs it was executed with."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    from lib.storage.checkpoint import atomic_path

    uri = str(ROOT / "book" / f"{notebook}.md")
    get_cache(str(JCACHE)).cache_notebook_bundle(CacheBundleIn(nb, uri, data={"execution_seconds": seconds}),
                                                 check_validity=False, overwrite=True)
    os.utime(uri)   # Sphinx re-reads a page by its source's mtime: so the book shows this execution, not the last one
    record = load_record()
    record[notebook] = {"inputs": inputs, "execution_seconds": round(seconds, 1),
                        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with atomic_path(RECORD) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        tmp.chmod(0o644)


# ---- the scheduler --------------------------------------------------------------------------------------------------
def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _chain(steps: list[Step], seconds: dict) -> dict:
    """Each step's longest chain (seconds) to the end, by the durations measured last time (unknown: equal)."""
    later = {s.name: [t.name for t in steps if s.name in t.after] for s in steps}
    chain: dict = {}

    def length(name):
        if name not in chain:
            chain[name] = seconds.get(name, 1) + max((length(n) for n in later[name]), default=0)
        return chain[name]

    return {s.name: length(s.name) for s in steps}


def step_seconds(times_path: Path) -> dict:
    """The durations the scheduler orders by: this cache's last measured ones, else the committed fresh build's."""
    for path in (times_path, MEASURED):
        try:
            seconds = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        return seconds.get("seconds", seconds)
    return {}


def save_times() -> Path:
    """Write this cache's measured step durations to :data:`MEASURED`, with where they were measured."""
    from lib import runtime as rt
    from lib.storage import cache
    from lib.storage.checkpoint import atomic_path

    seconds = json.loads((cache.cache_dir() / TIMES).read_text())
    with atomic_path(MEASURED) as tmp:
        tmp.write_text(json.dumps({"measured": f"a fresh `make data`, {default_jobs()} processes, commit "
                                   f"{rt.commit()}, {time.strftime('%Y-%m-%d')}", "seconds": seconds}, indent=1) + "\n")
    return MEASURED


def run(steps: list[Step], jobs: int, threads: int, log=print) -> dict:
    """Run ``steps`` on ``jobs`` worker processes, each after those it waits for, the longest chain first; a line
    per start and finish. Returns {step: seconds} of those that ran; raises SystemExit if any failed."""
    from lib.storage import cache
    from lib.storage.checkpoint import atomic_path

    times_path = cache.cache_dir() / TIMES
    measured = step_seconds(times_path)
    chain = _chain(steps, measured)
    pending = sorted(steps, key=lambda s: -chain[s.name])
    done, failed, running = {}, {}, {}
    common, t_start = common_inputs(), time.time()
    clock = lambda: f"{int(time.time() - t_start) // 60}:{int(time.time() - t_start) % 60:02d}"  # noqa: E731
    log(f"prepare: {len(steps)} steps on {jobs} process(es) × {threads} torch thread(s)")
    pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while pending or running:
            for s in [s for s in pending if any(a in failed for a in s.after)]:
                pending.remove(s)
                failed[s.name] = "not run: " + ", ".join(a for a in s.after if a in failed) + " failed"
                log(f"  skip  {s.name} ({failed[s.name]})")
            for s in [s for s in pending if all(a in done for a in s.after)][:jobs - len(running)]:
                pending.remove(s)
                inputs = inputs_hash(s.name, common) if s.kind == "notebook" else None
                running[pool.submit(run_step, s, threads)] = (s, time.time(), inputs)
                log(f"  start {s.name}   [{len(done) + len(failed)}/{len(steps)} done, {clock()}]")
            if not running:
                break
            for fut in cf.wait(running, timeout=5, return_when=cf.FIRST_COMPLETED)[0]:
                s, t0, inputs = running.pop(fut)
                try:
                    out = fut.result()
                except Exception as e:  # noqa: BLE001 - reported here; the steps that do not wait for it go on
                    failed[s.name] = f"{type(e).__name__}: {e}"
                    log(f"  FAIL  {s.name} after {time.time() - t0:.0f} s: {failed[s.name][-3000:]}")
                    continue
                if s.kind == "notebook":
                    store_execution(s.name, out["nb"], out["execution_seconds"], inputs)
                done[s.name] = out["seconds"]
                log(f"  done  {s.name} in {out['seconds']:.0f} s   [{len(done) + len(failed)}/{len(steps)} done, "
                    f"{clock()}]")
    except (KeyboardInterrupt, cf.process.BrokenProcessPool) as e:
        # stop the workers now (their kernels exit with them); further signals are ignored meanwhile (`timeout` and
        # Ctrl-C signal the whole process group, and more than once)
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()
        why = "interrupted" if isinstance(e, KeyboardInterrupt) else "a worker process died"
        raise SystemExit(f"prepare: {why} after {clock()} ({len(done)}/{len(steps)} steps done, kept: run it again "
                         f"to go on)") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        with atomic_path(times_path) as tmp:
            tmp.write_text(json.dumps({**measured, **{k: round(v, 1) for k, v in done.items()}}, indent=1) + "\n")
    if failed:
        raise SystemExit("prepare: failed: " + "; ".join(f"{k} ({v.splitlines()[0]})" for k, v in failed.items()))
    log(f"prepare: {len(done)} steps in {clock()}")
    return done


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def plan(force: bool = False, notebooks=None) -> list[Step]:
    """The steps this run needs: the notebooks whose recorded execution is not up to date, and the memoised steps
    they read (a memoised step whose result is cached takes the time to read it back)."""
    common = common_inputs()
    stale = [n for n in (BOOK if notebooks is None else notebooks) if force or not up_to_date(n, common)]
    if not stale:
        return []
    return [s for s in all_steps(stale) if s.kind == "notebook" or any(n in stale for n in s.needed_by)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=None, help="worker processes ($COURSE_JOBS, default: the cores)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker ($COURSE_THREADS, default 1)")
    p.add_argument("--notebooks", nargs="*", default=None, help="only these notebooks (and the steps they read)")
    p.add_argument("--force", action="store_true", help="execute the notebooks even if their record is up to date")
    p.add_argument("--list", action="store_true", help="print the steps and exit")
    p.add_argument("--save-times", action="store_true",
                   help=f"write the cache's measured step durations to {MEASURED.relative_to(ROOT)} and exit")
    a = p.parse_args(argv)
    if a.save_times:
        print(f"prepare: step durations written to {save_times()}")
        return []
    from lib import validate

    jobs = a.jobs or validate.env_int("COURSE_JOBS", default_jobs(), minimum=1)
    threads = a.threads or validate.env_int("COURSE_THREADS", 1, minimum=1)
    os.environ["COURSE_THREADS"] = str(threads)   # the kernels' too (lib.runtime.setup reads it)
    JCACHE.mkdir(parents=True, exist_ok=True)
    steps = plan(a.force, a.notebooks)
    if a.list or not steps:
        for s in steps:
            print(f"{s.name:28s} {s.kind:8s} after: {', '.join(s.after) or '-'}")
        if not steps:
            print("prepare: every notebook's execution is up to date (nothing it depends on changed)")
        return steps
    return run(steps, jobs, threads)


if __name__ == "__main__":
    from scripts.prepare import main as run_main   # this file as the module the workers import: scripts.prepare

    run_main()
