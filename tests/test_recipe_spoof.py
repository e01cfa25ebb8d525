"""Chapter 2's paper recipe (lib.spoof.recipe): its configuration, its plan, the chapter's stop without results, the
learning-rate rule, the weight averaging and the batches' independence from how a step is split over processes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
import torch

from lib import recipe
from lib.spoof import config as C
from lib.spoof import recipe as R

PAPER = C.CONFIGS["paper"]


def changed_fields(a, b) -> set:
    """``part.field`` (or ``field``) of every value that differs between two configurations' descriptions."""
    da, db = a.describe(), b.describe()
    out = {f for f in da if not isinstance(da[f], dict) and da[f] != db[f]}
    return out | {f"{p}.{f}" for p in ("data", "model", "train") for f in da[p] if da[p][f] != db[p][f]}


def test_paper_configuration_holds_the_reference_recipe():
    t = PAPER.train
    assert isinstance(PAPER, C.SpoofPaperConfig) and PAPER.at_paper_scale
    assert (t.epochs, t.batch_size, t.num_avg, t.crop_s, t.warmup_epochs, PAPER.seeds) == (20, 32, 10, 3.0, 6, (42,))
    assert (t.lr, t.final_lr) == (1e-5, 1e-6) and not PAPER.model.frozen and PAPER.eval_split == "eval"
    assert t.lr_scale == pytest.approx(1 * 32 / 64)           # wedefense's scale_ratio for one GPU of batch 32
    fields = {f for p in ("data", "model", "train") for f in PAPER.describe()[p]} | set(PAPER.describe())
    assert all(name in fields or " " in name for name, _ in PAPER.course_choices)


def test_rehearsal_changes_sizes_and_data_never_the_algorithm():
    """What the rehearsal may change: sizes and the data drawn; freezing XLSR-53 is the one change of the algorithm
    (fine-tuning its 300 M parameters in two CPU processes would not fit the rehearsal's memory and time)."""
    r = PAPER.rehearsed()
    sizes = {"train.epochs", "train.batch_size", "train.crop_s", "train.eval_batch", "train.num_avg",
             "train.ckpt_every", "data.n_train", "data.n_eval"}
    assert changed_fields(PAPER, r) == sizes | {"model.frozen", "rehearsal"}
    assert r.model.frozen and not r.at_paper_scale


def test_paper_differs_from_colab_in_sizes_data_and_the_papers_training_settings_only():
    colab = C.CONFIGS["colab"]
    assert type(PAPER.data) is type(colab.data) and type(PAPER.model) is type(colab.model)
    assert changed_fields(colab, PAPER) <= {"scale", "config", "data.n_train", "data.n_eval", "data.eval_split",
                                            "model.frozen", *(f"train.{f}" for f in PAPER.describe()["train"])}
    for group in ("bona", "partial", "full"):      # the full sets, far more than colab's subsets
        assert PAPER.data.n_train[group] > colab.data.n_train[group]
        assert PAPER.data.n_eval[group] > colab.data.n_eval[group]


def test_the_recipe_refuses_a_configuration_without_it():
    with pytest.raises(SystemExit, match="COURSE_SCALE=colab"):
        R.config("colab")
    R.scale.set_scale(None)


