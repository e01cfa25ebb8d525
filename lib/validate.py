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
    if not known or 0 in a.shape:
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
