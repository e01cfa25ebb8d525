"""Chapter 3's settings, one frozen :class:`LSegChapterConfig` per scale (:data:`CONFIGS`), chosen with
``lib.scale.pick(CONFIGS, chapter="3")``.

Every scale runs the CPU miniature of the first sections (the composited Tux Paint data, MiniLM text, the nine
committed tiny runs). ``colab`` adds what the paper built: the frozen CLIP ViT-B/32 text tower with OpenAI's
weights, an LSeg over an ImageNet ViT-B/32 trained on the seen classes of one PASCAL-5i fold and evaluated zero-shot
on its unseen classes, and the official ViT-L/16 demo checkpoint on real photos. ``paper`` (an
:class:`LSegPaperConfig`) adds the full PASCAL-5i recipe, which runs as a command (``lib.lseg.recipe``, under
``torchrun``) and whose results the chapter reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from lib.lseg.training import TINY_RUNS
from lib.scale import ScaleConfig


@dataclass(frozen=True, kw_only=True)
class LSegChapterConfig(ScaleConfig):
    """Everything chapter 3 does differently at one scale (the model's sizes are ``lib.lseg.model.CONFIGS``)."""

    n_train: int                      # composited training images (seen labels only)
    n_test: int                       # test images (held-out and seen labels)
    image_size: int
    data_seed: int
    runs: tuple[tuple[str, str, int, int], ...]   # (text encoder, block arch, depth, seed) of each trained model
    official_demo: str | None         # an official checkpoint (lib.lseg.official.OFFICIAL_CHECKPOINTS) to show, or None
    # the real benchmark (None: not run at this scale)
    fold: int | None = None           # PASCAL-5i fold
    fold_runs: tuple[tuple[str, str, int, int], ...] = ()   # (text "clip"|"random", arch, depth, seed)
    fold_backbone: str = "vitb32_384"  # lib.lseg.model.CONFIGS name (ImageNet weights: lib.lseg.weights)
    fold_size: int = 384              # training and evaluation input size (square)
    fold_steps: int = 0
    fold_batch: int = 8
    fold_lr: float = 3e-4             # decoder; the pretrained ViT gets a tenth (the official 10× head rule)
    fold_train_limit: int | None = None   # first N VOC2012 train images (None: all 1,464)
    fold_val_limit: int | None = None     # first N VOC2012 val images (None: all 1,449)
    demo_size: int = 480              # the official demo's input size (the paper's 480×480)

    # the rehearsal: the same code path on the mirror's miniature files, small sizes and a few steps
    REHEARSAL: ClassVar[dict] = {"fold_size": 64, "fold_steps": 3, "fold_batch": 2, "fold_train_limit": 6,
                                 "fold_val_limit": 6, "demo_size": 64}


CONFIGS: dict[str, LSegChapterConfig] = {
    "tiny": LSegChapterConfig(scale="tiny", n_train=1200, n_test=300, image_size=64, data_seed=0,
                              runs=tuple(TINY_RUNS), official_demo=None),
    "colab": LSegChapterConfig(scale="colab", n_train=1200, n_test=300, image_size=64, data_seed=0,
                               runs=tuple(TINY_RUNS), official_demo="demo_e200", fold=0,
                               fold_runs=(("clip", "none", 0, 0), ("random", "none", 0, 0),
                                          ("clip", "bottleneck", 2, 0)),
                               fold_steps=600, fold_batch=8),
}


@dataclass(frozen=True, kw_only=True)
class LSegPaperConfig(LSegChapterConfig):
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
    gpus: int = 8                      # the paper's DDP world (the recipe runs on whatever torchrun starts)
    global_batch: int = 16             # images per optimiser step, over all processes
    base_lr: float = 0.004
    lr: float = 0.004 / 16 * 1         # base_lr / 16 × the per-process batch_size of the official run (1)
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
        ("fold_train_limit", "VOC2012's own 1,464 training images; HSNet's folds train on the 10,582 of SBD"),
        ("fold_size", "images resized to 480×480 with random flips; the official random scale (long side "
                      "260-1040) and 480 crop are not used"),
        ("test episodes", "every (val image, held-out class present) pair of VOC2012 val, not HSNet's 1,000"),
    )

    REHEARSAL: ClassVar[dict] = {"folds": (0,), "fold_backbone": "vitb32_384", "fold_size": 64, "global_batch": 2,
                                 "epochs": 2, "fold_train_limit": 8, "fold_val_limit": 8, "ckpt_every": 2}


CONFIGS["paper"] = LSegPaperConfig(scale="paper", n_train=1200, n_test=300, image_size=64, data_seed=0,
                                   runs=tuple(TINY_RUNS), official_demo=None, fold=None, fold_runs=(),
                                   fold_backbone="vitl16_384", fold_size=480, fold_batch=16, fold_lr=0.004 / 16)
