"""The book build's stages, and the speed-up of the parallel preparation over the serial one, measured in one run.

    .venv/bin/python benchmarks/build.py                 # cold serial, cold parallel, render, re-run, compare
    .venv/bin/python benchmarks/build.py --skip-serial   # only the parallel half (no speed-up then)
    .venv/bin/python benchmarks/build.py --compare-to artifacts/build-benchmark/serial-printed.json   # the book now

Each preparation starts from an empty course cache of its own (``.cache/bench-serial``, ``.cache/bench-parallel``)
and executes every chapter notebook (``python -m scripts.prepare --force``): ``--jobs 1`` is the serial build (one step at a
time: chapter 2's corpus and countermeasures, then each notebook, as ``make book`` did before), the default is one
process per core. Then: the HTML render from the parallel run's stored executions (``jupyter-book build``, nothing
executed), and ``python -m scripts.prepare`` again with nothing changed. Finally the chapters' printed results of the two
runs are compared (every text output, with the lines that report a duration masked) and so are the memoised results
(every tensor, array and number in ``lib.storage.cache``'s files but measured durations such as ``decode_s``), and the
differences are listed. The printed results are
also written to ``artifacts/build-benchmark/<serial|parallel>-printed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib import runtime  # noqa: E402
from scripts import prepare  # noqa: E402

OUT = ROOT / "artifacts" / "build-benchmark"   # each run's printed results (JSON), for later comparisons

# lines that report a duration (they differ between any two runs): their numbers are masked before comparing
TIME_KEY = re.compile(r"(^|_)(s|sec|seconds|time)$")   # a memoised result's durations (e.g. decode_s): not compared
TIMING = re.compile(r"\d\s*(s|ms|min|seconds?)\b|\btook\b|\btime\b|\bin \d+:\d\d\b", re.I)


def run(cmd: list[str], env: dict) -> float:
    t = time.time()
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return time.time() - t


def printed(nb) -> list[str]:
    """Every text a notebook printed or displayed, one line each (a cell's stream outputs joined first: how a kernel
    splits a stream into messages varies), blank lines dropped, durations masked."""
    if nb is None:
        return ["<no stored execution for the chapter's current code>"]
    out = []
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        texts = {}
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            text = o.get("text") or ("" if "image/png" in data else
                                     "".join(data.get(k, "") for k in ("text/plain", "text/html") if k in data))
            text = "".join(text) if isinstance(text, list) else text
            key = o.get("name", "display") if o.get("output_type") == "stream" else f"display {len(texts)}"
            texts[key] = texts.get(key, "") + re.sub(r"<[^>]+>", " ", text)
        for text in texts.values():
            for line in text.splitlines():
                if line.strip():
                    out.append(f"cell {i}: " + (re.sub(r"\d+(\.\d+)?", "#", line) if TIMING.search(line) else line))
    return out


def same(a, b, where="") -> list[str]:
    """Where two decoded memo results differ (exact comparison)."""
    import numpy as np
    import torch

    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{where}: keys differ"]
        return [d for k in a if not TIME_KEY.search(str(k)) for d in same(a[k], b[k], f"{where}[{k!r}]")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where}: lengths differ"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in same(x, y, f"{where}[{i}]")]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return [] if a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b) else [f"{where}: tensors differ"]
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return [] if np.array_equal(a, b) else [f"{where}: arrays differ"]
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return []
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def compare_memo(serial: Path, parallel: Path) -> list[str]:
    from lib.storage import checkpoint

    a, b = ({p.name for p in (d / "memo").glob("*.pt")} for d in (serial, parallel))
    diffs = [f"only in the serial cache: {n}" for n in sorted(a - b)] + [f"only in the parallel cache: {n}"
                                                                           for n in sorted(b - a)]
    for name in sorted(a & b):
        diffs += [f"{name}{d}" for d in same(checkpoint.load(serial / "memo" / name),
                                             checkpoint.load(parallel / "memo" / name))]
    return diffs, len(a & b)


def compare_printed(a: dict, b: dict, labels=("serial", "parallel")) -> bool:
    """Print, per notebook, whether two runs printed the same lines (durations masked; compared per cell as a
    multiset: the order of a cell's stream and display outputs may vary); True if all did."""
    from collections import Counter

    ok = True
    for n in prepare.BOOK:
        x_, y_ = Counter(a.get(n, [])), Counter(b.get(n, []))
        diff = [f"  only {labels[0]}: {x}" for x in sorted(x_ - y_)] + [f"  only {labels[1]}: {y}"
                                                                        for y in sorted(y_ - x_)]
        ok &= not diff
        print(f"{n}: {sum(x_.values())} printed lines, "
              + ("identical (durations masked)" if not diff else f"{len(diff)} differ:\n" + "\n".join(diff[:20])))
    return ok


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=prepare.default_jobs())
    p.add_argument("--skip-serial", action="store_true")
    p.add_argument("--no-render", action="store_true", help="skip the jupyter-book render")
    p.add_argument("--compare-to", metavar="JSON", default=None,
                   help="only compare the book's stored executions now with a run's saved printed results "
                        "(e.g. artifacts/build-benchmark/serial-printed.json) and exit")
    a = p.parse_args(argv)
    if a.compare_to:
        saved = {n: [x for x in lines if x.split(": ", 1)[-1].strip()]   # blank lines are not compared
                 for n, lines in json.loads(Path(a.compare_to).read_text()).items()}
        ok = compare_printed(saved,
                             {n: printed(prepare.cached_execution(n)) for n in prepare.BOOK}, ("saved", "now"))
        print("same numbers in every chapter:", "yes" if ok else "NO")
        raise SystemExit(0 if ok else 1)
    py = sys.executable
    base = {**os.environ, "COURSE_SCALE": os.environ.get("COURSE_SCALE", "tiny"), "HF_HUB_OFFLINE": "1",
            "PYTHONHASHSEED": "0", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
            "COURSE_THREADS": os.environ.get("COURSE_THREADS", "1"),
            "COURSE_COMMIT": runtime.commit()}   # both runs print the commit they started from
    stages, outputs, caches = {}, {}, {}
    for label, jobs in ([] if a.skip_serial else [("serial", 1)]) + [("parallel", a.jobs)]:
        cache = ROOT / ".cache" / f"bench-{label}"
        shutil.rmtree(cache, ignore_errors=True)
        caches[label] = cache
        env = {**base, "COURSE_CACHE": str(cache)}
        stages[f"prepare, {label} ({jobs} process{'es' if jobs > 1 else ''}), empty cache"] = run(
            [py, "-m", "scripts.prepare", "--force", "--jobs", str(jobs)], env)
        outputs[label] = {n: printed(prepare.cached_execution(n)) for n in prepare.BOOK}
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{label}-printed.json").write_text(json.dumps(outputs[label], indent=1, ensure_ascii=False) + "\n")
    env = {**base, "COURSE_CACHE": str(caches["parallel"])}
    if not a.no_render:
        stages["render the book from the stored executions (jupyter-book build)"] = run(
            [str(ROOT / ".venv" / "bin" / "jupyter-book"), "build", "book", "--config", str(ROOT / "_config.yml"),
             "--toc", str(ROOT / "_toc.yml"), "-W", "-n", "--keep-going", "-q"], env)
    stages["prepare again, nothing changed"] = run([py, "-m", "scripts.prepare", "--jobs", str(a.jobs)], env)

    print(f"\n{'stage':<72s} {'seconds':>8s}")
    for k, v in stages.items():
        print(f"{k:<72s} {v:8.0f}")
    print(f"machine: {prepare.default_jobs()} usable cores ({os.cpu_count()} in all), "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")
    times = {label: json.loads((cache / prepare.TIMES).read_text()) for label, cache in caches.items()}
    names = [s.name for s in prepare.all_steps()]
    print(f"\n{'step (seconds, in its worker process)':<40s} " + " ".join(f"{k:>9s}" for k in times))
    for name in names:
        print(f"{name:<40s} " + " ".join(f"{t.get(name, float('nan')):9.0f}" for t in times.values()))
    if a.skip_serial:
        return stages
    s, q = (stages[k] for k in list(stages)[:2])
    print(f"speed-up of the parallel preparation over the serial one: {s / q:.2f}x ({s:.0f} s -> {q:.0f} s)")
    ok = compare_printed(outputs["serial"], outputs["parallel"])
    diffs, n_same = compare_memo(caches["serial"], caches["parallel"])
    ok &= not diffs
    print(f"lib.storage.cache: {n_same} memoised results in both; " + ("all identical" if not diffs else
                                                                  f"{len(diffs)} differences:\n  " + "\n  ".join(diffs[:30])))
    print("same numbers in every chapter:", "yes" if ok else "NO")
    return stages


if __name__ == "__main__":
    main()
