"""Chapter 1's settings, one frozen :class:`ICMConfig` per scale (:data:`CONFIGS`), chosen with
``lib.scale.pick(CONFIGS, chapter="1")``.

Every setting that differs between scales lives here, and nowhere else; the chapter runs whichever configuration it
is given. Three of its parts come in kinds, each a small typed record the library dispatches on (never on the
scale's name), read from the configuration's fields:

``cfg.base_source``  :class:`CommittedBase`: the checkpoint made by ``scripts/icm_train_base.py`` and committed
                     beside :mod:`lib.icm.experiment` (sha256-checked); :class:`CompressAIBase`: CompressAI's
                     pretrained ``bmshj2018-factorized`` at ``base_quality`` as the initialisation, trained for the
                     machine (:func:`lib.icm.experiment.train_base_gpu`).
``cfg.machine_spec`` :class:`ClassifierMachine`: EfficientNet-Lite0 (task score: top-1 agreement); :class:`MaskRCNNMachine`:
                     torchvision's COCO Mask R-CNN (task score: mask mAP against the real annotations), whose shorter
                     side is ``machine_size`` (:func:`lib.icm.machine.build`).
``cfg.eval_spec``    :class:`HeldOut`: fixed crops of the held-out photos (fidelity) and confident object scenes of
                     the held-out stamps (task); :class:`KodakCoco`: the Kodak images ``kodak_ids`` (fidelity) and
                     the COCO val2017 images ``coco_ids`` (task), downloaded, with their annotations.

A field a kind does not use must be ``None``, and a field it uses must be set: :class:`ICMConfig` refuses any other
configuration, so no field is silently ignored at a scale. The finetuning runs the chapter shows are named here
too (:meth:`ICMConfig.runs`). ``paper`` (:class:`ICMPaperConfig`) is the recipe run as a command
(:mod:`lib.icm.recipe`); the chapter reads its results.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, NamedTuple

from lib.icm.coco import COCO_ANNOTATIONS_URL, COCO_VAL_URL, COCO_ZIP_URL
from lib.icm.decoder_finetuning import FinetuneConfig
from lib.icm.kodak import KODAK_URL
from lib.scale import ScaleConfig

# COCO val2017 image ids (our choice: the first ids of the val2017 list, as published file names show them; the
# confidence filter of lib.icm.experiment.confident keeps those the machine is sure of)
COCO_TASK_IDS = (139, 285, 632, 724, 776, 785, 802, 872, 885, 1000, 1268, 1296, 1353, 1425, 1490, 1503, 1532, 1584,
                 1675, 1761, 1818, 1993, 2006, 2149, 2153, 2261, 2431, 2532, 2592, 3553, 4134, 5001, 6012, 6894,
                 7278, 7511)


# --- the kinds of each part ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommittedBase:
    """The base codec committed with the course (``lib/icm/checkpoints/icm_base_tiny.pt``)."""


@dataclass(frozen=True)
class CompressAIBase:
    """CompressAI's pretrained ``bmshj2018-factorized`` at ``quality``, trained ``steps`` more for the machine on
    crops of the first ``train_images`` images of the COCO val2017 zip at ``train_url``."""
    quality: int
    steps: int
    batch: int
    crop: int
    lr: float
    ckpt_every: int
    train_url: str
    train_images: int | None   # None: every image of the zip


@dataclass(frozen=True)
class ClassifierMachine:
    """EfficientNet-Lite0 with its ImageNet weights; task score: top-1 agreement."""


@dataclass(frozen=True)
class MaskRCNNMachine:
    """torchvision's COCO Mask R-CNN at shorter side ``size``; task score: mask mAP."""
    size: int


@dataclass(frozen=True)
class HeldOut:
    """Fidelity: ``per_photo`` fixed ``crop``-px crops of each held-out photo; task: ``per_stamp`` scenes of
    ``task_size`` px per held-out stamp, kept where the machine's top probability is at least ``confidence``."""
    crop: int
    per_photo: int
    task_size: int
    per_stamp: int
    confidence: float


@dataclass(frozen=True)
class KodakCoco:
    """Fidelity: the Kodak images ``kodak_ids``; task: the COCO val2017 images ``coco_ids`` (``task_size`` px, or
    None: their own size) kept at ``confidence``, with the annotations from ``annotations_url``."""
    kodak_url: str
    kodak_ids: tuple[int, ...]
    coco_url: str
    coco_ids: tuple[int, ...]
    annotations_url: str
    task_size: int | None
    confidence: float


