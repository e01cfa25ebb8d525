"""Downloads for the ``colab`` and ``paper`` scales, verified before use.

``fetch(url, reader=...)`` downloads ``url`` once into ``$COURSE_CACHE/downloads`` (:mod:`lib.cache`) and returns
its path. HTTP goes through ``torch.hub.download_url_to_file`` (tqdm progress bar), Google Drive through ``gdown``.
Both write into a private temporary folder beside the final file; the file is moved to its final name only after
every check passed, so a failed or interrupted download never leaves a file under the final name and the next call
starts afresh. The temporary folder is removed on every error; only a killed process can leave one behind.

Checks, in order: the server's ``Content-Length`` (a truncated transfer), the first bytes (an HTML page instead of
the file, unless ``reader="text"``), then the sha256, by what is published:

- ``sha256=`` (64 hex digits): the whole digest (``verified_by="sha256"``);
- ``hash_prefix=``: the start of the digest, torch.hub's convention of ``name-<prefix>.ext``
  (:func:`hub_prefix` reads it from the URL; ``verified_by="hash_prefix"``);
- neither: the digest is recorded at the first download in ``first-use-sha256.json`` in the download folder and
  printed, and every later use is checked against it (``verified_by="first_use"``).

A file already in the folder is checked the same way before it is returned. ``reader`` names how the caller will
read the file and must be one of :data:`READERS`, readers that cannot run code: nothing downloaded is unpickled.

``$COURSE_MIRROR`` (e.g. ``http://127.0.0.1:8765``): every download goes to ``{MIRROR}/{host}{path}[?query]``, and
the expected digest comes from ``{MIRROR}/manifest.json`` (``{"files": {"<original url>": {"sha256": ...}}}``,
read once per process): in place of ``sha256=``, as the prefix of the same length in place of ``hash_prefix=``,
and in addition to the first-use record. A URL missing from the manifest is an error.

Every network wait is bounded by ``timeout`` seconds. Every fetch is appended to :func:`downloads` and, when
``$COURSE_DOWNLOAD_LOG`` names a file, written to it as one JSON line. Errors are :class:`DownloadError` (the
transfer failed) or :class:`ChecksumError` (the bytes are not the expected ones), each saying what to do.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import math
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import requests
import torch.hub

from lib import cache
from lib.checkpoint import atomic_path

READERS = frozenset({"PIL", "soundfile", "safetensors", "torch.load(weights_only=True)", "json", "pycocotools",
                     "zip", "tar", "text"})
DRIVE_URL = "https://drive.google.com/uc?export=download&id={}"
DRIVE_HOSTS = ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")
RECORD = "first-use-sha256.json"

_LOG: list[dict] = []
_MANIFESTS: dict[str, dict] = {}


class DownloadError(RuntimeError):
    """The file could not be fetched (no network, bad URL, server error, timeout, full disk, a web page)."""


class BadURLError(DownloadError, ValueError):
    """The URL is not an http(s):// or file:// URL."""


class ChecksumError(ValueError):
    """The file's sha256 differs from the expected one."""


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


def hub_prefix(url: str) -> str:
    """The sha256 prefix in a torch.hub-style file name (``...-446d5c7f.pth.tar`` → ``446d5c7f``)."""
    m = torch.hub.HASH_REGEX.search(Path(urlparse(url).path).name)
    if not m or not m.group(1):
        raise ValueError(f"no sha256 prefix (name-<hex>.ext, torch.hub's convention) in the file name of {url}")
    return m.group(1)


def downloads() -> list[dict]:
    """This process's fetches, in order (copies)."""
    return [dict(entry) for entry in _LOG]


def fetch_drive(file_id: str, *, reader: str, sha256: str | None = None, hash_prefix: str | None = None,
                filename: str, cache_dir=None, progress: bool = True, timeout: float = 60) -> Path:
    """:func:`fetch` of a Google Drive file by its id (downloaded with ``gdown``)."""
    return fetch(DRIVE_URL.format(file_id), reader=reader, sha256=sha256, hash_prefix=hash_prefix,
                 filename=filename, cache_dir=cache_dir, progress=progress, timeout=timeout)


