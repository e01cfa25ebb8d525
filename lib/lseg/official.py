"""Loading the released LSeg checkpoints (github isl-org/lang-seg) into :class:`lib.lseg.LSeg`.

The released files are PyTorch-Lightning ``.ckpt`` pickles on Google Drive, with no published checksum and no
other source. :func:`fetch_official` downloads one with :func:`lib.storage.download.fetch_drive` (its sha256
recorded at the first download and re-checked afterwards; a file fetched in a browser and put where the error says
is checked the same way) and :func:`convert_official_checkpoint` reads it with ``torch.load(weights_only=True)`` and
the explicit allow-list :data:`lib.storage.checkpoint.LIGHTNING_ALLOW` (data-only stand-ins for the few non-tensor
classes a Lightning checkpoint names; nothing in the file runs), and writes its tensors once as a plain state dict.

The state dict's keys are ``net.`` + the module names of the official ``LSegNet``:
``clip_pretrained.*`` (all of CLIP ViT-B/32: the text tower LSeg uses, and the visual tower it never runs),
``pretrained.model.*`` (timm ViT, including its unused 1000-class head), ``pretrained.act_postprocess1..4``,
``scratch.*``. :func:`from_official_state_dict` loads every tensor or names it on :data:`UNUSED_PREFIXES`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lib.lseg.model import TEMPERATURE, LSeg, architecture
from lib.lseg.text import CLIPText
from lib.storage import cache, checkpoint, download, errors

# tensors of the official checkpoint that LSeg never uses (loaded nowhere, on purpose)
UNUSED_PREFIXES = ("clip_pretrained.visual.", "clip_pretrained.logit_scale", "pretrained.model.head.")

# Released checkpoints (README "Model Zoo" of isl-org/lang-seg): Google Drive ids. The demo's id is the one the
# README gives (since May 2024); no checksum is published.
OFFICIAL_CHECKPOINTS = {
    "demo_e200": {"drive_id": "1FTuHY1xPUkM-5gaDtMfgCl3D0gR89WV7", "config": "vitl16_384", "arch": "none", "depth": 0},
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
    import open_clip  # deferred: over ten seconds to import, and only the CLIP text tower needs it

    image, clip, _ = split_official_state_dict(state_dict)
    cfg = architecture(backbone, arch=arch, depth=depth if arch != "none" else 0)
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


def convert_official_checkpoint(src, dst) -> Path:
    """Read the Lightning ``.ckpt`` at ``src`` with ``weights_only=True`` and
    :data:`lib.storage.checkpoint.LIGHTNING_ALLOW`, and write its ``state_dict`` (tensors only) to ``dst`` atomically.
    Load the result with ``lib.storage.checkpoint.load``."""
    obj = checkpoint.load(src, allow=checkpoint.LIGHTNING_ALLOW)
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict):
        raise OfficialCheckpointError(f"{src} holds no state_dict")
    plain = {k: v.detach().clone().contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)}
    return checkpoint.save(plain, dst)


def fetch_official(name: str = "demo_e200") -> dict:
    """Download (:func:`lib.storage.download.fetch_drive`, sha256 recorded at first use), convert once, and return the
    plain state dict."""
    if name not in OFFICIAL_CHECKPOINTS:
        raise ValueError(f"unknown official checkpoint {name!r}; known: {sorted(OFFICIAL_CHECKPOINTS)}")
    plain = cache.cache_dir("lseg") / f"{name}.state_dict.pt"
    if not plain.exists():
        drive_id = OFFICIAL_CHECKPOINTS[name]["drive_id"]
        try:
            src = download.fetch_drive(drive_id, reader="torch.load(weights_only=True)", filename=f"{name}.ckpt")
        except errors.DownloadError as err:
            manual = cache.downloads_dir() / f"{name}.ckpt"
            raise errors.DownloadError(
                f"{err}\nThe checkpoint has no other source (the lang-seg repository is archived and publishes only "
                f"this Google Drive file). Open https://drive.google.com/file/d/{drive_id}/view in a browser (signed "
                f"in to Google, if Drive answers with a quota or permission page), download it, and put it at "
                f"{manual}; then run again: it is checked like a download.") from None
        convert_official_checkpoint(src, plain)
    return checkpoint.load(plain)
