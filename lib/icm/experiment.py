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
from lib.icm import coco, data, kodak
from lib.icm import decoder_finetuning as FT
from lib.icm.machine import outputs, task_key, task_scores
from lib.storage import cache, checkpoint, download

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
BASE_TINY = CHECKPOINTS / "icm_base_tiny.pt"


def load_base(path: Path = BASE_TINY) -> tuple[C.ICMCodec, dict]:
    """The base ICM codec and its record (config, training history, command); sha256-checked against the JSON
    record committed beside it."""
    record_path = Path(path).with_suffix(".json")
    record = {}
    if record_path.exists():
        record = json.loads(record_path.read_text())
        download.verify(path, record["sha256"], record_path.name,
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
    """``(fidelity set, task set)`` as ``cfg.eval_sets`` says: photo crops and confident object scenes
    (``"held-out"``), or Kodak and confident COCO val images (``"kodak+coco"``, downloaded)."""
    if cfg.eval_sets == "held-out":
        return (eval_images(eval_photos, cfg.fid_crop, cfg.fid_per_photo),
                task_images(eval_photos, eval_stamps, machine, cfg.task_size, cfg.task_per_stamp, cfg.confidence))
    if cfg.eval_sets == "kodak+coco":
        coco = coco.coco_val(cfg.coco_ids, size=cfg.task_size, url=cfg.coco_url)
        if hasattr(machine, "ground_truth"):  # a machine scored against the real annotations (Mask R-CNN)
            machine.ground_truth = coco.coco_annotations(coco, url=cfg.coco_annotations_url)
        return kodak.kodak(cfg.kodak_ids, url=cfg.kodak_url), confident(coco, machine, cfg.confidence)
    raise ValueError(f"unknown eval_sets {cfg.eval_sets!r} in {cfg.name}: use 'held-out' or 'kodak+coco'")


def describe_eval_sets(cfg, evalset, taskset, photos: tuple[list, list], stamps: tuple[list, list]) -> str:
    """Two lines on the evaluation sets: what they are made of and how many images each holds.
    ``photos``/``stamps``: the ``(train, eval)`` splits."""
    images, task_imgs = [x for _, x in evalset], [x for _, x in taskset]
    if cfg.eval_sets == "held-out":
        (train_photos, eval_photos), (train_stamps, eval_stamps) = photos, stamps
        return (f"fidelity set: {len(images)} crops of {images[0].shape[-1]} px from {len(eval_photos)} held-out "
                f"photos ({len(train_photos)} photos for training)\n"
                f"task set: {len(task_imgs)} confident scenes of {task_imgs[0].shape[-1]} px from {len(eval_stamps)} "
                f"held-out stamps ({len(train_stamps)} for training), e.g. "
                f"{', '.join(n.split('@')[0] for n in [n for n, _ in taskset][:4])}")
    size = f"{cfg.task_size} px" if cfg.task_size else "their own size (cut to the codec's stride)"
    return (f"fidelity set: {len(images)} Kodak images ({', '.join(n for n, _ in evalset[:3])}"
            f"{', ...' if len(evalset) > 3 else ''})\n"
            f"task set: {len(task_imgs)} of {len(cfg.coco_ids)} COCO val2017 images at {size}, those "
            f"where the machine's confidence is at least {cfg.confidence}")


def finetune_grid(cfg) -> dict[str, tuple[FT.FinetuneConfig, list | None]]:
    """The chapter's finetunings at ``cfg``'s scale, ``{name: (FinetuneConfig, milestones)}``: PatchGAN 3×64 (with
    snapshots at a third and two thirds of its steps), the MSE-only control, LI, then the rest of the poster's grid."""
    common = cfg.finetune_settings()   # steps, batch, crop, pool, ndf, lr_g of this scale
    steps = common["steps"]
    li = FT.FinetuneConfig(k=cfg.li_k, patch=cfg.li_patch, lmbda_adv=0.003, **{**common, "lr_g": common["lr_g"] / 2})
    grid = {"PatchGAN 3×64": (FT.FinetuneConfig(k=3, patch=64, lmbda_adv=0.01, **common), [steps // 3, 2 * steps // 3]),
            "MSE-only control": (FT.FinetuneConfig(k=3, patch=64, adversarial=False, **common), None),
            f"LI {cfg.li_k}×{cfg.li_patch}": (li, None)}
    for k, patch in [(3, 32), (5, 64), (1, 64), (3, 128)]:
        grid[f"PatchGAN {k}×{patch}"] = (FT.FinetuneConfig(k=k, patch=patch, lmbda_adv=0.01, **common), None)
    return grid


def run_finetune(base: C.ICMCodec, train_photos, cfg: FT.FinetuneConfig, milestones=None, tag: str = "tiny",
                 device="cpu") -> dict:
    """:func:`lib.icm.decoder_finetuning.finetune`, memoised on disk by its full configuration and the base codec's hash;
    interrupted runs resume from their checkpoint."""
    base_id = C.state_hashes(base)["g_s.6.weight"][:12]
    key = cache.key("icm-ft", tag=tag, base=base_id, run=cfg, milestones=milestones)
    return cache.memo(key, lambda: FT.finetune(base, train_photos, cfg, ckpt_path=cache.work_path(key),
                                                   milestones=milestones, device=device))


def base_codec(cfg, train_photos, train_stamps, machine, device="cpu") -> tuple[C.ICMCodec, dict]:
    """The base ICM codec and its record (``history``, ``command``, ``config``), as ``cfg.base`` says:
    the committed checkpoint (``"committed"``) or CompressAI's pretrained weights trained for the machine
    (``"compressai"``; the machine is moved back to the CPU afterwards)."""
    if cfg.base == "committed":
        return load_base()
    if cfg.base == "compressai":
        if cfg.coco_train_url:  # crops of COCO images in place of the offline photos and scenes
            train_photos = coco.coco_train(cfg.coco_train_images, cfg.coco_ids, url=cfg.coco_train_url,
                                           short_side=cfg.base_crop + 32)
            train_stamps = None
        codec, hist, base_cfg = train_base_gpu(train_photos, train_stamps, machine, cfg, device=device)
        machine.to(getattr(machine, "home_device", "cpu"))
        # the codec stays on `device` (its transforms run there; CompressAI's rANS on the CPU): every bitstream of
        # the chapter is then made and compared on one device (CPU and GPU entropy coding can disagree)
        return codec.to(device), {"history": hist, "config": base.config_dict(base_cfg),
                       "command": f"lib.icm.experiment.train_base_gpu from CompressAI bmshj2018-factorized "
                                  f"quality {cfg.base_quality} ({cfg.name})"}
    raise ValueError(f"unknown base {cfg.base!r} in {cfg.name}: use 'committed' or 'compressai'")


def train_base_gpu(train_photos, train_stamps, machine, cfg, device="cuda"):
    """CompressAI's pretrained ``bmshj2018-factorized`` at ``cfg.base_quality`` as the initialisation (in place of
    stage 1), trained for the machine with the same stage-2 loss as the committed base (resumable, memoised by its
    checkpoint). Returns ``(codec, history, BaseConfig)``."""
    q = cfg.base_quality
    N, M = cfgs["bmshj2018-factorized"][q]
    # stage-2 pixel weight: a tenth of the λ CompressAI trained this quality with, as at tiny (0.026 vs 0.3)
    base_cfg = base.BaseConfig(N=N, M=M, rd_steps=0, steps=cfg.base_steps, batch=cfg.base_batch,
                               task_crop=cfg.base_crop, lr=cfg.base_lr, lmbda_px=C.COMPRESSAI_LMBDA[q] / 10)
    init = C.pretrained_init(q)
    ckpt = cache.work_path(cache.key("icm-base", scale=cfg.scale, quality=q, steps=cfg.base_steps,
                                     batch=cfg.base_batch, crop=cfg.base_crop, lr=cfg.base_lr))
    codec, hist = base.train_base(base_cfg, train_photos, train_stamps, machine, ckpt, init=init, device=device,
                                   ckpt_every=cfg.base_ckpt_every)
    return codec, hist, base_cfg


def zoom(image: torch.Tensor, box: tuple[int, int, int], factor: int = 3):
    """An (H, W, 3) uint8 array of ``image[..., i:i+s, j:j+s]`` enlarged ``factor``× by pixel repetition."""
    i, j, s = box
    crop = image.reshape(-1, *image.shape[-3:])[0][:, i:i + s, j:j + s]
    crop = crop.repeat_interleave(factor, 1).repeat_interleave(factor, 2)
    return (crop.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
