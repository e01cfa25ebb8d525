"""HTTP(S) downloads that resume: ``requests`` into ``<final name>.part`` with a sidecar ``<final name>.part.json``
(the source URL and the server's ETag, Last-Modified and length); a later call resumes the part with a ``Range``
request guarded by ``If-Range``, and a connection that breaks off is retried within the call."""

from __future__ import annotations

import errno
import http.client
import json
import re
import time
from pathlib import Path

import requests
from tqdm.auto import tqdm

from lib.storage.errors import ChecksumError, DownloadError, NoRoom, explain, room, size_text
from lib.storage.verification import Expected

RETRIES = 3          # retries of a connection that broke off during one call

# A small requests-based range loop, not huggingface_hub's ``file_download.http_get``: that function is not exported
# by huggingface_hub (no stable API; its keyword arguments have changed between major versions, and its HTTP client
# differs between Colab's 1.27, httpx, and the 2.4 pinned here, httpx2), it raises errors tailored to the Hub, and it
# keeps no validator (ETag, length) that a later process could check before resuming, which is what a learner's
# interrupted multi-GB download needs.
def sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def discard(part: Path) -> None:
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


def get(target: str, expect: Expected, *, source: str, reader: str, progress: bool, timeout: float) -> Path:
    """Download ``target`` into ``<dest>.part``, resuming a part of the same source; returns the complete part."""
    dest = expect.dest
    part, side = dest.with_name(dest.name + ".part"), sidecar(dest)
    meta = _read_sidecar(side)
    have = part.stat().st_size if part.exists() else 0
    if have and (meta.get("source") != target or (expect.size and meta.get("length") not in (None, expect.size))):
        print(f"discarding {part} ({size_text(have)} of another source or version)")
        discard(part)
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
                    discard(part)
                    have, meta = 0, {}
                    continue
                r.raise_for_status()
                if have and r.status_code == 206:
                    start, total = _content_range(r.headers.get("Content-Range"))
                    changed = meta.get("etag") and r.headers.get("ETag") and r.headers["ETag"] != meta["etag"]
                    if start != have or (length and total and total != length) or changed:
                        print(f"{source}: the server's file changed since {part.name} was begun; starting again "
                              f"from 0")
                        discard(part)
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
                room(dest.parent, length or expect.size, have)
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
                discard(part)
                raise DownloadError(f"{source}: the server sent more than the {length} bytes it announced; nothing "
                                    f"was kept. Try again later, or {expect.by_hand()}")
            return part
        except (_BrokeOff, requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                http.client.HTTPException) as err:
            have = part.stat().st_size if part.exists() else 0
            if not started or retries >= RETRIES:
                if not started:
                    raise explain(err, source, expect.dest, timeout) from None
                of = f" of {length}" if length else ""
                raise DownloadError(f"{source}: the download broke off ({have}{of} bytes, after {retries} retries); "
                                    f"the bytes so far are kept in {part}. Run again to resume, or "
                                    f"{expect.by_hand()}") from None
            retries += 1
            print(f"{source}: the connection broke off at {size_text(have)}; retrying ({retries} of {RETRIES})")
            time.sleep(0.5 * 2 ** (retries - 1))
        except requests.HTTPError as err:
            raise explain(err, source, expect.dest, timeout) from None
        except NoRoom:
            raise
        except OSError as err:
            if err.errno == errno.ENOSPC:
                need = f"needs {size_text(length)} in all, " if length else ""
                raise NoRoom(f"the disk is full at {dest.parent}: {need}the {size_text(have)} so far are kept in "
                             f"{part}. Free some space and run again to resume") from None
            raise explain(err, source, expect.dest, timeout) from None
        except (DownloadError, ChecksumError):
            discard(part)
            raise


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    m = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (value or "").strip())
    if not m:
        return None, None
    return int(m.group(1)), int(m.group(2)) if m.group(2) != "*" else None
