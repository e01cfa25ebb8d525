"""Training LSeg: cross-entropy over the offered labels, ignore index, poly schedule; the tiny runs and the
PASCAL-5i folds.

The official recipe (LSeg code, ``lseg_module.py``): CE with ``ignore_index`` over the full label set of the data
set, SGD (momentum 0.9, wd 1e-4, lr 0.004/16 × batch, head 10× lr), poly decay (1 - it/max)^0.9. At ``tiny`` scale
the model is trained from scratch, so we use AdamW (the same poly decay): SGD from scratch needs many more steps.
A PASCAL-5i fold (:func:`train_fold`) starts from an ImageNet ViT and trains on episodes ``[others, class]``
(:func:`episode_loss`). The loop itself is ``lib.train.fit`` (resumable, DDP-ready).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as nnF

from lib import runtime, train, validate
from lib.lseg import pascal
from lib.lseg.config import TINY_RUNS, PascalFold, Run
from lib.lseg.data import DATA_VERSION, IGNORE, to_tensor_images
from lib.lseg.metrics import ConfusionMatrix
from lib.lseg.model import LSeg, architecture
from lib.lseg.text import CLIPText, MiniLMText, RandomText
from lib.storage import cache, checkpoint
from lib.storage.hashes import verify


def poly_schedule(optimizer, steps: int, power: float = 0.9):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps) ** power)


def remap(labels: torch.Tensor, offered: list[int]) -> torch.Tensor:
    """Global label ids → positions in the offered label list; ids not offered (and IGNORE) → IGNORE."""
    offered = validate.distinct(offered, "offered")
    lut = torch.full((256,), IGNORE, dtype=torch.long)
    lut[torch.as_tensor(offered)] = torch.arange(len(offered))
    return lut[labels.long()]


def batch_sampler(split: dict, batch_size: int, seed: int):
    """``step -> (images, labels)``: a function of the step alone (so a resumed run sees the same batches)."""
    X, Y = to_tensor_images(split["images"]), torch.as_tensor(split["labels"])

    def batches(step: int):
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(len(X), (batch_size,), generator=g)
        x, y = X[idx], Y[idx]
        flip = torch.rand(batch_size, generator=g) < 0.5
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        return x, y

    return batches


def pixel_loss(logits: torch.Tensor, target: torch.Tensor) -> dict:
    """Per-pixel cross-entropy over the offered labels (IGNORE pixels left out), and the pixel accuracy."""
    loss = nnF.cross_entropy(logits, target, ignore_index=IGNORE)
    with torch.no_grad():
        keep = target != IGNORE
        acc = (logits.argmax(1)[keep] == target[keep]).float().mean()
    return {"loss": loss, "pixel_acc": acc}


def lseg_loss(T: torch.Tensor, offered: list[int]):
    """``loss_fn(model, (x, y))``: CE (ignore_index) of the logits over the ``offered`` labels' embeddings ``T``."""
    offered = validate.distinct(offered, "offered")
    if len(offered) < 2:
        raise ValueError("training needs at least two offered labels (with one, every pixel is that label and "
                         "the cross-entropy is zero)")

    def loss_fn(model: LSeg, batch):
        x, y = batch
        logits = model(x, T)
        return pixel_loss(logits, remap(y, offered))

    return loss_fn


@torch.no_grad()
def predict(model: LSeg, images, T: torch.Tensor, batch_size: int = 50) -> torch.Tensor:
    """Argmax label positions (N, H, W) for images (N, H, W, 3), uint8 or float in [0, 1], and label embeddings
    T (K, C)."""
    model.eval()
    X = to_tensor_images(images)
    return torch.cat([model(X[i:i + batch_size], T).argmax(1) for i in range(0, len(X), batch_size)])


