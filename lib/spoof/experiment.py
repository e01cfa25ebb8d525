"""Train a countermeasure on one data set, score partial spoofs, extract Grad-CAM and RCQ: the paper's Table 2 loop.

``run(...)`` is what the chapter calls; it is memoised on disk (``lib.cache.memo``), and training resumes from
its checkpoint (``lib.train.fit``) if interrupted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from lib import validate
from lib.scale import ScaleConfig

from .audio import pad_repeat
from .gradcam import gradcam
from .rcq import rcq_sums, rcq_from_sums
from .ssl_res1d import n_frames, p2sgrad_loss, tiny_cm


def eer(labels, scores, return_threshold: bool = False):
    """Equal error rate in percent from scikit-learn's ROC (``labels`` 1 = spoof, 0 = bona fide, as numbers;
    higher score = more spoof).

    The operating point is the ROC point where |miss − false alarm| is smallest, the lowest threshold among equal
    gaps: on untied scores this is the ASVspoof challenges' ``compute_eer`` (tested against it). Tied scores are one
    ROC point here (all of them on one side of the threshold); the ASVspoof scorer splits a tie in input order.
    With ``return_threshold``, also the score threshold at that operating point (score ≥ threshold → spoof).
    """
    from sklearn.metrics import roc_curve
    labels, scores = validate.trials(labels, scores)
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


def make_batches(items, batch_size: int, seed: int, max_len: int = 3 * 16000):
    """``batches(step)``: a balanced random batch (same per step), random ≤3 s crops, padded by repetition."""
    by_label = [[it for it in items if it["label"] == c] for c in (0, 1)]

    def batches(step):
        rng = np.random.default_rng([seed, step])
        chosen = [by[int(i)] for c, by in enumerate(by_label) for i in rng.integers(len(by), size=batch_size // 2)]
        waves = []
        for it in chosen:
            w = it["wave"]
            if w.numel() > max_len:
                o = int(rng.integers(w.numel() - max_len + 1))
                w = w[o:o + max_len]
            waves.append(w)
        L = max(w.numel() for w in waves)
        x = torch.stack([pad_repeat(w, L) for w in waves])
        return x, torch.tensor([it["label"] for it in chosen])

    return batches


def loss_fn(model, batch):
    x, y = batch
    s = model(x)
    return {"loss": p2sgrad_loss(s, y), "acc": (s.argmax(1) == y).float().mean().detach()}


def train_cm(items, *, seed=0, steps=200, batch_size=32, lr=1e-3, ckpt_path=None, model_fn=tiny_cm):
    """Train a countermeasure with P2SGrad-MSE and Adam; returns (model, history)."""
    from lib import train
    torch.manual_seed(seed)
    model = model_fn()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = train.fit(model, make_batches(items, batch_size, seed), loss_fn, opt, steps, ckpt_path=ckpt_path,
                     ckpt_every=100, log_every=10, progress=False)
    return model.eval(), hist


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _stack(items):
    L = max(it["wave"].numel() for it in items)
    return (torch.stack([pad_repeat(it["wave"], L) for it in items]),
            torch.tensor([it["wave"].numel() for it in items]))


@torch.no_grad()
def score(model, items, batch_size=32) -> np.ndarray:
    """Utterance scores (spoof cosine − bona fide cosine; higher = more spoof), padded batches masked."""
    model.eval()
    out = []
    for chunk in _chunks(items, batch_size):
        x, lengths = _stack(chunk)
        s = model(x, lengths)
        out.append((s[:, 1] - s[:, 0]).numpy())
    return np.concatenate(out)


def cams(model, items, target: int, batch_size=32) -> list[np.ndarray]:
    """Batched Grad-CAM on ``model.fc`` for every utterance, cropped to its own frames."""
    out = []
    for chunk in _chunks(items, batch_size):
        x, lengths = _stack(chunk)
        c = gradcam(model, model.fc, x, target, lengths=lengths)
        out += [c[i, : int(n)].numpy() for i, n in enumerate(n_frames(lengths))]
    return out


def run(sets, *, train_on: str, seed: int, steps: int, tag: str, ckpt_dir=None, eval_sets=None) -> dict:
    """Train on bona fide + ``train_on`` ("full" or "partial"), evaluate on the partial-spoof eval set
    (of ``eval_sets`` if given, else of ``sets``).

    Returns plain data (memo-able): history, EERs, per-utterance scores, CAMs for both targets, pooled RCQ and N_k.
    """
    ckpt = None if ckpt_dir is None else str(ckpt_dir / f"{tag}.pt")
    tr, ev = sets["train"], (eval_sets or sets)["eval"]
    model, hist = train_cm(tr["bona"] + tr[train_on], seed=seed, steps=steps, ckpt_path=ckpt)
    ps_items = ev["bona"] + ev["partial"]
    s_ps = score(model, ps_items)
    s_full = score(model, ev["full"])
    y_ps = np.array([it["label"] for it in ps_items])
    nb = len(ev["bona"])
    res = {"history": hist, "eer_ps": eer(y_ps, s_ps),
           "eer_full": eer(np.r_[np.zeros(nb), np.ones(len(s_full))], np.r_[s_ps[:nb], s_full]),
           "scores_ps": s_ps, "labels_ps": y_ps, "state": model.state_dict()}
    segs = [it["segments"] for it in ev["partial"]]
    for target, name in ((1, "spoof"), (0, "bona")):
        c = cams(model, ev["partial"], target)
        sums = rcq_sums(c, segs)
        res[f"cam_{name}"] = c
        res[f"rcq_{name}"] = rcq_from_sums(sums["S"], sums["N"])
        res["N"] = sums["N"]
    return res


# ---- the chapter's experiment, per scale (cached) -------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SpoofConfig(ScaleConfig):
    """Chapter 2's settings at one scale. Only ``tiny`` is built: the real PartialSpoof/ASVspoof path is issue 12."""

    n_utts: int                    # bona fide utterances of the corpus
    data_seed: int
    gain_db: float                 # level jump of a spliced donor (up to ±)
    shift_s: float                 # donor offset (25-50 ms: shift_s/2 to shift_s)
    tr_width: float                # width of a transition span (s)
    xfade_s: float                 # cross-fade of the "xfade" and "clean" splices
    steps: int                     # training steps of each countermeasure
    seeds: tuple[int, ...]
    langs: tuple[str, ...] | None  # None: every language of lib.spoof.data.LANGS

    ISSUE: ClassVar[int] = 12
    REHEARSAL: ClassVar[dict] = {}


