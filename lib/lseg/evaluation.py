"""The chapter's experiments on a trained LSeg: protocols, controls, label removal, "other", coarse labels.

Pixel embeddings I are computed once per model and image set; any label set then costs one matrix product, the
spatial block and the upsampling (this is what makes LSeg's label set a free choice at test time).
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnF

from lib.lseg.data import BACKGROUND, IGNORE
from lib.lseg.metrics import ConfusionMatrix, EpisodeIoU
from lib.lseg.model import LSeg
from lib.lseg.training import remap, to_tensor_images


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
        F = model.scratch.head_block(model.logits_from(I[i:i + 50], T))
        out.append(nnF.interpolate(F, size=(size, size), mode="bilinear", align_corners=True).argmax(1).cpu())
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
    """Offer coarse labels (e.g. background + the four colour words): pixel accuracy and IoU against the coarse
    truth, each fine label mapped to its ``ds[field]`` entry ('colour' or 'object')."""
    T = enc(coarse_labels)
    pred = segment_with(model, I, T, ds["test"]["labels"].shape[-1])
    lut = torch.full((256,), IGNORE, dtype=torch.long)
    for k, c in enumerate(ds[field]):
        lut[k] = coarse_labels.index(c)
    y = lut[torch.as_tensor(ds["test"]["labels"]).long()]
    cm = ConfusionMatrix(len(coarse_labels), ignore_index=IGNORE)
    cm.update(pred, y)
    return {"pixel_acc": cm.pixel_accuracy(), "iou": cm.iou(), "miou": cm.miou()}


__all__ = ["pixel_embeddings", "segment_with", "all_labels_protocol", "binary_protocol", "best_constant_label",
           "removal", "with_other", "coarse", "BACKGROUND", "remap"]
