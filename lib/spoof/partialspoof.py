"""Readers for the PartialSpoof database (Zhang et al., TASLP 2023; Zenodo record 5766198) at ``colab``/``paper`` scale.

The reference scoring code of Liu et al. (Interspeech 2024) reads one ``.vad`` file per utterance, lines
``start_s end_s code``: 1 = BS, 2-20 = SS (attacks A01-A19), 100 = TR, 101 = BN, 102-120 = SN. Protocols
``PartialSpoof.LA.cm.{split}.trl.txt``: column 2 = utterance, column 5 = bonafide/spoof. Only ``CON_*`` utterances
(partially spoofed) are scored for RCQ. The database (several GB) is not downloaded by this course yet: put it under
a folder and point these readers at it.
"""
from __future__ import annotations

from pathlib import Path


KIND_CODE = {"BS": 1, "SS": 2, "TR": 100, "BN": 101, "SN": 102}   # one code per kind (SS/SN: attack A01)


def kind_of_code(code: int) -> str:
    """PartialSpoof/wedefense label code → segment kind."""
    code = int(code)
    if code == 1:
        return "BS"
    if 2 <= code <= 20:
        return "SS"
    if code == 100:
        return "TR"
    if code == 101:
        return "BN"
    if 102 <= code <= 120:
        return "SN"
    raise ValueError(f"unknown PartialSpoof segment code {code}: expected 1, 2-20, 100, 101 or 102-120")


def read_vad(path) -> list[tuple[float, float, str]]:
    """One utterance's ``.vad`` label file → [(start_s, end_s, kind)]."""
    segs = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) < 3:
            raise ValueError(f"{path}:{n}: expected 'start end code', got {line!r}")
        segs.append((float(parts[0]), float(parts[1]), kind_of_code(int(float(parts[2])))))
    return segs


def read_protocol(path) -> list[tuple[str, int]]:
    """``PartialSpoof.LA.cm.{split}.trl.txt`` → [(utterance, label)] with label 1 = spoof, 0 = bona fide."""
    out = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5:
            out.append((parts[1], 1 if parts[4] == "spoof" else 0))
    return out


def segment_labels(segments, duration_s: float, resolution: float = 0.02):
    """PartialSpoof-style segment labels: one per ``resolution`` seconds, 1 = bona fide, 0 = spoof.

    Segment k covers [k·res, (k+1)·res); it is 0 if any spoofed or transition span overlaps it (the database's
    coarser resolutions are the min over windows, the same rule).
    """
    import numpy as np
    n = int(np.ceil(round(duration_s / resolution, 6)))
    lab = np.ones(n, dtype=np.int64)
    for a, b, k in segments:
        if k in ("SS", "SN", "TR") and b > a:
            lo = int(np.floor(round(a / resolution, 6)))
            hi = int(np.ceil(round(b / resolution, 6)))
            lab[lo:hi] = 0
    return lab
