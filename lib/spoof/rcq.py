"""RCQ: relative contribution quantification of Grad-CAM scores per segment type.

Liu, Zhang, Das, Ma, Tao, Li, "How Do Neural Spoofing Countermeasures Detect Partially Spoofed Audio?",
Interspeech 2024 (arXiv 2406.02483), Sec. 3. The formula, pooled over the frames of the whole data set:
``S_k`` = sum of CAM values over the frames of type k, ``N_k`` their count, ``m_k = S_k / N_k``,
``m̄ = Σ_k S_k / Σ_k N_k`` and ``RCQ_k = 100 · (m_k − m̄) / m̄`` (percent). Speech-bearing types BS, SS, TR count
their **interior** frames ``frame(start)+1 … frame(end)-1``; non-speech types BN, SN **both ends**
``frame(start) … frame(end)``. Frames outside every segment are ignored; a frame two segments claim counts for both.

Two rules map times to frames (``rule=``):

``"reference"`` (default): what the authors' scoring code (wedefense ``XAI_Score_analysis.py``) computes, the rule
behind the paper's tables; ``tests/test_spoof.py`` checks it on random utterances and on each boundary case
against a restatement of that script's rules as plain loops (``tests/helpers/reference_scorers.py``):

1. ``frame(t) = clamp(floor((1000 t − 10) / 20), 0, len(cam) − 2)``, floored on the raw float (t = 2.01 s gives 99:
   1000 · 2.01 is 2009.999…);
2. a CAM longer than ``ceil(1000 · end / 20)`` frames, ``end`` being the end of the utterance's **last** segment,
   loses its surplus frames from the **front** before indexing (the clamp in 1 keeps the length before trimming);
3. a type with no frames has mean 0, so its RCQ is −100 %.

``"clean"``: one CAM value per frame taken literally: clamp to ``len(cam) − 1``, no trimming, milliseconds rounded
to the microsecond before flooring (t = 2.01 s gives 100), and NaN for a type with no frames.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from lib import validate

from .audio import FRAME_MS, FRAME_S

KINDS = ("BS", "SS", "TR", "BN", "SN")
INTERIOR = frozenset({"BS", "SS", "TR"})  # speech-bearing: boundary frames dropped
OFFSET_MS = FRAME_MS / 2   # 10 ms: the reference maps a time to frames from here
RULES = ("reference", "clean")


def _rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES} ('reference' = the authors' scoring code), not {rule!r}")
    return rule


def check_segments(segs, *, kinds, n_frames: int | None = None, ordered: bool = False, name: str = "segments") -> list:
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
        if n_frames is not None and np.floor((round(b * 1000.0, 6) - OFFSET_MS) / FRAME_MS) > n_frames:
            validate.warn_once("segments-past-end", f"{name}[{i}] = {s!r} reaches past the CAM's last frame by "
                               f"more than one frame: such times count as the last frame, as in the reference "
                               f"scoring code. Check that the segments belong to this utterance (warned once)")
        if ordered and a < prev_end:
            raise ValueError(f"{name}[{i}] = {s!r} starts before the previous segment ends ({prev_end:g} s): "
                             f"sort the segments by start and remove overlaps")
        prev_end = max(prev_end, b)
    return segs


def check_cam(c, name: str = "cam") -> np.ndarray:
    """One utterance's CAM as a 1-D float64 array of finite values (one per 20 ms frame), at least one value."""
    a = np.asarray(c.detach().cpu() if isinstance(c, torch.Tensor) else c, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError(f"{name} is an empty score vector: one value per 20 ms frame is needed")
    bad = int((~np.isfinite(a)).sum())
    if bad:
        raise ValueError(f"{name} holds {bad} NaN or inf value(s) of {a.size}: they would make every pooled score "
                         f"NaN; recompute the CAM (is the model or its input NaN?)")
    return a


def frame_of(t, n_frames: int, rule: str = "reference"):
    """Label frame of time ``t`` seconds (scalar or array) on a CAM of ``n_frames`` values.

    reference: clamp(floor((1000 t − 10) / 20), 0, N − 2) on the raw float; clean: the same on milliseconds rounded
    to 1e-6, clamped to N − 1."""
    if _rule(rule) == "reference":
        ms, last = np.asarray(t, dtype=np.float64) * 1000.0, n_frames - 2
    else:
        ms, last = np.round(np.asarray(t, dtype=np.float64) * 1000.0, 6), n_frames - 1
    f = np.floor_divide(ms - OFFSET_MS, FRAME_MS).astype(np.int64)   # Python's float //, as the reference
    return np.minimum(np.maximum(f, 0), last)


def front_trim(segments, n_frames: int, rule: str = "reference") -> int:
    """How many leading CAM frames the rule drops: reference: ``max(0, N − ceil(1000 · end_last / 20))``; clean: 0."""
    if _rule(rule) == "clean" or len(segments) == 0:
        return 0
    return max(n_frames - math.ceil(float(segments[-1][1]) * 1000 / FRAME_MS), 0)


def segment_frames(segments, n_frames: int, rule: str = "reference") -> dict[str, np.ndarray]:
    """Indices into the CAM (of length ``n_frames``) of each kind's frames for one utterance (may repeat across kinds).

    ``segments`` are checked by :func:`check_segments` (seconds, inside the utterance)."""
    segments = check_segments(segments, kinds=KINDS, n_frames=n_frames)
    if len(segments) == 0:
        return {k: np.zeros(0, np.int64) for k in KINDS}
    if rule == "reference" and n_frames < 2:
        raise ValueError(f"a CAM of {n_frames} frame(s): the reference rule clamps to len(cam) − 2 and needs at "
                         f"least 2 frames (an utterance of at least 0.045 s)")
    start, end, kind = zip(*segments)
    kind = np.asarray(kind)
    f0, f1 = frame_of(np.asarray(start, np.float64), n_frames, rule), frame_of(np.asarray(end, np.float64), n_frames, rule)
    interior = np.isin(kind, list(INTERIOR))
    lo = np.where(interior, f0 + 1, f0)              # BS/SS/TR: drop both boundary frames
    hi = np.where(interior, f1, f1 + 1)              # BN/SN: keep both (hi is exclusive)
    lens = np.maximum(hi - lo, 0)
    idx = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(lo, lens)
    off = front_trim(segments, n_frames, rule)
    if idx.size and idx.max() + off >= n_frames:
        raise ValueError(f"a segment reaches frame {int(idx.max())} of a CAM trimmed to {n_frames - off} frames "
                         f"(the reference keeps the last ceil(1000·end/20) frames, end = the end of the LAST "
                         f"segment): list the segments in time order, the latest-ending one last")
    owner = np.repeat(kind, lens)
    return {k: idx[owner == k] + off for k in KINDS}


def rcq_sums(scores, segments, rule: str = "reference") -> dict[str, dict[str, float]]:
    """Pooled ``S_k`` (sum of CAM values) and ``N_k`` (frame count) per kind over all utterances."""
    validate.same_length(scores, segments, "score vectors", "segment lists")
    S = dict.fromkeys(KINDS, 0.0)
    N = dict.fromkeys(KINDS, 0)
    for i, (cam, segs) in enumerate(zip(scores, segments)):
        cam = check_cam(cam, name=f"scores[{i}]")
        for k, idx in segment_frames(segs, cam.size, rule).items():
            S[k] += float(cam[idx].sum())
            N[k] += int(idx.size)
    return {"S": S, "N": N}


def rcq_from_sums(S: dict, N: dict, rule: str = "reference") -> dict[str, float]:
    """``RCQ_k = 100 (m_k − m̄) / m̄`` from pooled sums; a kind with no frames: −100 (reference) or NaN (clean)."""
    empty = -100.0 if _rule(rule) == "reference" else float("nan")
    m_bar = sum(S.values()) / max(sum(N.values()), 1)
    if m_bar <= 0:
        raise ValueError("all CAM values over the labelled frames are zero: RCQ is undefined (m̄ = 0)")
    return {k: (100.0 * (S[k] / N[k] - m_bar) / m_bar if N[k] else empty) for k in KINDS}


def rcq(scores, segments, rule: str = "reference") -> dict[str, float]:
    """RCQ in percent per kind (BS, SS, TR, BN, SN), pooled over the frames of all utterances.

    ``scores``: list of 1-D arrays (one CAM value per 20 ms frame per utterance);
    ``segments``: list (one per utterance) of ``(start_s, end_s, kind)`` in time order;
    ``rule``: "reference" (the authors' scoring code, default) or "clean" (see the module docstring).
    """
    sums = rcq_sums(scores, segments, rule)
    return rcq_from_sums(sums["S"], sums["N"], rule)


def rcq_counts(scores, segments, rule: str = "reference") -> dict[str, int]:
    """``N_k``: how many frames each kind contributed (print it beside every RCQ table)."""
    return rcq_sums(scores, segments, rule)["N"]


def rcq_per_utterance(scores, segments, rule: str = "reference") -> list[dict[str, float]]:
    """RCQ of each utterance on its own (for drill-down; the reference scores only pooled sets).

    Frames are mapped by ``rule``; a kind absent from an utterance is NaN here (not −100 %), and an utterance
    whose labelled frames are all zero gives NaN everywhere."""
    validate.same_length(scores, segments, "score vectors", "segment lists")
    out = []
    for cam, segs in zip(scores, segments):
        s = rcq_sums([cam], [segs], rule)
        try:
            out.append(rcq_from_sums(s["S"], s["N"], "clean"))
        except ValueError:
            out.append(dict.fromkeys(KINDS, float("nan")))
    return out
