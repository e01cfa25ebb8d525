"""RCQ: relative contribution quantification of Grad-CAM scores per segment type.

Liu, Zhang, Das, Ma, Tao, Li, "How Do Neural Spoofing Countermeasures Detect Partially Spoofed Audio?",
Interspeech 2024 (arXiv 2406.02483), Sec. 3, computed exactly as the authors' scoring code
(wedefense ``XAI_Score_analysis.py``) does:

* one CAM value per 20 ms frame; a time ``t`` (seconds) maps to ``frame(t) = clamp(floor((1000 t - 10) / 20), 0, N-1)``;
* speech-bearing types BS, SS, TR count their **interior** frames ``frame(start)+1 … frame(end)-1``;
  non-speech types BN, SN count **both ends** ``frame(start) … frame(end)``;
* pooled over the whole data set: ``S_k`` = sum of CAM values over the frames of type k, ``N_k`` their count,
  ``m_k = S_k / N_k``, ``m̄ = Σ_k S_k / Σ_k N_k`` and ``RCQ_k = 100 · (m_k − m̄) / m̄`` (percent).

Frames outside every segment are ignored; a frame that two segments claim counts for both (as in the reference).
"""
from __future__ import annotations

import numpy as np

from lib import validate

KINDS = ("BS", "SS", "TR", "BN", "SN")
INTERIOR = frozenset({"BS", "SS", "TR"})  # speech-bearing: boundary frames dropped
FRAME_MS, OFFSET_MS = 20.0, 10.0


def frame_of(t, n_frames: int):
    """Label frame of time ``t`` seconds (scalar or array): clamp(floor((1000 t − 10) / 20), 0, N−1)."""
    ms = np.round(np.asarray(t, dtype=np.float64) * 1000.0, 6)  # round away float noise such as 0.07*1000
    return np.clip(np.floor((ms - OFFSET_MS) / FRAME_MS).astype(np.int64), 0, n_frames - 1)


def segment_frames(segments, n_frames: int) -> dict[str, np.ndarray]:
    """Frame indices of each kind for one utterance (vectorised over its segments; may repeat across kinds).

    ``segments`` are checked by :func:`lib.validate.segments` (seconds, inside the utterance)."""
    segments = validate.segments(segments, kinds=KINDS, n_frames=n_frames)
    if len(segments) == 0:
        return {k: np.zeros(0, np.int64) for k in KINDS}
    start, end, kind = zip(*segments)
    kind = np.asarray(kind)
    start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
    f0, f1 = frame_of(start, n_frames), frame_of(end, n_frames)
    interior = np.isin(kind, list(INTERIOR))
    lo = np.where(interior, f0 + 1, f0)              # BS/SS/TR: drop both boundary frames
    hi = np.where(interior, f1, f1 + 1)              # BN/SN: keep both (hi is exclusive)
    lens = np.maximum(hi - lo, 0)
    idx = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(lo, lens)
    owner = np.repeat(kind, lens)
    return {k: idx[owner == k] for k in KINDS}


def rcq_sums(scores, segments) -> dict[str, dict[str, float]]:
    """Pooled ``S_k`` (sum of CAM values) and ``N_k`` (frame count) per kind over all utterances."""
    validate.same_length(scores, segments, "score vectors", "segment lists")
    S = dict.fromkeys(KINDS, 0.0)
    N = dict.fromkeys(KINDS, 0)
    for i, (cam, segs) in enumerate(zip(scores, segments)):
        cam = validate.cam(cam, name=f"scores[{i}]")
        for k, idx in segment_frames(segs, cam.size).items():
            S[k] += float(cam[idx].sum())
            N[k] += int(idx.size)
    return {"S": S, "N": N}


def rcq_from_sums(S: dict, N: dict) -> dict[str, float]:
    """``RCQ_k = 100 (m_k − m̄) / m̄`` from pooled sums; NaN for a kind with no frames."""
    m_bar = sum(S.values()) / max(sum(N.values()), 1)
    if m_bar <= 0:
        raise ValueError("all CAM values over the labelled frames are zero: RCQ is undefined (m̄ = 0)")
    return {k: (100.0 * (S[k] / N[k] - m_bar) / m_bar if N[k] else float("nan")) for k in KINDS}


def rcq(scores, segments) -> dict[str, float]:
    """RCQ in percent per kind (BS, SS, TR, BN, SN), pooled over the frames of all utterances.

    ``scores``: list of 1-D arrays (one CAM value per 20 ms frame per utterance);
    ``segments``: list (one per utterance) of ``(start_s, end_s, kind)``.
    """
    sums = rcq_sums(scores, segments)
    return rcq_from_sums(sums["S"], sums["N"])


def rcq_counts(scores, segments) -> dict[str, int]:
    """``N_k``: how many frames each kind contributed (print it beside every RCQ table)."""
    return rcq_sums(scores, segments)["N"]


def rcq_per_utterance(scores, segments) -> list[dict[str, float]]:
    """RCQ of each utterance on its own (for drill-down); NaN where undefined."""
    validate.same_length(scores, segments, "score vectors", "segment lists")
    out = []
    for cam, segs in zip(scores, segments):
        s = rcq_sums([cam], [segs])
        try:
            out.append(rcq_from_sums(s["S"], s["N"]))
        except ValueError:
            out.append(dict.fromkeys(KINDS, float("nan")))
    return out
