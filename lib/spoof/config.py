"""Chapter 2's settings per scale: ``lib.scale.pick(CONFIGS, chapter="2")``.

A configuration is three small parts: where the data come from (:class:`BuiltCorpus`, the offline corpus of
``lib.spoof.data``, or :class:`RealSubsets` of PartialSpoof v1.2 and ASVspoof 2019 LA), which countermeasure
trains (:class:`TinyCM`, the small log-spectrum CM, or :class:`SSLRes1D`, the paper's SSL-Res1D on XLSR-53), and
how it trains (:class:`Training`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from lib.scale import ScaleConfig

from .partialspoof_labels import LABEL_FORMATS
from .ssl_res1d import build_ssl_res1d, tiny_cm


@dataclass(frozen=True, kw_only=True)
class Training:
    """How each countermeasure trains and is scored."""
    steps: int                     # training steps of each countermeasure
    seeds: tuple[int, ...]         # one pair of countermeasures (full- and partial-spoof trained) per seed
    batch_size: int = 32           # utterances per training batch, half bona fide and half spoofed
    lr: float = 1e-3               # Adam's learning rate
    crop_s: float = 3.0            # random training crops of at most this length (s)
    eval_batch: int = 32           # utterances per scoring / Grad-CAM batch (memory only: the scores do not change)


@dataclass(frozen=True, kw_only=True)
class BuiltCorpus:
    """The offline corpus of ``lib.spoof.data``: bona fide speech, vocoded copies, splices under three conditions."""
    n_utts: int                    # bona fide utterances of the corpus
    data_seed: int = 0
    gain_db: float                 # level jump of a spliced donor (up to ±)
    shift_s: float                 # donor offset (25-50 ms: shift_s/2 to shift_s)
    tr_width: float                # width of a transition span (s)
    xfade_s: float                 # cross-fade of the "xfade" and "clean" splices
    langs: tuple[str, ...] | None = None  # None: every language of lib.spoof.data.LANGS
    splices: tuple[str, ...] = ("hard", "xfade", "clean")   # splice conditions; the first is the main one

    eval_split: ClassVar[str] = "eval"   # the paper's column our numbers stand beside


@dataclass(frozen=True, kw_only=True)
class RealSubsets:
    """Seeded subsets of PartialSpoof v1.2 (bona fide, partial spoofs) and ASVspoof 2019 LA (fully spoofed)."""
    n_train: dict                  # {"bona", "partial", "full"}: training utterances drawn from each protocol
    n_eval: dict                   # {"bona", "partial", "full"}: evaluation utterances
    eval_split: str = "eval"       # the split of the RCQ tables (the PartialSpoof split; the paper's column)
    data_seed: int = 0
    tr_width: float = 0.06         # TR spans narrower than this are widened to it (s)
    keep_archives: bool = False    # False: delete each archive once its subset is extracted (disk only)
    labels: str = "public"         # "public": five types derived from database_vad + segment labels;
    #                                "authors": the authors' five-code .vad files, read from authors_vad/{split}/
    authors_vad: str | None = None

    splices: ClassVar[tuple[str, ...]] = ("real",)   # one condition: PartialSpoof's own joins

    def __post_init__(self):
        if self.labels not in LABEL_FORMATS:
            raise ValueError(f"labels must be one of {LABEL_FORMATS} ('public': derived from the public label "
                             f"archives; 'authors': the authors' five-code files), not {self.labels!r}")
        if self.labels == "authors" and not self.authors_vad:
            raise ValueError("labels='authors' needs authors_vad, the folder holding {split}/{utterance}.vad in the "
                             "authors' five-code format (as wedefense's XAI_Score_analysis.py reads them)")
        for name in ("n_train", "n_eval"):
            if set(getattr(self, name)) != {"bona", "partial", "full"}:
                raise ValueError(f"{name} must give counts for 'bona', 'partial' and 'full', got "
                                 f"{sorted(getattr(self, name))}")


@dataclass(frozen=True)
class TinyCM:
    """The small log-spectrum CM with SSL-Res1D's back-end (``lib.spoof.ssl_res1d.tiny_cm``)."""

    def key(self) -> dict:
        """What a run's memo key says about the model: nothing (the first countermeasure the chapter keyed)."""
        return {}

    def factory(self):
        return tiny_cm


@dataclass(frozen=True, kw_only=True)
class SSLRes1D:
    """The paper's SSL-Res1D on pretrained XLSR-53 (``lib.spoof.ssl_res1d.build_ssl_res1d``)."""
    frozen: bool = True            # XLSR-53 weights frozen (only the layer weights, back-end and head train)

    def key(self) -> dict:
        """What a run's memo key says about the model."""
        return {"frozen_ssl": self.frozen}

    def factory(self):
        return lambda: build_ssl_res1d(pretrained=True, frozen=self.frozen)


@dataclass(frozen=True, kw_only=True)
class SpoofConfig(ScaleConfig):
    """Chapter 2's settings at one scale: a data source, a countermeasure and its training."""

    data: BuiltCorpus | RealSubsets
    model: TinyCM | SSLRes1D
    train: Training

    REHEARSAL: ClassVar[dict] = {"train": {"steps": 2, "batch_size": 2, "crop_s": 1.0, "eval_batch": 2},
                                 "data": {"n_train": {"bona": 2, "partial": 2, "full": 2},
                                          "n_eval": {"bona": 2, "partial": 3, "full": 2}}}

    def rehearsed(self) -> "SpoofConfig":
        """This configuration with each part's rehearsal budget (``REHEARSAL``) applied and ``rehearsal=True``."""
        parts = {name: dataclasses.replace(getattr(self, name), **changes) for name, changes in self.REHEARSAL.items()}
        return dataclasses.replace(self, **parts, rehearsal=True)

    @property
    def splices(self) -> tuple[str, ...]:
        """The splice conditions of the data source; the first is the main one."""
        return self.data.splices

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.train.seeds

    @property
    def eval_split(self) -> str:
        """The PartialSpoof split our RCQ tables stand beside."""
        return self.data.eval_split

    def describe(self) -> dict:
        """The fields as a plain dict, each part as ``{"source": its class, **its fields}``."""
        out = super().describe()
        for name in ("data", "model", "train"):
            part = getattr(self, name)
            out[name] = {"source": type(part).__name__,
                         **{k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(part).items()}}
        return out


CONFIGS: dict[str, SpoofConfig] = {
    "tiny": SpoofConfig(scale="tiny", data=BuiltCorpus(n_utts=360, data_seed=0, gain_db=6.0, shift_s=0.05,
                                                       tr_width=0.06, xfade_s=0.01),
                        model=TinyCM(), train=Training(steps=300, seeds=(0, 1, 2))),
    "colab": SpoofConfig(scale="colab",
                         data=RealSubsets(eval_split="dev", tr_width=0.06,
                                          n_train={"bona": 1000, "partial": 1000, "full": 1000},
                                          n_eval={"bona": 300, "partial": 1000, "full": 300}),
                         model=SSLRes1D(frozen=True),
                         train=Training(steps=600, seeds=(0,), batch_size=16, lr=1e-3, crop_s=3.0, eval_batch=8)),
}
TINY = CONFIGS["tiny"]
VERSION = "2"          # of the countermeasure runs
BASE_VERSION = "1"     # of the corpus (bona fide + vocoded copies + VAD)
