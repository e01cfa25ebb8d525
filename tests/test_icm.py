"""Tests for lib.icm (Chapter 1: image coding for machines → humans)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import lib
from lib import icm
from lib.icm import codec as C
from lib.icm import decoder_finetuning as FT
from lib.icm import coco, kodak, patchgan

ROOT = Path(__file__).resolve().parent.parent
torch.set_num_threads(1)


def small_codec(seed=0, N=8, M=12):
    torch.manual_seed(seed)
    codec = C.build_codec(N, M).eval()
    codec.update(force=True)
    return codec


def photo_like(seed=0, size=64):
    """A smooth random image (no periodic structure) in [0, 1], (1, 3, size, size)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, size // 8, size // 8, generator=g)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    return (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)


# --- PatchGAN ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size,expected", [(32, 2), (64, 6), (128, 14)])
def test_discriminator_map_size(size, expected):
    D = icm.PatchDiscriminator(in_channels=3, ndf=64, n_layers=3)
    out = D(torch.rand(2, 3, size, size))
    assert out.shape == (2, 1, expected, expected)
    assert D.output_size(size) == expected


def test_receptive_field_is_70_pixels():
    assert icm.receptive_field(3) == 70
    D = icm.PatchDiscriminator(ndf=8, n_layers=3).eval()
    x = torch.rand(1, 3, 160, 160, requires_grad=True)
    out = D(x)
    c = out.shape[-1] // 2
    out[0, 0, c, c].backward()
    rows = torch.nonzero(x.grad.abs().sum((0, 1)).sum(1)).flatten()
    cols = torch.nonzero(x.grad.abs().sum((0, 1)).sum(0)).flatten()
    # padding can hide at most the outermost taps; away from the border the full window is seen
    assert int(rows[-1] - rows[0] + 1) == 70 and int(cols[-1] - cols[0] + 1) == 70


def test_discriminator_rejects_bad_inputs():
    D = icm.PatchDiscriminator(ndf=8)
    with pytest.raises(ValueError, match=r"x must be \(B >= 1, 3, H, W\) patches"):
        D(torch.rand(1, 4, 64, 64))
    with pytest.raises(ValueError, match="too small"):
        D(torch.rand(1, 3, 16, 16))


def test_aligned_patches_come_from_the_same_positions():
    B, H, W = 2, 40, 50
    x = torch.arange(B * 3 * H * W, dtype=torch.float32).reshape(B, 3, H, W)
    x_hat = -x
    real, fake, pos = icm.aligned_patches(x, x_hat, k=3, size=16, generator=torch.Generator().manual_seed(1))
    assert real.shape == fake.shape == (B * 3, 3, 16, 16) and pos.shape == (B, 3, 2)
    assert torch.equal(fake, -real)
    for b in range(B):
        for n in range(3):
            i, j = pos[b, n].tolist()
            assert torch.equal(real[b * 3 + n], x[b, :, i:i + 16, j:j + 16])
    assert len({tuple(p) for p in pos.reshape(-1, 2).tolist()}) > 1  # positions are random, not all equal
    with pytest.raises(ValueError, match="does not fit"):
        icm.aligned_patches(x, x_hat, k=1, size=64)
    with pytest.raises(ValueError, match="same shape"):
        icm.aligned_patches(x, x_hat[:, :, :20], k=1, size=8)


def test_gan_losses():
    logits = torch.tensor([[2.0, -1.0]])
    assert float(icm.gan_loss(logits, True, "lsgan")) == pytest.approx(((2 - 1) ** 2 + (-1 - 1) ** 2) / 2)
    assert float(icm.gan_loss(logits, False, "lsgan")) == pytest.approx((4 + 1) / 2)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    assert float(icm.gan_loss(logits, True, "bce")) == pytest.approx(float(bce))
    with pytest.raises(ValueError, match="lsgan"):
        icm.gan_loss(logits, True, "wgan")


@pytest.mark.parametrize("size", [32, 64, 128])
def test_windows_are_what_each_logit_sees(size):
    """patchgan.windows (the chapter's table of what one logit sees) against the gradient of each logit."""
    D = icm.PatchDiscriminator(ndf=8).eval()
    x = torch.rand(1, 3, size, size, requires_grad=True)
    out = D(x)
    spans = []
    for i in range(out.shape[-2]):
        (grad,) = torch.autograd.grad(out[0, 0, i, 0], x, retain_graph=True)
        rows = torch.nonzero(grad.abs().sum((0, 1)).sum(1)).flatten()
        spans.append((int(rows[0]), int(rows[-1])))
    assert patchgan.windows(D, size) == spans
    if size == 32:   # on the chapter's smallest patches every logit sees the whole patch
        assert spans == [(0, 31)] * 2


def test_generator_loss_moves_only_the_decoder_and_discriminator_loss_only_D():
    torch.manual_seed(0)
    D = icm.PatchDiscriminator(ndf=8)
    real = torch.rand(2, 3, 32, 32)
    fake = torch.rand(2, 3, 32, 32, requires_grad=True)
    gen = FT.generator_loss(D, real, fake, lmbda_adv=0.5)
    assert torch.allclose(gen["L_G"], gen["mse"] + 0.5 * gen["adv"])
    gen["L_G"].backward()
    assert fake.grad.abs().sum() > 0 and all(p.grad is None for p in D.parameters())
    fake.grad = None
    FT.discriminator_loss(D, real, fake).backward()
    assert fake.grad is None and all(p.grad is not None for p in D.parameters())
    only_mse = FT.generator_loss(None, real, fake, lmbda_adv=0.5)   # the MSE-only control
    assert set(only_mse) == {"L_G", "mse"} and torch.equal(only_mse["L_G"], only_mse["mse"])


def test_training_minimises_the_losses_the_chapter_shows(monkeypatch):
    """The chapter shows generator_loss and discriminator_loss ({literalinclude} :pyobject:); the
    finetuning loop must call exactly these, once each per step, and log what they return."""
    chapter = (ROOT / "book" / "01_icm.md").read_text()
    for name in ("generator_loss", "discriminator_loss"):
        assert re.search(r"literalinclude\}\s*\.\./lib/icm/decoder_finetuning\.py\s*\n:pyobject: " + name, chapter), name
    calls, logged = [], []

    def spy(name):
        real_fn = getattr(FT, name)

        def wrapped(*args, **kwargs):
            out = real_fn(*args, **kwargs)
            calls.append(name)
            if name == "discriminator_loss":
                logged.append(out)
            return out
        return wrapped

    for name in ("generator_loss", "discriminator_loss"):
        monkeypatch.setattr(FT, name, spy(name))
    res = finetune_small(small_codec(3), steps=2)
    assert calls == ["generator_loss", "discriminator_loss"] * 2
    assert res["history"][-1]["d_loss"] == pytest.approx(float(logged[-1].detach()))


