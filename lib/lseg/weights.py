"""Pretrained weights for the ``colab`` scale: OpenAI's CLIP ViT-B/32 (the frozen text encoder) and an ImageNet
ViT-B/32 for the image side, each downloaded with :func:`lib.storage.download.fetch` and read without running a pickle.

OpenAI publishes CLIP as a **TorchScript archive** (``ViT-B-32.pt``; the URL's folder is the file's sha256).
open_clip's ``load_openai_model`` reads it with ``torch.jit.load`` and then builds an ordinary open_clip model from
the archive's ``state_dict()`` (``build_model_from_openai_state_dict``: the architecture is read from the tensor
shapes). We keep the second half and replace the first: a TorchScript archive is a zip whose ``data.pkl`` pickles
the module tree as plain objects (``__torch__.<module>.<Class>`` + a dict of attributes) and whose tensors sit in
``data/<n>``, exactly like a ``torch.save`` file. :func:`torchscript_state_dict` copies those entries into a
``torch.save``-layout zip and reads it with ``torch.load(weights_only=True)``, allowing only empty stand-in classes
named like the archive's ``__torch__.*`` classes (nothing in the file runs, and its TorchScript code is never
compiled), then collects every tensor under its attribute path (``transformer.resblocks.0.attn.in_proj_weight``).

The ImageNet ViT comes from timm's own Hugging Face repository as ``model.safetensors`` (no published checksum: its
sha256 is recorded at first use, :mod:`lib.storage.download`).
"""

from __future__ import annotations

import pickletools
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from lib.storage import cache, checkpoint, download

OPENAI_VIT_B32_URL = ("https://openaipublic.azureedge.net/clip/models/"
                      "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt")
# timm's ImageNet-21k → 1k ViT-B/32 at 384 (the `clip_vitb32_384` backbone of the official code uses
# timm `vit_base_patch32_384`); timm downloads it from this Hugging Face repository
TIMM_VIT_B32_URL = ("https://huggingface.co/timm/vit_base_patch32_384.augreg_in21k_ft_in1k/resolve/main/"
                    "model.safetensors")
# tensors of the OpenAI archive that are not part of the CLIP state dict (TorchScript keeps plain tensor attributes)
_NOT_STATE = ("attn_mask",)


class WeightsError(ValueError):
    """A weights file does not have the expected layout."""


def _stand_in(module: str, qualname: str) -> type:
    """An empty class spelled ``module.qualname`` (torch's weights_only unpickler matches classes by that name)."""
    return type(qualname, (), {"__module__": module, "__qualname__": qualname})


def torchscript_state_dict(path) -> dict[str, torch.Tensor]:
    """Every tensor of a TorchScript archive's module tree, keyed by attribute path, read with
    ``torch.load(weights_only=True)`` (see the module docstring)."""
    path = Path(path)
    try:
        zin = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise WeightsError(f"{path} is not a TorchScript archive (not a zip file): delete it and run again") from None
    with zin:
        pkl = [n for n in zin.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1 or not any(n.endswith("/constants.pkl") for n in zin.namelist()):
            raise WeightsError(f"{path} is not a TorchScript archive (no <name>/data.pkl and constants.pkl)")
        root = pkl[0].split("/")[0]
        classes = []
        for op, arg, _ in pickletools.genops(zin.read(pkl[0])):
            if op.name == "GLOBAL" and arg.startswith("__torch__"):
                classes.append(_stand_in(*arg.split(" ", 1)))
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            plain = Path(tmp) / "weights.pt"
            with zipfile.ZipFile(plain, "w", zipfile.ZIP_STORED) as zout:  # torch.save's layout: no code/, constants
                for n in zin.namelist():
                    rel = n[len(root) + 1:]
                    if rel in ("data.pkl", "version", "byteorder", ".data/version") or rel.startswith("data/"):
                        with zin.open(n) as src, zout.open(f"archive/{rel}", "w", force_zip64=True) as dst:
                            while block := src.read(1 << 22):
                                dst.write(block)
            tree = checkpoint.load(plain, allow=classes)
    sd: dict[str, torch.Tensor] = {}

    def walk(obj, prefix):
        for k, v in vars(obj).items():
            if isinstance(v, torch.Tensor):
                if k not in _NOT_STATE:
                    sd[prefix + k] = v
            elif type(v) in classes:
                walk(v, f"{prefix}{k}.")

    if type(tree) not in classes:
        raise WeightsError(f"{path}: the archive's root is not a module ({type(tree).__name__})")
    walk(tree, "")
    return sd


def openai_clip(url: str = OPENAI_VIT_B32_URL):
    """OpenAI's CLIP as an open_clip model (fp32, eval): downloaded once (its sha256 is the URL's folder name),
    converted once to a plain state dict in the course cache, built with open_clip's
    ``build_model_from_openai_state_dict`` (QuickGELU, as OpenAI trained it)."""
    from open_clip.model import build_model_from_openai_state_dict  # deferred: over ten seconds to import

    sha = Path(url).parent.name
    plain = cache.cache_dir("lseg") / f"openai-clip-{sha[:16]}.state_dict.pt"
    if not plain.exists():
        src = download.fetch(url, reader="torch.load(weights_only=True)", sha256=sha)
        checkpoint.save(torchscript_state_dict(src), plain)
    sd = checkpoint.load(plain)
    try:
        model = build_model_from_openai_state_dict(sd, quick_gelu=True, cast_dtype=None)
    except (KeyError, RuntimeError) as err:
        raise WeightsError(f"{plain} is not an OpenAI CLIP state dict ({str(err)[:300]}): delete it and run "
                           f"again") from None
    return model.float().eval()


def timm_vit(url: str = TIMM_VIT_B32_URL) -> dict[str, torch.Tensor]:
    """The timm ViT state dict at ``url`` (safetensors; sha256 recorded at first use)."""
    name = url.split("/")[-5] + ".safetensors" if "huggingface.co" in url else None
    return load_file(download.fetch(url, reader="safetensors", filename=name))
