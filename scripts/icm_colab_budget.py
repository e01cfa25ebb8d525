"""Estimate chapter 1's time at ``colab`` scale on a Colab T4 from step times measured on this CPU.

    python scripts/icm_colab_budget.py            # prints a JSON record (also written to --out)

Each GPU part of the chapter (a base-codec training step, a finetuning step, one Mask R-CNN inference, one
feature-distance pass) is run here on the CPU at the colab configuration's sizes (random weights of the real
architectures; Mask R-CNN keeps 100 detections, its maximum, so its mask head is counted in full) with
``torch.utils.flop_counter.FlopCounterMode`` counting its floating-point operations. The T4 time of a part is its
FLOP count divided by an assumed sustained T4 throughput (``--t4-tflops``, default 3: 37 % of the T4's 8.1 TFLOP/s
fp32 peak); equivalently, the CPU time measured here times (this CPU's measured FLOP/s ÷ that throughput). The
entropy coder (CompressAI's rANS inside ``compress``/``decompress``) runs on the CPU on Colab too: its measured CPU
time is taken as is (one of Colab's 2 vCPUs assumed as fast as one thread here). Downloads are assumed at
``--mbps`` MB/s, the installation at 2 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


def timed(fn, reps=1):
    fn()  # warm-up
    t = time.perf_counter()
    with FlopCounterMode(display=False) as fc:
        for _ in range(reps):
            fn()
    return (time.perf_counter() - t) / reps, fc.get_total_flops() / reps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--t4-tflops", type=float, default=3.0)
    ap.add_argument("--mbps", type=float, default=30.0, help="download speed on Colab, MB/s (assumed)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("COURSE_THREADS", "1")))
    import torchvision
    from compressai.zoo.image import cfgs

    from lib.icm import codec as C
    from lib.icm import config, finetune as FT
    from lib.icm.base import BaseConfig, make_loss
    from lib.icm.machine import task_distortion
    from lib.icm.patchgan import PatchDiscriminator, aligned_patches, gan_loss

    cfg = config.CONFIGS["colab"]
    torch.manual_seed(0)
    N, M = cfgs["bmshj2018-factorized"][cfg.base_quality]
    codec = C.ICMCodec(N=N, M=M)
    det = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None,
                                                             min_size=cfg.machine_size, box_score_thresh=0.0)
    det.eval().requires_grad_(False)
    mean = torch.tensor(det.transform.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(det.transform.image_std).view(1, 3, 1, 1)

    class Feats(torch.nn.Module):
        def forward(self, x):
            f = det.backbone((x - mean) / std)
            return {"logits": None, "features": [f[k] for k in ("0", "1", "2", "3")]}

    parts = {}
    # 1. a base step, one image of base_crop² (the step is base_batch of them)
    loss_fn = make_loss(Feats(), BaseConfig(N=N, M=M, rd_steps=0, lmbda_px=0.00035))
    x1 = torch.rand(1, 3, cfg.base_crop, cfg.base_crop)

    def base_step():
        codec.zero_grad()
        loss_fn(codec, (0, x1))["loss"].backward()
    s, f = timed(base_step)
    parts["base_step"] = {"cpu_s": s * cfg.base_batch, "flops": f * cfg.base_batch, "count": cfg.base_steps}
    # 2. a finetuning step (3 patches of 64 px; 5×64 and 3×128 cost a little more in D), one crop × ft_batch
    FT.freeze_for_finetuning(codec)
    D = PatchDiscriminator(3, cfg.ft_ndf, 3)
    y = codec.quantize(codec.g_a(torch.rand(1, 3, cfg.ft_crop, cfg.ft_crop))).detach()
    xr = torch.rand(1, 3, cfg.ft_crop, cfg.ft_crop)

    def ft_step(k=3, patch=128):
        x_hat = C.ste_clamp(codec.g_s(y))
        real, fake, _ = aligned_patches(xr, x_hat, k, patch, generator=torch.Generator().manual_seed(0))
        loss = torch.nn.functional.mse_loss(fake, real) + gan_loss(D(fake), True) + gan_loss(D(real), True)
        loss.backward()
    s, f = timed(ft_step)
    n_runs = 7  # 3×64, MSE-only, LI, 3×32, 5×64, 1×64, 3×128
    parts["finetune_step"] = {"cpu_s": s * cfg.ft_batch, "flops": f * cfg.ft_batch, "count": cfg.ft_steps * n_runs}
    # 3. Mask R-CNN on one COCO-sized image (640×480, resized by the detector to machine_size)
    img = torch.rand(3, 480, 640)
    s, f = timed(lambda: det([img]))
    n_task = len(cfg.coco_ids)
    n_kodak = len(cfg.kodak_ids)
    # every evaluate() detects the originals and the decodes (base + 7 finetuned heads); the JPEG comparisons on the
    # task set and on both sets; the confidences printed for both sets
    n_detect = (1 + n_runs) * 2 * n_task + 2 * n_task + 2 * (n_kodak + n_task) + (n_kodak + n_task)
    parts["maskrcnn_inference"] = {"cpu_s": s, "flops": f, "count": n_detect}
    # 4. the feature distance on one task image (two backbone passes)
    s, f = timed(lambda: task_distortion(Feats()(img[None]), Feats()(img[None])))
    parts["feature_distance"] = {"cpu_s": s, "flops": f, "count": (1 + n_runs) * n_task + 2 * n_task + n_kodak}
    # 5. the codec's transforms on one Kodak image (g_a and g_s: on the GPU, where the chapter keeps the codec at
    # colab) and its entropy coder (CompressAI's rANS: on the CPU on Colab too), for one compress + decompress
    codec.eval(); codec.update(force=True)
    k = torch.rand(1, 3, 512, 768)
    with torch.no_grad():
        s, f = timed(lambda: codec.g_s(codec.g_a(k)))
        y = codec.g_a(k)
    n_images = n_kodak + n_task
    # compress once per variant for the bitstream check (+ the base), decompress once per evaluation, 3 timed decodes
    n_code = (1 + n_runs) * n_images + 3 * len(cfg.kodak_ids)
    parts["codec_transforms"] = {"cpu_s": s, "flops": f, "count": n_code}
    t = time.perf_counter()
    strings = codec.entropy_bottleneck.compress(y)
    codec.entropy_bottleneck.decompress(strings, y.shape[-2:])
    parts["entropy_coder_cpu"] = {"cpu_s": time.perf_counter() - t, "flops": 0, "count": n_code, "on_cpu": True}

    rate = a.t4_tflops * 1e12
    total = 0.0
    for name, p in parts.items():
        p["cpu_gflops_per_s"] = round(p["flops"] / p["cpu_s"] / 1e9, 1) if p["flops"] else None
        p["t4_s_each"] = p["cpu_s"] if p.get("on_cpu") else p["flops"] / rate
        p["t4_s_total"] = round(p["t4_s_each"] * p["count"], 1)
        total += p["t4_s_total"]
    downloads_mb = 1000 + 241 + 170 + 5 + 24 * 0.6 + n_task * 0.16
    dl = downloads_mb / a.mbps
    record = {"config": cfg.describe(), "t4_tflops_assumed": a.t4_tflops, "download_mb": round(downloads_mb),
              "download_s": round(dl), "parts": parts, "gpu_and_coder_s": round(total),
              "install_s_assumed": 120, "total_min": round((total + dl + 120) / 60, 1),
              "threads": torch.get_num_threads(), "torch": torch.__version__}
    from lib import runtime
    record["measured_on"] = runtime.hardware()
    print(json.dumps(record, indent=1))
    if a.out:
        with open(a.out, "w") as f_:
            json.dump(record, f_, indent=1)
    return record


if __name__ == "__main__":
    main()
