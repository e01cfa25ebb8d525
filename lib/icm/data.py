"""Data for the ICM chapter at ``tiny`` scale, all real and offline.

* **Photos** (``lib.storage.assets.photos``: scikit-image, scikit-learn, matplotlib, Debian ``mate-backgrounds``): the
  fidelity set, our stand-in for Kodak. A fixed split by name: every ``holdout``-th photo (sorted by name) is held
  out; training uses random crops of the others, evaluation fixed crops of the held-out ones.
* **Object scenes** (the task set, our stand-in for COCO): a Tux Paint photo cut-out (``tuxpaint-stamps-default``;
  its alpha channel is the object's mask) pasted, large, on a crop of a photo. A classifier has an object to name
  here; on a wallpaper crop its top-1 is a low-confidence guess that any codec flips. Stamps are split like photos.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lib import validate
from lib.images import to_tensor
from lib.storage import assets, download, errors


def load_photos(short_side: int = 384) -> list[tuple[str, torch.Tensor]]:
    """``(name, (3, H, W) float tensor in [0, 1])`` with the shorter side resized to ``short_side`` (antialiased).
    Read and resized once per process: each call returns a new list holding the same tensors (``clone()`` one before
    writing into it)."""
    return list(_photos(short_side))


@functools.lru_cache(maxsize=2)
def _photos(short_side: int) -> tuple[tuple[str, torch.Tensor], ...]:
    out = []
    for name, img in assets.photos(min_side=256):
        h, w = img.shape[:2]
        s = short_side / min(h, w)
        img = np.asarray(Image.fromarray(img).resize((round(w * s), round(h * s)), Image.Resampling.LANCZOS))
        out.append((name, to_tensor(img)))
    return tuple(out)


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


# --- colab / paper scale: images downloaded by URL (Kodak: lib.icm.kodak; COCO: lib.icm.coco). No checksums are
# published, so each file's sha256 is recorded at its first download and re-checked afterwards (lib.storage.download,
# "first use"); read with PIL -----------------------------------------------------------------------------------------
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
