"""Downloads for the ``colab`` and ``paper`` scales: several sources, resumed after an interruption, verified before
use.

``fetch(url, reader=..., mirrors=(...))`` downloads a file once into the download folder (``$COURSE_DOWNLOADS``,
by default ``$COURSE_CACHE/downloads``: :func:`lib.storage.cache.downloads_dir`) and returns its path there. ``url`` is
tried first, then each of ``mirrors`` (URLs holding the same bytes), until one gives the expected file.

**The manual path.** The final path in the download folder (named in every error) is looked at first: a file
already there, downloaded earlier or put there by hand after fetching it in a browser, is checked exactly like a
download and used.

**The transfer** (:mod:`lib.storage.transfer`). HTTP(S) goes through ``requests`` into ``<final name>.part`` beside
the final path, with a sidecar ``<final name>.part.json``; a transfer that breaks off keeps the part, is retried
within the call (up to :data:`lib.storage.transfer.RETRIES` times) and resumed by the next call with an HTTP
``Range`` request guarded by ``If-Range``. Google Drive goes through ``gdown`` (:mod:`lib.storage.drive`). Before any
byte is written, the free space of the download folder is checked against ``size=`` or the server's length. The
finished file is checked, then moved to its final name (an atomic rename), so a file under the final name is always
complete.

**The checks** (:mod:`lib.storage.verification`), in order: the length (a truncated transfer; ``size=`` when
given), the first bytes (a web page instead of the file, unless ``reader="text"``), then the digests, by what is
published:

- ``sha256=`` (64 hex digits): the whole digest (``verified_by="sha256"``);
- ``hash_prefix=``: the start of the digest, torch.hub's convention of ``name-<prefix>.ext``
  (:func:`lib.storage.hashes.hub_prefix` reads it from the URL; ``verified_by="hash_prefix"``);
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
Errors (:mod:`lib.storage.errors`) are ``DownloadError`` (no source could be fetched; ``NoRoom`` when the disk is
too small) or ``ChecksumError`` (the bytes are not the expected ones), each naming the sources tried, the manual
path, and what to do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from lib.storage import cache, drive, hashes, transfer, verification
from lib.storage.errors import BadURLError, ChecksumError, DownloadError, NoRoom, explain, first_sentence, room
from lib.storage.verification import RECORD, Expected

READERS = frozenset({"PIL", "soundfile", "safetensors", "torch.load(weights_only=True)", "json", "pycocotools",
                     "zip", "tar", "text"})
DRIVE_URL = "https://drive.google.com/uc?export=download&id={}"

_LOG: list[dict] = []


def downloads() -> list[dict]:
    """This process's fetches, in order (copies)."""
    return [dict(entry) for entry in _LOG]


def _log(entry: dict) -> None:
    _LOG.append(entry)
    if os.environ.get("COURSE_DOWNLOAD_LOG"):
        with open(os.environ["COURSE_DOWNLOAD_LOG"], "a") as f:
            f.write(json.dumps(entry) + "\n")


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
        known = verification.manifest(mirror, timeout).get(url, {})
        truth = str(known.get("sha256") or "").lower()
        if not truth:
            raise DownloadError(f"{url} is not in the mirror's manifest {mirror}/manifest.json: add it there with "
                                f"its sha256, or unset COURSE_MIRROR to download from the original host")
        sha256 = truth if sha256 else sha256
        hash_prefix = truth[:len(hash_prefix)] if hash_prefix else hash_prefix
        md5 = str(known.get("md5", "")).lower() or None if md5 else md5
        size = known.get("bytes") if size else size
    expect = Expected(url, dest, record_dir, sha256, hash_prefix, md5, size, truth)

    cached = dest.exists()
    source = "local"
    if cached:
        if reader != "text":
            verification.refuse_web_page(dest, url, dest, local=True)
        digest, how = verification.check(dest, expect, cached=True)
    else:
        digest, how, source = _download(sources, expect, reader=reader, mirror=mirror, progress=progress,
                                        timeout=timeout)
    if how in ("first_use", "md5"):
        verification.record_first_use(record_dir, dest.name, url, digest, dest.stat().st_size)
    entry = {"url": url, "source": source, "path": str(dest), "bytes": dest.stat().st_size, "sha256": digest,
             "verified_by": how, "loaded_with": reader, "mirror": bool(mirror), "cached": cached}
    _log(entry)
    return dest


