"""The offline data this course uses, found where Debian and PyPI install it.

Nothing here downloads. When something is missing, :class:`AssetMissing` says which package brings it (the README's
set-up command installs them all). Licences and credits: see the book's "Data and credits" page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lib import validate


class AssetMissing(FileNotFoundError):
    """An offline asset is not installed."""


def require(path: str | Path, *, apt: str | None = None, pip: str | None = None) -> Path:
    """``path`` if it exists, else an :class:`AssetMissing` that names the package to install."""
    path = Path(path)
    if path.exists():
        return path
    how = " or ".join(x for x in ((f"`apt-get install {apt}`" if apt else None),
                                  (f"`pip install {pip}`" if pip else None)) if x)
    raise AssetMissing(f"{path} is missing: install it with {how or 'the README set-up command'}"
                       f" (the README's first command installs every offline asset)")


MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
TUXPAINT_STAMPS = Path("/usr/share/tuxpaint/stamps")


def tuxpaint_stamps_dir() -> Path:
    """Tux Paint's stamps: photo cut-outs with alpha masks and names, and spoken descriptions (GPL-2)."""
    return require(TUXPAINT_STAMPS, apt="tuxpaint-stamps-default")


def mate_nature_photos() -> list[Path]:
    """The 12 nature photos of Debian's ``mate-backgrounds`` (GPL-2+)."""
    return sorted(require(MATE_NATURE, apt="mate-backgrounds").glob("*.jpg"))


def _resize(img: np.ndarray, max_side: int | None) -> np.ndarray:
    if max_side is None or max(img.shape[:2]) <= max_side:
        return img
    h, w = img.shape[:2]
    s = max_side / max(h, w)
    return np.asarray(Image.fromarray(img).resize((round(w * s), round(h * s)), Image.Resampling.LANCZOS))


def photos(min_side: int = 256, max_side: int | None = None, include_mate: bool = True) -> list[tuple[str, np.ndarray]]:
    """Real colour photos available offline, as ``(name, HxWx3 uint8)`` sorted by name.

    scikit-image's bundled photos (astronaut, chelsea, coffee, rocket, stereo_motorcycle), scikit-learn's sample
    images (china, flower), matplotlib's grace_hopper, and Debian ``mate-backgrounds`` nature photos. Photos with a
    shorter side below ``min_side`` are skipped; ``max_side`` downsizes large ones.
    """

    min_side = validate.integer(min_side, "min_side", minimum=1, hint="the shortest side a photo may have, in pixels")
    if max_side is not None:
        max_side = validate.integer(max_side, "max_side", minimum=1, hint="larger photos are downsized to it")
    # deferred: these three take seconds to import together, and every chapter imports lib.storage
    import matplotlib.cbook
    from sklearn.datasets import load_sample_images

    out: list[tuple[str, np.ndarray]] = []
    try:
        import skimage.data as skd  # here, so that a missing package gets the message below
    except ImportError as err:
        raise AssetMissing("scikit-image is missing: `pip install scikit-image`") from err
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        out.append((f"skimage-{name}", getattr(skd, name)()))
    left, _right, _disp = skd.stereo_motorcycle()
    out.append(("skimage-motorcycle", left))
    for fname, img in zip(("china", "flower"), load_sample_images().images):
        out.append((f"sklearn-{fname}", img))
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        out.append(("matplotlib-grace_hopper", np.asarray(Image.open(f).convert("RGB"))))
    if include_mate:
        for p in mate_nature_photos():
            out.append((f"mate-{p.stem}", np.asarray(Image.open(p).convert("RGB"))))
    out = [(n, _resize(np.ascontiguousarray(img[..., :3]), max_side)) for n, img in out if min(img.shape[:2]) >= min_side]
    return sorted(out, key=lambda t: t[0])
