"""lib.storage.download against loopback servers on 127.0.0.1 (every network wait bounded), and a scan of the course's
code for unsafe ``torch.load`` calls."""

from __future__ import annotations

import ast
import errno
import hashlib
import http.server
import io
import json
import os
import re
import socket
import threading
import time
import tokenize
from pathlib import Path

import pytest
import torch

from lib.storage import download
from tests.helpers.serve import serve

ROOT = Path(__file__).resolve().parent.parent
DATA = os.urandom(50_000)
SHA = hashlib.sha256(DATA).hexdigest()
READER = "torch.load(weights_only=True)"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("COURSE_MIRROR", raising=False)
    monkeypatch.delenv("COURSE_DOWNLOAD_LOG", raising=False)


@pytest.fixture
def site(tmp_path):
    """A served folder with ``w.bin`` (DATA) and ``m-<sha prefix>.pth`` (DATA, torch.hub-style name)."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "w.bin").write_bytes(DATA)
    (root / f"m-{SHA[:8]}.pth").write_bytes(DATA)
    with serve(root) as url:
        yield root, url


def leftovers(folder: Path) -> list[str]:
    """Everything in the download folder but finished files and the first-use record."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix in (".partial", ".part"))


@pytest.fixture
def odd_server():
    """/html: a web page; /short: announces 1000 bytes, sends 10; /error: HTTP 500."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/error":
                self.send_error(500)
                return
            body = b"<!DOCTYPE html><html><body>Sign in</body></html>" if self.path == "/html" else b"x" * 10
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) if self.path == "/html" else 1000))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def silent_server():
    """Accepts connections and never answers (until the test ends)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.2)
    stop, held = threading.Event(), []

    def accept():
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for c in held:
            c.close()
        sock.close()


# --- the three kinds of verification ------------------------------------------------------------------------------
def test_sha256_then_cached(site, tmp_path):
    _, url = site
    dest = download.fetch(f"{url}/w.bin", reader=READER, sha256=SHA, cache_dir=tmp_path / "c", progress=False)
    assert dest.read_bytes() == DATA and dest.name == "w.bin"
    log = download.downloads()[-1]
    assert log == {"url": f"{url}/w.bin", "path": str(dest), "bytes": len(DATA), "sha256": SHA,
                   "verified_by": "sha256", "loaded_with": READER, "mirror": False, "cached": False}
    # served from the folder now (the port is closed), re-verified
    again = download.fetch("http://127.0.0.1:9/w.bin", reader=READER, sha256=SHA, cache_dir=tmp_path / "c")
    assert again == dest and download.downloads()[-1]["cached"] is True


def test_hash_prefix_from_the_file_name(site, tmp_path):
    _, url = site
    u = f"{url}/m-{SHA[:8]}.pth"
    assert download.hub_prefix(u) == SHA[:8]
    assert download.hub_prefix("https://x/bmshj2018-factorized-prior-1-446d5c7f.pth.tar") == "446d5c7f"
    with pytest.raises(ValueError, match="no sha256 prefix"):
        download.hub_prefix("https://x/weights.bin")
    dest = download.fetch(u, reader=READER, hash_prefix=download.hub_prefix(u), cache_dir=tmp_path / "c",
                          progress=False)
    assert download.downloads()[-1]["verified_by"] == "hash_prefix" and dest.read_bytes() == DATA
    with pytest.raises(download.ChecksumError, match="prefix"):
        download.fetch(u, reader=READER, hash_prefix="deadbeef", cache_dir=tmp_path / "d", progress=False)
    assert list((tmp_path / "d").iterdir()) == []


