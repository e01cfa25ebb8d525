"""The tiny data: real photo cut-outs with exact masks, composited on real background photos.

Debian ``tuxpaint-stamps-default`` ships photographic PNG stamps whose alpha channel is an exact object mask and
whose ``<stamp>.txt`` starts with an English name ("A sedan car."). Re-coloured (luminance times a colour) and
pasted onto crops of real photos (:func:`lib.storage.assets.photos`), they give (image, per-pixel label, label text)
triples with compositional labels "<colour> <object>". Whole labels (colour-object pairs) are held out of training
for the zero-shot evaluation: every word was seen in training, never the pair. Everything is generated from a seed and
cached with ``lib.storage.cache.memo``.
"""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

from lib.images import to_tensor
from lib.storage import assets, cache

IGNORE = 255
# bump when the data change: it keys the data cache and the resumable training work files
DATA_VERSION = "4"
BACKGROUND = "background"

# photographic stamps (path under the stamps folder, without extension): two vehicles that look different; the
# object noun is the last word of the English name in <stamp>.txt ("A sedan car." -> "car", "A green bus." -> "bus")
STAMPS = ["vehicles/auto/sedan", "vehicles/masstransit/green_korean_bus"]
# each stamp is re-coloured (its luminance, tinted) in six hues: labels "<colour> <object>", 6 x 2 = 12 combinations.
# The colour WORDS are chosen for the text space, not only for the eye: for MiniLM the nearest label of every
# "<colour> <vehicle>" here is the other vehicle of the SAME colour ("cobalt car" -> "cobalt bus"), a geometry that a
# small image encoder, which sees colour first, can follow. With plain "red/green/blue/yellow" and fruit/animal nouns
# MiniLM groups by object instead ("blue penguin" -> "green penguin"): the chapter shows both.
COLOURS = {"scarlet": (1.0, 0.12, 0.08), "golden": (1.0, 0.8, 0.1), "emerald": (0.1, 0.8, 0.3),
           "turquoise": (0.1, 0.8, 0.85), "cobalt": (0.1, 0.3, 1.0), "magenta": (0.95, 0.1, 0.85)}
# held out of training: four pairs, alternating the object, so every word was seen, never the pair (and each colour
# word was seen with at least one vehicle)
HELD_OUT = ["scarlet car", "emerald bus", "cobalt car", "magenta bus"]
# backgrounds: photos without people or animals (those would be unlabelled objects in the "background")
_SKIP_BG = ("astronaut", "chelsea", "grace_hopper", "motorcycle")


def clean_name(line: str) -> str:
    """'A ripe, red tomato!' -> 'ripe, red tomato'; 'An orange.' -> 'orange'."""
    s = line.strip().rstrip(".!").strip().lower()
    return re.sub(r"^(a|an|the)\s+", "", s)


def tint(rgba: np.ndarray, colour) -> np.ndarray:
    """Re-colour a cut-out: its luminance times the colour (shading and texture kept), alpha unchanged."""
    rgb = rgba[..., :3].astype(np.float32)
    lum = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255
    lum = 0.25 + 0.75 * lum / max(float(np.percentile(lum[rgba[..., 3] > 128], 95)), 1e-3)
    out = np.clip(lum[..., None] * np.asarray(colour, np.float32) * 255, 0, 255).astype(np.uint8)
    return np.concatenate([out, rgba[..., 3:]], axis=-1)


def load_stamps(size: int = 48) -> list[dict]:
    """Every (colour, object) stamp as {'name': '<colour> <object>', 'colour', 'object', 'rgba' (uint8)}."""
    root = assets.tuxpaint_stamps_dir()
    out = []
    for rel in STAMPS:
        png, txt = root / f"{rel}.png", root / f"{rel}.txt"
        assets.require(png, apt="tuxpaint-stamps-default")
        noun = clean_name(txt.read_text(encoding="utf-8").splitlines()[0]).split()[-1]
        im = Image.open(png).convert("RGBA")
        im.thumbnail((size * 2, size * 2), Image.LANCZOS)  # keep some resolution for later rescaling
        for colour, c in COLOURS.items():
            out.append({"name": f"{colour} {noun}", "colour": colour, "object": noun,
                        "rgba": tint(np.asarray(im), c)})
    return out