# {field: kind name: (the record, {its field: the configuration's field})}
_KINDS = {
    "base": {"committed": (CommittedBase, {}),
             "compressai": (CompressAIBase, dict(quality="base_quality", steps="base_steps", batch="base_batch",
                                                 crop="base_crop", lr="base_lr", ckpt_every="base_ckpt_every",
                                                 train_url="coco_train_url", train_images="coco_train_images"))},
    "machine": {"efficientnet-lite0": (ClassifierMachine, {}), "mask-rcnn": (MaskRCNNMachine, dict(size="machine_size"))},
    "eval_sets": {"held-out": (HeldOut, dict(crop="fid_crop", per_photo="fid_per_photo", task_size="task_size",
                                             per_stamp="task_per_stamp", confidence="confidence")),
                  "kodak+coco": (KodakCoco, dict(kodak_url="kodak_url", kodak_ids="kodak_ids", coco_url="coco_url",
                                                 coco_ids="coco_ids", annotations_url="coco_annotations_url",
                                                 task_size="task_size", confidence="confidence"))},
}
_OPTIONAL = {"coco_train_images", "task_size"}   # None is a meaningful value of these (see the records)


class Run(NamedTuple):
    """One finetuning the chapter shows: its display ``name``, a ``short`` name for table columns, its settings, and
    the steps at which its decoder head is kept as well (``None``: the last step only)."""
    name: str
    short: str
    settings: FinetuneConfig
    milestones: list[int] | None = None


class Runs(NamedTuple):
    """The chapter's finetunings: the PatchGAN run, the MSE-only control, LI, and the rest of the poster's grid."""
    patchgan: Run
    control: Run
    li: Run
    ablation: tuple[Run, ...]

    def all(self) -> tuple[Run, ...]:
        return (self.patchgan, self.control, self.li, *self.ablation)


