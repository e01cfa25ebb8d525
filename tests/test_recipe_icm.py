"""Chapter 1's paper recipe (lib.icm.recipe): its configuration, its plan and the chapter's stop without results.
The recipe itself runs under torchrun in scripts/paper_rehearsal.py (2 gloo processes, miniature data)."""

from __future__ import annotations

import dataclasses

import pytest

from lib import recipe
from lib.icm import config, experiment, paper_numbers
from lib.icm import recipe as icm_recipe

PAPER = config.CONFIGS["paper"]
# what the paper scale may change with respect to colab: how long, how much, and on which images
SIZES_AND_DATA = {"base_steps", "base_batch", "base_ckpt_every", "coco_train_url", "coco_train_images", "base_crop",
                  "ft_steps", "ft_batch", "ft_crop", "ft_pool", "kodak_ids", "coco_ids", "machine_size"}


def test_paper_changes_only_sizes_and_data_with_respect_to_colab():
    colab, paper = config.CONFIGS["colab"].describe(), PAPER.describe()
    changed = {f for f in colab if f not in ("config", "scale") and colab[f] != paper[f]}
    assert changed and changed <= SIZES_AND_DATA, changed - SIZES_AND_DATA
    # the finetunings are the chapter's own runs with the same settings but for the steps, the batch and the pool
    grid = icm_recipe.grid(PAPER)
    for name, b in grid.items():
        a = experiment.finetune_grid(config.CONFIGS["colab"])[name][0]
        assert dataclasses.replace(a, steps=b.steps, batch=b.batch, pool=b.pool) == b, name
    assert list(grid) == list(experiment.finetune_grid(PAPER))   # every run the chapter names, in its order
    # each of them but the MSE-only control is a row of poster Table 1, read from lib.icm.paper_numbers
    rows = icm_recipe.poster_rows(PAPER)
    assert set(rows.values()) == set(paper_numbers.TABLE_1) and set(grid) - set(rows) == {PAPER.runs().control.name}


def test_rehearsal_changes_sizes_and_data_only_and_names_its_choices():
    r = PAPER.rehearsed()
    changed = {f for f in PAPER.describe() if PAPER.describe()[f] != r.describe()[f]}
    assert changed == set(config.ICMPaperConfig.REHEARSAL) | {"rehearsal"}
    assert not changed & {"base", "base_quality", "base_lr", "machine", "ft_lr_g", "ft_ndf", "li_k", "li_patch",
                          "eval_sets", "confidence", "seed"}
    assert PAPER.at_paper_scale and not r.at_paper_scale
    fields = set(PAPER.describe())
    assert all(name in fields or " " in name for name, _ in PAPER.course_choices)


def test_missing_results_stop_with_the_command_and_results_are_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    assert icm_recipe.require(config.CONFIGS["tiny"]) is None and icm_recipe.require(config.CONFIGS["colab"]) is None
    with pytest.raises(recipe.ResultsMissing) as err:
        icm_recipe.require(PAPER)
    msg = str(err.value)
    for part in ("torchrun --nproc_per_node=8", "lib.icm.recipe train --scale paper", "lib.icm.recipe evaluate",
                 "train2017.zip", "ESTIMATE", "GPU-hours", "GB", "does not run a smaller configuration"):
        assert part in msg, part
    recipe.write_result(recipe.results_key(icm_recipe.NAME, PAPER), {"scores": {"base": {"psnr": 30.0}}})
    assert icm_recipe.require(PAPER)["scores"]["base"]["psnr"] == 30.0
    with pytest.raises(recipe.ResultsMissing):   # the rehearsal's results are another configuration's
        icm_recipe.require(PAPER.rehearsed())


def test_the_estimate_follows_the_steps_and_counts_every_run():
    r = PAPER.rehearsed()
    a = icm_recipe.estimate(r)
    b = icm_recipe.estimate(dataclasses.replace(r, base_steps=3 * r.base_steps))
    assert set(a["gpu_hours_per_run"]) == {"base", r.runs().patchgan.name, r.runs().control.name}
    assert b["gpu_hours_per_run"]["base"] == pytest.approx(3 * a["gpu_hours_per_run"]["base"])
    assert b["gpu_hours_per_run"]["MSE-only control"] == a["gpu_hours_per_run"]["MSE-only control"]
    # the adversarial run also trains the discriminator: more work per image than the MSE-only control
    assert a["flops_per_image"]["PatchGAN 3×64"] > a["flops_per_image"]["MSE-only control"] > 0
    assert "ESTIMATE" not in a["how"] and "not measured" in a["how"]


def test_only_the_paper_configuration_has_a_recipe():
    with pytest.raises(SystemExit, match="COURSE_SCALE=colab"):
        icm_recipe.get_config("colab")
    with pytest.raises(ValueError, match="ft_runs"):
        icm_recipe.grid(dataclasses.replace(PAPER, ft_runs=("PatchGAN 3×64",)))   # a part of cfg.runs(), not a name