def test_missing_results_stop_with_the_command_then_results_are_read(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    assert R.require(C.CONFIGS["tiny"]) is None and R.require(C.CONFIGS["colab"]) is None
    with pytest.raises(recipe.ResultsMissing) as err:
        R.require(PAPER)
    msg = str(err.value)
    for part in ("torchrun --nproc_per_node=8", "lib.spoof.recipe train --scale paper", "database_train.tar.gz",
                 "LA.zip", "wav2vec2_fairseq_large_xlsr53.pth", "ESTIMATE", "GPU-hours", "GB", "does not run a smaller"):
        assert part in msg, part
    recipe.write_result(recipe.results_key(R.cm_name("full", 42), PAPER), {"eer_ps": 3.5})
    with pytest.raises(recipe.ResultsMissing, match="partial"):    # one countermeasure is not enough
        R.require(PAPER)
    recipe.write_result(recipe.results_key(R.cm_name("partial", 42), PAPER), {"eer_ps": 0.7})
    got = R.require(PAPER)
    assert got[("partial", 42)]["eer_ps"] == pytest.approx(0.7) and got[("full", 42)]["eer_ps"] == pytest.approx(3.5)
    with pytest.raises(recipe.ResultsMissing):                      # the rehearsal's results are another key
        R.require(PAPER.rehearsed())


def test_learning_rate_warms_up_from_zero_then_decays_exponentially():
    cfg = PAPER
    f = R.lr_factor(cfg, steps_per_epoch=10)
    assert f(0) == 0.0
    rates = [cfg.train.lr * f(s) for s in range(200)]
    assert all(a < b for a, b in zip(rates[:60], rates[1:60])) and all(a > b for a, b in zip(rates[60:], rates[61:]))
    # the warm-up's end: 0.5 × 1e-5 × 0.1 ** (6 / 20), about 2.5e-6, the effective peak
    assert max(rates) == pytest.approx(0.5 * 1e-5 * 0.1 ** 0.3) and max(rates) == rates[60]
    assert cfg.train.lr * f(200) == pytest.approx(0.5 * cfg.train.final_lr)


def test_average_counts_each_epoch_once(tmp_path):
    path = tmp_path / "avg.pt"
    model = torch.nn.BatchNorm1d(3)
    for epoch, value in ((1, 1.0), (2, 3.0), (2, 100.0), (3, 8.0)):   # epoch 2 folded twice: a restarted job
        with torch.no_grad():
            model.weight.fill_(value)
        model.num_batches_tracked.fill_(epoch)
        R.average_into(path, model, epoch)
    avg = torch.load(path, weights_only=True)
    assert avg["epochs"] == [1, 2, 3]
    torch.testing.assert_close(avg["state"]["weight"], torch.full((3,), 4.0))
    assert int(avg["state"]["num_batches_tracked"]) == 3


def test_a_steps_batch_does_not_depend_on_how_it_is_split(tmp_path):
    r = PAPER.rehearsed()
    cfg = dataclasses.replace(r, train=dataclasses.replace(r.train, crop_s=0.5))
    rng = np.random.default_rng(0)
    specs = []
    for i, seconds in enumerate((0.3, 0.7, 1.2, 0.5, 2.0, 0.9)):
        utt = f"LA_T_{i}"
        (tmp_path / "train" / "audio").mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / "train" / "audio" / f"{utt}.wav", 0.1 * rng.standard_normal(int(seconds * 16000)), 16000)
        specs.append(("bona" if i % 2 else "partial", utt))
    one = recipe.EpochSampler(len(specs), 2, 0, 1, seed=3)
    parts = [recipe.EpochSampler(len(specs), 2, r, 2, seed=3) for r in range(2)]
    for step in range(one.steps_per_epoch * 2):
        x1, y1 = R.chunk_batches(cfg, tmp_path, specs, one, 3, "cpu")(step)
        rows = {k: (x1[j], y1[j]) for j, k in enumerate(one(step))}
        assert x1.shape == (2, 8000)
        for smp in parts:
            x, y = R.chunk_batches(cfg, tmp_path, specs, smp, 3, "cpu")(step)
            for j, k in enumerate(smp(step)):
                assert torch.equal(x[j], rows[k][0]) and int(y[j]) == int(rows[k][1])
    a = R.chunk_batches(cfg, tmp_path, specs, one, 3, "cpu")(0)[0]
    b = R.chunk_batches(cfg, tmp_path, specs, one, 3, "cpu")(one.steps_per_epoch)[0]
    assert not torch.equal(a, b)                                    # another epoch: another order and other chunks
