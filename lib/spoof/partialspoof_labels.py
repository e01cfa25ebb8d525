"""The label formats of PartialSpoof v1.2 (Zhang et al., TASLP 2023; Zenodo record 5766198) and the five segment
types the paper scores, derived from them.

Two public label archives:

* ``database_vad.tar.gz``: ``database/vad/{split}/{utt}.vad``, lines ``start end label`` in seconds, ``0`` spoof,
  ``1`` bona fide, ``2`` non-speech (the maintainer's description, nii-yamagishilab/PartialSpoof issue #2);
* ``database_segment_labels_v1.2.tar.gz``: ``database/segment_labels/{split}_seglab_{res}.npy``, a pickled dict
  ``{utt: [label per res-second segment]}``, ``1`` bona fide, ``0`` spoof (nii-yamagishilab/PartialSpoof
  ``03multireso/model.py``: ``protocol_parse_con`` reads it, ``lab_in_scale`` takes the min over windows).

The public labels carry no transition (TR) and no source for non-speech: :func:`derive_segments` derives the
five segment types from them. The authors' own five-code files (1 BS, 2-20 SS, 100 TR, 101 BN, 102-120 SN: what
wedefense ``wedefense/bin/XAI_Score_analysis.py`` reads, from an archive of theirs with no public URL) are read by
:func:`read_vad` when a learner has them.
"""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np

from lib import validate

from .audio import FRAME_MS, FRAME_S
from .rcq import KINDS, check_segments

KIND_CODE = {"BS": 1, "SS": 2, "TR": 100, "BN": 101, "SN": 102}   # one code per kind (SS/SN: attack A01)
PUBLIC_CODES = {0: "spoof", 1: "bona fide", 2: "non-speech"}
LABEL_FORMATS = ("public", "authors")
SEGLAB_RES = 0.01                 # the resolution of the segment labels the derivation reads (s)


def kind_of_code(code: int) -> str:
    """The authors' five-type label code → segment kind."""
    code = int(code)
    for kind, lo, hi in (("BS", 1, 1), ("SS", 2, 20), ("TR", 100, 100), ("BN", 101, 101), ("SN", 102, 120)):
        if lo <= code <= hi:
            return kind
    raise ValueError(f"unknown PartialSpoof segment code {code}: expected 1, 2-20, 100, 101 or 102-120")


