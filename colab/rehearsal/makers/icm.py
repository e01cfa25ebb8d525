"""Chapter 1's files: Kodak-named 768×512 PNGs, COCO val2017-named JPEGs (640 px wide, 480 or 427 high), CompressAI
zoo checkpoints of the real architecture with random weights in the zoo's old key layout
(``entropy_bottleneck._biases.N``, ``_matrices.N``, ``_factors.N``), torchvision's Mask R-CNN state dict (the real
architecture, key names and shapes, random weights) under its real file name, ``annotations_trainval2017.zip`` with
an ``annotations/instances_val2017.json`` in COCO's schema for the chapter's images, and a ``val2017.zip`` holding
those images and a few more."""

from __future__ import annotations

import io
import re

from .common import image_bytes, smooth_image


def kodak_png(url: str) -> bytes:
    return image_bytes(smooth_image(url, 768, 512), "PNG")


def coco_size(image_id: int) -> tuple[int, int]:
    """(width, height) of a stand-in COCO image: 640×480 or 640×427 (a height that is not a multiple of 16)."""
    return (640, 427) if image_id % 2 else (640, 480)


def coco_jpeg(url: str) -> bytes:
    return image_bytes(smooth_image(url, *coco_size(int(re.search(r"(\d{12})\.jpg$", url).group(1)))), "JPEG")


# images of val2017.zip beyond the chapter's own: ids no configuration names (the base codec's training images)
EXTRA_TRAIN_IDS = (1, 3, 4, 6, 8, 10)


def coco_ids() -> list[int]:
    from lib.icm import config

    return sorted({i for cfg in config.CONFIGS.values() for i in cfg.coco_ids or ()})


def coco_val_zip(url: str) -> bytes:
    """``val2017.zip``: ``val2017/NNNNNNNNNNNN.jpg`` for the chapter's ids and a few more."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i in sorted(set(coco_ids()) | set(EXTRA_TRAIN_IDS)):
            name = f"val2017/{i:012d}.jpg"
            z.writestr(name, coco_jpeg(f"http://images.cocodataset.org/{name}"))
    return buf.getvalue()


def instances(ids) -> dict:
    """COCO's ``instances_val2017.json`` schema for ``ids``: per image two polygon objects and one crowd region in
    uncompressed RLE (as COCO stores crowds), each with bbox, category_id, iscrowd, area; the 80 categories."""
    import numpy as np
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    names = MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    categories = [{"id": i, "name": n, "supercategory": "thing"} for i, n in enumerate(names)
                  if n not in ("__background__", "N/A")]
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in ids:
        w, h = coco_size(i)
        images.append({"id": i, "file_name": f"{i:012d}.jpg", "width": w, "height": h, "license": 1,
                       "coco_url": f"http://images.cocodataset.org/val2017/{i:012d}.jpg"})
        for k in range(2):
            x0, y0 = float(rng.integers(0, w - 200)), float(rng.integers(0, h - 150))
            bw, bh = float(rng.integers(40, 200)), float(rng.integers(40, 150))
            poly = [x0, y0, x0 + bw, y0, x0 + bw, y0 + bh, x0, y0 + bh]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": categories[int(rng.integers(80))]["id"],
                         "iscrowd": 0, "segmentation": [poly], "area": bw * bh, "bbox": [x0, y0, bw, bh]})
        # a crowd region at the bottom edge (cut by the stride crop where the height is 427): column-major runs
        m = np.zeros((h, w), dtype=np.uint8)
        m[h - 30:, 100:300] = 1
        flat = m.flatten(order="F")
        changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
        counts = np.diff(np.concatenate([[0], changes])).tolist()
        anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "iscrowd": 1,
                     "segmentation": {"size": [h, w], "counts": counts}, "area": float(m.sum()),
                     "bbox": [100.0, float(h - 30), 200.0, 30.0]})
    return {"info": {"description": "COCO 2017 Dataset (rehearsal stand-in)", "year": 2017},
            "licenses": [{"id": 1, "name": "stand-in", "url": ""}],
            "images": images, "annotations": anns, "categories": categories}


def coco_annotations_zip(url: str) -> bytes:
    """``annotations_trainval2017.zip`` with ``annotations/instances_val2017.json`` for the chapter's images."""
    import json
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("annotations/instances_val2017.json", json.dumps(instances(coco_ids())))
    return buf.getvalue()


