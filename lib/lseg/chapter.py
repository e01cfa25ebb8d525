"""Chapter 3's settings, one frozen :class:`LSegChapterConfig` per scale (:data:`CONFIGS`), chosen with
``lib.scale.pick(CONFIGS, chapter="3")``.

Only ``tiny`` is built: the data set the chapter composes, the nine committed runs, and no official checkpoint.
The ``colab`` path (CLIP text, the official ViT-L/16 checkpoints, PASCAL-5i / FSS-1000) is issue 13: with
``COURSE_SCALE=colab`` the chapter stops at its configuration cell with :class:`lib.scale.ScaleNotBuilt`.
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

    ISSUE: ClassVar[int] = 13
    REHEARSAL: ClassVar[dict] = {}


CONFIGS: dict[str, LSegChapterConfig] = {
    "tiny": LSegChapterConfig(scale="tiny", n_train=1200, n_test=300, image_size=64, data_seed=0,
                              runs=tuple(TINY_RUNS), official_demo=None),
}
