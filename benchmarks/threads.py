"""How many torch threads to use on this machine for the `tiny` networks? Prints time per training step of a small
convnet with 1 and 2 threads, measured in this one run, and their ratio.

    .venv/bin/python benchmarks/threads.py
"""

import time

import torch


def step_time(threads: int, steps: int = 30) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 5, 2, 2), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 5, 2, 2),
                              torch.nn.ReLU(), torch.nn.ConvTranspose2d(32, 3, 4, 4))
    opt = torch.optim.Adam(net.parameters())
    x = torch.rand(8, 3, 64, 64)
    for i in range(steps + 5):
        if i == 5:
            t0 = time.perf_counter()
        loss = (net(x) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps


if __name__ == "__main__":
    t1, t2 = step_time(1), step_time(2)
    print(f"1 thread: {t1 * 1e3:.1f} ms/step   2 threads: {t2 * 1e3:.1f} ms/step   ratio 2/1: {t2 / t1:.2f}")
