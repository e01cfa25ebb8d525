"""Chapter 1's downloads, read the way their publishers read them.

Each model file the colab path downloads is the rehearsal mirror's miniature (``colab/rehearsal/makers/icm.py``),
loaded twice: by the publishing library's own download-and-load path, with the file placed where that path looks for
it (torch.hub's cache, ``$TORCH_HOME/hub/checkpoints/<file name of the URL>``, see ``torch.hub.get_dir`` and
``load_state_dict_from_url``), and by the course's loader. The two must give the same tensors. COCO's annotations
are read by pycocotools' ``COCO(path)`` and by the course's evaluation; Kodak has no loader, only its page's sizes,
including its portrait images, which must go through the codec path.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch

from lib.icm import codec as C
from lib.icm import coco, config, kodak
from lib.icm import machine as Mm
from lib.storage import download

ROOT = Path(__file__).resolve().parent.parent
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def makers():
    sys.path.insert(0, str(ROOT / "colab" / "rehearsal"))
    try:
        return importlib.import_module("makers.icm")
    finally:
        sys.path.remove(str(ROOT / "colab" / "rehearsal"))


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty torch.hub cache (``$TORCH_HOME/hub/checkpoints``) and an empty course cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "course-cache"))
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    assert folder == tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


def place(blob: bytes, url: str, hub: Path, tmp_path: Path) -> tuple[str, str]:
    """``blob`` under the URL's file name in the torch.hub cache and in a source folder; returns the source's
    ``file://`` URL and the blob's sha256."""
    name = Path(urlparse(url).path).name
    (hub / name).write_bytes(blob)
    src = tmp_path / "source" / name
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(blob)
    return src.as_uri(), hashlib.sha256(blob).hexdigest()


def assert_same_tensors(a: dict, b: dict):
    assert list(a) == list(b)
    for k in a:
        assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype, k
        assert torch.equal(a[k], b[k]), k


# --- Mask R-CNN: torchvision's weights enum -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def maskrcnn_blob(makers) -> bytes:
    return makers.maskrcnn_state_dict(Mm.maskrcnn_url())


def test_mask_rcnn_is_torchvision_s_model_on_the_same_state_dict(tmp_path, monkeypatch, makers, hub_cache,
                                                                 maskrcnn_blob):
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights, maskrcnn_resnet50_fpn
    from torchvision.ops import FrozenBatchNorm2d

    url = Mm.maskrcnn_url()
    source, digest = place(maskrcnn_blob, url, hub_cache, tmp_path)
    monkeypatch.setattr(Mm, "maskrcnn_url", lambda: source)
    # small: every detection kept (even a random model's), 200 proposals, 8 detections
    sizes = dict(min_size=128, max_size=192, box_score_thresh=0.0, rpn_pre_nms_top_n_test=200,
                 rpn_post_nms_top_n_test=200, box_detections_per_img=8)
    theirs = maskrcnn_resnet50_fpn(weights=MaskRCNN_ResNet50_FPN_Weights.COCO_V1, progress=False, **sizes).eval()
    ours = Mm.MaskRCNN(sha256=digest, **sizes)
    assert download.downloads()[-1]["verified_by"] == "sha256"

    # the same file: names, shapes, values
    assert_same_tensors(ours.model.state_dict(), theirs.state_dict())
    # the same model: module types, FrozenBatchNorm2d with COCO_V1's eps 0, the layers the builder freezes
    mods, ref = dict(ours.model.named_modules()), dict(theirs.named_modules())
    assert {k: type(m) for k, m in mods.items()} == {k: type(m) for k, m in ref.items()}
    frozen = [k for k, m in ref.items() if isinstance(m, FrozenBatchNorm2d)]
    assert len(frozen) == 53 and all(mods[k].eps == ref[k].eps == 0.0 for k in frozen)
    fresh = Mm.maskrcnn_coco(**sizes)
    assert ([k for k, p in fresh.named_parameters() if p.requires_grad]
            == [k for k, p in theirs.named_parameters() if p.requires_grad])
    assert not any(p.requires_grad for p in ours.parameters())
    assert ours.model.transform.min_size == theirs.transform.min_size
    assert ours.model.transform.max_size == theirs.transform.max_size

    # the same outputs: detections and the FPN features the course trains against, on a portrait picture
    x = torch.from_numpy(makers.smooth_image("mask-rcnn test", 128, 176).copy()).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        want = theirs([x])[0]
        t = theirs.transform
        mean, std = torch.tensor(t.image_mean).view(3, 1, 1), torch.tensor(t.image_std).view(3, 1, 1)
        want_feats = theirs.backbone(((x - mean) / std)[None])
        got_feats = ours(x[None])["features"]
    got = ours.detect([x[None]])[0]
    assert len(want["scores"]) == 8 and set(got) == set(want) == {"boxes", "labels", "scores", "masks"}
    for k in want:
        assert torch.equal(got[k], want[k]), k
    for f, k in zip(got_feats, ("0", "1", "2", "3")):
        assert torch.equal(f, want_feats[k]), k

    # the build the course had before (BatchNorm2d, eps 1e-5) is another model on the same file
    old = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, **sizes)
    old.load_state_dict(theirs.state_dict())
    old.eval()
    with torch.no_grad():
        old_feats = old.backbone(((x - mean) / std)[None])
    diff = max(float(((old_feats[k] - want_feats[k]).abs().max() / want_feats[k].abs().max())) for k in want_feats)
    assert diff > 1e-4


