"""Downloads for the ``colab`` and ``paper`` scales: several sources, resumed after an interruption, verified before
use.

``fetch(url, reader=..., mirrors=(...))`` downloads a file once into the download folder (``$COURSE_DOWNLOADS``,
by default ``$COURSE_CACHE/downloads``: :func:`lib.storage.cache.downloads_dir`) and returns its path there. ``url`` is
tried first, then each of ``mirrors`` (URLs holding the same bytes), until one gives the expected file.

**The manual path.** The final path in the download folder (named in every error) is looked at first: a file
already there, downloaded earlier or put there by hand after fetching it in a browser, is checked exactly like a
download and used.

**The transfer.** HTTP(S) goes through ``requests`` into ``<final name>.part`` beside the final path, with a small
sidecar ``<final name>.part.json`` (the source URL and the server's ETag, Last-Modified and length). A transfer that
breaks off (a lost connection, a killed process) keeps the part: a broken connection is retried within the call (up
to :data:`RETRIES` times, with a pause), and the next call resumes it with an HTTP ``Range`` request guarded by
``If-Range``. A server that answers the whole file instead of the rest starts it again from 0 (and says so); a part
from another source, length or ETag is discarded. Google Drive goes through ``gdown`` with its own ``resume=``. A
``tqdm.auto`` bar shows the size and rate. Before any byte is written, the free space of the download folder is
checked against ``size=`` or the server's length. The finished file is checked, then moved to its final name (an
atomic rename), so a file under the final name is always complete.

**The checks**, in order: the length (a truncated transfer; ``size=`` when given), the first bytes (a web page
instead of the file, unless ``reader="text"``), then the digests, by what is published:

- ``sha256=`` (64 hex digits): the whole digest (``verified_by="sha256"``);
- ``hash_prefix=``: the start of the digest, torch.hub's convention of ``name-<prefix>.ext``
  (:func:`hub_prefix` reads it from the URL; ``verified_by="hash_prefix"``);
- ``md5=`` (32 hex digits, as torchvision's data sets publish it): checked in addition to the above or, alone, in
  addition to the first-use record (``verified_by="md5"``);
- none of them: the sha256 is recorded at the first download in ``first-use-sha256.json`` and printed, and every
  later use is checked against it (``verified_by="first_use"``). The record lives in the course cache
  (``$COURSE_CACHE/downloads``, on Google Drive with ``USE_DRIVE``) or in ``cache_dir`` when one is given.

``reader`` names how the caller will read the file and must be one of :data:`READERS`, readers that cannot run
code: nothing downloaded is unpickled.

``$COURSE_MIRROR`` (e.g. ``http://127.0.0.1:8765``): every source goes to ``{MIRROR}/{host}{path}[?query]``, and
the expected values come from ``{MIRROR}/manifest.json`` (``{"files": {"<url>": {"sha256", "md5", "bytes"}}}``,
read once per process): its sha256 in place of ``sha256=``, its prefix of the same length in place of
``hash_prefix=``, its md5 in place of ``md5=``, its bytes in place of ``size=``, and its sha256 in addition to the
first-use record. A URL missing from the manifest is an error.

Every network wait is bounded by ``timeout`` seconds. Every fetch is appended to :func:`downloads` and, when
``$COURSE_DOWNLOAD_LOG`` names a file, written to it as one JSON line (with the ``source`` that gave the file).
Errors are :class:`DownloadError` (no source could be fetched; :class:`NoRoom` when the disk is too small) or
:class:`ChecksumError` (the bytes are not the expected ones), each naming the sources tried, the manual path, and
what to do.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import inspect
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import requests
import torch.hub
from tqdm.auto import tqdm

from lib.storage import cache
from lib.storage.checkpoint import atomic_path

READERS = frozenset({"PIL", "soundfile", "safetensors", "torch.load(weights_only=True)", "json", "pycocotools",
                     "zip", "tar", "text"})
DRIVE_URL = "https://drive.google.com/uc?export=download&id={}"
DRIVE_HOSTS = ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")
RECORD = "first-use-sha256.json"
RETRIES = 3          # retries of a connection that broke off during one call
CHUNK = 1 << 20

_LOG: list[dict] = []
_MANIFESTS: dict[str, dict] = {}


class DownloadError(RuntimeError):
    """The file could not be fetched (no network, bad URL, server error, timeout, full disk, a web page)."""


class BadURLError(DownloadError, ValueError):
    """The URL is not an http(s):// or file:// URL."""


