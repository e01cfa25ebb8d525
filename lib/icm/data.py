"""Data for the ICM chapter: real photos available offline (``lib.assets.photos``) at ``tiny`` scale.

A fixed split by name: every ``holdout``-th photo (sorted by name) is held out for evaluation; training uses random
crops of the others. Evaluation images are fixed crops of the held-out photos.
"""

from __future__ import annotations

import numpy as np
import torch


def load_photos(short_side: int = 384) -> list[tuple[str, torch.Tensor]]:
    """``(name, (3, H, W) float tensor in [0, 1])`` with the shorter side resized to ``short_side`` (antialiased)."""
    from PIL import Image

    from lib import assets

    out = []
    for name, img in assets.photos(min_side=256):
        h, w = img.shape[:2]
        s = short_side / min(h, w)
        img = np.asarray(Image.fromarray(img).resize((round(w * s), round(h * s)), Image.Resampling.LANCZOS))
        out.append((name, torch.from_numpy(img.copy()).permute(2, 0, 1).float() / 255))
    return out


def split(photos: list, holdout: int = 4, offset: int = 1) -> tuple[list, list]:
    """``(train, eval)``: every ``holdout``-th photo (from ``offset``) goes to eval."""
    ev = [p for i, p in enumerate(photos) if i % holdout == offset]
    tr = [p for i, p in enumerate(photos) if i % holdout != offset]
    return tr, ev


def random_crops(photos: list, n: int, size: int, seed: int) -> torch.Tensor:
    """``n`` random ``size``×``size`` crops (with random horizontal flips), reproducible from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        _, img = photos[int(torch.randint(len(photos), (1,), generator=g))]
        H, W = img.shape[-2:]
        i = int(torch.randint(H - size + 1, (1,), generator=g))
        j = int(torch.randint(W - size + 1, (1,), generator=g))
        crop = img[:, i:i + size, j:j + size]
        if torch.rand(1, generator=g) < 0.5:
            crop = crop.flip(-1)
        out.append(crop)
    return torch.stack(out)


def grid_crops(photos: list, size: int, per_photo: int) -> list[tuple[str, torch.Tensor]]:
    """Fixed, evenly spaced ``size``×``size`` crops (``per_photo`` per photo), as (1, 3, size, size) tensors."""
    out = []
    for name, img in photos:
        H, W = img.shape[-2:]
        ii = np.linspace(0, H - size, max(1, round(per_photo ** 0.5))).round().astype(int)
        jj = np.linspace(0, W - size, max(1, -(-per_photo // len(ii)))).round().astype(int)
        k = 0
        for i in ii:
            for j in jj:
                if k < per_photo:
                    out.append((f"{name}@{i},{j}", img[None, :, i:i + size, j:j + size].contiguous()))
                    k += 1
    return out
