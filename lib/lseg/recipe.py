"""LSeg's zero-shot recipe on the PASCAL-5i folds, as a command (the ``paper`` scale of chapter 3).

    torchrun --nproc_per_node=8 --max-restarts=3 -m lib.lseg.recipe train --scale paper   # every fold
    torchrun --nproc_per_node=8 -m lib.lseg.recipe evaluate --scale paper
    python -m lib.lseg.recipe plan --scale paper                                 # what it downloads and costs

``train`` trains one LSeg per fold (:class:`lib.lseg.chapter.LSegPaperConfig`): each rank reads its shard of the
fold's training episodes (:class:`lib.recipe.EpochSampler`), DDP averages the gradients (``lib.train.fit``, which
checkpoints every ``ckpt_every`` steps and resumes from the last checkpoint when torchrun restarts the job).
``evaluate`` splits the fold's test episodes over the ranks, all-reduces the per-class intersection/union sums,
gathers each episode's counts back in order, checks that both agree, and writes the fold's result to the course
cache (rank 0), where the chapter reads it (:func:`results`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

import torch

from lib import recipe, scale, train
from lib.storage import cache, checkpoint
from lib.lseg import chapter, pascal
from lib.lseg.data import IGNORE
from lib.lseg.metrics import EpisodeIoU
from lib.lseg.model import LSeg, config as model_config
from lib.lseg.training import pixel_loss, to_tensor_images

NAME = "lseg-paper"
LABELS = [pascal.OTHERS] + pascal.CLASSES
# the ImageNet ViT of each backbone: timm's own Hugging Face repository (sha256 recorded at first use)
BACKBONE_REPOS = {
    "vitb32_384": "timm/vit_base_patch32_384.augreg_in21k_ft_in1k",
    "vitl16_384": "timm/vit_large_patch16_384.augreg_in21k_ft_in1k",
}
KILL_ENV = "COURSE_RECIPE_KILL_AT"   # "RANK:STEP": that rank kills itself after STEP, in torchrun's first attempt


def config(name: str = "paper") -> chapter.LSegPaperConfig:
    """The chapter's configuration for ``name`` (rehearsed under ``$COURSE_REHEARSAL=1``)."""
    scale.set_scale(name)
    cfg = scale.pick(chapter.CONFIGS, chapter="3")
    if not isinstance(cfg, chapter.LSegPaperConfig):
        raise SystemExit(f"the LSeg recipe runs the `paper` configuration; `{name}` is the chapter's own (run the "
                         f"chapter with COURSE_SCALE={name})")
    return cfg


def fold_key(cfg, fold: int) -> str:
    return recipe.results_key(f"{NAME}-fold{fold}", cfg)


def results(cfg) -> dict:
    """``{fold: result}`` for every fold of ``cfg`` whose evaluation is in the course cache."""
    out = {}
    for f in cfg.folds:
        r = recipe.read_result(fold_key(cfg, f))
        if r is not None:
            out[f] = r
    return out


def require(cfg) -> dict | None:
    """The chapter's call: ``None`` for a configuration without the recipe (``tiny``, ``colab``); for ``paper`` the
    results of every fold, or :class:`lib.recipe.ResultsMissing` with the commands that produce them, what they
    download, the disk they need and an estimate of their GPU-hours (never a smaller run instead)."""
    if not isinstance(cfg, chapter.LSegPaperConfig):
        return None
    found = results(cfg)
    missing = [f for f in cfg.folds if f not in found]
    if missing:
        raise recipe.ResultsMissing(
            f"chapter 3 at `{cfg.label}` reads the results of the paper recipe, and fold(s) "
            f"{', '.join(map(str, missing))} are not in the course cache ({cache.cache_dir()}) yet. "
            f"The chapter does not run a smaller configuration instead.\n\n" + plan(cfg))
    return found