def _read_spans(path, code_of, other: str) -> list:
    """Lines ``start end code`` of a label file → [(start, end, code_of(code))], checked: numbers, order, overlap."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no label file at {path}: extract it again from the label archive")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text label file (lines 'start end code'): it is damaged or another "
                         f"file; extract it again from the label archive") from None
    segs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path}, line {n} ({line.strip()!r})"
        if len(parts) < 3:
            raise ValueError(f"{where}: expected 'start end code': the file is not a PartialSpoof .vad file; "
                             f"extract it again from the label archive")
        try:
            a, b, code = float(parts[0]), float(parts[1]), float(parts[-1])
        except ValueError:
            raise ValueError(f"{where}: start, end and code must be numbers; extract the file again") from None
        try:
            kind = code_of(code)
        except ValueError as err:
            raise ValueError(f"{where}: {err}. {other}") from None
        if b < a:
            raise ValueError(f"{where}: the span ends before it starts; extract the file again")
        if segs and a < segs[-1][1] - 1e-6:
            raise ValueError(f"{where}: starts at {a:g} s, inside the previous span (which ends at "
                             f"{segs[-1][1]:g} s): spans must be in time order and must not overlap. Extract the "
                             f"file again, or drop this utterance from the subset")
        segs.append((a, b, kind))
    if not segs:
        raise ValueError(f"{path} holds no label lines: extract it again from the label archive")
    return segs


def read_vad(path) -> list[tuple[float, float, str]]:
    """One utterance's label file in the authors' five-code format → [(start_s, end_s, kind)], in time order."""
    return _read_spans(path, kind_of_code,
                       "Codes 0, 1 and 2 only are the public database_vad.tar.gz format: read it with labels="
                       "'public'. Otherwise the file is damaged: extract it again, or drop this utterance")


def _public_code(code: float) -> int:
    if code not in PUBLIC_CODES:
        raise ValueError(f"label {code:g} is not a public PartialSpoof .vad label (0 spoof, 1 bona fide, "
                         f"2 non-speech)")
    return int(code)


def read_public_vad(path) -> list[tuple[float, float, int]]:
    """One utterance's public ``.vad`` file (``database_vad.tar.gz``) → [(start_s, end_s, label)], label 0 spoof,
    1 bona fide, 2 non-speech, in time order."""
    return _read_spans(path, _public_code,
                       "Codes 1, 2-20, 100-120 are the authors' five-type labels: read them with labels='authors'. "
                       "Otherwise the file is damaged: extract it again from database_vad.tar.gz")


class _SeglabUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: no other class or function is ever looked up."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a segment-label file")
        if name in ("ndarray", "dtype"):
            return getattr(np, name)
        core = np.core.multiarray if hasattr(np, "core") else np._core.multiarray
        return getattr(core, name)


def read_seglab(path) -> dict[str, np.ndarray]:
    """A PartialSpoof segment-label file (``{split}_seglab_{res}.npy``: a pickled ``{utt: labels}`` dict, labels
    ``1`` bona fide / ``0`` spoof, as numbers or strings) → ``{utt: int8 array}``.

    Read without ``allow_pickle``: the pickle may hold only plain containers and numpy arrays."""
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                               else np.lib.format.read_array_header_2_0(f))
        except ValueError as err:
            raise ValueError(f"{path} is not a .npy file ({err}): extract it again from "
                             f"database_segment_labels_v1.2.tar.gz") from None
        if shape != () or dtype != np.dtype(object):
            raise ValueError(f"{path} holds a {dtype} array of shape {shape}, not the pickled {{utterance: labels}} "
                             f"dict of a PartialSpoof segment-label file: extract it again")
        try:
            data = _SeglabUnpickler(f).load()
        except (pickle.UnpicklingError, EOFError, AttributeError) as err:
            raise ValueError(f"{path} could not be read as a segment-label dict ({err}): extract it again from "
                             f"database_segment_labels_v1.2.tar.gz") from None
    if isinstance(data, np.ndarray) and data.shape == ():
        data = data.item()
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}, not an {{utterance: labels}} dict: extract it again")
    out = {}
    for utt, lab in data.items():
        try:
            lab = np.asarray(lab).astype(np.int64)
        except (TypeError, ValueError):
            lab = None
        if lab is None or lab.ndim != 1 or not np.isin(lab, (0, 1)).all():
            raise ValueError(f"{path}: the labels of {utt!r} are not a list of 0/1 (spoof/bona fide) values: "
                             f"extract the file again")
        out[str(utt)] = lab.astype(np.int8)
    return out


# A hand-made utterance in the public format, for the chapter's drawing at the ``tiny`` scale: a spoofed word in
# bona fide speech, a pause inside the spoofed span, a spoofed ending.
EXAMPLE_ID = "example (hand-made, public format)"
EXAMPLE_VAD = [(0.0, 0.25, 2), (0.25, 1.1, 1), (1.1, 1.6, 0), (1.6, 1.75, 2), (1.75, 2.2, 0), (2.2, 2.9, 1),
               (2.9, 3.1, 2), (3.1, 3.6, 0), (3.6, 3.8, 2)]
EXAMPLE_SPOOFED = [(1.1, 2.2), (3.1, 3.8)]      # where the example's segment labels say spoof


def example_labels() -> tuple[list, np.ndarray]:
    """The hand-made example's public labels: (``.vad`` spans, 10 ms segment labels)."""
    lab = np.ones(int(round(EXAMPLE_VAD[-1][1] / SEGLAB_RES)), np.int8)
    for a, b in EXAMPLE_SPOOFED:
        lab[int(round(a / SEGLAB_RES)):int(round(b / SEGLAB_RES))] = 0
    return list(EXAMPLE_VAD), lab


