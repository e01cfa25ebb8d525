"""The poster's recipe as a command (the ``paper`` scale of chapter 1): the base codec trained for Mask R-CNN, every
finetuning of poster Table 1, and their evaluation, under ``torchrun``.

    python -m lib.icm.recipe plan --scale paper                                   # downloads, disk, cost
    torchrun --nproc_per_node=8 --max-restarts=3 -m lib.icm.recipe train --scale paper
    torchrun --nproc_per_node=8 -m lib.icm.recipe evaluate --scale paper

``train``: each rank reads its shard of the training photos (:class:`lib.recipe.EpochSampler`: every photo once per
epoch, a fresh random crop each time), DDP averages the gradients (``lib.train.fit``, which checkpoints every few
steps and resumes when torchrun restarts the job). The losses, the frozen/trained split and the optimisers are the
chapter's own (:func:`lib.icm.base.make_loss`, :func:`lib.icm.decoder_finetuning.make_loss`, ``freeze_for_finetuning``).
``evaluate``: the fidelity and task images split over the ranks, each image's scores gathered back in order (mask
mAP from the gathered detections), written to the course cache (rank 0), where the chapter reads them
(:func:`require`).
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import re
import sys
import zipfile

import torch
from PIL import Image

from lib import recipe, runtime, scale, train
from lib.icm import base as B, codec as C, config, decoder_finetuning as FT, experiment as X
from lib.icm import machine as M
from lib.icm.patchgan import PatchDiscriminator
from lib.icm.recipe_results import NAME, estimate, evaluate_all, grid, plan, poster_rows, scorecard  # noqa: F401
from lib.images import to_tensor
from lib.storage import cache, checkpoint, download


def get_config(name: str = "paper") -> config.ICMPaperConfig:
    """The chapter's configuration ``name`` (rehearsed under ``$COURSE_REHEARSAL=1``); only ``paper`` has a recipe."""
    scale.set_scale(name)
    cfg = scale.pick(config.CONFIGS, chapter="1")
    if not isinstance(cfg, config.ICMPaperConfig):
        raise SystemExit(f"the ICM recipe runs the `paper` configuration; `{name}` is the chapter's own (run the "
                         f"chapter with COURSE_SCALE={name})")
    return cfg


def require(cfg) -> dict | None:
    """The chapter's call: ``None`` below ``paper``; at ``paper`` the recipe's results, or
    :class:`lib.recipe.ResultsMissing` with the commands, the downloads, the disk and a GPU-hour estimate."""
    if not isinstance(cfg, config.ICMPaperConfig):
        return None
    found = recipe.read_result(recipe.results_key(NAME, cfg))
    if found is None:
        raise recipe.ResultsMissing(
            f"chapter 1 at `{cfg.label}` reads the results of the paper recipe, and they are not in the course cache "
            f"({cache.cache_dir()}) yet. The chapter does not run a smaller configuration instead.\n\n" + plan(cfg))
    return found


# ---------------------------------------------------------------------------------------------------------- data
def node_first(fn):
    """``fn()`` on each node's first process, then on the others (a download is made once per node)."""
    first = recipe.local_rank() == 0
    out = fn() if first else None
    recipe.barrier()
    return out if first else fn()


class ZipPhotos:
    """The JPEGs ``<folder>/<12-digit id>.jpg`` of a COCO image zip (``cfg.coco_train_url``, fetched once, sha256
    recorded at first use), without the evaluation ids, read one at a time: item ``i`` of ``epoch`` is a random
    ``size``-px crop (random flip) of photo ``i`` with its shorter side resized to ``size + 32``, drawn from a
    generator seeded by (seed, epoch, i), so a batch does not depend on how the ranks split it."""

    def __init__(self, url: str, exclude=(), limit: int | None = None):
        self.path = node_first(lambda: download.fetch(url, reader="zip"))
        skip = {int(i) for i in exclude}
        with zipfile.ZipFile(self.path) as z:
            self.names = sorted(m for m in z.namelist() if (hit := re.fullmatch(r"[a-z0-9]+/(\d{12})\.jpg", m))
                                and int(hit.group(1)) not in skip)[:limit]
        if not self.names:
            raise ValueError(f"{self.path} holds no <folder>/NNNNNNNNNNNN.jpg outside the evaluation ids: is it a "
                             f"COCO image zip? Delete it and run again to download it afresh")
        self._zip = None

    def __len__(self) -> int:
        return len(self.names)

    def crops(self, idx: list[int], size: int, epoch: int, seed: int) -> torch.Tensor:
        self._zip = self._zip or zipfile.ZipFile(self.path)
        out = []
        for i in idx:
            g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + i)
            im = Image.open(io.BytesIO(self._zip.read(self.names[i]))).convert("RGB")
            s = (size + 32) / min(im.size)
            im = im.resize((max(size + 32, round(im.width * s)), max(size + 32, round(im.height * s))),
                           Image.Resampling.LANCZOS)
            x = to_tensor(im)
            a, b = (int(torch.randint(n - size + 1, (1,), generator=g)) for n in x.shape[-2:])
            x = x[:, a:a + size, b:b + size]
            out.append(x.flip(-1) if torch.rand((), generator=g) < 0.5 else x)
        return torch.stack(out)


