"""The chapter's experiment: the base codec, the evaluation sets, the finetuning runs (memoised), each made the
way the chapter's configuration (:class:`lib.icm.config.ICMConfig`) says.

``base="committed"`` (``tiny``): the base codec is the committed checkpoint ``checkpoints/icm_base_tiny.pt`` (made
by ``scripts/icm_train_base.py``; its sha256 is checked on load). ``base="compressai"`` (``colab``): CompressAI's
pretrained weights as the initialisation, trained for the machine by :func:`train_base_gpu`.
``eval_sets="held-out"`` *(our choice)*: fixed 192-px crops of held-out photos for fidelity and artifacts, and the
*task set*: 224-px object scenes of held-out stamps on held-out photos where the machine is confident.
``eval_sets="kodak+coco"``: the Kodak images and confident COCO val images the configuration names by id, with
their COCO annotations handed to a machine that scores against them (Mask R-CNN, ``ground_truth``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from compressai.zoo.image import cfgs

from lib.icm import base, codec as C
from lib.icm.config import CommittedBase, HeldOut
from lib.icm import coco, data, kodak
from lib.icm import decoder_finetuning as FT
from lib.icm.machine import outputs, task_key, task_scores
from lib.storage import cache, checkpoint, hashes

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
BASE_TINY = CHECKPOINTS / "icm_base_tiny.pt"


def load_base(path: Path = BASE_TINY) -> tuple[C.ICMCodec, dict]:
    """The base ICM codec and its record (config, training history, command); sha256-checked against the JSON
    record committed beside it."""
    record_path = Path(path).with_suffix(".json")
    record = {}
    if record_path.exists():
        record = json.loads(record_path.read_text())
        hashes.verify(path, record["sha256"], record_path.name,
                      f"restore it with `git checkout -- {path}` or retrain with: {record['command']}")
    state = checkpoint.load(path)
    codec = C.ICMCodec.from_state_dict(state["state_dict"]).eval()
    return codec, {**record, **{k: v for k, v in state.items() if k != "state_dict"}}


def photos_split(short_side: int = 384):
    return data.split(data.load_photos(short_side))


def eval_images(eval_photos, size: int = 192, per_photo: int = 9) -> list[tuple[str, torch.Tensor]]:
    return data.grid_crops(eval_photos, size, per_photo)


def stamps_split():
    return data.split_stamps(data.load_stamps())


@torch.no_grad()
def top_probability(images: list[torch.Tensor], machine) -> torch.Tensor:
    """How sure the machine is on each image (``machine.confidence``): the classifier's top class probability,
    Mask R-CNN's highest detection score (any other module: its top class probability)."""
    if hasattr(machine, "confidence"):
        return machine.confidence(images)
    return outputs(machine, images)["logits"].softmax(-1).max(-1).values


def task_score(machine, originals, decoded, names=None) -> float:
    """The machine's headline task score (``machine.task_key``) of ``decoded`` (:func:`lib.icm.machine.task_scores`)."""
    return task_scores(machine, originals, decoded, names)[task_key(machine)]


@torch.no_grad()
def confident(images: list[tuple[str, torch.Tensor]], machine, threshold: float = 0.5) -> list:
    """The images on which the machine's top class probability is at least ``threshold``: its prediction there is
    the pseudo ground truth, the way :func:`lib.icm.machine.pseudo_map` keeps detections scoring ≥ 0.5."""
    if threshold <= 0:  # every image kept: no need to ask the machine
        return list(images)
    top_p = top_probability([x for _, x in images], machine)
    keep = [item for item, p in zip(images, top_p.tolist()) if p >= threshold]
    if not keep:
        raise ValueError(f"the machine is confident (≥ {threshold}) on none of {len(images)} images: lower threshold")
    return keep


def task_images(eval_photos, eval_stamps, machine, size: int = 224, per_stamp: int = 4,
                threshold: float = 0.5) -> list[tuple[str, torch.Tensor]]:
    """The tiny task set: fixed object scenes (``per_stamp`` per held-out stamp, on held-out photos) at the
    classifier's native 224 px, kept where the machine is :func:`confident`."""
    return confident(data.fixed_scenes(eval_photos, eval_stamps, size, per_stamp), machine, threshold)


def eval_sets(cfg, eval_photos, eval_stamps, machine) -> tuple[list, list]:
    """``(fidelity set, task set)`` as ``cfg.eval_spec`` says: photo crops and confident object scenes
    (:class:`~lib.icm.config.HeldOut`), or Kodak and confident COCO val images (:class:`~lib.icm.config.KodakCoco`,
    downloaded)."""
    spec = cfg.eval_spec
    if isinstance(spec, HeldOut):
        return (eval_images(eval_photos, spec.crop, spec.per_photo),
                task_images(eval_photos, eval_stamps, machine, spec.task_size, spec.per_stamp, spec.confidence))
    coco_images = coco.coco_val(spec.coco_ids, size=spec.task_size, url=spec.coco_url)
    if hasattr(machine, "ground_truth"):  # a machine scored against the real annotations (Mask R-CNN)
        machine.ground_truth = coco.coco_annotations(coco_images, url=spec.annotations_url)
    return kodak.kodak(spec.kodak_ids, url=spec.kodak_url), confident(coco_images, machine, spec.confidence)


