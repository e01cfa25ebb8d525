"""LSeg's zero-shot recipe on the PASCAL-5i folds, as a command (the ``paper`` scale of chapter 3).

    torchrun --nproc_per_node=8 --max-restarts=3 -m lib.lseg.recipe train --scale paper   # every fold
    torchrun --nproc_per_node=8 -m lib.lseg.recipe evaluate --scale paper
    python -m lib.lseg.recipe plan --scale paper                                 # what it downloads and costs

``train`` trains one LSeg per fold (:class:`lib.lseg.config.PaperRecipe`): each rank reads its shard of the
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
from torch.utils.flop_counter import FlopCounterMode

from lib import recipe, runtime, scale, train
from lib.lseg import pascal, training, weights
from lib.lseg.config import CONFIGS, LSegConfig, PaperRecipe
from lib.lseg.model import LSeg, architecture
from lib.storage import cache, checkpoint

NAME = "lseg-paper"
LABELS = [pascal.OTHERS] + pascal.CLASSES
# the ImageNet ViT of each backbone: timm's own Hugging Face repository (sha256 recorded at first use)
BACKBONE_REPOS = {
    "vitb32_384": "timm/vit_base_patch32_384.augreg_in21k_ft_in1k",
    "vitl16_384": "timm/vit_large_patch16_384.augreg_in21k_ft_in1k",
}
KILL_ENV = "COURSE_RECIPE_KILL_AT"   # "RANK:STEP": that rank kills itself after STEP, in torchrun's first attempt


def config(name: str = "paper") -> LSegConfig:
    """The chapter's configuration for ``name`` (rehearsed under ``$COURSE_REHEARSAL=1``); it must have a recipe."""
    scale.set_scale(name)
    cfg = scale.pick(CONFIGS, chapter="3")
    if cfg.recipe is None:
        raise SystemExit(f"the LSeg recipe runs the `paper` configuration; `{name}` is the chapter's own (run the "
                         f"chapter with COURSE_SCALE={name})")
    return cfg


def fold_key(cfg: LSegConfig, fold: int) -> str:
    """The cache key of one fold's result: the fold and every field of the recipe."""
    return recipe.results_key(f"{NAME}-fold{fold}", cfg.recipe)


def work_file(cfg: LSegConfig, fold: int):
    """The resumable training checkpoint of one fold."""
    return recipe.work_file(f"{NAME}-fold{fold}", cfg.recipe)


def results(cfg) -> dict:
    """``{fold: result}`` for every fold of ``cfg`` whose evaluation is in the course cache."""
    out = {}
    for f in cfg.recipe.folds:
        r = recipe.read_result(fold_key(cfg, f))
        if r is not None:
            out[f] = r
    return out


def require(cfg) -> dict | None:
    """The chapter's call: ``None`` for a configuration without the recipe (``tiny``, ``colab``); for ``paper`` the
    results of every fold, or :class:`lib.recipe.ResultsMissing` with the commands that produce them, what they
    download, the disk they need and an estimate of their GPU-hours (never a smaller run instead)."""
    if cfg.recipe is None:
        return None
    found = results(cfg)
    missing = [f for f in cfg.recipe.folds if f not in found]
    if missing:
        raise recipe.ResultsMissing(
            f"chapter 3 at `{cfg.label}` reads the results of the paper recipe, and fold(s) "
            f"{', '.join(map(str, missing))} are not in the course cache ({cache.cache_dir()}) yet. "
            f"The chapter does not run a smaller configuration instead.\n\n" + plan(cfg))
    return found


# ------------------------------------------------------------------------------------------------------ training
def build_model(rc: PaperRecipe, device, backbone_state: dict | None) -> LSeg:
    """The recipe's LSeg (no spatial blocks, CLIP's 512-d text width), its ViT from ``backbone_state``."""
    model = LSeg(architecture(rc.backbone, arch="none", depth=0, out_c=512))
    if backbone_state is not None:
        checkpoint.load_state(model.pretrained.model, backbone_state, "the ImageNet ViT weights")
    return model.to(device)


