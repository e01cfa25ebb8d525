"""Chapter 3's settings, one frozen :class:`LSegConfig` per scale (:data:`CONFIGS`), chosen with
``lib.scale.pick(CONFIGS, chapter="3")``, built from small parts: each part is one thing the chapter does, and a
scale that does not do it has ``None`` there.

Every scale runs the CPU miniature of the first sections (:class:`TinyData` and the nine committed :class:`Run`
models). ``colab`` adds what the paper built: an LSeg over an ImageNet ViT-B/32 trained on the seen classes of one
PASCAL-5i fold with the frozen CLIP ViT-B/32 text tower and evaluated zero-shot on its unseen classes
(:class:`PascalFold`), and the official ViT-L/16 demo checkpoint on real photos (:class:`OfficialDemo`). ``paper``
adds the full PASCAL-5i recipe (:class:`PaperRecipe`), which runs as a command (``lib.lseg.recipe``, under
``torchrun``) and whose results the chapter reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from lib.scale import ScaleConfig


class Run(NamedTuple):
    """One trained model: its text encoder, its spatial blocks (arch, depth) and its seed."""

    text: str     # tiny: "minilm" | "random"; PASCAL-5i: "clip" | "random"
    arch: str     # spatial regularization: none | bottleneck | depthwise
    depth: int
    seed: int

    @property
    def name(self) -> str:
        """``minilm-bottleneck2-seed0``, ``clip-none-seed0``."""
        return f"{self.text}-{self.arch}{self.depth if self.arch != 'none' else ''}-seed{self.seed}"


@dataclass(frozen=True)
class Part:
    """A part of a configuration; ``REHEARSAL`` shrinks it for the rehearsal (every code path, a few steps)."""

    REHEARSAL: ClassVar[dict] = {}

    def rehearsed(self):
        return dataclasses.replace(self, **self.REHEARSAL)


@dataclass(frozen=True)
class TinyData(Part):
    """The composited Tux Paint data (``lib.lseg.data.tiny_dataset``)."""

    n_train: int = 1200      # training images (seen labels only)
    n_test: int = 300        # test images (held-out and seen labels)
    image_size: int = 64
    seed: int = 0


@dataclass(frozen=True)
class PascalFold(Part):
    """One PASCAL-5i fold, trained on its seen classes and evaluated zero-shot on its held-out ones
    (``lib.lseg.experiment.fold_experiment``): AdamW with poly decay, the pretrained ViT at a tenth of ``lr``."""

    fold: int
    runs: tuple[Run, ...]            # text "clip" | "random"
    backbone: str = "vitb32_384"     # lib.lseg.model.ARCHITECTURES name (ImageNet weights: lib.lseg.weights)
    size: int = 384                  # training and evaluation input size (square)
    steps: int = 600
    batch: int = 8
    lr: float = 3e-4                 # decoder; the pretrained ViT gets a tenth (the official 10× head rule)
    train_limit: int | None = None   # first N VOC2012 train images (None: all 1,464)
    val_limit: int | None = None     # first N VOC2012 val images (None: all 1,449)

    REHEARSAL: ClassVar[dict] = {"size": 64, "steps": 3, "batch": 2, "train_limit": 6, "val_limit": 6}


@dataclass(frozen=True)
class OfficialDemo(Part):
    """An official checkpoint (``lib.lseg.official.OFFICIAL_CHECKPOINTS``) shown on photos at ``size``²."""

    checkpoint: str
    size: int = 480                  # the paper's 480×480

    REHEARSAL: ClassVar[dict] = {"size": 64}


@dataclass(frozen=True)
class PaperRecipe(Part):
    """The paper's zero-shot recipe on the PASCAL-5i folds (``python -m lib.lseg.recipe``), one model per fold.

    From the official code (``modules/lsegmentation_module_zs.py``, ``train.sh``, ``modules/lseg_module.py``): SGD
    with momentum 0.9 and weight decay 1e-4; learning rate ``base_lr / 16 × batch_size`` with ``base_lr = 0.004`` and
    the per-process ``batch_size`` (1, with 2 batches accumulated: 16 images per step on 8 GPUs); the image
    encoder at that rate, the decoder ("scratch") at 10×; poly decay ``(1 - epoch / epochs) ** 0.9`` stepped once
    per epoch; 240 epochs; crop 480; DDP with SyncBatchNorm on 8 GPUs; the ViT-L/16 image encoder and CLIP
    ViT-B/32 text, no spatial regularization blocks (``arch_option 0``). What the paper and code leave open, or what
    the course does differently, is listed in ``course_choices``.
    """

    folds: tuple[int, ...] = (0, 1, 2, 3)
    backbone: str = "vitl16_384"
    size: int = 480
    train_limit: int | None = None
    val_limit: int | None = None
    gpus: int = 8                      # the paper's DDP world (the recipe runs on whatever torchrun starts)
    global_batch: int = 16             # images per optimiser step, over all processes
    base_lr: float = 0.004             # lr = base_lr / 16 × the official per-process batch (1)
    head_lr_mult: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    epochs: int = 240
    sync_bn: bool = True               # SyncBatchNorm on GPUs (torch has it for CUDA only)
    ckpt_every: int = 500              # optimiser steps between checkpoints
    seed: int = 0
    # {field: why}: values the paper does not give (or the course changes), shown by the chapter
    course_choices: tuple[tuple[str, str], ...] = (
        ("folds", "the paper's PASCAL-5i numbers; the published train.sh trains ADE20K, and no zero-shot training "
                  "script was released: the ADE20K settings are used for each fold"),
        ("global_batch", "1 image per GPU × 2 accumulated × 8 GPUs in train.sh; here 2 images per GPU in one "
                         "batch (no accumulation: BatchNorm sees 2 images, not 1)"),
        ("epochs", "train.sh's 240 (ADE20K); the zero-shot folds' epoch count is not published"),
        ("train_limit", "VOC2012's own 1,464 training images; HSNet's folds train on the 10,582 of SBD"),
        ("size", "images resized to 480×480 with random flips; the official random scale (long side "
                 "260-1040) and 480 crop are not used"),
        ("test episodes", "every (val image, held-out class present) pair of VOC2012 val, not HSNet's 1,000"),
    )

    REHEARSAL: ClassVar[dict] = {"folds": (0,), "backbone": "vitb32_384", "size": 64, "global_batch": 2,
                                 "epochs": 2, "train_limit": 8, "val_limit": 8, "ckpt_every": 2}

    @property
    def lr(self) -> float:
        """The image encoder's learning rate: ``base_lr / 16`` × the official per-process batch of 1."""
        return self.base_lr / 16 * 1


