"""Chapter 3's files: OpenAI's CLIP as a TorchScript archive, timm's ImageNet ViT-B/32 as safetensors, the official
LSeg demo checkpoint as a Lightning ``.ckpt`` behind Google Drive's confirmation page, and the VOC2012 tar.

- ``ViT-B-32.pt``: a traced open_clip CLIP (QuickGELU) saved with ``torch.jit.save`` under the archive name
  ``ViT-B-32``, fp16 weights and the ``input_resolution`` / ``context_length`` / ``vocab_size`` buffers as in
  OpenAI's file; the real vocabulary (49,408), context (77) and embedding width (512), one narrow layer per tower.
- ``model.safetensors``: timm ``vit_base_patch32_384`` at its real shapes, random weights.
- ``demo_e200.ckpt``: every key and shape of the official module tree (``tests/data/lseg_official_state_dict.json``,
  arch 0) in fp16, all tensors views of one shared random storage (``torch.save`` writes it once: ~50 MB, and
  little memory to make), inside a Lightning-style dict (``state_dict``, ``epoch``, ``global_step``,
  ``hyper_parameters`` as a ``pytorch_lightning`` ``AttributeDict``).
- ``VOCtrainval_11-May-2012.tar``: ``VOCdevkit/VOC2012/{JPEGImages, SegmentationClass (palette PNG, 255 borders),
  ImageSets/Segmentation/{train,val}.txt}`` with a few images holding the fold's seen and held-out classes.
"""

from __future__ import annotations

import io
import json
import math
import sys
import tarfile
import tempfile
import types
from pathlib import Path

import numpy as np

from .common import image_bytes, seeded, smooth_image

ROOT = Path(__file__).resolve().parents[3]


def openai_clip(url: str) -> bytes:
    import torch
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    m = CLIP(512, vision_cfg=CLIPVisionCfg(layers=1, width=64, patch_size=32, image_size=224, head_width=64),
             text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1), quick_gelu=True)
    for name, value in (("input_resolution", 224), ("context_length", 77), ("vocab_size", 49408)):
        m.__dict__.pop(name, None)  # open_clip keeps two of them as plain ints; OpenAI's file has tensors
        m.register_buffer(name, torch.tensor(value))
    m.eval()
    text = torch.zeros(1, 77, dtype=torch.long)
    traced = torch.jit.trace_module(m, {"forward": (torch.zeros(1, 3, 224, 224), text), "encode_text": (text,)},
                                    check_trace=False)
    traced.half()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ViT-B-32.pt"  # the archive's folder name is the file's stem, as in OpenAI's file
        torch.jit.save(traced, str(path))
        return path.read_bytes()


def timm_vit(url: str) -> bytes:
    import timm
    import torch
    from safetensors.torch import save

    torch.manual_seed(0)
    model = timm.create_model("vit_base_patch32_384", pretrained=False)
    return save({k: v.contiguous() for k, v in model.state_dict().items()})


def _lightning_attribute_dict() -> type:
    """A dict subclass spelled ``pytorch_lightning.utilities.parsing.AttributeDict`` (importable while pickling)."""
    names = ["pytorch_lightning", "pytorch_lightning.utilities", "pytorch_lightning.utilities.parsing"]
    for n in names:
        sys.modules.setdefault(n, types.ModuleType(n))
    parsing = sys.modules[names[-1]]
    if not hasattr(parsing, "AttributeDict"):
        parsing.AttributeDict = type("AttributeDict", (dict,), {"__module__": names[-1]})
    return parsing.AttributeDict


def official_checkpoint(url: str) -> bytes:
    import torch

    shapes = json.loads((ROOT / "tests" / "data" / "lseg_official_state_dict.json").read_text())["vitl16_arch0"]
    largest = max(math.prod(s) for s in shapes.values())
    g = torch.Generator().manual_seed(0)
    pool = (torch.randn(largest, generator=g) * 0.02).half()
    sd = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(0)
        elif key.endswith((".running_var", "ln_final.weight")) or ".bn" in key and key.endswith(".weight"):
            sd[key] = torch.ones(shape, dtype=torch.float16)
        else:
            sd[key] = pool[:math.prod(shape)].view(shape)
    hp = _lightning_attribute_dict()(backbone="clip_vitl16_384", num_features=256, arch_option=0, block_depth=0,
                                     activation="lrelu", base_lr=0.004)
    buf = io.BytesIO()
    torch.save({"epoch": 199, "global_step": 0, "pytorch-lightning_version": "1.3.5", "state_dict": sd,
                "hyper_parameters": hp}, buf)
    return buf.getvalue()


