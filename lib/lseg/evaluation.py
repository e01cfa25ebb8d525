"""The chapter's experiments on a trained LSeg: protocols, controls, label removal, "other", coarse labels, and
the official demo model's label removal on a photo (colab).

Pixel embeddings I are computed once per model and image set; any label set then costs one matrix product, the
spatial block and the upsampling (this is what makes LSeg's label set a free choice at test time).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as nnF
from PIL import Image

from lib.lseg.data import BACKGROUND, COLOURS, IGNORE, to_tensor_images
from lib.lseg.metrics import ConfusionMatrix, EpisodeIoU
from lib.lseg.model import LSeg
from lib.lseg.training import remap
from lib.storage import cache


@torch.no_grad()
def pixel_embeddings(model: LSeg, images, batch_size: int = 50) -> torch.Tensor:
    """I for uint8 images (N, H, W, 3): (N, C, H/2, W/2), L2-normalised, on the model's device."""
    model.eval()
    X = to_tensor_images(images)
    dev = model.temperature.device
    return torch.cat([model.forward_features(X[i:i + batch_size].to(dev))["pixel_embeddings"]
                      for i in range(0, len(X), batch_size)])


@torch.no_grad()
def segment_with(model: LSeg, I: torch.Tensor, T: torch.Tensor, size: int) -> torch.Tensor:
    """argmax over the labels whose (unnormalised) embeddings are the rows of T: (N, size, size) positions (CPU)."""
    T = nnF.normalize(T.float(), dim=1).to(I.device)
    out = []
    for i in range(0, len(I), 50):
        out.append(model.decode(I[i:i + 50], T, (size, size)).argmax(1).cpu())
    return torch.cat(out)


def all_labels_protocol(model, I, T_all, ds) -> dict:
    """Every pixel chooses among ALL labels (background, seen, held out): per-class IoU on the test set."""
    n = len(ds["names"])
    pred = segment_with(model, I, T_all, ds["test"]["labels"].shape[-1])
    cm = ConfusionMatrix(n, ignore_index=IGNORE)
    cm.update(pred, torch.as_tensor(ds["test"]["labels"]))
    return {"held_out_miou": cm.miou(ds["held_out"]), "seen_miou": cm.miou(ds["seen"]),
            "background_iou": float(cm.iou()[0]), "pixel_acc": cm.pixel_accuracy(), "iou": cm.iou(),
            "confusion": cm.M}


def binary_protocol(model, I, T_all, ds, classes=None) -> dict:
    """The zero-shot benchmark protocol: one episode per (test image, held-out class present in it); the model
    chooses between {background ("others"), class}; I and U accumulated per class over the episodes."""
    classes = ds["held_out"] if classes is None else classes
    labels = torch.as_tensor(ds["test"]["labels"]).long()
    size = labels.shape[-1]
    m = EpisodeIoU()
    for c in classes:
        idx = [i for i in range(len(labels)) if (labels[i] == c).any()]
        if not idx:
            continue
        pred = segment_with(model, I[idx], T_all[[0, c]], size)
        for j, i in enumerate(idx):
            m.update(pred[j] == 1, labels[i] == c, c, ignore=labels[i] == IGNORE)
    return {"miou": m.miou(), "fb_iou": m.fb_iou()}


def best_constant_label(ds, classes=None) -> tuple[float, str]:
    """mIoU over ``classes`` (default: held out) of the best 'predict one label everywhere' baseline."""
    classes = ds["held_out"] if classes is None else classes
    y = torch.as_tensor(ds["test"]["labels"]).long()
    valid = (y != IGNORE).sum().item()
    best, name = 0.0, None
    for c in range(len(ds["names"])):
        # predicting c everywhere: IoU_c = |y == c| / |valid pixels|, IoU of every other class = 0
        miou = ((y == c).sum().item() / valid if c in classes else 0.0) / len(classes)
        if miou > best or name is None:
            best, name = miou, ds["names"][c]
    return best, name