CONFIGS: dict[str, SpoofConfig] = {
    "tiny": SpoofConfig(scale="tiny", n_utts=360, data_seed=0, gain_db=6.0, shift_s=0.05, tr_width=0.06, xfade_s=0.01,
                        steps=300, seeds=(0, 1, 2), langs=None),
}
TINY = CONFIGS["tiny"]
VERSION = "2"          # of the countermeasure runs
BASE_VERSION = "1"     # of the corpus (bona fide + vocoded copies + VAD)


def tiny_base(cfg: SpoofConfig = TINY):
    """Bona fide + vocoded utterances with VAD regions (memoised: ~1-2 min on 2 busy cores the first time)."""
    from lib import cache
    from .data import build_base
    from .data import LANGS
    langs = cfg.langs or LANGS
    key = f"spoof-base-n{cfg.n_utts}-s{cfg.data_seed}" + ("" if langs == LANGS else "-" + "-".join(langs))
    return cache.memo(key, lambda: build_base(cfg.data_seed, n_utts=cfg.n_utts, langs=langs), version=BASE_VERSION)


# splice conditions, from the most audible joins to the cleanest
SPLICES = {"hard": "hard cut, donor 25-50 ms off, ±6 dB", "xfade": "10 ms cross-fade, donor 25-50 ms off, ±6 dB",
           "clean": "10 ms cross-fade, donor aligned, 0 dB"}


def tiny_sets(splice: str = "hard", cfg: SpoofConfig = TINY):
    """Bona fide / fully spoofed / partially spoofed sets for one splice condition (built in under a second)."""
    from .data import build_sets
    if splice not in SPLICES:
        raise ValueError(f"splice condition must be one of {list(SPLICES)}, not {splice!r}")
    clean = splice == "clean"
    return build_sets(tiny_base(cfg), cfg.data_seed, "hard" if splice == "hard" else "xfade",
                      gain_db=0.0 if clean else cfg.gain_db, shift_s=0.0 if clean else cfg.shift_s,
                      tr_width=cfg.tr_width, xfade_s=cfg.xfade_s)


def tiny_run(train_on: str, splice: str, seed: int, cfg: SpoofConfig = TINY) -> dict:
    """One CM (trained on ``train_on`` of the ``splice`` condition, ``seed``) evaluated on that condition (memoised).

    The fully-spoof-trained CM does not depend on the splice condition: its checkpoint is shared.
    """
    from lib import cache
    t = cfg
    key = (f"spoof-run-{train_on}-{splice}-s{seed}-n{t.n_utts}-g{t.gain_db}-sh{t.shift_s}-tr{t.tr_width}"
           f"-x{t.xfade_s}-st{t.steps}" + ("-" + "-".join(t.langs) if t.langs else ""))
    tag = (f"{train_on}-s{seed}" if train_on == "full"  # the data of the partial-spoof CMs are in their tag
           else f"{train_on}-{splice}-s{seed}-g{t.gain_db}-sh{t.shift_s}-x{t.xfade_s}")
    tag += f"-n{t.n_utts}-st{t.steps}" + ("-" + "-".join(t.langs) if t.langs else "")

    def compute():
        sets = tiny_sets(splice, cfg)
        return run(sets, train_on=train_on, seed=seed, steps=t.steps, tag=tag + f"-v{VERSION}",
                   ckpt_dir=cache.cache_dir("spoof", "ckpt"))

    res = cache.memo(key, compute, version=VERSION)
    res["eer_ps"] = eer(res["labels_ps"], res["scores_ps"])  # recomputed from the stored scores (cheap)
    segs = [it["segments"] for it in tiny_sets(splice, cfg)["eval"]["partial"]]
    for name in ("spoof", "bona"):                           # and RCQ from the stored CAMs, by the current rule
        sums = rcq_sums(res[f"cam_{name}"], segs)
        res[f"rcq_{name}"], res["N"] = rcq_from_sums(sums["S"], sums["N"]), sums["N"]
    return res


def tiny_all(cfg: SpoofConfig = TINY, progress=True) -> dict:
    """Every CM of the chapter: {(train_on, splice, seed): result} for full/partial × splice conditions × seeds."""
    from tqdm.auto import tqdm
    jobs = [(tr, sp, s) for s in cfg.seeds for sp in SPLICES for tr in ("full", "partial")]
    return {j: tiny_run(*j, cfg) for j in tqdm(jobs, disable=not progress, desc="countermeasures")}
