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
    sr = sample_rate(sr)
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
    """A (batch, samples) float tensor of finite samples; returned as given (float64 as float32)."""
    if not isinstance(wave, torch.Tensor) or wave.dim() != 2:
        got = tuple(wave.shape) if hasattr(wave, "shape") else type(wave).__name__
        raise ValueError(f"expected a (batch, samples) mono waveform at 16 kHz as a torch tensor, got {got}: "
                         f"use lib.spoof.batch_waveforms(list_of_waves) for utterances of different lengths")
    if not wave.is_floating_point():
        raise ValueError(f"{name} holds {wave.dtype} samples: give float samples in [-1, 1] (16-bit PCM / 32768)")
    if _values_known(wave) and not torch.isfinite(wave.detach()).all():
        raise ValueError(f"{name} contains NaN or inf samples: check how it was decoded or computed")
    return wave.float() if wave.dtype == torch.float64 else wave


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


def segments(segs, *, kinds, n_frames: int | None = None, ordered: bool = False, duration_s: float | None = None,
             slack_s: float = 0.02, name: str = "segments") -> list:
    """One utterance's ``(start_s, end_s, kind)`` list, times in seconds; returned as given.

    Refuses unknown kinds, non-finite or negative times, a segment that ends before it starts and, with
    ``n_frames`` (the CAM's length), times past twice the CAM's span plus one second (only milliseconds give
    those). Times more than one frame past the CAM's last frame warn once (RCQ clamps them to that frame, as the
    reference does). ``ordered=True`` also refuses unsorted or overlapping segments; ``duration_s`` (the utterance's
    length) refuses a segment that ends more than ``slack_s`` after it. Times given as text are refused.
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
        if any(isinstance(v, (str, bytes, bool, np.bool_)) for v in (a, b)):
            raise ValueError(f"{name}[{i}] = {s!r}: start and end must be numbers of seconds, not text; convert "
                             f"them when reading the file, e.g. float(field)")
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
        if duration_s is not None and b > duration_s + slack_s:
            raise ValueError(f"{name}[{i}] = {s!r} ends at {b:g} s, after the end of the {duration_s:g} s utterance: "
                             f"the segments belong to another utterance or duration_s is wrong; check both")
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


def choice(value, options, name: str):
    """``value`` if it is one of ``options``."""
    if value not in tuple(options):
        raise ValueError(f"{name}={value!r} is not one of {tuple(options)}: pick one of those")
    return value


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


def class_labels(y, n_classes: int, name: str = "labels") -> torch.Tensor:
    """Integer class labels in ``[0, n_classes)`` as a long tensor."""
    t = torch.as_tensor(y)
    if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must hold integer class indices in [0, {n_classes}), got {t.dtype}: use "
                         f"torch.as_tensor(labels, dtype=torch.long) (0 = bona fide, 1 = spoof)")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes}), got values in [{int(t.min())}, {int(t.max())}]: "
                         f"one class index per item")
    return t.long()


def lengths(lens, batch: int, n_samples: int, name: str = "lengths") -> torch.Tensor:
    """One valid length per batch item, each in ``[1, n_samples]``, as a long tensor."""
    t = torch.as_tensor(lens)
    if t.is_floating_point() or t.dim() != 1 or t.numel() != batch:
        raise ValueError(f"{name} must be one whole number of samples per utterance ({batch}), got "
                         f"{t.dtype} of shape {tuple(t.shape)}: lib.spoof.batch_waveforms returns them")
    if t.numel() and (int(t.min()) < 1 or int(t.max()) > n_samples):
        raise ValueError(f"{name} must lie in [1, {n_samples}] (the batch holds {n_samples} samples per row), got "
                         f"values in [{int(t.min())}, {int(t.max())}]: give each utterance's own length")
    return t


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
