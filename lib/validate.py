"""Checks of what a learner passes to ``lib`` that more than one chapter needs: one function per kind of input.

Each function returns the input in the form the code uses, or raises ``ValueError`` (``TypeError`` for a wrong
type) with a message that names the argument, says what was given and what to do. Valid input comes back as it
was given, except where a function says it converts (float64 images to float32). Checks that one chapter alone
needs live in its package (``lib.spoof.audio``, ``lib.spoof.rcq``, ``lib.lseg.text``, ...).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch

_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """``warnings.warn(message)`` the first time ``key`` is seen in this process."""
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, stacklevel=3)


def _tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if isinstance(x, torch.Tensor):
        return x
    raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")


def _values_known(x: torch.Tensor) -> bool:
    return x.device.type != "meta"  # a meta tensor has a shape but no values


# --- images --------------------------------------------------------------------------------------------------------
def pixels(x, name: str = "x"):
    """Refuse image values that are not float, not finite or outside [0, 1] (any layout); return ``x``."""
    if isinstance(x, np.ndarray):
        a, xp, floating, dtype, known = x, np, x.dtype.kind == "f", str(x.dtype), True
    else:
        a, xp = _tensor(x, name).detach(), torch
        floating, dtype, known = a.is_floating_point(), str(a.dtype).replace("torch.", ""), _values_known(a)
    if not floating:
        raise ValueError(f"{name} must be a float tensor in [0, 1], got {dtype}: use x.float() / 255 "
                         f"(numpy: x.astype(np.float32) / 255)")
    if 0 in a.shape:
        raise ValueError(f"{name} is empty (shape {tuple(a.shape)}): give at least one image with at least one "
                         f"pixel")
    if not known:
        return x
    bad = int((~xp.isfinite(a)).sum())
    if bad:
        raise ValueError(f"{name} holds {bad} NaN or inf value(s): find where they come from (a division by zero, "
                         f"a corrupt file) or replace them, e.g. torch.nan_to_num(x).clamp(0, 1)")
    lo, hi = float(a.min()), float(a.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{name} must lie in [0, 1]; its values span [{lo:.3g}, {hi:.3g}]. Divide uint8 images by "
                         f"255 (and undo any mean/std normalisation) first")
    return x


def images(x, *, name: str = "x", stride: int | None = None, single: bool = True,
           needs: str = "this model") -> torch.Tensor:
    """A (B, 3, H, W) float batch in [0, 1], finite, with H, W positive multiples of ``stride`` (if given).

    ``single=True`` also takes one (3, H, W) image (returned as a batch of one). float64 (numpy's default) is
    converted to float32; other valid input is returned as given.
    """
    x = _tensor(x, name)
    if x.ndim == 3 and single:
        x = x[None]
    if x.ndim != 4:
        shapes = "(B, 3, H, W) or (3, H, W)" if single else "(B, 3, H, W)"
        raise ValueError(f"{name} must have shape {shapes}; got {tuple(x.shape)}"
                         + ("" if single or x.ndim != 3 else ": add a batch dimension, x[None]"))
    if x.shape[1] != 3:
        hint = " (it looks channels-last: use x.permute(0, 3, 1, 2))" if x.shape[-1] == 3 else ""
        raise ValueError(f"{name} must have 3 colour channels in dim 1; got shape {tuple(x.shape)}{hint}. "
                         f"Convert grey images with x.expand(-1, 3, -1, -1) and drop alpha with x[:, :3]")
    pixels(x, name)
    h, w = x.shape[-2:]
    if stride and (h < stride or w < stride or h % stride or w % stride):
        raise ValueError(f"{name} is {h}x{w} pixels: {needs} needs height and width that are positive multiples "
                         f"of {stride}. Crop or pad, e.g. to {max(stride, h // stride * stride)}x"
                         f"{max(stride, w // stride * stride)} (x[..., :{max(stride, h // stride * stride)}, "
                         f":{max(stride, w // stride * stride)}])")
    return x.float() if x.dtype == torch.float64 else x


# --- segmentation masks -------------------------------------------------------------------------------------------
def mask(m, name: str = "mask") -> torch.Tensor:
    """A boolean mask: bool as given; numbers only if every value is 0 or 1 (soft probabilities are refused)."""
    t = torch.as_tensor(m)
    if t.dtype == torch.bool:
        return t
    if not ((t == 0) | (t == 1)).all():
        bad = t[~((t == 0) | (t == 1))].reshape(-1)[0].item()
        raise ValueError(f"{name} must be a boolean mask (or 0/1), got {t.dtype} values such as {bad:.3g}: "
                         f"threshold soft probabilities first, e.g. prob > 0.5")
    return t.bool()


# --- environment variables -----------------------------------------------------------------------------------------
def env_int(var: str, default: int, *, minimum: int | None = None) -> int:
    """``int($var)``, or ``default`` when it is unset or empty; a message naming the variable otherwise."""
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"the environment variable {var}={os.environ[var]!r} is not a whole number: set it to one "
                         f"(e.g. {var}={default}) or unset it") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"the environment variable {var}={value} must be at least {minimum}: set it to one (e.g. "
                         f"{var}={default}) or unset it")
    return value


# --- per-item lists -----------------------------------------------------------------------------------------------
def same_length(a, b, what_a: str, what_b: str) -> None:
    """Refuse two per-item lists of different lengths."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} {what_a} but {len(b)} {what_b}: give one of each per utterance")


