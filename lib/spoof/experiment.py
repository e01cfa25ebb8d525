"""Train a countermeasure on one data set, score partial spoofs, extract Grad-CAM and RCQ: the paper's Table 2 loop.

``SpoofConfig`` holds the settings per scale (``CONFIGS``): ``tiny`` on the offline corpus of ``data.py``, ``colab``
on subsets of PartialSpoof and ASVspoof 2019 LA with the SSL-Res1D. The chapter calls ``sets`` and
``chapter_run``; every run is memoised on disk (``lib.storage.cache.memo``), and training resumes from its checkpoint
(``lib.train.fit``) if interrupted.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from sklearn.metrics import roc_curve
from tqdm.auto import tqdm

from lib import train
from lib.scale import ScaleConfig
from lib.storage import cache, checkpoint, download
from lib.storage.checkpoint import atomic_path

from . import partialspoof as P
from .audio import SR, pad_repeat
from .data import LANGS, build_base, build_sets
from .gradcam import gradcam
from .rcq import rcq_from_sums, rcq_sums
from .config import BASE_VERSION, CONFIGS, TINY, VERSION, SpoofConfig
from .ssl_res1d import build_ssl_res1d, p2sgrad_loss, tiny_cm


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


def make_batches(items, batch_size: int, seed: int, max_len: int = 3 * SR, device="cpu"):
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
        return x.to(device), torch.tensor([it["label"] for it in chosen], device=device)

    return batches


def loss_fn(model, batch):
    x, y = batch
    s = model(x)
    return {"loss": p2sgrad_loss(s, y), "acc": (s.argmax(1) == y).float().mean().detach()}


def train_cm(items, *, seed=0, steps=200, batch_size=32, lr=1e-3, ckpt_path=None, model_fn=tiny_cm,
             crop_s: float = 3.0, device="cpu", progress=False):
    """Train a countermeasure with P2SGrad-MSE and Adam (the parameters that require gradients); returns
    (model, history)."""
    torch.manual_seed(seed)
    model = model_fn().to(device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    hist = train.fit(model, make_batches(items, batch_size, seed, int(crop_s * SR), device), loss_fn, opt, steps,
                     ckpt_path=ckpt_path, ckpt_every=100, log_every=10, progress=progress)
    return model.eval(), hist


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _stack(items, device="cpu"):
    L = max(it["wave"].numel() for it in items)
    return (torch.stack([pad_repeat(it["wave"], L) for it in items]).to(device),
            torch.tensor([it["wave"].numel() for it in items], device=device))


def _device(model):
    return next(model.parameters()).device


@torch.no_grad()
def score(model, items, batch_size=32) -> np.ndarray:
    """Utterance scores (spoof cosine − bona fide cosine; higher = more spoof), padded batches masked."""
    model.eval()
    out = []
    for chunk in _chunks(items, batch_size):
        x, lengths = _stack(chunk, _device(model))
        s = model(x, lengths)
        out.append((s[:, 1] - s[:, 0]).cpu().numpy())
    return np.concatenate(out)


def cams(model, items, target: int, batch_size=32) -> list[np.ndarray]:
    """Batched Grad-CAM on ``model.fc`` for every utterance, cropped to its own frames."""
    out = []
    for chunk in _chunks(items, batch_size):
        x, lengths = _stack(chunk, _device(model))
        c = gradcam(model, model.fc, x, target, lengths=lengths).cpu()
        out += [c[i, : int(n)].numpy() for i, n in enumerate(model.n_frames(lengths.cpu()))]
    return out


def run(sets, *, train_on: str, seed: int, steps: int, ckpt_path=None, eval_sets=None, model_fn=tiny_cm,
        batch_size: int = 32, lr: float = 1e-3, crop_s: float = 3.0, eval_batch: int = 32, device="cpu",
        progress=False) -> dict:
    """Train on bona fide + ``train_on`` ("full" or "partial"), evaluate on the partial-spoof eval set
    (of ``eval_sets`` if given, else of ``sets``).

    Returns plain data (memo-able): history, EERs, per-utterance scores, CAMs for both targets, pooled RCQ and N_k,
    and the trained weights (without a frozen front-end's: see ``SSLFrontend``).
    """
    ckpt = None if ckpt_path is None else str(ckpt_path)
    tr, ev = sets["train"], (eval_sets or sets)["eval"]
    model, hist = train_cm(tr["bona"] + tr[train_on], seed=seed, steps=steps, ckpt_path=ckpt, model_fn=model_fn,
                           batch_size=batch_size, lr=lr, crop_s=crop_s, device=device, progress=progress)
    ps_items = ev["bona"] + ev["partial"]
    s_ps = score(model, ps_items, eval_batch)
    s_full = score(model, ev["full"], eval_batch)
    y_ps = np.array([it["label"] for it in ps_items])
    nb = len(ev["bona"])
    res = {"history": hist, "eer_ps": eer(y_ps, s_ps),
           "eer_full": eer(np.r_[np.zeros(nb), np.ones(len(s_full))], np.r_[s_ps[:nb], s_full]),
           "scores_ps": s_ps, "labels_ps": y_ps,
           "state": {k: v.cpu() for k, v in model.state_dict().items()}}
    segs = [it["segments"] for it in ev["partial"]]
    for target, name in ((1, "spoof"), (0, "bona")):
        c = cams(model, ev["partial"], target, eval_batch)
        sums = rcq_sums(c, segs)
        res[f"cam_{name}"] = c
        res[f"rcq_{name}"] = rcq_from_sums(sums["S"], sums["N"])
        res["N"] = sums["N"]
    return res


# ---- the chapter's experiment, per scale (cached) -------------------------------------------------------------------
def tiny_base(cfg: SpoofConfig = TINY):
    """Bona fide + vocoded utterances with VAD regions (memoised: ~1-2 min on 2 busy cores the first time)."""
    langs = cfg.langs or LANGS
    key = cache.key("spoof-base", n_utts=cfg.n_utts, data_seed=cfg.data_seed, langs="+".join(langs))
    return cache.memo(key, lambda: build_base(cfg.data_seed, n_utts=cfg.n_utts, langs=langs), version=BASE_VERSION)


# splice conditions, from the most audible joins to the cleanest
SPLICES = {"hard": "hard cut, donor 25-50 ms off, ±6 dB", "xfade": "10 ms cross-fade, donor 25-50 ms off, ±6 dB",
           "clean": "10 ms cross-fade, donor aligned, 0 dB"}


def tiny_sets(splice: str = "hard", cfg: SpoofConfig = TINY):
    """Bona fide / fully spoofed / partially spoofed sets for one splice condition (built in under a second)."""
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
    # the training's key names what the CM learns from (a partial-spoof CM: its splice condition's data too) ...
    data = {} if train_on == "full" else dict(splice=splice, gain_db=cfg.gain_db, shift_s=cfg.shift_s,
                                              xfade_s=cfg.xfade_s)
    cm = cache.key("spoof-cm", train_on=train_on, seed=seed, **data, n_utts=cfg.n_utts, data_seed=cfg.data_seed,
                   steps=cfg.steps, langs="+".join(cfg.langs or ()))
    # ... and the result's key adds what it is evaluated on
    key = cache.key("spoof-run", cm=cm, splice=splice, gain_db=cfg.gain_db, shift_s=cfg.shift_s,
                    xfade_s=cfg.xfade_s, tr_width=cfg.tr_width)

    def compute():
        sets = tiny_sets(splice, cfg)
        return run(sets, train_on=train_on, seed=seed, steps=cfg.steps, ckpt_path=cache.work_path(cm, VERSION))

    res = cache.memo(key, compute, version=VERSION)
    res["eer_ps"] = eer(res["labels_ps"], res["scores_ps"])  # recomputed from the stored scores (cheap)
    segs = [it["segments"] for it in tiny_sets(splice, cfg)["eval"]["partial"]]
    for name in ("spoof", "bona"):                           # and RCQ from the stored CAMs, by the current rule
        sums = rcq_sums(res[f"cam_{name}"], segs)
        res[f"rcq_{name}"], res["N"] = rcq_from_sums(sums["S"], sums["N"]), sums["N"]
    return res


def tiny_all(cfg: SpoofConfig = TINY, progress=True) -> dict:
    """Every CM of the chapter: {(train_on, splice, seed): result} for full/partial × splice conditions × seeds."""
    jobs = [(tr, sp, s) for s in cfg.seeds for sp in SPLICES for tr in ("full", "partial")]
    return {j: tiny_run(*j, cfg) for j in tqdm(jobs, disable=not progress, desc="countermeasures")}


# ---- colab: PartialSpoof + ASVspoof 2019 LA subsets, SSL-Res1D on XLSR-53 -------------------------------------------
def _subset_key(cfg: SpoofConfig) -> str:
    n = lambda d: "+".join(str(d[k]) for k in ("bona", "partial", "full"))
    return cache.key("ps", split=cfg.eval_split, train=n(cfg.n_train), eval=n(cfg.n_eval), seed=cfg.data_seed)


def _fetched(url, reader):
    return download.fetch(url, reader=reader, filename=url.split("/")[-1].split("?")[0])


def _done(cfg: SpoofConfig, path) -> None:
    if not cfg.keep_archives:
        path.unlink(missing_ok=True)


def real_subset(cfg: SpoofConfig) -> tuple:
    """Download (once) and extract the utterances ``cfg`` names and their labels: returns (folder, manifest).

    The manifest ``{split: {"bona"|"partial"|"full": [utterances]}}`` is written last, atomically: a run that stops
    earlier extracts again. Archives go through ``lib.storage.download.fetch`` (first-use sha256) into the download folder
    (:func:`lib.storage.cache.downloads_dir`: the runtime's disk, not Drive, with ``USE_DRIVE``), the chosen files into the
    course cache; with ``keep_archives=False`` each archive is deleted once its files are out.
    """
    root = cache.cache_dir("spoof", "data", _subset_key(cfg))
    manifest_path = root / "subset.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        _labels(cfg, root, manifest[cfg.eval_split]["partial"])
        return root, manifest
    splits = ("train", cfg.eval_split)
    # protocols: PartialSpoof's, then LA's (the LA zip also holds the fully spoofed audio)
    arch = _fetched(P.PS_URLS["protocols"], "tar")
    P.extract(arch, {f"/PartialSpoof.LA.cm.{s}.trl.txt": P.ps_protocol_path(root, s) for s in splits})
    _done(cfg, arch)
    la = _fetched(P.LA_URL, "zip")
    P.extract(la, {"/" + P.la_protocol_name(s): root / "protocols" / P.la_protocol_name(s) for s in splits})
    manifest = {}
    for split, n in (("train", cfg.n_train), (cfg.eval_split, cfg.n_eval)):
        ps = P.read_protocol(P.ps_protocol_path(root, split))
        la_prot = P.read_protocol(root / "protocols" / P.la_protocol_name(split))
        manifest[split] = {
            "bona": P.choose([u for u, y in ps if y == 0], n["bona"], cfg.data_seed),
            "partial": P.choose([u for u, y in ps if y == 1 and u.startswith("CON_")], n["partial"], cfg.data_seed),
            "full": P.choose([u for u, y in la_prot if y == 1], n["full"], cfg.data_seed)}
    P.extract(la, {f"/{u}.flac": root / s / "audio" / f"{u}.flac" for s, m in manifest.items() for u in m["full"]})
    _done(cfg, la)
    for split, m in manifest.items():
        arch = _fetched(P.PS_URLS[split], "tar")
        P.extract(arch, {f"/{u}.wav": root / split / "audio" / f"{u}.wav" for u in m["bona"] + m["partial"]})
        _done(cfg, arch)
    _labels(cfg, root, manifest[cfg.eval_split]["partial"])
    with atomic_path(manifest_path) as tmp:
        Path(tmp).write_text(json.dumps(manifest))
    return root, manifest


def _labels(cfg: SpoofConfig, root: Path, utts) -> None:
    """The label files of the evaluation's partial spoofs ``utts``. ``labels="public"``: each one's ``.vad`` file
    from ``database_vad.tar.gz`` and its 10 ms segment labels from the segment-label archive (one small ``.npy``
    each), fetched only if some are missing; ``"authors"``: checks every ``authors_vad/{split}/{utt}.vad`` is there."""
    split = cfg.eval_split
    if cfg.labels == "authors":
        missing = [u for u in utts if not (Path(cfg.authors_vad) / split / f"{u}.vad").is_file()]
        if missing:
            raise FileNotFoundError(f"labels='authors': {len(missing)} of {len(utts)} label files missing, the first "
                                    f"{Path(cfg.authors_vad) / split / (missing[0] + '.vad')}. Put the authors' "
                                    f"five-code .vad files under authors_vad/{split}/, or use labels='public'")
        return
    vad = {f"/{u}.vad": root / split / "vad" / f"{u}.vad" for u in utts}
    vad = {k: v for k, v in vad.items() if not v.exists()}
    if vad:
        arch = _fetched(P.PS_VAD_URL, "tar")
        P.extract(arch, vad)
        _done(cfg, arch)
    missing = [u for u in utts if not (root / split / "seglab" / f"{u}.npy").exists()]
    if missing:
        arch = _fetched(P.PS_SEGLAB_URL, "tar")
        name = f"{split}_seglab_{P.SEGLAB_RES:g}.npy"
        big = root / split / name
        P.extract(arch, {"/" + name: big})
        _done(cfg, arch)
        table = P.read_seglab(big)
        absent = [u for u in missing if u not in table]
        if absent:
            raise ValueError(f"{name} has no segment labels for {len(absent)} drawn utterance(s), the first "
                             f"{absent[0]!r}: the label archive does not match the audio; delete both and download "
                             f"again")
        for u in missing:
            with atomic_path(root / split / "seglab" / f"{u}.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, table[u], allow_pickle=False)
        big.unlink()


def real_sets(cfg: SpoofConfig) -> dict:
    """{"train"|"eval": {"bona", "partial", "full": items}} of the real subset (eval = ``cfg.eval_split``),
    every protocol line checked against its file; the evaluation's partial spoofs carry their five-type segments
    (``cfg.labels``: derived from the public labels, or the authors' files; TR spans ``cfg.tr_width`` wide)."""
    root, manifest = real_subset(cfg)
    out = {}
    for name, split in (("train", "train"), ("eval", cfg.eval_split)):
        m = manifest[split]
        P.read_protocol(P.ps_protocol_path(root, split))   # readable
        out[name] = {
            "bona": P.items(root, split, m["bona"], [0] * len(m["bona"]), vad=False),
            "partial": P.items(root, split, m["partial"], [1] * len(m["partial"]), vad=name == "eval",
                               tr_width=cfg.tr_width or 0.0, label_format=cfg.labels, authors_vad=cfg.authors_vad),
            "full": P.items(root, split, m["full"], [1] * len(m["full"]), vad=False, ext=".flac")}
    return out


def model_fn(cfg: SpoofConfig):
    """The countermeasure of ``cfg``: built corpus → ``tiny_cm``; real data → SSL-Res1D on pretrained XLSR-53."""
    if cfg.data == "built":
        return tiny_cm
    return lambda: build_ssl_res1d(pretrained=True, frozen=cfg.frozen_ssl)


def sets(cfg: SpoofConfig, splice: str):
    """The chapter's data sets of ``cfg`` for one splice condition (real data: its only one, "real")."""
    return tiny_sets(splice, cfg) if cfg.data == "built" else real_sets(cfg)


def chapter_run(train_on: str, splice: str, seed: int, cfg: SpoofConfig, device="cpu") -> dict:
    """One CM of the chapter (memoised): ``tiny_run`` on the built corpus, ``real_run`` on real data."""
    return tiny_run(train_on, splice, seed, cfg) if cfg.data == "built" else real_run(train_on, seed, cfg, device)


def real_run(train_on: str, seed: int, cfg: SpoofConfig, device="cpu") -> dict:
    """A CM trained on bona fide + ``train_on`` of the real subset: "partial" = PartialSpoof, "full" = ASVspoof
    2019 LA; evaluated on the PartialSpoof ``eval_split`` subset (memoised; training resumes from its checkpoint)."""
    key = cache.key("spoof-real", train_on=train_on, seed=seed, data=_subset_key(cfg), steps=cfg.steps,
                    batch_size=cfg.batch_size, lr=cfg.lr, crop_s=cfg.crop_s, tr_width=cfg.tr_width,
                    frozen_ssl=cfg.frozen_ssl, labels=cfg.labels)

    def compute():
        return run(real_sets(cfg), train_on=train_on, seed=seed, steps=cfg.steps,
                   ckpt_path=cache.work_path(key, VERSION), model_fn=model_fn(cfg), batch_size=cfg.batch_size,
                   lr=cfg.lr, crop_s=cfg.crop_s, eval_batch=cfg.eval_batch, device=device, progress=True)

    return cache.memo(key, compute, version=VERSION)


def load_cm(cfg: SpoofConfig, res: dict, device="cpu"):
    """The trained CM of a result, in eval mode (a frozen front-end keeps its downloaded weights)."""
    m = model_fn(cfg)()
    checkpoint.load_state(m, res["state"], "the cached result")
    return m.to(device).eval()
