"""The Colab rehearsal's loopback mirror: a miniature file in the real format under each real URL's path.

    python colab/rehearsal/mirror.py build FOLDER     # make the files and FOLDER/manifest.json (idempotent)

:func:`serve` serves FOLDER on 127.0.0.1 only: ``{mirror}/{host}{path}[?query]`` answers with the miniature of
``https://{host}{path}[?query]``, and ``{mirror}/manifest.json`` lists ``{"files": {url: {"sha256", "path"}}}``.
``lib.download`` sends every download there when ``COURSE_MIRROR`` is set and checks each file against the
manifest with the same code that checks a real download against its published checksum.

Each maker (``makers/``, one module per chapter) writes what the real file is, at a small size where the format
allows it. A Google Drive URL is answered as Drive answers a large file (``drive_page``): a confirmation page, then
the file at ``drive.usercontent.google.com``. A Hugging Face hub URL (``huggingface.co/<repo>/resolve/<rev>/<file>``)
is answered as the hub answers ``huggingface_hub`` (``hub_answer``: HEAD and GET with the hub's metadata headers,
ranges for a resumed download, at any revision), so ``HF_ENDPOINT={mirror}/huggingface.co`` serves open_clip's
and timm's own downloads.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the course's lib, for its constants and sha256sum
sys.path.insert(0, str(Path(__file__).resolve().parent))

import drive_page  # noqa: E402
import hub_answer  # noqa: E402
from makers import MAKERS, wanted_urls  # noqa: E402


def local_name(url: str) -> str:
    """Where the mirror keeps ``url``: its host and path (and query), as served under the mirror."""
    parts = urlsplit(url)
    return parts.netloc + parts.path + (f"?{parts.query}" if parts.query else "")


def build(folder: str | Path, urls: list[str] | None = None) -> dict:
    """Make the miniature of each URL (skipping those already made) and write ``manifest.json``."""
    from lib.download import sha256sum

    folder = Path(folder)
    files = {}
    for url in urls if urls is not None else wanted_urls():
        maker = next((fn for pattern, fn in MAKERS if re.fullmatch(pattern, url)), None)
        if maker is None:
            raise ValueError(f"the mirror has no maker for {url}: add one to colab/rehearsal/makers/")
        path = folder / "files" / local_name(url).replace("?", "%3F")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(maker(url))
            tmp.replace(path)
        files[url] = {"sha256": sha256sum(path),
                      "path": str(path.relative_to(folder))}
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
    hub = hub_answer.files(manifest)
    served: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _hub(self, hit, head: bool):
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
                served.append(f"huggingface.co/{repo}/{name}")

        def do_HEAD(self):
            hit = hub_answer.parse(unquote(urlsplit(self.path).path.lstrip("/")))
            if hit:
                self._hub(hit, head=True)
            else:
                self.send_error(405, "HEAD is answered for Hugging Face hub files only")

        def do_GET(self):
            parts = urlsplit(self.path)
            key = unquote(parts.path.lstrip("/")) + (f"?{parts.query}" if parts.query else "")
            hit = hub_answer.parse(unquote(parts.path.lstrip("/")))
            if hit:
                self._hub(hit, head=False)
                return
            path = routes.get(key)
            drive_id = parse_qs(parts.query).get("id", [None])[0] if parts.path == "/drive.google.com/uc" else None
            key = drive_id if drive_id in pages else key  # Drive's page, whatever else the query holds (gdown 6: ?id=)
            if path is None and key not in pages:
                self.send_error(404, f"not on the mirror: {key}")
                return
            body = pages[key] if key in pages else path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "text/html; charset=utf-8" if key in pages else "application/octet-stream")
            if key in named:
                self.send_header("Content-Disposition", f'attachment; filename="{named[key]}"')
            self.end_headers()
            self.wfile.write(body)
            served.append(key)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "build":
        raise SystemExit("usage: python colab/rehearsal/mirror.py build FOLDER")
    m = build(sys.argv[2])
    print(f"mirror: {len(m['files'])} files in {sys.argv[2]}")