# --- the artifact score -----------------------------------------------------------------------------------------
def test_artifact_score_flat_and_checkerboard():
    flat = np.full((64, 64, 3), 0.4)
    assert icm.checkerboard_score(flat, 4) == 0.0
    base = photo_like(3, 128)[0].permute(1, 2, 0).numpy()
    P = 4
    i, j = np.meshgrid(np.arange(128), np.arange(128), indexing="ij")
    pattern = 0.08 * (((i % P) == 0) & ((j % P) == 0)) - 0.02
    board = np.clip(base + pattern[..., None], 0, 1)
    s_photo, s_board = icm.checkerboard_score(base, P), icm.checkerboard_score(board, P)
    assert s_photo < 0.1
    assert s_board > 0.25 and s_board > 5 * s_photo
    # a pure period-P pattern on a flat image is all artifact: score ~ 1
    assert icm.checkerboard_score(np.clip(0.5 + pattern[..., None] + 0 * base, 0, 1), P) > 0.9
    # the score is per period: a period-4 pattern is not a period-3 or period-5 one
    assert icm.checkerboard_score(board, 3) < 0.2 * s_board
    assert icm.checkerboard_score(board, 5) < 0.2 * s_board
    # (3, H, W) tensors are accepted and give the same number
    assert icm.checkerboard_score(torch.from_numpy(board).permute(2, 0, 1), P) == pytest.approx(s_board)
    # the per-phase mean map peaks at phase (0, 0), where the pattern sits
    m = icm.phase_means(board, P)
    assert m.shape == (P, P) and np.unravel_index(m.argmax(), m.shape) == (0, 0)


def test_artifact_score_bad_inputs():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        icm.checkerboard_score(np.full((64, 64, 3), 2.0), 4)
    with pytest.raises(ValueError, match="uint8"):
        icm.checkerboard_score(np.zeros((64, 64, 3), np.uint8), 4)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        icm.checkerboard_score(np.zeros((64, 64, 4)), 4)
    with pytest.raises(ValueError, match="too small"):
        icm.checkerboard_score(np.zeros((10, 10, 3)), 4)
    with pytest.raises(ValueError, match="period"):
        icm.checkerboard_score(np.zeros((64, 64, 3)), 1)


