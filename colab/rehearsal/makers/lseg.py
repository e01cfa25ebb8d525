"""Chapter 3's files: CLIP ViT-B/32 from open_clip's Hugging Face repository (OpenAI's TorchScript archive as the
second source), timm's ImageNet ViT-B/32 as safetensors, the official LSeg demo checkpoint as a Lightning ``.ckpt``
behind Google Drive's confirmation page, and the VOC2012 tar.

- ``open_clip_model.safetensors`` / ``open_clip_pytorch_model.bin``: open_clip's ``ViT-B-32-quickgelu`` state dict at
  its real shapes, fp32 (the hub's files are 605 MB: 151 M fp32 numbers), random weights.
- ``ViT-B-32.pt``: a traced open_clip CLIP (QuickGELU) saved with ``torch.jit.save`` under the archive name
  ``ViT-B-32``, fp16 weights and the ``input_resolution`` / ``context_length`` / ``vocab_size`` buffers as in
  OpenAI's file; the real vocabulary (49,408), context (77) and embedding width (512), one narrow layer per tower.
- ``model.safetensors``: timm ``vit_base_patch32_384`` at its real shapes, random weights.
- ``demo_e200.ckpt``: a pytorch-lightning 1.3.5 checkpoint of lang-seg's training (:func:`official_checkpoint`).
- ``VOCtrainval_11-May-2012.tar``: ``VOCdevkit/VOC2012/{JPEGImages, SegmentationClass (palette PNG, 255 borders),
  ImageSets/Segmentation/{train,val}.txt}`` with a few images holding the fold's seen and held-out classes.

:data:`FORMATS` says, per file, what vouches for the miniature's format and how the real download is checked.
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


def _distinct_tensors(shapes: dict, norms=()) -> dict:
    """A tensor per key at its shape, fp32: each a different window of one random pool (cheap to make, and no two
    tensors alike, so that a key read into the wrong place shows), with 1 for the weights of the normalisation
    layers named by ``norms`` (their biases 0)."""
    import hashlib

    import torch

    g = torch.Generator().manual_seed(0)
    pool = torch.randn(max(math.prod(s) for s in shapes.values()) + (1 << 20), generator=g) * 0.02
    sd = {}
    for key, shape in shapes.items():
        if any(n in key for n in norms):
            sd[key] = torch.ones(shape) if key.endswith("weight") else torch.zeros(shape)
        else:
            offset = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little") % (1 << 20)
            sd[key] = pool[offset:offset + math.prod(shape)].view(shape).clone()
    return sd


def _clip_state_dict() -> dict:
    """Every tensor of open_clip's ``ViT-B-32-quickgelu`` at its real shape, fp32 as on the hub, random; the logit
    scale at CLIP's initial log(1/0.07)."""
    import open_clip
    import torch

    shapes = {k: v.shape for k, v in open_clip.create_model("ViT-B-32-quickgelu", device="meta").state_dict().items()}
    sd = _distinct_tensors(shapes, norms=(".ln_", "ln_final."))
    sd["logit_scale"] = torch.tensor(math.log(1 / 0.07))
    return sd


def clip_safetensors(url: str) -> bytes:
    from safetensors.torch import save

    return save(_clip_state_dict())


def clip_bin(url: str) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(_clip_state_dict(), buf)
    return buf.getvalue()


def openai_torchscript(url: str) -> bytes:
    """OpenAI's layout at a narrow width: a traced open_clip CLIP (QuickGELU) saved with ``torch.jit.save`` under the
    archive name ``ViT-B-32``, fp16, with the ``input_resolution`` / ``context_length`` / ``vocab_size`` buffers."""
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

    with torch.device("meta"):
        model = timm.create_model("vit_base_patch32_384", pretrained=False)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    return save(_distinct_tensors(shapes, norms=("norm",)))


def _importable_class(module: str, name: str, base=object) -> type:
    """A class spelled ``module.name``, registered in ``sys.modules`` so that pickle can name it (nothing of
    pytorch_lightning is installed here)."""
    parts = module.split(".")
    for n in (".".join(parts[:k]) for k in range(1, len(parts) + 1)):
        sys.modules.setdefault(n, types.ModuleType(n))
    mod = sys.modules[module]
    if not hasattr(mod, name):
        setattr(mod, name, type(name, (base,), {"__module__": module, "__qualname__": name}))
    return getattr(mod, name)