def test_the_mask_rcnn_miniature_is_what_the_trained_weights_model_holds(maskrcnn_blob):
    """No ``num_batches_tracked`` (FrozenBatchNorm2d has none) and BatchNorm statistics as uneven as a trained
    network's, so the eps a model runs with changes its outputs."""
    sd = torch.load(io.BytesIO(maskrcnn_blob), weights_only=True)
    assert list(sd) == list(Mm.maskrcnn_coco().state_dict())
    assert not any(k.endswith("num_batches_tracked") for k in sd)
    var = torch.cat([v for k, v in sd.items() if k.endswith("running_var")])
    assert float(var.min()) < 0.1 and float(var.max()) > 1.0


# --- CompressAI's zoo ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("quality", sorted(C.COMPRESSAI_LMBDA))
def test_compressai_zoo_and_the_course_read_the_same_tensors(tmp_path, makers, hub_cache, quality):
    from compressai.zoo import bmshj2018_factorized

    url = C.compressai_url(quality)
    source, digest = place(makers.compressai_checkpoint(url), url, hub_cache, tmp_path)
    theirs = bmshj2018_factorized(quality=quality, pretrained=True, progress=False).eval()
    ours = C.pretrained_init(quality, url=source, sha256=digest).eval()
    assert download.downloads()[-1]["verified_by"] == "sha256"
    want, got = theirs.state_dict(), ours.state_dict()
    assert sorted(got) == sorted(want)
    assert_same_tensors({k: got[k] for k in want}, want)
    # and the same entropy coder: identical bitstreams, identical decodes
    x = torch.from_numpy(makers.smooth_image("zoo test", 64, 48).copy()).permute(2, 0, 1).float()[None] / 255
    enc_t, enc_o = theirs.compress(x), ours.compress(x)
    assert enc_t["strings"] == enc_o["strings"]
    assert torch.equal(theirs.decompress(**enc_t)["x_hat"], ours.decompress(**enc_o)["x_hat"])


