"""Loading the released LSeg checkpoints (github isl-org/lang-seg) into :class:`lib.lseg.LSeg`.

The released files are PyTorch-Lightning ``.ckpt`` pickles. Unpickling runs code, so
:func:`convert_official_checkpoint` does it (``weights_only=False``) only for a file whose sha256 equals the value
pinned for it, and writes a plain state dict once; everything afterwards loads that with ``weights_only=True``.

The state dict's keys are ``net.`` + the module names of the official ``LSegNet``:
``clip_pretrained.*`` (all of CLIP ViT-B/32: the text tower LSeg uses, and the visual tower it never runs),
``pretrained.model.*`` (timm ViT, including its unused 1000-class head), ``pretrained.act_postprocess1..4``,
``scratch.*``. :func:`from_official_state_dict` loads every tensor or names it on :data:`UNUSED_PREFIXES`.
"""

from __future__ import annotations

from lib.download import sha256sum
from pathlib import Path

import torch

from lib.lseg.model import TEMPERATURE, LSeg, config
from lib.lseg.text import CLIPText

# tensors of the official checkpoint that LSeg never uses (loaded nowhere, on purpose)
UNUSED_PREFIXES = ("clip_pretrained.visual.", "clip_pretrained.logit_scale", "pretrained.model.head.")

# Released checkpoints (README "Model Zoo" of isl-org/lang-seg). A sha256 is pinned once someone has downloaded
# the file and checked it; until then the entry is None and the code refuses to unpickle the file.
OFFICIAL_CHECKPOINTS = {
    "demo_e200": {"url": "https://drive.google.com/uc?export=download&id=1ayk6NXURI_vIPlym16f_RG3ffxBWHxvb",
                  "sha256": None, "config": "vitl16_384", "arch": "none", "depth": 0},
}


class OfficialCheckpointError(ValueError):
    """The state dict does not match the official LSeg layout."""


def _strip(state_dict: dict) -> dict:
    if not isinstance(state_dict, dict) or not state_dict:
        raise OfficialCheckpointError("expected a non-empty state dict (a mapping from key to tensor)")
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
        state_dict = state_dict["state_dict"]  # a Lightning checkpoint dict: take its state_dict
    return {k[4:] if k.startswith("net.") else k: v for k, v in state_dict.items()}


def split_official_state_dict(state_dict: dict) -> tuple[dict, dict, dict]:
    """(image-side tensors for LSeg, CLIP text-tower tensors, tensors LSeg never uses), keys without ``net.``.

    The timm ViT's classification head is part of ``pretrained.model`` (so it is loaded with the image side, to
    keep the module complete) but never used; the CLIP visual tower and logit scale are not loaded at all.
    """
    sd = _strip(state_dict)
    unused = {k: v for k, v in sd.items() if k.startswith(UNUSED_PREFIXES)}
    clip = {k[len("clip_pretrained."):]: v for k, v in sd.items()
            if k.startswith("clip_pretrained.") and k not in unused}
    image = {k: v for k, v in sd.items() if not k.startswith("clip_pretrained.")}
    return image, clip, unused


