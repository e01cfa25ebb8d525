"""COCO val2017: chapter 1's task set at ``colab`` scale (images by id, with their instance annotations read and
scored by pycocotools) and the base codec's training images (the val2017 zip)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import zipfile

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from lib.icm.data import STRIDE, download_images
from lib.images import to_tensor
from lib.storage import download

COCO_VAL_URL = "http://images.cocodataset.org/val2017/{:012d}.jpg"
COCO_ANNOTATIONS_URL = "http://images.cocodataset.org/annotations/annotations_trainval2017.zip"  # 241 MB
COCO_ANNOTATIONS_MEMBER = "annotations/instances_val2017.json"
COCO_ZIP_URL = "http://images.cocodataset.org/zips/val2017.zip"   # 1 GB, 5,000 JPEGs under val2017/


def coco_val(ids, *, size: int | None = 224, url: str = COCO_VAL_URL) -> list[tuple[str, torch.Tensor]]:
    """COCO val2017 images by id (the task set at colab scale): ``size``-px squares, or (``size=None``) each at its
    own size cropped at the bottom and right to the codec's stride, so that its annotations still fit."""
    return download_images([url.format(i) for i in ids], size=size, what="coco_ids")


def coco_train(n: int, exclude=(), *, url: str = COCO_ZIP_URL, short_side: int = 288) -> list[tuple[str, torch.Tensor]]:
    """The first ``n`` images of COCO val2017 (sorted by id) that are not in ``exclude`` (the evaluation ids), read
    from ``val2017.zip`` (fetched once, sha256 recorded at the first download), shorter side resized to
    ``short_side``: the training images of the base codec at colab scale."""
    path = download.fetch(url, reader="zip")
    exclude = {int(i) for i in exclude}
    with zipfile.ZipFile(path) as z:
        names = sorted(m for m in z.namelist()
                       if (hit := re.fullmatch(r"val2017/(\d{12})\.jpg", m)) and int(hit.group(1)) not in exclude)
        if not names:
            raise ValueError(f"{path} holds no val2017/NNNNNNNNNNNN.jpg outside the evaluation ids: is it COCO's "
                             f"val2017.zip? Delete it and run again to download it afresh")
        out = []
        for m in names[:n]:
            im = Image.open(io.BytesIO(z.read(m))).convert("RGB")
            s = short_side / min(im.size)
            im = im.resize((max(short_side, round(im.width * s)), max(short_side, round(im.height * s))),
                           Image.Resampling.LANCZOS)
            out.append((m.split("/")[-1][:-4], to_tensor(im)))
    return out


class CocoSubset:
    """COCO val2017 annotations of a few images (``pycocotools.coco.COCO``), each cropped the way its image was cut
    to the codec's stride (masks cut at the bottom and right, boxes and areas recomputed, emptied objects dropped).
    ``name in subset``: whether an image (``"000000000139"``) has annotations here; :meth:`mean_ap` scores
    detections against them with pycocotools' ``COCOeval``."""

    def __init__(self, dataset: dict):
        self.coco = COCO()
        self.coco.dataset = dataset
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()
        self.ids = {f"{im['id']:012d}": im["id"] for im in dataset["images"]}

    def __contains__(self, name: str) -> bool:
        return name in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def mean_ap(self, names: list[str], detections: list[dict]) -> dict:
        """``{"map_segm", "map_bbox"}``: COCO AP@[.5:.95] of ``detections`` (Mask R-CNN's outputs, one per name) on
        the images ``names``."""
        results = []
        for name, det in zip(names, detections):
            masks = (det["masks"][:, 0] > 0.5).numpy().astype(np.uint8)
            for box, label, score, m in zip(det["boxes"].tolist(), det["labels"].tolist(), det["scores"].tolist(), masks):
                results.append({"image_id": self.ids[name], "category_id": int(label), "score": float(score),
                                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                                "segmentation": mask_utils.encode(np.asfortranarray(m))})
        if not results:  # nothing detected on any image: every AP is 0
            return {"map_segm": 0.0, "map_bbox": 0.0}
        out = {}
        with contextlib.redirect_stdout(io.StringIO()):
            dt = self.coco.loadRes(results)
            for kind in ("segm", "bbox"):
                ev = COCOeval(self.coco, dt, kind)
                ev.params.imgIds = [self.ids[n] for n in names]
                ev.evaluate(); ev.accumulate(); ev.summarize()
                out[f"map_{kind}"] = float(ev.stats[0]) if ev.stats[0] >= 0 else float("nan")
        return out


def coco_annotations(images: list[tuple[str, torch.Tensor]], *, url: str = COCO_ANNOTATIONS_URL) -> CocoSubset:
    """The COCO val2017 annotations of ``images`` (:func:`coco_val` with ``size=None``), from
    ``annotations_trainval2017.zip`` (fetched once, sha256 recorded at the first download): only those images'
    entries are kept, cropped as the images were. A file that does not describe these images is refused."""
    path = download.fetch(url, reader="zip")
    with zipfile.ZipFile(path) as z:
        if COCO_ANNOTATIONS_MEMBER not in z.namelist():
            raise ValueError(f"{path} has no {COCO_ANNOTATIONS_MEMBER}: it is not COCO's annotations_trainval2017.zip."
                             f" Delete it and run again to download it afresh")
        with z.open(COCO_ANNOTATIONS_MEMBER) as f:
            data = json.load(f)
    shapes = {int(name): tuple(x.shape[-2:]) for name, x in images}
    by_id = {im["id"]: im for im in data.get("images", []) if im.get("id") in shapes}
    missing = sorted(set(shapes) - set(by_id))
    if missing:
        raise ValueError(f"{COCO_ANNOTATIONS_MEMBER} in {path.name} describes no image with id {missing[:5]}: the "
                         f"task images are not the val2017 images this file annotates. Use val2017 ids in coco_ids "
                         f"(lib/icm/config.py), or delete {path} if it is another file, and run again")
    for i, (h, w) in shapes.items():
        H, W = by_id[i]["height"], by_id[i]["width"]
        if (H // STRIDE * STRIDE, W // STRIDE * STRIDE) != (h, w):
            raise ValueError(f"{COCO_ANNOTATIONS_MEMBER} says image {i} is {W}x{H} pixels, but the downloaded "
                             f"{i:012d}.jpg is cut to {w}x{h} (from a different size): the annotations do not match "
                             f"the images. Delete the image or the annotations zip ({path}) from the download cache "
                             f"and run again")
    anns = []
    for a in data.get("annotations", []):
        if a["image_id"] not in shapes:
            continue
        H, W = by_id[a["image_id"]]["height"], by_id[a["image_id"]]["width"]
        h, w = shapes[a["image_id"]]
        seg = a["segmentation"]
        rle = (mask_utils.merge(mask_utils.frPyObjects(seg, H, W)) if isinstance(seg, list)
               else mask_utils.frPyObjects(seg, H, W) if isinstance(seg.get("counts"), list) else seg)
        m = np.asfortranarray(mask_utils.decode(rle)[:h, :w])
        if not m.any():
            continue
        rle = mask_utils.encode(m)
        anns.append({"id": a["id"], "image_id": a["image_id"], "category_id": a["category_id"],
                     "iscrowd": a.get("iscrowd", 0), "segmentation": rle, "area": float(mask_utils.area(rle)),
                     "bbox": mask_utils.toBbox(rle).tolist()})
    images_ = [{"id": i, "height": h, "width": w, "file_name": f"{i:012d}.jpg"} for i, (h, w) in shapes.items()]
    return CocoSubset({"images": images_, "annotations": anns, "categories": data.get("categories", [])})