# --- COCO annotations: pycocotools ---------------------------------------------------------------------------------
def test_coco_annotations_read_by_pycocotools_and_by_the_course(tmp_path, monkeypatch, makers):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "course-cache"))
    site = tmp_path / "site"
    site.mkdir()
    zpath = site / "annotations_trainval2017.zip"
    zpath.write_bytes(makers.coco_annotations_zip(coco.COCO_ANNOTATIONS_URL))
    with zipfile.ZipFile(zpath) as z:
        z.extract(coco.COCO_ANNOTATIONS_MEMBER, tmp_path)
    publisher = COCO(str(tmp_path / coco.COCO_ANNOTATIONS_MEMBER))

    ids = list(config.CONFIGS["colab"].rehearsed().coco_ids)
    for i in ids:
        (site / f"{i:012d}.jpg").write_bytes(makers.coco_jpeg(coco.COCO_VAL_URL.format(i)))
    images = coco.coco_val(ids, size=None, url=site.as_uri() + "/{:012d}.jpg")
    ours = coco.coco_annotations(images, url=zpath.as_uri())
    assert ours.coco.dataset["categories"] == publisher.loadCats(publisher.getCatIds())

    heights = set()
    detections = []
    for name, x in images:
        i = int(name)
        h, w = x.shape[-2:]
        info = publisher.imgs[i]
        heights.add(info["height"])
        assert (info["height"] // 16 * 16, info["width"] // 16 * 16) == (h, w)
        kept, boxes, masks, labels = 0, [], [], []
        for a in publisher.loadAnns(publisher.getAnnIds(imgIds=[i], iscrowd=None)):
            m = publisher.annToMask(a)[:h, :w]
            if not m.any():
                assert a["id"] not in ours.coco.anns
                continue
            kept += 1
            b = ours.coco.anns[a["id"]]
            assert (b["image_id"], b["category_id"], b["iscrowd"]) == (i, a["category_id"], a["iscrowd"])
            assert np.array_equal(mask_utils.decode(b["segmentation"]), m)
            bx, by, bw, bh = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m))).tolist()
            assert b["bbox"] == [bx, by, bw, bh] and b["area"] == float(m.sum())
            if not a["iscrowd"]:
                boxes.append([bx, by, bx + bw, by + bh]); masks.append(m); labels.append(a["category_id"])
        assert kept == len(ours.coco.getAnnIds(imgIds=[i], iscrowd=None)) and boxes
        detections.append({"boxes": torch.tensor(boxes), "labels": torch.tensor(labels),
                           "scores": torch.ones(len(boxes)),
                           "masks": torch.from_numpy(np.stack(masks)).float()[:, None]})
    assert heights == {427, 480}   # a height the stride cuts and one it keeps
    # the publisher's own masks, as detections, score a perfect mAP in the course's evaluation
    assert ours.mean_ap([n for n, _ in images], detections) == pytest.approx({"map_segm": 1.0, "map_bbox": 1.0})


# --- Kodak: the page's sizes, portraits included --------------------------------------------------------------------
def test_kodak_miniatures_have_the_page_s_sizes_and_the_rehearsal_has_a_portrait(makers):
    from PIL import Image

    sizes = {i: Image.open(io.BytesIO(makers.kodak_png(kodak.KODAK_URL.format(i)))).size for i in range(1, 25)}
    assert sizes[1] == (768, 512) and sizes[4] == (512, 768)
    assert set(sizes.values()) == {(768, 512), (512, 768)}
    assert any(sizes[i] == (512, 768) for i in config.CONFIGS["colab"].rehearsed().kodak_ids)


def test_a_portrait_kodak_image_goes_through_the_codec_path(tmp_path, monkeypatch, makers):
    """Downloaded, cut to the stride, coded with real bitstreams, decoded at its own shape, and measured beside a
    landscape image (fidelity, artifacts, a machine run one image at a time where shapes differ, a zoomed crop)."""
    from torch import nn

    from lib.icm import evaluate, experiment

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "course-cache"))
    site = tmp_path / "kodak"
    site.mkdir()
    for i in (1, 4):
        (site / f"kodim{i:02d}.png").write_bytes(makers.kodak_png(kodak.KODAK_URL.format(i)))
    images = kodak.kodak((1, 4), url=site.as_uri() + "/kodim{:02d}.png")
    assert [tuple(x.shape) for _, x in images] == [(1, 3, 512, 768), (1, 3, 768, 512)]

    torch.manual_seed(0)
    codec = C.ICMCodec(N=8, M=12).eval()
    codec.update(force=True)
    xs = [x for _, x in images]
    bits = C.compress_all(codec, xs)
    assert [b["shape"] for b in bits] == [(32, 48), (48, 32)]
    decoded = C.decompress_all(codec, bits)
    assert [tuple(d.shape) for d in decoded] == [tuple(x.shape) for x in xs]

    class Probe(nn.Module):   # a classifier that answers whatever the image's shape
        def forward(self, x):
            f = nn.functional.avg_pool2d(x, 16)
            return {"logits": f.mean((2, 3)), "features": [f]}

    r = evaluate.evaluate(codec, xs, Probe(), bits)
    assert r["bpp"] > 0 and np.isfinite(r["psnr"]) and r["ms_ssim"] is not None and len(r["x_hat"]) == 2
    assert experiment.zoom(decoded[1], (700, 450, 40)).shape == (120, 120, 3)
