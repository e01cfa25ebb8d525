"""Chapter 1's settings, one frozen :class:`ICMConfig` per scale (:data:`CONFIGS`), chosen with
``lib.scale.pick(CONFIGS, chapter="1")``.

Every setting that differs between scales lives here, and nowhere else; the chapter runs whichever configuration it
is given. Two fields name *how* a part is made (the library dispatches on them, never on the scale's name):

``base``       ``"committed"``: the checkpoint made by ``scripts/icm_train_base.py`` and committed beside
               :mod:`lib.icm.experiment` (sha256-checked); ``"compressai"``: CompressAI's pretrained
               ``bmshj2018-factorized`` at ``base_quality`` as the initialisation, trained for the machine
               (:func:`lib.icm.experiment.train_base_gpu`).
``machine``    ``"efficientnet-lite0"``: the ImageNet classifier (task score: top-1 agreement); ``"mask-rcnn"``:
               torchvision's COCO Mask R-CNN (task score: mask mAP against the real annotations), whose shorter
               side is ``machine_size`` (:func:`lib.icm.machine.build`).
``eval_sets``  ``"held-out"``: fixed crops of the held-out photos (fidelity) and confident object scenes of the
               held-out stamps (task); ``"kodak+coco"``: the Kodak images ``kodak_ids`` (fidelity) and the COCO
               val2017 images ``coco_ids`` where the machine is confident (task), downloaded, with their
               annotations from ``coco_annotations_url`` when the machine scores against them.

Fields a kind does not use are ``None`` in that configuration. ``paper`` (:class:`ICMPaperConfig`) is the recipe
run as a command (:mod:`lib.icm.recipe`); the chapter reads its results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from lib.icm.data import COCO_ANNOTATIONS_URL, COCO_VAL_URL, COCO_ZIP_URL, KODAK_URL
from lib.scale import ScaleConfig

# COCO val2017 image ids (our choice: the first ids of the val2017 list, as published file names show them; the
# confidence filter of lib.icm.experiment.confident keeps those the machine is sure of)
COCO_TASK_IDS = (139, 285, 632, 724, 776, 785, 802, 872, 885, 1000, 1268, 1296, 1353, 1425, 1490, 1503, 1532, 1584,
                 1675, 1761, 1818, 1993, 2006, 2149, 2153, 2261, 2431, 2532, 2592, 3553, 4134, 5001, 6012, 6894,
                 7278, 7511)


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
    # the decoder-head finetuning (lib.icm.finetune.FinetuneConfig, the fields that change with the scale)
    ft_steps: int
    ft_batch: int
    ft_crop: int
    ft_pool: int                  # training crops drawn once
    ft_ndf: int                   # discriminator width
    ft_lr_g: float                # decoder head's learning rate
    li_k: int                     # LI ("low adversarial impact"): patches per image and their size
    li_patch: int
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

    def finetune_settings(self) -> dict:
        """The scale's share of :class:`lib.icm.finetune.FinetuneConfig`'s fields: ``FinetuneConfig(k=3, patch=64,
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


# ----------------------------------------------------------------------------------------------- the paper scale
COCO_TRAIN_ZIP_URL = "http://images.cocodataset.org/zips/train2017.zip"   # 18 GB, 118,287 JPEGs under train2017/


@dataclass(frozen=True, kw_only=True)
class ICMPaperConfig(ICMConfig):
    """The poster's recipe as a command (``python -m lib.icm.recipe``, under ``torchrun``): the base codec trained for
    the machine, then every finetuning of poster Table 1, then their evaluation.

    Its :class:`ICMConfig` fields are the recipe's and keep every setting of ``colab`` that says *how* (CompressAI's
    ``bmshj2018-factorized`` initialisation, Mask R-CNN at 800 px, the same losses, learning rates, patch settings,
    Kodak and the COCO val2017 task images); only sizes and the training data grow. From the poster: the decoder's
    first layers are finetuned against a PatchGAN with the encoder and entropy model frozen, aligned patches
    ``k × s`` in {1, 3, 5} × {32, 64, 128}, the LI run with 3 × 128, the task Mask R-CNN-type instance segmentation.
    Everything else is the course's choice and is listed in ``course_choices``. The chapter itself, at this scale,
    runs its CPU sections with ``tiny`` and reads the recipe's results for its paper-scale scorecard.
    """

    gpus: int = 8                      # the world the estimates assume (the recipe runs on whatever torchrun starts)
    train_zip_url: str = COCO_TRAIN_ZIP_URL   # the photos of the base codec and of the finetunings (every one)
    ft_runs: tuple[str, ...] = ("PatchGAN 3×64", "MSE-only control", "LI 3×128", "PatchGAN 3×32", "PatchGAN 5×64",
                                "PatchGAN 1×64", "PatchGAN 3×128")   # lib.icm.experiment.finetune_grid names
    ft_ckpt_every: int = 500           # optimiser steps between checkpoints of a finetuning
    seed: int = 0
    # {field: why}: what the poster does not give (or the course does differently), shown by the chapter
    course_choices: tuple[tuple[str, str], ...] = (
        ("train_zip_url", "COCO train2017 (118,287 photos) for the base codec and the finetunings; the poster's "
                           "Open Images training images are not listed"),
        ("base_steps", "100,000 steps of 16 crops (about 13.5 epochs of train2017); the poster gives no schedule"),
        ("base_quality", "CompressAI's bmshj2018-factorized at quality 2 as the initialisation, then trained for "
                         "Mask R-CNN (the poster's base is trained end to end for the machine from scratch)"),
        ("ft_steps", "50,000 steps of 16 crops per run (about 7 epochs); the project page's LI checkpoints are "
                     "near epoch 221-231 of an unknown data set"),
        ("ft_lr_g", "colab's 1e-4 for the decoder head, 2e-4 for the discriminator (pix2pix); not in the poster"),
        ("ft_pool", "not used by the recipe: each epoch takes a fresh random crop of every training photo"),
        ("eval sets", "colab's: the 24 Kodak images (fidelity) and 36 COCO val2017 images with their annotations "
                      "(mask mAP); the poster evaluates on Open Images"),
        ("gpus", "8 GPUs for the estimates; the poster does not say what it trained on"),
    )

    REHEARSAL: ClassVar[dict] = dict(base_steps=4, base_batch=2, base_crop=64, base_ckpt_every=2,
                                     train_zip_url=COCO_ZIP_URL, coco_train_images=8, machine_size=128,
                                     ft_steps=4, ft_batch=2, ft_crop=128, ft_ckpt_every=2,
                                     ft_runs=("PatchGAN 3×64", "MSE-only control"),
                                     kodak_ids=(1, 2), coco_ids=COCO_TASK_IDS[:2])


CONFIGS["paper"] = ICMPaperConfig(
    scale="paper",
    base="compressai", base_quality=2, base_steps=100_000, base_batch=16, base_crop=256, base_lr=1e-4,
    base_ckpt_every=500, coco_train_url=None, coco_train_images=None,   # the recipe reads train_zip_url
    machine="mask-rcnn", machine_size=800,
    ft_steps=50_000, ft_batch=16, ft_crop=256, ft_pool=256, ft_ndf=64, ft_lr_g=1e-4, li_k=3, li_patch=128,
    eval_sets="kodak+coco", fid_crop=None, fid_per_photo=None, task_size=None, task_per_stamp=None,
    confidence=0.0, kodak_url=KODAK_URL, kodak_ids=tuple(range(1, 25)), coco_url=COCO_VAL_URL,
    coco_ids=COCO_TASK_IDS, coco_annotations_url=COCO_ANNOTATIONS_URL)
