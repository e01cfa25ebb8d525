"""Chapter 3's downloads read by their publishers' own loaders and by the course's: the rehearsal mirror's miniatures
must load through open_clip's and timm's Hugging Face path (``HF_ENDPOINT`` at the loopback mirror, in a separate
process so that ``huggingface_hub`` reads it at import), through PyTorch's TorchScript reader and torchvision's VOC
reader, and give the same tensors as ``lib.lseg``; the Lightning checkpoint follows the cited layout."""

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "colab" / "rehearsal"))

import mirror  # noqa: E402
from makers import lseg as makers  # noqa: E402

from lib.storage import checkpoint, download, errors  # noqa: E402
from lib.lseg import official, pascal, weights  # noqa: E402

LABELS = ["others", "dog", "dining table"]
# the publishers' own download-and-load calls, run with HF_ENDPOINT at the mirror; prints one JSON line per model:
# {name: [shape, dtype, sha256 of the bytes]} of every tensor, and CLIP's text embeddings of LABELS
ORACLE = r"""
import hashlib, json, sys
import open_clip, timm, torch

def digest(sd):
    return {k: [list(v.shape), str(v.dtype), hashlib.sha256(v.detach().contiguous().numpy().tobytes()).hexdigest()]
            for k, v in sd.items()}

model, _, _ = open_clip.create_model_and_transforms("ViT-B-32-quickgelu", pretrained="openai")
with torch.no_grad():
    emb = model.eval().encode_text(open_clip.get_tokenizer("ViT-B-32-quickgelu")(json.loads(sys.argv[1])))
print(json.dumps({"clip": digest(model.state_dict()), "clip_text": emb.tolist()}))
vit = timm.create_model("vit_base_patch32_384.augreg_in21k_ft_in1k", pretrained=True)
print(json.dumps({"timm": digest(vit.state_dict())}))
"""


def _digest(sd):
    return {k: [list(v.shape), str(v.dtype), hashlib.sha256(v.detach().contiguous().numpy().tobytes()).hexdigest()]
            for k, v in sd.items()}


@pytest.fixture(scope="module")
def hub_mirror(tmp_path_factory):
    """A built mirror holding the hub's CLIP safetensors and timm's ViT (what the colab path downloads first)."""
    folder = tmp_path_factory.mktemp("mirror")
    mirror.build(folder, [weights.CLIP_HUB_URLS[0], weights.TIMM_VIT_B32_URL])
    return folder


