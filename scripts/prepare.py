"""The book's preparation: every chapter's expensive steps and every chapter notebook, run in parallel processes.

    COURSE_SCALE=tiny python scripts/prepare.py            # `make data` (and so `make book`) runs this
    python scripts/prepare.py --jobs 1                     # the serial build (one process, one step at a time)
    python scripts/prepare.py --list                       # the steps, what each waits for, nothing run

Two kinds of step, scheduled together on ``--jobs`` worker processes (default: the cores this process may use), each
worker with ``$COURSE_THREADS`` torch threads (default 1: the fastest for the `tiny` networks on 2 cores, see
docs/build.md; and the thread count the serial build used, so the numbers are the same):

* memoised steps of a chapter's library: chapter 2's corpus and its 18 countermeasures (:func:`memo_steps`) and
  chapter 1's seven finetunings (:func:`icm_steps`, from ``lib.icm.experiment.finetune_grid``), the same calls with the same configuration
  (``lib.scale.pick``) as the chapter makes, so the same ``lib.storage.cache`` keys (tests/test_prepare.py checks both
  lists against the chapters);
* the chapter notebooks themselves (:data:`BOOK`): each is executed (with nbclient, as myst-nb does) and stored in
  the book's jupyter-cache (``_build/.jupyter_cache``), which ``jupyter-book build`` then reads instead of
  executing. A notebook runs after the memoised steps it reads. The evaluations that chapters 1 and 3 define in
  their own cells (memoised there) run inside their notebook step: a copy of that code here could serve a stale
  result under the same key.

Results go through ``lib.storage.cache`` (atomic writes: two processes computing one key both write whole files, the
last rename wins) and jupyter-cache (written by this process only). A killed run keeps what finished; run again, it
reuses that and resumes the training that was cut short from its checkpoint (``lib.train``).

A notebook is executed again only when something it depends on changed: :func:`inputs_hash` covers the notebook
(.md and .ipynb), every file under ``lib/``, ``_config.yml``, the pins, the environment variables that change what
it prints, and the commit it prints. The record (:data:`RECORD`) is also what the test suite reads to reuse these
executions instead of executing each notebook again under nbval (``conftest.py``).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))   # worker processes import this file as `prepare`

JCACHE = ROOT / "_build" / ".jupyter_cache"               # where myst-nb keeps executed notebooks (cache mode)
RECORD = JCACHE / "course-executions.json"                # {notebook: {"inputs": hash, ...}} of good executions
TIMES = "prepare-times.json"                              # in $COURSE_CACHE: each step's last duration (scheduling)
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
# First-run guesses of each step's seconds on one core (then the measured ones): the longest start first.
GUESS = {"01_icm": 130, "03_lseg": 115, "02_spoof": 22, "00_pipeline": 12, "spoof corpus": 90}


@dataclass
class Step:
    name: str
    kind: str                     # "memo" (seed, set the threads, call fn(*args) in a worker), "call" (only call it)
                                  # or "notebook"
    target: str                   # "module:function" or the notebook's name
    args: tuple = ()
    after: list[str] = field(default_factory=list)
    needed_by: list[str] = field(default_factory=list)   # notebooks that read its result


# ---- the steps ------------------------------------------------------------------------------------------------------
def memo_steps() -> list[Step]:
    """Chapter 2's corpus and countermeasures at the current scale: the calls the chapter makes (``tiny_base``, then
    ``tiny_run`` for every training set × splice condition × seed of its configuration). None where the chapter has no
    configuration for the scale (the chapter then stops at its configuration cell, and so does its notebook step)."""
    import lib
    from lib.spoof import experiment

    try:
        cfg = lib.scale.pick(experiment.CONFIGS, chapter="2")
    except lib.scale.ScaleNotBuilt:
        return []
    steps = [Step("spoof corpus", "memo", "lib.spoof.experiment:tiny_base", (cfg,), needed_by=["02_spoof"])]
    for s in cfg.seeds:
        for sp in experiment.SPLICES:
            for tr in ("full", "partial"):
                # the fully-spoof-trained CM of a seed is one checkpoint for every splice condition: train it once
                after = ["spoof corpus"] + ([f"spoof full-{next(iter(experiment.SPLICES))}-s{s}"]
                                            if tr == "full" and sp != next(iter(experiment.SPLICES)) else [])
                steps.append(Step(f"spoof {tr}-{sp}-s{s}", "memo", "lib.spoof.experiment:tiny_run", (tr, sp, s, cfg),
                                  after=after, needed_by=["02_spoof"]))
    return steps


def icm_finetune(run, milestones) -> None:
    """One of chapter 1's finetunings of its base codec, memoised by ``lib.icm.experiment.run_finetune`` under the key
    the chapter's own call computes (the configuration, the milestones, the base codec's hash, the scale)."""
    import lib
    from lib import icm
    from lib.icm import experiment as X

    cfg = lib.scale.pick(icm.CONFIGS, chapter="1")
    device = lib.runtime.setup(seed=0)
    train_photos, _ = X.photos_split()
    base, _ = X.base_codec(cfg, train_photos, None, None, device=device)
    X.run_finetune(base, train_photos, run, milestones=milestones, tag=cfg.scale, device=device)


def icm_steps() -> list[Step]:
    """Chapter 1's finetunings, where its base codec is the committed one (at ``colab`` the base is trained first, on
    a GPU, inside the chapter)."""
    import lib
    from lib import icm

    try:
        cfg = lib.scale.pick(icm.CONFIGS, chapter="1")
    except lib.scale.ScaleNotBuilt:
        return []
    if not isinstance(cfg.base_source, icm.config.CommittedBase):
        return []
    from lib.icm import experiment as X

    return [Step(f"icm {name}", "memo", "prepare:icm_finetune", (run, ms), needed_by=["01_icm"])
            for name, (run, ms) in X.finetune_grid(cfg).items()]


def all_steps(notebooks=BOOK) -> list[Step]:
    """The memoised steps, then one step per notebook, which waits for the memoised steps it reads."""
    memo = memo_steps() + icm_steps()
    nb = [Step(n, "notebook", n, after=[m.name for m in memo if n in m.needed_by]) for n in notebooks]
    return memo + nb


# ---- what a notebook's execution depends on -------------------------------------------------------------------------
def _files_digest(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _commit() -> str:
    """What lib.runtime.commit() prints (the notebooks show it): HEAD, +dirty when lib/ has local edits."""
    if os.environ.get("COURSE_COMMIT"):
        return os.environ["COURSE_COMMIT"]
    try:
        git = ["git", "-C", str(ROOT)]
        sha = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no", "--", "lib"],
                               capture_output=True, text=True).stdout.strip()
        return sha.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def common_inputs() -> dict:
    """What every notebook depends on besides itself."""
    lib_files = [p for p in (ROOT / "lib").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return {"lib": _files_digest(lib_files),
            "config": _files_digest([ROOT / f for f in ("_config.yml", "requirements.txt", "constraints.txt")
                                     if (ROOT / f).exists()]),
            "env": {k: os.environ.get(k) for k in ENV}, "python": sys.executable + " " + sys.version,
            "commit": _commit()}


def inputs_hash(notebook: str, common: dict | None = None) -> str:
    """The hash of everything ``notebook``'s execution depends on (see the module's docstring)."""
    common = common if common is not None else common_inputs()
    own = _files_digest([p for p in (ROOT / "book" / f"{notebook}.md", ROOT / "book" / f"{notebook}.ipynb")
                         if p.exists()])
    return hashlib.sha256(json.dumps({**common, "notebook": own}, sort_keys=True).encode()).hexdigest()


def read_md_notebook(notebook: str):
    """The notebook the book build executes: the chapter's MyST .md read as myst-nb reads it (so jupyter-cache's
    hash of its code cells matches the one ``jupyter-book build`` looks up)."""
    from myst_nb.core.read import read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    path = ROOT / "book" / f"{notebook}.md"
    return read_myst_markdown_notebook(path.read_text(), config=MdParserConfig(), add_source_map=True, path=str(path))


def load_record() -> dict:
    try:
        return json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return {}


def cached_execution(notebook: str):
    """The executed notebook jupyter-cache holds for the chapter's current code cells, or None."""
    from jupyter_cache import get_cache

    if not JCACHE.exists():
        return None
    cache = get_cache(str(JCACHE))
    try:
        record = cache.match_cache_notebook(read_md_notebook(notebook))
    except KeyError:
        return None
    return cache.get_cache_bundle(record.pk).nb


