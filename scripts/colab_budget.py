"""Every chapter's GPU work at ``colab`` scale, counted in FLOPs on this CPU: ``lib/colab_budget.json``.

    python scripts/colab_budget.py [--chapters 1,2,3]

Each part of a chapter's GPU work is one of ``scripts/gpu_check.py``'s timed steps (the same code, random weights of
the real architectures) at the colab configuration's sizes with the batch shrunk to one item; its FLOPs
(``torch.utils.flop_counter.FlopCounterMode``) and CPU seconds are scaled back to the real batch. Beside each part:
how many times the chapter runs it (read from the configurations) and which GPU-check step measures it. The
chapters' downloads are listed by size. ``lib.display.colab_time`` turns this record into T4 minutes, with the course's one
assumed T4 throughput, or from the GPU check's measured step times where that record exists.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import gpu_check as G  # noqa: E402
from lib import runtime  # noqa: E402
from lib.display import colab_time  # noqa: E402

# chapter 2's archives in MB: PartialSpoof train/dev from their utterance counts (25,380 / 24,844 × ~3.3 s × 32 kB/s,
# 16-bit 16 kHz wav), LA.zip as the database's page gives it (~7 GB), torchaudio's XLSR-53 file, protocols + .vad
SPOOF_DOWNLOADS_MB = {"PartialSpoof train": 2700, "PartialSpoof dev": 2600, "ASVspoof 2019 LA.zip": 7000,
                      "XLSR-53": 1270, "protocols + .vad": 50}
SPOOF_MEAN_S = 3.3          # mean PartialSpoof utterance length (s), assumed
LSEG_EPISODES = 450         # about 450 fold-0 episodes in VOC2012 val
LSEG_DEMO_FORWARDS = 8      # the demo: 2 photos × 4 label sets, one forward each
# chapter 3's archives in MB: VOC2012 trainval (2 GB), OpenAI's CLIP ViT-B/32 (338 MB), timm's ViT-B/32 (352 MB), the
# official demo checkpoint (ViT-L/16 LSeg, about 1.3 GB)
LSEG_DOWNLOADS_MB = {"VOC2012": 2000, "CLIP ViT-B/32": 338, "timm ViT-B/32": 352, "demo_e200.ckpt": 1300}
LSEG_MINIATURE_S = 130      # the CPU miniature every scale runs (measured at tiny: 123-130 s on a first run)


def count(make, sizes, batch: int = 1) -> dict:
    """FLOPs and CPU seconds of one call of a GPU-check step at ``sizes``, times ``batch``."""
    torch.manual_seed(0)
    fn, what = make("cpu", sizes)
    fn()  # warm-up
    t = time.perf_counter()
    with FlopCounterMode(display=False) as fc:
        fn()
    s = time.perf_counter() - t
    return {"flops": fc.get_total_flops() * batch, "cpu_s": round(s * batch, 3), "measured_as": what,
            "scaled_by": batch}


def chapter1(z) -> dict:
    from lib.icm import config

    cfg = config.CONFIGS["colab"]
    n_runs, n_task, n_kodak = 7, len(cfg.coco_ids), len(cfg.kodak_ids)  # 7 finetunings: the grid and ablations
    one = dataclasses.replace(z, icm_base_batch=1, icm_ft_batch=1)
    n_images = n_kodak + n_task
    n_code = (1 + n_runs) * n_images + 3 * n_kodak  # compress per variant (+ base), 3 timed decodes
    parts = {
        "base training": {"step": "01_icm base training step", "unit": "base-training step", "count": cfg.base_steps,
                          **count(G.icm_base_step, one, cfg.base_batch)},
        "finetuning": {"step": "01_icm finetuning step", "unit": "finetuning step", "count": cfg.ft_steps * n_runs,
                       **count(G.icm_finetune_step, one, cfg.ft_batch)},
        # every evaluate() detects the originals and the decodes (base + 7 heads); JPEG comparisons; confidences
        "Mask R-CNN inference": {"step": "01_icm Mask R-CNN inference (COCO-sized image)", "unit": "detection",
                                 "count": (1 + n_runs) * 2 * n_task + 2 * n_task + 3 * n_images,
                                 **count(G.maskrcnn_inference, z)},
        "feature distance": {"step": "01_icm feature distance (COCO-sized image)", "unit": "feature distance",
                             "count": (1 + n_runs) * n_task + 2 * n_task + n_kodak, **count(G.feature_distance, z)},
        "codec transforms": {"step": "01_icm codec transforms (Kodak image)", "unit": "codec pass",
                             "count": n_code, **count(G.codec_transforms, z)},
        "entropy coder": {"step": "01_icm entropy coder (Kodak image, CompressAI, CPU)", "unit": "coding",
                          "count": n_code, "on_cpu": True, **count(G.entropy_coder, z)},
    }
    return {"parts": parts, "download_mb": round(1000 + 241 + 170 + 5 + 24 * 0.6 + n_task * 0.16),
            "download_note": "val2017.zip, the annotations, Mask R-CNN and CompressAI weights, Kodak and COCO images"}


def chapter2(z) -> dict:
    from lib.spoof import experiment

    cfg = experiment.CONFIGS["colab"]
    one = dataclasses.replace(z, spoof_batch=1, spoof_cam_batch=1)
    n_score, n_partial = sum(cfg.data.n_eval.values()), cfg.data.n_eval["partial"]
    parts = {
        "training (2 CMs)": {"step": "02_spoof SSL-Res1D training step", "unit": "training step",
                             "count": 2 * cfg.train.steps, **count(G.spoof_train_step, one, cfg.train.batch_size)},
        "scoring (2 CMs)": {"step": "02_spoof batched scoring", "unit": "scoring batch",
                            "count": -(-2 * n_score // z.spoof_cam_batch), **count(G.spoof_score, one, z.spoof_cam_batch)},
        "Grad-CAM (2 CMs × 2 targets)": {"step": "02_spoof batched Grad-CAM", "unit": "Grad-CAM batch",
                                         "count": -(-2 * 2 * n_partial // z.spoof_cam_batch),
                                         **count(G.spoof_gradcam, one, z.spoof_cam_batch)},
    }
    return {"parts": parts, "download_mb": sum(SPOOF_DOWNLOADS_MB.values()), "download_note": SPOOF_DOWNLOADS_MB}


def chapter3(z) -> dict:
    from lib.lseg import config as lseg_config

    cfg = lseg_config.CONFIGS["colab"].pascal
    one = dataclasses.replace(z, lseg_batch=1)
    runs = len(cfg.runs)
    parts = {
        "PASCAL-5i training": {"step": "03_lseg training step", "unit": "training step",
                               "count": runs * cfg.steps, **count(G.lseg_train_step, one, cfg.batch)},
        "PASCAL-5i evaluation": {"step": "03_lseg evaluation inference", "unit": "episode",
                                 "count": runs * LSEG_EPISODES, **count(G.lseg_inference, z)},
        "official demo": {"step": "03_lseg official demo forward", "unit": "demo forward",
                          "count": LSEG_DEMO_FORWARDS, **count(G.lseg_demo_forward, z)},
        "CPU miniature": {"step": None, "unit": "run", "count": 1, "on_cpu": True, "flops": 0,
                          "cpu_s": LSEG_MINIATURE_S, "measured_as": "the tiny scale's first run on 2 CPU cores"},
    }
    return {"parts": parts, "download_mb": sum(LSEG_DOWNLOADS_MB.values()), "download_note": LSEG_DOWNLOADS_MB}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chapters", default="1,2,3")
    ap.add_argument("--out", default=str(colab_time.BUDGET))
    a = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("COURSE_THREADS", "1")))
    out = Path(a.out)
    record = json.loads(out.read_text()) if out.exists() else {}
    record.update({"measured_on": runtime.hardware(), "torch": torch.__version__,
                   "t4_fp32_peak": colab_time.T4_FP32_PEAK, "t4_sustained_assumed": colab_time.T4_SUSTAINED})
    z = G.Sizes.real()
    makers = {"1": chapter1, "2": chapter2, "3": chapter3}
    for ch in a.chapters.split(","):
        t = time.time()
        record.setdefault("chapters", {})[ch] = makers[ch](z)
        est = colab_time.colab_time(ch, budget=record, gpu_check={})
        print(f"chapter {ch} ({time.time() - t:.0f} s here): {est.text}", flush=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
