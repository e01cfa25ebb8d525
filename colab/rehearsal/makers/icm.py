"""Chapter 1's files: Kodak-named 768×512 PNGs, COCO val2017-named JPEGs, and CompressAI zoo checkpoints of the
real architecture with random weights in the zoo's old key layout (``entropy_bottleneck._biases.N``, ``_matrices.N``,
``_factors.N``)."""

from __future__ import annotations

import io
import re

from .common import image_bytes, smooth_image


def kodak_png(url: str) -> bytes:
    return image_bytes(smooth_image(url, 768, 512), "PNG")


def coco_jpeg(url: str) -> bytes:
    return image_bytes(smooth_image(url, 640, 480), "JPEG")


def compressai_checkpoint(url: str) -> bytes:
    """``bmshj2018-factorized-prior-{q}-{hash}.pth.tar``: the real FactorizedPrior(N, M) for quality q, random
    weights, saved in the zoo's old key layout (what ``compressai.zoo.pretrained.load_pretrained`` converts)."""
    import torch
    from compressai.models import FactorizedPrior
    from compressai.zoo.image import cfgs

    quality = int(re.search(r"-prior-(\d)-", url).group(1))
    torch.manual_seed(quality)
    model = FactorizedPrior(*cfgs["bmshj2018-factorized"][quality])
    model.update(force=True)
    old = {}
    for key, value in model.state_dict().items():
        # CompressAI 1.2's `biases.N` was `_biases.N` when the zoo's files were written
        old[re.sub(r"^entropy_bottleneck\.(biases|matrices|factors)\.", r"entropy_bottleneck._\1.", key)] = value
    buf = io.BytesIO()
    torch.save(old, buf)
    return buf.getvalue()


MAKERS = [
    (r"https?://r0k\.us/graphics/kodak/kodak/kodim\d\d\.png", kodak_png),
    (r"https?://images\.cocodataset\.org/val2017/\d{12}\.jpg", coco_jpeg),
    (r"https://compressai\.s3\.amazonaws\.com/models/v1/bmshj2018-factorized-prior-\d-[0-9a-f]{8}\.pth\.tar",
     compressai_checkpoint),
]


def urls() -> list[str]:
    """Every URL chapter 1's colab configurations download (read from the course's own constants)."""
    from compressai.zoo.image import model_urls

    from lib.icm import config

    urls = []
    for cfg in config.CONFIGS.values():   # the Kodak and COCO images each chapter-1 configuration names
        urls += [cfg.kodak_url.format(i) for i in cfg.kodak_ids or ()]
        urls += [cfg.coco_url.format(i) for i in cfg.coco_ids or ()]
    urls = list(dict.fromkeys(urls))
    urls += list(model_urls["bmshj2018-factorized"]["mse"].values())
    return urls