# ---------------------------------------------------------------------------------------------------------- data
def load_data(cfg, splits=("train", "val")) -> dict:
    """VOC2012's segmentation splits at ``cfg.fold_size``; the archive is downloaded and extracted by each node's
    first process while the others wait."""
    if recipe.local_rank() == 0:
        pascal.extract()
    recipe.barrier()
    root = pascal.extract()  # already there: returns its folder
    limits = {"train": cfg.fold_train_limit, "val": cfg.fold_val_limit}
    return {s: pascal.load_split(root, s, cfg.fold_size, limits[s]) for s in splits}


def episode_batches(split: dict, eps: list, sampler: recipe.EpochSampler, seed: int):
    """``step -> (images, targets, classes)`` of this rank's episodes of the step. Each episode's flip is drawn
    from its own (seed, epoch, episode) generator, so a step's global batch does not depend on how it is split."""

    def batches(step: int):
        idx = sampler(step)
        epoch = sampler.epoch_of(step)
        x = to_tensor_images(split["images"][[eps[k][0] for k in idx]])
        y = torch.stack([pascal.binary_target(split["masks"][eps[k][0]], eps[k][1]) for k in idx])
        for j, k in enumerate(idx):
            g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + k)
            if torch.rand((), generator=g) < 0.5:
                x[j], y[j] = x[j].flip(-1), y[j].flip(-1)
        return x, y, torch.tensor([eps[k][1] for k in idx])

    return batches


# ------------------------------------------------------------------------------------------------------ training
def episode_loss(T: torch.Tensor, device, freeze_bn: bool = False):
    """``loss_fn(model, batch)``: each episode's CE over its own labels ``[others, class]``. The logits come from
    the model's own forward over all labels (so DDP sees the forward), then each image keeps channels 0 and its
    class: the same numbers as :func:`lib.lseg.pascal.binary_logits` without spatial blocks.
    ``freeze_bn``: BatchNorm layers use their running statistics (the test that compares processes on CPU, where
    torch has no SyncBatchNorm)."""
    T = T.to(device)

    def loss_fn(model, batch):
        if freeze_bn:
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        x, y, cls = (t.to(device) for t in batch)
        logits = model(x, T)                                            # (B, 21, H, W)
        pick = torch.stack([torch.zeros_like(cls), cls], 1)             # (B, 2)
        binary = torch.gather(logits, 1, pick[:, :, None, None].expand(-1, -1, *logits.shape[-2:]))
        return pixel_loss(binary, y)

    return loss_fn


def build_model(cfg, device, backbone_state: dict | None) -> LSeg:
    model = LSeg(model_config(cfg.fold_backbone, arch="none", depth=0, out_c=512))
    if backbone_state is not None:
        checkpoint.load_state(model.pretrained.model, backbone_state, "the ImageNet ViT weights")
    return model.to(device)