def optimizer(rc: PaperRecipe, model: LSeg, steps_per_epoch: int):
    """SGD with the official parameter groups (image encoder at ``lr``, decoder at ``head_lr_mult × lr``) and the
    poly decay stepped once per epoch."""
    enc = list(model.pretrained.parameters())
    ids = {id(p) for p in enc}
    rest = [p for p in model.parameters() if id(p) not in ids]
    opt = torch.optim.SGD([{"params": enc, "lr": rc.lr}, {"params": rest, "lr": rc.lr * rc.head_lr_mult}],
                          lr=rc.lr, momentum=rc.momentum, weight_decay=rc.weight_decay)
    sch = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: max(0.0, 1 - (s // steps_per_epoch) / rc.epochs) ** rc.poly_power)
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


def train_fold(rc: PaperRecipe, fold: int, data: dict, T: torch.Tensor, device, backbone_state=None, ckpt_path=None,
               freeze_bn: bool = False, progress: bool = True, on_step=None) -> tuple[LSeg, list, dict]:
    """One fold's model, trained on its seen classes; returns (model, history, facts about the run).
    ``on_step(step, terms)`` is called after every step (e.g. to time them)."""
    rank, world = train.distributed()
    runtime.seed_everything(rc.seed)
    seen = pascal.fold_classes(fold)[1]
    eps = pascal.episodes(data["train"], seen)
    sampler = recipe.EpochSampler(len(eps), rc.global_batch, rank, world, rc.seed)
    steps = sampler.steps_per_epoch * rc.epochs
    model = build_model(rc, device, backbone_state)
    opt, sch = optimizer(rc, model, sampler.steps_per_epoch)
    recipe.log(f"fold {fold}: {len(eps)} training episodes, {world} process(es) × {sampler.per_rank} per step, "
               f"{sampler.steps_per_epoch} steps per epoch, {steps} steps")
    t0 = time.time()
    history = train.fit(model, pascal.episode_batches(data["train"], eps, sampler, rc.seed),
                        training.episode_loss(T, freeze_bn), opt, steps, scheduler=sch, ckpt_path=ckpt_path,
                        ckpt_every=rc.ckpt_every, log_every=max(1, sampler.steps_per_epoch), sync_bn=rc.sync_bn,
                        progress=progress,
                        local_batches=True, ddp_kwargs={"find_unused_parameters": True},
                        on_step=_chain(_kill_hook(rank), on_step))
    facts = {"world": world, "steps": steps, "steps_per_epoch": sampler.steps_per_epoch, "train_episodes": len(eps),
             "per_rank_batch": sampler.per_rank, "seconds": time.time() - t0,
             "shards": recipe.shard_report(len(eps), rc.global_batch, world, rc.seed)}
    return model.eval(), history, facts


# ---------------------------------------------------------------------------------------------------------- the CLI
def _text_embeddings() -> torch.Tensor:
    return training.fold_text_encoder("clip")(LABELS).float()


def _backbone_url(rc: PaperRecipe) -> str:
    return weights.hub_url(BACKBONE_REPOS[rc.backbone], weights.TIMM_HUB_REVISION, weights.TIMM_HUB_FILE)


def _backbone(rc: PaperRecipe) -> dict:
    if recipe.local_rank() == 0:
        weights.timm_vit(BACKBONE_REPOS[rc.backbone])
    recipe.barrier()
    return weights.timm_vit(BACKBONE_REPOS[rc.backbone])


def cmd_train(cfg, args) -> None:
    rank, world, device = recipe.setup()
    data = pascal.load_splits(cfg.recipe.size, {"train": cfg.recipe.train_limit})
    T = _text_embeddings()
    vit = _backbone(cfg.recipe)
    for fold in cfg.recipe.folds:
        ckpt = work_file(cfg, fold)
        _, history, facts = train_fold(cfg.recipe, fold, data, T, device, vit, ckpt_path=ckpt, progress=not args.quiet)
        recipe.log(f"fold {fold}: trained ({facts['steps']} steps, {facts['seconds']:.0f} s); checkpoint {ckpt}")
        if args.report and rank == 0:
            _write_json(args.report, {f"fold{fold}": {**facts, "history": history, "checkpoint": str(ckpt)}})


def load_trained(cfg, fold: int, device) -> LSeg:
    """The model a finished ``train`` left in its checkpoint."""
    ckpt = work_file(cfg, fold)
    if not os.path.exists(ckpt):
        raise SystemExit(f"fold {fold} has no trained model at {ckpt}: run `train` first (same --scale and "
                         f"$COURSE_REHEARSAL)")
    state = checkpoint.load(ckpt)
    model = build_model(cfg.recipe, "cpu", None)
    checkpoint.load_state(model, state["model"], ckpt)
    return model.to(device).eval()


def cmd_evaluate(cfg, args) -> None:
    rank, world, device = recipe.setup()
    data = pascal.load_splits(cfg.recipe.size, {"val": cfg.recipe.val_limit})
    T = _text_embeddings()
    for fold in cfg.recipe.folds:
        model = load_trained(cfg, fold, device)
        held = pascal.fold_classes(fold)[0]
        eps = pascal.episodes(data["val"], held)
        t0 = time.time()
        r = pascal.evaluate_fold(model, data["val"], eps, T)
        r.update({"fold": fold, "held_out": [pascal.CLASSES[c - 1] for c in held], "eval_seconds": time.time() - t0,
                  "n_val_images": len(data["val"]["ids"])})
        recipe.log(f"fold {fold}: zero-shot mIoU {100 * r['miou']:.1f} %, FB-IoU {100 * r['fb_iou']:.1f} % over "
                   f"{len(eps)} episodes on {world} process(es)")
        if not args.no_write:
            state = checkpoint.load(work_file(cfg, fold))
            recipe.write_result(fold_key(cfg, fold), {**r, "history": state["history"], "steps": state["step"]})
        if args.report and rank == 0:
            _write_json(args.report, {f"fold{fold}": r})


def _write_json(path, update: dict) -> None:
    old = json.loads(open(path).read()) if os.path.exists(path) else {}
    with checkpoint.atomic_path(path) as tmp:
        tmp.write_text(json.dumps({**old, **update}, indent=1, default=float))


def plan(cfg) -> str:
    """What the recipe downloads, the disk it needs, an estimate of its GPU-hours, and the commands."""
    rc = cfg.recipe
    est = estimate(rc)
    folds = " ".join(str(f) for f in rc.folds)
    return (
        f"The LSeg paper recipe ({cfg.name}): PASCAL-5i folds {folds}, {rc.backbone}, {rc.size}×"
        f"{rc.size}, {rc.epochs} epochs, global batch {rc.global_batch}, SGD lr {rc.lr:g} (decoder "
        f"×{rc.head_lr_mult:g}), made for {rc.gpus} GPUs.\n"
        f"Run, from the course's folder (one node; see the README for several):\n"
        f"  export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1   # a restart reads fresh rendezvous keys\n"
        f"  torchrun --nproc_per_node={rc.gpus} --max-restarts=3 -m lib.lseg.recipe train --scale paper\n"
        f"  torchrun --nproc_per_node={rc.gpus} -m lib.lseg.recipe evaluate --scale paper\n"
        f"It downloads into $COURSE_CACHE (default ~/.cache/repro-course):\n"
        f"  {pascal.VOC_URL} (about 2.0 GB)\n  {weights.CLIP_HUB_URLS[0]} (about 0.6 GB)\n"
        f"  {_backbone_url(rc)} (about {est['backbone_gb']:.1f} GB)\n"
        f"Disk: about {est['disk_gb']:.0f} GB (the archive, its extracted segmentation part, the weights, and "
        f"one resumable checkpoint per fold of about {est['checkpoint_gb']:.1f} GB).\n"
        f"GPU time: an ESTIMATE of about {est['gpu_hours']:.0f} GPU-hours ({est['gpu_hours_per_fold']:.0f} per fold), "
        f"made as {est['how']}.")


def estimate(rc: PaperRecipe) -> dict:
    """Disk and GPU-hour estimates of the recipe (FLOPs counted on a model built on the meta device)."""

    with torch.device("meta"):
        model = LSeg(architecture(rc.backbone, arch="none", depth=0, out_c=512))
        x = torch.zeros(1, 3, rc.size, rc.size)
        T = torch.zeros(2, 512)
        with FlopCounterMode(display=False) as fc:
            model(x, T).sum().backward()
    params = sum(p.numel() for p in model.parameters())
    vit = sum(p.numel() for p in model.pretrained.model.parameters())
    flops = fc.get_total_flops()                              # one training image: forward + backward
    episodes = 1500 if rc.train_limit is None else rc.train_limit  # VOC2012 train: ~1 seen class/image
    sustained = 0.35 * 15.7e12                                # assumed: 35 % of a V100's fp32 peak
    per_fold = flops * episodes * rc.epochs / sustained / 3600
    ckpt_gb = params * 4 * 2 / 1e9                            # weights + SGD momentum, fp32
    return {"flops_per_image": flops, "gpu_hours_per_fold": per_fold, "gpu_hours": per_fold * len(rc.folds),
            "checkpoint_gb": ckpt_gb, "backbone_gb": vit * 4 / 1e9,
            "disk_gb": 2.0 + 1.0 + 0.35 + vit * 4 / 1e9 + ckpt_gb * len(rc.folds),
            "how": (f"{flops / 1e12:.2f} TFLOP per training image (torch.utils.flop_counter, forward and backward "
                    f"at {rc.size}×{rc.size}) × about {episodes} training episodes × {rc.epochs} "
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
