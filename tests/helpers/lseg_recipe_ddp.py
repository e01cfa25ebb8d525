"""Train and evaluate the LSeg paper recipe at toy sizes on synthetic episodes (one process, or under torchrun);
rank 0 writes the weights and the evaluation to ``--out``. Used by tests/test_recipe.py."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def toy_config():
    """The paper recipe at toy sizes (the tiny architecture, 32 px, 2 epochs; lr = base_lr / 16 = 0.05)."""
    from lib.lseg import config

    return dataclasses.replace(config.CONFIGS["paper"].recipe, folds=(0,), backbone="tiny", size=32,
                               global_batch=4, epochs=2, base_lr=0.8, ckpt_every=1000)


def toy_data(n: int = 10, size: int = 32) -> dict:
    """Images with one seen class (6..20) and one held-out class of fold 0 (1..5) each, no ignored pixels."""
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(n, size, size, 3, generator=g) * 255).to(torch.uint8)
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    for i in range(n):
        masks[i, 4:14, 4 + i % 6:20] = 6 + i % 15
        masks[i, 18:30, 10:26] = 1 + i % 5
        images[i][masks[i] > 0] //= 2
    return {"ids": [str(i) for i in range(n)], "images": images, "masks": masks, "full": list(masks)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from lib import recipe, train
    from lib.lseg import pascal
    from lib.lseg import recipe as lseg_recipe

    torch.set_num_threads(1)
    rank, world, device = recipe.setup()
    cfg, data = toy_config(), toy_data()
    T = torch.randn(21, 512, generator=torch.Generator().manual_seed(1))
    model, history, facts = lseg_recipe.train_fold(cfg, 0, {"train": data}, T, device, None, freeze_bn=True,
                                                   progress=False)
    ev = pascal.evaluate_fold(model, data, pascal.episodes(data, pascal.fold_classes(0)[0]), T)
    if rank == 0:
        torch.save({"model": model.state_dict(), "world": world, "facts": facts, "eval": ev}, args.out)
    if train.dist.is_initialized():
        train.dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
