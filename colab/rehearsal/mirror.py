"""The Colab rehearsal's loopback mirror: a miniature file in the real format under each real URL's path.

    python colab/rehearsal/mirror.py build FOLDER     # make the files and FOLDER/manifest.json (idempotent)

:func:`serve` serves FOLDER on 127.0.0.1 only: ``{mirror}/{host}{path}[?query]`` answers with the miniature of
``https://{host}{path}[?query]``, and ``{mirror}/manifest.json`` lists ``{"files": {url: {"sha256", "md5", "bytes", "path", "file", "vouched_by",
"verified"}}}`` (the last three from the maker's ``FORMATS``). ``lib.storage.download`` sends every download there when
``COURSE_MIRROR`` is set and checks each file against the manifest with the same code that checks a real download
against its published checksum. Like the real hosts, the mirror answers ``HEAD`` and ``Range`` requests (``206``
with ``Accept-Ranges`` and an ``ETag``), so an interrupted download resumes against it as against them.

Each maker (``makers/``, one module per chapter) writes what the real file is, at a small size where the format
allows it. A Google Drive URL is answered as Drive answers a large file (``drive_page``): a confirmation page, then
the file at ``drive.usercontent.google.com``. A Hugging Face hub URL (``huggingface.co/<repo>/resolve/<rev>/<file>``)
is answered as the hub answers ``huggingface_hub`` (``hub_answer``: HEAD and GET with the hub's metadata headers,
ranges for a resumed download, at any revision), so ``HF_ENDPOINT={mirror}/huggingface.co`` serves open_clip's
and timm's own downloads.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import http.server
import json
import re
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the course's lib, for its constants and sha256sum
sys.path.insert(0, str(Path(__file__).resolve().parent))

import drive_page  # noqa: E402
import hub_answer  # noqa: E402
import loopback  # noqa: E402
from makers import FORMATS, MAKERS, wanted_urls  # noqa: E402


def local_name(url: str) -> str:
    """Where the mirror keeps ``url``: its host and path (and query), as served under the mirror."""
    parts = urlsplit(url)
    return parts.netloc + parts.path + (f"?{parts.query}" if parts.query else "")


def maker_stamp(maker) -> str:
    """The sha256 of the code that makes a miniature (its maker's module and the makers' shared helpers): a file made
    by older code is made again."""
    source = Path(inspect.getsourcefile(maker))
    h = hashlib.sha256(source.read_bytes())
    h.update((source.parent / "common.py").read_bytes())
    return h.hexdigest()


def build(folder: str | Path, urls: list[str] | None = None) -> dict:
    """Make the miniature of each URL (skipping those already made by the same maker code) and write
    ``manifest.json``."""
    folder = Path(folder)
    files = {}
    for url in urls if urls is not None else wanted_urls():
        pattern, maker = next(((p, fn) for p, fn in MAKERS if re.fullmatch(p, url)), (None, None))
        if maker is None:
            raise ValueError(f"the mirror has no maker for {url}: add one to colab/rehearsal/makers/")
        if not FORMATS.get(pattern, {}).get("vouched_by"):
            raise ValueError(f"the maker of {url} ({pattern}) says nothing vouches for its format: add its entry "
                             f"to FORMATS in colab/rehearsal/makers/")
        path = folder / "files" / local_name(url).replace("?", "%3F")
        stamp, want = path.with_name(path.name + ".maker"), maker_stamp(maker)
        if not path.exists() or not stamp.exists() or stamp.read_text() != want:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(maker(url))
            tmp.replace(path)
            stamp.write_text(want)
        sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
                md5.update(block)
        files[url] = {"sha256": sha.hexdigest(), "md5": md5.hexdigest(), "bytes": path.stat().st_size,
                      "path": str(path.relative_to(folder)),
                      **{k: FORMATS[pattern][k] for k in ("file", "vouched_by", "verified")}}
    manifest = {"files": files}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


@contextlib.contextmanager
def serve(folder: str | Path):
    """Serve a built mirror on a free 127.0.0.1 port; yields its base URL. Logs each request it answers."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    routes = {local_name(url): folder / entry["path"] for url, entry in manifest["files"].items()}
    routes["manifest.json"] = folder / "manifest.json"
    pages, named = {}, {}  # Google Drive: a confirmation page per file id, the file at the usercontent URL
    for url, entry in manifest["files"].items():
        parts = urlsplit(url)
        if parts.netloc == "drive.google.com" and "id" in parse_qs(parts.query):
            file_id, path = parse_qs(parts.query)["id"][0], routes.pop(local_name(url))
            pages[file_id] = drive_page.page(file_id, Path(path).name, path.stat().st_size)
            routes[drive_page.download_key(file_id)] = path
            named[drive_page.download_key(file_id)] = f"{file_id}.bin"
    served: list[str] = []

    etags = {key: f'"{entry["sha256"][:32]}"' for key, entry in
             ((local_name(u), e) for u, e in manifest["files"].items())}
    for key in named:  # the Drive downloads, now routed under their usercontent key
        etags[key] = f'"{drive_page.uuid(key)[:32]}"'

    hub = hub_answer.files(manifest)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.do_GET(head=True)

        def do_GET(self, head: bool = False):
            parts = urlsplit(self.path)
            key = unquote(parts.path.lstrip("/")) + (f"?{parts.query}" if parts.query else "")
            hit = hub_answer.parse(unquote(parts.path.lstrip("/")))
            if hit:
                self._hub(hit, head)
                return
            path = routes.get(key)
            drive_id = parse_qs(parts.query).get("id", [None])[0] if parts.path == "/drive.google.com/uc" else None
            key = drive_id if drive_id in pages else key  # Drive's page, whatever else the query holds (gdown 6: ?id=)
            if path is None and key not in pages:
                self.send_error(404, f"not on the mirror: {key}")
                return
            body = pages[key] if key in pages else path.read_bytes()
            total = len(body)
            start = loopback.range_start(self.headers, total, etags.get(key)) if key not in pages else 0
            if start is None:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{total}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(total - start))
            self.send_header("Content-Type", "text/html; charset=utf-8" if key in pages else "application/octet-stream")
            if key not in pages:
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", etags.get(key, '"mirror"'))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
            if key in named:
                self.send_header("Content-Disposition", f'attachment; filename="{named[key]}"')
            self.end_headers()
            if not head:
                self.wfile.write(body[start:])
                served.append(key + (f" (from byte {start})" if start else ""))

        def _hub(self, hit, head: bool):
            """A hub file as the hub answers ``huggingface_hub`` (``hub_answer``), or its 404 EntryNotFound."""
            repo, _, name = hit
            if (repo, name) not in hub:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            entry, commit = hub[(repo, name)]
            path = folder / entry["path"]
            size = path.stat().st_size
            span = None if head else hub_answer.byte_range(self.headers.get("Range"), size)
            start, end = span or (0, size - 1)
            self.send_response(206 if span else 200)
            for k, v in hub_answer.headers(entry, commit, size).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end - start + 1))
            if span:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if not head:
                with open(path, "rb") as f:
                    f.seek(start)
                    left = end - start + 1
                    while left > 0 and (block := f.read(min(left, 1 << 20))):
                        self.wfile.write(block)
                        left -= len(block)
                served.append(f"huggingface.co/{repo}/{name}" + (f" (from byte {start})" if start else ""))

        def log_message(self, *args):
            pass

    with loopback.serving(Handler) as url:
        yield url, served


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "build":
        raise SystemExit("usage: python colab/rehearsal/mirror.py build FOLDER")
    m = build(sys.argv[2])
    print(f"mirror: {len(m['files'])} files in {sys.argv[2]}")
