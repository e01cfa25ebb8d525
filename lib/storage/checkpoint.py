"""Atomic checkpoints.

``save`` writes to a temporary file in the destination folder and renames it into place (``os.replace`` is atomic
on POSIX), so a run killed mid-write leaves the previous checkpoint intact, never a truncated one. ``load`` uses
``torch.load(weights_only=True)``: tensors and plain containers only, no arbitrary code from a pickle; ``allow=``
adds an explicit list of further classes, inside ``torch.serialization.safe_globals``.

:data:`LIGHTNING_ALLOW` is such a list for PyTorch-Lightning ``.ckpt`` files: data-only stand-ins named like the
non-tensor classes those files refer to (torch matches allowed classes by ``module.qualname``; an ``AttributeDict``
loads as a plain ``dict``), plus ``argparse.Namespace``. A Lightning checkpoint then loads without
``pytorch_lightning`` installed, and nothing in it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import tempfile
from pathlib import Path

import torch

from lib import validate


class CheckpointError(RuntimeError):
    """A checkpoint is missing or cannot be read."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""

    path = Path(path)
    with validate.writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _stand_in(name: str, mapping: bool = False) -> type:
    """An empty class whose ``__module__``/``__qualname__`` spell ``name``. With ``mapping=True`` unpickling it gives
    a plain ``dict`` (torch's weights_only unpickler fills only exact dicts, not subclasses)."""
    module, _, qualname = name.rpartition(".")
    body = {"__module__": module, "__qualname__": qualname,
            "__doc__": f"Data-only stand-in for {name} (lib.storage.checkpoint.LIGHTNING_ALLOW)."}
    if mapping:
        body["__new__"] = lambda cls, *args: dict()
    return type(qualname, (), body)


# pytorch-lightning 1.x writes hyper_parameters as dict(model.hparams) (trainer/connectors/checkpoint_connector.py,
# dump_checkpoint); an AttributeDict can still sit inside it. Before 1.5 a callback's state is keyed by the callback's
# class itself (trainer/callback_hook.py, on_save_checkpoint: callback_states[type(callback)]).
LIGHTNING_ALLOW = (
    _stand_in("pytorch_lightning.utilities.parsing.AttributeDict", mapping=True),   # hparams values (Lightning 1.x)
    _stand_in("lightning_fabric.utilities.data.AttributeDict", mapping=True),     # hyper_parameters (Lightning 2.x)
    _stand_in("pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"),  # callback state keys (< 1.5)
    _stand_in("pytorch_lightning.callbacks.early_stopping.EarlyStopping"),
    argparse.Namespace,                                                      # hparams given as a Namespace
)


def save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)``, atomically; a full disk or a read-only folder raise
    :class:`lib.validate.StorageError` naming the path."""

    with validate.writing(path), atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load(path: str | os.PathLike, map_location="cpu", *, allow=()):
    """``torch.load(path, weights_only=True)``, also accepting the classes in ``allow``, with an error that says what
    to do."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: train first, or check the path")
    if path.is_file() and path.stat().st_size == 0:
        raise CheckpointError(f"the checkpoint {path} is empty (0 bytes: a write or download was cut short): "
                              f"delete it (rm '{path}') and run again")
    try:
        with torch.serialization.safe_globals(list(allow)) if allow else contextlib.nullcontext():
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for damaged or unsafe files
        raise CheckpointError(
            f"cannot read the checkpoint {path} ({type(err).__name__}: {_reason(err)}). "
            f"If it is a course cache or checkpoint, delete it and run again; if it came from elsewhere, it must "
            f"be a plain state dict (weights_only=True refuses pickled objects not on an explicit allow-list).",
        ) from None


def _reason(err: Exception) -> str:
    """The line of ``err`` that says what torch's weights_only unpickler refused, else its first line."""
    text = str(err)
    refused = re.search(r"^.*(GLOBAL|Can only|Trying to).*$", text, flags=re.M)
    return (refused.group(0).strip() if refused else text.splitlines()[0] if text else "")[:300]


def load_state(module, state: dict, path) -> None:
    """``module.load_state_dict(state)`` (a model or an optimizer); a mismatch names the checkpoint ``path`` to
    delete."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as err:
        lines = [l.strip() for l in str(err).strip().splitlines() if l.strip()] or [type(err).__name__]
        raise CheckpointError(f"the checkpoint {path} does not fit this {type(module).__name__} "
                              f"({lines[min(1, len(lines) - 1)][:200]}): it was written by "
                              f"another model or configuration. Delete it (rm '{path}') and run again") from None