class NoRoom(DownloadError):
    """The download folder has less free space than the file needs."""


class ChecksumError(ValueError):
    """The file's sha256 (or md5, or length) differs from the expected one."""


def verify(path: str | os.PathLike, sha256: str, record: str, fix: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has this sha256; ``record`` names where it is pinned and ``fix``
    says how to restore the file (committed checkpoints are checked like downloads)."""
    got = sha256sum(path)
    if got != sha256.lower():
        raise ChecksumError(f"{path} does not match the sha256 in {record} ({got} vs {sha256}): {fix}")


def sha256sum(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    return _digests(path, chunk=chunk)[0]


def _digests(path: str | os.PathLike, md5: bool = False, chunk: int = CHUNK) -> tuple[str, str | None]:
    """(sha256, md5 or None) of ``path``, read once."""
    h, m = hashlib.sha256(), hashlib.md5(usedforsecurity=False) if md5 else None
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
            if m is not None:
                m.update(block)
    return h.hexdigest(), m.hexdigest() if m is not None else None


def hub_prefix(url: str) -> str:
    """The sha256 prefix in a torch.hub-style file name (``...-446d5c7f.pth.tar`` → ``446d5c7f``)."""
    m = torch.hub.HASH_REGEX.search(Path(urlparse(url).path).name)
    if not m or not m.group(1):
        raise ValueError(f"no sha256 prefix (name-<hex>.ext, torch.hub's convention) in the file name of {url}")
    return m.group(1)


def downloads() -> list[dict]:
    """This process's fetches, in order (copies)."""
    return [dict(entry) for entry in _LOG]


def size_text(n: float) -> str:
    """``13.2 GB``, ``840 MB``, ``12 kB`` (decimal units, as disk sizes are sold)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if unit == "GB" else f"{n / scale:.0f} {unit}"
    return f"{int(n)} bytes"


def fetch_drive(file_id: str, *, reader: str, sha256: str | None = None, hash_prefix: str | None = None,
                md5: str | None = None, mirrors=(), filename: str, size: int | None = None, cache_dir=None,
                progress: bool = True, timeout: float = 60) -> Path:
    """:func:`fetch` of a Google Drive file by its id (downloaded with ``gdown``), then of ``mirrors``."""
    return fetch(DRIVE_URL.format(file_id), reader=reader, sha256=sha256, hash_prefix=hash_prefix, md5=md5,
                 mirrors=mirrors, filename=filename, size=size, cache_dir=cache_dir, progress=progress,
                 timeout=timeout)


def fetch(url: str, *, reader: str, sha256: str | None = None, hash_prefix: str | None = None,
          md5: str | None = None, mirrors=(), filename: str | None = None, size: int | None = None,
          cache_dir=None, progress: bool = True, timeout: float = 60) -> Path:
    """Return the path of ``url``'s file in the download folder: the file already there, or else downloaded from
    ``url`` or the first of ``mirrors`` that gives it; verified and logged (see the module docstring)."""
    if reader not in READERS:
        raise ValueError(f"reader={reader!r} is not one that cannot run code; use one of {sorted(READERS)}")
    if sha256 and hash_prefix:
        raise ValueError("give sha256= or hash_prefix=, not both")
    if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256 := sha256.lower()):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    if hash_prefix is not None and not re.fullmatch(r"[0-9a-f]{8,64}", hash_prefix := hash_prefix.lower()):
        raise ValueError(f"hash_prefix must be 8 to 64 hex digits, got {hash_prefix!r}")
    if md5 is not None and not re.fullmatch(r"[0-9a-f]{32}", md5 := md5.lower()):
        raise ValueError(f"md5 must be 32 hex digits, got {md5!r}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise ValueError(f"size must be the file's length in bytes (a positive int), got {size!r}")
    if isinstance(mirrors, str):
        raise ValueError("mirrors= is a list of URLs, not one URL: write mirrors=[url]")
    sources = list(dict.fromkeys([url, *mirrors]))
    for source in sources:
        parts = urlparse(source)
        if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.netloc):
            raise BadURLError(f"{source!r} is not a download URL (http://, https:// or file://): check the URL")
    if cache_dir is not None:
        folder = record_dir = Path(cache_dir)
    else:
        folder, record_dir = cache.downloads_dir(), cache.cache_dir("downloads")
    dest = folder / _safe_name(filename if filename is not None else (Path(urlparse(url).path).name or "download"))
    folder.mkdir(parents=True, exist_ok=True)

    truth = None
    mirror = os.environ.get("COURSE_MIRROR", "").rstrip("/")
    if mirror:
        known = _manifest(mirror, timeout).get(url, {})
        truth = str(known.get("sha256") or "").lower()
        if not truth:
            raise DownloadError(f"{url} is not in the mirror's manifest {mirror}/manifest.json: add it there with "
                                f"its sha256, or unset COURSE_MIRROR to download from the original host")
        sha256 = truth if sha256 else sha256
        hash_prefix = truth[:len(hash_prefix)] if hash_prefix else hash_prefix
        md5 = str(known.get("md5", "")).lower() or None if md5 else md5
        size = known.get("bytes") if size else size
    expect = _Expected(url, dest, record_dir, sha256, hash_prefix, md5, size, truth)

    cached = dest.exists()
    source = "local"
    if cached:
        if reader != "text":
            _refuse_web_page(dest, url, dest, local=True)
        digest, how = _check(dest, expect, cached=True)
    else:
        digest, how, source = _download(sources, expect, reader=reader, mirror=mirror, progress=progress,
                                        timeout=timeout)
    if how in ("first_use", "md5"):
        _record_first_use(record_dir, dest, url, digest)
    entry = {"url": url, "source": source, "path": str(dest), "bytes": dest.stat().st_size, "sha256": digest,
             "verified_by": how, "loaded_with": reader, "mirror": bool(mirror), "cached": cached}
    _LOG.append(entry)
    if os.environ.get("COURSE_DOWNLOAD_LOG"):
        with open(os.environ["COURSE_DOWNLOAD_LOG"], "a") as f:
            f.write(json.dumps(entry) + "\n")
    return dest


def _safe_name(name: str) -> str:
    """``name`` if it is a plain file name (it stays inside the download folder), else ValueError."""
    if (not name or name in (".", "..") or "/" in name or "\\" in name or os.sep in name
            or (os.altsep and os.altsep in name) or "\0" in name or Path(name).is_absolute()):
        raise ValueError(f"filename={name!r} must be a plain file name (no folders, no '..'): the file stays in the "
                         f"download folder")
    return name


class _Expected:
    """What the file must be, and where it goes."""

    def __init__(self, url, dest, record_dir, sha256, hash_prefix, md5, size, truth):
        self.url, self.dest, self.record_dir = url, dest, record_dir
        self.sha256, self.hash_prefix, self.md5, self.size, self.truth = sha256, hash_prefix, md5, size, truth

    def by_hand(self) -> str:
        return f"put the file at {self.dest} by hand (fetched in a browser), then run again"


# --- the sources, in order ----------------------------------------------------------------------------------------
def _download(sources: list[str], expect: _Expected, *, reader, mirror, progress, timeout) -> tuple[str, str, str]:
    """Try each source until one gives the expected file at ``expect.dest``; (sha256, verified_by, source)."""
    failures: list[tuple[str, Exception]] = []
    for i, source in enumerate(sources):
        nxt = sources[i + 1] if i + 1 < len(sources) else None
        if failures:
            print(f"trying the next source for {expect.dest.name}: {source}")
        try:
            return (*_one_source(source, expect, reader=reader, mirror=mirror, progress=progress,
                                 timeout=timeout), source)
        except NoRoom:
            raise
        except (DownloadError, ChecksumError) as err:
            failures.append((source, err))
            if nxt is not None:
                print(f"{source} failed: {_first_sentence(err, source)}")
    if len(failures) == 1:
        raise failures[0][1]
    kind = ChecksumError if any(isinstance(e, ChecksumError) for _, e in failures) else DownloadError
    tried = "\n".join(f"  - {s}: {_first_sentence(e, s)}" for s, e in failures)
    raise kind(f"{expect.dest.name} could not be downloaded from any of its {len(failures)} sources:\n{tried}\n"
               f"Try again later, or {expect.by_hand()}")


def _first_sentence(err: Exception, source: str = "") -> str:
    """What went wrong, without the advice (said once after the list of sources)."""
    text = str(err)
    for lead in (f"{source}: ", f"{source} downloaded, but "):
        text = text.removeprefix(lead) if source else text
    for cut in ("; nothing was kept", ". Run again", ", or put the file", ". Open the URL"):
        text = text.split(cut)[0]
    return text.strip()


def _one_source(source, expect: _Expected, *, reader, mirror, progress, timeout) -> tuple[str, str]:
    """Download one source into the part, check it, move it to ``expect.dest``; (sha256, verified_by)."""
    parts = urlparse(source)
    target = source
    if mirror:
        target = f"{mirror}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    dest = expect.dest
    if parts.netloc in DRIVE_HOSTS:
        _room(dest.parent, expect.size, 0)
        done = _gdown(source, dest, expect, progress=progress, timeout=timeout)
    elif parts.scheme == "file":
        _room(dest.parent, expect.size, 0)
        done = dest.with_name(dest.name + ".part")
        try:
            shutil.copyfile(url2pathname(parts.path), done)
        except OSError as err:
            done.unlink(missing_ok=True)
            raise _explain(err, source, expect, timeout) from None
    else:
        done = _http(target, expect, source=source, reader=reader, progress=progress, timeout=timeout)
    try:
        if reader != "text":
            _refuse_web_page(done, source, dest)
        digest, how = _check(done, expect, cached=False, source=source)
    except (DownloadError, ChecksumError):
        _discard(done)
        raise
    os.replace(done, dest)
    _sidecar(dest).unlink(missing_ok=True)
    return digest, how


# --- the checks ---------------------------------------------------------------------------------------------------
def _check(path: Path, expect: _Expected, *, cached: bool, source: str | None = None) -> tuple[str, str]:
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
    record = _records(folder).get(expect.dest.name, {})
    # a file already checked against the md5 when its sha256 was recorded needs only the sha256 check against that
    # record (one pass over a many-GB file instead of two)
    recorded = cached and not expect.sha256 and not expect.hash_prefix and record.get("url") == url
    digest, md5 = _digests(path, md5=expect.md5 is not None and not recorded)
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


def _refuse_web_page(path: Path, url: str, dest: Path, local: bool = False) -> None:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    if head.startswith(b"<!doctype html") or b"<html" in head:
        if local:
            raise DownloadError(f"the file at {dest} is a web page (saved from a login, quota or confirmation page?), "
                                f"not the file: delete it and run again, or put the real file there")
        raise DownloadError(f"{url}: the server answered a web page (a login, quota or confirmation page?) instead "
                            f"of the file; nothing was kept. Open the URL in a browser to see what it says, or put "
                            f"the file at {dest} by hand, then run again")


def _records(folder: Path) -> dict:
    try:
        return json.loads((folder / RECORD).read_text())
    except FileNotFoundError:
        return {}


def _record_first_use(folder: Path, dest: Path, url: str, digest: str) -> None:
    records = _records(folder)
    if dest.name in records:
        return
    records[dest.name] = {"url": url, "sha256": digest, "bytes": dest.stat().st_size}
    with atomic_path(folder / RECORD) as tmp:
        tmp.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    print(f"first use: recorded sha256 {digest} for {url} (in {folder / RECORD}) — compare it with a colleague's")


def _manifest(mirror: str, timeout: float) -> dict:
    if mirror not in _MANIFESTS:
        try:
            with urllib.request.urlopen(f"{mirror}/manifest.json", timeout=timeout) as r:
                _MANIFESTS[mirror] = dict(json.load(r)["files"])
        except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException) as err:
            raise DownloadError(f"cannot read the mirror's manifest {mirror}/manifest.json ({err}): start the "
                                f"mirror, or unset COURSE_MIRROR to download from the original hosts") from None
    return _MANIFESTS[mirror]


def _room(folder: Path, size: int | None, have: int) -> None:
    """:class:`NoRoom` unless ``folder``'s disk has room for the ``size - have`` bytes still to come."""
    if not size:
        return
    free = shutil.disk_usage(folder).free
    if size - have > free:
        raise NoRoom(f"not enough room for the download: needs {size_text(size - have)}, {size_text(free)} free at "
                     f"{folder}. Free some space (or point COURSE_DOWNLOADS at a larger disk) and run again")


# --- HTTP, resumable ------------------------------------------------------------------------------------------------
# A small requests-based range loop, not huggingface_hub's ``file_download.http_get``: that function is not exported
# by huggingface_hub (no stable API; its keyword arguments have changed between major versions, and its HTTP client
# differs between Colab's 1.27, httpx, and the 2.4 pinned here, httpx2), it raises errors tailored to the Hub, and it
# keeps no validator (ETag, length) that a later process could check before resuming, which is what a learner's
# interrupted multi-GB download needs.
def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    if part.name.endswith(".part"):
        part.with_name(part.name + ".json").unlink(missing_ok=True)


def _read_sidecar(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


class _BrokeOff(Exception):
    """The connection ended before the announced length."""


def _http(target: str, expect: _Expected, *, source: str, reader: str, progress: bool, timeout: float) -> Path:
    """Download ``target`` into ``<dest>.part``, resuming a part of the same source; returns the complete part."""
    dest = expect.dest
    part, side = dest.with_name(dest.name + ".part"), _sidecar(dest)
    meta = _read_sidecar(side)
    have = part.stat().st_size if part.exists() else 0
    if have and (meta.get("source") != target or (expect.size and meta.get("length") not in (None, expect.size))):
        print(f"discarding {part} ({size_text(have)} of another source or version)")
        _discard(part)
        have, meta = 0, {}
    elif not have:
        side.unlink(missing_ok=True)
        meta = {}
    length = meta.get("length")
    if have and length == have:
        return part  # complete already (stopped before its check): the check decides
    with requests.Session() as session:
        return _range_loop(session, target, part, side, meta, have, length, expect, source=source, reader=reader,
                           progress=progress, timeout=timeout)


def _range_loop(session, target, part, side, meta, have, length, expect, *, source, reader, progress, timeout):
    """GET ``target`` into ``part`` from byte ``have`` on, retrying a broken connection up to :data:`RETRIES` times."""
    dest, retries, started = expect.dest, 0, False  # started: bytes of this call's transfer have been written
    while True:
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
            etag = meta.get("etag") or ""
            validator = etag if etag and not etag.startswith("W/") else meta.get("last_modified")  # If-Range: strong
            if validator:
                headers["If-Range"] = validator
        try:
            with session.get(target, headers=headers, stream=True, timeout=timeout, allow_redirects=True) as r:
                if r.status_code == 416 and have and length == have:
                    return part  # the part was complete already (killed before the check)
                if r.status_code == 416 and have:
                    print(f"{source}: the server refused to resume {part.name}; starting again from 0")
                    _discard(part)
                    have, meta = 0, {}
                    continue
                r.raise_for_status()
                if have and r.status_code == 206:
                    start, total = _content_range(r.headers.get("Content-Range"))
                    changed = meta.get("etag") and r.headers.get("ETag") and r.headers["ETag"] != meta["etag"]
                    if start != have or (length and total and total != length) or changed:
                        print(f"{source}: the server's file changed since {part.name} was begun; starting again "
                              f"from 0")
                        _discard(part)
                        have, meta = 0, {}
                        continue
                    length = total or length
                    print(f"resuming {dest.name} at {size_text(have)} of {size_text(length) if length else '?'}")
                else:
                    if have:
                        print(f"{source}: the server sent the whole file instead of the rest (it does not resume, "
                              f"or the file changed); starting again from 0")
                    have = 0
                    cl = r.headers.get("Content-Length")
                    length = int(cl) if cl and cl.isdigit() and not r.headers.get("Content-Encoding") else None
                    if reader != "text" and "text/html" in r.headers.get("Content-Type", ""):
                        raise DownloadError(
                            f"{source}: the server answered a web page (a login, quota or confirmation page?) "
                            f"instead of the file; nothing was kept. Open the URL in a browser to see what it says, "
                            f"or {expect.by_hand()}")
                    if expect.size and length and length != expect.size:
                        raise ChecksumError(f"{source} offers {length} bytes, not the {expect.size} expected: another "
                                            f"file or version; nothing was kept. Check the URL, or "
                                            f"{expect.by_hand()}")
                _room(dest.parent, length or expect.size, have)
                meta = {"source": target, "url": expect.url, "etag": r.headers.get("ETag"),
                        "last_modified": r.headers.get("Last-Modified"), "length": length}
                side.write_text(json.dumps(meta) + "\n")
                started = True
                with open(part, "ab" if have else "wb") as f, \
                        tqdm(total=length, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                             desc=dest.name, disable=not progress, leave=False) as bar:
                    for block in r.iter_content(1 << 16):
                        f.write(block)
                        have += len(block)
                        bar.update(len(block))
            if length is not None and have < length:
                raise _BrokeOff()
            if length is not None and have > length:
                _discard(part)
                raise DownloadError(f"{source}: the server sent more than the {length} bytes it announced; nothing "
                                    f"was kept. Try again later, or {expect.by_hand()}")
            return part
        except (_BrokeOff, requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                http.client.HTTPException) as err:
            have = part.stat().st_size if part.exists() else 0
            if not started or retries >= RETRIES:
                if not started:
                    raise _explain(err, source, expect, timeout) from None
                of = f" of {length}" if length else ""
                raise DownloadError(f"{source}: the download broke off ({have}{of} bytes, after {retries} retries); "
                                    f"the bytes so far are kept in {part}. Run again to resume, or "
                                    f"{expect.by_hand()}") from None
            retries += 1
            print(f"{source}: the connection broke off at {size_text(have)}; retrying ({retries} of {RETRIES})")
            time.sleep(0.5 * 2 ** (retries - 1))
        except requests.HTTPError as err:
            raise _explain(err, source, expect, timeout) from None
        except NoRoom:
            raise
        except OSError as err:
            if err.errno == errno.ENOSPC:
                need = f"needs {size_text(length)} in all, " if length else ""
                raise NoRoom(f"the disk is full at {dest.parent}: {need}the {size_text(have)} so far are kept in "
                             f"{part}. Free some space and run again to resume") from None
            raise _explain(err, source, expect, timeout) from None
        except (DownloadError, ChecksumError):
            _discard(part)
            raise


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    m = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (value or "").strip())
    if not m:
        return None, None
    return int(m.group(1)), int(m.group(2)) if m.group(2) != "*" else None


# --- Google Drive ---------------------------------------------------------------------------------------------------
def _gdown(url: str, dest: Path, expect: _Expected, *, progress: bool, timeout: float) -> Path:
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
        raise _explain(err, url, expect, timeout) from None
    finally:
        requests.Session.request = plain
    return out


def _explain(err: Exception, url: str, expect: _Expected, timeout: float) -> Exception:
    """The :class:`DownloadError` that says what went wrong and what to do (``err`` itself if it is none of these)."""
    if isinstance(err, (DownloadError, ChecksumError)):
        return err
    by_hand = f"or {expect.by_hand()}"
    status = getattr(err, "code", None) or getattr(getattr(err, "response", None), "status_code", None)
    reason = getattr(err, "reason", None)
    if isinstance(err, (urllib.error.HTTPError, requests.HTTPError)) and status:
        what = ("the file is not there (moved, or a wrong URL): check the URL" if 400 <= status < 500
                else "a server error: try again later")
        return DownloadError(f"{url}: the server answered HTTP {status}, {what}, {by_hand}")
    if isinstance(err, (TimeoutError, requests.Timeout)) or isinstance(reason, TimeoutError):
        return DownloadError(f"{url}: no answer within {timeout:g} s (the server or the network is down or slow); "
                             f"nothing was kept. Try again later or with a larger timeout=, {by_hand}")
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return NoRoom(f"the disk is full at {expect.dest.parent}: free some space and run again; nothing was kept")
    if type(err).__module__.startswith("gdown"):
        said = " ".join(str(err).split())[:300]
        return DownloadError(f"{url}: Google Drive did not hand out the file ({said}); nothing was "
                             f"kept. Open the URL in a browser (a permission or quota page?), {by_hand}")
    if isinstance(err, (OSError, http.client.HTTPException, requests.RequestException, ValueError)):
        return DownloadError(f"could not download {url} ({type(err).__name__}: {err}); nothing was kept. This needs "
                             f"internet (the colab and paper scales download; tiny runs offline: COURSE_SCALE=tiny), "
                             f"{by_hand}")
    return err

