"""Measurements for the ICM chapter: bpp from real bitstreams, PSNR, SSIM/MS-SSIM (pytorch-msssim), task fidelity
and the periodic-artifact score, on a fixed evaluation set."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from pytorch_msssim import ms_ssim, ssim

from lib.icm.checkerboard import checkerboard_score
from lib.icm.codec import ICMCodec, compress_all, decompress_all
from lib.icm.machine import task_scores
from lib.images import to_tensor

PERIODS = (2, 3, 4, 5, 6, 7, 8)


def psnr(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / torch.mean((x - x_hat) ** 2).clamp_min(1e-12)))


def artifact_scores(images, periods=PERIODS) -> dict:
    """Mean checkerboard score over ``images`` at each period: ``{P: score}``."""
    return {int(P): float(np.mean([checkerboard_score(im[0], P) for im in images])) for P in periods}


@torch.no_grad()
def evaluate(codec: ICMCodec, images: list[torch.Tensor], machine, bitstreams: list[dict] | None = None,
             periods=PERIODS, task_images: list[torch.Tensor] | None = None,
             task_bitstreams: list[dict] | None = None, task_names: list[str] | None = None) -> dict:
    """Decode ``bitstreams`` (or compress ``images`` first) and measure fidelity and artifacts against ``images``;
    the task (``machine.task_scores``: top-1 agreement or mAP, feature distance) on ``task_images`` (default:
    ``images``; ``task_names`` name them for the annotations), through real bitstreams too (``task_bitstreams``, or
    compressed here)."""
    codec.eval()
    if bitstreams is None:
        bitstreams = compress_all(codec, images)
    x_hats = decompress_all(codec, bitstreams)
    if task_images is None:
        task_images, task_hats, task_bits = images, x_hats, bitstreams
    else:
        task_bits = task_bitstreams if task_bitstreams is not None else compress_all(codec, task_images)
        task_hats = decompress_all(codec, task_bits)
    big = min(images[0].shape[-2:]) > 160
    task = task_scores(machine, task_images, task_hats, task_names)
    return {
        "bpp": float(np.mean([b["bytes"] * 8 / (x.shape[-1] * x.shape[-2]) for b, x in zip(bitstreams, images)])),
        "psnr": float(np.mean([psnr(x, xh) for x, xh in zip(images, x_hats)])),
        "ssim": float(np.mean([float(ssim(x, xh, data_range=1.0)) for x, xh in zip(images, x_hats)])),
        "ms_ssim": float(np.mean([float(ms_ssim(x, xh, data_range=1.0)) for x, xh in zip(images, x_hats)]))
        if big else None,
        "task_bpp": float(np.mean([b["bytes"] * 8 / (x.shape[-1] * x.shape[-2]) for b, x in zip(task_bits, task_images)])),
        **task,
        "artifact": artifact_scores(x_hats, periods),
        "x_hat": x_hats,
    }


def jpeg(images: list[torch.Tensor], quality: int) -> tuple[list[torch.Tensor], float]:
    """A classical reference: PIL's JPEG at ``quality``; returns the decoded images and their mean bpp."""
    out, bits = [], []
    for x in images:
        buf = io.BytesIO()
        Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(buf, "JPEG", quality=quality)
        dec = np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        out.append(to_tensor(dec)[None])
        bits.append(len(buf.getvalue()) * 8 / (x.shape[-1] * x.shape[-2]))
    return out, float(np.mean(bits))
