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
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as nnF
from PIL import Image

from lib import runtime, train
from lib.lseg import training, weights
from lib.lseg.data import IGNORE
from lib.lseg.metrics import EpisodeIoU
from lib.lseg.model import LSeg, config
from lib.lseg.text import CLIPText, RandomText
from lib.lseg.training import pixel_loss, to_tensor_images
from lib.storage import cache, checkpoint, download

VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
ROOT = "VOCdevkit/VOC2012"
# VOC's class ids 1..20; the label strings given to the text encoder (VOC's compound names split into words)
CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "dining table",
           "dog", "horse", "motorbike", "person", "potted plant", "sheep", "sofa", "train", "tv monitor"]
OTHERS = "others"
# the paper's zero-shot mIoU per PASCAL-5i fold (%), LSeg with the ResNet-101 image encoder (the authors' README)
PAPER_RN101 = {0: 52.8, 1: 53.8, 2: 44.4, 3: 38.5}


def fold_classes(fold: int) -> tuple[list[int], list[int]]:
    """(held-out class ids, seen class ids) of PASCAL-5^fold, ids 1..20."""
    if fold not in range(4):
        raise ValueError(f"PASCAL-5i has folds 0, 1, 2, 3; got {fold}")
    test = list(range(5 * fold + 1, 5 * fold + 6))
    return test, [c for c in range(1, 21) if c not in test]


def extract(url: str = VOC_URL) -> Path:
    """Download the VOC2012 archive once (sha256 recorded at first use) and extract its segmentation part
    (ImageSets/Segmentation, SegmentationClass and those JPEGImages) into the course cache; returns VOC2012/."""
    dest = cache.cache_dir("lseg", "voc")
    done = dest / ROOT / ".extracted"
    if not done.exists():
        tar_path = download.fetch(url, reader="tar")
        with tarfile.open(tar_path) as tf:
            members = tf.getmembers()
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


def episode_loss(T: torch.Tensor):
    """``loss_fn(model, batch)``: CE of each episode's logits over its own labels ``[others, class]``; ``T`` holds
    the text embeddings of ``[others] + CLASSES`` (row 0 "others", row c class c)."""

    def loss_fn(model, batch):
        dev = model.temperature.device
        x, y, cls = (t.to(dev) for t in batch)
        logits = binary_logits(model, x, T.to(dev), cls)
        return pixel_loss(logits, y)

    return loss_fn


def binary_logits(model, x: torch.Tensor, T: torch.Tensor, cls: torch.Tensor, size=None) -> torch.Tensor:
    """(B, 2, H, W) logits of each image over its own ``[others, class]`` (rows 0 and ``cls[b]`` of ``T``)."""
    I = model.forward_features(x)["pixel_embeddings"]
    Tn = nnF.normalize(T.float(), dim=1)
    pair = torch.stack([Tn[torch.zeros_like(cls)], Tn[cls]], dim=1)              # (B, 2, C)
    F = model.temperature * torch.einsum("bchw,bnc->bnhw", I, pair)
    F = model.scratch.head_block(F)
    return nnF.interpolate(F, size=size or x.shape[-2:], mode="bilinear", align_corners=True)


@torch.no_grad()
def evaluate(model, split: dict, eps: list[tuple[int, int]], T: torch.Tensor) -> EpisodeIoU:
    """The zero-shot protocol: each episode's prediction (at the input size, upsampled to the mask's full size)
    against the full-size mask; I and U accumulated per class."""
    model.eval()
    dev = model.temperature.device
    m = EpisodeIoU()
    for i, c in eps:
        x = to_tensor_images(split["images"][i:i + 1]).to(dev)
        full = split["full"][i].long()
        pred = binary_logits(model, x, T.to(dev), torch.tensor([c], device=dev), size=full.shape).argmax(1)[0].cpu()
        m.update(pred == 1, full == c, c, ignore=full == IGNORE)
    return m


def fold_text_encoder(kind: str, seed: int = 0):
    """'clip' (OpenAI's CLIP ViT-B/32 text tower, frozen) or 'random' (512-d random label vectors, the control)."""
    if kind == "clip":
        return CLIPText(pretrained="openai")
    if kind == "random":
        return RandomText(512, seed=2000 + seed)
    raise ValueError(f"text must be 'clip' or 'random', got {kind!r}")


