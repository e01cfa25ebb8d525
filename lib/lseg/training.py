"""Training and evaluating LSeg at any scale: cross-entropy over the offered labels, ignore index, poly schedule.

The official recipe (LSeg code, ``lseg_module.py``): CE with ``ignore_index`` over the full label set of the data
set, SGD (momentum 0.9, wd 1e-4, lr 0.004/16 × batch, head 10× lr), poly decay (1 - it/max)^0.9. At ``tiny`` scale
the model is trained from scratch, so we use AdamW (the same poly decay): SGD from scratch needs many more steps.
The loop itself is ``lib.train.fit`` (resumable, DDP-ready).
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnF

from lib.lseg.data import IGNORE
from lib.lseg.metrics import ConfusionMatrix
from lib.lseg.model import LSeg


def poly_schedule(optimizer, steps: int, power: float = 0.9):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps) ** power)


def to_tensor_images(images) -> torch.Tensor:
    """(N, H, W, 3) uint8 → (N, 3, H, W) float in [0, 1]."""
    return torch.as_tensor(images).permute(0, 3, 1, 2).float().div(255)


def remap(labels: torch.Tensor, offered: list[int]) -> torch.Tensor:
    """Global label ids → positions in the offered label list; ids not offered (and IGNORE) → IGNORE."""
    lut = torch.full((256,), IGNORE, dtype=torch.long)
    lut[torch.as_tensor(offered)] = torch.arange(len(offered))
    return lut[labels.long()]


def batch_sampler(split: dict, batch_size: int, seed: int):
    """``step -> (images, labels)``: a function of the step alone (so a resumed run sees the same batches)."""
    X, Y = to_tensor_images(split["images"]), torch.as_tensor(split["labels"])

    def batches(step: int):
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(len(X), (batch_size,), generator=g)
        x, y = X[idx], Y[idx]
        flip = torch.rand(batch_size, generator=g) < 0.5
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        return x, y

    return batches


def lseg_loss(T: torch.Tensor, offered: list[int]):
    """``loss_fn(model, (x, y))``: CE (ignore_index) of the logits over the ``offered`` labels' embeddings ``T``."""
    if len(offered) < 2:
        raise ValueError("training needs at least two offered labels (with one, every pixel is that label and "
                         "the cross-entropy is zero)")

    def loss_fn(model: LSeg, batch):
        x, y = batch
        logits = model(x, T)
        target = remap(y, offered)
        loss = nnF.cross_entropy(logits, target, ignore_index=IGNORE)
        with torch.no_grad():
            keep = target != IGNORE
            acc = (logits.argmax(1)[keep] == target[keep]).float().mean()
        return {"loss": loss, "pixel_acc": acc}

    return loss_fn


@torch.no_grad()
def predict(model: LSeg, images, T: torch.Tensor, batch_size: int = 50) -> torch.Tensor:
    """Argmax label positions (N, H, W) for uint8 images (N, H, W, 3) and label embeddings T (K, C)."""
    model.eval()
    X = to_tensor_images(images)
    return torch.cat([model(X[i:i + batch_size], T).argmax(1) for i in range(0, len(X), batch_size)])


def evaluate(pred: torch.Tensor, labels, offered: list[int]) -> ConfusionMatrix:
    """Confusion matrix over the offered labels (positions), ground truth remapped; pixels of labels not offered
    are ignored."""
    cm = ConfusionMatrix(len(offered), ignore_index=IGNORE)
    cm.update(pred, remap(torch.as_tensor(labels), offered))
    return cm
