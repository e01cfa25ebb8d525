"""The partial-spoof countermeasures of the paper as a command (the ``paper`` scale of chapter 2).

    torchrun --nproc_per_node=8 --max-restarts=3 -m lib.spoof.recipe train --scale paper
    torchrun --nproc_per_node=8 -m lib.spoof.recipe evaluate --scale paper
    python -m lib.spoof.recipe plan --scale paper                    # what it downloads and costs

``train``: one SSL-Res1D per training set (LA or PartialSpoof spoofs, with the bona fide), ``SpoofPaperConfig``;
each rank reads its shard of each epoch (``lib.recipe.EpochSampler``), DDP averages the gradients (``lib.train.fit``:
a checkpoint every ``ckpt_every`` steps, resumed when torchrun restarts the job), the last ``num_avg`` epochs'
models are averaged. ``evaluate``: the utterances split over the ranks, scored and Grad-CAM'd with the chapter's own
functions, scores and CAMs gathered in order, RCQ sums all-reduced; rank 0 writes the results the chapter reads.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

from lib import recipe, scale, train
from lib.storage import cache, checkpoint, download

from . import config as spoof_config, countermeasure as CM, partialspoof as P
from .audio import SR, pad_repeat
from .metrics import eer
from .partialspoof_subset import real_subset
from .rcq import KINDS, rcq_from_sums, rcq_sums
from .ssl_res1d import XLSR53_URL, build_ssl_res1d

NAME = "spoof-paper"
TRAIN_ON = ("full", "partial")          # the training set's spoofs: ASVspoof 2019 LA, PartialSpoof


def config(name: str = "paper") -> spoof_config.SpoofPaperConfig:
    """The chapter's configuration for ``name`` (rehearsed under ``$COURSE_REHEARSAL=1``)."""
    scale.set_scale(name)
    if not isinstance(cfg := scale.pick(spoof_config.CONFIGS, chapter="2"), spoof_config.SpoofPaperConfig):
        raise SystemExit(f"the spoofing recipe runs the `paper` configuration; `{name}` is the chapter's own (run the "
                         f"chapter with COURSE_SCALE={name})")
    return cfg


def cm_name(train_on: str, seed: int) -> str:
    return f"{NAME}-{train_on}-seed{seed}"

def require(cfg) -> dict | None:
    """The chapter's call: ``None`` for a configuration without the recipe (``tiny``, ``colab``); for ``paper`` the
    result of every countermeasure, or :class:`lib.recipe.ResultsMissing` with the commands that produce them, what
    they download, the disk they need and an estimate of their GPU-hours (never a smaller run instead)."""
    if not isinstance(cfg, spoof_config.SpoofPaperConfig):
        return None
    found = {(tr, s): recipe.read_result(recipe.results_key(cm_name(tr, s), cfg)) for tr in TRAIN_ON for s in cfg.seeds}
    if missing := [f"{tr} (seed {s})" for tr in TRAIN_ON for s in cfg.seeds if found[(tr, s)] is None]:
        raise recipe.ResultsMissing(
            f"chapter 2 at `{cfg.label}` reads the results of the paper recipe, and the countermeasure(s) trained on "
            f"{', '.join(missing)} are not in the course cache ({cache.cache_dir()}) yet. The chapter does not run a "
            f"smaller configuration instead.\n\n" + plan(cfg))
    return found


def subset(cfg) -> tuple:
    """``(folder, manifest)`` of the data (``real_subset``): downloaded and extracted by each node's first process
    while the others wait; the XLSR-53 weights likewise."""
    if recipe.local_rank() == 0:
        real_subset(cfg.data)
        download.fetch(XLSR53_URL, reader="torch.load(weights_only=True)")
    recipe.barrier()
    return real_subset(cfg.data)


