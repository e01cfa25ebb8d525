"""A loopback HTTP server and the ``Range`` answer of a static file: what the rehearsal's mirror
(``colab/rehearsal/mirror.py``) and the tests' servers (``tests/helpers/serve.py``, ``tests/test_download.py``) share.

``serving(Handler)`` serves a ``http.server`` handler class on a free 127.0.0.1 port in a thread and yields its base
URL. ``range_start(headers, total, etag)`` is where the answer to a ``Range: bytes=N-`` request starts, as RFC 9110
(sections 14.2 and 13.1.5) has a server decide it: from byte N when ``If-Range``, if sent, names the file's current
ETag; from 0 (the whole file, ``200``) otherwise; ``None`` when N is past the end (``416``).
"""

from __future__ import annotations

import contextlib
import http.server
import re
import threading


@contextlib.contextmanager
def serving(handler):
    """Serve ``handler`` (a ``BaseHTTPRequestHandler`` class) on a free loopback port; yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def range_start(headers, total: int, etag: str | None) -> int | None:
    """The first byte of the answer to a request with these ``headers`` for a file of ``total`` bytes (see above)."""
    m = re.fullmatch(r"bytes=(\d+)-", (headers.get("Range") or "").strip())
    if_range = headers.get("If-Range")
    if not m or (if_range is not None and if_range != etag):
        return 0
    start = int(m.group(1))
    return start if start < total else None