# ------------------------------------------------------------------------------------------------------ training
class LossModule(torch.nn.Module):
    """``forward(batch) = loss_fn(inner, batch)``: the chapter's loss run inside DDP's forward (its losses call the
    model's parts and methods, which a ``DistributedDataParallel`` wrapper does not expose)."""

    def __init__(self, inner: torch.nn.Module, loss_fn):
        super().__init__()
        self.inner, self.loss_fn = inner, loss_fn

    def forward(self, batch):
        return self.loss_fn(self.inner, batch)


def _fit(cfg, inner, loss_fn, opt, photos, batch, crop, steps, ckpt, every, sched=None, before=None, latents=None):
    """``lib.train.fit`` of ``inner`` on this rank's shard of ``photos``; ``latents(x)`` adds the encoder's output."""
    rank, world = train.distributed()
    sampler = recipe.EpochSampler(len(photos), batch, rank, world, cfg.seed)
    device = next(inner.parameters()).device

    def batches(step):
        x = photos.crops(sampler(step), crop, sampler.epoch_of(step), cfg.seed).to(device)
        return (step, x) if latents is None else (step, x, latents(x))

    hist = train.fit(LossModule(inner, loss_fn), batches, lambda model, b: model(b), opt, steps, ckpt_path=ckpt,
                     ckpt_every=every, scheduler=sched, before_step=before, local_batches=True, progress=False,
                     log_every=max(1, min(100, steps // 20)))
    return hist, {"world": world, "steps": steps, "per_rank_batch": sampler.per_rank, "photos": len(photos),
                  "shards": recipe.shard_report(len(photos), batch, world, cfg.seed)}


def train_base(cfg, photos, machine, device):
    """The base codec: CompressAI's weights at ``base_quality`` trained for the machine with the chapter's loss
    (as ``lib.icm.experiment.train_base_gpu``); returns ``(codec ready to code, history, facts)``."""
    runtime.seed_everything(cfg.seed)
    codec = node_first(lambda: C.pretrained_init(cfg.base_quality)).to(device)
    bc = B.BaseConfig(N=codec.N, M=codec.M, rd_steps=0, steps=cfg.base_steps, batch=cfg.base_batch,
                      task_crop=cfg.base_crop, lr=cfg.base_lr, lmbda_px=C.COMPRESSAI_LMBDA[cfg.base_quality] / 10)
    aux = [p for n, p in codec.named_parameters() if n.endswith("quantiles")]
    main = [p for n, p in codec.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam([{"params": main, "lr": bc.rd_lr}, {"params": aux, "lr": bc.aux_lr}])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, [lambda s: B.lr_factor(bc, s), lambda s: 1.0])
    hist, facts = _fit(cfg, codec, B.make_loss(machine.to(device), bc), opt, photos, bc.batch, bc.task_crop,
                       bc.steps, recipe.work_file(f"{NAME}-base", cfg), cfg.base_ckpt_every, sched,
                       lambda: torch.nn.utils.clip_grad_norm_(main, bc.clip))
    codec = codec.cpu().eval()
    codec.update(force=True)
    return codec, hist, facts


def finetune(cfg, name: str, ft: FT.FinetuneConfig, base_codec, photos, device):
    """One run of the grid: the chapter's frozen/trained split, discriminator, optimisers and loss
    (:mod:`lib.icm.decoder_finetuning`) on fresh crops of this rank's photos; returns ``(head state, history, facts)``."""
    runtime.seed_everything(ft.seed)
    codec = copy.deepcopy(base_codec).to(device)
    FT.freeze_for_finetuning(codec, ft.trainable)
    D = PatchDiscriminator(3, ft.ndf, ft.n_layers).to(device) if ft.adversarial else None
    groups = [{"params": [p for p in codec.g_s.parameters() if p.requires_grad], "lr": ft.lr_g}]
    if D is not None:
        groups.append({"params": list(D.parameters()), "lr": ft.lr_d, "betas": (0.5, 0.999)})
    encode = torch.no_grad()(lambda x: codec.quantize(codec.g_a(x)))
    hist, facts = _fit(cfg, FT._Finetuned(codec.g_s, D), FT.make_loss(ft), torch.optim.Adam(groups), photos,
                       ft.batch, ft.crop, ft.steps, run_file(cfg, name), cfg.ft_ckpt_every, latents=encode)
    return FT.head_state(codec.cpu(), ft.trainable), hist, facts


def run_file(cfg, name: str):
    return recipe.work_file(f"{NAME}-ft-{re.sub(r'[^A-Za-z0-9]+', '', name)}", cfg)


def load_trained(cfg) -> tuple[C.ICMCodec, dict]:
    """The base codec and ``{run: head}`` that a finished ``train`` left in its checkpoints."""
    def inner(path, prefix=""):
        if not os.path.exists(path):
            raise SystemExit(f"no trained model at {path}: run `train` first (same --scale and $COURSE_REHEARSAL)")
        return {k[len("inner.") + len(prefix):]: v for k, v in checkpoint.load(path)["model"].items()
                if k.startswith("inner." + prefix)}

    codec = C.ICMCodec.from_state_dict(inner(recipe.work_file(f"{NAME}-base", cfg))).eval()
    codec.update(force=True)
    heads = {}
    for name, ft in grid(cfg).items():
        g_s = inner(run_file(cfg, name), "g_s.")
        heads[name] = {f"g_s.{k}": v for k, v in g_s.items()
                       if any(f"g_s.{k}".startswith(t + ".") for t in ft.trainable)}
    return codec, heads


# ---------------------------------------------------------------------------------------------------------- the CLI
def cmd_train(cfg, args) -> None:
    rank, world, device = recipe.setup()
    src = cfg.base_source
    photos = ZipPhotos(src.train_url, cfg.coco_ids, src.train_images)
    machine = node_first(lambda: M.build(cfg, device))
    recipe.log(f"base codec: {len(photos)} photos, {cfg.base_steps} steps of {cfg.base_batch} crops on {world} "
               f"process(es)")
    codec, hist, facts = train_base(cfg, photos, machine, device)
    report = {"base": {**facts, "history": hist}}
    for name, ft in grid(cfg).items():
        recipe.log(f"{name}: {ft.steps} steps of {ft.batch} crops")
        _, h, f = finetune(cfg, name, ft, codec, photos, device)
        report[name] = {**f, "history": h}
    recipe.log(f"trained the base and {len(report) - 1} finetunings; checkpoints in {cache.cache_dir('work')}")
    if args.report and rank == 0:
        _write_json(args.report, {"train": report})


def cmd_evaluate(cfg, args) -> None:
    rank, world, device = recipe.setup()
    codec, heads = load_trained(cfg)
    machine = node_first(lambda: M.build(cfg, "cpu"))
    fid, task = node_first(lambda: X.eval_sets(cfg, None, None, machine))
    r = evaluate_all(codec, heads, fid, task, machine)
    recipe.log(f"evaluated {len(r['scores'])} variants on {len(fid)} + {len(task)} images over {world} process(es)")
    if not args.no_write:
        states = {n: checkpoint.load(run_file(cfg, n)) for n in heads}
        base_state = checkpoint.load(recipe.work_file(f"{NAME}-base", cfg))
        recipe.write_result(recipe.results_key(NAME, cfg), {
            **r, "history": {"base": base_state["history"], **{n: s["history"] for n, s in states.items()}},
            "steps": {"base": base_state["step"], **{n: s["step"] for n, s in states.items()}}})
    if args.report and rank == 0:
        _write_json(args.report, {"evaluate": r})


def _write_json(path, update: dict) -> None:
    old = json.loads(open(path).read()) if os.path.exists(path) else {}
    with checkpoint.atomic_path(path) as tmp:
        tmp.write_text(json.dumps({**old, **update}, indent=1, default=float))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.icm.recipe", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=("train", "evaluate", "plan"))
    ap.add_argument("--scale", default="paper", help="the chapter's configuration to run (paper)")
    ap.add_argument("--report", help="also write what this run did to this JSON file (rank 0)")
    ap.add_argument("--no-write", action="store_true", help="evaluate without storing the result in the cache")
    args = ap.parse_args(argv)
    cfg = get_config(args.scale)
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
