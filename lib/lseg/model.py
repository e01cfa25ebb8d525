"""LSeg: a dense image encoder whose pixel embeddings live in a frozen text encoder's space.

Li, Weinberger, Belongie, Koltun, Ranftl, "Language-driven Semantic Segmentation", ICLR 2022 (arXiv 2201.03546),
§3 (Fig. 1), as the official ``LSegNet`` (github isl-org/lang-seg) builds it::

    image x ─ ViT (timm) ─ tokens at blocks `hooks` ─ reassemble (readout "project", 1×1, resample ×4 ×2 ×1 ×½)
      ─ layerK_rn (3×3 → F features) ─ refinenet4 → 3 → 2 → 1 (fusion, ×2 each) ─ head1 (1×1 → C) ─ L2 norm ─ I
    labels l_1..l_N ─ frozen text encoder ─ L2 norm ─ T (N × C)
    F_logits = t · I Tᵀ  with a FIXED t = 1/0.07      (B, N, H/2, W/2)
      ─ spatial regularization (none | bottleneck | depthwise, depth d) ─ bilinear ×2 ─ logits (B, N, H, W)

Module names follow the official state dict (``pretrained.model``, ``pretrained.act_postprocess1..4``,
``scratch.layer1_rn..``, ``scratch.refinenet1..4``, ``scratch.head1``, ``scratch.head_block``) so the released
checkpoint loads with :func:`from_official_state_dict`. One class serves every scale; :data:`ARCHITECTURES` holds
the released ViT-L/16, the ViT-B/32 ablation size and a ``tiny`` CPU architecture (same code path, small widths).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import timm
import torch
import torch.nn.functional as nnF
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from lib import validate
from lib.lseg.spatial_regularization import SpatialRegularization
from lib.lseg.text import TextEncoder, check_labels

TEMPERATURE = 1 / 0.07  # fixed in the official code (not learned, not saved)
STRIDES = (4, 8, 16, 32)  # image strides of the four reassembled maps


@dataclass(frozen=True)
class Architecture:
    """The sizes of one LSeg: its ViT, the reassemble and fusion widths, the text width, the spatial blocks."""

    backbone: str | dict          # a timm model name, or kwargs for timm's VisionTransformer (random init)
    patch: int
    hooks: tuple[int, ...]        # indices of the ViT blocks whose outputs are reassembled
    vit_features: int
    features: tuple[int, ...]     # channels after the 1×1 of each reassemble branch
    fusion: int = 256             # F, the width of the fusion ("scratch") path
    out_c: int = 512              # C, the text-embedding width (CLIP ViT-B/32 text tower: 512)
    arch: str = "none"            # spatial regularization: none | bottleneck | depthwise
    depth: int = 0
    activation: str = "lrelu"


ARCHITECTURES = {
    # the released demo / zero-shot model: `--backbone clip_vitl16_384`
    "vitl16_384": Architecture("vit_large_patch16_384", 16, (5, 11, 17, 23), 1024, (256, 512, 1024, 1024)),
    # the ablation size: `clip_vitb32_384` (same reassemble rule relative to the patch grid)
    "vitb32_384": Architecture("vit_base_patch32_384", 32, (2, 5, 8, 11), 768, (96, 192, 384, 768)),
    # CPU miniature: a 4-block ViT with 8-px patches, small widths; out_c = the MiniLM text width
    "tiny": Architecture(dict(img_size=64, patch_size=8, embed_dim=64, depth=4, num_heads=2, mlp_ratio=2.0,
                            num_classes=0), 8, (0, 1, 2, 3), 64, (16, 32, 64, 64), fusion=24, out_c=384),
}


def architecture(name: str, **overrides) -> Architecture:
    """A named architecture with some fields replaced (``architecture("tiny", arch="bottleneck", depth=2)``)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown LSeg architecture {name!r}; choose one of {sorted(ARCHITECTURES)}")
    validate.keywords(overrides, [f.name for f in fields(Architecture)], "lib.lseg.architecture")
    return replace(ARCHITECTURES[name], **overrides)


# ---------------------------------------------------------------------------------------------------- DPT parts
class ProjectReadout(nn.Module):
    """Readout "project": concatenate the CLS token to every patch token, Linear(2C→C) + GELU."""

    def __init__(self, C: int):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(2 * C, C), nn.GELU())

    def forward(self, x):
        readout = x[:, :1].expand_as(x[:, 1:])
        return self.project(torch.cat([x[:, 1:], readout], dim=-1))


class Transpose(nn.Module):
    def forward(self, x):
        return x.transpose(1, 2)


def _reassemble(C: int, f: int, factor: float) -> nn.Sequential:
    """``act_postprocessK``: [readout, transpose, (unflatten: done in forward), 1×1 conv, resample by ``factor``]."""
    layers = [ProjectReadout(C), Transpose(), nn.Identity(), nn.Conv2d(C, f, 1)]
    if factor > 1:
        k = int(factor)
        layers.append(nn.ConvTranspose2d(f, f, kernel_size=k, stride=k))
    elif factor < 1:
        layers.append(nn.Conv2d(f, f, kernel_size=3, stride=round(1 / factor), padding=1))
    return nn.Sequential(*layers)


