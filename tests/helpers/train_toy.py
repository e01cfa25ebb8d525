"""A toy run of lib.train.fit, launched as a separate process by the tests (plain, killed midway, or under torchrun)."""

import argparse
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

import lib  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--ckpt", default=None)
p.add_argument("--out", required=True)
p.add_argument("--steps", type=int, default=30)
p.add_argument("--kill-at", type=int, default=-1)
p.add_argument("--dropout", type=float, default=0.0)
args = p.parse_args()

lib.runtime.setup(seed=0, threads=1)
model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Dropout(args.dropout), torch.nn.Linear(16, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
w_true = torch.arange(4.0).unsqueeze(1)


def batches(step):
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(8, 4, generator=g)
    return x, x @ w_true + 0.1 * torch.randn(8, 1, generator=g)


def loss_fn(m, batch):
    x, y = batch
    mse = torch.nn.functional.mse_loss(m(x), y)
    return {"loss": mse, "mse": mse.detach()}


def on_step(step, terms):
    if step == args.kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # as a power cut or an out-of-memory kill would


hist = lib.train.fit(model, batches, loss_fn, opt, args.steps, ckpt_path=args.ckpt, ckpt_every=5, scheduler=sched,
                     log_every=1, progress=False, on_step=on_step)
rank, world = lib.train.distributed()
if rank == 0:
    lib.storage.checkpoint.save({"params": {k: v.detach().clone() for k, v in model.state_dict().items()},
                         "losses": torch.tensor([h["loss"] for h in hist]), "world": world}, args.out)