def voc_tar(url: str) -> bytes:
    """VOC2012's layout with 8 train and 8 val images; each holds one seen class and one held-out class of fold 0,
    drawn as filled shapes with VOC's 255 border."""
    from PIL import Image, ImageDraw

    rng = seeded(url)
    buf = io.BytesIO()
    lists = {"train": [], "val": []}
    root = "VOCdevkit/VOC2012"

    def add(tf, name, data):
        info = tarfile.TarInfo(f"{root}/{name}")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))

    with tarfile.open(fileobj=buf, mode="w") as tf:
        for split, n in (("train", 8), ("val", 8)):
            for k in range(n):
                iid = f"2012_{split}_{k:04d}"
                h, w = int(rng.integers(90, 140)), int(rng.integers(110, 170))
                img = Image.fromarray(smooth_image(f"{url}#{iid}", w, h))
                mask = Image.new("P", (w, h), 0)
                mask.putpalette([int(v) for v in rng.integers(0, 255, 768)])
                d_img, d_mask = ImageDraw.Draw(img), ImageDraw.Draw(mask)
                for cls in (int(rng.integers(6, 21)), int(rng.integers(1, 6))):  # a seen and a held-out class
                    x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
                    box = [x0, y0, x0 + int(rng.integers(20, w // 2)), y0 + int(rng.integers(20, h // 2))]
                    d_img.ellipse(box, fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
                    d_mask.ellipse(box, fill=cls, outline=255, width=2)
                add(tf, f"JPEGImages/{iid}.jpg", image_bytes(np.asarray(img), "JPEG"))
                png = io.BytesIO()
                mask.save(png, format="PNG")
                add(tf, f"SegmentationClass/{iid}.png", png.getvalue())
                lists[split].append(iid)
        for split, ids in lists.items():
            add(tf, f"ImageSets/Segmentation/{split}.txt", ("\n".join(ids) + "\n").encode())
    return buf.getvalue()


MAKERS = [
    (r"https://openaipublic\.azureedge\.net/clip/models/[0-9a-f]{64}/ViT-B-32\.pt", openai_clip),
    (r"https://huggingface\.co/timm/vit_base_patch32_384\.[a-z0-9_]+/resolve/main/model\.safetensors", timm_vit),
    (r"https://drive\.google\.com/uc\?export=download&id=[\w-]+", official_checkpoint),
    (r"http://host\.robots\.ox\.ac\.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012\.tar", voc_tar),
]


# For each MAKERS regex: the file, what vouches that the miniature has the real file's format (a public loader that
# reads it, or the cited public code or maintainer's words), and how the real download is checked.
FORMATS: dict[str, dict] = {
    r"https://openaipublic\.azureedge\.net/clip/models/[0-9a-f]{64}/ViT-B-32\.pt": {
        "file": "ViT-B-32.pt (OpenAI CLIP, TorchScript)",
        "vouched_by": "our own reader only (not yet evidence): a traced open_clip CLIP read by lib.lseg.weights",
        "verified": "full sha256 (the URL's folder name)"},
    r"https://huggingface\.co/timm/vit_base_patch32_384\.[a-z0-9_]+/resolve/main/model\.safetensors": {
        "file": "model.safetensors (timm vit_base_patch32_384)",
        "vouched_by": "our own reader only (not yet evidence): timm's state dict saved with safetensors; timm.create_model(pretrained=True) not yet "
                      "exercised on it",
        "verified": "first-use sha256 record"},
    r"https://drive\.google\.com/uc\?export=download&id=[\w-]+": {
        "file": "demo_e200.ckpt (LSeg demo, Google Drive)",
        "vouched_by": "our own reader only (not yet evidence): a Lightning-style dict with the official module's keys and shapes",
        "verified": "first-use sha256 record (no published checksum)"},
    r"http://host\.robots\.ox\.ac\.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012\.tar": {
        "file": "VOCtrainval_11-May-2012.tar",
        "vouched_by": "our own reader only (not yet evidence): VOCdevkit/VOC2012 layout as lib.lseg.pascal reads it",
        "verified": "first-use sha256 record"},
}


def urls() -> list[str]:
    """Every URL chapter 3's colab configurations download (read from the course's own constants)."""
    from lib.storage import download
    from lib.lseg import chapter, official, pascal, weights

    out = []
    for cfg in chapter.CONFIGS.values():
        if cfg.fold_runs:
            out += [weights.OPENAI_VIT_B32_URL, weights.TIMM_VIT_B32_URL, pascal.VOC_URL]
        if cfg.official_demo:
            out.append(download.DRIVE_URL.format(official.OFFICIAL_CHECKPOINTS[cfg.official_demo]["drive_id"]))
    return list(dict.fromkeys(out))
