"""What a download can go wrong with, and the messages that say what to do: the error classes, the free-space check
and the translation of a network or server failure into a :class:`DownloadError` that names the manual path."""

from __future__ import annotations

import errno
import http.client
import shutil
import urllib.error
from pathlib import Path

import requests


class DownloadError(RuntimeError):
    """The file could not be fetched (no network, bad URL, server error, timeout, full disk, a web page)."""


class BadURLError(DownloadError, ValueError):
    """The URL is not an http(s):// or file:// URL."""


class NoRoom(DownloadError):
    """The download folder has less free space than the file needs."""


class ChecksumError(ValueError):
    """The file's sha256 (or md5, or length) differs from the expected one."""


def size_text(n: float) -> str:
    """``13.2 GB``, ``840 MB``, ``12 kB`` (decimal units, as disk sizes are sold)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if unit == "GB" else f"{n / scale:.0f} {unit}"
    return f"{int(n)} bytes"


def by_hand(dest: Path) -> str:
    """The manual path, as every error names it."""
    return f"put the file at {dest} by hand (fetched in a browser), then run again"


def room(folder: Path, size: int | None, have: int) -> None:
    """:class:`NoRoom` unless ``folder``'s disk has room for the ``size - have`` bytes still to come."""
    if not size:
        return
    free = shutil.disk_usage(folder).free
    if size - have > free:
        raise NoRoom(f"not enough room for the download: needs {size_text(size - have)}, {size_text(free)} free at "
                     f"{folder}. Free some space (or point COURSE_DOWNLOADS at a larger disk) and run again")


def explain(err: Exception, url: str, dest: Path, timeout: float) -> Exception:
    """The :class:`DownloadError` that says what went wrong and what to do (``err`` itself if it is none of these)."""
    if isinstance(err, (DownloadError, ChecksumError)):
        return err
    manual = f"or {by_hand(dest)}"
    status = getattr(err, "code", None) or getattr(getattr(err, "response", None), "status_code", None)
    reason = getattr(err, "reason", None)
    if isinstance(err, (urllib.error.HTTPError, requests.HTTPError)) and status:
        what = ("the file is not there (moved, or a wrong URL): check the URL" if 400 <= status < 500
                else "a server error: try again later")
        return DownloadError(f"{url}: the server answered HTTP {status}, {what}, {manual}")
    if isinstance(err, (TimeoutError, requests.Timeout)) or isinstance(reason, TimeoutError):
        return DownloadError(f"{url}: no answer within {timeout:g} s (the server or the network is down or slow); "
                             f"nothing was kept. Try again later or with a larger timeout=, {manual}")
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return NoRoom(f"the disk is full at {dest.parent}: free some space and run again; nothing was kept")
    if type(err).__module__.startswith("gdown"):
        said = " ".join(str(err).split())[:300]
        return DownloadError(f"{url}: Google Drive did not hand out the file ({said}); nothing was "
                             f"kept. Open the URL in a browser (a permission or quota page?), {manual}")
    if isinstance(err, (OSError, http.client.HTTPException, requests.RequestException, ValueError)):
        return DownloadError(f"could not download {url} ({type(err).__name__}: {err}); nothing was kept. This needs "
                             f"internet (the colab and paper scales download; tiny runs offline: COURSE_SCALE=tiny), "
                             f"{manual}")
    return err


def first_sentence(err: Exception, source: str = "") -> str:
    """What went wrong, without the advice (said once after the list of sources)."""
    text = str(err)
    for lead in (f"{source}: ", f"{source} downloaded, but "):
        text = text.removeprefix(lead) if source else text
    for cut in ("; nothing was kept", ". Run again", ", or put the file", ". Open the URL"):
        text = text.split(cut)[0]
    return text.strip()