def public_labels(root: Path, split: str, utt: str) -> tuple[list, np.ndarray]:
    """An extracted utterance's public labels: (``.vad`` spans, 10 ms segment labels)."""
    return (read_public_vad(root / split / "vad" / f"{utt}.vad"),
            np.load(root / split / "seglab" / f"{utt}.npy", allow_pickle=False))


def _check_public_spans(spans) -> list[tuple[float, float, int]]:
    """``spans`` as read by :func:`read_public_vad`: (start_s, end_s, label 0/1/2), finite, in order, no overlap."""
    if isinstance(spans, (str, bytes)) or not hasattr(spans, "__len__") or len(spans) == 0:
        raise ValueError(f"spans must be a non-empty list of (start_s, end_s, label) from read_public_vad, got "
                         f"{spans!r:.80}: read the utterance's .vad file with read_public_vad")
    out = []
    for i, span in enumerate(spans):
        if not isinstance(span, (tuple, list)) or len(span) != 3:
            raise ValueError(f"spans[{i}] must be (start_s, end_s, label), got {span!r:.80}")
        a = validate.number(span[0], f"spans[{i}] start", minimum=0, hint="seconds from the utterance's start")
        b = validate.number(span[1], f"spans[{i}] end", minimum=a, hint="a span ends after it starts")
        code = span[2]
        if isinstance(code, bool) or code not in PUBLIC_CODES:
            raise ValueError(f"spans[{i}] label must be 0 (spoof), 1 (bona fide) or 2 (non-speech), got {code!r}: "
                             f"authors' five-code labels are read with labels='authors', not derived")
        if out and a < out[-1][1] - 1e-6:
            raise ValueError(f"spans[{i}] starts at {a:g} s, inside the span before it (ends {out[-1][1]:g} s): "
                             f"spans must be in time order and must not overlap")
        out.append((a, b, int(code)))
    return out


def derive_segments(spans, seglab, tr_width: float, resolution: float = SEGLAB_RES):
    """The five segment types of one utterance from its public labels.

    ``spans``: the ``.vad`` spans ``(start_s, end_s, label)`` (0 spoof, 1 bona fide, 2 non-speech);
    ``seglab``: its segment labels (1 bona fide, 0 spoof), one per ``resolution`` seconds. The rule:

    1. speech keeps its source: label 1 → BS, label 0 → SS;
    2. a non-speech span is SN if more than half of the segment labels it overlaps say spoof, else BN;
    3. wherever the source changes between neighbouring spans (bona fide ↔ spoofed), a TR span ``tr_width`` wide
       is centred on the change (its ends rounded to the microsecond and clipped to the utterance; overlapping TR
       spans merge), and the other spans are cut back around it (a span cut to nothing is dropped).

    Returns ``[(start_s, end_s, kind)]`` in time order, contiguous where the labels were.
    """
    spans = _check_public_spans(spans)
    tr_width = validate.number(tr_width, "tr_width", minimum=0, hint="the transition width in seconds, e.g. 0.06")
    seglab = np.asarray(seglab)
    if seglab.ndim != 1 or not np.isin(seglab, (0, 1)).all():
        raise ValueError(f"seglab must be one utterance's segment labels, a 1-D sequence of 0 (spoof) and 1 (bona "
                         f"fide), got an array of shape {seglab.shape}: read them with read_seglab and pass one "
                         f"utterance's entry")
    end = spans[-1][1]
    if seglab.size * resolution < end - resolution - 1e-6:
        raise ValueError(f"seglab: the segment labels cover {seglab.size * resolution:g} s but the .vad labels run "
                         f"to {end:g} s: they are not the same utterance's (or not at {resolution:g} s resolution); "
                         f"use the "
                         f"{resolution:g} s file of the same split")
    typed = []
    for a, b, code in spans:
        if code == 2:
            lo = int(np.floor(round(a / resolution, 6)))
            hi = max(int(np.ceil(round(b / resolution, 6))), lo + 1)
            units = seglab[lo:hi]
            kind = "SN" if units.size and (units == 0).sum() * 2 > units.size else "BN"
        else:
            kind = {0: "SS", 1: "BS"}[int(code)]
        typed.append((a, b, kind))
    spoofed = lambda k: k in ("SS", "SN")   # noqa: E731
    changes = [x[1] for x, y in zip(typed, typed[1:]) if spoofed(x[2]) != spoofed(y[2])]
    trs = []
    for t in changes:
        lo, hi = max(round(t - tr_width / 2, 6), spans[0][0]), min(round(t + tr_width / 2, 6), end)
        if trs and lo <= trs[-1][1] + 1e-9:
            trs[-1][1] = max(trs[-1][1], hi)
        else:
            trs.append([lo, hi])
    out = [(lo, hi, "TR") for lo, hi in trs if hi > lo]
    for a, b, k in typed:                       # each span minus the TR spans
        pieces = [(a, b)]
        for lo, hi in trs:
            pieces = [p for x, y in pieces for p in ((x, min(y, lo)), (max(x, hi), y)) if p[1] - p[0] > 1e-9]
        out += [(x, y, k) for x, y in pieces]
    return sorted(out)


