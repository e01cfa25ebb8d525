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


@dataclass(frozen=True, kw_only=True)
class PaperTraining(Training):
    """The reference recipe's training: whole epochs, a warm-up then an exponential decay, the last epochs averaged."""
    steps: int = 0                  # not used: the recipe counts epochs
    epochs: int = 20
    final_lr: float = 1e-6          # lr (ExponentialDecrease's initial_lr) decays to this over the run
    warmup_epochs: int = 6          # warm-up from zero (warm_from_zero: True)
    lr_scale: float = 0.5           # scale_ratio: 1 GPU × batch 32 / 64, kept whatever the number of processes
    num_avg: int = 10               # the last epochs whose models are averaged
    ckpt_every: int = 500           # optimiser steps between resumable checkpoints
    gpus: int = 1                   # the reference run's world (the recipe runs on whatever torchrun starts)


@dataclass(frozen=True, kw_only=True)
class SpoofPaperConfig(SpoofConfig):
    """The paper's recipe on the full PartialSpoof and ASVspoof 2019 LA training sets (``python -m lib.spoof.recipe``).

    From the authors' reference recipe (wedefense ``egs/detection/partialspoof/x12_ssl_res1d``:
    ``conf/singlereso_utt_xlsr_53_ft_backend_Res1D.yaml``, ``run.sh``; ``wedefense/utils/schedulers.py``;
    ``wedefense/bin/train.py``): XLSR-53 fine-tuned (``frozen: False``) under the SSL-Res1D back-end, P2SGrad-MSE,
    Adam, 20 epochs of batch 32 on one GPU, random 3 s chunks (150 frames of 20 ms), seed 42; the learning rate
    ``ExponentialDecrease`` from 1e-5 to 1e-6 over the run, times a warm-up from zero over 6 epochs and the
    ``scale_ratio`` ``world_size × batch_size / 64`` (0.5 for one GPU of 32); the models of the last 10 epochs
    averaged (``num_avg: 10``). Grad-CAM at ``fc`` and RCQ on the partial spoofs of the evaluation split. What the
    paper and code leave open, or what the course does differently, is listed in ``course_choices``.
    """

    train: PaperTraining
    # {field: why}: values the paper does not give (or the course changes), shown by the chapter
    course_choices: tuple[tuple[str, str], ...] = (
        ("batch_size", "32 per step over all processes (the reference: 32 on one GPU); N processes take the same "
                       "steps as one, with SyncBatchNorm on GPUs"),
        ("lr_scale", "wedefense multiplies the rate by world_size × 32 / 64; the course keeps the one-GPU 0.5, since "
                     "its global batch does not grow with the processes"),
        ("seeds", "one model per training set, seed 42 (the reference config); the paper reports one run"),
        ("n_train", "every PartialSpoof train utterance (bona fide + CON_ partial spoofs) and every ASVspoof 2019 LA "
                    "train utterance, counted from the protocols; utterances under 1 s are kept (repeated to the "
                    "3 s chunk), where the reference drops them"),
        ("n_eval", "every utterance of the evaluation split; the LA eval spoofs only for the fully-spoofed EER"),
        ("eval_split", "the paper's eval columns (Table 2); dev runs with eval_split='dev'"),
        ("labels", "five types derived from the public labels with TR spans tr_width wide: the authors' five-code "
                   "files are not published (labels='authors' reads them if you have them)"),
        ("frontend lr", "one learning rate for every parameter; the newest wedefense scheduler gives the SSL "
                        "front-end 0.1× when it is handed the model"),
    )

    # the rehearsal: two epochs of one step on the mirror's miniature files, with XLSR-53 frozen (fine-tuning its
    # 300 M parameters in two CPU processes would not fit the rehearsal's memory and time)
    REHEARSAL: ClassVar[dict] = {"train": {"epochs": 2, "batch_size": 2, "crop_s": 1.0, "eval_batch": 2, "num_avg": 2,
                                           "ckpt_every": 1},
                                 "data": {"n_train": {"bona": 1, "partial": 1, "full": 1},
                                          "n_eval": {"bona": 1, "partial": 3, "full": 1}},
                                 "model": {"frozen": True}}


# the full training and evaluation sets, from the protocols' counts (PartialSpoof v1.2 = ASVspoof 2019 LA's splits)
CONFIGS["paper"] = SpoofPaperConfig(
    scale="paper",
    data=RealSubsets(eval_split="eval", tr_width=0.06, n_train={"bona": 2580, "partial": 22800, "full": 22800},
                     n_eval={"bona": 7355, "partial": 63882, "full": 63882}),
    model=SSLRes1D(frozen=False),
    train=PaperTraining(seeds=(42,), batch_size=32, lr=1e-5, crop_s=3.0, eval_batch=16))
