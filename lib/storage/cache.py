"""On-disk memoisation.

A chapter is executed more than once (the HTML build, the notebook tests, a learner's re-run): what is expensive
(a training run, a data set) is computed once and read back afterwards. Results are written atomically and read
with ``torch.load(weights_only=True)``, so a cache holds tensors, numbers, strings, lists, dicts and NumPy arrays
(converted to tensors on the way in and back on the way out), never pickled objects.

The cache lives in ``$COURSE_CACHE`` (default ``~/.cache/repro-course``), downloaded files in ``$COURSE_DOWNLOADS``
(default ``$COURSE_CACHE/downloads``). Delete the folder to start afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np
import torch

from lib import validate
from lib.storage import checkpoint
from lib.storage.hashes import verify


def cache_dir(*parts: str) -> Path:
    """``$COURSE_CACHE/<parts...>``, created."""

    root = Path(os.environ.get("COURSE_CACHE") or Path.home() / ".cache" / "repro-course")
    path = validate.inside(root, "/".join(parts), "parts") if parts else root
    with validate.writing(path / "."):
        path.mkdir(parents=True, exist_ok=True)
    return path


def downloads_dir() -> Path:
    """Where downloaded files and data archives go, created: ``$COURSE_DOWNLOADS``, by default
    ``$COURSE_CACHE/downloads``. (On Colab with Google Drive the cache is on Drive and downloads stay on the
    runtime's disk: :func:`lib.colab.use_drive`.)"""
    path = Path(os.environ.get("COURSE_DOWNLOADS") or cache_dir("downloads"))
    path.mkdir(parents=True, exist_ok=True)
    return path


_ND = "__ndarray__"


_STORABLE = (str, bytes, int, float, complex, bool, type(None), torch.Tensor, torch.dtype, torch.device)


def _encode(obj, where: str = "result"):
    if isinstance(obj, np.ndarray):
        return {_ND: torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _encode(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_encode(v, f"{where}[{i}]") for i, v in enumerate(obj))
    if not isinstance(obj, _STORABLE):
        raise TypeError(f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}, which the cache cannot read "
                        f"back (weights_only): it would be recomputed on every call. Return plain data instead, "
                        f"e.g. str(path) for a Path")
    return obj


def _decode(obj):
    if isinstance(obj, dict):
        if set(obj) == {_ND}:
            return obj[_ND].numpy()
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_decode(v) for v in obj)
    return obj


def key(name: str, **parts) -> str:
    """The one way a memo key is made: ``name`` then each ``part=value`` in the order given; a dataclass value is
    written field by field (``key("icm-ft", cfg=ft)`` → ``icm-ft-cfg.steps=20-cfg.batch=4-…``), so two settings
    that differ anywhere get different keys."""
    items = []
    for k, v in parts.items():
        if is_dataclass(v) and not isinstance(v, type):
            items += [f"{k}.{f}={x}" for f, x in asdict(v).items()]
        else:
            items.append(f"{k}={v}")
    return "-".join([name, *items])


def _file(key: str, version: str, folder: Path) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:80]
    digest = hashlib.sha256(f"{key}\0{version}".encode()).hexdigest()[:12]
    return folder / f"{safe}-{digest}.pt"


def _path(key: str, version: str) -> Path:
    return _file(key, version, cache_dir("memo"))


def work_path(key: str, version: str = "1") -> Path:
    """Where the resumable training file (``lib.train.fit``'s ``ckpt_path``) of the run memoised under ``(key,
    version)`` lives: named like its memo file, in ``$COURSE_CACHE/work``."""
    return _file(key, version, cache_dir("work"))


def committed_path(folder: Path, key: str, version: str = "1") -> Path:
    """Where a result memoised under ``(key, version)`` lies in a folder of committed results (named as in the
    cache)."""
    return _file(key, version, Path(folder))


def read_committed(folder: Path, key: str, version: str = "1"):
    """The result committed in ``folder`` for ``(key, version)``, checked against the sha256 that the folder's
    ``MANIFEST.json`` lists for it; ``None`` if none is committed."""
    path = committed_path(folder, key, version)
    if not path.exists():
        return None
    entry = json.loads((Path(folder) / "MANIFEST.json").read_text()).get(path.name)
    if entry is None:
        raise ValueError(f"{path} is not listed in {Path(folder) / 'MANIFEST.json'}: delete it, or write it again "
                         "with the command that made the folder")
    verify(path, entry["sha256"], "MANIFEST.json", f"it changed after it was computed; compute it again with: "
           f"{entry['command']}")
    return _decode(checkpoint.load(path))


def memo(key: str, fn, *, version: str = "1", committed: Path | None = None):
    """``fn()``, computed once per ``(key, version)`` and read back from disk afterwards.

    Put everything the result depends on (sizes, seeds, scale) into ``key`` and bump ``version`` when the code
    that computes it changes. ``committed``: a folder of results committed with the course
    (:func:`read_committed`); a result found there is read instead of computed.
    """
    path = _path(key, version)
    if path.exists():
        try:
            return _decode(checkpoint.load(path))
        except checkpoint.CheckpointError:
            path.unlink(missing_ok=True)  # unreadable: recompute
    if committed is not None:
        result = read_committed(committed, key, version)
        if result is not None:
            return result
    result = fn()
    checkpoint.save(_encode(result), path)
    return result