class ResidualConvUnit(nn.Module):
    """DPT ``ResidualConvUnit_custom`` with BatchNorm: x + bn2(conv2(relu(bn1(conv1(relu(x))))))."""

    def __init__(self, F: int):
        super().__init__()
        self.conv1 = nn.Conv2d(F, F, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(F, F, 3, padding=1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(F), nn.BatchNorm2d(F)
        self.activation = nn.ReLU(inplace=False)

    def forward(self, x):
        out = self.bn1(self.conv1(self.activation(x)))
        out = self.bn2(self.conv2(self.activation(out)))
        return out + x


class FeatureFusionBlock(nn.Module):
    """DPT ``FeatureFusionBlock_custom``: (x [+ RCU1(skip)]) → RCU2 → bilinear ×2 (align_corners) → 1×1 conv."""

    def __init__(self, F: int):
        super().__init__()
        self.resConfUnit1, self.resConfUnit2 = ResidualConvUnit(F), ResidualConvUnit(F)
        self.out_conv = nn.Conv2d(F, F, 1)

    def forward(self, x, skip=None):
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = nnF.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.out_conv(x)


def _make_vit(backbone):
    if isinstance(backbone, str):
        return timm.create_model(backbone, pretrained=False)
    return VisionTransformer(**backbone)


class _Pretrained(nn.Module):
    """``pretrained``: the timm ViT (``model``) and the four reassemble branches (``act_postprocess1..4``)."""

    def __init__(self, cfg: Architecture):
        super().__init__()
        self.model = _make_vit(cfg.backbone)
        # branch k resamples the patch grid (stride = patch) to image stride 4, 8, 16, 32: ViT-L/16 ×4 ×2 ×1 ×½,
        # ViT-B/32 ×8 ×4 ×2 ×1 (as the official `_make_vit_b16_backbone` / `_make_vit_b32_backbone`)
        for k, (f, stride) in enumerate(zip(cfg.features, STRIDES), start=1):
            setattr(self, f"act_postprocess{k}", _reassemble(cfg.vit_features, f, cfg.patch / stride))


class _Scratch(nn.Module):
    def __init__(self, cfg: Architecture):
        super().__init__()
        for k, f in enumerate(cfg.features, start=1):
            setattr(self, f"layer{k}_rn", nn.Conv2d(f, cfg.fusion, 3, padding=1, bias=False))
        for k in range(1, 5):
            setattr(self, f"refinenet{k}", FeatureFusionBlock(cfg.fusion))
        self.head1 = nn.Conv2d(cfg.fusion, cfg.out_c, 1)
        self.head_block = SpatialRegularization(cfg.arch, cfg.depth, cfg.activation)


# ---------------------------------------------------------------------------------------------------- the model
class LSeg(nn.Module):
    """Language-driven semantic segmentation (see the module docstring for the data flow).

    ``forward(x, labels)``: ``x`` is a batch of RGB images in [0, 1], (B, 3, H, W) with H, W multiples of 32;
    ``labels`` is a list of N distinct label strings (encoded by ``text_encoder``, frozen) or a precomputed
    (N, C) tensor of text embeddings ((B, N, C): a label set per image). Returns logits (B, N, H, W), or at
    ``size``; the segmentation is their argmax over N.
    Every pixel gets one of the offered labels: there is no rejection.
    """

    def __init__(self, cfg: Architecture | str = "tiny", text_encoder: TextEncoder | None = None):
        super().__init__()
        self.cfg = architecture(cfg) if isinstance(cfg, str) else cfg
        if text_encoder is not None and text_encoder.width != self.cfg.out_c:
            raise ValueError(f"the text encoder gives {text_encoder.width}-d embeddings but the head outputs "
                             f"{self.cfg.out_c}: build the architecture with out_c={text_encoder.width}")
        self.text_encoder = text_encoder  # a plain attribute: frozen, not part of the state dict
        self.pretrained = _Pretrained(self.cfg)
        self.scratch = _Scratch(self.cfg)
        # t = 1/0.07, a constant buffer: not a parameter, not saved (as in the official code)
        self.register_buffer("temperature", torch.tensor(TEMPERATURE), persistent=False)
        self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5), persistent=False)
        self.register_buffer("std", torch.full((1, 3, 1, 1), 0.5), persistent=False)

    # -- image side --------------------------------------------------------------------------------------------
    def check_image(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as :func:`lib.validate.images` checks it: (B, 3, H, W), float in [0, 1], H and W multiples of the
        coarsest map's stride."""
        return validate.images(x, stride=max(STRIDES[-1], self.cfg.patch), single=False,
                               needs=f"this LSeg (patch {self.cfg.patch}, coarsest map at stride {STRIDES[-1]})")

    def _tokens(self, x):
        """Patch embedding, CLS token, position embedding resized to the grid, blocks; outputs at the hooks."""
        vit, p = self.pretrained.model, self.cfg.patch
        gh, gw = x.shape[-2] // p, x.shape[-1] // p
        t = vit.patch_embed.proj(x).flatten(2).transpose(1, 2)
        t = torch.cat([vit.cls_token.expand(t.shape[0], -1, -1), t], dim=1)
        t = t + _resize_pos_embed(vit.pos_embed, gh, gw)
        outs = []
        for i, blk in enumerate(vit.blocks):
            t = blk(t)
            if i in self.cfg.hooks:
                outs.append(t)
            if i >= max(self.cfg.hooks):
                break
        return outs, (gh, gw)

    def forward_features(self, x: torch.Tensor) -> dict:
        """All intermediate maps, for inspection: hooks, reassembled, fused, pixel embeddings I (L2-normalised)."""
        x = self.check_image(x)
        x = (x - self.mean) / self.std
        hooks, (gh, gw) = self._tokens(x)
        reassembled = []
        for k, tok in enumerate(hooks, start=1):
            post = getattr(self.pretrained, f"act_postprocess{k}")
            y = post[0:2](tok).unflatten(2, (gh, gw))
            reassembled.append(post[3:](y))
        s = self.scratch
        rn = [getattr(s, f"layer{k}_rn")(y) for k, y in enumerate(reassembled, start=1)]
        path4 = s.refinenet4(rn[3])
        path3 = s.refinenet3(path4, rn[2])
        path2 = s.refinenet2(path3, rn[1])
        path1 = s.refinenet1(path2, rn[0])
        I = nnF.normalize(s.head1(path1), dim=1)
        return {"hooks": hooks, "reassembled": reassembled, "fused": path1, "pixel_embeddings": I}

    # -- text side ---------------------------------------------------------------------------------------------
    def encode_text(self, labels) -> torch.Tensor:
        """(N, C) L2-normalised text embeddings T for a label list, or a precomputed embedding tensor: (N, C), or
        (B, N, C) for a label set of each image."""
        if isinstance(labels, torch.Tensor):
            T = labels
            if T.dim() not in (2, 3) or T.shape[-1] != self.cfg.out_c or T.shape[-2] < 1:
                raise ValueError(f"text embeddings must be (N >= 1, {self.cfg.out_c}) or (B, N >= 1, "
                                 f"{self.cfg.out_c}), got {tuple(T.shape)}")
        else:
            labels = check_labels(labels)  # a generator is read once, here
            if self.text_encoder is None:
                raise ValueError("this LSeg has no text encoder: pass one (LSeg(cfg, text_encoder=...)) "
                                 "or give precomputed text embeddings")
            T = self.text_encoder(labels)
        return nnF.normalize(T.to(self.temperature.device, torch.float32), dim=-1)

    # -- both ----------------------------------------------------------------------------------------------------
    def logits_from(self, I: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        """F = t · I Tᵀ per pixel: (B, C, h, w), (N, C) or (B, N, C) -> (B, N, h, w)."""
        validate.finite(T, "T", "the text embeddings hold NaN/inf: re-encode the labels"
                                " (is the text encoder's checkpoint damaged?)")
        if T.dim() == 3:  # a label set per image
            return self.temperature * torch.einsum("bchw,bnc->bnhw", I, T)
        return self.temperature * torch.einsum("bchw,nc->bnhw", I, T)

    def decode(self, I: torch.Tensor, T: torch.Tensor, size) -> torch.Tensor:
        """Logits at ``size`` from pixel embeddings I and normalised text
        embeddings T: the spatial regularization on t · I Tᵀ, then bilinear
        upsampling."""
        F = self.scratch.head_block(self.logits_from(I, T))
        return nnF.interpolate(F, size=size, mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor, labels, size=None) -> torch.Tensor:
        T = self.encode_text(labels)
        I = self.forward_features(x)["pixel_embeddings"]
        return self.decode(I, T, size or x.shape[-2:])

    @torch.no_grad()
    def segment(self, x: torch.Tensor, labels) -> torch.Tensor:
        """(B, H, W) label indices: argmax over the offered labels."""
        was = self.training
        self.eval()
        out = self(x, labels).argmax(1)
        self.train(was)
        return out


def _resize_pos_embed(posemb: torch.Tensor, gh: int, gw: int) -> torch.Tensor:
    """Bilinear resize of the grid part of a ViT position embedding (CLS entry kept), as DPT ``forward_flex``."""
    tok, grid = posemb[:, :1], posemb[0, 1:]
    g = int(math.sqrt(grid.shape[0]))
    if (g, g) == (gh, gw):
        return posemb
    grid = grid.reshape(1, g, g, -1).permute(0, 3, 1, 2)
    grid = nnF.interpolate(grid, size=(gh, gw), mode="bilinear", align_corners=False)
    return torch.cat([tok, grid.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)], dim=1)
