"""A quiet static-file HTTP server on 127.0.0.1 for tests (downloads, the browser test)."""

import contextlib
import functools
import http.server
import threading


@contextlib.contextmanager
def serve(directory):
    """Serve ``directory`` on a free loopback port; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
