"""PASCAL-5i, the zero-shot benchmark of LSeg §5.1 (folds as in HSNet / PFENet), from the VOC2012 archive.

Fold i holds out the five VOC classes 5i+1 … 5i+5 (fold 0: aeroplane, bicycle, bird, boat, bottle); a model is
trained on the other 15 and evaluated on the five it never saw. Each **episode** is one image and one class c
present in it; the model chooses per pixel between the labels ``["others", c]`` (raw strings, no template, as in
the official zero-shot models); intersection and union are accumulated per class over the episodes
(:class:`lib.lseg.metrics.EpisodeIoU`: mIoU over the fold's classes, FB-IoU over {background, foreground}).

What differs from HSNet's lists: the images and masks are VOC2012's own ``SegmentationClass`` set (1,464 train,
1,449 val); the SBD augmentation (``SegmentationClassAug``, 10,582 train images) that HSNet trains on is **not**
used, and the test episodes are every (val image, held-out class present) pair of VOC2012 val, not HSNet's
1,000-episode list. Training episodes are (train image, seen class present); as in HSNet, the pixels of every
other class (held-out ones included) are "others" and the 255 border is ignored.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lib import recipe, train, validate
from lib.lseg.data import IGNORE, to_tensor_images
from lib.lseg.metrics import EpisodeIoU
from lib.storage import cache, download

VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
# further sources of the same archive, in order: torchvision's (torchvision/datasets/voc.py), and the copy that
# darknet's and many detection repositories' instructions download
VOC_MIRRORS = ("https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
               "https://pjreddie.com/media/files/VOCtrainval_11-May-2012.tar")
# the archive's md5, as torchvision publishes it (torchvision/datasets/voc.py, DATASET_YEAR_DICT["2012"])
VOC_MD5 = "6cd6e144f989b92b3379bac3b3de84fd"
ROOT = "VOCdevkit/VOC2012"
# VOC's class ids 1..20; the label strings given to the text encoder (VOC's compound names split into words)
CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "dining table",
           "dog", "horse", "motorbike", "person", "potted plant", "sheep", "sofa", "train", "tv monitor"]
OTHERS = "others"


def fold_classes(fold: int) -> tuple[list[int], list[int]]:
    """(held-out class ids, seen class ids) of PASCAL-5^fold, ids 1..20."""
    if fold not in range(4):
        raise ValueError(f"PASCAL-5i has folds 0, 1, 2, 3; got {fold}")
    test = list(range(5 * fold + 1, 5 * fold + 6))
    return test, [c for c in range(1, 21) if c not in test]


def extract(url: str = VOC_URL) -> Path:
    """Download the VOC2012 archive once (from the first of its sources that answers; md5 as torchvision publishes
    it, sha256 recorded at first use) and extract its segmentation part
    (ImageSets/Segmentation, SegmentationClass and those JPEGImages) into the course cache; returns VOC2012/."""
    dest = cache.cache_dir("lseg", "voc")
    done = dest / ROOT / ".extracted"
    if not done.exists():
        tar_path = download.fetch(url, reader="tar", md5=VOC_MD5, mirrors=VOC_MIRRORS)
        with tarfile.open(tar_path) as tf:
            members = tf.getmembers()
            for m in members:
                validate.inside(dest, m.name, f"the member {m.name!r} of {tar_path.name}")
            sets = [m for m in members if m.name.startswith(f"{ROOT}/ImageSets/Segmentation/") and m.isfile()]
            tf.extractall(dest, members=sets, filter="data")
            ids = set()
            for split in ("train", "val"):
                ids |= set(_ids(dest / ROOT, split))
            want = [m for m in members if m.isfile() and (m.name.startswith(f"{ROOT}/SegmentationClass/") or
                    (m.name.startswith(f"{ROOT}/JPEGImages/") and Path(m.name).stem in ids))]
            tf.extractall(dest, members=want, filter="data")
        done.touch()
    return dest / ROOT


def _ids(root: Path, split: str) -> list[str]:
    path = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the archive is not VOC2012 trainval (delete "
                                f"{root.parent.parent} and the downloaded .tar, and run again)")
    return path.read_text().split()


def load_split(root: Path, split: str, size: int, limit: int | None = None) -> dict:
    """Images resized to size×size (uint8 tensor N×size×size×3), masks at that size (nearest) and at full size."""
    ids = _ids(root, split)[:limit]
    images, masks, full = [], [], []
    for i in ids:
        img = Image.open(root / "JPEGImages" / f"{i}.jpg").convert("RGB")
        m = Image.open(root / "SegmentationClass" / f"{i}.png")  # palette PNG: pixel values are class ids
        images.append(np.asarray(img.resize((size, size), Image.BILINEAR)))
        masks.append(np.asarray(m.resize((size, size), Image.NEAREST)))
        full.append(torch.from_numpy(np.array(m)))
    return {"ids": ids, "images": torch.from_numpy(np.stack(images)), "masks": torch.from_numpy(np.stack(masks)),
            "full": full}


def load_splits(size: int, limits: dict) -> dict:
    """``{split: load_split(...)}`` for each split of ``limits`` ({"train" | "val": first N images or None}); the
    archive is downloaded and extracted by each node's first process while the others wait."""
    if recipe.local_rank() == 0:
        extract()
    recipe.barrier()
    root = extract()  # already there: returns its folder
    return {s: load_split(root, s, size, limit) for s, limit in limits.items()}


def episodes(split: dict, classes: list[int]) -> list[tuple[int, int]]:
    """Every (image index, class) with the class present in the image, in image order."""
    return [(i, c) for i, m in enumerate(split["full"]) for c in classes if (m == c).any()]