def widen_transitions(segments, width: float):
    """TR spans narrower than ``width`` seconds widened to ``width`` around their centre, the neighbours cut back
    (segments stay contiguous and in order; a neighbour cut to nothing is dropped)."""
    segs = [list(s) for s in segments]
    for i, (a, b, k) in enumerate(segs):
        if k != "TR" or b - a >= width:
            continue
        c = (a + b) / 2
        lo, hi = max(c - width / 2, 0.0), c + width / 2
        segs[i][:2] = [lo, hi]
        for j in range(i - 1, -1, -1):               # earlier spans end where TR now starts
            segs[j][1] = min(segs[j][1], lo)
            segs[j][0] = min(segs[j][0], segs[j][1])
        for j in range(i + 1, len(segs)):            # later spans start where TR now ends
            segs[j][0] = max(segs[j][0], hi)
            segs[j][1] = max(segs[j][1], segs[j][0])
    end = max((s[1] for s in segments), default=0.0)
    out = [(a, min(b, end), k) for a, b, k in segs if min(b, end) > a]
    return out


def segment_labels(segments, duration_s: float, resolution: float = FRAME_S):
    """PartialSpoof-style segment labels: one per ``resolution`` seconds, 1 = bona fide, 0 = spoof.

    Segment k covers [k·res, (k+1)·res); it is 0 if any spoofed or transition span overlaps it (the database's
    coarser resolutions are the min over windows, the same rule).
    """
    duration_s = validate.number(duration_s, "duration_s", positive=True, hint="the utterance's length in seconds")
    resolution = validate.number(resolution, "resolution", positive=True, hint="seconds per label, e.g. 0.02")
    segments = check_segments(segments, kinds=KINDS, duration_s=duration_s, slack_s=resolution)
    n = int(np.ceil(round(duration_s / resolution, 6)))
    lab = np.ones(n, dtype=np.int64)
    for a, b, k in segments:
        if k in ("SS", "SN", "TR") and b > a:
            lo = int(np.floor(round(a / resolution, 6)))
            hi = int(np.ceil(round(b / resolution, 6)))
            lab[lo:hi] = 0
    return lab


def n_label_frames(segments) -> int:
    """``ceil(1000 · end / 20)``: the frames the labels span (the reference's trimming length)."""
    return math.ceil(float(segments[-1][1]) * 1000 / FRAME_MS) if segments else 0
