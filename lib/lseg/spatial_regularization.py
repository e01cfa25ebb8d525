"""The spatial regularization blocks of LSeg, acting on the logit map.

Li, Weinberger, Belongie, Koltun, Ranftl, "Language-driven Semantic Segmentation", ICLR 2022 (arXiv 2201.03546),
§3 "Spatial regularization" and the ablation of block type and depth (§5). The paper's figure draws the blocks
on the pixel-text *logits* ``F ∈ R^{H̃×W̃×N}`` (one channel per label). As the official code builds them
(``depthwise_block`` / ``bottleneck_block`` in ``lseg_blocks.py``):

- one 3×3 convolution with **1** input and **1** output channel (9 weights + 1 bias = 10 parameters) is applied to
  every label channel separately. Sharing the kernel across labels is what keeps the block valid for *any* label
  set: permuting the labels permutes the output channels the same way (label equivariance);
- ``depthwise``:  ``F ← act(conv(F))``;
  ``bottleneck``: ``F ← act(conv(F) + max_n F_n)``  (the per-pixel maximum over the labels, broadcast);
- the block is applied ``depth`` times with the *same* kernel: ``depth - 1`` times with the activation
  (leaky ReLU by default) and a last time without it.

``kind="none"`` is the identity (``arch_option=0``, the released demo and zero-shot models).
"""

from __future__ import annotations

import torch
from torch import nn

KINDS = ("none", "bottleneck", "depthwise")
ACTIVATIONS = {"lrelu": nn.LeakyReLU, "relu": nn.ReLU, "tanh": nn.Tanh}


class _SharedConv(nn.Module):
    """One 3×3 conv, 1 → 1 channel, applied to each of the N label channels (``depthwise_clipseg_conv``)."""

    def __init__(self):
        super().__init__()
        self.depthwise = nn.Conv2d(1, 1, kernel_size=3, padding=1)

    def forward(self, F: torch.Tensor) -> torch.Tensor:
        B, N, H, W = F.shape
        return self.depthwise(F.reshape(B * N, 1, H, W)).reshape(B, N, H, W)


class SpatialRegularization(nn.Module):
    """``forward(F: (B, N, H, W) logits) -> (B, N, H, W)``; see the module docstring.

    The parameter lives at ``depthwise.depthwise.{weight,bias}`` so that the official key
    ``scratch.head_block.depthwise.depthwise.weight`` loads into ``scratch.head_block``.
    """

    def __init__(self, kind: str = "bottleneck", depth: int = 2, activation: str = "lrelu"):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if kind != "none" and (not isinstance(depth, int) or depth < 1):
            raise ValueError(f"depth must be an integer >= 1 for kind={kind!r}, got {depth!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.kind, self.depth = kind, (0 if kind == "none" else depth)
        if kind != "none":
            self.depthwise = _SharedConv()
            self.activation = ACTIVATIONS[activation]()

    def block(self, F: torch.Tensor, act: bool = True) -> torch.Tensor:
        """One application (the official code's ``head_block(F, act)``)."""
        out = self.depthwise(F)
        if self.kind == "bottleneck":
            out = out + F.max(dim=1, keepdim=True).values
        return self.activation(out) if act else out

    def forward(self, F: torch.Tensor) -> torch.Tensor:
        if F.dim() != 4:
            raise ValueError(f"logits must be (B, N, H, W): {tuple(F.shape)}")
        if self.kind == "none":
            return F
        for _ in range(self.depth - 1):
            F = self.block(F, act=True)
        return self.block(F, act=False)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, depth={self.depth}"
