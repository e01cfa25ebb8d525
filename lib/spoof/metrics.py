"""Equal error rate of a countermeasure's scores (scikit-learn's ROC), with the trial checks it needs."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve


def check_trials(labels, scores) -> tuple[np.ndarray, np.ndarray]:
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


def eer(labels, scores, return_threshold: bool = False):
    """Equal error rate in percent from scikit-learn's ROC (``labels`` 1 = spoof, 0 = bona fide, as numbers;
    higher score = more spoof).

    The operating point is the ROC point where |miss − false alarm| is smallest, the lowest threshold among equal
    gaps: on untied scores this is the ASVspoof challenges' ``compute_eer`` (tested against a restatement). Tied scores are one
    ROC point here (all of them on one side of the threshold); the ASVspoof scorer splits a tie in input order.
    With ``return_threshold``, also the score threshold at that operating point (score ≥ threshold → spoof).
    """
    labels, scores = check_trials(labels, scores)
    if labels.min() == labels.max():
        raise ValueError("EER needs both bona fide (0) and spoof (1) trials")
    fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)  # keep every threshold (decreasing)
    n1 = int(labels.sum())
    n0 = labels.size - n1
    fnr = (n1 - np.rint(tpr * n1)) / n1      # miss and false-alarm rates from counts, in the ASVspoof
    fpr = np.rint(fpr * n0) / n0             # scorer's arithmetic, so equal gaps compare as it compares them
    gap = np.abs(fnr - fpr)
    i = int(np.flatnonzero(gap == gap.min())[-1])                      # its argmin: the lowest threshold
    e = float(100 * (fnr[i] + fpr[i]) / 2)
    return (e, float(thr[i])) if return_threshold else e
