"""Cached downloads with a sha256 check.

``fetch(url, sha256)`` returns a local path. The file is downloaded once into the course cache (see
:mod:`lib.cache`), by ``torch.hub.download_url_to_file``, which writes to a temporary file and moves it into place
only when the hash matches: an interrupted or corrupted download never leaves a half-written file under the final
name. A cached file is hashed again before it is handed out.

Only ``colab`` and ``paper`` scales download; ``tiny`` runs offline on installed packages (:mod:`lib.assets`).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
from pathlib import Path
from urllib.parse import urlparse

import torch.hub

from lib import cache


class DownloadError(RuntimeError):
    """The file could not be fetched (no network, bad URL, server error)."""


class ChecksumError(ValueError):
    """The file's sha256 differs from the one the course pins."""


def verify(path: str | os.PathLike, sha256: str, record: str, fix: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has this sha256; ``record`` names where it is pinned and ``fix``
    says how to restore the file (committed checkpoints are checked like downloads)."""
    got = sha256sum(path)
    if got != sha256.lower():
        raise ChecksumError(f"{path} does not match the sha256 in {record} ({got} vs {sha256}): {fix}")


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, sha256: str, filename: str | None = None, cache_dir: str | os.PathLike | None = None,
          progress: bool = True) -> Path:
    """Download ``url`` once, check its sha256, return the cached path."""
    sha256 = sha256.lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    folder = Path(cache_dir) if cache_dir is not None else cache.cache_dir("downloads")
    folder.mkdir(parents=True, exist_ok=True)
    name = filename or Path(urlparse(url).path).name or "download"
    dest = folder / name

    if dest.exists():
        got = sha256sum(dest)
        if got == sha256:
            return dest
        raise ChecksumError(
            f"the cached file {dest} has sha256 {got}, not the pinned {sha256}. It may be from another version or "
            f"damaged: delete it and run again to download it afresh.")

    try:
        torch.hub.download_url_to_file(url, str(dest), hash_prefix=sha256, progress=progress)
    except RuntimeError as err:
        if "invalid hash value" in str(err):
            raise ChecksumError(
                f"{url} downloaded, but its sha256 is not the pinned {sha256} (nothing was kept). The file on the "
                f"server changed or the transfer was corrupted: try again later, or check the course's pinned "
                f"checksum against the publisher's.") from None
        raise DownloadError(f"could not download {url}: {err}") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise DownloadError(
            f"could not download {url} ({err}). This needs internet access (the `colab` and `paper` scales "
            f"download; `tiny` runs offline: set COURSE_SCALE=tiny), or put the file at {dest} by hand.") from None
    return dest
