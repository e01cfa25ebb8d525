"""What the mirror's makers share: a seed per URL and photo-like pictures."""

from __future__ import annotations

import hashlib
import io

import numpy as np


def seeded(url: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(url.encode()).hexdigest()[:8], 16))


def smooth_image(url: str, width: int, height: int) -> np.ndarray:
    """A photo-like picture: a few blurred colour blobs and edges, different for every URL."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = seeded(url)
    img = Image.new("RGB", (width, height), tuple(int(c) for c in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        x1, y1 = x0 + rng.integers(20, width // 2), y0 + rng.integers(20, height // 2)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([int(x0), int(y0), int(x1), int(y1)], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return np.asarray(img.filter(ImageFilter.GaussianBlur(2)))


def image_bytes(array: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()