def up_to_date(notebook: str, common: dict | None = None) -> bool:
    """True when the book build's execution of ``notebook`` is recorded for the current inputs and jupyter-cache
    still holds it: executing it again would compute the same thing."""
    rec = load_record().get(notebook)
    return bool(rec and rec.get("inputs") == inputs_hash(notebook, common) and cached_execution(notebook) is not None)


# ---- running a step (in a worker process) ---------------------------------------------------------------------------
def run_step(step: Step, threads: int) -> dict:
    """Run one step in this (worker) process; returns what the parent needs. Raises on failure."""
    t0 = time.time()
    os.environ["COURSE_THREADS"] = str(threads)
    if step.kind in ("memo", "call"):
        import importlib

        if step.kind == "memo":
            import lib

            lib.runtime.setup(seed=0, threads=threads)   # as scripts/spoof_prepare.py did before each run
        module, fn = step.target.split(":")
        getattr(importlib.import_module(module), fn)(*step.args)
        return {"seconds": time.time() - t0}
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    nb = read_md_notebook(step.target)
    result = single_nb_execution(nb, cwd=str(ROOT / "book"), allow_errors=False, timeout=_timeout(),
                                 meta_override=True)
    if result.err is not None:
        raise RuntimeError(f"executing book/{step.target}.md failed:\n{result.exc_string}")
    fd, out = tempfile.mkstemp(prefix=f"{step.target}.", suffix=".ipynb", dir=JCACHE)
    os.close(fd)
    nbformat.write(nb, out)
    return {"seconds": time.time() - t0, "executed": out, "execution_seconds": result.time}


