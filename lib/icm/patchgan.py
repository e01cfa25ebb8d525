"""PatchGAN: the discriminator that judges an image patch by patch, and its losses (Le et al., ICIP 2022, Sec. 2
and Fig. 3).

The poster finetunes the ICM decoder against a PatchGAN: ``k`` patches of size ``s`` are cropped **at the same
positions** from the original ``x`` (real) and the decoded ``x̂`` (fake), and ``D`` returns a map of logits per
patch. Each logit's convolutional window is 70×70 pixels, 8 px apart (:func:`receptive_field`), clipped by the
patch's border (:func:`windows`): on our 32-px patches each of the 2×2 logits sees the whole patch; on 64-px patches
each of the 6×6 logits sees 47 to 63 px of the 64 per side; only on 128-px patches do logits (the 8×8 inner ones)
see whole 70×70 windows, each about 30 % of the patch. In training mode its BatchNorm layers also normalise with the statistics of all patches in the batch.

Architecture *(our choice: the pix2pix default, Isola et al., CVPR 2017, ``NLayerDiscriminator``)*::

    Conv4 s2 → LReLU(0.2) → [Conv4 s2 → BN → LReLU] × (n_layers − 1) → Conv4 s1 → BN → LReLU → Conv4 s1 → 1 map

The losses it is trained with, and the decoder against it, are in :mod:`lib.icm.decoder_finetuning`.
"""

from __future__ import annotations

import torch
from torch import nn

from lib import validate


class PatchDiscriminator(nn.Module):
    """pix2pix N-layer PatchGAN: ``forward(x) -> (B, 1, h, w)`` logits, one per window of :func:`windows`.

    With ``n_layers=3``: a 32-px patch gives a 2×2 map, 64 px 6×6, 128 px 14×14.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        if norm not in ("batch", "instance", "none"):
            raise ValueError(f"norm must be 'batch', 'instance' or 'none', got {norm!r}")
        self.in_channels, self.n_layers = in_channels, n_layers

        def block(c_in, c_out, stride):
            layers = [nn.Conv2d(c_in, c_out, 4, stride, 1, bias=norm == "none")]
            if norm == "batch":
                layers.append(nn.BatchNorm2d(c_out))
            elif norm == "instance":
                layers.append(nn.InstanceNorm2d(c_out))
            return layers + [nn.LeakyReLU(0.2, True)]

        layers = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += block(ndf * prev, ndf * mult, 2)
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += block(ndf * prev, ndf * mult, 1)
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:

        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[0] == 0:
            raise ValueError(f"x must be (B >= 1, {self.in_channels}, H, W) patches for the PatchDiscriminator, got "
                             f"{tuple(x.shape)}: cut patches with aligned_patches")
        x = validate.finite(validate.float_input(x, "x", "the PatchDiscriminator"), "x",
                            "the patches hold NaN/inf: check the images they were cut from")
        if min(x.shape[-2:]) < self.min_size():
            raise ValueError(f"patches of {x.shape[-2]}x{x.shape[-1]} px are too small for a {self.n_layers}-layer "
                             f"PatchGAN: use at least {self.min_size()} px (or fewer layers)")
        return self.model(x)

    def min_size(self) -> int:
        """Smallest input side that still yields a 1×1 map."""
        s = 1
        while self.output_size(s) < 1:
            s += 1
        return s

    def output_size(self, size: int) -> int:
        for _ in range(self.n_layers):
            size = (size + 2 - 4) // 2 + 1
        return size - 2


def receptive_field(n_layers: int = 3) -> int:
    """Receptive field (pixels) of one output logit: 70 for ``n_layers=3`` (pix2pix's "70×70 PatchGAN")."""
    strides = [2] * n_layers + [1, 1]
    rf = 1
    for s in reversed(strides):
        rf = (rf - 1) * s + 4
    return rf


def windows(D: PatchDiscriminator, size: int) -> list[tuple[int, int]]:
    """The rows (and columns) of a ``size``-px patch that each of ``D``'s logits sees, ``[(first, last), ...]``:
    its :func:`receptive_field` window, ``2**n_layers`` px apart, clipped by the patch's border."""
    stride, pad = 2 ** D.n_layers, 2 ** (D.n_layers + 1) - 1 + 2 ** D.n_layers   # each conv pads 1 px
    rf = receptive_field(D.n_layers)
    return [(max(0, i * stride - pad), min(size - 1, i * stride - pad + rf - 1)) for i in range(D.output_size(size))]


def aligned_patches(x: torch.Tensor, x_hat: torch.Tensor, k: int, size: int,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``k`` patches of ``size``×``size`` per image, cut at the **same** positions from ``x`` and ``x̂``.

    Returns ``(real, fake, positions)`` with ``real``/``fake`` of shape (B·k, C, size, size) and ``positions``
    (B, k, 2) top-left corners.
    """

    validate.same_shape(x, x_hat, "x", "x_hat")
    if x.dim() != 4:
        raise ValueError(f"x and x_hat must be (B, C, H, W) image batches, got shape {tuple(x.shape)}: add a batch "
                         f"dimension, x[None]")
    B, C, H, W = x.shape
    k = validate.integer(k, "k", minimum=1, hint="patches per image")
    size = validate.integer(size, "size", minimum=1, maximum=min(H, W),
                            hint=f"the patch side in pixels; a larger one does not fit images of {H}x{W}")
    if size > H or size > W or size < 1:
        raise ValueError(f"patch size {size} does not fit images of {H}x{W}: use a size <= {min(H, W)}")
    if k < 1:
        raise ValueError(f"k (patches per image) must be >= 1, got {k}")
    i = torch.randint(H - size + 1, (B, k), generator=generator)
    j = torch.randint(W - size + 1, (B, k), generator=generator)
    real, fake = [], []
    for b in range(B):
        for n in range(k):
            sl = (b, slice(None), slice(int(i[b, n]), int(i[b, n]) + size), slice(int(j[b, n]), int(j[b, n]) + size))
            real.append(x[sl])
            fake.append(x_hat[sl])
    return torch.stack(real), torch.stack(fake), torch.stack([i, j], -1)
