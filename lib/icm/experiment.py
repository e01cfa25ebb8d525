"""The chapter's experiment, scale by scale: the base codec, the evaluation set, the finetuning runs (memoised).

``tiny``: the base codec is the committed checkpoint ``checkpoints/icm_base_tiny.pt`` (made by
``scripts/icm_train_base.py``; its sha256 is checked on load). Two evaluation sets *(our choice; Kodak for
fidelity and COCO for the task at colab)*: fixed 192-px crops of held-out photos for fidelity and artifacts, and the *task set*:
224-px object scenes of held-out stamps on held-out photos where the machine is confident.
``colab``/``paper``: CompressAI's pretrained weights as the initialisation, trained for the machine on a GPU by
the same script (``--init-quality Q --init-sha256 ...``), Kodak + COCO for evaluation (downloads pinned by sha256).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lib.icm import codec as C
from lib.icm import data
from lib.icm import finetune as FT

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
BASE_TINY = CHECKPOINTS / "icm_base_tiny.pt"


def load_base(path: Path = BASE_TINY) -> tuple[C.ICMCodec, dict]:
    """The base ICM codec and its record (config, training history, command); sha256-checked against the JSON
    record committed beside it."""
    from lib import checkpoint, download

    record_path = Path(path).with_suffix(".json")
    record = {}
    if record_path.exists():
        record = json.loads(record_path.read_text())
        download.verify(path, record["sha256"], record_path.name,
                        f"restore it with `git checkout -- {path}` or retrain with: {record['command']}")
    state = checkpoint.load(path)
    codec = C.codec_from_state_dict(state["state_dict"]).eval()
    return codec, {**record, **{k: v for k, v in state.items() if k != "state_dict"}}


def photos_split(short_side: int = 384):
    return data.split(data.load_photos(short_side))


def eval_images(eval_photos, size: int = 192, per_photo: int = 9) -> list[tuple[str, torch.Tensor]]:
    return data.grid_crops(eval_photos, size, per_photo)


def stamps_split():
    return data.split_stamps(data.load_stamps())


COCO_TASK_IDS: list[int] = []   # COCO val2017 image ids: the colab task set (not chosen yet)


@torch.no_grad()
def top_probability(images: list[torch.Tensor], machine) -> torch.Tensor:
    """The machine's top class probability on each image (how sure it is of its own prediction)."""
    from lib.icm.machine import outputs

    return outputs(machine, images)["logits"].softmax(-1).max(-1).values


@torch.no_grad()
def confident(images: list[tuple[str, torch.Tensor]], machine, threshold: float = 0.5) -> list:
    """The images on which the machine's top class probability is at least ``threshold``: its prediction there is
    the pseudo ground truth, the way :func:`lib.icm.machine.segmentation_map` keeps detections scoring ≥ 0.5."""
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


def eval_sets(eval_photos, eval_stamps, machine) -> tuple[list, list]:
    """``(fidelity set, task set)``: photo crops and confident object scenes at tiny; Kodak and confident COCO val
    images at colab/paper (downloads, sha256 recorded at first use)."""
    from lib import scale

    if scale.current() == "tiny":
        return eval_images(eval_photos), task_images(eval_photos, eval_stamps, machine)
    return data.kodak(), confident(data.coco_val(COCO_TASK_IDS), machine)


def run_finetune(base: C.ICMCodec, train_photos, cfg: FT.FinetuneConfig, milestones=None, tag: str = "tiny",
                 device="cpu") -> dict:
    """:func:`lib.icm.finetune.finetune`, memoised on disk by its full configuration and the base codec's hash;
    interrupted runs resume from their checkpoint."""
    import hashlib

    from lib import cache

    base_id = C.state_hashes(base)["g_s.6.weight"][:12]
    key = f"icm-ft-{tag}-{base_id}-{cfg.key()}-{milestones}"
    ckpt = cache.cache_dir("icm", "finetune") / (hashlib.sha256(key.encode()).hexdigest()[:16] + ".pt")
    return cache.memo(key, lambda: FT.finetune(base, train_photos, cfg, ckpt_path=ckpt, milestones=milestones,
                                                   device=device),
                      version="1")


def train_base_gpu(train_photos, train_stamps, machine, quality: int = 2, sha256: str | None = None, device="cuda"):
    """colab/paper: CompressAI's pretrained ``bmshj2018-factorized`` (N=128, M=192) as the initialisation (in
    place of stage 1), trained for the machine with the same stage-2 loss as the tiny base (resumable, memoised by
    its checkpoint). Not run at tiny."""
    from lib import cache
    from lib.icm import base

    # stage-2 pixel weight: a tenth of the λ CompressAI trained this quality with, as at tiny (0.026 vs 0.3)
    cfg = base.BaseConfig(N=128, M=192, rd_steps=0, steps=20_000, batch=16, task_crop=256, lr=1e-4,
                          lmbda_px=C.COMPRESSAI_LMBDA[quality] / 10)
    init = C.pretrained_init(quality, sha256=sha256)
    ckpt = cache.cache_dir("icm", "base") / f"colab-q{quality}.pt"
    return base.train_base(cfg, train_photos, train_stamps, machine, ckpt, init=init, device=device)


def zoom(image: torch.Tensor, box: tuple[int, int, int], factor: int = 3):
    """An (H, W, 3) uint8 array of ``image[..., i:i+s, j:j+s]`` enlarged ``factor``× by pixel repetition."""
    i, j, s = box
    crop = image.reshape(-1, *image.shape[-3:])[0][:, i:i + s, j:j + s]
    crop = crop.repeat_interleave(factor, 1).repeat_interleave(factor, 2)
    return (crop.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
