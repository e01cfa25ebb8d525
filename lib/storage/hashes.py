"""File digests: the sha256 (and md5) of a file read once, a check against a pinned sha256, and the sha256 prefix that
torch.hub's file names carry."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import urlparse

import torch.hub

from lib.storage.errors import ChecksumError

CHUNK = 1 << 20


def digests(path: str | os.PathLike, md5: bool = False, chunk: int = CHUNK) -> tuple[str, str | None]:
    """(sha256, md5 or None) of ``path``, read once."""
    h, m = hashlib.sha256(), hashlib.md5(usedforsecurity=False) if md5 else None
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
            if m is not None:
                m.update(block)
    return h.hexdigest(), m.hexdigest() if m is not None else None


def sha256sum(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    return digests(path, chunk=chunk)[0]


def verify(path: str | os.PathLike, sha256: str, record: str, fix: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has this sha256; ``record`` names where it is pinned and ``fix``
    says how to restore the file (committed checkpoints are checked like downloads)."""
    got = sha256sum(path)
    if got != sha256.lower():
        raise ChecksumError(f"{path} does not match the sha256 in {record} ({got} vs {sha256}): {fix}")


def hub_prefix(url: str) -> str:
    """The sha256 prefix in a torch.hub-style file name (``...-446d5c7f.pth.tar`` → ``446d5c7f``)."""
    m = torch.hub.HASH_REGEX.search(Path(urlparse(url).path).name)
    if not m or not m.group(1):
        raise ValueError(f"no sha256 prefix (name-<hex>.ext, torch.hub's convention) in the file name of {url}")
    return m.group(1)
