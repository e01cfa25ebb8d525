"""Chapter 1's files: Kodak-named PNGs (768×512, and 512×768 for the Kodak suite's portrait images), COCO
val2017-named JPEGs (640 px wide, 480 or 427 high), CompressAI zoo checkpoints of the real architecture with random
weights in the zoo's old key layout (``entropy_bottleneck._biases.N``, ``_matrices.N``, ``_factors.N``),
torchvision's Mask R-CNN state dict as its COCO_V1 file holds it (the model with ``FrozenBatchNorm2d`` that
torchvision trains with a pretrained backbone: key names and shapes, random weights, BatchNorm statistics measured on
pictures) under its real file name, ``annotations_trainval2017.zip`` with an ``annotations/instances_val2017.json``
in COCO's schema for the chapter's images, and a ``val2017.zip`` holding those images and a few more.

:data:`FORMATS` says, for each URL pattern, what the real file is, what vouches for the miniature's format (the
publisher's own loader, which ``tests/test_formats_icm.py`` runs on the miniature, or the public source that defines
it) and how the course verifies the download."""

from __future__ import annotations

import io
import re

from .common import image_bytes, smooth_image


# the Kodak suite's portrait images (512 wide, 768 high; the others are 768x512), as the suite's page lists them
KODAK_PORTRAIT = (4, 9, 10, 17, 18, 19)


def kodak_size(image_id: int) -> tuple[int, int]:
    """(width, height) of Kodak image ``image_id``: 512×768 for the portrait ones, 768×512 for the others."""
    return (512, 768) if image_id in KODAK_PORTRAIT else (768, 512)


def kodak_png(url: str) -> bytes:
    return image_bytes(smooth_image(url, *kodak_size(int(re.search(r"kodim(\d\d)\.png$", url).group(1)))), "PNG")


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
    """``maskrcnn_resnet50_fpn_coco-<hash>.pth``: torchvision's Mask R-CNN ResNet-50 FPN with random weights, as the
    COCO_V1 file holds it: the model torchvision builds for trained weights (``FrozenBatchNorm2d``, so no
    ``num_batches_tracked``), its BatchNorm statistics measured on a few pictures, so that each layer's variance is
    as uneven as a trained network's and the eps the model runs with shows in its outputs."""
    import numpy as np
    import torch
    import torchvision
    from torch import nn

    from lib.icm.machine import maskrcnn_coco

    torch.manual_seed(0)
    trained = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    body = trained.backbone.body
    for m in body.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None   # a plain average over the batches below
    pictures = np.stack([smooth_image(f"{url}#{k}", 160, 128) for k in range(4)])
    x = torch.from_numpy(pictures).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        body.train()((x - 0.45) / 0.225)
    state = {k: v for k, v in trained.state_dict().items() if not k.endswith("num_batches_tracked")}
    model = maskrcnn_coco()
    model.load_state_dict(state)   # strict: the trained-weights model's keys, no more, no fewer
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


KODAK = r"https?://r0k\.us/graphics/kodak/kodak/kodim\d\d\.png"
COCO_IMAGE = r"https?://images\.cocodataset\.org/val2017/\d{12}\.jpg"
COMPRESSAI = r"https://compressai\.s3\.amazonaws\.com/models/v1/bmshj2018-factorized-prior-\d-[0-9a-f]{8}\.pth\.tar"
MASKRCNN = r"https://download\.pytorch\.org/models/maskrcnn_resnet50_fpn_coco-[0-9a-f]{8}\.pth"
COCO_ANNOTATIONS = r"https?://images\.cocodataset\.org/annotations/annotations_trainval2017\.zip"
COCO_ZIP = r"https?://images\.cocodataset\.org/zips/val2017\.zip"

MAKERS = [
    (KODAK, kodak_png),
    (COCO_IMAGE, coco_jpeg),
    (COMPRESSAI, compressai_checkpoint),
    (MASKRCNN, maskrcnn_state_dict),
    (COCO_ANNOTATIONS, coco_annotations_zip),
    (COCO_ZIP, coco_val_zip),
]

