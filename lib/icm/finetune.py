"""Decoder-head finetuning against a PatchGAN, with everything that makes the bitstream frozen (Le et al.,
ICIP 2022, Sec. 2, poster Fig. 3).

Generator = the whole codec, input = the uncompressed image ``x``. Frozen: ``g_a`` and the entropy bottleneck
(its density *and* its quantiles/medians, which define the symbols and the rANS tables), and the later decoder
layers. Trained: the first decoder block(s), ``g_s.0`` (transposed conv) and ``g_s.1`` (inverse GDN) by default,
and the discriminator ``D``. Losses (no task loss)::

    L_G = MSE(real patches, fake patches) + λ_adv · L_GAN(D(fake patches), real)
    L_D = ½ [L_GAN(D(real patches), real) + L_GAN(D(fake patches), fake)]

The MSE-only control is the same run with ``adversarial=False``. The LI ("low adversarial impact") setting
attenuates the adversarial dynamics *(our reading of the project page: lower learning rate, 128-px patches)*.

Both losses (:func:`lib.icm.patchgan.generator_loss`, :func:`lib.icm.patchgan.discriminator_loss`) are minimised
in one backward pass: the generator's adversarial term calls ``D`` through ``torch.func.functional_call`` with
*detached* weights, so it moves only the decoder head, and ``L_D`` sees a detached ``x̂``, so it moves only ``D``.
That lets :func:`lib.train.fit` (resumable, checkpointed) run the GAN.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lib import runtime, train
from lib.icm import data as D_
from lib.icm.codec import ICMCodec, ste_clamp
from lib.icm.patchgan import PatchDiscriminator, aligned_patches, discriminator_loss, generator_loss
from lib.storage import checkpoint

TRAINABLE = ("g_s.0", "g_s.1")  # first transposed convolution and the inverse GDN after it
BITSTREAM = ("g_a", "entropy_bottleneck", "h_a", "h_s", "gaussian_conditional")  # write the bytes


@dataclass(kw_only=True)
class FinetuneConfig:
    """One finetuning run. The fields without a default change with the scale: take them from the chapter's
    configuration (``lib.icm.config.ICMConfig.finetune_settings``). Every field is part of the run's memo key
    (``lib.storage.cache.key``)."""

    steps: int
    batch: int
    crop: int
    pool: int                 # training crops drawn once; each step samples `batch` of them
    k: int = 3                # patches per image
    patch: int = 64           # patch size s
    lmbda_adv: float = 0.01   # λ_adv
    lr_g: float               # decoder head
    lr_d: float = 2e-4        # discriminator (pix2pix)
    gan: str = "lsgan"
    ndf: int
    n_layers: int = 3
    adversarial: bool = True  # False: the MSE-only control
    trainable: tuple = TRAINABLE
    seed: int = 0


def freeze_for_finetuning(codec: ICMCodec, trainable: tuple[str, ...] = TRAINABLE
                          ) -> list[tuple[str, int]]:
    """Freeze every parameter except those under ``trainable``; return the
    trained ``(name, count)`` pairs. Refuses a layer that writes the bitstream."""
    names = [n for n, _ in codec.named_parameters()]
    for prefix in trainable:
        if not any(n.startswith(prefix + ".") for n in names):
            layers = {".".join(n.split(".")[:2])
                      for n in names if n.startswith("g_s")}
            raise ValueError(f"no parameters under {prefix!r}; decoder layers: "
                             f"{sorted(layers)}")
        if prefix.startswith(BITSTREAM):
            raise ValueError(f"{prefix!r} produces the bitstream: training it would "
                             f"change the bytes")
    out = []
    for n, p in codec.named_parameters():
        p.requires_grad_(any(n.startswith(t + ".") for t in trainable))
        if p.requires_grad:
            out.append((n, p.numel()))
    return out


class _Finetuned(nn.Module):
    """What :func:`lib.train.fit` trains: the decoder (head trainable) and, unless MSE-only, the discriminator."""

    def __init__(self, g_s: nn.Module, D: nn.Module | None):
        super().__init__()
        self.g_s, self.D = g_s, D


def make_loss(cfg: FinetuneConfig):
    """The loss :func:`lib.train.fit` minimises: ``L_G + L_D`` on aligned patches of ``x`` and ``x̂``
    (:func:`~lib.icm.patchgan.generator_loss`, :func:`~lib.icm.patchgan.discriminator_loss`)."""
    def loss_fn(model, batch):
        step, x, y_hat = batch
        x_hat = ste_clamp(model.g_s(y_hat))
        g = torch.Generator().manual_seed(cfg.seed * 7919 + step)
        real, fake, _ = aligned_patches(x, x_hat, cfg.k, cfg.patch, generator=g)
        gen = generator_loss(model.D, real, fake, cfg.lmbda_adv, cfg.gan)
        if model.D is None:
            return {"loss": gen["L_G"], "mse": gen["mse"].detach()}
        d_loss = discriminator_loss(model.D, real, fake, cfg.gan)
        return {"loss": gen["L_G"] + d_loss, "mse": gen["mse"].detach(), "adv": gen["adv"].detach(),
                "d_loss": d_loss.detach()}
    return loss_fn


@torch.no_grad()
def latent_pool(codec: ICMCodec, train_photos, cfg: FinetuneConfig, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Training crops and the rounded latents the frozen encoder gives them (what the decoder will receive)."""
    codec.eval()
    x = D_.random_crops(train_photos, cfg.pool, cfg.crop, seed=10_000 + cfg.seed).to(device)
    y_hat = torch.cat([codec.quantize(codec.g_a(c)) for c in x.split(32)])
    return x, y_hat