def official_checkpoint(url: str) -> bytes:
    """``demo_e200.ckpt`` as lang-seg's training saved it: pytorch-lightning 1.3.5 (what its README installs; 1.4
    writes the same keys), ``CheckpointConnector.dump_checkpoint`` (``pytorch_lightning/trainer/connectors/
    checkpoint_connector.py``): ``epoch``, ``global_step``, ``pytorch-lightning_version``, ``state_dict``,
    ``callbacks`` (``{type(callback): state}``: the class itself is the key, ``trainer/callback_hook.py``; lang-seg's
    two ``ModelCheckpoint`` callbacks share one key, so the last one's state remains, ``utils.py``
    ``make_checkpoint_callbacks``), ``optimizer_states`` (lang-seg's SGD, two parameter groups, the decoder at 10x
    the rate: ``modules/lsegmentation_module.py`` ``configure_optimizers``), ``lr_schedulers`` (its ``LambdaLR``'s
    ``state_dict()``: a lambda is stored as ``None``). No ``hyper_parameters``: Lightning writes that key only when
    ``model.hparams`` is non-empty, and lang-seg's module never calls ``save_hyperparameters`` (its demo passes every
    argument to ``load_from_checkpoint``). The tensors: every key and shape of the official module tree
    (``tests/data/lseg_official_state_dict.json``, arch 0), the CLIP tower in fp16 (``clip.load`` on CUDA), the rest
    fp32, all views of one random storage per dtype (``torch.save`` writes each once: small, and little memory)."""
    import torch

    shapes = json.loads((ROOT / "tests" / "data" / "lseg_official_state_dict.json").read_text())["vitl16_arch0"]
    g = torch.Generator().manual_seed(0)
    clip = [math.prod(s) for k, s in shapes.items() if k.startswith("net.clip_pretrained.")]
    pool32 = torch.randn(max(math.prod(s) for k, s in shapes.items() if not k.startswith("net.clip_pretrained.")),
                         generator=g) * 0.02
    pools = {torch.float32: pool32, torch.float16: (torch.randn(max(clip), generator=g) * 0.02).half()}
    sd, trainable = {}, []
    for key, shape in shapes.items():
        dtype = torch.float16 if key.startswith("net.clip_pretrained.") else torch.float32
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(0)
        elif key.endswith((".running_var", "ln_final.weight")) or ".bn" in key and key.endswith(".weight"):
            sd[key] = torch.ones(shape, dtype=dtype)
        else:
            sd[key] = pools[dtype][:math.prod(shape)].view(shape)
        if key.startswith(("net.pretrained.", "net.scratch.")) and not key.endswith(
                ("running_mean", "running_var", "num_batches_tracked")):
            trainable.append(key)
    groups = [[k for k in trainable if k.startswith("net.pretrained.")],
              [k for k in trainable if k.startswith("net.scratch.")]]
    base_lr, epochs, steps = 0.004 / 16 * 8, 200, 200 * 2527
    ids, param_groups, state = 0, [], {}
    for n, keys in enumerate(groups):
        lr = base_lr * (10 if n else 1)
        param_groups.append({"lr": lr * (1 - 199 / epochs) ** 0.9, "momentum": 0.9, "dampening": 0,
                             "weight_decay": 1e-4, "nesterov": False, "initial_lr": lr,
                             "params": list(range(ids, ids + len(keys)))})
        for k in keys:
            if not k.startswith("net.pretrained.model.head."):  # the unused ImageNet head never gets a gradient
                state[ids] = {"momentum_buffer": pool32[:math.prod(shapes[k])].view(shapes[k])}
            ids += 1
    where = "checkpoints/lseg_ade20k_l16/version_0/checkpoints/"
    checkpoint_cls = _importable_class("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")
    ckpt = {
        "epoch": epochs, "global_step": steps, "pytorch-lightning_version": "1.3.5", "state_dict": sd,
        "callbacks": {checkpoint_cls: {
            "monitor": "val_acc_epoch", "best_model_score": torch.tensor(0.7912),
            "best_model_path": where + "result-epoch=199-val_acc_epoch=0.79.ckpt",
            "current_score": torch.tensor(0.7912), "dirpath": where}},
        "optimizer_states": [{"state": state, "param_groups": param_groups}],
        "lr_schedulers": [{"base_lrs": [g["initial_lr"] for g in param_groups], "last_epoch": epochs,
                           "_step_count": epochs + 1, "verbose": False, "_get_lr_called_within_step": False,
                           "_last_lr": [g["lr"] for g in param_groups], "lr_lambdas": [None, None]}],
    }
    buf = io.BytesIO()
    torch.save(ckpt, buf)
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


_HUB_CLIP = r"https://huggingface\.co/timm/vit_base_patch32_clip_224\.openai/resolve/[0-9a-f]{40}/"
_HUB_TIMM = r"https://huggingface\.co/timm/vit_base_patch32_384\.[a-z0-9_]+/resolve/main/model\.safetensors"
_OPENAI = r"https://openaipublic\.azureedge\.net/clip/models/[0-9a-f]{64}/ViT-B-32\.pt"
_DRIVE = r"https://drive\.google\.com/uc\?export=download&id=[\w-]+"
_VOC = (r"(http://host\.robots\.ox\.ac\.uk|https://thor\.robots\.ox\.ac\.uk|https://pjreddie\.com/media/files)"
        r"(/pascal/VOC/voc2012)?/VOCtrainval_11-May-2012\.tar")
