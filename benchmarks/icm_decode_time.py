"""Decode time of the base ICM codec vs a finetuned one (the paper's "no extra cost at inference"), in one run.

    python benchmarks/icm_decode_time.py [--images 16] [--size 192] [--reps 5]

The finetuned decoder differs only in the values of g_s.0/g_s.1 (here: the base head plus noise, which costs the
same as a trained head), so the ratio should be 1 within timing noise. Runs are interleaved to share the machine's
load fairly. Prints the per-run medians and their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import lib  # noqa: E402
from lib.icm import codec as C, experiment as X, finetune as FT  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    lib.runtime.setup(seed=0)
    base, _ = X.load_base()
    head = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
            for k, v in FT.head_state(base).items()}
    tuned = FT.with_head(base, head)
    _, ev = X.photos_split()
    images = [x for _, x in X.eval_images(ev, a.size, max(1, a.images // len(ev) + 1))][:a.images]
    bits = C.compress_all(base, images)
    times = {"base": [], "finetuned": []}
    for _ in range(a.reps):
        for name, codec in (("base", base), ("finetuned", tuned)):
            t = time.perf_counter()
            C.decompress_all(codec, bits)
            times[name].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in times.items()}
    n_b, n_t = (sum(p.numel() for p in m.parameters()) for m in (base, tuned))
    print(f"{len(images)} images of {a.size} px, {a.reps} interleaved repetitions, {lib.runtime.hardware()}")
    print(f"decode time median: base {med['base']:.3f} s, finetuned {med['finetuned']:.3f} s, "
          f"ratio finetuned/base = {med['finetuned'] / med['base']:.3f}")
    print(f"parameters: base {n_b:,}, finetuned {n_t:,}, ratio {n_t / n_b:.3f}")


if __name__ == "__main__":
    main()