# the nine committed tiny runs: three seeds each of MiniLM text with bottleneck×2 blocks, without blocks, and the
# random-vector control
TINY_RUNS = tuple(Run(text, arch, depth, s) for text, arch, depth in
                  (("minilm", "bottleneck", 2), ("minilm", "none", 0), ("random", "bottleneck", 2)) for s in range(3))


@dataclass(frozen=True, kw_only=True)
class LSegConfig(ScaleConfig):
    """Everything chapter 3 does at one scale (the model's sizes are ``lib.lseg.model.ARCHITECTURES``)."""

    data: TinyData
    runs: tuple[Run, ...]                 # the committed tiny runs
    pascal: PascalFold | None = None      # the PASCAL-5i fold study (None: not run at this scale)
    demo: OfficialDemo | None = None      # the official checkpoint on photos (None: not shown)
    recipe: PaperRecipe | None = None     # the paper recipe whose results the chapter reads (None: not read)

    def rehearsed(self) -> "LSegConfig":
        """This configuration with every part's rehearsal budget applied and ``rehearsal=True``."""
        parts = {f.name: getattr(self, f.name).rehearsed() for f in dataclasses.fields(self)
                 if isinstance(getattr(self, f.name), Part)}
        return dataclasses.replace(self, **parts, rehearsal=True)

    def describe(self) -> dict:
        """The fields as a plain dict, each part's fields under ``part.field`` (tuples as lists)."""
        out = {"config": type(self).__name__, "scale": self.scale, "rehearsal": self.rehearsal}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Part):
                out.update({f"{f.name}.{k}": _plain(x) for k, x in dataclasses.asdict(v).items()})
            elif f.name not in out:
                out[f.name] = _plain(v)
        return out


def _plain(v):
    if isinstance(v, Run):
        return v.name
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    return v


CONFIGS: dict[str, LSegConfig] = {
    "tiny": LSegConfig(scale="tiny", data=TinyData(), runs=TINY_RUNS),
    "colab": LSegConfig(scale="colab", data=TinyData(), runs=TINY_RUNS,
                        pascal=PascalFold(fold=0, runs=(Run("clip", "none", 0, 0), Run("random", "none", 0, 0),
                                                        Run("clip", "bottleneck", 2, 0))),
                        demo=OfficialDemo("demo_e200")),
    "paper": LSegConfig(scale="paper", data=TinyData(), runs=TINY_RUNS, recipe=PaperRecipe()),
}