def removal(model, I, T_all, ds, removed: int) -> dict:
    """Offer every label except ``removed``: where do its pixels go? And which label is nearest in text space?

    Each pixel takes the offered label nearest to its PIXEL embedding; that is the label nearest to the removed one
    in TEXT space only as far as the image encoder has learned the text space's geometry. ``top_text_rank``: the
    rank of the most frequent destination among the offered labels ordered by text similarity (1 = text-nearest).
    """
    keep = [k for k in range(len(ds["names"])) if k != removed]
    pred = segment_with(model, I, T_all[keep], ds["test"]["labels"].shape[-1])
    pred_global = torch.as_tensor(keep)[pred]
    y = torch.as_tensor(ds["test"]["labels"]).long()
    mask = y == removed
    counts = torch.bincount(pred_global[mask], minlength=len(ds["names"])).double()
    share = counts / counts.sum().clamp(min=1)
    Tn = nnF.normalize(T_all.float(), dim=1)
    sim = Tn[keep] @ Tn[removed]
    order = [keep[int(i)] for i in sim.argsort(descending=True)]  # offered labels, nearest in text space first
    nearest = order[0]
    same = {f: float(sum(share[k] for k in keep if k and ds[f][k] == ds[f][removed]))
            for f in ("colour", "object") if f in ds}
    top = int(share.argmax())
    return {"share": share, "top": top, "nearest_text": nearest, "top_text_rank": order.index(top) + 1,
            "share_to_nearest_text": float(share[nearest]), "share_background": float(share[0]),
            **{f"share_same_{f}": v for f, v in same.items()}}


def with_other(model, I, T_all, T_other, ds) -> dict:
    """Add an untrained label "other" to the full set: what share of the pixels does it take?"""
    T = torch.cat([T_all, T_other[None]])
    pred = segment_with(model, I, T, ds["test"]["labels"].shape[-1])
    y = torch.as_tensor(ds["test"]["labels"]).long()
    valid = y != IGNORE
    other = pred == len(T_all)
    return {"share_all": float(other[valid].float().mean()),
            "share_held_out": float(other[valid & torch.isin(y, torch.as_tensor(ds["held_out"]))].float().mean())}


def coarse(model, I, enc, ds, coarse_labels: list[str], field: str) -> dict:
    """Offer coarse labels (e.g. background + the six colour words of :data:`lib.lseg.data.COLOURS`): pixel accuracy
    and IoU against the coarse truth, each fine label mapped to its ``ds[field]`` entry ('colour' or 'object')."""
    T = enc(coarse_labels)
    pred = segment_with(model, I, T, ds["test"]["labels"].shape[-1])
    lut = torch.full((256,), IGNORE, dtype=torch.long)
    for k, c in enumerate(ds[field]):
        lut[k] = coarse_labels.index(c)
    y = lut[torch.as_tensor(ds["test"]["labels"]).long()]
    cm = ConfusionMatrix(len(coarse_labels), ignore_index=IGNORE)
    cm.update(pred, y)
    return {"pixel_acc": cm.pixel_accuracy(), "iou": cm.iou(), "miou": cm.miou()}


# ------------------------------------------------------------------------------------------- the chapter's tiny runs
def evaluate_tiny_run(model: LSeg, enc, ds, text_probes: bool = True) -> dict:
    """Every measurement the chapter reports for one tiny run: both protocols, the removal of each held-out and
    seen label, and (``text_probes``: the text-encoder runs) the untrained "other" and the coarse label sets."""
    T = enc(ds["names"])
    I = pixel_embeddings(model, ds["test"]["images"])
    allp = all_labels_protocol(model, I, T, ds)
    out = {k: allp[k] for k in ("held_out_miou", "seen_miou", "background_iou", "pixel_acc")}
    out["iou"] = allp["iou"]
    out.update({f"binary_{k}": v for k, v in binary_protocol(model, I, T, ds).items()})
    out["removal"] = [removal(model, I, T, ds, k) for k in ds["held_out"] + ds["seen"]]
    if text_probes:
        out["other"] = with_other(model, I, T, enc(["other"])[0], ds)
        colours, objects = [BACKGROUND] + list(COLOURS), [BACKGROUND] + sorted(set(ds["object"][1:]))
        out["coarse_colour"] = coarse(model, I, enc, ds, colours, "colour")
        out["coarse_object"] = coarse(model, I, enc, ds, objects, "object")
    return out


