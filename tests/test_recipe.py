"""The shared machinery of the `paper` recipes (lib.recipe) and LSeg's recipe (lib.lseg.recipe)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lib import recipe

ROOT = Path(__file__).resolve().parents[1]
HELPER = ROOT / "tests" / "helpers" / "lseg_recipe_ddp.py"


@pytest.mark.parametrize("n,batch,world", [(10, 4, 2), (37, 6, 3), (8, 8, 1), (24, 8, 4)])
def test_epoch_shards_are_disjoint_cover_the_set_and_match_one_process(n, batch, world):
    rep = recipe.shard_report(n, batch, world, seed=3, epoch=1)
    assert rep["disjoint"] and rep["covers_all_but_remainder"] and rep["global_batches_equal_one_process"]
    assert rep["covered"] == n - n % batch and rep["per_rank_items"] == [n // batch * batch // world] * world


def test_epoch_sampler_reshuffles_per_epoch_and_is_a_function_of_the_step():
    a, b = recipe.EpochSampler(12, 4, 1, 2, seed=0), recipe.EpochSampler(12, 4, 1, 2, seed=0)
    first = [a(s) for s in range(3)]
    assert [b(s) for s in (2, 0, 1)] == [first[2], first[0], first[1]]    # any order of calls
    assert sorted(x for s in range(3, 6) for x in a(s)) != [x for s in range(3) for x in first[s]]
    with pytest.raises(ValueError, match="divisible"):
        recipe.EpochSampler(12, 5, 0, 2)


def test_rank_slices_partition_the_items():
    parts = [recipe.rank_slice(11, r, 3) for r in range(3)]
    assert sorted(x for p in parts for x in p) == list(range(11))


def test_results_round_trip_and_missing_results_stop_with_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    from lib.lseg import config
    from lib.lseg import recipe as lseg_recipe

    cfg = config.CONFIGS["paper"]
    assert lseg_recipe.require(config.CONFIGS["tiny"]) is None
    with pytest.raises(recipe.ResultsMissing) as err:
        lseg_recipe.require(cfg)
    msg = str(err.value)
    for part in ("torchrun --nproc_per_node=8", "lib.lseg.recipe train --scale paper", "VOCtrainval_11-May-2012.tar",
                 "ESTIMATE", "GPU-hours", "GB"):
        assert part in msg, part
    for f in cfg.recipe.folds:
        recipe.write_result(lseg_recipe.fold_key(cfg, f), {"miou": 0.5 + f / 10, "fold": f})
    got = lseg_recipe.require(cfg)
    assert sorted(got) == list(cfg.recipe.folds) and got[3]["miou"] == pytest.approx(0.8)
    with pytest.raises(recipe.ResultsMissing):
        lseg_recipe.require(cfg.rehearsed())


def test_two_processes_end_with_the_weights_of_one_process_on_the_whole_batch(tmp_path):
    """LSeg's recipe at toy sizes: 2 gloo processes (4 steps of a global batch of 4) against this process alone.
    BatchNorm runs on its running statistics here: torch's SyncBatchNorm, which the recipe uses on GPUs, is
    CUDA-only, and per-process batch statistics would differ from the whole batch's."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    two = tmp_path / "two.pt"
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             "--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:0", str(HELPER), "--out", str(two)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    one = tmp_path / "one.pt"
    r1 = subprocess.run([sys.executable, str(HELPER), "--out", str(one)], env=env, cwd=ROOT, capture_output=True,
                        text=True, timeout=300)
    out2, _ = proc.communicate(timeout=300)
    assert r1.returncode == 0, r1.stderr[-3000:]
    assert proc.returncode == 0, out2[-3000:]
    a, b = torch.load(one, weights_only=True), torch.load(two, weights_only=True)
    assert (a["world"], b["world"]) == (1, 2) and a["facts"]["steps"] == b["facts"]["steps"] == 4
    assert b["facts"]["per_rank_batch"] == 2 and b["facts"]["shards"]["disjoint"]
    sys.path.insert(0, str(HELPER.parent))
    from lseg_recipe_ddp import toy_config  # noqa: E402

    from lib.lseg import recipe as lseg_recipe

    from lib import runtime

    runtime.seed_everything(toy_config().seed)
    init = lseg_recipe.build_model(toy_config(), "cpu", None).state_dict()
    moved = max(float((a["model"][k] - init[k]).abs().max()) for k in init if init[k].is_floating_point())
    assert moved > 1e-2   # training moved the weights far more than the tolerance below
    for k in a["model"]:
        torch.testing.assert_close(b["model"][k], a["model"][k], rtol=1e-4, atol=1e-5, msg=k)
    # the evaluation split over the two processes and gathered covers every episode once, in order
    assert [e[0] for e in b["eval"]["per_episode"]] == [e[0] for e in a["eval"]["per_episode"]]
    assert b["eval"]["miou"] == pytest.approx(a["eval"]["miou"], abs=1e-3)
    assert b["eval"]["reduced_equals_gathered"] and b["eval"]["world"] == 2


def test_paper_rehearsal_changes_sizes_and_data_never_the_algorithm():
    from lib.lseg import config

    paper = config.CONFIGS["paper"]
    r = paper.rehearsed()
    changed = {f for f in paper.describe() if paper.describe()[f] != r.describe()[f]}
    assert changed == {f"recipe.{f}" for f in config.PaperRecipe.REHEARSAL} | {"rehearsal"}
    algorithm = ("base_lr", "head_lr_mult", "momentum", "weight_decay", "poly_power", "sync_bn", "seed")
    assert not changed & {f"recipe.{f}" for f in algorithm}
    rc = paper.recipe
    assert rc.lr == pytest.approx(rc.base_lr / 16)   # the official rule with one image per process
    fields = {f.name for f in dataclasses.fields(rc)}
    assert all(name in fields or " " in name for name, _ in rc.course_choices)
    assert paper.at_paper_scale and not r.at_paper_scale