def load(cfg, root, split: str, group: str, utt: str) -> list:
    """``[item]`` of one utterance of a group (``bona``, ``partial``, ``full``), read as ``real_sets`` reads it (the
    evaluation's partial spoofs with their segments)."""
    return P.items(root, split, [utt], [int(group != "bona")], vad=group == "partial" and split != "train",
                   tr_width=cfg.data.tr_width or 0.0, ext=".flac" if group == "full" else ".wav",
                   label_format=cfg.data.labels, authors_vad=cfg.data.authors_vad)


def chunk_batches(cfg, root, specs: list, sampler: recipe.EpochSampler, seed: int, device):
    """``step -> (waves, labels)`` of this rank's part of the step: random ``crop_s`` chunks (a generator per seed,
    epoch and item) repeated to exactly ``crop_s``, so a step's global batch does not depend on how it is split."""
    length = int(cfg.train.crop_s * SR)

    def batches(step: int):
        idx, epoch, waves = sampler(step), sampler.epoch_of(step), []
        for k in idx:
            w = load(cfg, root, "train", *specs[k])[0]["wave"]
            o = int(np.random.default_rng([seed, epoch, k]).integers(max(1, w.numel() - length + 1)))
            waves.append(pad_repeat(w[o:o + length], length))
        return torch.stack(waves).to(device), torch.tensor([int(specs[k][0] != "bona") for k in idx], device=device)

    return batches


def lr_factor(cfg, steps_per_epoch: int):
    """``step -> factor`` of ``lr``: wedefense's ExponentialDecrease (``lr → final_lr`` over the run) times a
    warm-up from zero over ``warmup_epochs`` and ``lr_scale`` (the rate step ``s`` trains with)."""
    total, warm = cfg.train.epochs * steps_per_epoch, cfg.train.warmup_epochs * steps_per_epoch
    return lambda s: (cfg.train.lr_scale * min(1.0, s / warm if warm else 1.0)
                      * math.exp(s / total * math.log(cfg.train.final_lr / cfg.train.lr)))


def average_into(path, model, epoch: int) -> None:
    """Fold ``model``'s floating-point weights into the running average at ``path`` (rank 0), once per epoch: a job
    restarted after the epoch's average was written does not count it twice."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    avg = checkpoint.load(path) if os.path.exists(path) else {"epochs": [], "state": state}
    if epoch not in avg["epochs"]:
        n = len(avg["epochs"]) + 1
        for k, v in state.items():
            avg["state"][k] = avg["state"][k] + (v - avg["state"][k]) / n if v.is_floating_point() else v
        checkpoint.save({"epochs": avg["epochs"] + [epoch], "state": avg["state"]}, path)


def train_cm(cfg, train_on: str, seed: int, root, manifest, device, ckpt_path=None, avg_path=None,
             progress: bool = True, on_step=None) -> tuple:
    """One countermeasure trained on bona fide + ``train_on``; returns (model with the averaged weights, history,
    facts about the run)."""
    (rank, world), m = train.distributed(), manifest["train"]
    specs = [("bona", u) for u in m["bona"]] + [(train_on, u) for u in m[train_on]]
    sampler = recipe.EpochSampler(len(specs), cfg.train.batch_size, rank, world, seed)
    spe, steps, _ = sampler.steps_per_epoch, sampler.steps_per_epoch * cfg.train.epochs, torch.manual_seed(seed)
    model = cfg.model.factory()().to(device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.train.lr)
    sch = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(cfg, spe))
    recipe.log(f"{train_on}: {len(specs)} training utterances, {world} process(es) × {sampler.per_rank} per step, "
               f"{spe} steps per epoch, {steps} steps")

    def hooks(step, terms):
        epoch, end = divmod(step + 1, spe)
        if avg_path is not None and rank == 0 and not end and epoch > cfg.train.epochs - cfg.train.num_avg:
            average_into(avg_path, model, epoch)
        if on_step is not None:
            on_step(step, terms)

    t0 = time.time()
    history = train.fit(model, chunk_batches(cfg, root, specs, sampler, seed, device), CM.loss_fn, opt, steps,
                        scheduler=sch, ckpt_path=ckpt_path, ckpt_every=cfg.train.ckpt_every, log_every=max(1, spe // 5),
                        progress=progress, local_batches=True, on_step=hooks)
    recipe.barrier()
    avg = checkpoint.load(avg_path) if avg_path is not None and os.path.exists(avg_path) else None
    if avg is not None:
        checkpoint.load_state(model, avg["state"], avg_path)
    return model.eval(), history, {
        "world": world, "steps": steps, "steps_per_epoch": spe, "train_utterances": len(specs), "seconds": time.time()
        - t0, "per_rank_batch": sampler.per_rank, "averaged_epochs": avg["epochs"] if avg else [],
        "shards": recipe.shard_report(len(specs), cfg.train.batch_size, world, seed)}


def _mine(cfg, root, utts: list, fn) -> list:
    """``fn(items)`` over this rank's share of the ``(group, utterance)`` list, gathered back in its order."""
    items = [load(cfg, root, cfg.eval_split, *utts[i])[0] for i in recipe.rank_slice(len(utts), *train.distributed())]
    out = list(fn(items)) if items else []
    return recipe.gather_in_order(out, len(utts)), items, out