def describe_eval_sets(cfg, evalset, taskset, photos: tuple[list, list], stamps: tuple[list, list]) -> str:
    """Two lines on the evaluation sets: what they are made of and how many images each holds.
    ``photos``/``stamps``: the ``(train, eval)`` splits."""
    images, task_imgs = [x for _, x in evalset], [x for _, x in taskset]
    spec = cfg.eval_spec
    if isinstance(spec, HeldOut):
        (train_photos, eval_photos), (train_stamps, eval_stamps) = photos, stamps
        return (f"fidelity set: {len(images)} crops of {images[0].shape[-1]} px from {len(eval_photos)} held-out "
                f"photos ({len(train_photos)} photos for training)\n"
                f"task set: {len(task_imgs)} confident scenes of {task_imgs[0].shape[-1]} px from {len(eval_stamps)} "
                f"held-out stamps ({len(train_stamps)} for training), e.g. "
                f"{', '.join(n.split('@')[0] for n in [n for n, _ in taskset][:4])}")
    size = f"{spec.task_size} px" if spec.task_size else "their own size (cut to the codec's stride)"
    return (f"fidelity set: {len(images)} Kodak images ({', '.join(n for n, _ in evalset[:3])}"
            f"{', ...' if len(evalset) > 3 else ''})\n"
            f"task set: {len(task_imgs)} of {len(spec.coco_ids)} COCO val2017 images at {size}, those "
            f"where the machine's confidence is at least {spec.confidence}")


def finetune_grid(cfg) -> dict[str, tuple[FT.FinetuneConfig, list | None]]:
    """The chapter's finetunings at ``cfg``'s scale (:meth:`lib.icm.config.ICMConfig.runs`) as ``{name:
    (FinetuneConfig, milestones)}``."""
    return {run.name: (run.settings, run.milestones) for run in cfg.runs().all()}


# finetunings committed with the course (``python scripts/committed_runs.py``): read, not trained, by the build
COMMITTED = Path(__file__).resolve().parent / "checkpoints" / "finetuned"


def finetune_key(base: C.ICMCodec, cfg: FT.FinetuneConfig, milestones=None, tag: str = "tiny") -> str:
    """The memo key of a finetuning: its full configuration, milestones, scale tag and the base codec's hash."""
    base_id = C.state_hashes(base)["g_s.6.weight"][:12]
    return cache.key("icm-ft", tag=tag, base=base_id, run=cfg, milestones=milestones)


def run_finetune(base: C.ICMCodec, train_photos, cfg: FT.FinetuneConfig, milestones=None, tag: str = "tiny",
                 device="cpu") -> dict:
    """:func:`lib.icm.decoder_finetuning.finetune`, memoised on disk by its full configuration and the base codec's hash
    (or read from :data:`COMMITTED`); interrupted runs resume from their checkpoint."""
    key = finetune_key(base, cfg, milestones, tag)
    return cache.memo(key, lambda: FT.finetune(base, train_photos, cfg, ckpt_path=cache.work_path(key),
                                                   milestones=milestones, device=device), committed=COMMITTED)


def base_codec(cfg, train_photos, train_stamps, machine, device="cpu") -> tuple[C.ICMCodec, dict]:
    """The base ICM codec and its record (``history``, ``command``, ``config``), as ``cfg.base_source`` says:
    the committed checkpoint (:class:`~lib.icm.config.CommittedBase`) or CompressAI's pretrained weights trained
    for the machine (:class:`~lib.icm.config.CompressAIBase`; the machine is moved back to the CPU afterwards)."""
    source = cfg.base_source
    if isinstance(source, CommittedBase):
        return load_base()
    # crops of COCO images in place of the offline photos and scenes
    train_photos = coco.coco_train(source.train_images, cfg.eval_spec.coco_ids, url=source.train_url,
                                   short_side=source.crop + 32)
    codec, hist, base_cfg = train_base_gpu(train_photos, None, machine, cfg, device=device)
    machine.to(getattr(machine, "home_device", "cpu"))
    # the codec stays on `device` (its transforms run there; CompressAI's rANS on the CPU): every bitstream of
    # the chapter is then made and compared on one device (CPU and GPU entropy coding can disagree)
    return codec.to(device), {"history": hist, "config": base.config_dict(base_cfg),
                              "command": f"lib.icm.experiment.train_base_gpu from CompressAI bmshj2018-factorized "
                                         f"quality {source.quality} ({cfg.name})"}


def train_base_gpu(train_photos, train_stamps, machine, cfg, device="cuda"):
    """CompressAI's pretrained ``bmshj2018-factorized`` at ``cfg.base_source.quality`` as the initialisation (in
    place of stage 1), trained for the machine with the same stage-2 loss as the committed base (resumable, memoised
    by its checkpoint). Returns ``(codec, history, BaseConfig)``."""
    src = cfg.base_source
    q = src.quality
    N, M = cfgs["bmshj2018-factorized"][q]
    # stage-2 pixel weight: a tenth of the λ CompressAI trained this quality with, as at tiny (0.026 vs 0.3)
    base_cfg = base.BaseConfig(N=N, M=M, rd_steps=0, steps=src.steps, batch=src.batch, task_crop=src.crop,
                               lr=src.lr, lmbda_px=C.COMPRESSAI_LMBDA[q] / 10)
    init = C.pretrained_init(q)
    ckpt = cache.work_path(cache.key("icm-base", scale=cfg.scale, quality=q, steps=src.steps, batch=src.batch,
                                     crop=src.crop, lr=src.lr, data=src.train_url, images=src.train_images))
    codec, hist = base.train_base(base_cfg, train_photos, train_stamps, machine, ckpt, init=init, device=device,
                                   ckpt_every=src.ckpt_every)
    return codec, hist, base_cfg


def zoom(image: torch.Tensor, box: tuple[int, int, int], factor: int = 3):
    """An (H, W, 3) uint8 array of ``image[..., i:i+s, j:j+s]`` enlarged ``factor``× by pixel repetition."""
    i, j, s = box
    crop = image.reshape(-1, *image.shape[-3:])[0][:, i:i + s, j:j + s]
    crop = crop.repeat_interleave(factor, 1).repeat_interleave(factor, 2)
    return (crop.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