# --- codec: input checks, straight-through, bitstreams ----------------------------------------------------------
def test_codec_bad_inputs_say_what_to_do():
    codec = small_codec()
    with pytest.raises(ValueError, match="multiples of 16"):
        codec.compress(torch.rand(1, 3, 40, 64))
    with pytest.raises(ValueError, match="multiples of 16"):
        codec(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="3 colour channels"):
        codec(torch.rand(1, 4, 64, 64))
    with pytest.raises(ValueError, match="channels-last"):
        codec(torch.rand(1, 64, 64, 3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        codec(torch.rand(1, 3, 64, 64) * 255)
    with pytest.raises(ValueError, match="float"):
        codec(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def test_forward_in_eval_mode_decodes_what_the_bitstream_decodes():
    codec = small_codec(1)
    x = photo_like(1, 64)
    with torch.no_grad():
        fwd = codec(x)["x_hat"]
        dec = codec.decompress(**{k: v for k, v in codec.compress(x).items()})["x_hat"]
    assert torch.allclose(fwd, dec, atol=1e-5)
    # straight-through: gradients reach the encoder through the rounding
    codec.train()
    x.requires_grad_(True)
    codec(x)["x_hat"].sum().backward()
    assert codec.g_a[0].weight.grad is not None and codec.g_a[0].weight.grad.abs().sum() > 0


# --- milestone snapshots of lib.train.fit ----------------------------------------------------------------------
def _toy_fit(steps, ckpt=None, milestones=(), on_step=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    def batches(step):
        g = torch.Generator().manual_seed(step)
        return torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)
    loss = lambda m, b: {"loss": torch.nn.functional.mse_loss(m(b[0]), b[1])}
    snaps = {}
    lib.train.fit(model, batches, loss, opt, steps, ckpt_path=ckpt, ckpt_every=2, progress=False,
                  milestones=milestones, snapshots=snaps, on_step=on_step)
    return model, snaps


def test_fit_milestones_are_the_model_after_exactly_that_step(tmp_path):
    _, snaps = _toy_fit(7, milestones=(3, 5, 0))
    assert sorted(snaps) == [0, 3, 5]
    for m in (0, 3, 5):   # a run of m steps ends where the snapshot at m says
        want = _toy_fit(m)[0].state_dict()
        assert all(torch.equal(snaps[m][k], want[k]) for k in want), m
    assert not torch.equal(snaps[3]["weight"], snaps[5]["weight"])
    with pytest.raises(ValueError, match="milestone"):
        _toy_fit(4, milestones=(5,))


def test_fit_milestones_survive_a_kill_and_resume(tmp_path):
    ckpt = tmp_path / "run.pt"
    def kill(step, terms):
        if step == 4:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _toy_fit(7, ckpt, milestones=(3,), on_step=kill)   # killed past the milestone, before its end
    assert lib.storage.checkpoint.load(ckpt)["step"] == 4
    _, resumed = _toy_fit(7, ckpt, milestones=(3,))
    _, straight = _toy_fit(7, milestones=(3,))
    assert sorted(resumed) == [3]
    assert torch.equal(resumed[3]["weight"], straight[3]["weight"])
    # a checkpoint written without a milestone's snapshot cannot give it back: refused, not silently skipped
    other = tmp_path / "plain.pt"
    _toy_fit(4, other)
    with pytest.raises(lib.storage.checkpoint.CheckpointError, match="milestones"):
        _toy_fit(7, other, milestones=(3,))


def finetune_small(base, steps=1, milestones=None, **kw):
    photos = [("a", photo_like(5, 96)[0]), ("b", photo_like(6, 96)[0])]
    cfg = FT.FinetuneConfig(steps=steps, batch=2, crop=64, pool=4, k=2, patch=32, ndf=8, lr_g=1e-2, **kw)
    return FT.finetune(base, photos, cfg, milestones=milestones)


def test_freezing_keeps_everything_but_the_head_bit_identical():
    base = small_codec(2)
    before = C.state_hashes(base)
    res = finetune_small(base)
    assert [n for n, _ in res["trained"]] == [n for n, p in base.named_parameters() if n.startswith(("g_s.0.", "g_s.1."))]
    new = FT.with_head(base, res["snapshots"]["1"])
    after = C.state_hashes(new)
    frozen = [k for k in before if not k.startswith(FT.TRAINABLE)]
    assert frozen and all(before[k] == after[k] for k in frozen)
    assert any(before[k] != after[k] for k in before if k.startswith(FT.TRAINABLE))  # the head did move
    assert C.state_hashes(base) == before  # the base codec object itself is untouched


def test_freezing_refuses_bitstream_layers():
    with pytest.raises(ValueError, match="bitstream"):
        FT.freeze_for_finetuning(small_codec(), ("g_a.0",))
    with pytest.raises(ValueError, match="no parameters"):
        FT.freeze_for_finetuning(small_codec(), ("g_s.9",))


def test_bitstream_identical_and_old_bitstreams_decode_with_new_decoder():
    base = small_codec(3)
    res = finetune_small(base, steps=2, milestones=[1], adversarial=False)
    assert set(res["snapshots"]) == {"1", "2"} and len(res["history"]) == 2  # resumed from step 1, not restarted
    s1, s2 = res["snapshots"]["1"], res["snapshots"]["2"]
    assert any(not torch.equal(s1[k], s2[k]) for k in s1)
    new = FT.with_head(base, res["snapshots"]["2"])
    images = [photo_like(s, 64) for s in range(3)]
    old = C.compress_all(base, images)
    again = C.compress_all(new, images)
    assert [b["strings"] for b in old] == [b["strings"] for b in again]
    dec_new = C.decompress_all(new, old)      # stored old bitstreams, new decoder
    dec_base = C.decompress_all(base, old)
    with torch.no_grad():
        fwd_new = [new(x)["x_hat"] for x in images]
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(dec_new, fwd_new))
    assert any(not torch.equal(a, b) for a, b in zip(dec_new, dec_base))  # the decoder did change


# --- the base-training command and the committed checkpoint -----------------------------------------------------
def test_base_training_command_runs_shortened(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    import icm_train_base

    out = tmp_path / "base.pt"
    small = ["--batch", "2", "--crop", "64", "--task-crop", "64", "--N", "8", "--M", "12", "--quiet"]
    digest = icm_train_base.main(["--rd-steps", "2", "--steps", "2", *small, "--out", str(out)])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["sha256"] == digest == lib.storage.hashes.sha256sum(out)
    state = lib.storage.checkpoint.load(out)
    codec = C.ICMCodec.from_state_dict(state["state_dict"])
    assert state["config"]["rd_steps"] == 2 and state["config"]["steps"] == 2
    first, last = state["history"][0], state["history"][-1]
    assert first["step"] == 0 and first["stage"] == 1 and "feature" not in first        # rate-distortion
    assert last["step"] == 3 and last["stage"] == 2 and np.isfinite(last["feature"])    # the machine
    bits = codec.compress(photo_like(0, 64))
    assert codec.decompress(bits["strings"], bits["shape"])["x_hat"].shape == (1, 3, 64, 64)
    # continuing from a committed codec (stage 2 only), as colab does from CompressAI's weights
    out2 = tmp_path / "base2.pt"
    digest2 = icm_train_base.main(["--steps", "2", "--lr", "1e-3", *small, "--init-from", str(out), "--out", str(out2)])
    state2 = lib.storage.checkpoint.load(out2)
    assert state2["init_from"] == {"file": "base.pt", "sha256": digest} and digest2 != digest
    assert state2["config"]["rd_steps"] == 0   # an initialisation replaces stage 1 unless --rd-steps says otherwise
    assert state2["config"]["lr"] == 1e-3 and all(r["stage"] == 2 for r in state2["history"])
    assert any(not torch.equal(state["state_dict"][k], v) for k, v in state2["state_dict"].items()
               if k.startswith("g_s"))  # it trained on from the first run's weights


def test_base_lr_schedule():
    from lib.icm.base import BaseConfig, lr_factor

    cfg = BaseConfig(rd_steps=100, rd_lr=5e-4, lr=3e-5)
    assert lr_factor(cfg, 0) == 1.0 and lr_factor(cfg, 79) == 1.0 and lr_factor(cfg, 80) == 0.2
    assert lr_factor(cfg, 100) * cfg.rd_lr == pytest.approx(3e-5)


# --- the object scenes (task set) -------------------------------------------------------------------------------
def test_composite_pastes_the_stamp_where_its_alpha_is():
    from lib.icm import data

    bg = torch.zeros(3, 100, 120)
    bg[2] = 1.0                                   # a blue background
    stamp = torch.zeros(4, 40, 20)
    stamp[0] = 1.0                                # a red stamp, opaque only in a band: half of it
    stamp[3, 10:30] = 1.0
    for seed in range(5):
        out = data.composite(bg, stamp, 64, torch.Generator().manual_seed(seed))
        assert out.shape == (3, 64, 64) and 0 <= out.min() and out.max() <= 1
        red = (out[0] > 0.5).float().mean()
        # longer side f·64 with f in [0.6, 0.95]: the band covers 0.25·f² of the scene
        assert 0.25 * 0.6 ** 2 * 0.8 < red < 0.25 * 0.95 ** 2 * 1.2
        assert torch.allclose(out[0] + out[2], torch.ones(64, 64), atol=1e-5)  # blue exactly where red is not
        assert out[1].abs().max() < 1e-6
    with pytest.raises(ValueError, match="smaller than the 128-px scene"):
        data.composite(bg, stamp, 128, torch.Generator())


def test_evaluate_scores_the_task_on_the_task_images():
    from lib.icm import evaluate as E
    from lib.icm.machine import EfficientNetLite0, task_fidelity

    m, codec = EfficientNetLite0(), small_codec(3)
    images, task = [photo_like(i, 64) for i in range(2)], [photo_like(10 + i, 96) for i in range(3)]
    r = E.evaluate(codec, images, m, task_images=task, periods=(2,))
    decoded = C.decompress_all(codec, C.compress_all(codec, task))
    assert r["top1"] == task_fidelity(m, task, decoded)["top1"] and r["task_bpp"] > 0
    assert len(r["x_hat"]) == 2 and r["x_hat"][0].shape[-1] == 64          # fidelity on `images`
    own = E.evaluate(codec, images, m, periods=(2,))                        # no task set: the task on `images`
    assert own["task_bpp"] == own["bpp"]


def test_task_fidelity_batched_equals_one_image_at_a_time():
    from lib.icm.machine import EfficientNetLite0, outputs, task_distortion, task_fidelity

    m = EfficientNetLite0()
    xs = [photo_like(i, 64) for i in range(5)]
    noisy = [(x + 0.2 * torch.randn_like(x)).clamp(0, 1) for x in xs]
    with torch.no_grad():
        hits = [int(m(x)["logits"].argmax() == m(y)["logits"].argmax()) for x, y in zip(xs, noisy)]
        feats = [float(task_distortion(m(y), m(x))["feature"]) for x, y in zip(xs, noisy)]
    got = task_fidelity(m, xs, noisy)
    assert got["top1"] == pytest.approx(sum(hits) / 5) and got["feature"] == pytest.approx(np.mean(feats), rel=1e-4)
    assert task_fidelity(m, xs, xs) == {"top1": 1.0, "feature": 0.0}
    mixed = xs[:2] + [photo_like(9, 96)]           # different sizes: one at a time
    assert outputs(m, mixed)["logits"].shape == (3, 1000)


def test_fixed_scenes_are_reproducible_and_task_set_keeps_confident_scenes():
    from lib.icm import data
    from lib.icm import experiment as X

    photos = [(f"p{i}", torch.rand(3, 80, 80)) for i in range(3)]
    stamps = [(f"s{i}", torch.rand(4, 30, 30)) for i in range(4)]
    a, b = data.fixed_scenes(photos, stamps, 64, 2), data.fixed_scenes(photos, stamps, 64, 2)
    assert len(a) == 8 and all(torch.equal(x, y) for (_, x), (_, y) in zip(a, b))

    class Bright(torch.nn.Module):  # two classes; the brighter the scene, the more confident
        def forward(self, x):
            m = x.mean((1, 2, 3))
            return {"logits": torch.stack([m * 40 - 20, torch.zeros_like(m)], -1), "features": [x]}
    conf = {n: float(torch.softmax(Bright()(x)["logits"], -1).max()) for n, x in a}
    thr = sorted(conf.values())[4]
    kept = X.task_images(photos, stamps, Bright(), size=64, per_stamp=2, threshold=thr)
    assert [n for n, _ in kept] == [n for n, c in conf.items() if c >= thr] and 0 < len(kept) < 8
    with pytest.raises(ValueError, match="lower threshold"):
        X.task_images(photos, stamps, Bright(), size=64, per_stamp=2, threshold=1.01)


def test_committed_checkpoint_matches_its_recorded_sha256():
    ckpt = ROOT / "lib" / "icm" / "checkpoints" / "icm_base_tiny.pt"
    record = json.loads((ROOT / "lib" / "icm" / "checkpoints" / "icm_base_tiny.json").read_text())
    assert ckpt.stat().st_size < 5 * 2 ** 20
    assert lib.storage.hashes.sha256sum(ckpt) == record["sha256"]
    assert "scripts/icm_train_base.py" in record["command"]


def old_layout(state_dict: dict) -> dict:
    """A current CompressAI state dict in the key layout of the files CompressAI published: the exact inverse of
    ``compressai.zoo.pretrained.load_pretrained`` (``_biases.N`` -> ``_biasN``) followed by
    ``compressai.models.utils.remap_old_keys`` (``_biasN`` -> ``biases.N``, which ``load_state_dict`` applies)."""
    out = {}
    for k, v in state_dict.items():
        for new, old in (("biases", "_biases"), ("matrices", "_matrices"), ("factors", "_factors")):
            prefix = f"entropy_bottleneck.{new}."
            if k.startswith(prefix):
                k = f"entropy_bottleneck.{old}.{k[len(prefix):]}"
        out[k] = v
    return out


@pytest.fixture(scope="module")
def zoo_q1():
    """CompressAI's own bmshj2018-factorized at quality 1 (random weights, entropy coder updated), as the zoo builds it."""
    from compressai.zoo import bmshj2018_factorized

    torch.manual_seed(0)
    model = bmshj2018_factorized(quality=1, pretrained=False).eval()
    model.update(force=True)
    return model


def test_old_layout_is_what_compressai_converts():
    from compressai.zoo.pretrained import load_pretrained

    sd = {"entropy_bottleneck._biases.0": 0, "entropy_bottleneck._matrices.4": 1, "entropy_bottleneck._factors.3": 2,
          "g_a.0.weight": 3}
    assert load_pretrained(sd) == {"entropy_bottleneck._bias0": 0, "entropy_bottleneck._matrix4": 1,
                                   "entropy_bottleneck._factor3": 2, "g_a.0.weight": 3}
    assert old_layout({"entropy_bottleneck.biases.0": 0, "entropy_bottleneck.matrices.4": 1,
                       "entropy_bottleneck.factors.3": 2, "g_a.0.weight": 3}) == sd


@pytest.mark.parametrize("layout", ["old", "new", "wrapped"])
def test_from_compressai_checkpoint_reads_zoo_files(tmp_path, zoo_q1, layout):
    from compressai.models import FactorizedPrior

    ref = zoo_q1.state_dict()
    sd = {"old": old_layout(ref), "new": ref, "wrapped": {"state_dict": old_layout(ref)}}[layout]
    if layout == "old":
        assert "entropy_bottleneck._biases.0" in sd and "entropy_bottleneck.biases.0" not in sd
    path = tmp_path / "bmshj2018-factorized-prior-1-00000000.pth.tar"
    torch.save(sd, path)
    model = C.from_compressai_checkpoint(path, quality=1)
    assert isinstance(model, FactorizedPrior)
    got = model.state_dict()
    assert set(got) == set(ref)
    for k, v in ref.items():
        assert torch.equal(got[k], v), k
    x = photo_like(0, 64)
    assert zoo_q1.compress(x)["strings"] == model.compress(x)["strings"]   # the same entropy coder tables
    # the same file as the chapter's codec (what pretrained_init returns)
    codec = C.ICMCodec.from_state_dict(model.state_dict())
    assert C.state_hashes(codec) == C.state_hashes(model)


def test_from_compressai_checkpoint_says_what_is_wrong(tmp_path, zoo_q1):
    path = tmp_path / "q1.pth.tar"
    torch.save(old_layout(zoo_q1.state_dict()), path)
    with pytest.raises(ValueError, match="N=128, M=192.*quality 6 has N=192, M=320"):
        C.from_compressai_checkpoint(path, quality=6)
    with pytest.raises(ValueError, match="quality must be one of"):
        C.from_compressai_checkpoint(path, quality=9)
    torch.save({"weights": 1}, path)
    with pytest.raises(ValueError, match="not a CompressAI bmshj2018-factorized state dict"):
        C.from_compressai_checkpoint(path, quality=1)


def test_pretrained_init_goes_through_fetch_with_the_name_s_hash_prefix(tmp_path, monkeypatch, zoo_q1):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    tmp = tmp_path / "tmp.pth.tar"
    torch.save(old_layout(zoo_q1.state_dict()), tmp)    # a zoo file: flat, the old key layout
    digest = lib.storage.hashes.sha256sum(tmp)
    src = tmp.rename(tmp_path / f"bmshj2018-factorized-prior-2-{digest[:8]}.pth.tar")
    codec = C.pretrained_init(2, url=src.as_uri())  # checked against the prefix in the file name
    assert isinstance(codec, C.ICMCodec) and C.state_hashes(codec) == C.state_hashes(zoo_q1)
    assert lib.storage.download.downloads()[-1]["verified_by"] == "hash_prefix"
    wrong = src.rename(tmp_path / "bmshj2018-factorized-prior-2-00000000.pth.tar")
    with pytest.raises(lib.storage.errors.ChecksumError):
        C.pretrained_init(2, url=wrong.as_uri())
    with pytest.raises(lib.storage.errors.ChecksumError):
        C.pretrained_init(2, url=wrong.as_uri(), sha256="0" * 64)
    assert C.compressai_url(2).endswith("/bmshj2018-factorized-prior-2-87279a02.pth.tar")
    with pytest.raises(ValueError, match="quality"):
        C.compressai_url(9)


def test_load_base_refuses_a_checkpoint_whose_sha256_differs(tmp_path):
    from lib.icm import experiment as X

    src = ROOT / "lib" / "icm" / "checkpoints"
    (tmp_path / "icm_base_tiny.pt").write_bytes((src / "icm_base_tiny.pt").read_bytes())
    record = json.loads((src / "icm_base_tiny.json").read_text())
    codec, rec = X.load_base(tmp_path / "icm_base_tiny.pt")  # no record beside it: loads, nothing to check
    assert isinstance(codec, C.ICMCodec) and "command" in rec
    record["sha256"] = "0" * 64
    (tmp_path / "icm_base_tiny.json").write_text(json.dumps(record))
    with pytest.raises(lib.storage.errors.ChecksumError, match="retrain"):
        X.load_base(tmp_path / "icm_base_tiny.pt")


def test_machine_is_frozen_and_differentiable():
    from lib.icm.machine import EfficientNetLite0, task_distortion

    m = EfficientNetLite0()
    m.train()
    assert not m.training and not any(p.requires_grad for p in m.parameters())
    x = photo_like(0, 64)
    x_hat = (x + 0.1 * torch.randn_like(x)).clamp(0, 1).requires_grad_(True)
    out, ref = m(x_hat), m(x)
    assert out["logits"].shape == (1, 1000) and len(out["features"]) == 4
    d = task_distortion(out, ref)
    (d["feature"] + d["kl"]).backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0
    assert float(task_distortion(ref, ref)["feature"]) == 0.0


# --- colab / paper data: downloads checked against pinned sha256 (a loopback server stands in for the hosts) ------
def test_kodak_and_coco_downloads_record_their_sha256_at_first_use(tmp_path, monkeypatch):
    from PIL import Image

    from lib.icm import data
    from tests.helpers.serve import serve

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    site = tmp_path / "site"
    site.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 25):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(site / f"kodim{i:02d}.png")
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(site / "000000000139.jpg")
    with pytest.raises(ValueError, match="coco_ids"):
        coco.coco_val([])                            # no ids given: say so, download nothing
    with serve(site) as url:
        kodak_imgs = kodak.kodak(url=url + "/kodim{:02d}.png")
        assert len(kodak_imgs) == 24 and kodak_imgs[0][0] == "kodim01"
        assert kodak_imgs[0][1].shape == (1, 3, 32, 48)   # cropped to the codec's stride (16)
        assert lib.storage.download.downloads()[-1]["verified_by"] == "first_use"
        assert lib.storage.download.downloads()[-1]["loaded_with"] == "PIL"
        coco_imgs = coco.coco_val([139], url=url + "/{:012d}.jpg")
        assert coco_imgs[0][1].shape == (1, 3, 224, 224) and 0 <= coco_imgs[0][1].min() and coco_imgs[0][1].max() <= 1
        (tmp_path / "cache" / "downloads" / "000000000139.jpg").write_bytes(b"damaged")
        # re-checked against its first-use record
        with pytest.raises(lib.storage.errors.ChecksumError, match="delete it"):
            coco.coco_val([139], url=url + "/{:012d}.jpg")
        assert [n for n, _ in kodak.kodak((3, 5), url=url + "/kodim{:02d}.png")] == ["kodim03", "kodim05"]


# --- the chapter's configurations (lib.icm.config) -----------------------------------------------------------------
def _observe(cfg, monkeypatch, tmp_path) -> dict:
    """Everything the chapter's code receives from ``cfg``: the memo keys of its finetunings and of its base codec's
    training, and the arguments that reach the evaluation sets, the base codec and the machine (spies stand in for
    downloads and training)."""
    from lib.icm import base as B
    from lib.icm import experiment as X
    from lib.icm import machine as Mm

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    seen = {"ft": [lib.storage.cache.key("icm-ft", run=run, milestones=ms) for run, ms in X.finetune_grid(cfg).values()]}

    def spy(name, out=None):
        def record(*args, **kwargs):
            seen.setdefault(name, []).append((args, kwargs))
            return out(*args) if callable(out) else out
        return record
    monkeypatch.setattr(X, "eval_images", spy("eval_images", []))
    monkeypatch.setattr(X, "task_images", spy("task_images", []))
    monkeypatch.setattr(X, "confident", spy("confident", []))
    monkeypatch.setattr(coco, "coco_val", spy("coco_val", []))
    monkeypatch.setattr(coco, "coco_annotations", spy("coco_annotations"))
    monkeypatch.setattr(kodak, "kodak", spy("kodak", []))
    monkeypatch.setattr(coco, "coco_train", spy("coco_train", []))
    monkeypatch.setattr(X, "load_base", spy("load_base", (None, {})))
    monkeypatch.setattr(X.C, "pretrained_init", spy("pretrained_init"))
    monkeypatch.setattr(B, "train_base", spy("train_base", (torch.nn.Identity(), [])))
    monkeypatch.setattr(Mm, "MaskRCNN", spy("MaskRCNN"))
    monkeypatch.setattr(Mm, "EfficientNetLite0", spy("EfficientNetLite0"))

    class Machine(torch.nn.Module):
        ground_truth = None
    X.eval_sets(cfg, [], [], Machine())
    X.base_codec(cfg, [], [], Machine())
    Mm.build(cfg)
    return {k: repr(v) for k, v in seen.items()}


def _changed(value):
    """Another valid value of a configuration field."""
    if isinstance(value, bool) or value is None:
        raise TypeError(value)
    if isinstance(value, int):
        return value + 1 if value != 4 else 3          # CompressAI's qualities stop at 4
    if isinstance(value, float):
        return value * 2 if value else 0.25
    if isinstance(value, str):
        return value + "?copy=2"
    if isinstance(value, tuple):
        return value[:-1]
    raise TypeError(value)


@pytest.mark.parametrize("scale", ["tiny", "colab"])
def test_every_config_field_reaches_the_code_and_none_is_ignored(scale, monkeypatch, tmp_path):
    """Change any one field of a configuration and what the chapter's code receives changes (the finetunings'
    memo keys, the base codec's, or the arguments of the evaluation sets, the base and the machine); set a field its
    kind does not use and the configuration is refused."""
    import dataclasses

    from lib.icm import config

    cfg = config.CONFIGS[scale]
    before = _observe(cfg, monkeypatch, tmp_path)
    kinds = set(config._KINDS)                          # the kind fields choose the records: tested below
    used = {c for p in kinds for c in config._KINDS[p][getattr(cfg, p)][1].values()}
    unused = {c for p in kinds for _, m in config._KINDS[p].values() for c in m.values()} - used
    for f in dataclasses.fields(cfg):
        if f.name in {"scale", "rehearsal"} | kinds:
            continue
        value = getattr(cfg, f.name)
        if f.name in unused:
            assert value is None, f"{scale}: {f.name} is set but its kind does not use it"
            with pytest.raises(ValueError, match="does not use"):
                dataclasses.replace(cfg, **{f.name: 3})
            continue
        other = dataclasses.replace(cfg, **{f.name: 64 if value is None else _changed(value)})
        assert _observe(other, monkeypatch, tmp_path) != before, f"{scale}: {f.name} reaches nothing"
    for part in kinds:   # another kind with this configuration's fields: refused, with what to set
        other_kind = next(k for k in config._KINDS[part] if k != getattr(cfg, part))
        with pytest.raises(ValueError, match=part):
            dataclasses.replace(cfg, **{part: other_kind})


def test_the_chapters_runs_are_named_by_their_settings():
    """The runs the chapter shows come from the configuration: names say their settings, and each run has its own
    memo key."""
    from lib.icm import config

    for cfg in config.CONFIGS.values():
        runs = cfg.runs()
        for run in runs.all():
            s = run.settings
            assert f"{s.k}×{s.patch}" in run.name or not s.adversarial, run.name
            assert all(0 < m < s.steps for m in run.milestones or ()), run
            assert (s.steps, s.batch, s.crop, s.pool, s.ndf) == (cfg.ft_steps, cfg.ft_batch, cfg.ft_crop, cfg.ft_pool,
                                                                 cfg.ft_ndf)
        assert not runs.control.settings.adversarial and runs.patchgan.settings.adversarial
        assert runs.li.settings.lr_g < runs.patchgan.settings.lr_g and runs.li.settings.patch == cfg.li_patch
        assert [f"{r.settings.k}×{r.settings.patch}" for r in runs.ablation] == [f"{k}×{s}" for k, s in cfg.ablation]
        keys = {lib.storage.cache.key("icm-ft", run=r.settings, milestones=r.milestones) for r in runs.all()}
        assert len(keys) == len(runs.all()) == 3 + len(cfg.ablation)


def test_rehearsal_keeps_every_code_path_of_colab():
    from lib.icm import config

    colab, r = config.CONFIGS["colab"], config.CONFIGS["colab"].rehearsed()
    assert r.rehearsal and r.scale == "colab" and (r.base, r.eval_sets) == (colab.base, colab.eval_sets)
    assert r.ft_steps >= 3 and r.ft_crop >= 128             # milestones at steps/3, 2·steps/3; 128-px patches fit
    assert r.ft_pool >= r.ft_batch and r.kodak_ids and r.coco_ids and r.base_steps >= 1
    assert set(r.coco_ids) <= set(colab.coco_ids) and set(r.kodak_ids) <= set(colab.kodak_ids)
    assert (r.machine, r.coco_annotations_url, r.coco_train_url) == (colab.machine, colab.coco_annotations_url,
                                                                   colab.coco_train_url)
    assert r.li_patch <= r.ft_crop and colab.li_patch <= colab.ft_crop and r.coco_train_images >= r.base_batch


def test_chapter_1_at_paper_scale_is_the_recipe():
    """At ``paper`` the chapter gets the recipe's configuration (:mod:`lib.icm.recipe`), not a smaller one."""
    from lib import scale
    from lib.icm import config

    scale.set_scale("paper")
    try:
        cfg = scale.pick(config.CONFIGS, chapter="1")
    finally:
        scale.set_scale(None)
    assert isinstance(cfg, config.ICMPaperConfig) and cfg.scale == "paper" and cfg.at_paper_scale


def test_eval_sets_and_base_dispatch_on_the_config(monkeypatch):
    """Kodak + COCO by the ids the configuration names (downloads replaced), the held-out sets otherwise."""
    import dataclasses

    from lib.icm import config
    from lib.icm import experiment as X

    asked = {}

    def fake_kodak(ids, *, url, **_):
        asked["kodak"] = (tuple(ids), url)
        return [(f"kodim{i:02d}", photo_like(i, 64)) for i in ids]

    def fake_coco(ids, *, size, url, **_):
        asked["coco"] = (tuple(ids), size, url)
        return [(f"{i:012d}", photo_like(i, size)) for i in ids]

    monkeypatch.setattr(kodak, "kodak", fake_kodak)
    monkeypatch.setattr(coco, "coco_val", fake_coco)
    cfg = dataclasses.replace(config.CONFIGS["colab"].rehearsed(), task_size=32)
    monkeypatch.setattr(X, "top_probability", lambda images, machine: torch.tensor([0.9, 0.1, 0.8, 0.2][:len(images)]))
    fid, task = X.eval_sets(dataclasses.replace(cfg, confidence=0.5), None, None, machine=None)
    assert asked["kodak"] == (cfg.kodak_ids, cfg.kodak_url) and asked["coco"] == (cfg.coco_ids, 32, cfg.coco_url)
    assert [n for n, _ in fid] == [f"kodim{i:02d}" for i in cfg.kodak_ids]
    assert [n for n, _ in task] == [f"{cfg.coco_ids[0]:012d}", f"{cfg.coco_ids[2]:012d}"]
    assert "3 Kodak images" in X.describe_eval_sets(cfg, fid, task, ([], []), ([], []))
    with pytest.raises(ValueError, match="eval_sets='imagenet' is not one of"):
        dataclasses.replace(cfg, eval_sets="imagenet")
    with pytest.raises(ValueError, match="base='jpeg' is not one of"):
        dataclasses.replace(cfg, base="jpeg")


# --- colab: COCO annotations, Mask R-CNN's scores, bad input ----------------------------------------------------
def _coco_site(tmp_path, ids, annotated=None):
    """A folder with stand-in COCO val2017 JPEGs for ``ids`` and an annotations zip for ``annotated`` (default:
    the same ids), made by the rehearsal mirror's makers (COCO's schema)."""
    import importlib

    sys.path.insert(0, str(ROOT / "colab" / "rehearsal"))
    icm_maker = importlib.import_module("makers.icm")
    import io
    import zipfile

    site = tmp_path / "site"
    site.mkdir(parents=True, exist_ok=True)
    for i in ids:
        (site / f"{i:012d}.jpg").write_bytes(icm_maker.coco_jpeg(f"http://images.cocodataset.org/val2017/{i:012d}.jpg"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("annotations/instances_val2017.json",
                   json.dumps(icm_maker.instances(ids if annotated is None else annotated)))
    (site / "annotations_trainval2017.zip").write_bytes(buf.getvalue())
    return site


def test_coco_annotations_are_cut_with_the_images_and_score_perfect_detections_1(tmp_path, monkeypatch):
    from pycocotools import mask as mask_utils

    from lib.icm import data
    from tests.helpers.serve import serve

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    site = _coco_site(tmp_path, [139, 632])   # 139: 640x427 (cut to 640x416), 632: 640x480
    with serve(site) as url:
        images = coco.coco_val([139, 632], size=None, url=url + "/{:012d}.jpg")
        assert [tuple(x.shape[-2:]) for _, x in images] == [(416, 640), (480, 640)]
        gt = coco.coco_annotations(images, url=url + "/annotations_trainval2017.zip")
        assert lib.storage.download.downloads()[-1]["loaded_with"] == "zip"
    assert len(gt) == 2 and "000000000139" in gt and "000000000285" not in gt
    anns = gt.coco.loadAnns(gt.coco.getAnnIds(imgIds=[139]))
    crowd = [a for a in anns if a["iscrowd"]][0]
    assert mask_utils.decode(crowd["segmentation"]).shape == (416, 640)
    assert crowd["area"] == (416 - (427 - 30)) * 200          # the crowd region lost the rows below 416
    # the ground truth itself, as detections: AP 1 for masks and boxes
    dets = []
    for name in ["000000000139", "000000000632"]:
        objs = [a for a in gt.coco.loadAnns(gt.coco.getAnnIds(imgIds=[int(name)])) if not a["iscrowd"]]
        masks = torch.stack([torch.from_numpy(mask_utils.decode(a["segmentation"])).float() for a in objs])[:, None]
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                              for a in objs])
        dets.append({"boxes": boxes, "labels": torch.tensor([a["category_id"] for a in objs]),
                     "scores": torch.ones(len(objs)), "masks": masks})
    perfect = gt.mean_ap(["000000000139", "000000000632"], dets)
    assert perfect["map_segm"] == pytest.approx(1.0) and perfect["map_bbox"] == pytest.approx(1.0)
    shifted = [{**d, "masks": torch.roll(d["masks"], 60, -1), "boxes": d["boxes"] + torch.tensor([60., 0, 60, 0])}
               for d in dets]
    assert gt.mean_ap(["000000000139", "000000000632"], shifted)["map_segm"] < 0.9
    none = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "scores": torch.zeros(0),
             "masks": torch.zeros(0, 1, 416, 640)}] * 2
    assert gt.mean_ap(["000000000139", "000000000632"], none) == {"map_segm": 0.0, "map_bbox": 0.0}


