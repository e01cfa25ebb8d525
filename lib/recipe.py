"""What every chapter's full recipe shares when it runs as a command under ``torchrun`` (the ``paper`` scale).

    torchrun --nproc_per_node=8 -m lib.lseg.recipe train --scale paper      # one node, 8 GPUs
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 -m lib.lseg.recipe ...

- :func:`setup`: the process group from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR``...; ``nccl`` on CUDA, ``gloo`` on CPU) through ``lib.train.distributed``, and this process's device.
  Launch, rendezvous and restarts are torchrun's; gradient averaging is ``DistributedDataParallel``'s (in
  ``lib.train.fit``).
- :class:`EpochSampler`: ``torch.utils.data.DistributedSampler`` turned into ``step -> this rank's indices``: in
  every epoch each item is seen once across the ranks, and a step's batch is a function of the step alone (so a run
  killed and restarted from its checkpoint sees the same batches). :func:`shard_report` checks the shards.
- :func:`all_reduce_sum` and :func:`gather_in_order`: evaluation split over the ranks, sums reduced, per-item
  results gathered back into the order of the items.
- :func:`write_result` / :func:`read_result`: the recipe's results in the course cache under a
  ``lib.storage.cache.key`` of the configuration, written atomically by rank 0; the chapter reads them from there.
"""

from __future__ import annotations

import os
import sys
import time

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from lib import train, validate
from lib.storage import cache

RESULTS_VERSION = "1"


def setup() -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)``: the process group initialised from torchrun's variables (gloo on CPU, nccl
    on CUDA) and this process's device (``cuda:$LOCAL_RANK``, or the CPU)."""
    if torch.cuda.is_available():
        local = validate.env_int("LOCAL_RANK", 0, minimum=0)
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    rank, world = train.distributed()
    return rank, world, device


def local_rank() -> int:
    """This process's index on its own node (``$LOCAL_RANK``; 0 outside torchrun)."""
    return validate.env_int("LOCAL_RANK", 0, minimum=0)


def barrier() -> None:
    """Wait for every rank (nothing outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def log(message: str) -> None:
    """Print a progress line from rank 0 only, with the time."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stdout, flush=True)


class EpochSampler:
    """``step -> indices`` of this rank's part of a step's global batch, epoch after epoch.

    Each epoch is a ``DistributedSampler`` pass over ``n`` items (shuffled with ``seed`` and the epoch,
    ``drop_last=True``: every rank gets ``n // world`` items, the same number), cut into ``steps_per_epoch``
    batches of ``batch // world`` items per rank; the ``n % batch`` items left over at the end of an epoch's order
    wait for the next epoch's shuffle. With one rank a step's batch is the union of what the ranks get with several.
    """

    def __init__(self, n: int, batch: int, rank: int, world: int, seed: int = 0):
        n = validate.integer(n, "n", minimum=1, hint="the number of training items")
        batch = validate.integer(batch, "batch", minimum=1, hint="the global batch size over all processes")
        world = validate.integer(world, "world", minimum=1, hint="the number of processes (torchrun's WORLD_SIZE)")
        rank = validate.integer(rank, "rank", minimum=0, maximum=world - 1, hint="this process's RANK, below world")
        seed = validate.integer(seed, "seed", minimum=0)
        if batch % world:
            raise ValueError(f"a global batch of {batch} cannot be split evenly over {world} processes: use a batch "
                             f"size divisible by the number of processes")
        if n < batch:
            raise ValueError(f"{n} training items are fewer than one global batch of {batch}: use a smaller batch")
        self.n, self.batch, self.rank, self.world, self.seed = n, batch, rank, world, seed
        self.per_rank = batch // world
        self.steps_per_epoch = n // batch
        self._sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                           drop_last=True)
        self._epoch, self._order = None, None

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def epoch_indices(self, epoch: int) -> list[int]:
        """This rank's items of ``epoch``, in the order it sees them."""
        if self._epoch != epoch:
            self._sampler.set_epoch(epoch)
            self._order, self._epoch = list(self._sampler), epoch
        return self._order

    def __call__(self, step: int) -> list[int]:
        order = self.epoch_indices(self.epoch_of(step))
        i = step % self.steps_per_epoch
        # rank r holds the epoch's permutation at positions r, r + world, ...: slice i of every rank together is
        # the permutation's positions [i * batch, (i + 1) * batch), the single process's batch i
        return order[i * self.per_rank:(i + 1) * self.per_rank]


