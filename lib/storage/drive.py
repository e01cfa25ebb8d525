"""Google Drive downloads through ``gdown`` (Drive's confirmation page for large files, its own resume)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from urllib.parse import urlparse

import requests

from lib.storage.errors import DownloadError, explain
from lib.storage.verification import Expected

DRIVE_HOSTS = ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")


def download(url: str, dest: Path, expect: Expected, *, progress: bool, timeout: float) -> Path:
    """gdown on the Drive ``url`` into ``<dest>.drive`` (gdown keeps and resumes its own partial file beside it when
    its ``resume=`` exists), every request with ``timeout`` (gdown 5, Colab's, passes none). Under
    ``$COURSE_MIRROR`` each request to a Drive host goes to the mirror instead, so gdown meets Drive's own flow
    there (the confirmation page for a large file, then the drive.usercontent.google.com download)."""
    import gdown  # deferred: only Google Drive downloads need it, and every chapter imports lib.storage

    out = dest.with_name(dest.name + ".drive")
    mirror = os.environ.get("COURSE_MIRROR", "").rstrip("/")
    plain = requests.Session.request

    def request(self, method, target, *args, **kwargs):
        kwargs["timeout"] = kwargs.get("timeout") or timeout
        p = urlparse(target)
        if mirror and p.netloc in DRIVE_HOSTS:
            target = f"{mirror}/{p.netloc}{p.path}" + (f"?{p.query}" if p.query else "")
        return plain(self, method, target, *args, **kwargs)

    kwargs = {"url": url, "output": str(out), "quiet": not progress, "use_cookies": False}
    if "resume" in inspect.signature(gdown.download).parameters:
        kwargs["resume"] = True
    requests.Session.request = request
    try:
        got = gdown.download(**kwargs)
        if got is None or not out.exists():
            raise DownloadError(f"{url}: Google Drive did not hand out the file; nothing was kept. Open the URL in a "
                                f"browser (a permission or quota page?), or {expect.by_hand()}")
    except Exception as err:  # noqa: BLE001 -- each kind is translated by _explain, anything else re-raised
        raise explain(err, url, expect.dest, timeout) from None
    finally:
        requests.Session.request = plain
    return out