def binary_target(mask: torch.Tensor, cls: int) -> torch.Tensor:
    """1 where the mask is ``cls``, IGNORE on VOC's 255 border, 0 (\"others\") elsewhere."""
    mask = mask.long()
    return torch.where(mask == IGNORE, IGNORE, (mask == cls).long())


def episode_sampler(split: dict, eps: list[tuple[int, int]], batch: int, seed: int):
    """``step -> (images, targets, classes)``: random training episodes with random horizontal flips, a function of
    the step alone (so a resumed run sees the same batches)."""
    if not eps:
        raise ValueError("no training episode: none of the seen classes occurs in the training images")

    def batches(step: int):
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        pick = torch.randint(len(eps), (batch,), generator=g).tolist()
        x = to_tensor_images(split["images"][[eps[k][0] for k in pick]])
        y = torch.stack([binary_target(split["masks"][eps[k][0]], eps[k][1]) for k in pick])
        flip = torch.rand(batch, generator=g) < 0.5
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        return x, y, torch.tensor([eps[k][1] for k in pick])

    return batches


def episode_batches(split: dict, eps: list, sampler, seed: int):
    """``step -> (images, targets, classes)`` of this process's episodes of the step (``sampler``: a
    :class:`lib.recipe.EpochSampler`). Each episode's flip is drawn from its own (seed, epoch, episode) generator, so
    a step's global batch does not depend on how it is split over processes."""

    def batches(step: int):
        idx = sampler(step)
        epoch = sampler.epoch_of(step)
        x = to_tensor_images(split["images"][[eps[k][0] for k in idx]])
        y = torch.stack([binary_target(split["masks"][eps[k][0]], eps[k][1]) for k in idx])
        for j, k in enumerate(idx):
            g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + k)
            if torch.rand((), generator=g) < 0.5:
                x[j], y[j] = x[j].flip(-1), y[j].flip(-1)
        return x, y, torch.tensor([eps[k][1] for k in idx])

    return batches


def binary_logits(model, x: torch.Tensor, T: torch.Tensor, cls: torch.Tensor, size=None) -> torch.Tensor:
    """(B, 2, H, W) logits of each image over its own ``[others, class]`` (rows 0 and ``cls[b]`` of ``T``, the
    embeddings of ``[others] + CLASSES``): ``LSeg.forward`` with a label set per image."""
    T = T.to(x.device)
    return model(x, torch.stack([T[torch.zeros_like(cls)], T[cls]], dim=1), size=size)


@torch.no_grad()
def episode_counts(model, split: dict, eps: list[tuple[int, int]], T: torch.Tensor, positions) -> list[dict]:
    """The zero-shot protocol on the episodes ``eps[p]`` for ``p`` in ``positions``: each prediction (at the input
    size, upsampled to the mask's full size) against the full-size mask; per episode its I and U counts
    (:meth:`lib.lseg.metrics.EpisodeIoU.counts`)."""
    model.eval()
    dev = model.temperature.device
    out = []
    for pos in positions:
        i, c = eps[pos]
        x = to_tensor_images(split["images"][i:i + 1]).to(dev)
        full = split["full"][i].long()
        pred = binary_logits(model, x, T.to(dev), torch.tensor([c], device=dev), size=full.shape).argmax(1)[0].cpu()
        m = EpisodeIoU()
        m.update(pred == 1, full == c, c, ignore=full == IGNORE)
        out.append(m.counts())
    return out


def evaluate(model, split: dict, eps: list[tuple[int, int]], T: torch.Tensor) -> EpisodeIoU:
    """The zero-shot protocol over all of ``eps`` in this process: I and U accumulated per class."""
    m = EpisodeIoU()
    for counts in episode_counts(model, split, eps, T, range(len(eps))):
        m.add_counts(counts)
    return m


@torch.no_grad()
def evaluate_fold(model, split: dict, eps: list, T: torch.Tensor) -> dict:
    """The zero-shot protocol over ``eps`` split over the ranks: per-episode counts gathered in order, and the
    per-class sums all-reduced; both give the same numbers (``reduced_equals_gathered``)."""
    rank, world = train.distributed()
    mine = episode_counts(model, split, eps, T, recipe.rank_slice(len(eps), rank, world))
    per_episode = recipe.gather_in_order(mine, len(eps))
    gathered = EpisodeIoU()
    for counts in per_episode:
        gathered.add_counts(counts)
    # the same sums through an all-reduce: [I, U] per VOC class id, then the fg/bg sums
    sums = torch.zeros(len(CLASSES) + 3, 2, dtype=torch.float64)  # ids 0..20, then fg/bg
    local = EpisodeIoU()
    for counts in mine:
        local.add_counts(counts)
    for c, (i, u) in local.counts()["classes"].items():
        sums[c] = torch.tensor([i, u], dtype=torch.float64)
    sums[-2:] = torch.stack([local.fb_I, local.fb_U], 1)
    sums = recipe.all_reduce_sum(sums)
    reduced = EpisodeIoU().add_counts({"classes": {c: tuple(sums[c].tolist()) for c in gathered.I},
                                       "fb_I": sums[-2:, 0].tolist(), "fb_U": sums[-2:, 1].tolist()})
    return {"miou": gathered.miou(), "fb_iou": gathered.fb_iou(),
            "per_class": {CLASSES[c - 1]: v for c, v in sorted(gathered.per_class().items())},
            "episodes": len(eps), "world": world, "reduced_miou": reduced.miou(), "reduced_fb_iou": reduced.fb_iou(),
            "reduced_equals_gathered": reduced.miou() == gathered.miou() and reduced.fb_iou() == gathered.fb_iou(),
            "per_episode": [[c, *iu] for e in per_episode for c, iu in e["classes"].items()]}
