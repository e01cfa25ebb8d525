"""Speed of batched temporal Grad-CAM (lib.spoof.gradcam) vs the reference's per-utterance pytorch-grad-cam loop.

    python benchmarks/spoof_gradcam.py [--n 64] [--model tiny|ssl]

Same model, same utterances (real speech lengths 1-6 s), same target; prints both times, their ratio and the
largest difference between the two CAMs. One run, one process: the ratio is what to read, not the seconds.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lib.spoof import build_ssl_res1d, gradcam, gradcam_reference, n_frames, tiny_cm  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--model", choices=("tiny", "ssl"), default="tiny",
                    help="ssl = a 2-layer random wav2vec 2.0 front-end (architecture only; no download)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.model == "tiny":
        m = tiny_cm()
    else:
        from torchaudio.pipelines import WAV2VEC2_XLSR53
        p = dict(WAV2VEC2_XLSR53._params, encoder_num_layers=2)
        m = build_ssl_res1d(p)
    m.train()
    with torch.no_grad():
        m(torch.randn(4, 16000) * 0.1)
    m.eval()
    rng = np.random.default_rng(0)
    waves = [torch.randn(int(rng.uniform(1, 6) * 16000)) * 0.1 for _ in range(a.n)]

    t = time.perf_counter()
    ref = gradcam_reference(m, m.fc, [w.numpy() for w in waves], 1)  # one GradCAM object, a loop inside
    t_ref = time.perf_counter() - t

    t = time.perf_counter()
    ours = []
    for i in range(0, a.n, a.batch):
        chunk = waves[i:i + a.batch]
        c = gradcam(m, m.fc, chunk, 1)
        ours += [c[j, : int(n_frames(w.numel()))] for j, w in enumerate(chunk)]
    t_ours = time.perf_counter() - t

    diff = max(float(np.abs(o.numpy() - r).max()) for o, r in zip(ours, ref))
    print(f"model {a.model}, {a.n} utterances, batch {a.batch}, {torch.get_num_threads()} thread(s)")
    print(f"pytorch-grad-cam, one utterance at a time: {t_ref:.2f} s")
    print(f"lib.spoof.gradcam, batched:                {t_ours:.2f} s")
    print(f"speed ratio (per-utterance / batched):     {t_ref / t_ours:.2f}x   max |difference| {diff:.2e}")


if __name__ == "__main__":
    main()
