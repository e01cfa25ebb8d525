"""Atomic checkpoints.

``save`` writes to a temporary file in the destination folder and renames it into place (``os.replace`` is atomic
on POSIX), so a run killed mid-write leaves the previous checkpoint intact, never a truncated one. ``load`` uses
``torch.load(weights_only=True)``: tensors and plain containers only, no arbitrary code from a pickle.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import torch


class CheckpointError(RuntimeError):
    """A checkpoint is missing or cannot be read."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)``, atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load(path: str | os.PathLike, map_location="cpu"):
    """``torch.load(path, weights_only=True)`` with an error that says what to do."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: train first, or check the path")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for damaged or unsafe files
        raise CheckpointError(
            f"cannot read the checkpoint {path} ({type(err).__name__}: {str(err).splitlines()[0][:200]}). "
            f"If it is a course cache or checkpoint, delete it and run again; if it came from elsewhere, it must "
            f"be a plain state dict (weights_only=True refuses pickled objects).") from None