def tiny_results(runs: dict, ds, manifest: dict) -> dict:
    """``{run name: evaluate_tiny_run(...)}`` for ``runs`` = ``{name: (model, history, encoder)}``, each memoised
    under the run's name and its checkpoint's sha256 (``manifest``; 'local' for a run trained here)."""
    def one(name):
        model, _, enc = runs[name]
        return evaluate_tiny_run(model, enc, ds, text_probes=name.startswith("minilm"))

    return {name: cache.memo(cache.key("lseg-eval", run=name,
                                       checkpoint=manifest.get(name, {}).get("sha256", "local")),
                             lambda name=name: one(name), version="3")
            for name in runs}


def seed_stats(results: dict, prefix: str, key: str) -> tuple[float, float, np.ndarray]:
    """Mean, sample standard deviation (ddof=1) and the values of ``results[run][key]`` over the runs whose name
    starts with ``prefix`` (the seeds of one arm)."""
    v = np.array([results[n][key] for n in results if n.startswith(prefix)])
    return v.mean(), v.std(ddof=1), v


def removal_per_run(results: dict, prefix: str) -> dict:
    """Per run (name starting with ``prefix``): the mean over its removals of each share, and the fraction of
    removals whose most frequent destination is the text-nearest label."""
    out = {}
    for n in results:
        if n.startswith(prefix):
            rem = results[n]["removal"]
            out[n] = {"to text-nearest": np.mean([r["share_to_nearest_text"] for r in rem]),
                      "top is text-nearest": np.mean([r["top"] == r["nearest_text"] for r in rem]),
                      "same colour": np.mean([r["share_same_colour"] for r in rem]),
                      "same object": np.mean([r["share_same_object"] for r in rem]),
                      "background": np.mean([r["share_background"] for r in rem])}
    return out


def nearest_same(enc, labels: list[str]) -> tuple[float, float, dict]:
    """For "<colour> <object>" labels: the share whose nearest other label (cosine of ``enc``'s embeddings) has
    the same first word (colour), the share with the same last word (object), and each label's nearest."""
    E = nnF.normalize(enc(labels), dim=1)
    S = E @ E.T
    S.fill_diagonal_(-2)
    nn_ = [labels[int(j)] for j in S.argmax(1)]
    same_c = np.mean([a.split()[0] == b.split()[0] for a, b in zip(labels, nn_)])
    same_o = np.mean([a.split()[-1] == b.split()[-1] for a, b in zip(labels, nn_)])
    return same_c, same_o, dict(zip(labels, nn_))


# ---------------------------------------------------------------------------------- colab: the official demo model
def remove_label_demo(model: LSeg, image, full: list[str], gone: str, size: int) -> dict:
    """Segment one photo (H, W, 3 uint8) at ``size``×``size`` with the label set ``full``, without ``gone``, and
    without ``gone`` plus "other"; ``share``: where the pixels that ``full`` calls ``gone`` go in the other two."""
    img = np.array(Image.fromarray(image).resize((size, size), Image.BILINEAR))  # a writable copy
    I = pixel_embeddings(model, img[None], batch_size=1)
    rest = [l for l in full if l != gone]
    sets = {"all labels": full, f"without '{gone}'": rest, f"without '{gone}', + 'other'": rest + ["other"]}
    preds = {k: segment_with(model, I, model.text_encoder(v), size)[0] for k, v in sets.items()}
    region = preds["all labels"] == full.index(gone)   # the pixels the full set calls `gone`
    share = {}
    for k in list(sets)[1:]:
        c = torch.bincount(preds[k][region].flatten(), minlength=len(sets[k])).double()
        share[k] = dict(zip(sets[k], (c / c.sum().clamp(min=1)).tolist()))
    return {"image": img, "gone": gone, "sets": sets, "preds": preds, "pixels": int(region.sum()), "share": share}


__all__ = ["pixel_embeddings", "segment_with", "all_labels_protocol", "binary_protocol", "best_constant_label",
           "removal", "with_other", "coarse", "evaluate_tiny_run", "tiny_results", "seed_stats", "removal_per_run",
           "nearest_same", "remove_label_demo", "BACKGROUND", "remap"]