def train_fold(cfg, data: dict, T: torch.Tensor, arch: str, depth: int, seed: int, device, ckpt_path=None,
               backbone_state: dict | None = None, progress: bool = True) -> tuple:
    """An LSeg over the ImageNet ViT (``backbone_state``) trained on the seen classes of a PASCAL-5i fold (episodes
    ``[others, class]``). AdamW, poly decay, the ViT at a tenth of the decoder's rate.
    Resumable through ``ckpt_path``. Returns (model, history)."""
    runtime.seed_everything(seed)
    model = LSeg(config(cfg.fold_backbone, arch=arch, depth=depth if arch != "none" else 0, out_c=T.shape[1]))
    if backbone_state is not None:
        checkpoint.load_state(model.pretrained.model, backbone_state, "the ImageNet ViT weights")
    model.to(device)
    vit = list(model.pretrained.model.parameters())
    ids = {id(p) for p in vit}
    rest = [p for p in model.parameters() if id(p) not in ids]
    opt = torch.optim.AdamW([{"params": vit, "lr": cfg.fold_lr / 10}, {"params": rest, "lr": cfg.fold_lr}],
                            weight_decay=1e-4)
    seen = fold_classes(cfg.fold)[1]
    batches = episode_sampler(data["train"], episodes(data["train"], seen), cfg.fold_batch, seed)
    history = train.fit(model, batches, episode_loss(T), opt, cfg.fold_steps,
                        scheduler=training.poly_schedule(opt, cfg.fold_steps), ckpt_path=ckpt_path,
                        ckpt_every=max(1, min(100, cfg.fold_steps // 3)), log_every=max(1, cfg.fold_steps // 50),
                        progress=progress)
    return model.eval(), history


def fold_experiment(cfg, device, progress: bool = True) -> dict | None:
    """The chapter's PASCAL-5i experiment for ``cfg`` (:class:`lib.lseg.chapter.LSegChapterConfig`): every run of
    ``cfg.fold_runs`` trained on the fold's seen classes and evaluated on its held-out ones. ``None`` when the
    configuration names no fold. Each run is cached (``lib.storage.cache.memo``) and its training resumable; a run's
    training file is deleted once its result is cached."""
    if cfg.fold is None or not cfg.fold_runs:
        return None
    held, seen = fold_classes(cfg.fold)
    data = vit = None
    labels = [OTHERS] + CLASSES
    out = {"fold": cfg.fold, "held_out": [CLASSES[c - 1] for c in held], "runs": {}}
    for text, arch, depth, seed in cfg.fold_runs:
        name = training.run_name(text, arch, depth, seed)
        key = cache.key("lseg-pascal5i", run=name, fold=cfg.fold, backbone=cfg.fold_backbone, size=cfg.fold_size,
                        steps=cfg.fold_steps, batch=cfg.fold_batch, lr=cfg.fold_lr,
                        train_limit=cfg.fold_train_limit, val_limit=cfg.fold_val_limit)

        def run():
            nonlocal data, vit
            if data is None:  # read once, and only if some run is not cached yet
                root = extract()
                data = {"train": load_split(root, "train", cfg.fold_size, cfg.fold_train_limit),
                        "val": load_split(root, "val", cfg.fold_size, cfg.fold_val_limit)}
                vit = weights.timm_vit()
            enc = fold_text_encoder(text, seed)
            T = enc(labels)
            t0 = time.time()
            model, history = train_fold(
                cfg, data, T, arch, depth, seed, device, backbone_state=vit, progress=progress,
                ckpt_path=cache.work_path(key))
            seconds = time.time() - t0
            eps = episodes(data["val"], held)
            m = evaluate(model, data["val"], eps, T)
            return {"miou": m.miou(), "fb_iou": m.fb_iou(), "text": enc.name, "train_seconds": seconds,
                    "per_class": {CLASSES[c - 1]: v for c, v in sorted(m.per_class().items())},
                    "history": history, "n_test_episodes": len(eps),
                    "n_train_episodes": len(episodes(data["train"], seen)),
                    "n_train_images": len(data["train"]["ids"]), "n_val_images": len(data["val"]["ids"])}

        out["runs"][name] = cache.memo(key, run)
        # the result is stored: the run's training file (a ViT-L/16 LSeg, 1.3 GB) is no longer needed to resume
        cache.work_path(key).unlink(missing_ok=True)
    return out
