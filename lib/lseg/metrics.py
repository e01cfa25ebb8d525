"""Segmentation metrics as LSeg's evaluations define them.

Zero-shot protocol (LSeg §5.1, following the few-shot benchmarks of HSNet/PFENet on PASCAL-5i, COCO-20i,
FSS-1000): each *episode* is one image and one target class c; the model chooses between {"others", c} per pixel.
Over all episodes, per class c accumulate the foreground intersection I_c and union U_c, then

    mIoU   = (1/|C|) Σ_c  I_c / U_c                               (foreground IoU, averaged over classes)
    FB-IoU = ½ ( Σ_e I_e^fg / Σ_e U_e^fg  +  Σ_e I_e^bg / Σ_e U_e^bg )   (foreground and background, all episodes)

Generalised / all-labels protocol (ADE20K-style, §5.2): every pixel chooses among all labels at once; a confusion
matrix over the whole evaluation set gives per-class IoU_k = TP_k / (TP_k + FP_k + FN_k), mIoU (over the classes
asked for, e.g. the held-out ones) and pixel accuracy.
"""

from __future__ import annotations

import torch

from lib import validate


def check_class_indices(t, name: str = "pred") -> torch.Tensor:
    """Class indices as a long tensor: integers, or floats that hold whole numbers only."""
    t = torch.as_tensor(t)
    if t.is_floating_point() and not (torch.isfinite(t) & (t == t.round())).all():
        bad = t[~(torch.isfinite(t) & (t == t.round()))].reshape(-1)[0].item()
        raise ValueError(f"{name} must hold class indices, got {t.dtype} values such as {bad:.3g}: take the "
                         f"argmax over classes first, e.g. logits.argmax(1)")
    return t.long()


class EpisodeIoU:
    """Accumulates the zero-shot protocol's per-class foreground I/U and the episode-wide fg/bg I/U."""

    def __init__(self):
        self.I, self.U = {}, {}
        self.fb_I = torch.zeros(2, dtype=torch.float64)  # [background, foreground]
        self.fb_U = torch.zeros(2, dtype=torch.float64)

    def update(self, pred_fg: torch.Tensor, gt_fg: torch.Tensor, cls, ignore: torch.Tensor | None = None) -> None:
        """One episode: boolean foreground masks of the same shape, the episode's class, optional ignore mask."""
        pred_fg, gt_fg = validate.mask(pred_fg, "pred_fg"), validate.mask(gt_fg, "gt_fg")
        if pred_fg.shape != gt_fg.shape:
            raise ValueError(f"prediction {tuple(pred_fg.shape)} and target {tuple(gt_fg.shape)} differ in shape")
        keep = torch.ones_like(gt_fg) if ignore is None else ~validate.mask(ignore, "ignore")
        for j, (p, g) in enumerate(((~pred_fg, ~gt_fg), (pred_fg, gt_fg))):
            i = (p & g & keep).sum().item()
            u = ((p | g) & keep).sum().item()
            self.fb_I[j] += i
            self.fb_U[j] += u
            if j == 1:
                self.I[cls] = self.I.get(cls, 0) + i
                self.U[cls] = self.U.get(cls, 0) + u

    def counts(self) -> dict:
        """What one episode (or several) added: ``{class: (I, U)}`` and the fg/bg sums, as plain numbers."""
        return {"classes": {c: (self.I[c], self.U[c]) for c in self.I}, "fb_I": self.fb_I.tolist(),
                "fb_U": self.fb_U.tolist()}

    def add_counts(self, counts: dict) -> "EpisodeIoU":
        """Add what :meth:`counts` returned from another accumulator (e.g. one episode evaluated elsewhere)."""
        for c, (i, u) in counts["classes"].items():
            self.I[c] = self.I.get(c, 0) + i
            self.U[c] = self.U.get(c, 0) + u
        self.fb_I += torch.tensor(counts["fb_I"], dtype=torch.float64)
        self.fb_U += torch.tensor(counts["fb_U"], dtype=torch.float64)
        return self

    def per_class(self) -> dict:
        return {c: (self.I[c] / self.U[c] if self.U[c] else float("nan")) for c in self.I}

    def miou(self) -> float:
        vals = [v for v in self.per_class().values() if v == v]
        return sum(vals) / len(vals) if vals else float("nan")

    def fb_iou(self) -> float:
        return float((self.fb_I / self.fb_U.clamp(min=1)).mean())


class ConfusionMatrix:
    """All-labels protocol: a K×K confusion matrix (rows = truth, columns = prediction), pixels with
    ``target == ignore_index`` skipped."""

    def __init__(self, num_classes: int, ignore_index: int = 255):
        if num_classes < 1:
            raise ValueError("num_classes must be >= 1")
        self.K, self.ignore_index = num_classes, ignore_index
        self.M = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        pred = check_class_indices(pred, "pred").flatten()
        target = check_class_indices(target, "target").flatten()
        if pred.shape != target.shape:
            raise ValueError("prediction and target must have the same number of pixels")
        keep = target != self.ignore_index
        pred, target = pred[keep], target[keep]
        if len(target) and (int(target.max()) >= self.K or int(pred.max()) >= self.K or int(pred.min()) < 0):
            raise ValueError(f"class indices must lie in [0, {self.K})")
        self.M += torch.bincount(target * self.K + pred, minlength=self.K * self.K).reshape(self.K, self.K)

    def iou(self) -> torch.Tensor:
        """Per-class IoU (NaN for a class that is neither present nor predicted)."""
        tp = self.M.diag().double()
        union = self.M.sum(0).double() + self.M.sum(1).double() - tp
        return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))

    def miou(self, classes=None) -> float:
        """Mean IoU over ``classes`` (default: all with a defined IoU)."""
        iou = self.iou() if classes is None else self.iou()[list(classes)]
        iou = iou[~iou.isnan()]
        return float(iou.mean()) if len(iou) else float("nan")

    def pixel_accuracy(self) -> float:
        return float(self.M.diag().sum() / self.M.sum().clamp(min=1))

    def share(self, true_class: int) -> torch.Tensor:
        """Where the pixels of ``true_class`` went: a row of the matrix, normalised (sums to 1)."""
        row = self.M[true_class].double()
        return row / row.sum().clamp(min=1)