def evaluate(pred: torch.Tensor, labels, offered: list[int]) -> ConfusionMatrix:
    """Confusion matrix over the offered labels (positions), ground truth remapped; pixels of labels not offered
    are ignored."""
    cm = ConfusionMatrix(len(offered), ignore_index=IGNORE)
    cm.update(pred, remap(torch.as_tensor(labels), offered))
    return cm


# ---------------------------------------------------------------------------------------------------- tiny runs
TINY_RECIPE = {"steps": 600, "batch": 8, "lr": 2e-3, "weight_decay": 1e-4}


_MINILM = None


def text_encoder(kind: str, seed: int = 0):
    """'minilm' (the real frozen text space at tiny scale) or 'random' (the control: one random vector per label)."""
    if kind == "minilm":
        global _MINILM
        if _MINILM is None:  # one instance (and one embedding cache) per process
            _MINILM = MiniLMText()
        return _MINILM
    if kind == "random":
        return RandomText(384, seed=1000 + seed)
    raise ValueError(f"text must be 'minilm' or 'random', got {kind!r}")


def fold_text_encoder(kind: str, seed: int = 0):
    """'clip' (OpenAI's CLIP ViT-B/32 text tower, frozen) or 'random' (512-d random label vectors, the control)."""
    if kind == "clip":
        return CLIPText(pretrained="openai")
    if kind == "random":
        return RandomText(512, seed=2000 + seed)
    raise ValueError(f"text must be 'clip' or 'random', got {kind!r}")


def run_name(text: str, arch: str, depth: int, seed: int) -> str:
    """The name of a run (:attr:`lib.lseg.config.Run.name`): ``minilm-bottleneck2-seed0``."""
    return Run(text, arch, depth, seed).name


def work_path(name: str, steps: int | None = None):
    """The resumable training file of a tiny run in the course cache, keyed by its steps and the data version (a
    finished file from other data must never be resumed)."""
    return cache.work_path(cache.key("lseg-tiny", run=name, steps=steps or TINY_RECIPE["steps"]), DATA_VERSION)


