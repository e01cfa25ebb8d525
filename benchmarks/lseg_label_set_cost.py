"""How much does a new label set cost LSeg? Ratio of (re-scoring cached pixel embeddings for a new label set)
to (a full image forward), measured in one run on the tiny configuration, 1 torch thread.

    python benchmarks/lseg_label_set_cost.py

The text side is cached by label string, so after the first image forward a different label set costs the product
t·I·Tᵀ, the spatial block and the upsampling of N logit maps: cheap for a few labels, not for many (at tiny
scale the image encoder is small, so N full-resolution logit maps soon cost more than the encoder).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import lib.lseg as L  # noqa: E402
from lib.lseg import evaluation as E  # noqa: E402


def best_of(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = L.LSeg(L.config("tiny", arch="bottleneck", depth=2)).eval()
    x = torch.rand(16, 3, 64, 64)
    images = (x.permute(0, 2, 3, 1) * 255).to(torch.uint8).numpy()
    with torch.no_grad():
        full = best_of(lambda: model(x, torch.randn(25, 384)))
        I = E.pixel_embeddings(model, images)
        for n in (2, 25, 100):
            T = torch.randn(n, 384)
            rescore = best_of(lambda: E.segment_with(model, I, T, 64))
            print(f"{n:4d} labels: full forward {full * 1e3:7.1f} ms, re-score cached I {rescore * 1e3:6.1f} ms, "
                  f"ratio {rescore / full:.2f}")


if __name__ == "__main__":
    main()