def fetch(url: str, *, reader: str, sha256: str | None = None, hash_prefix: str | None = None,
          filename: str | None = None, cache_dir=None, progress: bool = True, timeout: float = 60) -> Path:
    """Download ``url`` once, verify it (see the module docstring), log it, return its path."""
    if reader not in READERS:
        raise ValueError(f"reader={reader!r} is not one that cannot run code; use one of {sorted(READERS)}")
    if sha256 and hash_prefix:
        raise ValueError("give sha256= or hash_prefix=, not both")
    if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256 := sha256.lower()):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    if hash_prefix is not None and not re.fullmatch(r"[0-9a-f]{8,64}", hash_prefix := hash_prefix.lower()):
        raise ValueError(f"hash_prefix must be 8 to 64 hex digits, got {hash_prefix!r}")
    parts = urlparse(url)
    if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.netloc):
        raise BadURLError(f"{url!r} is not a download URL (http://, https:// or file://): check the URL")
    folder = Path(cache_dir) if cache_dir is not None else cache.cache_dir("downloads")
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / (filename or Path(parts.path).name or "download")

    source, truth = url, None
    mirror = os.environ.get("COURSE_MIRROR", "").rstrip("/")
    if mirror:
        truth = _manifest(mirror, timeout).get(url, {}).get("sha256")
        if not truth:
            raise DownloadError(f"{url} is not in the mirror's manifest {mirror}/manifest.json: add it there with "
                                f"its sha256, or unset COURSE_MIRROR to download from the original host")
        truth = str(truth).lower()
        sha256 = truth if sha256 else sha256
        hash_prefix = truth[:len(hash_prefix)] if hash_prefix else hash_prefix
        source = f"{mirror}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")

    cached = dest.exists()
    if cached:
        digest, how = _check(dest, url, folder, sha256, hash_prefix, truth, cached=True)
    else:
        with _scratch(folder) as scratch:
            part = scratch / dest.name
            _get(source, part, url=url, dest=dest, drive=parts.netloc in DRIVE_HOSTS, progress=progress,
                 timeout=timeout)
            if reader != "text":
                _refuse_web_page(part, url, dest)
            digest, how = _check(part, url, folder, sha256, hash_prefix, truth, cached=False)
            os.replace(part, dest)
    if how == "first_use":
        _record_first_use(folder, dest, url, digest)
    _log({"url": url, "path": str(dest), "bytes": dest.stat().st_size, "sha256": digest, "verified_by": how,
          "loaded_with": reader, "mirror": bool(mirror), "cached": cached})
    return dest


def checked(path: str | os.PathLike, url: str, *, reader: str, sha256: str | None = None, record_as: str,
            client: str, cached: bool = False, timeout: float = 60) -> Path:
    """Check a file that the publisher's own client (``client``, e.g. ``huggingface_hub``) downloaded from ``url``
    as :func:`fetch` checks its downloads (the ``sha256=`` given; without one, the first-use record under the name
    ``record_as``; under ``$COURSE_MIRROR``, the mirror's manifest), log it like a fetch, and return its path."""
    if reader not in READERS:
        raise ValueError(f"reader={reader!r} is not one that cannot run code; use one of {sorted(READERS)}")
    path, folder = Path(path), cache.cache_dir("downloads")
    mirror = os.environ.get("COURSE_MIRROR", "").rstrip("/")
    truth = _manifest(mirror, timeout).get(url, {}).get("sha256") if mirror else None
    if mirror and not truth:
        raise DownloadError(f"{url} is not in the mirror's manifest {mirror}/manifest.json: add it there with its "
                            f"sha256, or unset COURSE_MIRROR to download from the original host")
    digest = sha256sum(path)
    record = _records(folder).get(record_as, {})
    if sha256:
        expected, how, where = (truth or sha256).lower(), "sha256", "the sha256 published for it"
    else:
        expected, how = (truth or record.get("sha256") or digest).lower(), "first_use"
        where = "the mirror's manifest" if truth else f"the first-use record {folder / RECORD}"
    if digest != expected:
        raise ChecksumError(f"{url} ({client}'s copy at {path}) has sha256 {digest}, not {expected} ({where}): "
                            f"delete that file and run again to download it afresh")
    if how == "first_use" and not truth:
        _record_first_use(folder, path, url, digest, name=record_as)
    _log({"url": url, "path": str(path), "bytes": path.stat().st_size, "sha256": digest, "verified_by": how,
          "loaded_with": reader, "mirror": bool(mirror), "cached": cached, "client": client})
    return path


def _log(entry: dict) -> None:
    _LOG.append(entry)
    if os.environ.get("COURSE_DOWNLOAD_LOG"):
        with open(os.environ["COURSE_DOWNLOAD_LOG"], "a") as f:
            f.write(json.dumps(entry) + "\n")


# --- the checks ---------------------------------------------------------------------------------------------------
def _check(path: Path, url: str, folder: Path, sha256, hash_prefix, truth, *, cached: bool) -> tuple[str, str]:
    """(sha256 of ``path``, verified_by), or :class:`ChecksumError`."""
    digest = sha256sum(path)
    record = _records(folder).get(path.name, {})
    if sha256:
        expected, how, where = sha256, "sha256", "the sha256 given for it"
    elif hash_prefix:
        expected, how, where = hash_prefix, "hash_prefix", "the sha256 prefix published in its name"
    elif truth and digest != truth:
        expected, how, where = truth, "first_use", "the mirror's manifest"
    else:
        expected, how, where = record.get("sha256", digest), "first_use", f"the first-use record {folder / RECORD}"
        if record and record.get("url") != url:
            raise ChecksumError(f"{folder / path.name} was recorded for {record.get('url')}, not {url}: pass another "
                                f"filename=, or delete the file and its entry in {folder / RECORD}")
    if digest.startswith(expected):
        return digest, how
    if cached:
        raise ChecksumError(f"the cached file {path} has sha256 {digest}, not {expected} ({where}): it is damaged "
                            f"or another version; delete it and run again to download it afresh")
    fix = (f"if the publisher really changed the file, delete its entry in {folder / RECORD} to record the new one"
           if how == "first_use" and record else "try again later, and compare the value with the publisher's")
    raise ChecksumError(f"{url} downloaded, but its sha256 is {digest}, not {expected} ({where}); nothing was kept. "
                        f"The file on the server changed or the transfer was corrupted: {fix}")