def train_tiny(ds: dict, text: str = "minilm", arch: str = "bottleneck", depth: int = 2, seed: int = 0,
               steps: int | None = None, ckpt_path=None, progress: bool = False, **recipe) -> tuple:
    """Train the tiny LSeg on the seen labels of ``ds`` (from :func:`lib.lseg.data.tiny_dataset`).

    Returns (model, history, encoder). Resumable through ``ckpt_path`` (``lib.train.fit``)."""
    r = {**TINY_RECIPE, **recipe, **({"steps": steps} if steps else {})}
    runtime.seed_everything(seed)
    enc = text_encoder(text, seed)
    T = enc(ds["names"])
    model = LSeg(architecture("tiny", arch=arch, depth=depth if arch != "none" else 0, out_c=enc.width))
    offered = [0] + list(ds["seen"])
    opt = torch.optim.AdamW(model.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
    history = train.fit(model, batch_sampler(ds["train"], r["batch"], seed), lseg_loss(T[offered], offered), opt,
                        r["steps"], scheduler=poly_schedule(opt, r["steps"]), ckpt_path=ckpt_path,
                        ckpt_every=100, log_every=20, progress=progress)
    model.eval()
    return model, history, enc


# committed tiny runs; $COURSE_LSEG_CHECKPOINTS points elsewhere (e.g. a shortened set for a quick dry run)
CHECKPOINT_DIR = Path(os.environ.get("COURSE_LSEG_CHECKPOINTS") or Path(__file__).parent / "checkpoints")


def pack(model: LSeg, history: list, name: str, steps=None) -> dict:
    """A plain, small checkpoint: fp16 float weights, the config fields, the history."""
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    cfg = model.cfg
    return {"state_dict": sd, "history": history, "name": name,
            "arch": cfg.arch, "depth": cfg.depth, "out_c": cfg.out_c}


def manifest(directory=None) -> dict:
    """``MANIFEST.json`` of the committed tiny runs: per run its sha256, steps, training seconds and command."""
    directory = CHECKPOINT_DIR if directory is None else Path(directory)
    return json.loads((directory / "MANIFEST.json").read_text())


def load_tiny(name: str, ds: dict | None = None, directory=None):
    """(model, history, encoder) of a committed tiny run, sha256-checked against MANIFEST.json; if the file is
    absent, the run is trained here (same code as ``scripts/lseg_train_tiny.py``) and cached."""
    directory = CHECKPOINT_DIR if directory is None else Path(directory)
    runs = {r.name: r for r in TINY_RUNS}
    if name not in runs:
        raise ValueError(f"unknown tiny run {name!r}; known: {sorted(runs)}")
    text, arch, depth, seed = runs[name]
    path = directory / f"{name}.pt"
    if not path.exists():
        if ds is None:
            raise ValueError("the run is not committed: pass the data set so that it can be trained")
        return train_tiny(ds, text, arch, depth, seed, ckpt_path=work_path(name))
    entry = manifest(directory)[name]
    verify(path, entry["sha256"], "MANIFEST.json", f"it was changed after training; retrain with: {entry['command']}")
    state = checkpoint.load(path)
    enc = text_encoder(text, seed)
    model = LSeg(architecture("tiny", arch=state["arch"], depth=state["depth"], out_c=state["out_c"]))
    checkpoint.load_state(model, {k: v.float() if v.is_floating_point() else v for k, v in state["state_dict"].items()},
                        path)
    return model.eval(), state["history"], enc


# ---------------------------------------------------------------------------------------------------- PASCAL-5i
def episode_loss(T: torch.Tensor, freeze_bn: bool = False):
    """``loss_fn(model, (images, targets, classes))``: each episode's CE over its own labels ``[others, class]``
    (:func:`lib.lseg.pascal.binary_logits`, through the model's forward so that DDP sees it); ``T`` holds the text
    embeddings of ``[others] + CLASSES``. ``freeze_bn``: BatchNorm layers use their running statistics (to compare
    processes on CPU, where torch has no SyncBatchNorm)."""

    def loss_fn(model, batch):
        if freeze_bn:
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        dev = next(model.parameters()).device
        x, y, cls = (t.to(dev) for t in batch)
        return pixel_loss(pascal.binary_logits(model, x, T.to(dev), cls), y)

    return loss_fn


def train_fold(part: PascalFold, data: dict, T: torch.Tensor, run: Run, device, ckpt_path=None,
               backbone_state: dict | None = None, progress: bool = True) -> tuple:
    """An LSeg over the ImageNet ViT (``backbone_state``) trained on the seen classes of a PASCAL-5i fold (episodes
    ``[others, class]``). AdamW, poly decay, the ViT at a tenth of the decoder's rate.
    Resumable through ``ckpt_path``. Returns (model, history)."""
    runtime.seed_everything(run.seed)
    model = LSeg(architecture(part.backbone, arch=run.arch, depth=run.depth if run.arch != "none" else 0,
                              out_c=T.shape[1]))
    if backbone_state is not None:
        checkpoint.load_state(model.pretrained.model, backbone_state, "the ImageNet ViT weights")
    model.to(device)
    vit = list(model.pretrained.model.parameters())
    ids = {id(p) for p in vit}
    rest = [p for p in model.parameters() if id(p) not in ids]
    opt = torch.optim.AdamW([{"params": vit, "lr": part.lr / 10}, {"params": rest, "lr": part.lr}],
                            weight_decay=1e-4)
    seen = pascal.fold_classes(part.fold)[1]
    batches = pascal.episode_sampler(data["train"], pascal.episodes(data["train"], seen), part.batch, run.seed)
    history = train.fit(model, batches, episode_loss(T), opt, part.steps,
                        scheduler=poly_schedule(opt, part.steps), ckpt_path=ckpt_path,
                        ckpt_every=max(1, min(100, part.steps // 3)), log_every=max(1, part.steps // 50),
                        progress=progress)
    return model.eval(), history
