"""The two scorers the chapter's numbers are compared with, restated as plain loops from their documented behaviour
(``../shared/course/colab.md``; wedefense ``bin/XAI_Score_analysis.py`` and ``metrics/detection/calculate_modules.py``
at commit e7287fe, the latter "original from the ASVspoof5 Evaluation Package"). Neither is copied: each is written
out from what the script computes, one utterance, one label line and one threshold at a time, so that the tests
compare ``lib.spoof``'s vectorised code with an independent statement of the same rules."""

from __future__ import annotations

import math

CODES = {"BS": (1, 1), "SS": (2, 20), "TR": (100, 100), "BN": (101, 101), "SN": (102, 120)}
INTERIOR = ("BS", "SS", "TR")


def _frame(t: float, last: int) -> int:
    # floor((1000 t − 10) / 20) taken on the raw float (Python's //), then clamped to 0 … last
    return min(max(int((t * 1000 - 10) // 20), 0), last)


def rcq_reference(cams, label_lists) -> dict[str, float]:
    """RCQ (percent) per type as XAI_Score_analysis.py computes it. ``label_lists``: per utterance, the lines of its
    ``.vad`` file as ``(start_s, end_s, code)`` in file order."""
    total = {k: 0.0 for k in CODES}
    count = {k: 0 for k in CODES}
    for cam, lines in zip(cams, label_lists):
        data = [float(v) for v in cam]
        last = len(data) - 2                            # the clamp's bound, taken before any trimming
        keep = math.ceil(float(lines[-1][1]) * 1000 / 20)
        if len(data) > keep:                            # surplus frames go from the front
            data = data[len(data) - keep:]
        for start, end, code in lines:
            kind = next(k for k, (lo, hi) in CODES.items() if lo <= int(code) <= hi)
            s, e = _frame(float(start), last), _frame(float(end), last)
            frames = range(s + 1, e) if kind in INTERIOR else range(s, e + 1)
            for i in frames:
                total[kind] += data[i]
                count[kind] += 1
    mean = {k: (total[k] / count[k] if count[k] else 0.0) for k in CODES}   # an empty type's mean is 0
    overall = sum(total.values()) / sum(count.values())
    return {k: (mean[k] - overall) / overall * 100 for k in CODES}


def eer_reference(target_scores, nontarget_scores) -> float:
    """EER (a fraction) as the ASVspoof scorer's compute_eer: all scores in ascending order, ties kept in input order
    (targets listed before non-targets); at each cut k (0 … N) FRR = targets among the k lowest / #targets,
    FAR = non-targets above the cut / #non-targets; the first cut that minimises |FRR − FAR| gives (FRR + FAR) / 2."""
    trials = sorted([(float(s), 1) for s in target_scores] + [(float(s), 0) for s in nontarget_scores],
                    key=lambda t: t[0])             # sorted() is stable
    n_t, n_n = len(target_scores), len(nontarget_scores)
    best = None
    for k in range(len(trials) + 1):
        below = trials[:k]
        frr = sum(lab for _, lab in below) / n_t
        far = (n_n - sum(1 - lab for _, lab in below)) / n_n
        if best is None or abs(frr - far) < best[0]:
            best = (abs(frr - far), (frr + far) / 2)
    return best[1]