def evaluate_cm(cfg, model, root, manifest) -> dict:
    """``countermeasure.run``'s evaluation split over the ranks: scores and Grad-CAMs gathered in order, the RCQ sums
    all-reduced (``reduced_equals_gathered``: they agree with the sums of the gathered CAMs)."""
    m = manifest[cfg.eval_split]
    ps = [("bona", u) for u in m["bona"]] + [("partial", u) for u in m["partial"]]
    s_ps, s_full = (np.array(_mine(cfg, root, g, lambda it: CM.score(model, it, cfg.train.eval_batch))[0],
                             dtype=np.float64) for g in (ps, [("full", u) for u in m["full"]]))
    y_ps, nb = np.array([int(g != "bona") for g, _ in ps]), len(m["bona"])
    res = {"eer_ps": eer(y_ps, s_ps), "scores_ps": s_ps, "labels_ps": y_ps, "ids_ps": [u for _, u in ps],
           "eer_full": eer(np.r_[np.zeros(nb), np.ones(len(s_full))], np.r_[s_ps[:nb], s_full]),
           "world": train.distributed()[1], "utterances": len(ps) + len(s_full), "reduced_equals_gathered": True}
    partial = [("partial", u) for u in m["partial"]]
    for target, name in ((1, "spoof"), (0, "bona")):
        cams, items, local = _mine(cfg, root, partial, lambda it: CM.cams(model, it, target, cfg.train.eval_batch))
        segs = [it["segments"] for it in items]
        mine, gathered = rcq_sums(local, segs), rcq_sums(cams, recipe.gather_in_order(segs, len(partial)))
        sums = recipe.all_reduce_sum(torch.tensor([[mine["S"][k], mine["N"][k]] for k in KINDS], dtype=torch.float64))
        S, N = {k: float(sums[i, 0]) for i, k in enumerate(KINDS)}, {k: int(sums[i, 1]) for i, k in enumerate(KINDS)}
        res[f"cam_{name}"], res[f"rcq_{name}"], res["N"] = cams, rcq_from_sums(S, N), N
        res["reduced_equals_gathered"] &= N == gathered["N"] and all(
            math.isclose(S[k], gathered["S"][k], rel_tol=1e-9, abs_tol=1e-9) for k in KINDS)
    return res


def work(cfg, train_on: str, seed: int, what: str):
    return recipe.work_file(cm_name(train_on, seed), cfg, what)


