"""Training throughput of LSeg's paper recipe (``lib.lseg.recipe``) with 1 and 2 processes, in one run.

    .venv/bin/python benchmarks/paper_scaling.py                 # CPU: 1 and 2 gloo processes
    .venv/bin/python benchmarks/paper_scaling.py --procs 1,2,4,8 # GPUs: one process per GPU (nccl)

Each measurement launches ``torchrun --nproc_per_node=N`` on this script (``--worker``), which trains the recipe
at toy sizes (the CPU miniature's ViT, 64×64 synthetic episodes, a fixed global batch) and times the steps after
the first. Samples per second = global batch × steps / seconds. A third measurement, one process on a batch of
``global / 2``, is the compute of one of the two ranks' steps with nothing shared: the difference between it and
the two-process step is what the second process costs (the gradient all-reduce, and on a shared CPU the two
processes competing for its cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "helpers"))


def worker(args) -> None:
    import dataclasses

    import torch

    from lib import recipe
    from lib.lseg import recipe as lseg_recipe
    from lseg_recipe_ddp import toy_config, toy_data

    torch.set_num_threads(args.threads)
    rank, world, device = recipe.setup()
    cfg = dataclasses.replace(toy_config(), size=64, global_batch=args.batch, epochs=args.epochs)
    data = toy_data(n=args.batch * 4, size=64)
    T = torch.randn(21, 512)
    times = []

    def tick(step, _terms):
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter())

    model, _, facts = lseg_recipe.train_fold(cfg, 0, {"train": data}, T, device, None, progress=False, on_step=tick)
    n_grad = sum(p.numel() for p in model.parameters() if p.requires_grad)
    allreduce_ms = None
    if world > 1:  # the gradient all-reduce alone: one gradient-sized buffer, the mean of 10
        buf = torch.zeros(n_grad, device=device)
        torch.distributed.all_reduce(buf)
        t0 = time.perf_counter()
        for _ in range(10):
            torch.distributed.all_reduce(buf)
        if device.type == "cuda":
            torch.cuda.synchronize()
        allreduce_ms = (time.perf_counter() - t0) * 100
    if rank == 0:
        steps = len(times) - 1
        grad_mb = n_grad * 4 / 2**20
        Path(args.out).write_text(json.dumps({"world": world, "global_batch": args.batch, "steps": steps,
                                              "seconds": times[-1] - times[0], "grad_mb": grad_mb, "allreduce_ms": allreduce_ms,
                                              "load_average": os.getloadavg()[0],
                                              "samples_per_s": args.batch * steps / (times[-1] - times[0])}))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def measure(n: int, batch: int, epochs: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n}", "--rdzv-backend=c10d",
               "--rdzv-endpoint=127.0.0.1:0", __file__, "--worker", "--out", str(out), "--batch", str(batch),
               "--epochs", str(epochs), "--threads", str(threads)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "COURSE_CACHE": tmp}
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(r.stdout[-2000:] + r.stderr[-3000:])
        return json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--procs", default="1,2", help="process counts to measure (one GPU each where there are GPUs)")
    ap.add_argument("--batch", type=int, default=8, help="global batch (divisible by every process count)")
    ap.add_argument("--epochs", type=int, default=4, help="epochs of 4 steps each")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return 0
    procs = [int(p) for p in args.procs.split(",")]
    res = {n: measure(n, args.batch, args.epochs, args.threads) for n in procs}
    half = measure(1, args.batch // 2, args.epochs, args.threads)  # one rank's share of a two-process step
    base = res[procs[0]]["samples_per_s"] / procs[0]
    for n, r in res.items():
        print(f"{n} process(es): {r['samples_per_s']:.1f} samples/s ({r['steps']} steps of {r['global_batch']}); "
              f"{r['samples_per_s'] / (base * n):.2f} of linear")
    if 1 in res and 2 in res:
        ratio = res[2]["samples_per_s"] / res[1]["samples_per_s"]
        step2 = res[2]["seconds"] / res[2]["steps"]
        step_half = half["seconds"] / half["steps"]
        print(f"ratio 2 / 1 processes: {ratio:.2f}x (linear: 2.00x)")
        ar = res[2]["allreduce_ms"]
        print(f"one rank's compute (1 process, batch {args.batch // 2}): {1000 * step_half:.0f} ms per step; the "
              f"2-process step: {1000 * step2:.0f} ms; the rest, {1000 * (step2 - step_half):.0f} ms: the "
              f"all-reduce of {res[2]['grad_mb']:.1f} MB of gradients alone takes {ar:.0f} ms, the remainder is "
              f"the two processes competing for the cores (load average {res[2]['load_average']:.1f} on "
              f"{os.cpu_count()} cores) and DDP's bookkeeping")
    print(json.dumps({"results": res, "half_batch_one_process": half}, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
