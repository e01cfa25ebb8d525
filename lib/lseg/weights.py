"""Pretrained weights for the ``colab`` scale: OpenAI's CLIP ViT-B/32 (the frozen text encoder) and an ImageNet
ViT-B/32 for the image side, each from its publisher's source, checked, and read without running a pickle.

**CLIP.** open_clip (3.3.0, and its main branch) loads ``pretrained="openai"`` for ViT-B-32 from the Hugging Face
repository ``timm/vit_base_patch32_clip_224.openai`` (``open_clip/pretrained.py``: the ``hf_hub`` entry of
``_VITB32``), asking for ``open_clip_model.safetensors`` first and ``open_clip_pytorch_model.bin`` second
(``download_pretrained_from_hf``). :func:`openai_clip` does the same through ``huggingface_hub.hf_hub_download`` at a
pinned commit, checks each file's full sha256 (the hub's LFS sha256, :data:`CLIP_HUB_FILES`), and builds the model
with open_clip's own ``create_model`` + ``load_checkpoint`` (QuickGELU, as OpenAI trained it). Only when the hub
cannot be reached does it fall back to OpenAI's original file, a **TorchScript archive** (``ViT-B-32.pt``, the URL's
folder is its sha256; open_clip's main branch no longer knows that URL). That archive is a zip whose ``data.pkl``
pickles the module tree as plain objects (``__torch__.<module>.<Class>`` + a dict of attributes) and whose tensors
sit in ``data/<n>``, like a ``torch.save`` file: :func:`torchscript_state_dict` copies those entries into a
``torch.save``-layout zip and reads it with ``torch.load(weights_only=True)``, allowing only empty stand-in classes
named like the archive's ``__torch__.*`` classes (nothing in the file runs, its TorchScript code is never compiled),
and collects every tensor under its attribute path (``transformer.resblocks.0.attn.in_proj_weight``).

**ImageNet ViT.** timm's ``vit_base_patch32_384.augreg_in21k_ft_in1k`` comes from timm's own Hugging Face repository
(``model.safetensors``, what ``timm.create_model(..., pretrained=True)`` downloads), also through
``hf_hub_download``; no checksum is published for it, so its sha256 is recorded at first use
(:mod:`lib.storage.download`).

Hub files are kept in ``huggingface_hub``'s cache layout inside the course's download folder; it resumes an
interrupted transfer. With ``$COURSE_MIRROR`` set, the hub client is pointed at ``{mirror}/huggingface.co``.
"""

from __future__ import annotations

import contextlib
import os
import pickletools
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from lib.storage import cache, checkpoint, download, errors

HUB = "https://huggingface.co"
# open_clip's name of CLIP ViT-B/32 with QuickGELU, as OpenAI trained it (plain "ViT-B-32" uses nn.GELU)
CLIP_ARCH = "ViT-B-32-quickgelu"
# open_clip's source for ViT-B-32 "openai" (pretrained.py, _VITB32), at the commit whose files are pinned below
CLIP_HUB_REPO = "timm/vit_base_patch32_clip_224.openai"
CLIP_HUB_REVISION = "a6f597a30f7b82c51704746581f9a4e41421e878"
# (file, sha256, bytes), in the order open_clip asks for them: the hub's LFS metadata of each file at that commit
CLIP_HUB_FILES = (
    ("open_clip_model.safetensors", "e6d1bd7789aa45192b3bf90570a789b478bae1b74ebcce7eddd908e83a2b7c31", 605_143_284),
    ("open_clip_pytorch_model.bin", "9ecdaef325b20e7283dc6a32f92aa638d100899e4f084c2462d3832eeea0b26e", 605_225_782),
)
# OpenAI's own TorchScript file: the second source (its folder name is the file's sha256)
OPENAI_VIT_B32_URL = ("https://openaipublic.azureedge.net/clip/models/"
                      "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt")
# timm's ImageNet-21k -> 1k ViT-B/32 at 384 (the `clip_vitb32_384` backbone of the official code uses timm
# `vit_base_patch32_384`); timm downloads it from this repository (timm/models/vision_transformer.py: hf_hub_id)
TIMM_HUB_REPO = "timm/vit_base_patch32_384.augreg_in21k_ft_in1k"
TIMM_HUB_FILE = "model.safetensors"
TIMM_HUB_REVISION = "main"
# tensors of the OpenAI archive that are not part of the CLIP state dict (TorchScript keeps plain tensor attributes,
# and OpenAI's model holds three int buffers that open_clip's CLIP does not have)
_NOT_STATE = ("attn_mask",)
_NOT_CLIP = ("input_resolution", "context_length", "vocab_size")


def hub_url(repo: str, revision: str, filename: str) -> str:
    """The hub's download URL of a file (what ``huggingface_hub`` asks for, and how the course logs it)."""
    return f"{HUB}/{repo}/resolve/{revision}/{filename}"


CLIP_HUB_URLS = tuple(hub_url(CLIP_HUB_REPO, CLIP_HUB_REVISION, f) for f, _, _ in CLIP_HUB_FILES)
TIMM_VIT_B32_URL = hub_url(TIMM_HUB_REPO, TIMM_HUB_REVISION, TIMM_HUB_FILE)


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


_OFFLINE_SET_HERE = False  # whether this course switched huggingface_hub to offline mode for this process


def hub_offline_for_bundled_model() -> None:
    """Switch ``huggingface_hub`` to offline mode for this process unless the learner chose (``HF_HUB_OFFLINE``), for
    a model that is bundled in a package (the tiny scale's text encoder); :func:`hub_file` still reaches the hub."""
    global _OFFLINE_SET_HERE
    if "HF_HUB_OFFLINE" not in os.environ:
        os.environ["HF_HUB_OFFLINE"] = "1"
        _OFFLINE_SET_HERE = True


