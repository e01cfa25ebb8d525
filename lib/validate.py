"""Checks of what a learner passes to ``lib``: one function per kind of input.

Each function returns the input in the form the code uses, or raises ``ValueError`` (``TypeError`` for a wrong
type) with a message that names the argument, says what was given and what to do. Valid input comes back as it
was given, except where a function says it converts (float64 images to float32, a label iterable to a list).
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


# --- waveforms -----------------------------------------------------------------------------------------------------
SR = 16000
MIN_SAMPLES = 400  # one 25 ms analysis window = the countermeasures' receptive field for one frame


def waveform(wave, sr: int = SR, *, min_samples: int = MIN_SAMPLES, name: str = "wave") -> torch.Tensor:
    """One mono utterance as a 1-D float32 tensor at 16 kHz (another ``sr`` is resampled).

    Refuses integer PCM, stereo, empty, too short, NaN/inf and all-silent input.
    """
    a = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    if a.dtype.kind in "iub":
        raise ValueError(f"{name} holds {a.dtype} samples: give float samples in [-1, 1], e.g. wave / 32768 for "
                         f"16-bit PCM (soundfile.read(path, dtype='float32') reads them so)")
    if a.dtype.kind not in "f":
        raise TypeError(f"{name} must be an array of float samples, got dtype {a.dtype}")
    x = torch.as_tensor(np.asarray(a, dtype=np.float32))
    if x.dim() == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.dim() != 1:
        raise ValueError(f"expected one mono waveform, got shape {tuple(x.shape)}: for stereo, downmix first "
                         "(wave.mean(axis=0) for channels-first, wave.mean(axis=1) for soundfile's (samples, channels))")
    if x.numel() and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf: check how it was decoded")
    if sr != SR:
        from lib.spoof.audio import resample

        x = torch.as_tensor(resample(x.numpy(), sr, SR))
    if x.numel() == 0:
        raise ValueError(f"empty waveform {name}: give at least 25 ms (400 samples at 16 kHz) of audio")
    if x.numel() < min_samples:
        raise ValueError(f"waveform of {x.numel()} samples is shorter than the model's receptive field "
                         f"({min_samples} samples = 25 ms at 16 kHz): pad it (e.g. by repetition) or drop it")
    if x.abs().max() < 1e-5:
        raise ValueError("all-silence waveform (peak < 1e-5): there is nothing to score; drop the utterance")
    return x


def waveform_batch(wave, name: str = "wave") -> torch.Tensor:
    """A (batch, samples) float tensor of finite samples; returned as given."""
    if not isinstance(wave, torch.Tensor) or wave.dim() != 2:
        got = tuple(wave.shape) if hasattr(wave, "shape") else type(wave).__name__
        raise ValueError(f"expected a (batch, samples) mono waveform at 16 kHz as a torch tensor, got {got}: "
                         f"use lib.spoof.batch_waveforms(list_of_waves) for utterances of different lengths")
    if not wave.is_floating_point():
        raise ValueError(f"{name} holds {wave.dtype} samples: give float samples in [-1, 1] (16-bit PCM / 32768)")
    if _values_known(wave) and not torch.isfinite(wave.detach()).all():
        raise ValueError(f"{name} contains NaN or inf samples: check how it was decoded or computed")
    return wave


# --- label sets ----------------------------------------------------------------------------------------------------
def labels(labels, name: str = "labels") -> list[str]:
    """A non-empty list of distinct, non-empty strings (any iterable of strings is read into a list).

    Labels equal after collapsing whitespace and case (``'car'``, ``'car '``, ``'Car'``) count as duplicates: the
    text encoders give them the same embedding. One label is allowed.
    """
    if isinstance(labels, str):
        raise ValueError(f"{name} must be a list of strings, got the single string {labels!r}; "
                         f"split a comma-separated set first, e.g. [s.strip() for s in text.split(',')]")
    try:
        labels = list(labels)
    except TypeError:
        raise TypeError(f"{name} must be a list of strings, got {type(labels).__name__}") from None
    if not labels:
        raise ValueError(f"the label set {name} is empty: give at least one label (LSeg assigns every pixel to one "
                         f"of the labels offered)")
    for l in labels:
        if not isinstance(l, str) or not l.strip():
            raise ValueError(f"every label must be a non-empty string, got {l!r}")
    first: dict[str, str] = {}
    dups = []
    for l in labels:
        key = " ".join(l.split()).casefold()
        if key in first:
            dups.append((first[key], l))
        first.setdefault(key, l)
    if dups:
        pairs = ", ".join(f"{a!r} and {b!r}" for a, b in dups[:3])
        raise ValueError(f"duplicate labels in {name}: {pairs} (equal up to spaces and case, so their text "
                         f"embeddings would tie in the argmax); keep one of each")
    return labels


# --- segment lists and CAMs ----------------------------------------------------------------------------------------
FRAME_S = 0.02  # one CAM value per 20 ms frame


def segments(segs, *, kinds, n_frames: int | None = None, ordered: bool = False, name: str = "segments") -> list:
    """One utterance's ``(start_s, end_s, kind)`` list, times in seconds; returned as given.

    Refuses unknown kinds, non-finite or negative times, a segment that ends before it starts and, with
    ``n_frames`` (the CAM's length), times past twice the CAM's span plus one second (only milliseconds give
    those). Times more than one frame past the CAM's last frame warn once (RCQ clamps them to that frame, as the
    reference does). ``ordered=True`` also refuses unsorted or overlapping segments.
    """
    segs = list(segs)
    limit = None if n_frames is None else 2 * n_frames * FRAME_S + 1.0
    prev_end = -np.inf
    for i, s in enumerate(segs):
        if len(s) != 3:
            raise ValueError(f"{name}[{i}] is {s!r}: each segment is (start_s, end_s, kind)")
        a, b, k = s
        if k not in kinds:
            raise ValueError(f"unknown segment kind {k!r} in {name}[{i}]: use one of {tuple(kinds)}")
        try:
            a, b = float(a), float(b)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{i}] = {s!r}: start and end must be numbers of seconds") from None
        if not (np.isfinite(a) and np.isfinite(b)) or a < 0:
            raise ValueError(f"{name}[{i}] = {s!r}: times must be finite seconds >= 0")
        if b < a:
            raise ValueError(f"segment ({a}, {b}, {k}) in {name}[{i}] ends before it starts")
        if limit is not None and b > limit:
            raise ValueError(f"{name}[{i}] = {s!r} ends at {b:g} s, far past the end of its {n_frames}-frame CAM "
                             f"({n_frames * FRAME_S:.2f} s): are the times in milliseconds? Give seconds "
                             f"(divide by 1000)")
        if n_frames is not None and np.floor((round(b * 1000.0, 6) - 10.0) / 20.0) > n_frames:
            warn_once("segments-past-end", f"{name}[{i}] = {s!r} reaches past the CAM's last frame by more than "
                      f"one frame: such times count as the last frame, as in the reference scoring code. "
                      f"Check that the segments belong to this utterance (warned once)")
        if ordered and a < prev_end:
            raise ValueError(f"{name}[{i}] = {s!r} starts before the previous segment ends ({prev_end:g} s): "
                             f"sort the segments by start and remove overlaps")
        prev_end = max(prev_end, b)
    return segs


def cam(c, name: str = "cam") -> np.ndarray:
    """One utterance's CAM as a 1-D float64 array of finite values (one per 20 ms frame), at least one value."""
    a = np.asarray(c.detach().cpu() if isinstance(c, torch.Tensor) else c, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError(f"{name} is an empty score vector: one value per 20 ms frame is needed")
    bad = int((~np.isfinite(a)).sum())
    if bad:
        raise ValueError(f"{name} holds {bad} NaN or inf value(s) of {a.size}: they would make every pooled score "
                         f"NaN; recompute the CAM (is the model or its input NaN?)")
    return a


def same_length(a, b, what_a: str, what_b: str) -> None:
    """Refuse two per-item lists of different lengths."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} {what_a} but {len(b)} {what_b}: give one of each per utterance")


# --- score / label arrays ------------------------------------------------------------------------------------------
def trials(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """``(np.asarray(labels), scores as float64)`` for 1-D labels in {0 = bona fide, 1 = spoof} and as many
    finite scores."""
    y = np.asarray(labels)
    if y.dtype.kind in "USO":
        example = next((v for v in y.reshape(-1) if isinstance(v, (str, bytes))), y.reshape(-1)[:1])
        raise ValueError(f"labels must be numbers, 0 = bona fide and 1 = spoof; got {y.dtype.kind == 'O' and 'objects' or 'strings'} "
                         f"such as {example!r}. Map them first, e.g. (np.asarray(labels) == 'spoof').astype(int)")
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or len(y) != len(s):
        raise ValueError(f"labels {y.shape} and scores {s.shape} must be 1-D and of the same length: one label "
                         f"and one score per trial")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 (bona fide) or 1 (spoof); got the values {sorted(set(y.tolist()))[:5]}")
    if not np.isfinite(s).all():
        raise ValueError(f"scores hold {int((~np.isfinite(s)).sum())} NaN or inf value(s): the model that produced "
                         f"them diverged or got NaN input; recompute them")
    return y, s


# --- segmentation masks and class maps -----------------------------------------------------------------------------
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


def class_indices(t, name: str = "pred") -> torch.Tensor:
    """Class indices as a long tensor: integers, or floats that hold whole numbers only."""
    t = torch.as_tensor(t)
    if t.is_floating_point() and not (torch.isfinite(t) & (t == t.round())).all():
        bad = t[~(torch.isfinite(t) & (t == t.round()))].reshape(-1)[0].item()
        raise ValueError(f"{name} must hold class indices, got {t.dtype} values such as {bad:.3g}: take the "
                         f"argmax over classes first, e.g. logits.argmax(1)")
    return t.long()


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


# --- checkpoints ---------------------------------------------------------------------------------------------------
def load_state(module, state: dict, path) -> None:
    """``module.load_state_dict(state)`` (a model or an optimizer); a mismatch names the checkpoint ``path`` to
    delete."""
    from lib.checkpoint import CheckpointError

    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as err:
        lines = [l.strip() for l in str(err).strip().splitlines() if l.strip()] or [type(err).__name__]
        raise CheckpointError(f"the checkpoint {path} does not fit this {type(module).__name__} "
                              f"({lines[min(1, len(lines) - 1)][:200]}): it was written by "
                              f"another model or configuration. Delete it (rm '{path}') and run again") from None
