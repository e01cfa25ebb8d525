"""Chapter 2's colab budget: FLOPs of each kind of work on the real XLSR-53 SSL-Res1D, CPU seconds measured here,
and the T4 minutes they imply at a stated throughput.

    python benchmarks/spoof_colab_budget.py [--t4-tflops 4.0] [--mbps 50]

FLOPs are counted with torch's FlopCounterMode on the meta device (no weights, no compute) for one training step
(frozen XLSR-53 forward, back-end forward and backward), one scoring pass and one Grad-CAM pass per second of audio.
The CPU seconds of a small real step (batch 2 × 3 s, random weights of the real architecture) are measured to show
the FLOP count is the work that is done. T4 time = FLOPs / (``--t4-tflops`` effective TFLOP/s); downloads = the
archives' sizes / ``--mbps``. Both are assumptions, printed as such.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from lib.spoof import experiment, p2sgrad_loss  # noqa: E402
from lib.spoof.ssl_res1d import build_ssl_res1d  # noqa: E402

# archive sizes in GB: PartialSpoof train/dev from its utterance counts (25,380 / 24,844 × ~3.3 s × 32 kB/s, 16-bit
# 16 kHz wav, gzip saves little on audio), LA.zip as colab.md gives it (~7 GB), torchaudio's XLSR-53 file (1.27 GB)
SIZES_GB = {"PartialSpoof train": 2.7, "PartialSpoof dev": 2.6, "ASVspoof 2019 LA.zip": 7.0, "XLSR-53": 1.27,
            "protocols + .vad": 0.05}


def flops(fn) -> float:
    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--t4-tflops", type=float, default=4.0, help="effective fp32 TFLOP/s of a T4 (peak 8.1)")
    ap.add_argument("--mbps", type=float, default=50.0, help="download speed, MB/s")
    ap.add_argument("--no-cpu", action="store_true", help="skip the measured CPU step")
    a = ap.parse_args()
    cfg = experiment.CONFIGS["colab"]
    torch.set_num_threads(1)
    with torch.device("meta"):
        m = build_ssl_res1d(frozen=cfg.frozen_ssl)
    crop = int(cfg.crop_s * 16000)

    def train_step(model, B, L):
        x = torch.randn(B, L, device=next(model.parameters()).device)
        y = torch.zeros(B, dtype=torch.long, device=x.device)
        model.train()
        p2sgrad_loss(model(x), y).backward()

    def score(model, B, L):
        with torch.no_grad():
            model.eval()(torch.randn(B, L, device=next(model.parameters()).device))

    def cam(model, B, L):   # gradcam()'s work: one forward, the gradient of the logit at fc (its checks need values)
        store = {}
        h = model.fc.register_forward_hook(lambda mod, i, o: store.__setitem__("A", o))
        model.eval()
        with torch.enable_grad():
            out = model(torch.randn(B, L, device=next(model.parameters()).device))
            torch.autograd.grad(out[:, 1].sum(), store["A"])
        h.remove()

    per = {"train step (batch %d × %.0f s)" % (cfg.batch_size, cfg.crop_s): flops(lambda: train_step(m, cfg.batch_size, crop)),
           "score, per s of audio": flops(lambda: score(m, 1, 16000 * 10)) / 10,
           "Grad-CAM, per s of audio": flops(lambda: cam(m, 1, 16000 * 10)) / 10}
    for k, v in per.items():
        print(f"{k}: {v / 1e12:.3f} TFLOP")
    avg_s = 3.3                                             # mean PartialSpoof utterance length (s), assumed
    n_score = sum(cfg.n_eval.values())                      # bona + partial + full, per CM
    work = {"training (2 CMs)": 2 * cfg.steps * list(per.values())[0],
            "scoring (2 CMs)": 2 * n_score * avg_s * per["score, per s of audio"],
            "Grad-CAM (2 CMs × 2 targets)": 2 * 2 * cfg.n_eval["partial"] * avg_s * per["Grad-CAM, per s of audio"]}
    total = 0.0
    for k, v in work.items():
        t = v / (a.t4_tflops * 1e12) / 60
        total += t
        print(f"{k}: {v / 1e15:.2f} PFLOP → {t:.1f} min on a T4 at {a.t4_tflops} TFLOP/s")
    dl = sum(SIZES_GB.values()) * 1000 / a.mbps / 60
    print(f"downloads: {sum(SIZES_GB.values()):.1f} GB → {dl:.1f} min at {a.mbps} MB/s (+ extraction)")
    print(f"TOTAL (compute + downloads): {total + dl:.0f} min")
    if not a.no_cpu:
        real = build_ssl_res1d(frozen=cfg.frozen_ssl)
        L = 3 * 16000
        f = flops(lambda: train_step(real, 2, L))
        t = time.perf_counter()
        train_step(real, 2, L)
        dt = time.perf_counter() - t
        print(f"CPU (1 thread, this machine): a train step of batch 2 × 3 s took {dt:.1f} s for {f / 1e12:.2f} TFLOP "
              f"= {f / dt / 1e9:.0f} GFLOP/s achieved")


if __name__ == "__main__":
    main()
