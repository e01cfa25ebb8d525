"""One training loop for every chapter and scale: resumable, and unchanged under ``torchrun`` (DDP).

``fit`` runs ``steps`` optimisation steps. ``batches(step)`` returns the *global* batch of a step and must be a
function of the step alone (seed a generator with it): then a run that is killed and resumed from its last
checkpoint sees the same batches, and ends exactly where an uninterrupted run ends (the test suite kills one and
checks). A checkpoint holds the model, optimiser, scheduler, random-number state (the CPU generator's, and each CUDA
device's when CUDA is in use), step and history, and is written atomically every ``ckpt_every`` steps; a finished
run's checkpoint makes a second call return at once.

Under ``torchrun --nproc_per_node=N`` (the papers' multi-GPU recipes: LSeg trained on 8 GPUs with DDP + SyncBN)
the same call wraps the model in ``DistributedDataParallel``, gives each process its slice of the global batch and
lets DDP average the gradients, so N processes take the same steps as one process on the whole batch. BatchNorm
layers become ``SyncBatchNorm`` on GPUs (``sync_bn=True``); rank 0 alone writes checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from lib import validate
from lib.storage import checkpoint


def distributed() -> tuple[int, int]:
    """``(rank, world_size)``; initialises the process group when launched by ``torchrun``."""
    if validate.env_int("WORLD_SIZE", 1, minimum=1) > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(batch, rank: int, world: int):
    """This process's contiguous slice of a global batch (tensor, or tuple/list/dict of tensors)."""
    world = validate.integer(world, "world", minimum=1, hint="the number of processes (lib.train.distributed())")
    rank = validate.integer(rank, "rank", minimum=0, maximum=world - 1, hint="this process's index, below world")
    if world == 1:
        return batch
    if isinstance(batch, torch.Tensor):
        if batch.shape[0] % world:
            raise ValueError(f"a global batch of {batch.shape[0]} cannot be split evenly over {world} processes: "
                             f"use a batch size divisible by the number of processes")
        n = batch.shape[0] // world
        return batch[rank * n:(rank + 1) * n]
    if isinstance(batch, dict):
        return {k: shard(v, rank, world) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard(v, rank, world) for v in batch)
    return batch


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def _cuda_rng() -> dict:
    """``{"cuda_rng": [state per CUDA device]}`` when CUDA has been initialised in this process, else ``{}``
    (a CPU run's checkpoint keeps exactly the entries it always had)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return {"cuda_rng": torch.cuda.get_rng_state_all()}
    return {}


def _set_cuda_rng(states, ckpt_path) -> None:
    """Restore the CUDA generators saved by :func:`_cuda_rng` (nothing to do for a checkpoint without them)."""
    if states is None:
        return
    if not torch.cuda.is_available():
        raise checkpoint.CheckpointError(
            f"{ckpt_path} was written by a run on CUDA and holds its GPU random state, but no GPU is available: "
            f"resume it on a GPU runtime, or delete it (rm '{ckpt_path}') to train afresh here")
    if len(states) != torch.cuda.device_count():
        raise checkpoint.CheckpointError(
            f"{ckpt_path} holds the random state of {len(states)} CUDA device(s), but {torch.cuda.device_count()} "
            f"are visible: resume it with the same number of GPUs, or delete it (rm '{ckpt_path}') to train afresh")
    torch.cuda.set_rng_state_all(states)


def fit(model: torch.nn.Module, batches: Callable[[int], object], loss_fn: Callable, optimizer: torch.optim.Optimizer,
        steps: int, *, ckpt_path=None, ckpt_every: int = 50, scheduler=None, log_every: int = 10,
        sync_bn: bool = True, progress: bool = True, on_step: Callable[[int, dict], None] | None = None,
        before_step: Callable[[], None] | None = None, local_batches: bool = False,
        ddp_kwargs: dict | None = None, milestones=(), snapshots: dict | None = None,
        snapshot: Callable[[torch.nn.Module], object] | None = None) -> list[dict]:
    """Train ``model`` for ``steps`` steps and return the history (one dict of floats per logged step).

    ``loss_fn(model, batch) -> dict`` returns the scalar to minimise under ``"loss"`` and any other terms to log.
    ``on_step(step, terms)`` is called after each step (for plots, or for a test that kills the run);
    ``before_step()`` between ``backward()`` and ``optimizer.step()`` (e.g. gradient clipping).
    ``local_batches=True``: ``batches(step)`` already returns this process's part of the step's global batch (a
    sampler that shards by rank, :class:`lib.recipe.EpochSampler`), so it is not sliced again. ``ddp_kwargs`` go to
    ``DistributedDataParallel`` (e.g. ``find_unused_parameters=True`` for a model with parameters a loss skips).

    ``milestones=(150, 600)``: after each of those steps, ``snapshot(model)`` (default: a CPU copy of the model's
    ``state_dict``) is taken, logged, written with the checkpoint at that step (so a run resumed past a milestone
    still has it) and put into the dict ``snapshots`` as ``{step: snapshot}``. A milestone of 0 is the model before
    training.
    """
    rank, world = distributed()
    history: list[dict] = []
    start = 0
    milestones = _check_milestones(milestones, steps)
    snapshot = snapshot or _state_copy
    taken: dict[int, object] = {} if snapshots is None else snapshots
    if milestones and snapshots is None:
        raise ValueError("milestones need a dict to put their snapshots in: pass snapshots={} and read it afterwards")
    if ckpt_path is not None and os.path.exists(ckpt_path):
        state = checkpoint.load(ckpt_path)
        if not isinstance(state, dict) or not {"model", "optimizer", "rng", "step", "history"} <= set(state):
            raise checkpoint.CheckpointError(f"{ckpt_path} is not a checkpoint of lib.train.fit (no model/optimizer/"
                                             f"step entries): delete it (rm '{ckpt_path}') or pass another ckpt_path")
        if state["step"] > steps:
            raise ValueError(f"the checkpoint {ckpt_path} holds a run of {state['step']} steps, more than the "
                             f"steps={steps} asked: pass steps={state['step']} to use it, or delete it "
                             f"(rm '{ckpt_path}') to train {steps} steps afresh")
        checkpoint.load_state(_unwrap(model), state["model"], ckpt_path)
        checkpoint.load_state(optimizer, state["optimizer"], ckpt_path)
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        _set_cuda_rng(state.get("cuda_rng"), ckpt_path)
        start, history = state["step"], state["history"]
        taken.update(state.get("milestones", {}))
        missing = [m for m in milestones if m <= start and m not in taken]
        if missing:
            raise checkpoint.CheckpointError(
                f"{ckpt_path} holds a run at step {start} without the snapshots of its milestones {missing}: delete "
                f"it (rm '{ckpt_path}') to train afresh and take them")

    if world > 1 and not isinstance(model, torch.nn.parallel.DistributedDataParallel):
        if sync_bn and torch.cuda.is_available():
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = torch.nn.parallel.DistributedDataParallel(model, **(ddp_kwargs or {}))

    def save(step: int) -> None:
        if ckpt_path is not None and rank == 0:
            checkpoint.save({"model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict() if scheduler is not None else None,
                             "rng": torch.get_rng_state(), **_cuda_rng(), "step": step, "history": history,
                             **({"milestones": taken} if milestones else {})},
                            ckpt_path)

    if 0 in milestones and 0 not in taken:
        taken[0] = snapshot(_unwrap(model))
    model.train()
    bar = tqdm(range(start, steps), total=steps, initial=start, disable=not progress or rank != 0,
               desc="training", leave=False)
    for step in bar:
        batch = batches(step)
        terms = loss_fn(model, batch if local_batches else shard(batch, rank, world))
        if not torch.isfinite(terms["loss"].detach()).all():
            raise FloatingPointError(
                f"the loss is {float(terms['loss'].detach())} at step {step}: training stopped before the weights "
                f"took it (the last checkpoint is kept). Check the batch for NaN/inf and try a lower learning rate")
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if before_step is not None:
            before_step()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        logged = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in terms.items()}
        at_milestone = step + 1 in milestones
        if at_milestone:
            taken[step + 1] = snapshot(_unwrap(model))
        if step % log_every == 0 or step == steps - 1 or at_milestone:
            history.append({"step": step, **logged})
            bar.set_postfix(loss=f"{logged['loss']:.4g}")
        if (step + 1) % ckpt_every == 0 or step == steps - 1 or at_milestone:
            save(step + 1)
        if on_step is not None:
            on_step(step, logged)
    model.eval()
    return history


def _state_copy(model: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _check_milestones(milestones, steps: int) -> tuple[int, ...]:
    """The milestones as sorted distinct steps in ``[0, steps]``."""
    out = []
    for m in milestones or ():
        out.append(validate.integer(m, "milestone", minimum=0, maximum=steps,
                                    hint=f"a step after which fit takes a snapshot, between 0 and steps={steps}"))
    return tuple(sorted(set(out)))

