"""Decoder finetuning, the paper's idea (Le et al., ICIP 2022, Sec. 2, poster Fig. 3): make an image-coding-for-
machines codec's decodes pleasant for humans without changing a byte of its bitstream.

**Frozen** (:func:`freeze_for_finetuning`): the encoder ``g_a`` and the entropy bottleneck (its density *and* its
quantiles/medians, which define the symbols and the rANS tables): the bitstream stays bit-identical. The later
decoder layers are frozen too. **Trained**: the first decoder block(s), ``g_s.0`` (transposed conv) and ``g_s.1``
(inverse GDN) by default (:data:`TRAINABLE`), and the discriminator ``D``, a PatchGAN
(:class:`lib.icm.patchgan.PatchDiscriminator`) that judges ``k`` patches of size ``s`` cut at the same positions
from the uncompressed ``x`` (real) and the decoded ``x̂`` (fake). **The loss**, with no task term::

    L_G = MSE(real patches, fake patches) + λ_adv · L_GAN(D(fake patches), real)      (generator_loss)
    L_D = ½ [L_GAN(D(real patches), real) + L_GAN(D(fake patches), fake)]              (discriminator_loss)

with ``L_GAN`` least squares (LSGAN) or BCE (:func:`gan_loss`). The MSE-only control is the same run with
``adversarial=False``. The LI ("low adversarial impact") setting attenuates the adversarial dynamics *(our reading
of the project page: lower learning rate, 128-px patches)*.

Both losses are minimised in one backward pass (:func:`make_loss`): the generator's adversarial term calls ``D``
through ``torch.func.functional_call`` with *detached* weights, so it moves only the decoder head, and ``L_D`` sees a
detached ``x̂``, so it moves only ``D``. That lets :func:`lib.train.fit` (resumable, checkpointed, with milestone
snapshots of the head) run the GAN.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lib import runtime, train, validate
from lib.icm import data as D_
from lib.icm.codec import ICMCodec, ste_clamp
from lib.icm.patchgan import PatchDiscriminator, aligned_patches

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

    @property
    def k_by_s(self) -> str:
        """``"3×64"``: patches per image × patch size, as the poster's Table 1 names its rows."""
        return f"{self.k}×{self.patch}"


def gan_loss(logits: torch.Tensor, target_is_real: bool, mode: str = "lsgan") -> torch.Tensor:
    """LSGAN: mean (D − t)²; BCE: binary cross-entropy with logits; t = 1 for real, 0 for fake."""
    target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    if mode == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    raise ValueError(f"mode must be 'lsgan' or 'bce', got {mode!r}: pick one of those (FinetuneConfig.gan)")


def generator_loss(D: nn.Module | None, real: torch.Tensor, fake: torch.Tensor,
                   lmbda_adv: float, mode: str = "lsgan") -> dict:
    """``L_G = MSE(real, fake) + λ_adv · L_GAN(D(fake), real)``. ``D``'s weights
    enter detached, so ``L_G`` moves only the decoder. ``D=None`` (the MSE-only
    control): the MSE alone. Returns ``L_G`` and its terms."""
    mse = F.mse_loss(fake, real)
    if D is None:
        return {"L_G": mse, "mse": mse}
    frozen = {n: p.detach() for n, p in D.named_parameters()}
    frozen.update(dict(D.named_buffers()))
    adv = gan_loss(functional_call(D, frozen, (fake,)), True, mode)
    return {"L_G": mse + lmbda_adv * adv, "mse": mse, "adv": adv}


def discriminator_loss(D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                       mode: str = "lsgan") -> torch.Tensor:
    """``L_D = ½ [L_GAN(D(real), real) + L_GAN(D(fake), fake)]``. ``fake``
    enters detached, so ``L_D`` moves only ``D``."""
    return 0.5 * (gan_loss(D(real), True, mode)
                  + gan_loss(D(fake.detach()), False, mode))


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
    (:func:`generator_loss`, :func:`discriminator_loss`)."""
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
def encode_latents(codec: ICMCodec, x: torch.Tensor) -> torch.Tensor:
    """The rounded latents ``ŷ`` the codec's encoder gives the images ``x`` (in chunks of 32)."""
    return torch.cat([codec.quantize(codec.g_a(c)) for c in x.split(32)])


@torch.no_grad()
def latent_pool(codec: ICMCodec, train_photos, cfg: FinetuneConfig, device="cpu",
                encode=encode_latents) -> tuple[torch.Tensor, torch.Tensor]:
    """Training crops and the rounded latents the frozen encoder gives them (what the decoder will receive).
    ``encode(codec, x)`` computes the latents (default :func:`encode_latents`)."""
    codec.eval()
    x = D_.random_crops(train_photos, cfg.pool, cfg.crop, seed=10_000 + cfg.seed).to(device)
    return x, encode(codec, x)


def finetune(base: ICMCodec, train_photos, cfg: FinetuneConfig, ckpt_path=None, milestones=None,
             progress: bool = False, device: torch.device | str = "cpu", encode=encode_latents) -> dict:
    """Finetune a copy of ``base``; returns ``{"trained": [(name, count)], "snapshots": {step: head state},
    "history": [...]}`` (plain tensors and lists, so :func:`lib.storage.cache.memo` can store it). ``encode``:
    how the training crops' latents are computed (:func:`latent_pool`)."""
    validate.integer(cfg.batch, "cfg.batch", minimum=1, maximum=validate.integer(cfg.pool, "cfg.pool", minimum=1),
                     hint="each step draws batch crops from the pool of cfg.pool crops; raise pool or lower batch")
    train_photos = D_.check_photos(train_photos, cfg.crop)
    runtime.seed_everything(cfg.seed)
    codec = copy.deepcopy(base).to(device)
    trained = freeze_for_finetuning(codec, cfg.trainable)
    x_pool, y_pool = latent_pool(codec, train_photos, cfg, device, encode)
    D = PatchDiscriminator(3, cfg.ndf, cfg.n_layers).to(device) if cfg.adversarial else None
    model = _Finetuned(codec.g_s, D)
    groups = [{"params": [p for p in codec.g_s.parameters() if p.requires_grad], "lr": cfg.lr_g}]
    if D is not None:
        groups.append({"params": list(D.parameters()), "lr": cfg.lr_d, "betas": (0.5, 0.999)})
    opt = torch.optim.Adam(groups)

    def batches(step):
        idx = torch.randperm(cfg.pool, generator=torch.Generator().manual_seed(cfg.seed * 104729 + step))[:cfg.batch]
        return step, x_pool[idx.to(x_pool.device)], y_pool[idx.to(y_pool.device)]

    heads: dict[int, dict] = {}
    hist = train.fit(model, batches, make_loss(cfg), opt, cfg.steps, ckpt_path=ckpt_path, ckpt_every=50,
                     log_every=10, progress=progress, milestones=(*(milestones or ()), cfg.steps), snapshots=heads,
                     snapshot=lambda _: head_state(codec, cfg.trainable))
    return {"trained": [[n, c] for n, c in trained], "snapshots": {str(m): h for m, h in heads.items()},
            "history": hist}


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
