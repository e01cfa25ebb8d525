"""Why the adversarial term does not beat a pixel loss at ``tiny``: one point of chapter 1's diagnosis sweep.

A point is one finetuning run made exactly as the chapter makes its PatchGAN run (the committed tiny base, the
tiny configuration's batch, crops and learning rates, ``FinetuneConfig(k=3, patch=64)``), with only these changed:

``steps``       the training budget;
``seed``        the run's seed (crops, patches, batches, the discriminator's initial weights);
``lambda_adv``  the adversarial weight; ``0`` is the MSE-only control (no discriminator at all);
``layers``      which decoder layers train: ``"head"`` (``g_s.0`` and ``g_s.1``, the chapter's choice) or
                ``"decoder"`` (every layer of ``g_s``: the ceiling of what decoder-side finetuning can reach; the
                bitstream stays the base's, which each point checks by coding fidelity images again).

Each point is measured on the chapter's own evaluation sets, decoding the base codec's stored bitstreams: the
normalised artifact score at the dominant period ``P`` (:func:`lib.icm.checkerboard.checkerboard_score`) *and* its
two factors, the periodic amplitude (std of the per-phase means of the residual, on the 0-1 pixel scale) and the
residual's spread (its std): a score can fall because the pattern fades or because the decoder adds non-periodic
texture. Beside them: PSNR, top-1 agreement on the task scenes, and the losses over the steps.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lib.icm import codec as C
from lib.icm import evaluate, experiment
from lib.icm import decoder_finetuning as FT
from lib.icm.checkerboard import phase_means, residual
from lib.icm.config import CONFIGS
from lib.icm.machine import build, task_key, task_scores
from lib.sweep import one_thread

RESULT = Path(__file__).resolve().parent / "results" / "icm_diagnosis.json"   # scripts/sweeps.py icm
LAYERS = {"head": FT.TRAINABLE,
          "decoder": ("g_s.0", "g_s.1", "g_s.2", "g_s.3", "g_s.4", "g_s.5", "g_s.6")}
CHECK_BITSTREAM = 9  # fidelity images coded again by each finetuned codec to check its bytes
BUDGETS = (50, 150, 600, 1500)   # finetuning steps of the two head arms (150: the chapter's runs)
CURVE_POINTS = 60   # logged steps kept per loss curve (evenly spaced, the last one always)


@functools.lru_cache(maxsize=1)
def context(scale: str = "tiny") -> dict:
    """What every point shares, built once per process the way the chapter builds it: the base codec, the training
    photos, the machine, the two evaluation sets with the base's stored bitstreams, and the dominant period ``P``
    (where the base's score stands highest above the originals')."""
    cfg = CONFIGS[scale]
    with one_thread():
        machine = build(cfg)
        (train_photos, eval_photos), (_, eval_stamps) = experiment.photos_split(), experiment.stamps_split()
        base, _ = experiment.base_codec(cfg, train_photos, None, machine)
        evalset, taskset = experiment.eval_sets(cfg, eval_photos, eval_stamps, machine)
        images, task_imgs = [x for _, x in evalset], [x for _, x in taskset]
        bits, task_bits = C.compress_all(base, images), C.compress_all(base, task_imgs)
        r_base, r_orig = evaluate.artifact_scores(C.decompress_all(base, bits)), evaluate.artifact_scores(images)
    P = max(r_orig, key=lambda p: r_base[p] / r_orig[p])
    return {"cfg": cfg, "machine": machine, "base": base, "train_photos": train_photos, "images": images,
            "bits": bits, "task_imgs": task_imgs, "task_bits": task_bits, "task_names": [n for n, _ in taskset],
            "P": int(P), "orig_artifact": r_orig[P]}


def score_split(decoded: list[torch.Tensor], P: int) -> dict:
    """The artifact score at ``P`` and its two factors, each averaged over ``decoded``: ``amplitude`` (std of the
    residual's per-phase means) and ``spread`` (std of the residual); ``artifact`` is the mean of their ratio."""
    amp = [float(phase_means(x[0], P).std()) for x in decoded]
    spread = [float(residual(x[0], P).std()) for x in decoded]
    return {"artifact": float(np.mean([a / s if s > 1e-8 else 0.0 for a, s in zip(amp, spread)])),
            "amplitude": float(np.mean(amp)), "spread": float(np.mean(spread))}


def run_config(params: dict, scale: str = "tiny") -> FT.FinetuneConfig:
    """The :class:`~lib.icm.decoder_finetuning.FinetuneConfig` of one point (see the module's docstring for ``params``)."""
    unknown = set(params) - {"steps", "seed", "lambda_adv", "layers"}
    if unknown or params.get("layers", "head") not in LAYERS:
        raise ValueError(f"a chapter-1 sweep point takes steps, seed, lambda_adv and layers (one of {sorted(LAYERS)}),"
                         f" got {params}")
    lam = float(params["lambda_adv"])
    settings = {**CONFIGS[scale].finetune_settings(), "steps": int(params["steps"])}
    return FT.FinetuneConfig(k=3, patch=64, lmbda_adv=lam if lam > 0 else 0.0, adversarial=lam > 0,
                             trainable=LAYERS[params.get("layers", "head")], seed=int(params["seed"]), **settings)


def curves(history: list[dict], n: int = CURVE_POINTS) -> dict:
    """The logged losses at ``n`` evenly spaced logged steps: ``{"step": [...], "mse": [...], "adv": [...],
    "d_loss": [...]}`` (``adv`` and ``d_loss`` only where a discriminator trained)."""
    keep = sorted(set(np.linspace(0, len(history) - 1, min(n, len(history))).round().astype(int).tolist()))
    rows = [history[i] for i in keep]
    out = {"step": [int(r["step"]) for r in rows]}
    for k in ("mse", "adv", "d_loss"):
        if k in rows[0]:
            out[k] = [round(float(r[k]), 6) for r in rows]
    return out


def measure(variant: C.ICMCodec, ctx: dict) -> dict:
    """The chapter's measures of ``variant`` decoding the base's stored bitstreams: :func:`score_split` at ``P``,
    ``psnr`` (dB, fidelity set), ``top1`` (agreement on the task scenes, a fraction) and ``top1_n`` (of
    ``n_task``)."""
    x_hats = C.decompress_all(variant, ctx["bits"])
    task = task_scores(ctx["machine"], ctx["task_imgs"], C.decompress_all(variant, ctx["task_bits"]),
                       ctx["task_names"])
    top1 = float(task[task_key(ctx["machine"])])
    return {"P": ctx["P"], **score_split(x_hats, ctx["P"]),
            "psnr": float(np.mean([evaluate.psnr(x, xh) for x, xh in zip(ctx["images"], x_hats)])),
            "top1": top1, "top1_n": int(round(top1 * len(ctx["task_imgs"]))), "n_task": len(ctx["task_imgs"])}


def point(params: dict, scale: str = "tiny") -> dict:
    """Finetune as ``params`` says (``steps=0``: the base codec itself) and :func:`measure` it, adding
    ``same_bitstream`` (the finetuned codec codes the first fidelity images to the base's bytes), the losses over
    steps (:func:`curves`) and ``train_seconds``."""
    ctx = context(scale)
    if int(params["steps"]) == 0:
        with one_thread():
            return {**measure(ctx["base"], ctx), "same_bitstream": True, "losses": {"step": []}, "train_seconds": 0.0}
    cfg = run_config(params, scale)
    tag = hashlib.sha256(repr(cfg).encode()).hexdigest()[:16]
    ckpt = Path(tempfile.gettempdir()) / f"icm-sweep-{tag}.pt"   # an interrupted point resumes from here
    with one_thread():
        t0 = time.perf_counter()
        run = FT.finetune(ctx["base"], ctx["train_photos"], cfg, ckpt_path=ckpt)
        seconds = time.perf_counter() - t0
        variant = FT.with_head(ctx["base"], run["snapshots"][str(cfg.steps)])
        out = measure(variant, ctx)
        n = CHECK_BITSTREAM
        same = [b["sha256"] for b in C.compress_all(variant, ctx["images"][:n])] == \
            [b["sha256"] for b in ctx["bits"][:n]]
    ckpt.unlink(missing_ok=True)
    return {**out, "same_bitstream": bool(same), "losses": curves(run["history"]), "train_seconds": round(seconds, 1)}


def points() -> list[dict]:
    """The sweep's grid: the base codec (``steps=0``), then the MSE-only control and the PatchGAN at λ_adv 0.01 (the
    chapter's run) at each of ``BUDGETS``, and the ceiling arm (the whole decoder trained, MSE only) at 150 steps;
    three seeds per point. On one core of a busy 2-core machine a 1500-step PatchGAN point takes about 10 minutes."""
    head = lambda steps, lam, seed: {"steps": steps, "lambda_adv": lam, "layers": "head", "seed": seed}
    seeds = (0, 1, 2)
    grid = [head(0, 0.0, 0)]
    for steps in BUDGETS:
        grid += [head(steps, lam, s) for lam in (0.0, 0.01) for s in seeds]
    return grid + [{"steps": 150, "lambda_adv": 0.0, "layers": "decoder", "seed": s} for s in seeds]


def meta() -> dict:
    """The settings every point shares (the sweep file's ``meta``)."""
    return {"what": "chapter 1: decoder-head finetuning of the committed tiny base, FinetuneConfig(k=3, patch=64) "
                    "with the tiny scale's batch, crops and learning rates; steps=0 is the base codec",
            "threads": 1, "layers": {k: list(v) for k, v in LAYERS.items()}}