def test_first_use_records_prints_and_rechecks(site, tmp_path, capsys):
    root, url = site
    c = tmp_path / "c"
    dest = download.fetch(f"{url}/w.bin", reader="zip", cache_dir=c, progress=False)
    assert download.downloads()[-1]["verified_by"] == "first_use"
    record = json.loads((c / download.RECORD).read_text())
    assert record["w.bin"]["sha256"] == SHA and record["w.bin"]["url"] == f"{url}/w.bin"
    out = capsys.readouterr().out
    assert f"first use: recorded sha256 {SHA} for {url}/w.bin" in out and "colleague" in out
    download.fetch(f"{url}/w.bin", reader="zip", cache_dir=c)  # a later use: checked against the record
    assert "first use" not in capsys.readouterr().out
    dest.write_bytes(b"changed")  # the cached file no longer matches its record
    with pytest.raises(download.ChecksumError, match="delete it"):
        download.fetch(f"{url}/w.bin", reader="zip", cache_dir=c)
    dest.unlink()  # the server now has another file: a fresh download is checked against the record too
    (root / "w.bin").write_bytes(b"another version")
    with pytest.raises(download.ChecksumError, match="first-use record"):
        download.fetch(f"{url}/w.bin", reader="zip", cache_dir=c, progress=False)
    assert not dest.exists() and leftovers(c) == []


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="cannot run code"):
        download.fetch("http://127.0.0.1:9/x.pt", reader="torch.load", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="not both"):
        download.fetch("http://127.0.0.1:9/x", reader="PIL", sha256="a" * 64, hash_prefix="a" * 8, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="64 hex"):
        download.fetch("http://127.0.0.1:9/x", reader="PIL", sha256="abc", cache_dir=tmp_path)
    for bad in ("not a url", "ftp://host/x", "http:///x"):
        with pytest.raises(download.DownloadError, match="not a download URL"):
            download.fetch(bad, reader="PIL", cache_dir=tmp_path)


# --- the mirror ---------------------------------------------------------------------------------------------------
def test_mirror_rewrites_urls_and_takes_expected_values_from_its_manifest(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "example.org" / "files").mkdir(parents=True)
    (mirror / "drive.google.com").mkdir()
    (mirror / "example.org" / "files" / "w.bin").write_bytes(DATA)
    (mirror / "example.org" / "files" / "m-0123abcd.pth").write_bytes(DATA)
    (mirror / "drive.google.com" / "uc").write_bytes(DATA)  # the static server ignores the query string
    files = {"https://example.org/files/w.bin": {"sha256": SHA},
             "https://example.org/files/m-0123abcd.pth": {"sha256": SHA},
             "https://example.org/files/first.bin": {"sha256": SHA},
             download.DRIVE_URL.format("ID1"): {"sha256": SHA}}
    (mirror / "example.org" / "files" / "first.bin").write_bytes(DATA)
    (mirror / "manifest.json").write_text(json.dumps({"files": files}))
    log = tmp_path / "downloads.jsonl"
    monkeypatch.setenv("COURSE_DOWNLOAD_LOG", str(log))
    with serve(mirror) as url:
        monkeypatch.setenv("COURSE_MIRROR", url)
        c = tmp_path / "c"
        # the published value is replaced by the mirror's (the mirror knows the truth)
        a = download.fetch("https://example.org/files/w.bin", reader="zip", sha256="0" * 64, cache_dir=c,
                           progress=False)
        b = download.fetch("https://example.org/files/m-0123abcd.pth", reader=READER,
                           hash_prefix="0123abcd", cache_dir=c, progress=False)
        f = download.fetch("https://example.org/files/first.bin", reader="zip", cache_dir=c, progress=False)
        d = download.fetch_drive("ID1", reader=READER, filename="demo.ckpt", cache_dir=c, progress=False)
        assert all(p.read_bytes() == DATA for p in (a, b, f, d))
        with pytest.raises(download.DownloadError, match="https://example.org/files/other.bin.*manifest"):
            download.fetch("https://example.org/files/other.bin", reader="zip", cache_dir=c)
        # the manifest is checked for first-use files as well
        (mirror / "example.org" / "files" / "bad.bin").write_bytes(b"not it")
        download._MANIFESTS[url]["https://example.org/files/bad.bin"] = {"sha256": SHA}
        with pytest.raises(download.ChecksumError, match="manifest"):
            download.fetch("https://example.org/files/bad.bin", reader="zip", cache_dir=c, progress=False)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["url"] for x in lines] == ["https://example.org/files/w.bin", "https://example.org/files/m-0123abcd.pth",
                                        "https://example.org/files/first.bin", download.DRIVE_URL.format("ID1")]
    assert [x["verified_by"] for x in lines] == ["sha256", "hash_prefix", "first_use", "first_use"]
    assert all(x["mirror"] and x["sha256"] == SHA and not x["cached"] for x in lines)
    assert lines[3]["path"] == str(c / "demo.ckpt") and lines[3]["loaded_with"] == READER
    assert download.downloads()[-4:] == lines
    assert leftovers(tmp_path / "c") == []