def _load_exact(module: torch.nn.Module, sd: dict, what: str) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    wrong = sorted(k for k in set(sd) & set(expected) if tuple(sd[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        def show(keys):
            return ", ".join(keys[:5]) + (f" … ({len(keys)} in all)" if len(keys) > 5 else "")
        msg = [f"the state dict does not fit the {what}:"]
        if missing:
            msg.append(f"missing {show(missing)}")
        if unexpected:
            msg.append(f"unexpected {show(unexpected)}")
        if wrong:
            msg.append("wrong shape " + show([f"{k} {tuple(sd[k].shape)} vs {tuple(expected[k].shape)}" for k in wrong]))
        msg.append("check arch= and depth= (arch 1/2 checkpoints hold scratch.head_block.*) and the backbone")
        raise OfficialCheckpointError("; ".join(msg))
    module.load_state_dict(sd, strict=True, assign=True)


def from_official_state_dict(state_dict: dict, arch: str = "none", depth: int = 2, *,
                             backbone: str = "vitl16_384", text: bool = True) -> LSeg:
    """Build :class:`LSeg` and load the official checkpoint's ``state_dict`` (keys with or without ``net.``).

    ``arch``: "none" (``arch_option=0``), "bottleneck" (1) or "depthwise" (2); ``depth`` = ``block_depth``.
    With ``text=True`` the CLIP text tower is filled from ``clip_pretrained.*`` and attached as the model's
    text encoder. Every tensor is loaded, or listed in :data:`UNUSED_PREFIXES`; anything else is an error.
    """
    import open_clip

    image, clip, _ = split_official_state_dict(state_dict)
    cfg = config(backbone, arch=arch, depth=depth if arch != "none" else 0)
    with torch.device("meta"):  # no 300M-parameter random init: tensors are assigned from the state dict
        model = LSeg(cfg)
        clip_model = open_clip.create_model(CLIPText.ARCH, pretrained=None, device="meta") if text else None
    _load_exact(model, image, f"LSeg image side ({backbone}, arch={arch!r}, depth={cfg.depth})")
    model.float()  # parts of a released checkpoint may be half precision (CLIP on CUDA loads as fp16)
    # the non-persistent constants were built on the meta device: make them real
    model.temperature = torch.tensor(TEMPERATURE)
    model.mean, model.std = torch.full((1, 3, 1, 1), 0.5), torch.full((1, 3, 1, 1), 0.5)
    if text:
        clip_expected = clip_model.state_dict()
        clip_sd = {k: (clip[k] if k in clip else None) for k in clip_expected}
        needed = {k for k in clip_expected if not k.startswith("visual.") and k != "logit_scale"}
        lacking = sorted(k for k in needed if clip_sd[k] is None)
        extra = sorted(set(clip) - set(clip_expected))
        if lacking or extra:
            raise OfficialCheckpointError(f"the CLIP text tower does not fit: missing {lacking[:5]}, "
                                          f"unexpected {extra[:5]}; is this an LSeg ViT-B/32-text checkpoint?")
        for k, v in clip_sd.items():  # the visual tower stays empty: replace its meta tensors by zeros
            if v is None:
                clip_sd[k] = torch.zeros(clip_expected[k].shape, dtype=clip_expected[k].dtype)
        clip_model.load_state_dict(clip_sd, strict=True, assign=True)
        # the causal mask is a non-persistent buffer, also built on meta: rebuild it
        n = clip_model.positional_embedding.shape[0]
        clip_model.attn_mask = torch.full((n, n), float("-inf")).triu_(1)
        model.text_encoder = CLIPText(model=clip_model.float())
    return model


def convert_official_checkpoint(src, dst, sha256: str | None) -> Path:
    """Unpickle the Lightning ``.ckpt`` at ``src`` (only if its sha256 equals the pinned ``sha256``) and write its
    ``state_dict`` (tensors only) to ``dst`` atomically. Load the result with ``lib.checkpoint.load``."""
    from lib import checkpoint

    if not sha256:
        raise OfficialCheckpointError("no sha256 is pinned for this file: refusing to unpickle it. Check the file "
                                      "(sha256sum) against a trusted source and pin the value first")
    got = sha256sum(src)
    if got != sha256.lower():
        raise OfficialCheckpointError(f"{src} has sha256 {got}, not the pinned {sha256}: refusing to unpickle an "
                                      f"unknown file; download it again")
    obj = torch.load(src, map_location="cpu", weights_only=False)  # pinned file only (checked just above)
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict):
        raise OfficialCheckpointError(f"{src} holds no state_dict")
    plain = {k: v.detach().clone().contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)}
    return checkpoint.save(plain, dst)


def fetch_official(name: str = "demo_e200") -> dict:
    """Download (``lib.download.fetch``, checksum-verified), convert once, and return the plain state dict."""
    from lib import cache, checkpoint, download

    if name not in OFFICIAL_CHECKPOINTS:
        raise ValueError(f"unknown official checkpoint {name!r}; known: {sorted(OFFICIAL_CHECKPOINTS)}")
    entry = OFFICIAL_CHECKPOINTS[name]
    if not entry["sha256"]:
        raise OfficialCheckpointError(
            f"{name}: no sha256 is pinned yet, so the course will not unpickle it. Download it by hand from the "
            f"lang-seg README link, check it, and call convert_official_checkpoint(path, dst, sha256)")
    plain = cache.cache_dir("lseg") / f"{name}.state_dict.pt"
    if not plain.exists():
        src = download.fetch(entry["url"], entry["sha256"], filename=f"{name}.ckpt")
        convert_official_checkpoint(src, plain, entry["sha256"])
    return checkpoint.load(plain)