MAKERS = [
    (_HUB_CLIP + r"open_clip_model\.safetensors", clip_safetensors),
    (_HUB_CLIP + r"open_clip_pytorch_model\.bin", clip_bin),
    (_OPENAI, openai_torchscript),
    (_HUB_TIMM, timm_vit),
    (_DRIVE, official_checkpoint),
    (_VOC, voc_tar),
]

# For each MAKERS regex: the file, what vouches that the miniature has the real file's format (a public loader that
# reads it, or the cited public code), and how the real download is checked.
FORMATS: dict[str, dict] = {
    _HUB_CLIP + r"open_clip_model\.safetensors": {
        "file": "CLIP ViT-B/32 (open_clip_model.safetensors)",
        "vouched_by": "open_clip.create_model_and_transforms('ViT-B-32-quickgelu', pretrained='openai') through "
                      "huggingface_hub with HF_ENDPOINT at the mirror (tests/test_formats_lseg.py): same tensors "
                      "and text embeddings as lib.lseg.weights.openai_clip",
        "verified": "full sha256 of the hub's LFS metadata at the pinned commit (lib.lseg.weights.CLIP_HUB_FILES)"},
    _HUB_CLIP + r"open_clip_pytorch_model\.bin": {
        "file": "CLIP ViT-B/32 (open_clip_pytorch_model.bin, open_clip's second file)",
        "vouched_by": "open_clip's load_checkpoint (torch.load weights_only=True) in tests/test_formats_lseg.py, "
                      "the same tensors as the safetensors file",
        "verified": "full sha256 of the hub's LFS metadata at the pinned commit (lib.lseg.weights.CLIP_HUB_FILES)"},
    _OPENAI: {
        "file": "CLIP ViT-B/32, OpenAI's TorchScript ViT-B-32.pt (second source)",
        "vouched_by": "torch.jit.load (PyTorch's own TorchScript reader) in tests/test_formats_lseg.py: the same "
                      "tensors as lib.lseg.weights.torchscript_state_dict, which never runs the archive",
        "verified": "full sha256 = the URL's folder name (OpenAI's convention)"},
    _HUB_TIMM: {
        "file": "timm ViT-B/32 384 ImageNet (model.safetensors)",
        "vouched_by": "timm.create_model('vit_base_patch32_384.augreg_in21k_ft_in1k', pretrained=True) through "
                      "huggingface_hub with HF_ENDPOINT at the mirror (tests/test_formats_lseg.py): same tensors as "
                      "lib.lseg.weights.timm_vit",
        "verified": "sha256 recorded at first use (no published checksum)"},
    _DRIVE: {
        "file": "LSeg demo checkpoint demo_e200.ckpt (Google Drive)",
        "vouched_by": "no public loader without running the pickle; the layout follows pytorch-lightning 1.3.5/1.4 "
                      "trainer/connectors/checkpoint_connector.py dump_checkpoint and trainer/callback_hook.py "
                      "(Lightning-AI/pytorch-lightning), with lang-seg's callbacks and optimizer "
                      "(isl-org/lang-seg utils.py, modules/lsegmentation_module.py); keys and shapes of the official "
                      "module tree (tests/data/lseg_official_state_dict.json)",
        "verified": "sha256 recorded at first use (no published checksum); read with weights_only=True and "
                    "lib.storage.checkpoint.LIGHTNING_ALLOW"},
    _VOC: {
        "file": "PASCAL VOC 2012 trainval tar",
        "vouched_by": "the devkit layout that torchvision.datasets.VOCSegmentation reads (torchvision/datasets/voc.py:"
                      " VOCdevkit/VOC2012, ImageSets/Segmentation, SegmentationClass PNGs, JPEGImages)",
        "verified": "md5 6cd6e144f989b92b3379bac3b3de84fd as torchvision/datasets/voc.py publishes it, and a sha256 "
                    "recorded at first use; three sources tried in order (lib.lseg.pascal.VOC_MIRRORS)"},
}


def urls() -> list[str]:
    """Every URL chapter 3's colab configurations download first (read from the course's own constants); the further
    sources of each file are made on demand (tests)."""
    from lib.storage import download
    from lib.lseg import config, official, pascal, weights

    out = []
    for cfg in config.CONFIGS.values():
        if cfg.pascal is not None and cfg.pascal.runs:
            out += [weights.CLIP_HUB_URLS[0], weights.TIMM_VIT_B32_URL, pascal.VOC_URL]
        if cfg.demo is not None:
            out.append(download.DRIVE_URL.format(official.OFFICIAL_CHECKPOINTS[cfg.demo.checkpoint]["drive_id"]))
    return list(dict.fromkeys(out))