# For each MAKERS regex: the file, what vouches that the miniature has the real file's format (the publisher's own
# loader, run on the miniature by tests/test_formats_icm.py, or the public source that defines it), and how the real
# download is checked.
FORMATS: dict[str, dict] = {
    KODAK: {
        "file": "Kodak Lossless True Color Image Suite, kodim01-24: 24-bit RGB PNGs, 768x512, six of them portrait "
                "512x768 (kodim04, 09, 10, 17, 18, 19)",
        "vouched_by": "no library loads Kodak (torchvision has no Kodak data set): the suite's page "
                      "http://r0k.us/graphics/kodak/ defines the files and sizes; CompressAI's published results for "
                      "its zoo (InterDigitalInc/CompressAI, results/image/kodak/compressai-bmshj2018-factorized_"
                      "mse_cpu.json) are on these 24 images; read with PIL",
        "verified": "first-use sha256 (no checksum is published)",
    },
    COCO_IMAGE: {
        "file": "COCO 2017 val image, JPEG, <= 640 px on its longer side",
        "vouched_by": "cocodataset.org's download page and the file names and sizes in instances_val2017.json "
                      "(images[].file_name, width, height, coco_url); read with PIL",
        "verified": "first-use sha256 (no checksum is published)",
    },
    COMPRESSAI: {
        "file": "CompressAI model zoo, bmshj2018-factorized (MSE), quality 1-8: a torch.save'd flat state dict in "
                "the zoo's old key layout (entropy_bottleneck._biases.N, _matrices.N, _factors.N)",
        "vouched_by": "CompressAI's own loader: compressai.zoo.bmshj2018_factorized(quality=q, pretrained=True) "
                      "(compressai/zoo/image.py: torch.hub.load_state_dict_from_url, load_pretrained, "
                      "FactorizedPrior.from_state_dict) reads the miniature and gives the tensors the course's "
                      "loader gives (tests/test_formats_icm.py)",
        "verified": "sha256 prefix in the file name (torch.hub's convention)",
    },
    MASKRCNN: {
        "file": "torchvision MaskRCNN_ResNet50_FPN_Weights.COCO_V1: a torch.save'd state dict of Mask R-CNN "
                "ResNet-50 FPN with FrozenBatchNorm2d buffers (no num_batches_tracked), 91 classes",
        "vouched_by": "torchvision's own loader: maskrcnn_resnet50_fpn(weights=MaskRCNN_ResNet50_FPN_Weights.COCO_V1) "
                      "(torchvision/models/detection/mask_rcnn.py: FrozenBatchNorm2d, overwrite_eps(model, 0.0)) "
                      "reads the miniature from torch.hub's cache and gives the state, detections and FPN features "
                      "the course's model gives (tests/test_formats_icm.py)",
        "verified": "sha256 prefix in the file name (torch.hub's convention)",
    },
    COCO_ANNOTATIONS: {
        "file": "COCO 2017 annotations_trainval2017.zip, annotations/instances_val2017.json in COCO's detection "
                "schema (polygons, crowd regions in uncompressed RLE)",
        "vouched_by": "the publisher's loader: pycocotools.coco.COCO(path) reads the miniature's "
                      "instances_val2017.json, and its masks, boxes and categories are those the course's "
                      "evaluation reads (tests/test_formats_icm.py); schema: cocodataset.org/#format-data",
        "verified": "first-use sha256 (no checksum is published)",
    },
    COCO_ZIP: {
        "file": "COCO 2017 val2017.zip: val2017/<12-digit id>.jpg, 5,000 JPEGs",
        "vouched_by": "cocodataset.org's download page; the member names are the file_name fields of "
                      "instances_val2017.json under val2017/; read with zipfile and PIL",
        "verified": "first-use sha256 (no checksum is published)",
    },
}



def urls() -> list[str]:
    """Every URL chapter 1's colab configurations download (read from the course's own constants)."""
    from compressai.zoo.image import model_urls

    from lib.icm import config

    urls = []
    for cfg in config.CONFIGS.values():   # the Kodak and COCO images each chapter-1 configuration names
        cfg = cfg.rehearsed() if cfg.at_paper_scale else cfg   # paper is only ever rehearsed on the mirror
        urls += [cfg.kodak_url.format(i) for i in cfg.kodak_ids or ()]
        urls += [cfg.coco_url.format(i) for i in cfg.coco_ids or ()]
        urls += [u for u in (cfg.coco_annotations_url, cfg.coco_train_url) if u]
        if cfg.machine == "mask-rcnn":
            from lib.icm.machine import maskrcnn_url

            urls.append(maskrcnn_url())
    urls = list(dict.fromkeys(urls))
    urls += list(model_urls["bmshj2018-factorized"]["mse"].values())
    return urls