def _refuse_web_page(path: Path, url: str, dest: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    if head.startswith(b"<!doctype html") or b"<html" in head:
        raise DownloadError(f"{url}: the server answered a web page (a login or confirmation page?) instead of the "
                            f"file; nothing was kept. Open the URL in a browser to see what it says, or put the file "
                            f"at {dest} by hand")


def _records(folder: Path) -> dict:
    try:
        return json.loads((folder / RECORD).read_text())
    except FileNotFoundError:
        return {}


def _record_first_use(folder: Path, dest: Path, url: str, digest: str, name: str | None = None) -> None:
    records = _records(folder)
    name = name or dest.name
    if name in records:
        return
    records[name] = {"url": url, "sha256": digest, "bytes": dest.stat().st_size}
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


# --- the transfer -------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _scratch(folder: Path):
    """A private temporary folder inside ``folder`` (same file system: the final move is a rename), removed after."""
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=folder))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _get(source: str, part: Path, *, url: str, dest: Path, drive: bool, progress: bool, timeout: float) -> None:
    """Download ``source`` to ``part``; every failure becomes a :class:`DownloadError` that says what to do."""
    responses = []
    try:
        if drive:
            _gdown(url, part, progress, timeout)
        else:
            with _hub_timeout(timeout, responses):
                torch.hub.download_url_to_file(source, str(part), progress=progress)
    except Exception as err:  # noqa: BLE001 -- each kind is translated below, anything else re-raised
        length = _content_length(responses)
        raise _explain(err, url, dest, timeout, length) from None
    length = _content_length(responses)
    if length is not None and part.stat().st_size != length:
        raise DownloadError(f"{url}: the download broke off ({part.stat().st_size} of {length} bytes); nothing was "
                            f"kept. Run again")


def _content_length(responses) -> int | None:
    value = responses[-1].headers.get("Content-Length") if responses else None
    return int(value) if value and value.isdigit() else None


@contextlib.contextmanager
def _hub_timeout(timeout: float, responses: list):
    """torch.hub's ``urlopen`` (it passes no timeout) with ``timeout``, recording each response (Content-Length)."""
    plain = torch.hub.urlopen

    def urlopen(request, *args, **kwargs):
        response = plain(request, *args, timeout=timeout, **kwargs)
        responses.append(response)
        return response

    torch.hub.urlopen = urlopen
    try:
        yield
    finally:
        torch.hub.urlopen = plain


def _gdown(url: str, part: Path, progress: bool, timeout: float) -> None:
    """gdown on the Drive ``url``, every request with ``timeout`` (gdown 5, Colab's, passes none). Under
    ``$COURSE_MIRROR`` each request to a Drive host goes to the mirror instead, so gdown meets Drive's own flow
    there (the confirmation page for a large file, then the drive.usercontent.google.com download)."""
    import gdown

    mirror = os.environ.get("COURSE_MIRROR", "").rstrip("/")
    plain = requests.Session.request

    def request(self, method, target, *args, **kwargs):
        kwargs["timeout"] = kwargs.get("timeout") or timeout
        p = urlparse(target)
        if mirror and p.netloc in DRIVE_HOSTS:
            target = f"{mirror}/{p.netloc}{p.path}" + (f"?{p.query}" if p.query else "")
        return plain(self, method, target, *args, **kwargs)

    requests.Session.request = request
    try:
        gdown.download(url=url, output=str(part), quiet=not progress, use_cookies=False)
    finally:
        requests.Session.request = plain


def _explain(err: Exception, url: str, dest: Path, timeout: float, length: int | None) -> Exception:
    """The :class:`DownloadError` that says what went wrong and what to do (``err`` itself if it is none of these)."""
    by_hand = f"or put the file at {dest} by hand"
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
        need = f"free {math.ceil(length / 2 ** 20)} MB" if length else "free some space"
        return DownloadError(f"the disk is full at {dest.parent}: {need} (the file's size) and run again; nothing "
                             f"was kept")
    if type(err).__module__.startswith("gdown"):
        return DownloadError(f"{url}: Google Drive did not hand out the file ({str(err).strip()[:300]}); nothing was "
                             f"kept. Open the URL in a browser (a permission or quota page?), {by_hand}")
    if isinstance(err, (OSError, http.client.HTTPException, requests.RequestException, ValueError)):
        return DownloadError(f"could not download {url} ({type(err).__name__}: {err}); nothing was kept. This needs "
                             f"internet (the colab and paper scales download; tiny runs offline: COURSE_SCALE=tiny), "
                             f"{by_hand}")
    return err
