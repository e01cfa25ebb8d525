"""Data for the ICM chapter at ``tiny`` scale, all real and offline.

* **Photos** (``lib.storage.assets.photos``: scikit-image, scikit-learn, matplotlib, Debian ``mate-backgrounds``): the
  fidelity set, our stand-in for Kodak. A fixed split by name: every ``holdout``-th photo (sorted by name) is held
  out; training uses random crops of the others, evaluation fixed crops of the held-out ones.
* **Object scenes** (the task set, our stand-in for COCO): a Tux Paint photo cut-out (``tuxpaint-stamps-default``;
  its alpha channel is the object's mask) pasted, large, on a crop of a photo. A classifier has an object to name
  here; on a wallpaper crop its top-1 is a low-confidence guess that any codec flips. Stamps are split like photos.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import zipfile

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from lib import validate
from lib.images import to_tensor
from lib.storage import assets, download, errors


def load_photos(short_side: int = 384) -> list[tuple[str, torch.Tensor]]:
    """``(name, (3, H, W) float tensor in [0, 1])`` with the shorter side resized to ``short_side`` (antialiased)."""
    out = []
    for name, img in assets.photos(min_side=256):
        h, w = img.shape[:2]
        s = short_side / min(h, w)
        img = np.asarray(Image.fromarray(img).resize((round(w * s), round(h * s)), Image.Resampling.LANCZOS))
        out.append((name, to_tensor(img)))
    return out


def split(photos: list, holdout: int = 4, offset: int = 1) -> tuple[list, list]:
    """``(train, eval)``: every ``holdout``-th photo (from ``offset``) goes to eval."""
    ev = [p for i, p in enumerate(photos) if i % holdout == offset]
    tr = [p for i, p in enumerate(photos) if i % holdout != offset]
    return tr, ev


def split_stamps(stamps: list) -> tuple[list, list]:
    """``(train, eval)`` stamps: every fourth (from the third) is held out."""
    return split(stamps, holdout=4, offset=2)


def check_photos(photos, size: int, name: str = "train_photos") -> list[tuple[str, torch.Tensor]]:
    """A non-empty list of ``(name, image)`` pairs, each image (3, H, W) float in [0, 1] (float64 → float32) with
    H, W >= ``size`` (the crop)."""
    photos = list(photos)
    if not photos:
        raise ValueError(f"{name} is empty: give a list of (name, (3, H, W) float image) pairs, e.g. "
                         f"lib.icm.data.load_photos()")
    out = []
    for i, item in enumerate(photos):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ValueError(f"{name}[{i}] must be a (name, image) pair, as lib.icm.data.load_photos() gives; got "
                             f"{type(item).__name__}")
        label, img = item
        x = validate.images(img, name=f"{name}[{i}] ({label})")
        if x.shape[0] != 1:
            raise ValueError(f"{name}[{i}] ({label}) is a batch {tuple(x.shape)}: give one (3, H, W) image per pair")
        if min(x.shape[-2:]) < size:
            raise ValueError(f"{name}[{i}] ({label}) is {x.shape[-2]}x{x.shape[-1]} pixels, smaller than the "
                             f"{size}-px crop: use a smaller crop or larger photos")
        out.append((label, x[0]))
    return out


def random_crops(photos: list, n: int, size: int, seed: int) -> torch.Tensor:
    """``n`` random ``size``×``size`` crops (with random horizontal flips), reproducible from ``seed``."""
    from lib import validate

    n = validate.integer(n, "n", minimum=1, hint="how many crops to draw")
    if not photos:
        raise ValueError("photos is empty: give at least one (name, image) pair to crop from")
    smallest = min(min(img.shape[-2:]) for _, img in photos)
    size = validate.integer(size, "size", minimum=1, maximum=smallest,
                            hint=f"the crop side in pixels, at most the smallest photo's side ({smallest})")
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


def load_stamps(max_side: int = 256) -> list[tuple[str, torch.Tensor]]:
    """Tux Paint stamps as ``(name, (4, h, w) RGBA tensor in [0, 1])``, longer side ≤ ``max_side``: those at least
    96 px on their shorter side whose object covers 15-90 % of the picture, cartoons left out."""
    root = assets.tuxpaint_stamps_dir()
    out = []
    for path in sorted(root.rglob("*.png")):
        if "cartoon" in path.parts:
            continue
        im = Image.open(path).convert("RGBA")
        if min(im.size) < 96:
            continue
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        rgba = np.asarray(im)
        if not 0.15 < (rgba[..., 3] > 128).mean() < 0.9:
            continue
        out.append((str(path.relative_to(root).with_suffix("")),
                    to_tensor(rgba)))
    if not out:
        raise FileNotFoundError(f"no usable stamps under {root}: reinstall `tuxpaint-stamps-default`")
    return out


def composite(background: torch.Tensor, stamp: torch.Tensor, size: int, g: torch.Generator,
              fill: tuple[float, float] = (0.6, 0.95)) -> torch.Tensor:
    """A ``size``×``size`` scene: a random crop of ``background`` with ``stamp`` (RGBA) alpha-blended on it, its
    longer side ``fill`` × ``size``, at a random place, flipped half of the time."""
    H, W = background.shape[-2:]
    if min(H, W) < size:
        raise ValueError(f"background {H}x{W} is smaller than the {size}-px scene: load photos with a larger side")
    i = int(torch.randint(H - size + 1, (1,), generator=g))
    j = int(torch.randint(W - size + 1, (1,), generator=g))
    out = background[:, i:i + size, j:j + size].clone()
    f = fill[0] + (fill[1] - fill[0]) * float(torch.rand(1, generator=g))
    h, w = stamp.shape[-2:]
    h2, w2 = max(1, round(h * f * size / max(h, w))), max(1, round(w * f * size / max(h, w)))
    st = F.interpolate(stamp[None], size=(h2, w2), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)
    if torch.rand(1, generator=g) < 0.5:
        st = st.flip(-1)
    y = int(torch.randint(size - h2 + 1, (1,), generator=g))
    x = int(torch.randint(size - w2 + 1, (1,), generator=g))
    alpha = st[3:]
    out[:, y:y + h2, x:x + w2] = out[:, y:y + h2, x:x + w2] * (1 - alpha) + st[:3] * alpha
    return out


def random_scenes(photos: list, stamps: list, n: int, size: int, seed: int) -> torch.Tensor:
    """``n`` random object scenes (random stamp, background photo and placement), reproducible from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        _, bg = photos[int(torch.randint(len(photos), (1,), generator=g))]
        _, st = stamps[int(torch.randint(len(stamps), (1,), generator=g))]
        out.append(composite(bg, st, size, g))
    return torch.stack(out)


