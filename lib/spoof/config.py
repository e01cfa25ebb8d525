"""Chapter 2's settings per scale: ``lib.scale.pick(CONFIGS, chapter="2")``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from lib.scale import ScaleConfig

from . import partialspoof as P


@dataclass(frozen=True, kw_only=True)
class SpoofConfig(ScaleConfig):
    """Chapter 2's settings at one scale.

    ``data="built"`` (tiny): the offline corpus of ``lib.spoof.data`` and the small log-spectrum CM;
    ``data="real"`` (colab): subsets of PartialSpoof v1.2 and ASVspoof 2019 LA (``lib.spoof.partialspoof``) and the
    paper's SSL-Res1D on XLSR-53 (``build_ssl_res1d``)."""

    data: str = "built"            # "built" or "real"
    splices: tuple[str, ...] = ("hard", "xfade", "clean")   # splice conditions; the first is the main one
    steps: int                     # training steps of each countermeasure
    seeds: tuple[int, ...]
    batch_size: int = 32
    lr: float = 1e-3
    crop_s: float = 3.0            # random training crops of at most this length
    eval_batch: int = 32           # utterances per scoring / Grad-CAM batch
    # built corpus (tiny)
    n_utts: int | None = None      # bona fide utterances of the corpus
    data_seed: int = 0
    gain_db: float | None = None   # level jump of a spliced donor (up to ±)
    shift_s: float | None = None   # donor offset (25-50 ms: shift_s/2 to shift_s)
    tr_width: float | None = None  # width of a transition span (s); real data: TR spans narrower are widened to it
    xfade_s: float | None = None   # cross-fade of the "xfade" and "clean" splices
    langs: tuple[str, ...] | None = None  # None: every language of lib.spoof.data.LANGS
    # real data (colab)
    frozen_ssl: bool = True        # XLSR-53 weights frozen (only the layer weights, back-end and head train)
    eval_split: str = "eval"       # the split of the RCQ tables (real data: the PartialSpoof split; the paper's column)
    n_train: dict | None = None    # {"bona", "partial", "full"}: training utterances drawn from each protocol
    n_eval: dict | None = None     # {"bona", "partial", "full"}: evaluation utterances
    keep_archives: bool = False    # False: delete each archive once its subset is extracted (Drive quota)
    labels: str = "public"         # "public": five types derived from database_vad + segment labels (derive_segments);
    #                                "authors": the authors' five-code .vad files, read from authors_vad/{split}/
    authors_vad: str | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.labels not in P.LABEL_FORMATS:
            raise ValueError(f"labels must be one of {P.LABEL_FORMATS} ('public': derived from the public label "
                             f"archives; 'authors': the authors' five-code files), not {self.labels!r}")
        if self.labels == "authors" and not self.authors_vad:
            raise ValueError("labels='authors' needs authors_vad, the folder holding {split}/{utterance}.vad in the "
                             "authors' five-code format (as wedefense's XAI_Score_analysis.py reads them)")

    REHEARSAL: ClassVar[dict] = {"steps": 2, "batch_size": 2, "crop_s": 1.0, "eval_batch": 2,
                                 "n_train": {"bona": 2, "partial": 2, "full": 2},
                                 "n_eval": {"bona": 2, "partial": 3, "full": 2}}


CONFIGS: dict[str, SpoofConfig] = {
    "tiny": SpoofConfig(scale="tiny", n_utts=360, data_seed=0, gain_db=6.0, shift_s=0.05, tr_width=0.06, xfade_s=0.01,
                        steps=300, seeds=(0, 1, 2), langs=None),
    "colab": SpoofConfig(scale="colab", data="real", splices=("real",), steps=600, seeds=(0,), batch_size=16,
                         lr=1e-3, crop_s=3.0, eval_batch=8, tr_width=0.06, frozen_ssl=True, eval_split="dev",
                         n_train={"bona": 1000, "partial": 1000, "full": 1000},
                         n_eval={"bona": 300, "partial": 1000, "full": 300}),
}
TINY = CONFIGS["tiny"]
VERSION = "2"          # of the countermeasure runs
BASE_VERSION = "1"     # of the corpus (bona fide + vocoded copies + VAD)