# --- numbers -------------------------------------------------------------------------------------------------------
def integer(value, name: str, *, minimum: int | None = None, maximum: int | None = None, hint: str = "") -> int:
    """A whole number (an ``int``, a NumPy integer, or a float that holds a whole number) as an ``int``, within
    ``[minimum, maximum]`` where given. ``hint`` ends the message (what the number is, what to give)."""
    import numbers

    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok and isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        ok = True
    if not ok:
        raise TypeError(f"{name} must be a whole number, got {value!r} ({type(value).__name__})"
                        + (f": {hint}" if hint else ""))
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        span = (f"at least {minimum}" if maximum is None else f"at most {maximum}" if minimum is None
                else f"between {minimum} and {maximum}")
        raise ValueError(f"{name} must be {span}, got {value}" + (f": {hint}" if hint else ""))
    return value


def number(value, name: str, *, minimum: float | None = None, positive: bool = False, hint: str = "") -> float:
    """A finite real number (not a bool or a string) as a ``float``; ``positive`` refuses 0 and below, ``minimum``
    what is below it."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})"
                        + (f": {hint}" if hint else ""))
    value = float(value)
    if not np.isfinite(value) or (positive and value <= 0) or (minimum is not None and value < minimum):
        need = "a finite number > 0" if positive else f"a finite number >= {minimum}" if minimum is not None \
            else "a finite number"
        raise ValueError(f"{name} must be {need}, got {value!r}" + (f": {hint}" if hint else ""))
    return value


def sample_rate(sr, name: str = "sr") -> int:
    """A sample rate in Hz: a whole number > 0."""
    return integer(sr, name, minimum=1, hint="the sample rate in Hz, e.g. 16000 (soundfile.read returns it)")


def keywords(given, allowed, what: str) -> None:
    """Refuse keyword names that ``what`` does not have (a typo would otherwise be a cryptic TypeError)."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        import difflib

        near = {u: difflib.get_close_matches(u, list(allowed), n=1) for u in unknown}
        tips = ", ".join(f"{u!r}" + (f" (did you mean {near[u][0]!r}?)" if near[u] else "") for u in unknown)
        raise TypeError(f"unknown keyword(s) {tips} for {what}: use one of {sorted(allowed)}")


# --- tensors in general --------------------------------------------------------------------------------------------
def finite(t, name: str, hint: str = "find where they come from and recompute it"):
    """Refuse a tensor or array holding NaN or inf; returned as given."""
    a = _tensor(t, name).detach() if not isinstance(t, np.ndarray) else torch.from_numpy(t)
    if a.is_floating_point() and _values_known(a) and a.numel():
        bad = int((~torch.isfinite(a)).sum())
        if bad:
            raise ValueError(f"{name} holds {bad} NaN or inf value(s) of {a.numel()}: {hint}")
    return t