def test_mirror_without_manifest_is_an_error(site, tmp_path, monkeypatch):
    _, url = site  # serves no manifest.json
    monkeypatch.setenv("COURSE_MIRROR", url + "/")
    with pytest.raises(download.DownloadError, match="manifest"):
        download.fetch("https://example.org/w.bin", reader="zip", cache_dir=tmp_path, timeout=5)


# --- what goes wrong, and what it says ----------------------------------------------------------------------------
def test_no_network_says_what_to_do(tmp_path):
    with pytest.raises(download.DownloadError, match=r"needs internet.*COURSE_SCALE=tiny.*by hand"):
        download.fetch("http://127.0.0.1:9/nothing.bin", reader="zip", cache_dir=tmp_path, progress=False)
    with pytest.raises(download.DownloadError, match="needs internet"):  # a name that does not resolve
        download.fetch("http://no-such-host.invalid/x.bin", reader="zip", cache_dir=tmp_path, progress=False,
                       timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_http_errors(site, odd_server, tmp_path):
    _, url = site
    with pytest.raises(download.DownloadError, match="HTTP 404.*check the URL"):
        download.fetch(f"{url}/missing.bin", reader="zip", cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(download.DownloadError, match="HTTP 500.*try again later"):
        download.fetch(f"{odd_server}/error", reader="zip", cache_dir=tmp_path / "c", progress=False)
    assert list((tmp_path / "c").iterdir()) == []


def test_web_page_instead_of_the_file(odd_server, tmp_path):
    with pytest.raises(download.DownloadError, match="answered a web page"):
        download.fetch(f"{odd_server}/html", reader=READER, filename="w.pt", cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
    # reader "text" may be a web page
    assert download.fetch(f"{odd_server}/html", reader="text", filename="p.html", cache_dir=tmp_path,
                          progress=False).read_text().startswith("<!DOCTYPE")


def test_truncated_download(odd_server, tmp_path):
    with pytest.raises(download.DownloadError, match=r"broke off \(10 of 1000 bytes\)"):
        download.fetch(f"{odd_server}/short", reader="zip", filename="s.zip", cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_keeps_nothing(site, tmp_path):
    _, url = site
    with pytest.raises(download.ChecksumError, match="nothing was kept"):
        download.fetch(f"{url}/w.bin", reader="zip", sha256="0" * 64, cache_dir=tmp_path / "c", progress=False)
    assert list((tmp_path / "c").iterdir()) == []


def test_server_that_never_answers(silent_server, tmp_path):
    t = time.monotonic()
    with pytest.raises(download.DownloadError, match="no answer within 1 s"):
        download.fetch(f"{silent_server}/w.bin", reader="zip", cache_dir=tmp_path, progress=False, timeout=1)
    assert time.monotonic() - t < 10
    assert list(tmp_path.iterdir()) == []


def test_drive_server_that_never_answers(silent_server, tmp_path, monkeypatch):
    """Through gdown, both with its timeout parameter and, as gdown 5 (Colab's) has none, without."""
    import gdown

    (tmp_path / "m.json").write_text(json.dumps({"files": {download.DRIVE_URL.format("X"): {"sha256": SHA}}}))
    download._MANIFESTS[silent_server] = json.loads((tmp_path / "m.json").read_text())["files"]
    monkeypatch.setenv("COURSE_MIRROR", silent_server)
    real = gdown.download

    def gdown5(url=None, output=None, quiet=False, proxy=None, speed=None, use_cookies=True):
        return real(url=url, output=output, quiet=quiet, use_cookies=use_cookies)

    for variant in (real, gdown5):
        monkeypatch.setattr(gdown, "download", variant)
        t = time.monotonic()
        with pytest.raises(download.DownloadError, match="no answer within 1 s"):
            download.fetch_drive("X", reader=READER, filename="x.ckpt", cache_dir=tmp_path / "c", progress=False,
                                 timeout=1)
        assert time.monotonic() - t < 10
        assert list((tmp_path / "c").iterdir()) == []


def test_full_disk(site, tmp_path, monkeypatch):
    _, url = site

    class Full(io.FileIO):  # the file torch.hub writes to: every write fails as on a full disk
        def __init__(self, path, mode):
            super().__init__(path, mode.replace("+b", "+").replace("b", ""))

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch.hub, "open", Full, raising=False)
    with pytest.raises(download.DownloadError, match=rf"disk is full at {tmp_path / 'c'}: free 1 MB"):
        download.fetch(f"{url}/w.bin", reader="zip", cache_dir=tmp_path / "c", progress=False)
    assert list((tmp_path / "c").iterdir()) == []


def test_interrupted_download_restarts_cleanly(site, tmp_path, monkeypatch):
    _, url = site
    calls = []

    class Interrupted(io.FileIO):
        def __init__(self, path, mode):
            super().__init__(path, mode.replace("+b", "+").replace("b", ""))

        def write(self, data):
            calls.append(len(data))
            raise KeyboardInterrupt

    monkeypatch.setattr(torch.hub, "open", Interrupted, raising=False)
    with pytest.raises(KeyboardInterrupt):
        download.fetch(f"{url}/w.bin", reader="zip", sha256=SHA, cache_dir=tmp_path / "c", progress=False)
    assert calls and list((tmp_path / "c").iterdir()) == []
    monkeypatch.undo()
    assert download.fetch(f"{url}/w.bin", reader="zip", sha256=SHA, cache_dir=tmp_path / "c",
                          progress=False).read_bytes() == DATA


# --- no pickle: every torch.load in the course's code is weights_only=True ----------------------------------------
def _code_cells(md: str) -> str:
    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", md, flags=re.S)
    return "\n".join(line for cell in cells for line in cell.splitlines()
                     if not line.lstrip().startswith(("%", "!", ":")))


def _without_strings(source: str) -> str:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return tokenize.untokenize((t.type, '""' if t.type == tokenize.STRING else t.string) for t in tokens)


def _unsafe_loads(source: str, where: str) -> list[str]:
    found = []
    if re.search(r"weights_only\s*=\s*False", source):
        found.append(f"{where}: weights_only=False")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
            safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in node.keywords)
            if not safe:
                found.append(f"{where}:{node.lineno}: torch.load without weights_only=True")
    return found


def test_no_torch_load_can_run_code():
    found, n = [], 0
    for folder in ("lib", "scripts", "benchmarks", "tests", "colab"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            source = path.read_text()
            if path == Path(__file__).resolve():
                source = _without_strings(source)
            found += _unsafe_loads(source, str(path.relative_to(ROOT)))
            n += 1
    for path in sorted((ROOT / "book").glob("*.md")):
        found += _unsafe_loads(_code_cells(path.read_text()), str(path.relative_to(ROOT)))
        n += 1
    assert n > 20 and not found, found
    assert _unsafe_loads("import torch\ntorch.load('x')\ntorch.load('y', weights_only=True)\n", "probe") == \
        ["probe:2: torch.load without weights_only=True"]
