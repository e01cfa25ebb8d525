"""What a downloaded file must be, and the checks that it is: the expected values (:class:`Expected`), the mirror's
manifest, the first-use record of each file's sha256, and the checks in order (the length, a web page instead of
the file, the md5, then the sha256, its published prefix or the first-use record)."""

from __future__ import annotations

import http.client
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lib.storage.checkpoint import atomic_path
from lib.storage.errors import ChecksumError, DownloadError, by_hand
from lib.storage.hashes import digests

RECORD = "first-use-sha256.json"
_MANIFESTS: dict[str, dict] = {}


@dataclass
class Expected:
    """What the file must be, and where it goes (``truth``: the mirror manifest's sha256)."""

    url: str
    dest: Path
    record_dir: Path
    sha256: str | None = None
    hash_prefix: str | None = None
    md5: str | None = None
    size: int | None = None
    truth: str | None = None

    def by_hand(self) -> str:
        return by_hand(self.dest)


def records(folder: Path) -> dict:
    """The first-use record in ``folder`` (``{file name: {"url", "sha256", "bytes"}}``; empty when there is none)."""
    try:
        return json.loads((folder / RECORD).read_text())
    except FileNotFoundError:
        return {}


def record_first_use(folder: Path, name: str, url: str, digest: str, nbytes: int) -> None:
    """Record ``name``'s sha256 in ``folder``'s first-use record, unless it holds one already, and print it."""
    known = records(folder)
    if name in known:
        return
    known[name] = {"url": url, "sha256": digest, "bytes": nbytes}
    with atomic_path(folder / RECORD) as tmp:
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
    print(f"first use: recorded sha256 {digest} for {url} (in {folder / RECORD}) — compare it with a colleague's")


def manifest(mirror: str, timeout: float) -> dict:
    """``{url: {"sha256", "md5", "bytes"}}`` of the mirror at ``mirror`` (read once per process)."""
    if mirror not in _MANIFESTS:
        try:
            with urllib.request.urlopen(f"{mirror}/manifest.json", timeout=timeout) as r:
                _MANIFESTS[mirror] = dict(json.load(r)["files"])
        except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException) as err:
            raise DownloadError(f"cannot read the mirror's manifest {mirror}/manifest.json ({err}): start the "
                                f"mirror, or unset COURSE_MIRROR to download from the original hosts") from None
    return _MANIFESTS[mirror]


def refuse_web_page(path: Path, url: str, dest: Path, local: bool = False) -> None:
    """:class:`DownloadError` if ``path`` starts like a web page."""
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    if head.startswith(b"<!doctype html") or b"<html" in head:
        if local:
            raise DownloadError(f"the file at {dest} is a web page (saved from a login, quota or confirmation page?), "
                                f"not the file: delete it and run again, or put the real file there")
        raise DownloadError(f"{url}: the server answered a web page (a login, quota or confirmation page?) instead "
                            f"of the file; nothing was kept. Open the URL in a browser to see what it says, or put "
                            f"the file at {dest} by hand, then run again")


def check(path: Path, expect: Expected, *, cached: bool, source: str | None = None) -> tuple[str, str]:
    """(sha256 of ``path``, verified_by), or :class:`ChecksumError`."""
    url, folder = expect.url, expect.record_dir
    what = f"{source or url} downloaded, but"
    fix_local = (f"it is damaged, another version, or not the file (delete it and run again to download it afresh, "
                 f"or {expect.by_hand()})")
    n = path.stat().st_size
    if expect.size is not None and n != expect.size:
        if cached:
            raise ChecksumError(f"the file at {expect.dest} has {n} bytes, not the {expect.size} of {url}: "
                                f"{fix_local}")
        raise ChecksumError(f"{what} it has {n} bytes, not {expect.size}; nothing was kept. The file on the server "
                            f"changed or the transfer was corrupted: try again later, or {expect.by_hand()}")
    record = records(folder).get(expect.dest.name, {})
    # a file already checked against the md5 when its sha256 was recorded needs only the sha256 check against that
    # record (one pass over a many-GB file instead of two)
    recorded = cached and not expect.sha256 and not expect.hash_prefix and record.get("url") == url
    digest, md5 = digests(path, md5=expect.md5 is not None and not recorded)
    if md5 is not None and md5 != expect.md5:
        if cached:
            raise ChecksumError(f"the file at {expect.dest} has md5 {md5}, not the published {expect.md5}: "
                                f"{fix_local}")
        raise ChecksumError(f"{what} its md5 is {md5}, not the published {expect.md5}; nothing was kept. The file "
                            f"on the server changed or the transfer was corrupted: try again later, or "
                            f"{expect.by_hand()}")
    if expect.sha256:
        expected, how, where = expect.sha256, "sha256", "the sha256 given for it"
    elif expect.hash_prefix:
        expected, how, where = expect.hash_prefix, "hash_prefix", "the sha256 prefix published in its name"
    else:
        how = "md5" if expect.md5 else "first_use"
        if expect.truth and digest != expect.truth:
            expected, where = expect.truth, "the mirror's manifest"
        else:
            expected, where = record.get("sha256", digest), f"the first-use record {folder / RECORD}"
            if record and record.get("url") != url:
                raise ChecksumError(f"{expect.dest} was recorded for {record.get('url')}, not {url}: pass another "
                                    f"filename=, or delete the file and its entry in {folder / RECORD}")
    if digest.startswith(expected):
        return digest, how
    if cached:
        raise ChecksumError(f"the file at {expect.dest} has sha256 {digest}, not {expected} ({where}): {fix_local}")
    fix = (f"if the publisher really changed the file, delete its entry in {folder / RECORD} to record the new one"
           if how in ("first_use", "md5") and record else "try again later, and compare the value with the "
                                                           "publisher's")
    raise ChecksumError(f"{what} its sha256 is {digest}, not {expected} ({where}); nothing was kept. The file on "
                        f"the server changed or the transfer was corrupted: {fix}, or {expect.by_hand()}")