def checked(path: str | os.PathLike, url: str, *, reader: str, sha256: str | None = None, record_as: str,
            client: str, cached: bool = False, timeout: float = 60) -> Path:
    """Check a file that the publisher's own client (``client``, e.g. ``huggingface_hub``) downloaded from ``url``
    as :func:`fetch` checks its downloads (the ``sha256=`` given; without one, the first-use record under the name
    ``record_as``; under ``$COURSE_MIRROR``, the mirror's manifest), log it like a fetch, and return its path."""
    if reader not in READERS:
        raise ValueError(f"reader={reader!r} is not one that cannot run code; use one of {sorted(READERS)}")
    path, record_dir = Path(path), cache.cache_dir("downloads")
    mirror = os.environ.get("COURSE_MIRROR", "").rstrip("/")
    truth = str(verification.manifest(mirror, timeout).get(url, {}).get("sha256") or "").lower() if mirror else None
    if mirror and not truth:
        raise DownloadError(f"{url} is not in the mirror's manifest {mirror}/manifest.json: add it there with its "
                            f"sha256, or unset COURSE_MIRROR to download from the original host")
    digest = hashes.sha256sum(path)
    record = verification.records(record_dir).get(record_as, {})
    if sha256:
        expected, how, where = (truth or sha256).lower(), "sha256", "the sha256 published for it"
    else:
        expected, how = (truth or record.get("sha256") or digest).lower(), "first_use"
        where = "the mirror's manifest" if truth else f"the first-use record {record_dir / RECORD}"
    if digest != expected:
        raise ChecksumError(f"{url} ({client}'s copy at {path}) has sha256 {digest}, not {expected} ({where}): "
                            f"delete that file and run again to download it afresh")
    if how == "first_use" and not truth:
        verification.record_first_use(record_dir, record_as, url, digest, path.stat().st_size)
    entry = {"url": url, "source": url, "path": str(path), "bytes": path.stat().st_size, "sha256": digest,
             "verified_by": how, "loaded_with": reader, "mirror": bool(mirror), "cached": cached, "client": client}
    _log(entry)
    return path


def _safe_name(name: str) -> str:
    """``name`` if it is a plain file name (it stays inside the download folder), else ValueError."""
    if (not name or name in (".", "..") or "/" in name or "\\" in name or os.sep in name
            or (os.altsep and os.altsep in name) or "\0" in name or Path(name).is_absolute()):
        raise ValueError(f"filename={name!r} must be a plain file name (no folders, no '..'): the file stays in the "
                         f"download folder")
    return name



def _download(sources: list[str], expect: Expected, *, reader, mirror, progress, timeout) -> tuple[str, str, str]:
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
                print(f"{source} failed: {first_sentence(err, source)}")
    if len(failures) == 1:
        raise failures[0][1]
    kind = ChecksumError if any(isinstance(e, ChecksumError) for _, e in failures) else DownloadError
    tried = "\n".join(f"  - {s}: {first_sentence(e, s)}" for s, e in failures)
    raise kind(f"{expect.dest.name} could not be downloaded from any of its {len(failures)} sources:\n{tried}\n"
               f"Try again later, or {expect.by_hand()}")


def _one_source(source, expect: Expected, *, reader, mirror, progress, timeout) -> tuple[str, str]:
    """Download one source into the part, check it, move it to ``expect.dest``; (sha256, verified_by)."""
    parts = urlparse(source)
    target = source
    if mirror:
        target = f"{mirror}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    dest = expect.dest
    if parts.netloc in drive.DRIVE_HOSTS:
        room(dest.parent, expect.size, 0)
        done = drive.download(source, dest, expect, progress=progress, timeout=timeout)
    elif parts.scheme == "file":
        room(dest.parent, expect.size, 0)
        done = dest.with_name(dest.name + ".part")
        try:
            shutil.copyfile(url2pathname(parts.path), done)
        except OSError as err:
            done.unlink(missing_ok=True)
            raise explain(err, source, dest, timeout) from None
    else:
        done = transfer.get(target, expect, source=source, reader=reader, progress=progress, timeout=timeout)
    try:
        if reader != "text":
            verification.refuse_web_page(done, source, dest)
        digest, how = verification.check(done, expect, cached=False, source=source)
    except (DownloadError, ChecksumError):
        transfer.discard(done)
        raise
    os.replace(done, dest)
    transfer.sidecar(dest).unlink(missing_ok=True)
    return digest, how