def same_shape(a, b, name_a: str, name_b: str) -> None:
    """Refuse two tensors of different shapes (elementwise comparisons would broadcast them)."""
    sa, sb = tuple(a.shape), tuple(b.shape)
    if sa != sb:
        raise ValueError(f"{name_a} {sa} and {name_b} {sb} must have the same shape: compare an image with its own "
                         f"reconstruction (crop or resize one to the other first)")


def float_input(x, name: str, what: str = "the model"):
    """A floating-point tensor for a model's first layer: float64 is cast to float32, integer dtypes refused."""
    x = _tensor(x, name)
    if not x.is_floating_point():
        raise ValueError(f"{name} holds {str(x.dtype).replace('torch.', '')} values, but {what} takes float32: "
                         f"convert first, e.g. x.float() (and scale integers to the range the model expects)")
    return x.float() if x.dtype == torch.float64 else x


def distinct(items, name: str) -> list:
    """A list without repeated entries."""
    items = list(items)
    seen, dups = set(), []
    for v in items:
        k = v.item() if hasattr(v, "item") else v
        if k in seen:
            dups.append(k)
        seen.add(k)
    if dups:
        raise ValueError(f"{name} repeats {sorted(set(dups))[:5]}: each entry must appear once (a repeated one "
                         f"would take the place of the first); remove the repeats")
    return items


# --- paths ---------------------------------------------------------------------------------------------------------
def file_name(name, arg: str = "filename") -> str:
    """A plain file name (no folder part, not ``.``/``..``, no NUL): a file with it stays inside its folder."""
    if not isinstance(name, str):
        raise TypeError(f"{arg} must be a file name (a string), got {type(name).__name__}")
    if (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name
            or (os.altsep and os.altsep in name)):
        raise ValueError(f"{arg}={name!r} must be a plain file name (no folders, no '..', not empty): the file "
                         f"stays in its folder; give just the name, e.g. {os.path.basename(name) or 'data.bin'!r}")
    return name


def inside(folder, relative, arg: str = "name"):
    """``folder / relative`` if that path stays inside ``folder`` (archive members, cache parts), else ValueError."""
    from pathlib import Path, PurePosixPath

    folder = Path(folder)
    rel = str(relative)
    parts = PurePosixPath(rel.replace("\\", "/")).parts
    if (not rel or "\0" in rel or PurePosixPath(rel.replace("\\", "/")).is_absolute() or ".." in parts
            or not parts):
        raise ValueError(f"{arg}={rel!r} would leave the folder {folder}: only relative names without '..' are "
                         f"allowed; if this comes from a downloaded archive, the archive is not the expected one "
                         f"(delete it and download it again)")
    return folder.joinpath(*parts)


# --- writing files -------------------------------------------------------------------------------------------------
class StorageError(OSError):
    """A file could not be written: the disk is full, or the folder is read-only or not ours."""


def writing(path):
    """A context manager around writing ``path``: a full disk, a read-only or forbidden folder become a
    :class:`StorageError` that names the path and what to do."""
    import contextlib
    import errno

    @contextlib.contextmanager
    def _ctx():
        try:
            yield
        except StorageError:
            raise
        except OSError as err:
            folder = os.path.dirname(os.path.abspath(path))
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                what = (f"the disk holding {folder} is full: free space (e.g. delete old runs under "
                        f"$COURSE_CACHE) or set COURSE_CACHE to a folder on a larger disk, and run again")
            elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                what = (f"{folder} cannot be written ({os.strerror(err.errno)}): set COURSE_CACHE to a folder "
                        f"you can write (e.g. export COURSE_CACHE=/tmp/course-cache), or fix its permissions")
            else:
                raise
            raise StorageError(err.errno, f"cannot write {path}: {what}") from None

    return _ctx()