def cmd_train(cfg, args) -> None:
    rank, world, device = recipe.setup()
    root, manifest = subset(cfg)
    for tr in args.train_on or TRAIN_ON:
        for seed in cfg.seeds:
            ckpt, avg = work(cfg, tr, seed, "train"), work(cfg, tr, seed, "average")
            _, history, facts = train_cm(cfg, tr, seed, root, manifest, device, ckpt, avg, progress=not args.quiet)
            recipe.log(f"{tr}: trained ({facts['steps']} steps, {facts['seconds']:.0f} s), epochs "
                       f"{facts['averaged_epochs']} averaged into {avg}")
            if args.report and rank == 0:
                _write_json(args.report, {cm_name(tr, seed): {**facts, "history": history}})


def load_trained(cfg, train_on: str, seed: int, device):
    """The countermeasure a finished ``train`` left: its averaged weights."""
    if not os.path.exists(avg := work(cfg, train_on, seed, "average")):
        raise SystemExit(f"the countermeasure trained on {train_on} (seed {seed}) has no averaged weights at {avg}: "
                         f"run `train` first (same --scale and $COURSE_REHEARSAL)")
    checkpoint.load_state(model := cfg.model.factory()(), checkpoint.load(avg)["state"], avg)
    return model.to(device).eval()


def cmd_evaluate(cfg, args) -> None:
    rank, world, device = recipe.setup()
    root, manifest = subset(cfg)
    for tr in args.train_on or TRAIN_ON:
        for seed in cfg.seeds:
            model, t0 = load_trained(cfg, tr, seed, device), time.time()
            r = {**evaluate_cm(cfg, model, root, manifest), "eval_seconds": time.time() - t0}
            recipe.log(f"{tr}: EER {r['eer_ps']:.2f} % on PartialSpoof {cfg.eval_split}, RCQ TR "
                       f"{r['rcq_spoof']['TR']:+.1f} % over {r['utterances']} utterances on {world} process(es)")
            if not args.no_write:
                st = checkpoint.load(work(cfg, tr, seed, "train"))
                recipe.write_result(recipe.results_key(cm_name(tr, seed), cfg), {
                    **r, "history": st["history"], "steps": st["step"], "state": model.cpu().state_dict()})
            if args.report and rank == 0:
                _write_json(args.report, {cm_name(tr, seed): {k: v for k, v in r.items() if k != "cam_bona"}})


def _write_json(path, update: dict) -> None:
    with checkpoint.atomic_path(path) as tmp, open(path) if os.path.exists(path) else open(os.devnull) as f:
        old = json.loads(f.read() or "{}")
        tmp.write_text(json.dumps({**old, **update}, default=lambda v: np.asarray(v).tolist()))


MEAN_S = 3.3            # mean PartialSpoof utterance length (s), assumed; audio: 16-bit 16 kHz wav, 32 kB/s


def estimate(cfg) -> dict:
    """Downloads, disk and GPU-hour estimates of the recipe (FLOPs counted on the model built on the meta device)."""
    from torch.utils.flop_counter import FlopCounterMode

    t, n, tr_n, runs = cfg.train, cfg.data.n_eval, cfg.data.n_train, 2 * len(cfg.seeds)
    with torch.device("meta"), FlopCounterMode(display=False) as fwd:
        model = build_ssl_res1d(frozen=cfg.model.frozen)
        model(torch.zeros(1, int(t.crop_s * SR)))
    with torch.device("meta"), FlopCounterMode(display=False) as both:
        model(torch.zeros(1, int(t.crop_s * SR))).sum().backward()
    params = sum(p.numel() for p in model.parameters())
    train_flops = both.get_total_flops() * sum(tr_n["bona"] + tr_n[k] for k in TRAIN_ON) * t.epochs
    eval_flops = fwd.get_total_flops() / t.crop_s * MEAN_S * (n["bona"] + 3 * n["partial"] + n["full"]) * 2
    gb = {"PartialSpoof train": (tr_n["bona"] + tr_n["partial"]) * MEAN_S * 32e3 / 1e9, "ASVspoof 2019 LA.zip": 7.0,
          f"PartialSpoof {cfg.eval_split}": (n["bona"] + n["partial"]) * MEAN_S * 32e3 / 1e9, "XLSR-53": 1.27}
    ckpt_gb = params * 4 * 3 / 1e9                            # weights + Adam's two moments, fp32
    return {"gpu_hours": len(cfg.seeds) * (train_flops + eval_flops) / (0.35 * 15.7e12) / 3600, "downloads_gb": gb,
            "disk_gb": 2 * sum(gb.values()) + runs * (ckpt_gb + 2 * params * 4 / 1e9), "checkpoint_gb": ckpt_gb,
            "how": f"{both.get_total_flops() / 1e12:.2f} TFLOP per {t.crop_s:g} s training chunk (torch.utils."
                   f"flop_counter, forward and backward) × the training utterances × {t.epochs} epochs, plus the "
                   f"forward passes of scoring and Grad-CAM at an assumed {MEAN_S} s per evaluation utterance, "
                   f"divided by an assumed sustained 35 % of a V100's 15.7 TFLOP/s fp32 peak; not measured on a GPU"}


