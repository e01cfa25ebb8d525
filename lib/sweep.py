"""Sweeps: one experiment run over a grid of points, every point's result kept in one JSON file with its provenance.

A sweep costs more than the book's build can spend, so it runs from ``scripts/sweeps.py`` and its file is committed
(``lib/<paper>/results/<name>.json``) the way the tiny models are; the chapter reads and draws it. The file holds::

    {"sweep": name, "script": the command that regenerates it, "commit": ..., "machine": ..., "versions": {...},
     "started": ISO time, "seconds": total, "meta": {...},
     "points": [{"params": {...}, "result": {...}, "seconds": ...}, ...]}

``params`` of a point include its seed; ``result`` is a dict of JSON numbers, lists and strings. A run interrupted
part-way resumes: finished points are kept in ``<name>.partial.json`` (written atomically after each point) and
skipped on the next run.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

from lib import runtime
from lib.storage.checkpoint import atomic_path

PROVENANCE = ("sweep", "script", "commit", "machine", "versions", "started", "seconds", "points")


class SweepError(ValueError):
    """A sweep file that is missing, malformed, or lacks the point asked for."""


@contextlib.contextmanager
def one_thread():
    """Run the block on one torch thread (a sweep point's numbers then do not depend on the machine's core count),
    restoring the caller's setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def point_id(params: dict) -> str:
    """The canonical text of a point's parameters (sorted keys), used to match points across runs."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def _write_json(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")


def _check_result(name: str, params: dict, result) -> dict:
    if not isinstance(result, dict):
        raise SweepError(f"sweep {name!r}: the point {point_id(params)} returned {type(result).__name__}, not a dict "
                         "of numbers; make the point function return a dict")
    json.dumps(result)  # raises TypeError on values JSON cannot hold
    return result


def run(name: str, path: str | os.PathLike, fn: Callable[[dict], dict], points: list[dict], *, script: str,
        meta: dict | None = None, progress: bool = True) -> dict:
    """Run ``fn(params)`` for every point not done yet, then write the sweep file at ``path`` (atomically).

    ``script`` is the command that regenerates the file; ``meta`` any settings shared by all points."""
    path = Path(path)
    if not isinstance(points, (list, tuple)) or not points or not all(isinstance(p, dict) for p in points):
        raise SweepError(f"sweep {name!r}: points must be a non-empty list of dicts of parameters (e.g. "
                         f"[{{'steps': 150, 'seed': 0}}]), not {points!r:.80}")
    ids = [point_id(p) for p in points]
    if len(set(ids)) != len(ids):
        raise SweepError(f"sweep {name!r}: points lists the same parameters twice; every point must differ (add "
                         "the seed or the setting that tells them apart)")
    partial = path.with_name(path.stem + ".partial.json")
    done: dict[str, dict] = {}
    if partial.exists():
        prev = json.loads(partial.read_text())
        done = {point_id(p["params"]): p for p in prev.get("points", [])}
        started = prev.get("started")
    else:
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    path.parent.mkdir(parents=True, exist_ok=True)
    for i, (pid, params) in enumerate(zip(ids, points)):
        if pid in done:
            continue
        t0 = time.perf_counter()
        result = _check_result(name, params, fn(dict(params)))
        done[pid] = {"params": params, "result": result, "seconds": round(time.perf_counter() - t0, 2)}
        _write_json(partial, {"sweep": name, "started": started, "points": list(done.values())})
        if progress:
            print(f"[{name}] {i + 1}/{len(points)} {pid}: {done[pid]['seconds']:.1f} s", flush=True)
    out = {"sweep": name, "script": script, "commit": runtime.commit(), "machine": runtime.hardware(),
           "versions": runtime.versions(), "started": started,
           "seconds": round(sum(done[pid]["seconds"] for pid in ids), 1), "meta": meta or {},
           "points": [done[pid] for pid in ids]}
    _write_json(path, out)
    partial.unlink(missing_ok=True)
    return out


def load(path: str | os.PathLike) -> dict:
    """Read a sweep file and check that it carries its provenance and at least one point."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"no sweep file at {path}; regenerate it with `make sweeps` (or the command in "
                         "scripts/sweeps.py for this sweep)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SweepError(f"{path} is not valid JSON ({err}); regenerate it with `make sweeps`") from None
    if not isinstance(data, dict):
        raise SweepError(f"{path} holds {type(data).__name__}, not a sweep; regenerate it with `make sweeps`")
    missing = [k for k in PROVENANCE if k not in data]
    if missing or not isinstance(data["points"], list) or not data["points"]:
        raise SweepError(f"{path} lacks {missing or 'points'}; regenerate it with `make sweeps`")
    return data


def find(data: dict, **params) -> dict:
    """The result of the one point whose parameters include ``params``."""
    hits = [p for p in data["points"] if all(p["params"].get(k) == v for k, v in params.items())]
    if len(hits) != 1:
        raise SweepError(f"sweep {data.get('sweep')!r}: {len(hits)} points match {params} (need exactly one)")
    return hits[0]["result"]


def table(data: dict, *keys: str) -> list[dict]:
    """One flat row per point: its parameters followed by the named result values (all of them if none named)."""
    rows = []
    for p in data["points"]:
        res = p["result"] if not keys else {k: p["result"][k] for k in keys}
        rows.append({**p["params"], **res})
    return rows


def close(a, b, rel: float = 1e-6, abs_: float = 1e-9) -> bool:
    """Whether two results (numbers, or lists/dicts of them) agree to float tolerance."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rel, abs_) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, rel, abs_) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=rel, abs_tol=abs_) or (math.isnan(a) and math.isnan(b))
    return a == b