def finetune(base: ICMCodec, train_photos, cfg: FinetuneConfig, ckpt_path=None, milestones=None,
             progress: bool = False, device: torch.device | str = "cpu") -> dict:
    """Finetune a copy of ``base``; returns ``{"trained": [(name, count)], "snapshots": {step: head state},
    "history": [...]}`` (plain tensors and lists, so :func:`lib.storage.cache.memo` can store it)."""
    train_photos = D_.check_photos(train_photos, cfg.crop)
    runtime.seed_everything(cfg.seed)
    codec = copy.deepcopy(base).to(device)
    trained = freeze_for_finetuning(codec, cfg.trainable)
    x_pool, y_pool = latent_pool(codec, train_photos, cfg, device)
    D = PatchDiscriminator(3, cfg.ndf, cfg.n_layers).to(device) if cfg.adversarial else None
    model = _Finetuned(codec.g_s, D)
    groups = [{"params": [p for p in codec.g_s.parameters() if p.requires_grad], "lr": cfg.lr_g}]
    if D is not None:
        groups.append({"params": list(D.parameters()), "lr": cfg.lr_d, "betas": (0.5, 0.999)})
    opt = torch.optim.Adam(groups)

    def batches(step):
        idx = torch.randperm(cfg.pool, generator=torch.Generator().manual_seed(cfg.seed * 104729 + step))[:cfg.batch]
        return step, x_pool[idx.to(x_pool.device)], y_pool[idx.to(y_pool.device)]

    snapshots, hist = {}, []
    if ckpt_path is None and milestones:  # the milestones resume from one another: they need a checkpoint
        ckpt_path = Path(tempfile.mkdtemp(prefix="icm-ft-")) / "run.pt"
    # the milestone snapshots are kept beside the checkpoint, so a run killed past a milestone resumes with them
    snap_path = Path(f"{ckpt_path}.milestones.pt") if milestones else None
    if snap_path is not None and snap_path.exists():
        snapshots = checkpoint.load(snap_path)
    for m in sorted(set((milestones or []) + [cfg.steps])):
        if m != cfg.steps and str(m) in snapshots:
            continue
        if m != cfg.steps and Path(ckpt_path).exists() and checkpoint.load(ckpt_path)["step"] > m:
            Path(ckpt_path).unlink()  # past a milestone whose snapshot was never written: train again from step 0
        hist = train.fit(model, batches, make_loss(cfg), opt, m, ckpt_path=ckpt_path, ckpt_every=50,
                         log_every=10, progress=progress)
        snapshots[str(m)] = head_state(codec, cfg.trainable)
        if snap_path is not None:
            checkpoint.save(snapshots, snap_path)
    return {"trained": [[n, c] for n, c in trained], "snapshots": snapshots, "history": hist}


def head_state(codec: ICMCodec, trainable=TRAINABLE) -> dict:
    return {n: t.detach().cpu().clone() for n, t in codec.state_dict().items()
            if any(n.startswith(p + ".") for p in trainable)}


def with_head(base: ICMCodec, head: dict) -> ICMCodec:
    """A copy of ``base`` whose decoder head is replaced by ``head`` (everything else shared bit for bit)."""
    codec = copy.deepcopy(base)
    missing = set(head) - set(codec.state_dict())
    if missing:
        raise KeyError(f"head has entries the codec lacks: {sorted(missing)[:3]}")
    codec.load_state_dict({**codec.state_dict(), **head})
    return codec.eval()