def test_open_clip_and_timm_read_the_hub_miniatures_as_ours_do(hub_mirror, tmp_path, monkeypatch):
    """open_clip's ``pretrained="openai"`` and timm's ``pretrained=True`` (their Hugging Face downloads) read the
    mirror's files; lib.lseg.weights gets the same tensors (names, shapes, dtypes, bytes) and the same CLIP text
    embeddings, checks CLIP against the sha256 the mirror stands in for, and logs both as huggingface_hub's."""
    with mirror.serve(hub_mirror) as (base, served):
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"),
               "HF_ENDPOINT": f"{base}/huggingface.co", "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_HUB_DISABLE_XET": "1"}
        r = subprocess.run([sys.executable, "-c", ORACLE, json.dumps(LABELS)], env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        oracle = {}
        for line in r.stdout.splitlines():
            if line.startswith("{"):
                oracle.update(json.loads(line))
        hub_requests = list(served)
        monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv("COURSE_MIRROR", base)
        ours = weights.openai_clip()
        ours_vit = weights.timm_vit()
    # open_clip asked for the safetensors file (at "main"), timm for model.safetensors, each from the hub's path
    assert "huggingface.co/timm/vit_base_patch32_clip_224.openai/open_clip_model.safetensors" in hub_requests
    assert "huggingface.co/timm/vit_base_patch32_384.augreg_in21k_ft_in1k/model.safetensors" in hub_requests
    assert _digest(ours.state_dict()) == oracle["clip"]
    assert _digest(ours_vit) == oracle["timm"]
    with torch.no_grad():
        from lib.lseg.text import CLIPText

        emb = CLIPText(model=ours)(LABELS)
    assert torch.allclose(emb, torch.tensor(oracle["clip_text"]), atol=1e-4, rtol=0)  # float sums, other threads
    logs = download.downloads()[-2:]
    assert [e["url"] for e in logs] == [weights.CLIP_HUB_URLS[0], weights.TIMM_VIT_B32_URL]
    assert [e["verified_by"] for e in logs] == ["sha256", "first_use"] and all(e["mirror"] for e in logs)
    assert {e["client"] for e in logs} == {"huggingface_hub"}


def test_clip_hub_pins_are_complete():
    """Both hub files are pinned by full sha256 and size at one commit, in open_clip's order (safetensors first)."""
    import open_clip.pretrained as pretrained

    cfg = pretrained.get_pretrained_cfg("ViT-B-32-quickgelu", "openai")
    assert cfg["hf_hub"].rstrip("/") == weights.CLIP_HUB_REPO
    names = [f for f, _, _ in weights.CLIP_HUB_FILES]
    assert names == [pretrained.HF_SAFE_WEIGHTS_NAME, pretrained.HF_WEIGHTS_NAME]
    assert all(len(sha) == 64 and int(sha, 16) >= 0 and size > 6e8 for _, sha, size in weights.CLIP_HUB_FILES)
    assert all(weights.CLIP_HUB_REVISION in u for u in weights.CLIP_HUB_URLS)


def test_clip_falls_back_to_openai_torchscript(tmp_path, monkeypatch):
    """With the hub files missing (the hub answers 404 for both), the CLIP weights come from OpenAI's TorchScript
    archive, read without torch.jit: its tensors are those torch.jit.load (PyTorch's own reader) gives, and open_clip
    builds the model from them (a narrow architecture registered like the miniature's)."""
    url = weights.OPENAI_VIT_B32_URL
    folder = tmp_path / "m"
    mirror.build(folder, [url])
    archive = folder / "files" / mirror.local_name(url)
    sd = weights.torchscript_state_dict(archive)
    ref = torch.jit.load(archive).state_dict()
    assert set(ref) - set(sd) == {"attn_mask"} and all(torch.equal(ref[k], sd[k]) for k in sd)
    with pytest.raises(weights.WeightsError, match="not a TorchScript"):
        torch.save({"a": torch.ones(1)}, tmp_path / "plain.pt")
        weights.torchscript_state_dict(tmp_path / "plain.pt")
    import open_clip

    cfg = {"embed_dim": 512, "quick_gelu": True,
           "vision_cfg": {"image_size": 224, "layers": 1, "width": 64, "patch_size": 32, "head_width": 64},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}}
    (tmp_path / "ViT-narrow-quickgelu.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "ViT-narrow-quickgelu.json")
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    with mirror.serve(folder) as (base, served):
        monkeypatch.setenv("COURSE_MIRROR", base)
        model = weights.openai_clip(arch="ViT-narrow-quickgelu")
    assert download.downloads()[-1]["url"] == url and download.downloads()[-1]["verified_by"] == "sha256"
    want = {k: v.float() for k, v in ref.items() if k not in ("attn_mask", "input_resolution", "context_length",
                                                                "vocab_size")}
    got = model.state_dict()
    assert set(want) <= set(got) and all(torch.equal(got[k], want[k]) for k in want)
    # the hub answered 404 for both of its files (nothing served from it), then the archive came
    assert served[-1] == mirror.local_name(url) and not any(s.startswith("huggingface.co") for s in served)


def test_lightning_checkpoint_layout_and_weights_only_reader(tmp_path):
    """The demo checkpoint's miniature has what pytorch-lightning 1.3.5/1.4 ``dump_checkpoint`` writes for lang-seg's
    training (callbacks keyed by the ModelCheckpoint class, SGD state, LambdaLR state, no hyper_parameters); plain
    ``weights_only=True`` refuses it (a class is pickled), the explicit allow-list reads it, and every tensor of its
    state dict fits the official module tree."""
    path = tmp_path / "demo_e200.ckpt"
    path.write_bytes(makers.official_checkpoint(download.DRIVE_URL.format("x")))
    with pytest.raises(Exception, match="ModelCheckpoint"):
        torch.load(path, weights_only=True)
    ck = checkpoint.load(path, allow=checkpoint.LIGHTNING_ALLOW)
    assert set(ck) == {"epoch", "global_step", "pytorch-lightning_version", "state_dict", "callbacks",
                       "optimizer_states", "lr_schedulers"}
    (cls, state), = ck["callbacks"].items()
    assert f"{cls.__module__}.{cls.__qualname__}" == "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"
    assert {"monitor", "best_model_score", "best_model_path", "current_score", "dirpath"} == set(state)
    opt, = ck["optimizer_states"]
    assert [len(g["params"]) for g in opt["param_groups"]] == [
        sum(1 for k in ck["state_dict"] if k.startswith(p) and not k.endswith(("running_mean", "running_var",
                                                                               "num_batches_tracked")))
        for p in ("net.pretrained.", "net.scratch.")]
    sched, = ck["lr_schedulers"]
    assert sched["lr_lambdas"] == [None, None] and len(sched["base_lrs"]) == 2
    plain = official.convert_official_checkpoint(path, tmp_path / "plain.pt")
    sd = checkpoint.load(plain)
    assert {k: list(v.shape) for k, v in sd.items()} == json.loads(
        (ROOT / "tests" / "data" / "lseg_official_state_dict.json").read_text())["vitl16_arch0"]
    model = official.from_official_state_dict(sd, arch="none", depth=0, text=False)
    assert model is not None


def test_drive_quota_page_names_the_manual_path_then_the_placed_file_is_used(tmp_path, monkeypatch):
    """Drive answering a quota page: the error says there is no other source and names where to put the file
    fetched in a browser; a file put there is then checked (first use) and read."""
    import http.server
    import threading

    url = download.DRIVE_URL.format("QUOTA_ID")
    page = (b"<!DOCTYPE html><html><title>Google Drive - Quota exceeded</title><body>Too many users have viewed or "
            b"downloaded this file recently.</body></html>")
    manifest = json.dumps({"files": {url: {"sha256": "0" * 64}}}).encode()

    class Drive(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = manifest if self.path == "/manifest.json" else page
            self.send_response(200)
            self.send_header("Content-Type", "application/json" if body is manifest else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drive)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(official.OFFICIAL_CHECKPOINTS, "quota", {"drive_id": "QUOTA_ID", "config": "tiny",
                                                                  "arch": "none", "depth": 0})
    manual = tmp_path / "cache" / "downloads" / "quota.ckpt"
    monkeypatch.setenv("COURSE_MIRROR", base)
    try:
        with pytest.raises(errors.DownloadError) as err:
            official.fetch_official("quota")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert str(manual) in str(err.value) and "no other source" in str(err.value)
    assert not manual.exists()
    monkeypatch.delenv("COURSE_MIRROR")
    torch.save({"state_dict": {"net.w": torch.arange(2.0)}, "epoch": 200}, manual)
    sd = official.fetch_official("quota")
    assert torch.equal(sd["net.w"], torch.arange(2.0)) and download.downloads()[-1]["verified_by"] == "first_use"


def test_voc_sources_and_md5_are_torchvisions_and_its_reader_reads_the_miniature(tmp_path):
    """torchvision publishes VOC 2012's md5 and its own host; both are among ours. torchvision's VOCSegmentation
    (the publisher-side reader of the devkit layout) reads the mirror's tar as lib.lseg.pascal does."""
    from torchvision.datasets import VOCSegmentation
    from torchvision.datasets.voc import DATASET_YEAR_DICT

    tv = DATASET_YEAR_DICT["2012"]
    assert pascal.VOC_MD5 == tv["md5"] and tv["url"] in (pascal.VOC_URL, *pascal.VOC_MIRRORS)
    assert all(u.endswith(tv["filename"]) for u in (pascal.VOC_URL, *pascal.VOC_MIRRORS))
    data = makers.voc_tar(pascal.VOC_URL)
    (tmp_path / "voc.tar").write_bytes(data)
    with tarfile.open(tmp_path / "voc.tar") as tf:
        tf.extractall(tmp_path / "x", filter="data")
    ds = VOCSegmentation(str(tmp_path / "x"), year="2012", image_set="val", download=False)
    ours = pascal.load_split(tmp_path / "x" / pascal.ROOT, "val", 64)
    assert len(ds) == len(ours["ids"]) > 0
    import numpy as np

    for k in range(len(ds)):
        img, mask = ds[k]
        assert torch.equal(torch.from_numpy(np.array(mask)), ours["full"][k])
        assert img.size == (mask.size[0], mask.size[1])


def test_clip_file_put_by_hand_is_checked_like_a_download(tmp_path, monkeypatch):
    """A CLIP file put in the download folder by hand is used before the hub, and checked against the hub's pinned
    sha256: a wrong file stops with a checksum error naming it (it is not silently replaced)."""
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_MIRROR", raising=False)
    monkeypatch.delenv("COURSE_DOWNLOADS", raising=False)
    placed = tmp_path / "cache" / "downloads" / weights.CLIP_HUB_FILES[0][0]
    placed.parent.mkdir(parents=True)
    placed.write_bytes(b"not the weights")
    with pytest.raises(errors.ChecksumError, match=weights.CLIP_HUB_FILES[0][1]) as err:
        weights.openai_clip()
    assert str(placed) in str(err.value)