@dataclass(frozen=True, kw_only=True)
class ICMConfig(ScaleConfig):
    """Everything chapter 1 does differently at one scale."""

    # the base ICM codec
    base: str                     # "committed" | "compressai"
    base_quality: int | None      # CompressAI quality of the initialisation ("compressai")
    base_steps: int | None        # machine-loss steps on top of it
    base_batch: int | None
    base_crop: int | None         # object scenes of this size
    base_lr: float | None
    base_ckpt_every: int | None   # steps between its resumable checkpoints
    coco_train_url: str | None    # "compressai": the base trains on crops of COCO val2017 images from this zip,
    coco_train_images: int | None  # the first this many by id outside coco_ids
    # the machine (lib.icm.machine.build)
    machine: str                  # "efficientnet-lite0" | "mask-rcnn"
    machine_size: int | None      # Mask R-CNN's shorter side (torchvision: 800)
    # the decoder-head finetuning (lib.icm.decoder_finetuning.FinetuneConfig, the fields that change with the scale)
    ft_steps: int
    ft_batch: int
    ft_crop: int
    ft_pool: int | None           # training crops drawn once (None: fresh crops each epoch, paper)
    ft_ndf: int                   # discriminator width
    ft_lr_g: float                # decoder head's learning rate
    li_k: int                     # LI ("low adversarial impact"): patches per image and their size
    li_patch: int
    ablation: tuple[tuple[int, int], ...] = ((3, 32), (5, 64), (1, 64), (3, 128))  # the poster's other k × s rows
    # the two evaluation sets
    eval_sets: str                # "held-out" | "kodak+coco"
    fid_crop: int | None          # "held-out": crop size and crops per held-out photo
    fid_per_photo: int | None
    task_size: int | None         # task images are task_size² (the classifier's native 224 px); None: their own size
    task_per_stamp: int | None    # "held-out": scenes per held-out stamp
    confidence: float             # task set: images where the machine's top probability is at least this
    kodak_url: str | None         # "kodak+coco"
    kodak_ids: tuple[int, ...] | None
    coco_url: str | None
    coco_ids: tuple[int, ...] | None
    coco_annotations_url: str | None

    # The Colab rehearsal's budget: a few steps and images, every code path (the ablation's 128-px patches need
    # 128-px crops; confidence 0 keeps every task image, since stand-in images need not look like anything).
    # Mask R-CNN sees 128-px images there, its real architecture and code path.
    REHEARSAL: ClassVar[dict] = dict(base_steps=12, base_ckpt_every=3, base_batch=2, base_crop=64, ft_steps=6, ft_batch=2, ft_crop=128,
                                     ft_pool=8, ft_ndf=8, kodak_ids=(1, 2, 4), coco_ids=COCO_TASK_IDS[:4],
                                     confidence=0.0, coco_train_images=4, machine_size=128)

    def __post_init__(self):
        super().__post_init__()
        for part, kinds in _KINDS.items():
            kind = getattr(self, part)
            if kind not in kinds:
                raise ValueError(f"{self.name}: {part}={kind!r} is not one of {sorted(kinds)}")
            used = set(kinds[kind][1].values())
            others = {f for _, m in kinds.values() for f in m.values()} - used
            ignored = sorted(f for f in others if getattr(self, f) is not None)
            unset = sorted(f for f in used - _OPTIONAL if getattr(self, f) is None)
            if ignored or unset:
                raise ValueError(f"{self.name}: {part}={kind!r} " + (f"does not use {ignored}: set them to None"
                                 if ignored else f"needs {unset}: set them"))

    def _part(self, part: str):
        cls, mapping = _KINDS[part][getattr(self, part)]
        return cls(**{f: getattr(self, c) for f, c in mapping.items()})

    @property
    def base_source(self) -> CommittedBase | CompressAIBase:
        """Where the base codec comes from, as a typed record."""
        return self._part("base")

    @property
    def machine_spec(self) -> ClassifierMachine | MaskRCNNMachine:
        """The machine, as a typed record."""
        return self._part("machine")

    @property
    def eval_spec(self) -> HeldOut | KodakCoco:
        """The two evaluation sets, as a typed record."""
        return self._part("eval_sets")

    def runs(self) -> Runs:
        """The chapter's finetunings at this scale: PatchGAN 3×64 (its head also kept at a third and two thirds of
        its steps), the MSE-only control, LI (λ_adv 0.003, half the decoder's learning rate, ``li_k`` patches of
        ``li_patch`` px), then the poster's other ``k × s`` rows (``ablation``)."""
        common = self.finetune_settings()
        steps = common["steps"]

        def gan(k, patch, **kw):
            return FinetuneConfig(k=k, patch=patch, lmbda_adv=0.01, **{**common, **kw})
        li = FinetuneConfig(k=self.li_k, patch=self.li_patch, lmbda_adv=0.003, **{**common, "lr_g": self.ft_lr_g / 2})
        main = gan(3, 64)
        return Runs(
            patchgan=Run(f"PatchGAN {main.k_by_s}", "PatchGAN", main, [steps // 3, 2 * steps // 3]),
            control=Run("MSE-only control", "MSE only", gan(3, 64, adversarial=False)),
            li=Run(f"LI {li.k_by_s}", f"LI {li.k_by_s}", li),
            ablation=tuple(Run(f"PatchGAN {run.k_by_s}", run.k_by_s, run)
                           for run in (gan(k, s) for k, s in self.ablation)))

    def finetune_settings(self) -> dict:
        """The scale's share of :class:`lib.icm.decoder_finetuning.FinetuneConfig`'s fields: ``FinetuneConfig(k=3, patch=64,
        **cfg.finetune_settings())``."""
        return dict(steps=self.ft_steps, batch=self.ft_batch, crop=self.ft_crop, pool=self.ft_pool, ndf=self.ft_ndf,
                    lr_g=self.ft_lr_g)


CONFIGS: dict[str, ICMConfig] = {
    # 2 CPU cores, offline: the committed base, the held-out photos and stamps, 150-step finetunings
    "tiny": ICMConfig(
        scale="tiny",
        base="committed", base_quality=None, base_steps=None, base_batch=None, base_crop=None, base_lr=None,
        base_ckpt_every=None, coco_train_url=None, coco_train_images=None,
        machine="efficientnet-lite0", machine_size=None,
        ft_steps=150, ft_batch=4, ft_crop=128, ft_pool=256, ft_ndf=32, ft_lr_g=3e-4, li_k=1, li_patch=128,
        eval_sets="held-out", fid_crop=192, fid_per_photo=9, task_size=224, task_per_stamp=4, confidence=0.5,
        kodak_url=None, kodak_ids=None, coco_url=None, coco_ids=None, coco_annotations_url=None),
    # one GPU (a Colab T4: the step counts fit the chapter in 60 minutes, see its "Time" line): CompressAI's
    # pretrained weights (in place of stage 1) trained for Mask R-CNN on COCO val2017 crops; Kodak for fidelity,
    # the COCO val2017 images coco_ids with their real annotations for the task (every one kept: confidence 0)
    "colab": ICMConfig(
        scale="colab",
        base="compressai", base_quality=2, base_steps=3000, base_batch=8, base_crop=256, base_lr=1e-4,
        base_ckpt_every=50, coco_train_url=COCO_ZIP_URL, coco_train_images=500,
        machine="mask-rcnn", machine_size=800,
        ft_steps=1000, ft_batch=8, ft_crop=256, ft_pool=256, ft_ndf=64, ft_lr_g=1e-4, li_k=3, li_patch=128,
        eval_sets="kodak+coco", fid_crop=None, fid_per_photo=None, task_size=None, task_per_stamp=None,
        confidence=0.0, kodak_url=KODAK_URL, kodak_ids=tuple(range(1, 25)), coco_url=COCO_VAL_URL,
        coco_ids=COCO_TASK_IDS, coco_annotations_url=COCO_ANNOTATIONS_URL),
}


COCO_TRAIN_ZIP_URL = "http://images.cocodataset.org/zips/train2017.zip"   # 18 GB, 118,287 JPEGs under train2017/


@dataclass(frozen=True, kw_only=True)
class ICMPaperConfig(ICMConfig):
    """The poster's recipe as a command (:mod:`lib.icm.recipe`, under ``torchrun``): the base codec trained for the
    machine, the finetunings of poster Table 1, their evaluation. Every setting of ``colab`` that says *how* is kept;
    sizes and training data grow. What the poster does not give is listed in ``course_choices``."""

    gpus: int = 8                      # the world the estimates assume (the recipe runs on any torchrun world)
    ft_runs: tuple[str, ...] = ("patchgan", "control", "li", "ablation")   # parts of cfg.runs() the recipe trains
    ft_ckpt_every: int = 500           # optimiser steps between checkpoints of a finetuning
    seed: int = 0
    # (field, why): what the poster does not give (or the course does differently), shown by the chapter
    course_choices: tuple[tuple[str, str], ...] = (
        ("coco_train_url", "COCO train2017 (118,287 photos); the poster's Open Images training set is not listed"),
        ("base_steps", "100,000 steps of 16 crops (about 13.5 epochs of train2017); the poster gives no schedule"),
        ("base_quality", "CompressAI's bmshj2018-factorized quality 2, trained for Mask R-CNN (poster: from scratch)"),
        ("ft_steps", "50,000 steps of 16 crops per run (about 7 epochs); the poster gives no schedule"),
        ("ft_lr_g", "colab's 1e-4 for the decoder head, 2e-4 for the discriminator (pix2pix); not in the poster"),
        ("ft_pool", "None: each epoch takes a fresh random crop of every training photo instead of a fixed pool"),
        ("eval sets", "colab's 24 Kodak and 36 COCO val2017 images; the poster evaluates on Open Images"),
        ("gpus", "8 GPUs for the estimates; the poster does not say what it trained on"))

    REHEARSAL: ClassVar[dict] = dict(base_steps=4, base_batch=2, base_crop=64, base_ckpt_every=2, coco_train_url=COCO_ZIP_URL,
                                     coco_train_images=8, machine_size=128, ft_steps=4, ft_batch=2, ft_crop=128,
                                     ft_ckpt_every=2, ft_runs=("patchgan", "control"), kodak_ids=(1, 2), coco_ids=COCO_TASK_IDS[:2])


CONFIGS["paper"] = ICMPaperConfig(
    scale="paper",
    base="compressai", base_quality=2, base_steps=100_000, base_batch=16, base_crop=256, base_lr=1e-4,
    base_ckpt_every=500, coco_train_url=COCO_TRAIN_ZIP_URL, coco_train_images=None,
    machine="mask-rcnn", machine_size=800,
    ft_steps=50_000, ft_batch=16, ft_crop=256, ft_pool=None, ft_ndf=64, ft_lr_g=1e-4, li_k=3, li_patch=128,
    eval_sets="kodak+coco", fid_crop=None, fid_per_photo=None, task_size=None, task_per_stamp=None,
    confidence=0.0, kodak_url=KODAK_URL, kodak_ids=tuple(range(1, 25)), coco_url=COCO_VAL_URL,
    coco_ids=COCO_TASK_IDS, coco_annotations_url=COCO_ANNOTATIONS_URL)
