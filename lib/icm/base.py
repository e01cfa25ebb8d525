"""Training the base ICM codec end to end for the machine (rate + task loss, little pixel loss).

The poster's "end-to-end trained model without finetuning". Its predecessor (Le et al., ICASSP 2021,
arXiv 2108.09993) balances task, rate and pixel losses with a schedule; our loss *(our choice)* is

    L = λ_R · bpp  +  feature distance + w_KL · KL(class posteriors)  +  w_px(t) · MSE(x, x̂)

with ``w_px`` large during a short warm-up (so the codec first learns to reconstruct at all) and small afterwards,
so the decoder is driven by the machine, not by pixels: the regime in which transposed convolutions are free to draw
periodic patterns. The entropy bottleneck's quantiles (CompressAI's ``aux_loss``) are trained in the same step
through their own parameter group.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from lib.icm import codec as C
from lib.icm import data as D
from lib.icm.machine import task_distortion


@dataclass
class BaseConfig:
    N: int = 64
    M: int = 96
    steps: int = 1800
    batch: int = 8
    crop: int = 128
    lr: float = 3e-4
    lmbda_rate: float = 0.1      # λ_R
    w_px_warmup: float = 100.0   # pixel weight during warm-up
    w_px: float = 5.0            # pixel weight afterwards
    warmup_frac: float = 0.3
    w_kl: float = 0.1            # weight of the KL between class posteriors
    aux_lr: float = 1e-3         # Adam lr of the entropy bottleneck's quantiles (CompressAI's aux_loss)
    seed: int = 0


def make_loss(machine, cfg: BaseConfig):
    def loss_fn(model, batch):
        step, x = batch
        out = model(x)
        x_hat = out["x_hat"]
        bpp = C.bpp_from_likelihoods(out["likelihoods"], x.shape[0] * x.shape[2] * x.shape[3])
        with torch.no_grad():
            ref = machine(x)
        task = task_distortion(machine(x_hat), ref)
        mse = F.mse_loss(x_hat, x)
        w_px = cfg.w_px_warmup if step < cfg.warmup_frac * cfg.steps else cfg.w_px
        aux = model.aux_loss()
        loss = cfg.lmbda_rate * bpp + task["feature"] + cfg.w_kl * task["kl"] + w_px * mse + aux
        return {"loss": loss, "bpp": bpp.detach(), "feature": task["feature"].detach(), "kl": task["kl"].detach(),
                "mse": mse.detach(), "aux": aux.detach()}
    return loss_fn


def train_base(cfg: BaseConfig, train_photos, machine, ckpt_path, log_every: int = 20, progress: bool = True,
               init: C.ICMCodec | None = None, device: torch.device | str = "cpu"):
    """Train an :class:`~lib.icm.codec.ICMCodec` for the machine (resumable through ``ckpt_path``), from scratch or
    from ``init`` (CompressAI's pretrained weights at colab/paper scale); returns ``(codec, history)`` with the
    entropy coder updated (ready for ``compress``)."""
    from lib import runtime, train

    runtime.seed_everything(cfg.seed)
    model = (init if init is not None else C.build_codec(cfg.N, cfg.M)).to(device)
    machine = machine.to(device)
    aux_params = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam([{"params": main_params, "lr": cfg.lr}, {"params": aux_params, "lr": cfg.aux_lr}])

    def batches(step):
        return step, D.random_crops(train_photos, cfg.batch, cfg.crop, seed=cfg.seed * 100003 + step).to(device)

    hist = train.fit(model, batches, make_loss(machine, cfg), opt, cfg.steps, ckpt_path=ckpt_path, ckpt_every=50,
                     log_every=log_every, progress=progress)
    model = model.cpu().eval()  # the entropy coder runs on the CPU (and CPU/GPU can desync: brief, pitfall 1)
    model.update(force=True)
    return model, hist


def config_dict(cfg: BaseConfig) -> dict:
    return asdict(cfg)