def _timeout() -> int:
    import yaml

    return int(yaml.safe_load((ROOT / "_config.yml").read_text())["execute"].get("timeout", 900))


def store_execution(notebook: str, executed: str, seconds: float, inputs: str) -> None:
    """Put an executed notebook into the book's jupyter-cache and record the inputs it was executed with."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    from lib.storage import checkpoint

    cache = get_cache(str(JCACHE))
    nb = nbformat.read(executed, as_version=4)
    os.unlink(executed)
    uri = str(ROOT / "book" / f"{notebook}.md")
    cache.cache_notebook_bundle(CacheBundleIn(nb, uri, data={"execution_seconds": seconds}),
                                check_validity=False, overwrite=True)
    os.utime(uri)   # Sphinx re-reads a page by its source's mtime: so the book shows this execution, not the last one
    record = load_record()
    record[notebook] = {"inputs": inputs, "execution_seconds": round(seconds, 1),
                        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with checkpoint.atomic_path(RECORD) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        tmp.chmod(0o644)


# ---- the scheduler --------------------------------------------------------------------------------------------------
def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _priorities(steps: list[Step], guess: dict) -> dict:
    """Longest path (seconds) from each step to the end: the steps on the longest chain start first."""
    by = {s.name: s for s in steps}
    later = {s.name: [t.name for t in steps if s.name in t.after] for s in steps}
    memo: dict = {}

    def length(name):
        if name not in memo:
            memo[name] = guess.get(name, 20) + max((length(n) for n in later[name]), default=0)
        return memo[name]

    return {name: length(name) for name in by}


def _log(message: str) -> None:
    print(message, flush=True)


def run(steps: list[Step], jobs: int, threads: int, log=_log) -> dict:
    """Run ``steps`` on ``jobs`` worker processes, each step after those it waits for; a progress line per start and
    finish and, every 30 s, the steps running. Returns {step: seconds} of those that ran; raises if any failed."""
    import lib

    times_path = lib.storage.cache.cache_dir() / TIMES
    try:
        guess = {**GUESS, **json.loads(times_path.read_text())}
    except (OSError, ValueError):
        guess = dict(GUESS)
    prio = _priorities(steps, guess)
    pending = sorted(steps, key=lambda s: -prio[s.name])
    done: dict[str, float] = {}
    failed: dict[str, str] = {}
    running: dict[cf.Future, tuple] = {}
    common = common_inputs()
    t_start, last_beat, n = time.time(), time.time(), len(steps)
    log(f"prepare: {n} steps on {jobs} process(es) × {threads} torch thread(s)")
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while pending or running:
                blocked = [s for s in pending if any(a in failed for a in s.after)]
                for s in blocked:
                    pending.remove(s)
                    failed[s.name] = "not run: " + ", ".join(a for a in s.after if a in failed) + " failed"
                    log(f"  skip  {s.name} ({failed[s.name]})")
                while len(running) < jobs:
                    ready = [s for s in pending if all(a in done for a in s.after)]
                    if not ready:
                        break
                    s = ready[0]
                    pending.remove(s)
                    inputs = inputs_hash(s.name, common) if s.kind == "notebook" else None
                    running[pool.submit(run_step, s, threads)] = (s, time.time(), inputs)
                    log(f"  start {s.name}   [{len(done) + len(failed)}/{n} done, {elapsed(t_start)}]")
                if not running:
                    break
                finished, _ = cf.wait(running, timeout=5, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    s, t0, inputs = running.pop(fut)
                    try:
                        out = fut.result()
                    except Exception as e:  # noqa: BLE001 - reported below, the other steps go on
                        failed[s.name] = f"{type(e).__name__}: {e}"
                        log(f"  FAIL  {s.name} after {time.time() - t0:.0f} s: {failed[s.name][-3000:]}")
                        continue
                    if s.kind == "notebook":
                        store_execution(s.name, out["executed"], out["execution_seconds"], inputs)
                    done[s.name] = out["seconds"]
                    log(f"  done  {s.name} in {out['seconds']:.0f} s   [{len(done) + len(failed)}/{n} done, "
                        f"{elapsed(t_start)}]")
                if time.time() - last_beat >= 30 and running:
                    last_beat = time.time()
                    log("  running: " + ", ".join(f"{s.name} ({time.time() - t0:.0f} s)" for s, t0, _ in running.values()))
        except (KeyboardInterrupt, cf.process.BrokenProcessPool) as e:
            # stop the workers now (their kernels exit with them): what finished is kept, a re-run goes on from it.
            # Further signals are ignored meanwhile (`timeout` and Ctrl-C signal the whole process group, and more
            # than once).
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            procs = list(getattr(pool, "_processes", {}).values())
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
            pool.shutdown(wait=False, cancel_futures=True)
            _save_times(times_path, guess, done)
            why = "interrupted" if isinstance(e, KeyboardInterrupt) else "a worker process died"
            raise SystemExit(f"prepare: {why} after {elapsed(t_start)} ({len(done)}/{n} steps done, kept: run "
                             f"it again to go on)") from None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    _save_times(times_path, guess, done)
    if failed:
        raise SystemExit("prepare: failed: " + "; ".join(f"{k} ({v.splitlines()[0]})" for k, v in failed.items()))
    log(f"prepare: {len(done)} steps in {elapsed(t_start)}")
    return done


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _save_times(path: Path, guess: dict, done: dict) -> None:
    from lib.storage import checkpoint

    with checkpoint.atomic_path(path) as tmp:
        tmp.write_text(json.dumps({**guess, **{k: round(v, 1) for k, v in done.items()}}, indent=1) + "\n")


def elapsed(t0: float) -> str:
    s = int(time.time() - t0)
    return f"{s // 60}:{s % 60:02d}"


def plan(force: bool = False, notebooks=BOOK) -> list[Step]:
    """The steps this run needs: the notebooks whose recorded execution is not up to date, and the memoised steps
    they read (a memoised step whose result is cached takes the time to read it back)."""
    common = common_inputs()
    stale = [n for n in notebooks if force or not up_to_date(n, common)]
    if not stale:
        return []
    steps = all_steps(stale)
    return [s for s in steps if s.kind == "notebook" or any(n in stale for n in s.needed_by)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=None, help="worker processes ($COURSE_JOBS, default: the cores)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker ($COURSE_THREADS, default 1)")
    p.add_argument("--notebooks", nargs="*", default=BOOK, help="only these notebooks (and the steps they read)")
    p.add_argument("--force", action="store_true", help="execute the notebooks even if their record is up to date")
    p.add_argument("--list", action="store_true", help="print the steps and exit")
    a = p.parse_args(argv)
    from lib import validate

    jobs = a.jobs or validate.env_int("COURSE_JOBS", default_jobs(), minimum=1)
    threads = a.threads or validate.env_int("COURSE_THREADS", 1, minimum=1)
    os.environ["COURSE_THREADS"] = str(threads)   # the kernels' too (lib.runtime.setup reads it)
    JCACHE.mkdir(parents=True, exist_ok=True)
    steps = plan(a.force, a.notebooks)
    if a.list:
        for s in steps:
            print(f"{s.name:28s} {s.kind:8s} after: {', '.join(s.after) or '-'}")
        return steps
    if not steps:
        print("prepare: every notebook's execution is up to date (nothing it depends on changed)")
        return {}
    return run(steps, jobs, threads)


if __name__ == "__main__":
    main()
