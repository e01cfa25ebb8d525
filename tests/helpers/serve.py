"""A quiet static-file HTTP server on 127.0.0.1 for tests (downloads, the browser test).

A file at ``drive.google.com/uc`` is served as Google Drive serves a large file (``colab/rehearsal/drive_page.py``):
``/drive.google.com/uc?...&id=ID`` answers the confirmation page, the usercontent URL it points to the file."""

import contextlib
import functools
import http.server
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "colab" / "rehearsal"))
import drive_page  # noqa: E402
import loopback  # noqa: E402


@contextlib.contextmanager
def serve(directory):
    """Serve ``directory`` on a free loopback port; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            parts, drive_file = urlsplit(self.path), Path(directory) / "drive.google.com" / "uc"
            query = parse_qs(parts.query)
            if parts.path == "/drive.google.com/uc" and "id" in query and drive_file.exists():
                self._answer(drive_page.page(query["id"][0], "uc", drive_file.stat().st_size), "text/html")
            elif parts.path == "/drive.usercontent.google.com/download" and drive_file.exists():
                self._answer(drive_file.read_bytes(), "application/octet-stream",
                             {"Content-Disposition": 'attachment; filename="uc.bin"'})
            else:
                super().do_GET()

        def _answer(self, body, kind, headers=None):
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

    with loopback.serving(functools.partial(Quiet, directory=str(directory))) as url:
        yield url
