"""The book's notebook execution two ways, from cold caches, in one run: ``scripts/prepare.py`` (its own scheduler:
the chapters' memoised steps and the notebooks as separate steps on one process per core) and jupyter-cache's own
``local-parallel`` executor (the notebooks only, each computing its memoised steps itself, on a pool of one process
per core), the executor ``jcache project execute --executor local-parallel`` runs.

    .venv/bin/python benchmarks/build_execution.py            # both, then the two wall times and their ratio

Each way gets an empty course cache and an empty ``XDG_CACHE_HOME`` of its own in a temporary folder (the shared
course cache is not touched): every memoised step is computed again. ``prepare.py --force`` stores its executions in
the book's jupyter-cache (``_build/.jupyter_cache``) as ``make data`` does; the executor stores them in a jupyter-cache
in the temporary folder, with the chapters added as project notebooks read by myst-nb's reader (``myst_nb_md``), as
the book reads them. Then the printed lines of the two executions are compared (``benchmarks/build.py``'s
comparison: durations masked).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import build  # noqa: E402  (benchmarks/build.py: the printed-lines comparison)
from build import prepare, runtime  # noqa: E402


def executor_run(jcache: str) -> None:
    """In this process: every book notebook added to a new jupyter-cache at ``jcache`` and executed there by
    jupyter-cache's ``local-parallel`` executor."""
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    cache = get_cache(jcache)
    for name in prepare.BOOK:
        cache.add_nb_to_project(str(ROOT / "book" / f"{name}.md"), read_data={"name": "myst_nb_md", "type": "plugin"})
    result = load_executor("local-parallel", cache=cache).run_and_cache(timeout=prepare._timeout(),
                                                                        allow_errors=False)
    print("executor:", result.as_json(), flush=True)
    if result.excepted or result.errored:
        for rec in cache.list_project_records():
            if rec.traceback:
                print(rec.uri, rec.traceback[-3000:])
        raise SystemExit(1)


def executions(jcache: Path) -> dict:
    """{notebook: the executed notebook a jupyter-cache holds for the chapter's current code} (None where none)."""
    from jupyter_cache import get_cache

    cache = get_cache(str(jcache))
    out = {}
    for name in prepare.BOOK:
        try:
            out[name] = cache.get_cache_bundle(cache.match_cache_notebook(prepare.read_md_notebook(name)).pk).nb
        except KeyError:
            out[name] = None
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--executor-run", metavar="JCACHE", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.executor_run:
        return executor_run(a.executor_run)
    tmp = Path(tempfile.mkdtemp(prefix="build-execution-"))
    base = {**os.environ, "COURSE_SCALE": os.environ.get("COURSE_SCALE", "tiny"), "HF_HUB_OFFLINE": "1",
            "PYTHONHASHSEED": "0", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
            "COURSE_THREADS": "1", "COURSE_COMMIT": runtime.commit()}
    ways = {"jupyter-cache local-parallel": [sys.executable, __file__, "--executor-run", str(tmp / "jcache")],
            "scripts/prepare.py": [sys.executable, "-m", "scripts.prepare", "--force", "--jobs",
                                   str(prepare.default_jobs())]}
    seconds, failed = {}, {}
    try:
        for label, cmd in ways.items():
            where = tmp / label.split()[0].replace("/", "-")
            env = {**base, "COURSE_CACHE": str(where / "course"), "XDG_CACHE_HOME": str(where / "xdg")}
            print(f"$ {' '.join(cmd)}   ({label}, empty caches under {where})", flush=True)
            t0 = time.time()
            failed[label] = subprocess.run(cmd, cwd=ROOT, env=env).returncode != 0
            seconds[label] = time.time() - t0
            print(f"{label}: {seconds[label]:.0f} s{', FAILED' if failed[label] else ''}", flush=True)
        same = build.compare_printed({n: build.printed(nb) for n, nb in executions(prepare.JCACHE).items()},
                                     {n: build.printed(nb) for n, nb in executions(tmp / "jcache").items()},
                                     ("prepare.py", "local-parallel"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    a, b = seconds["scripts/prepare.py"], seconds["jupyter-cache local-parallel"]
    print(f"\n{len(prepare.BOOK)} notebooks, {prepare.default_jobs()} cores, cold caches:\n"
          f"  scripts/prepare.py            {a:7.0f} s{'  FAILED' if failed['scripts/prepare.py'] else ''}\n"
          f"  jupyter-cache local-parallel  {b:7.0f} s{'  FAILED' if failed['jupyter-cache local-parallel'] else ''}\n"
          f"  ratio local-parallel / prepare.py: {b / a:.2f}\n"
          f"  same printed lines: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
