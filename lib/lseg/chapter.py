"""Chapter 3's settings, one frozen :class:`LSegChapterConfig` per scale (:data:`CONFIGS`), chosen with
``lib.scale.pick(CONFIGS, chapter="3")``.

Every scale runs the CPU miniature of the first sections (the composited Tux Paint data, MiniLM text, the nine
committed tiny runs). ``colab`` adds what the paper built: the frozen CLIP ViT-B/32 text tower with OpenAI's
weights, an LSeg over an ImageNet ViT-B/32 trained on the seen classes of one PASCAL-5i fold and evaluated zero-shot
on its unseen classes, and the official ViT-L/16 demo checkpoint on real photos.
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
