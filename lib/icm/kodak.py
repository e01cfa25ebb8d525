"""The Kodak images (kodim01-24, 768×512 PNGs): chapter 1's fidelity set at ``colab`` scale, downloaded once each
and checked afterwards (:func:`lib.icm.data.download_images`)."""

from __future__ import annotations

import torch

from lib.icm.data import download_images

KODAK_URL = "https://r0k.us/graphics/kodak/kodak/kodim{:02d}.png"   # kodim01-24, 768x512 PNGs


def kodak(ids=range(1, 25), *, url: str = KODAK_URL) -> list[tuple[str, torch.Tensor]]:
    """The Kodak images ``ids`` (1-24; the fidelity set at colab scale), each cropped to the codec's stride."""
    bad = [i for i in ids if not 1 <= int(i) <= 24]
    if bad:
        raise ValueError(f"Kodak has kodim01 to kodim24; there is no image {bad}: fix kodak_ids in lib/icm/config.py")
    return download_images([url.format(i) for i in ids], what="kodak_ids")