def maskrcnn_state_dict(url: str) -> bytes:
    """``maskrcnn_resnet50_fpn_coco-<hash>.pth``: torchvision's Mask R-CNN ResNet-50 FPN, random weights."""
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


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
    (r"https://download\.pytorch\.org/models/maskrcnn_resnet50_fpn_coco-[0-9a-f]{8}\.pth", maskrcnn_state_dict),
    (r"https?://images\.cocodataset\.org/annotations/annotations_trainval2017\.zip", coco_annotations_zip),
    (r"https?://images\.cocodataset\.org/zips/val2017\.zip", coco_val_zip),
]


# For each MAKERS regex: the file, what vouches that the miniature has the real file's format (a public loader that
# reads it, or the cited public code or maintainer's words), and how the real download is checked.
FORMATS: dict[str, dict] = {
    r"https?://r0k\.us/graphics/kodak/kodak/kodim\d\d\.png": {
        "file": "kodimNN.png",
        "vouched_by": "our own reader only (not yet evidence): PIL reads a 768x512 RGB PNG; the real set also has 512x768 portraits",
        "verified": "first-use sha256 record (the host publishes no checksum)"},
    r"https?://images\.cocodataset\.org/val2017/\d{12}\.jpg": {
        "file": "NNNNNNNNNNNN.jpg (COCO val2017)",
        "vouched_by": "our own reader only (not yet evidence): PIL reads a 640-wide JPEG",
        "verified": "first-use sha256 record (COCO publishes no per-image checksum)"},
    r"https://compressai\.s3\.amazonaws\.com/models/v1/bmshj2018-factorized-prior-\d-[0-9a-f]{8}\.pth\.tar": {
        "file": "bmshj2018-factorized-prior-Q-<hash>.pth.tar",
        "vouched_by": "our own reader only (not yet evidence): CompressAI's compressai.zoo.pretrained.load_pretrained converts its keys "
                      "(tests/test_rehearsal.py); the zoo's own download path is not yet exercised",
        "verified": "sha256 prefix in the file name (torch.hub's convention)"},
    r"https://download\.pytorch\.org/models/maskrcnn_resnet50_fpn_coco-[0-9a-f]{8}\.pth": {
        "file": "maskrcnn_resnet50_fpn_coco-<hash>.pth",
        "vouched_by": "our own reader only (not yet evidence): a state dict saved from a plain-BatchNorm maskrcnn_resnet50_fpn",
        "verified": "sha256 prefix in the file name (torch.hub's convention)"},
    r"https?://images\.cocodataset\.org/annotations/annotations_trainval2017\.zip": {
        "file": "annotations_trainval2017.zip",
        "vouched_by": "our own reader only (not yet evidence): COCO's instances schema as lib.icm.data reads it with pycocotools",
        "verified": "first-use sha256 record"},
    r"https?://images\.cocodataset\.org/zips/val2017\.zip": {
        "file": "val2017.zip",
        "vouched_by": "our own reader only (not yet evidence): a zip of val2017/NNNNNNNNNNNN.jpg",
        "verified": "first-use sha256 record"},
}


def urls() -> list[str]:
    """Every URL chapter 1's colab configurations download (read from the course's own constants)."""
    from compressai.zoo.image import model_urls

    from lib.icm import config

    urls = []
    for cfg in config.CONFIGS.values():   # the Kodak and COCO images each chapter-1 configuration names
        urls += [cfg.kodak_url.format(i) for i in cfg.kodak_ids or ()]
        urls += [cfg.coco_url.format(i) for i in cfg.coco_ids or ()]
        urls += [u for u in (cfg.coco_annotations_url, cfg.coco_train_url) if u]
        if cfg.machine == "mask-rcnn":
            from lib.icm.machine import maskrcnn_url

            urls.append(maskrcnn_url())
    urls = list(dict.fromkeys(urls))
    urls += list(model_urls["bmshj2018-factorized"]["mse"].values())
    return urls
