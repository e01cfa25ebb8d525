"""Training the base ICM codec: a sharp codec first, then trained for the machine.

The poster's "end-to-end trained model without finetuning". Its predecessor (Le et al., ICASSP 2021,
arXiv 2108.09993) balances task, rate and pixel losses with a schedule; ours *(our choice)* has two stages in one
resumable run:

1. **Rate-distortion** (``rd_steps``): CompressAI's loss ``bpp + rd_lmbda · 255² · MSE`` on crops of the training
   photos and object scenes, so the codec first learns to reconstruct sharply. Starting from the machine loss alone
   gave a blurry ~18 dB codec whose decodes the classifier could not read (``checkpoints/README.md``).
2. **The machine** (``steps``): ``bpp + lmbda_px · 255² · MSE + w_task · (feature distance + w_kl · KL)`` on object
   scenes, with a pixel weight about a tenth of stage 1's. The decoder is now driven by the machine, not by pixels:
   the regime in which transposed convolutions are free to draw periodic patterns, and they do within ~100 steps.

The entropy bottleneck's quantiles (CompressAI's ``aux_loss``) are trained in the same step through their own
parameter group; the other parameters' gradient norm is clipped (Adam at 1e-3 without clipping diverged).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from lib import runtime, train
from lib.icm import codec as C
from lib.icm import data as D
from lib.icm.machine import task_distortion


@dataclass
class BaseConfig:
    N: int = 64
    M: int = 96
    rd_steps: int = 4000       # stage 1: rate-distortion
    rd_lmbda: float = 0.3      # stage-1 pixel weight λ (loss = bpp + λ·255²·MSE)
    rd_lr: float = 5e-4        # ÷5 for the last 20 % of stage 1
    crop: int = 128            # stage-1 crops (photos and object scenes, alternately)
    steps: int = 100           # stage 2: the machine
    lr: float = 3e-5
    lmbda_px: float = 0.026    # stage-2 pixel weight (same form as rd_lmbda)
    w_task: float = 5.0        # weight of the machine terms
    w_kl: float = 0.5          # weight of the KL between class posteriors, inside the machine terms
    task_crop: int = 160       # stage-2 object scenes
    batch: int = 8
    clip: float = 1.0          # max gradient norm (codec parameters, not the quantiles)
    aux_lr: float = 1e-2       # Adam lr of the entropy bottleneck's quantiles (CompressAI's aux_loss)
    seed: int = 0


def make_loss(machine, cfg: BaseConfig):
    def loss_fn(model, batch):
        step, x = batch
        out = model(x)
        x_hat = out["x_hat"]
        bpp = C.bpp_from_likelihoods(out["likelihoods"], x.shape[0] * x.shape[2] * x.shape[3])
        mse = F.mse_loss(x_hat, x)
        aux = model.aux_loss()
        terms = {"stage": 1 if step < cfg.rd_steps else 2, "bpp": bpp.detach(), "mse": mse.detach(),
                 "aux": aux.detach()}
        if step < cfg.rd_steps:
            return {"loss": bpp + cfg.rd_lmbda * 255 ** 2 * mse + aux, **terms}
        with torch.no_grad():
            ref = machine(x)
        task = task_distortion(machine(x_hat), ref)
        loss = bpp + cfg.lmbda_px * 255 ** 2 * mse + cfg.w_task * (task["feature"] + cfg.w_kl * task["kl"]) + aux
        return {"loss": loss, **terms, "feature": task["feature"].detach(), "kl": task["kl"].detach()}
    return loss_fn


def lr_factor(cfg: BaseConfig, step: int) -> float:
    """Multiplier of ``rd_lr`` for the codec's parameters at ``step``."""
    if step < cfg.rd_steps:
        return 1.0 if step < 0.8 * cfg.rd_steps else 0.2
    return cfg.lr / cfg.rd_lr


def train_base(cfg: BaseConfig, train_photos, train_stamps, machine, ckpt_path, log_every: int = 20,
               progress: bool = True, init: C.ICMCodec | None = None, device: torch.device | str = "cpu",
               ckpt_every: int = 50):
    """Train an :class:`~lib.icm.codec.ICMCodec` for the machine (resumable through ``ckpt_path``), from scratch or
    from ``init`` (CompressAI's pretrained weights at colab/paper scale: pass ``rd_steps=0``); returns
    ``(codec, history)`` with the entropy coder updated (ready for ``compress``)."""
    runtime.seed_everything(cfg.seed)
    model = (init if init is not None else C.build_codec(cfg.N, cfg.M)).to(device)
    machine = machine.to(device)
    aux_params = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam([{"params": main_params, "lr": cfg.rd_lr}, {"params": aux_params, "lr": cfg.aux_lr}])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, [lambda s: lr_factor(cfg, s), lambda s: 1.0])

    def batches(step):
        seed = cfg.seed * 100003 + step
        if step >= cfg.rd_steps and train_stamps is None:  # no stamps: crops of the photos (COCO at colab)
            x = D.random_crops(train_photos, cfg.batch, cfg.task_crop, seed)
        elif step >= cfg.rd_steps:
            x = D.random_scenes(train_photos, train_stamps, cfg.batch, cfg.task_crop, seed)
        elif step % 2:
            x = D.random_crops(train_photos, cfg.batch, cfg.crop, seed)
        else:
            x = D.random_scenes(train_photos, train_stamps, cfg.batch, cfg.crop, seed)
        return step, x.to(device)

    hist = train.fit(model, batches, make_loss(machine, cfg), opt, cfg.rd_steps + cfg.steps, ckpt_path=ckpt_path,
                     ckpt_every=ckpt_every, scheduler=sched, log_every=log_every, progress=progress,
                     before_step=lambda: torch.nn.utils.clip_grad_norm_(main_params, cfg.clip))
    model = model.cpu().eval()  # the entropy coder runs on the CPU (CPU and GPU entropy coding can disagree)
    model.update(force=True)
    return model, hist


def config_dict(cfg: BaseConfig) -> dict:
    return asdict(cfg)