@contextlib.contextmanager
def _hub_online():
    """Let ``huggingface_hub`` reach the network although this course switched it to offline mode for this process
    (:func:`hub_offline_for_bundled_model`), or, under ``$COURSE_MIRROR``, reach the mirror (the only host asked
    then); otherwise a learner's own ``HF_HUB_OFFLINE`` is left alone."""
    from huggingface_hub import constants  # deferred: it reads HF_HUB_OFFLINE once, when first imported

    forced = (_OFFLINE_SET_HERE or bool(os.environ.get("COURSE_MIRROR"))) and constants.HF_HUB_OFFLINE
    if forced:
        constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        if forced:
            constants.HF_HUB_OFFLINE = True


def hub_file(repo: str, filename: str, revision: str, *, reader: str, sha256: str | None = None) -> Path:
    """One file of a Hugging Face repository, downloaded (or found in the cache) by ``huggingface_hub`` and checked by
    :func:`lib.storage.download.checked` (``sha256`` when published, else the first-use record). Its path."""
    from huggingface_hub import hf_hub_download  # deferred: it reads HF_HUB_OFFLINE once, when first imported

    url = hub_url(repo, revision, filename)
    mirror = os.environ.get("COURSE_MIRROR", "").rstrip("/")
    folder = cache.downloads_dir() / "huggingface"
    try:
        with _hub_online():
            path = hf_hub_download(repo, filename, revision=revision, cache_dir=folder,
                                   endpoint=f"{mirror}/huggingface.co" if mirror else None)
    except Exception as err:  # noqa: BLE001 -- huggingface_hub raises many kinds; all mean "not from here"
        raise errors.DownloadError(f"could not download {url} ({type(err).__name__}: {str(err)[:300]})") from None
    return download.checked(path, url, reader=reader, sha256=sha256, client="huggingface_hub",
                            record_as=f"{repo.replace('/', '--')}--{filename}")


def build_clip(path, arch: str | None = None):
    """open_clip's CLIP ``arch`` (default :data:`CLIP_ARCH`) with the weights in ``path`` (safetensors, or a state
    dict read with ``torch.load(weights_only=True)``), loaded strictly by open_clip's ``load_checkpoint``."""
    import open_clip  # deferred: over ten seconds to import

    model = open_clip.create_model(arch or CLIP_ARCH, pretrained=None)
    try:
        open_clip.load_checkpoint(model, str(path), strict=True, weights_only=True)
    except (KeyError, RuntimeError) as err:
        raise WeightsError(f"{path} does not fit open_clip's {arch or CLIP_ARCH} ({str(err)[:300]}): delete it "
                           f"and run again") from None
    return model.float().eval()


def _openai_torchscript(url: str) -> Path:
    """OpenAI's TorchScript file, downloaded (sha256 = the URL's folder name) and converted once to a plain state
    dict (without the archive's three int buffers) in the course cache; the plain file's path."""
    sha = Path(url).parent.name
    plain = cache.cache_dir("lseg") / f"openai-clip-{sha[:16]}.state_dict.pt"
    if not plain.exists():
        src = download.fetch(url, reader="torch.load(weights_only=True)", sha256=sha)
        sd = {k: v for k, v in torchscript_state_dict(src).items() if k not in _NOT_CLIP}
        checkpoint.save(sd, plain)
    return plain


def openai_clip(url: str = OPENAI_VIT_B32_URL, arch: str | None = None):
    """OpenAI's CLIP ViT-B/32 as an open_clip model (fp32, eval), from the first source that answers:
    the hub's safetensors, the hub's ``.bin`` (both at :data:`CLIP_HUB_REVISION`, full sha256 checked), then OpenAI's
    TorchScript file at ``url``. A hub file put by hand in the download folder is used first, checked the same way.
    A file that arrives but fails its check stops here (it is not silently replaced)."""
    failed, folder = [], cache.downloads_dir()
    for (name, sha, _), hub in zip(CLIP_HUB_FILES, CLIP_HUB_URLS):
        reader = "safetensors" if name.endswith(".safetensors") else "torch.load(weights_only=True)"
        try:
            if (folder / name).exists():  # put there by hand: checked like a download
                path = download.checked(folder / name, hub, reader=reader, sha256=sha, client="by hand",
                                        record_as=name)
            else:
                path = hub_file(CLIP_HUB_REPO, name, CLIP_HUB_REVISION, reader=reader, sha256=sha)
            return build_clip(path, arch)
        except errors.DownloadError as err:
            failed.append(f"{hub}: {err}")
    try:
        return build_clip(_openai_torchscript(url), arch)
    except errors.DownloadError as err:
        failed.append(f"{url}: {err}")
    raise errors.DownloadError(
        "could not get CLIP ViT-B/32 from any source:\n  " + "\n  ".join(failed) + "\nDownload "
        f"{CLIP_HUB_URLS[0]} in a browser and put it at {folder / CLIP_HUB_FILES[0][0]}, or put OpenAI's "
        f"ViT-B-32.pt at {folder / 'ViT-B-32.pt'}; then run again (either is checked like a download)")


def timm_vit(repo: str = TIMM_HUB_REPO) -> dict[str, torch.Tensor]:
    """The ImageNet ViT state dict in timm's Hugging Face repository ``repo`` (default: ViT-B/32 at 384; sha256
    recorded at first use)."""
    return load_file(hub_file(repo, TIMM_HUB_FILE, TIMM_HUB_REVISION, reader="safetensors"))