def test_coco_annotations_that_do_not_match_the_images_are_refused(tmp_path, monkeypatch):
    from lib.icm import data
    from tests.helpers.serve import serve

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    site = _coco_site(tmp_path, [139, 285], annotated=[632, 724])  # the annotations of other images
    with serve(site) as url:
        images = coco.coco_val([139, 285], size=None, url=url + "/{:012d}.jpg")
        with pytest.raises(ValueError, match=r"describes no image with id \[139, 285\].*coco_ids"):
            coco.coco_annotations(images, url=url + "/annotations_trainval2017.zip")
    (tmp_path / "b").mkdir()
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "b" / "cache"))
    wrong = [("000000000139", torch.rand(1, 3, 480, 640))]   # 139 is 640x427 in the file
    with serve(_coco_site(tmp_path / "b", [139])) as url:
        with pytest.raises(ValueError, match=r"says image 139 is 640x427 pixels.*do not match the images"):
            coco.coco_annotations(wrong, url=url + "/annotations_trainval2017.zip")


def test_a_missing_kodak_file_and_images_too_small_for_the_stride_say_what_to_do(tmp_path, monkeypatch):
    from PIL import Image

    from lib.icm import data
    from tests.helpers.serve import serve

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    site = tmp_path / "site"
    site.mkdir()
    for i in (1, 3):  # kodim02 is missing
        Image.fromarray(np.full((64, 96, 3), 128, np.uint8)).save(site / f"kodim{i:02d}.png")
    Image.fromarray(np.full((12, 40, 3), 128, np.uint8)).save(site / "000000000139.jpg")
    with serve(site) as url:
        with pytest.raises(lib.storage.errors.DownloadError, match=r"kodak_ids: kodim02\.png could not be fetched.*"
                                                              r"HTTP 404.*leave its id out of kodak_ids"):
            kodak.kodak((1, 2, 3), url=url + "/kodim{:02d}.png")
        with pytest.raises(ValueError, match=r"000000000139\.jpg is 40x12 pixels, smaller than the codec's stride "
                                             r"\(16 px\).*leave its id out of coco_ids"):
            coco.coco_val([139], size=None, url=url + "/{:012d}.jpg")
    with pytest.raises(ValueError, match=r"no image \[25\]: fix kodak_ids"):
        kodak.kodak((24, 25))
    with pytest.raises(ValueError, match=r"images\[0\] is 8x8 pixels: the codec \(its total stride\) needs height "
                                         r"and width that are positive multiples of 16"):
        C.compress_all(small_codec(), [torch.rand(1, 3, 8, 8)])


