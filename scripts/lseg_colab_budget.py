"""Chapter 3's colab budget, estimated on a CPU: measure a training step, an evaluation episode and the official
demo's forward of the colab configuration here (random weights, same shapes), count their FLOPs
(torch.utils.flop_counter), and convert with a stated T4 throughput. Writes lib/lseg/colab_budget.json.

    python scripts/lseg_colab_budget.py
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from lib import runtime  # noqa: E402
from lib.lseg import chapter, pascal  # noqa: E402
from lib.lseg.model import LSeg, config  # noqa: E402

# T4: 8.1 TFLOP/s fp32 peak (NVIDIA's data sheet); we assume 35 % of it is sustained by a ViT-B/32 + DPT step in
# fp32 (an assumption, not a measurement)
T4_FLOPS = 0.35 * 8.1e12


def flops_and_seconds(fn, repeat=2):
    with FlopCounterMode(display=False) as fc:
        fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return fc.get_total_flops(), (time.perf_counter() - t) / repeat


def main():
    torch.set_num_threads(int(os.environ.get("COURSE_THREADS", "1")))
    cfg = chapter.CONFIGS["colab"]
    S, B = cfg.fold_size, cfg.fold_batch
    model = LSeg(config(cfg.fold_backbone, arch="bottleneck", depth=2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    T = torch.randn(21, 512)
    loss_fn = pascal.episode_loss(T)
    b = 2  # measured at batch 2 on the CPU, scaled linearly to cfg.fold_batch
    batch = (torch.rand(b, 3, S, S), torch.randint(0, 2, (b, S, S)), torch.randint(1, 21, (b,)))

    def step():
        opt.zero_grad()
        loss_fn(model, batch)["loss"].backward()
        opt.step()

    model.train()
    step()  # warm-up
    f_train, s_train = flops_and_seconds(step)
    model.eval()
    x = torch.rand(1, 3, S, S)
    with torch.no_grad():
        f_eval, s_eval = flops_and_seconds(lambda: pascal.binary_logits(model, x, T, torch.tensor([1]),
                                                                          size=(375, 500)))
    del model, opt
    big = LSeg(config("vitl16_384")).eval()
    xd = torch.rand(1, 3, cfg.demo_size, cfg.demo_size)
    with torch.no_grad():
        f_demo, s_demo = flops_and_seconds(lambda: big.forward_features(xd), repeat=1)
    steps, runs = cfg.fold_steps, len(cfg.fold_runs)
    n_eps, n_demo = 450, 8  # about 450 fold-0 episodes in VOC2012 val; the demo: 2 photos x 4 label sets, 1 forward each
    per_step_t4 = f_train * B / b / T4_FLOPS
    out = {
        "measured_on": runtime.hardware(), "commit": runtime.commit(), "threads": torch.get_num_threads(),
        "note": "2 shared cores under other jobs' load: CPU seconds are inflated",
        "fold_size": S, "fold_batch": B, "fold_steps": steps, "fold_runs": runs, "demo_size": cfg.demo_size,
        "cpu_train_step_s_batch2": round(s_train, 2), "train_step_gflop_batch2": round(f_train / 1e9, 1),
        "cpu_eval_episode_s": round(s_eval, 2), "eval_episode_gflop": round(f_eval / 1e9, 1),
        "cpu_demo_forward_s": round(s_demo, 2), "demo_forward_gflop": round(f_demo / 1e9, 1),
        "cpu_gflops_achieved": round(f_train / s_train / 1e9, 1),
        "t4_flops_assumed": T4_FLOPS,
        "t4_train_minutes": round(runs * steps * per_step_t4 / 60, 1),
        "t4_eval_minutes": round(runs * n_eps * f_eval / T4_FLOPS / 60, 2),
        "t4_demo_minutes": round(n_demo * f_demo / T4_FLOPS / 60, 2),
    }
    # what the T4 estimate would be with the CPU's own measured speed ratio instead of FLOPs (a cross-check)
    out["cpu_to_t4_factor"] = round(T4_FLOPS / (f_train / s_train), 1)
    path = Path(__file__).resolve().parents[1] / "lib" / "lseg" / "colab_budget.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