def shard_report(n: int, batch: int, world: int, seed: int = 0, epoch: int = 0) -> dict:
    """The shards of one epoch as ``world`` ranks would get them: whether they are disjoint, how many of the ``n``
    items the epoch covers (all but the ``n % batch`` left over, which the next epoch's shuffle reaches), and
    whether each step's global batch equals the one-process batch of that step."""
    world = validate.integer(world, "world", minimum=1, hint="the number of processes (torchrun's WORLD_SIZE)")
    samplers = [EpochSampler(n, batch, r, world, seed) for r in range(world)]
    one = EpochSampler(n, batch, 0, 1, seed)
    steps = samplers[0].steps_per_epoch
    seen = [set(x for s in range(steps) for x in smp(epoch * steps + s)) for smp in samplers]
    union = set().union(*seen)
    disjoint = sum(len(s) for s in seen) == len(union)
    same_batches = all(sorted(x for smp in samplers for x in smp(epoch * steps + s))
                       == sorted(one(epoch * steps + s)) for s in range(steps))
    return {"items": n, "world": world, "global_batch": batch, "steps_per_epoch": steps,
            "per_rank_items": [len(s) for s in seen], "disjoint": disjoint, "covered": len(union),
            "left_for_next_epoch": n - len(union), "covers_all_but_remainder": len(union) == n - n % batch,
            "global_batches_equal_one_process": same_batches}


def rank_slice(n: int, rank: int, world: int) -> list[int]:
    """The evaluation items of ``rank``: positions ``rank, rank + world, ...`` of ``range(n)`` (no padding, no item
    twice: ranks may differ by one item)."""
    n = validate.integer(n, "n", minimum=0)
    world = validate.integer(world, "world", minimum=1, hint="the number of processes (torchrun's WORLD_SIZE)")
    rank = validate.integer(rank, "rank", minimum=0, maximum=world - 1, hint="this process's RANK, below world")
    return list(range(rank, n, world))


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over every rank (``t`` itself with one process); float64/int64 sums are exact."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dev = t.device
        if dist.get_backend() == "nccl" and dev.type != "cuda":
            t = t.cuda()
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.to(dev)
    return t


def gather_in_order(items: list, n: int) -> list:
    """Per-item results computed by :func:`rank_slice` on each rank, gathered on every rank in item order."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(items)
    world = dist.get_world_size()
    parts = [None] * world
    dist.all_gather_object(parts, items)
    out = [None] * n
    for r, part in enumerate(parts):
        for pos, item in zip(rank_slice(n, r, world), part):
            out[pos] = item
    return out


def results_key(name: str, cfg) -> str:
    """The cache key of a recipe's results: ``name`` and every field of its configuration."""
    return cache.key(name, cfg=cfg)


def work_file(name: str, cfg, what: str = "train") -> "os.PathLike":
    """The resumable training checkpoint of a recipe's run (``lib.train.fit``'s ``ckpt_path``)."""
    return cache.work_path(cache.key(f"{name}-{what}", cfg=cfg))


def write_result(key: str, result: dict) -> None:
    """Store ``result`` (plain data) under ``key`` in the course cache, atomically, from rank 0 only (replacing an
    earlier result of the same key)."""
    if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return
    path = _result_path(key)
    path.unlink(missing_ok=True)
    cache.memo(key, lambda: result, version=RESULTS_VERSION)


class ResultsMissing(FileNotFoundError):
    """A recipe's results are not in the course cache yet."""


def read_result(key: str) -> dict | None:
    """The result stored under ``key``, or None."""
    if not _result_path(key).exists():
        return None

    def missing():
        raise ResultsMissing(key)

    try:
        return cache.memo(key, missing, version=RESULTS_VERSION)
    except ResultsMissing:
        return None


def _result_path(key: str):
    return cache._path(key, RESULTS_VERSION)


__all__ = ["setup", "local_rank", "barrier", "log", "EpochSampler", "shard_report", "rank_slice", "all_reduce_sum",
           "gather_in_order", "results_key", "work_file", "write_result", "read_result", "ResultsMissing"]