def fixed_scenes(photos: list, stamps: list, size: int, per_stamp: int, seed: int = 1) -> list[tuple[str, torch.Tensor]]:
    """``per_stamp`` fixed scenes of every stamp, backgrounds taken in turn, as (1, 3, size, size) tensors."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for k, (sname, st) in enumerate(stamps):
        for r in range(per_stamp):
            pname, bg = photos[(k * per_stamp + r) % len(photos)]
            out.append((f"{sname.split('/')[-1]}@{pname}", composite(bg, st, size, g)[None].contiguous()))
    return out


# --- colab / paper scale: Kodak (fidelity) and COCO val images (task); no checksums are published, so each file's
# sha256 is recorded at its first download and re-checked afterwards (lib.storage.download, "first use"); read with
# PIL ---------------------------------------------------------------------------------------------------------------
KODAK_URL = "https://r0k.us/graphics/kodak/kodak/kodim{:02d}.png"   # kodim01-24, 768x512 PNGs
COCO_VAL_URL = "http://images.cocodataset.org/val2017/{:012d}.jpg"


COCO_ANNOTATIONS_URL = "http://images.cocodataset.org/annotations/annotations_trainval2017.zip"  # 241 MB
COCO_ANNOTATIONS_MEMBER = "annotations/instances_val2017.json"
COCO_ZIP_URL = "http://images.cocodataset.org/zips/val2017.zip"   # 1 GB, 5,000 JPEGs under val2017/
STRIDE = 16  # the codec's total stride (lib.icm.codec.STRIDE)


def download_images(urls: list[str], size: int | None = None, what: str = "images") -> list[tuple[str, torch.Tensor]]:
    """``(name, (1, 3, H, W) tensor in [0, 1])`` for each URL, fetched once with :func:`lib.storage.download.fetch`
    (sha256 recorded at the first download, re-checked afterwards). ``size``: shorter side resized to ``size`` and
    centre-cropped square; otherwise cropped at the bottom and right to a multiple of 16, the codec's stride. ``what``
    names the set in errors (and the configuration field that lists it)."""
    if not urls:
        raise ValueError("no images given: name them by id (lib/icm/config.py: kodak_ids, coco_ids) or pass them")
    out = []
    for url in urls:
        try:
            path = download.fetch(url, reader="PIL")
        except errors.DownloadError as err:
            raise errors.DownloadError(f"{what}: {url.rsplit('/', 1)[-1]} could not be fetched, so the set is "
                                       f"incomplete. {err}. Or leave its id out of {what} in "
                                       f"lib/icm/config.py") from None
        im = Image.open(path).convert("RGB")
        if min(im.size) < STRIDE:
            raise ValueError(f"{what}: {url.rsplit('/', 1)[-1]} is {im.width}x{im.height} pixels, smaller than the "
                             f"codec's stride ({STRIDE} px), so it cannot be coded: leave its id out of {what} "
                             f"(lib/icm/config.py), or delete {path} if it is not the real file")
        if size is not None:
            s = size / min(im.size)
            im = im.resize((max(size, round(im.width * s)), max(size, round(im.height * s))), Image.Resampling.LANCZOS)
            left, top = (im.width - size) // 2, (im.height - size) // 2
            im = im.crop((left, top, left + size, top + size))
        else:
            im = im.crop((0, 0, im.width // STRIDE * STRIDE, im.height // STRIDE * STRIDE))
        out.append((url.rsplit("/", 1)[-1].rsplit(".", 1)[0], to_tensor(im)[None]))
    return out


def kodak(ids=range(1, 25), *, url: str = KODAK_URL) -> list[tuple[str, torch.Tensor]]:
    """The Kodak images ``ids`` (1-24; the fidelity set at colab scale), each cropped to the codec's stride."""
    bad = [i for i in ids if not 1 <= int(i) <= 24]
    if bad:
        raise ValueError(f"Kodak has kodim01 to kodim24; there is no image {bad}: fix kodak_ids in lib/icm/config.py")
    return download_images([url.format(i) for i in ids], what="kodak_ids")


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
