"""The countermeasure's loop: train it (P2SGrad-MSE, Adam), score utterances, Grad-CAM every partial spoof, and
turn the CAMs into RCQ per segment type: one cell pair of the paper's Table 2 (:func:`run`)."""
from __future__ import annotations

import numpy as np
import torch

from lib import train
from lib.storage import checkpoint

from .audio import SR, pad_repeat
from .config import SpoofConfig
from .gradcam import gradcam
from .metrics import eer
from .rcq import rcq_from_sums, rcq_sums
from .ssl_res1d import p2sgrad_loss, tiny_cm


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
        x = torch.stack([w if w.numel() == L else pad_repeat(w, L) for w in waves])
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
    waves = [it["wave"] for it in items]
    L = max(w.numel() for w in waves)
    return (torch.stack([w if w.numel() == L else pad_repeat(w, L) for w in waves]).to(device),
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


def load_cm(cfg: SpoofConfig, res: dict, device="cpu"):
    """The trained CM of a result, in eval mode (a frozen front-end keeps its downloaded weights)."""
    m = cfg.model.factory()()
    checkpoint.load_state(m, res["state"], "the cached result")
    return m.to(device).eval()