def test_mask_rcnn_machine_loads_a_checked_state_dict_and_scores_against_annotations(tmp_path, monkeypatch):
    """The colab machine on a state dict of the real architecture (random weights) under its real file name,
    fetched through lib.storage.download with the hash prefix: features for the loss, detections, scores, a config."""
    import dataclasses
    import hashlib
    import shutil

    from lib.icm import config, data, machine as Mm
    from tests.helpers.serve import serve

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    sd = Mm.maskrcnn_coco().state_dict()   # the trained-weights model's keys (FrozenBatchNorm2d)
    tmp = tmp_path / "m.pth"
    torch.save(sd, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    site = _coco_site(tmp_path, [139])
    shutil.copy(tmp, site / f"maskrcnn_resnet50_fpn_coco-{digest[:8]}.pth")
    with serve(site) as url:
        monkeypatch.setattr(Mm, "maskrcnn_url", lambda: f"{url}/maskrcnn_resnet50_fpn_coco-{digest[:8]}.pth")
        cfg = dataclasses.replace(config.CONFIGS["colab"].rehearsed(), machine_size=96)
        m = Mm.build(cfg)
        assert lib.storage.download.downloads()[-1]["verified_by"] == "hash_prefix"
        assert not any(p.requires_grad for p in m.parameters())
        images = coco.coco_val([139], size=None, url=url + "/{:012d}.jpg")
        m.ground_truth = coco.coco_annotations(images, url=url + "/annotations_trainval2017.zip")
    x = images[0][1][..., :64, :64].clone().requires_grad_(True)
    d = Mm.task_distortion(m(x), m(x.detach() * 0.9))
    assert float(d["kl"]) == 0.0 and float(d["feature"]) > 0
    d["feature"].backward()
    assert x.grad.abs().sum() > 0
    s = Mm.task_scores(m, [x for _, x in images], [x for _, x in images], ["000000000139"])
    assert set(s) == {"map_segm", "map_bbox", "pseudo_map_segm", "feature"} and s["feature"] == 0.0
    assert 0.0 <= s["map_segm"] <= 1.0
    assert np.isnan(Mm.task_scores(m, [x for _, x in images], [x for _, x in images], ["kodim01"])["map_segm"])
    assert Mm.task_key(m) == "map_segm" and m.confidence([x for _, x in images]).shape == (1,)


def test_rehearsal_miniatures_of_the_colab_files_have_the_real_formats():
    """The mirror's Mask R-CNN file has torchvision's keys and shapes (and loads into the real model), its COCO zips
    hold what pycocotools and lib.icm.data read, and every URL the colab path downloads has a maker."""
    import importlib
    import io
    import re
    import zipfile

    from pycocotools.coco import COCO

    sys.path.insert(0, str(ROOT / "colab" / "rehearsal"))
    makers = importlib.import_module("makers")
    icm_maker = importlib.import_module("makers.icm")
    from lib.icm import machine as Mm

    url = Mm.maskrcnn_url()
    assert url.endswith("/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth") and url in icm_maker.urls()
    for u in icm_maker.urls():
        assert any(re.fullmatch(p, u) for p, _ in makers.MAKERS), u
    sd = torch.load(io.BytesIO(icm_maker.maskrcnn_state_dict(url)), weights_only=True)
    real = Mm.maskrcnn_coco().state_dict()   # torchvision's model for trained weights (FrozenBatchNorm2d)
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: tuple(v.shape) for k, v in real.items()}
    with zipfile.ZipFile(io.BytesIO(icm_maker.coco_annotations_zip(""))) as z:
        data = json.loads(z.read("annotations/instances_val2017.json"))
    assert {"images", "annotations", "categories"} <= set(data) and len(data["categories"]) == 80
    assert {a["iscrowd"] for a in data["annotations"]} == {0, 1}
    assert set(data["annotations"][0]) >= {"id", "image_id", "category_id", "segmentation", "bbox", "area", "iscrowd"}
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    assert coco.annToMask(coco.loadAnns(coco.getAnnIds(imgIds=[139]))[0]).shape == (427, 640)
    with zipfile.ZipFile(io.BytesIO(icm_maker.coco_val_zip(""))) as z:
        assert "val2017/000000000001.jpg" in z.namelist() and "val2017/000000000139.jpg" in z.namelist()


def test_the_papers_numbers_are_read_not_copied_into_the_chapter():
    """Every number of the poster's Table 1 lives in lib/icm/paper_numbers.py; no code cell of the chapter or of the
    plots module writes one out again (a copy would not follow a correction)."""
    import jupytext

    from lib.icm import paper_numbers as PN

    nb = jupytext.read(ROOT / "book" / "01_icm.md")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    code += (ROOT / "lib" / "icm" / "plots.py").read_text()
    rows = PN.TABLE_1.values()   # as published, and PSNR as the glance rounds it
    numbers = ({f"{v:.3f}" for r in rows for v in (r.map, r.psnr, r.ssim, r.vgg)} | {f"{r.psnr:.2f}" for r in rows}
               | {f"{abs(r.map_change):.2f}" for r in rows if r.map_change})
    assert numbers and not [n for n in sorted(numbers) if re.search(rf"(?<![\d.]){re.escape(n)}(?!\d)", code)]
    assert PN.main_row() is PN.TABLE_1[PN.MAIN] and PN.TABLE_1["base"].map_change == 0