def optimizer(cfg, model: LSeg, steps_per_epoch: int):
    """SGD with the official parameter groups (image encoder at ``lr``, decoder at ``head_lr_mult × lr``) and the
    poly decay stepped once per epoch."""
    enc = list(model.pretrained.parameters())
    ids = {id(p) for p in enc}
    rest = [p for p in model.parameters() if id(p) not in ids]
    opt = torch.optim.SGD([{"params": enc, "lr": cfg.lr}, {"params": rest, "lr": cfg.lr * cfg.head_lr_mult}],
                          lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sch = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: max(0.0, 1 - (s // steps_per_epoch) / cfg.epochs) ** cfg.poly_power)
    return opt, sch


def _kill_hook(rank: int):
    """``on_step`` for the rehearsal's crash test: ``$COURSE_RECIPE_KILL_AT=R:S`` kills rank R after step S, in
    torchrun's first attempt only (``$TORCHELASTIC_RESTART_COUNT`` 0)."""
    spec = os.environ.get(KILL_ENV, "")
    if not spec or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
        return None
    r, s = (int(v) for v in spec.split(":"))
    if r != rank:
        return None

    def hook(step, _terms):
        if step == s:
            print(f"rank {rank}: killed after step {step} ({KILL_ENV})", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def _chain(*hooks):
    hooks = [h for h in hooks if h is not None]
    return (lambda step, terms: [h(step, terms) for h in hooks]) if hooks else None


def train_fold(cfg, fold: int, data: dict, T: torch.Tensor, device, backbone_state=None, ckpt_path=None,
               freeze_bn: bool = False, progress: bool = True, on_step=None) -> tuple[LSeg, list, dict]:
    """One fold's model, trained on its seen classes; returns (model, history, facts about the run).
    ``on_step(step, terms)`` is called after every step (e.g. to time them)."""
    from lib import runtime

    rank, world = train.distributed()
    runtime.seed_everything(cfg.seed)
    seen = pascal.fold_classes(fold)[1]
    eps = pascal.episodes(data["train"], seen)
    sampler = recipe.EpochSampler(len(eps), cfg.global_batch, rank, world, cfg.seed)
    steps = sampler.steps_per_epoch * cfg.epochs
    model = build_model(cfg, device, backbone_state)
    opt, sch = optimizer(cfg, model, sampler.steps_per_epoch)
    recipe.log(f"fold {fold}: {len(eps)} training episodes, {world} process(es) × {sampler.per_rank} per step, "
               f"{sampler.steps_per_epoch} steps per epoch, {steps} steps")
    t0 = time.time()
    history = train.fit(model, episode_batches(data["train"], eps, sampler, cfg.seed), episode_loss(T, device, freeze_bn),
                        opt, steps, scheduler=sch, ckpt_path=ckpt_path, ckpt_every=cfg.ckpt_every,
                        log_every=max(1, sampler.steps_per_epoch), sync_bn=cfg.sync_bn, progress=progress,
                        local_batches=True, ddp_kwargs={"find_unused_parameters": True},
                        on_step=_chain(_kill_hook(rank), on_step))
    facts = {"world": world, "steps": steps, "steps_per_epoch": sampler.steps_per_epoch, "train_episodes": len(eps),
             "per_rank_batch": sampler.per_rank, "seconds": time.time() - t0,
             "shards": recipe.shard_report(len(eps), cfg.global_batch, world, cfg.seed)}
    return model.eval(), history, facts


# ---------------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_fold(model: LSeg, split: dict, eps: list, T: torch.Tensor) -> dict:
    """The zero-shot protocol over ``eps`` split over the ranks: per-episode counts gathered in order, and the
    per-class sums all-reduced; both give the same numbers (``reduced_equals_gathered``)."""
    rank, world = train.distributed()
    model.eval()
    dev = model.temperature.device
    mine = []
    for pos in recipe.rank_slice(len(eps), rank, world):
        i, c = eps[pos]
        x = to_tensor_images(split["images"][i:i + 1]).to(dev)
        full = split["full"][i].long()
        pred = pascal.binary_logits(model, x, T.to(dev), torch.tensor([c], device=dev), size=full.shape)
        m = EpisodeIoU()
        m.update(pred.argmax(1)[0].cpu() == 1, full == c, c, ignore=full == IGNORE)
        mine.append(m.counts())
    per_episode = recipe.gather_in_order(mine, len(eps))
    gathered = EpisodeIoU()
    for counts in per_episode:
        gathered.add_counts(counts)
    # the same sums through an all-reduce: [I, U] per VOC class id, then the fg/bg sums
    sums = torch.zeros(len(LABELS) + 2, 2, dtype=torch.float64)
    local = EpisodeIoU()
    for counts in mine:
        local.add_counts(counts)
    for c, (i, u) in local.counts()["classes"].items():
        sums[c] = torch.tensor([i, u], dtype=torch.float64)
    sums[-2:] = torch.stack([local.fb_I, local.fb_U], 1)
    sums = recipe.all_reduce_sum(sums)
    reduced = EpisodeIoU().add_counts({"classes": {c: tuple(sums[c].tolist()) for c in gathered.I},
                                       "fb_I": sums[-2:, 0].tolist(), "fb_U": sums[-2:, 1].tolist()})
    return {"miou": gathered.miou(), "fb_iou": gathered.fb_iou(),
            "per_class": {pascal.CLASSES[c - 1]: v for c, v in sorted(gathered.per_class().items())},
            "episodes": len(eps), "world": world, "reduced_miou": reduced.miou(), "reduced_fb_iou": reduced.fb_iou(),
            "reduced_equals_gathered": reduced.miou() == gathered.miou() and reduced.fb_iou() == gathered.fb_iou(),
            "per_episode": [[c, *iu] for e in per_episode for c, iu in e["classes"].items()]}


# ---------------------------------------------------------------------------------------------------------- the CLI
def _text_embeddings() -> torch.Tensor:
    from lib.lseg.pascal import fold_text_encoder

    return fold_text_encoder("clip")(LABELS).float()


def _backbone_url(cfg) -> str:
    from lib.lseg import weights

    return weights.hub_url(BACKBONE_REPOS[cfg.fold_backbone], weights.TIMM_HUB_REVISION, weights.TIMM_HUB_FILE)


def _backbone(cfg) -> dict:
    from lib.lseg import weights

    if recipe.local_rank() == 0:
        weights.timm_vit(BACKBONE_REPOS[cfg.fold_backbone])
    recipe.barrier()
    return weights.timm_vit(BACKBONE_REPOS[cfg.fold_backbone])


def cmd_train(cfg, args) -> None:
    rank, world, device = recipe.setup()
    data = load_data(cfg, ("train",))
    T = _text_embeddings()
    vit = _backbone(cfg)
    for fold in cfg.folds:
        ckpt = recipe.work_file(f"{NAME}-fold{fold}", cfg)
        _, history, facts = train_fold(cfg, fold, data, T, device, vit, ckpt_path=ckpt, progress=not args.quiet)
        recipe.log(f"fold {fold}: trained ({facts['steps']} steps, {facts['seconds']:.0f} s); checkpoint {ckpt}")
        if args.report and rank == 0:
            _write_json(args.report, {f"fold{fold}": {**facts, "history": history, "checkpoint": str(ckpt)}})


def load_trained(cfg, fold: int, device) -> LSeg:
    """The model a finished ``train`` left in its checkpoint."""
    ckpt = recipe.work_file(f"{NAME}-fold{fold}", cfg)
    if not os.path.exists(ckpt):
        raise SystemExit(f"fold {fold} has no trained model at {ckpt}: run `train` first (same --scale and "
                         f"$COURSE_REHEARSAL)")
    state = checkpoint.load(ckpt)
    model = build_model(cfg, "cpu", None)
    checkpoint.load_state(model, state["model"], ckpt)
    return model.to(device).eval()


def cmd_evaluate(cfg, args) -> None:
    rank, world, device = recipe.setup()
    data = load_data(cfg, ("val",))
    T = _text_embeddings()
    for fold in cfg.folds:
        model = load_trained(cfg, fold, device)
        held = pascal.fold_classes(fold)[0]
        eps = pascal.episodes(data["val"], held)
        t0 = time.time()
        r = evaluate_fold(model, data["val"], eps, T)
        r.update({"fold": fold, "held_out": [pascal.CLASSES[c - 1] for c in held], "eval_seconds": time.time() - t0,
                  "n_val_images": len(data["val"]["ids"])})
        recipe.log(f"fold {fold}: zero-shot mIoU {100 * r['miou']:.1f} %, FB-IoU {100 * r['fb_iou']:.1f} % over "
                   f"{len(eps)} episodes on {world} process(es)")
        if not args.no_write:
            state = checkpoint.load(recipe.work_file(f"{NAME}-fold{fold}", cfg))
            recipe.write_result(fold_key(cfg, fold), {**r, "history": state["history"], "steps": state["step"]})
        if args.report and rank == 0:
            _write_json(args.report, {f"fold{fold}": r})


def _write_json(path, update: dict) -> None:
    old = json.loads(open(path).read()) if os.path.exists(path) else {}
    with checkpoint.atomic_path(path) as tmp:
        tmp.write_text(json.dumps({**old, **update}, indent=1, default=float))


def plan(cfg) -> str:
    """What the recipe downloads, the disk it needs, an estimate of its GPU-hours, and the commands."""
    from lib.lseg import weights

    est = estimate(cfg)
    folds = " ".join(str(f) for f in cfg.folds)
    return (
        f"The LSeg paper recipe ({cfg.name}): PASCAL-5i folds {folds}, {cfg.fold_backbone}, {cfg.fold_size}×"
        f"{cfg.fold_size}, {cfg.epochs} epochs, global batch {cfg.global_batch}, SGD lr {cfg.lr:g} (decoder "
        f"×{cfg.head_lr_mult:g}), made for {cfg.gpus} GPUs.\n"
        f"Run, from the course's folder (one node; see the README for several):\n"
        f"  export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1   # a restart reads fresh rendezvous keys\n"
        f"  torchrun --nproc_per_node={cfg.gpus} --max-restarts=3 -m lib.lseg.recipe train --scale paper\n"
        f"  torchrun --nproc_per_node={cfg.gpus} -m lib.lseg.recipe evaluate --scale paper\n"
        f"It downloads into $COURSE_CACHE (default ~/.cache/repro-course):\n"
        f"  {pascal.VOC_URL} (about 2.0 GB)\n  {weights.CLIP_HUB_URLS[0]} (about 0.6 GB)\n"
        f"  {_backbone_url(cfg)} (about {est['backbone_gb']:.1f} GB)\n"
        f"Disk: about {est['disk_gb']:.0f} GB (the archive, its extracted segmentation part, the weights, and "
        f"one resumable checkpoint per fold of about {est['checkpoint_gb']:.1f} GB).\n"
        f"GPU time: an ESTIMATE of about {est['gpu_hours']:.0f} GPU-hours ({est['gpu_hours_per_fold']:.0f} per fold), "
        f"made as {est['how']}.")


def estimate(cfg) -> dict:
    """Disk and GPU-hour estimates of the recipe (FLOPs counted on a model built on the meta device)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = LSeg(model_config(cfg.fold_backbone, arch="none", depth=0, out_c=512))
        x = torch.zeros(1, 3, cfg.fold_size, cfg.fold_size)
        T = torch.zeros(2, 512)
        with FlopCounterMode(display=False) as fc:
            model(x, T).sum().backward()
    params = sum(p.numel() for p in model.parameters())
    vit = sum(p.numel() for p in model.pretrained.model.parameters())
    flops = fc.get_total_flops()                              # one training image: forward + backward
    episodes = 1500 if cfg.fold_train_limit is None else cfg.fold_train_limit  # VOC2012 train: ~1 seen class/image
    sustained = 0.35 * 15.7e12                                # assumed: 35 % of a V100's fp32 peak
    per_fold = flops * episodes * cfg.epochs / sustained / 3600
    ckpt_gb = params * 4 * 2 / 1e9                            # weights + SGD momentum, fp32
    return {"flops_per_image": flops, "gpu_hours_per_fold": per_fold, "gpu_hours": per_fold * len(cfg.folds),
            "checkpoint_gb": ckpt_gb, "backbone_gb": vit * 4 / 1e9,
            "disk_gb": 2.0 + 1.0 + 0.35 + vit * 4 / 1e9 + ckpt_gb * len(cfg.folds),
            "how": (f"{flops / 1e12:.2f} TFLOP per training image (torch.utils.flop_counter, forward and backward "
                    f"at {cfg.fold_size}×{cfg.fold_size}) × about {episodes} training episodes × {cfg.epochs} "
                    f"epochs, divided by an assumed sustained 35 % of a V100's 15.7 TFLOP/s fp32 peak; not "
                    f"measured on a GPU")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.lseg.recipe", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=("train", "evaluate", "plan"))
    ap.add_argument("--scale", default="paper", help="the chapter's configuration to run (paper)")
    ap.add_argument("--report", help="also write what this run did to this JSON file (rank 0)")
    ap.add_argument("--no-write", action="store_true", help="evaluate without storing the result in the cache")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    cfg = config(args.scale)
    if args.command == "plan":
        print(plan(cfg))
        return 0
    {"train": cmd_train, "evaluate": cmd_evaluate}[args.command](cfg, args)
    recipe.barrier()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
