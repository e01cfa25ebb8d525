"""The Hugging Face hub's answer to a file download, as ``huggingface_hub.hf_hub_download`` meets it (its
``file_download.py``, 2.4.0: ``get_hf_file_metadata`` then ``http_get``).

The client sends ``HEAD {endpoint}/{repo}/resolve/{revision}/{file}`` and reads ``X-Repo-Commit`` (required: without
it the client refuses the server as no hub), ``X-Linked-Etag`` or ``ETag`` (required; for a file stored in LFS the
hub puts the file's sha256 there, and the client names the cached blob by it), ``X-Linked-Size`` or
``Content-Length``; then a ``GET`` of the same URL (with ``Range: bytes=N-`` when it resumes a partial blob). The
real hub answers an LFS file's HEAD with a redirect to its CDN carrying these headers; here the file is answered
directly (a redirect to the same loopback host would be followed by the client and lose the headers).
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

PATH = re.compile(r"huggingface\.co/(?P<repo>[\w.-]+/[\w.-]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)")


def parse(key: str):
    """(repo, revision, file) of a mirror key ``huggingface.co/<repo>/resolve/<revision>/<file>``, else None."""
    m = PATH.fullmatch(key)
    return (m["repo"], m["revision"], m["file"]) if m else None


def files(manifest: dict) -> dict:
    """{(repo, file): (manifest entry, commit)} for every hub URL of the manifest: a file is served at any revision,
    and the commit reported is the pinned one of its URL (or one derived from the repository's name)."""
    out = {}
    for url, entry in manifest["files"].items():
        parts = urlsplit(url)
        hit = parse(parts.netloc + parts.path)
        if hit:
            repo, revision, name = hit
            commit = revision if re.fullmatch(r"[0-9a-f]{40}", revision) else hashlib.sha1(repo.encode()).hexdigest()
            out[(repo, name)] = (entry, commit)
    return out


def headers(entry: dict, commit: str, size: int) -> dict:
    """The hub's metadata headers for one LFS file."""
    return {"X-Repo-Commit": commit, "ETag": f'"{entry["sha256"]}"', "X-Linked-Etag": f'"{entry["sha256"]}"',
            "X-Linked-Size": str(size), "Accept-Ranges": "bytes"}


def byte_range(header: str | None, size: int):
    """(start, end) of a ``Range: bytes=a-b`` or ``bytes=a-`` request (end inclusive), or None for the whole file."""
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", (header or "").strip())
    if not m:
        return None
    start, end = int(m[1]), int(m[2]) if m[2] else size - 1
    return (start, min(end, size - 1)) if start < size else None
