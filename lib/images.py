"""Channels-last images (PIL, NumPy, torch) as the channels-first float tensors the models take."""

from __future__ import annotations

import numpy as np
import torch

from lib import validate


def to_tensor(images, channels: tuple[int, ...] = (3, 4)) -> torch.Tensor:
    """An (H, W, C) image → (C, H, W); an (N, H, W, C) batch → (N, C, H, W); float in [0, 1]. uint8 is divided by
    255; floats are kept as they are and must already be in [0, 1]. ``C`` must be one of ``channels``."""
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.array(images))
    if x.ndim not in (3, 4) or x.shape[-1] not in channels:
        hint = (": it looks channels-first, put the channels last (x.permute(0, 2, 3, 1) for a batch)"
                if x.ndim in (3, 4) and x.shape[-3] in channels else "")
        raise ValueError(f"images must be (H, W, C) or (N, H, W, C) with C in {channels}, got shape "
                         f"{tuple(x.shape)}{hint}")
    order = (2, 0, 1) if x.ndim == 3 else (0, 3, 1, 2)
    if x.dtype == torch.uint8:
        return x.permute(*order).float() / 255
    return validate.pixels(x, "images").permute(*order).float()