def plan(cfg) -> str:
    """What the recipe downloads, the disk it needs, an estimate of its GPU-hours, and the commands."""
    est, t, ssl = estimate(cfg), cfg.train, "frozen" if cfg.model.frozen else "fine-tuned"
    urls = [*(P.PS_URLS[k] for k in ("protocols", "train", cfg.eval_split)), P.LA_URL, P.PS_VAD_URL, P.PS_SEGLAB_URL,
            XLSR53_URL]
    return (
        f"The spoofing paper recipe ({cfg.name}): SSL-Res1D on XLSR-53 ({ssl}), one countermeasure per training "
        f"set (ASVspoof 2019 LA, PartialSpoof) and seed {list(cfg.seeds)}, "
        f"{t.epochs} epochs of batch {t.batch_size}, Adam {t.lr:g} → {t.final_lr:g} after a {t.warmup_epochs}-epoch "
        f"warm-up, the last {t.num_avg} epochs averaged; Grad-CAM and RCQ on PartialSpoof {cfg.eval_split}.\n"
        f"Run, from the course's folder (one node; docs/paper.md has several nodes):\n"
        f"  export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1   # a restart reads fresh rendezvous keys\n"
        f"  torchrun --nproc_per_node=8 --max-restarts=3 -m lib.spoof.recipe train --scale paper\n"
        f"  torchrun --nproc_per_node=8 -m lib.spoof.recipe evaluate --scale paper\n"
        f"It downloads into $COURSE_CACHE (default ~/.cache/repro-course):\n  " + "\n  ".join(urls)
        + "".join(f"\n  {name}: about {v:.1f} GB" for name, v in est["downloads_gb"].items()) + "\n"
        f"Disk: about {est['disk_gb']:.0f} GB (the archives, the extracted audio, one resumable checkpoint per "
        f"countermeasure of about {est['checkpoint_gb']:.1f} GB, its averaged weights and its result).\n"
        f"GPU time: an ESTIMATE of about {est['gpu_hours']:.0f} GPU-hours, made as {est['how']}.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.spoof.recipe", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=("train", "evaluate", "plan"))
    ap.add_argument("--scale", default="paper", help="the chapter's configuration to run (paper)")
    ap.add_argument("--report", help="also write what this run did to this JSON file (rank 0)")
    ap.add_argument("--no-write", action="store_true", help="evaluate without storing the result in the cache")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--train-on", choices=TRAIN_ON, action="append", help="only this training set's countermeasure")
    args = ap.parse_args(argv)
    {"train": cmd_train, "evaluate": cmd_evaluate, "plan": lambda c, _: print(plan(c))}[args.command](
        config(args.scale), args)
    recipe.barrier()
    return torch.distributed.is_initialized() and torch.distributed.destroy_process_group() or 0


if __name__ == "__main__":
    sys.exit(main())