def backgrounds(max_side: int = 160) -> list[np.ndarray]:
    return [img for name, img in assets.photos(min_side=128, max_side=max_side)
            if not any(s in name for s in _SKIP_BG)]


def label_names(stamps=None) -> list[str]:
    """All labels: 'background' first, then every stamp name (seen and held out)."""
    stamps = stamps if stamps is not None else load_stamps()
    return [BACKGROUND] + [s["name"] for s in stamps]


def compose(rng: np.random.Generator, stamps, bgs, classes: list[int], size: int = 64,
            n_objects=(1, 3), obj_size=(30, 56)) -> tuple[np.ndarray, np.ndarray]:
    """One image (size×size×3 uint8) and label map (size×size uint8; 0 background, k = stamps[k-1])."""
    bg = bgs[rng.integers(len(bgs))]
    h, w = bg.shape[:2]
    s = int(rng.integers(size, min(h, w) + 1))
    y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
    canvas = Image.fromarray(bg[y:y + s, x:x + s]).resize((size, size), Image.BILINEAR).convert("RGBA")
    label = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(n_objects[0], n_objects[1] + 1))):
        k = int(classes[rng.integers(len(classes))])
        im = Image.fromarray(stamps[k - 1]["rgba"])
        if rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        side = int(rng.integers(obj_size[0], obj_size[1] + 1))
        scale = side / max(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR)
        ox = int(rng.integers(-im.width // 4, size - 3 * im.width // 4 + 1))
        oy = int(rng.integers(-im.height // 4, size - 3 * im.height // 4 + 1))
        layer = Image.new("RGBA", (size, size))
        layer.paste(im, (ox, oy))
        canvas.alpha_composite(layer)
        alpha = np.asarray(layer)[..., 3]
        label[alpha >= 128] = k
        label[(alpha > 32) & (alpha < 128) & (label != k)] = IGNORE  # soft edges: neither object nor not
    return np.asarray(canvas.convert("RGB")), label


def make_split(n: int, classes: list[int], seed: int, bg_part: str, size: int = 64) -> dict:
    """``n`` composited images of the given classes on the 'train' or 'test' half of the background photos."""
    stamps, bgs = load_stamps(), backgrounds()
    half = bgs[0::2] if bg_part == "train" else bgs[1::2]
    rng = np.random.default_rng(seed)
    images, labels = zip(*(compose(rng, stamps, half, classes, size) for _ in range(n)))
    return {"images": np.stack(images), "labels": np.stack(labels)}


def tiny_dataset(n_train: int = 1200, n_test: int = 300, size: int = 64, seed: int = 0) -> dict:
    """The tiny data set, cached: train on seen labels only; test on images of held-out AND seen labels.

    Returns {'names': all label names (0 = background), 'seen': ids, 'held_out': ids, 'colour' / 'object': each
    label's colour word and object noun, 'train': {'images' (N,H,W,3) uint8, 'labels' (N,H,W) uint8}, 'test': {...}}.
    """
    def build():
        stamps = load_stamps()
        names = label_names(stamps)
        missing = [h for h in HELD_OUT if h not in names]
        if missing:
            raise RuntimeError(f"held-out labels {missing} not among the stamp names {names}")
        held = [names.index(h) for h in HELD_OUT]
        seen = [k for k in range(1, len(names)) if k not in held]
        return {"names": names, "seen": seen, "held_out": held,
                "colour": [BACKGROUND] + [s["colour"] for s in stamps],
                "object": [BACKGROUND] + [s["object"] for s in stamps],
                "train": make_split(n_train, seen, seed, "train", size),
                "test": make_split(n_test, seen + held + held, seed + 1, "test", size)}

    return cache.memo(cache.key("lseg-tiny-data", n_train=n_train, n_test=n_test, size=size, seed=seed), build,
                      version=DATA_VERSION)


def to_tensor_images(images) -> "torch.Tensor":
    """(N, H, W, 3) RGB images → (N, 3, H, W) float in [0, 1] (:func:`lib.images.to_tensor`, three channels)."""
    return to_tensor(images, channels=(3,))
