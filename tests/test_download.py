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

from lib.storage import download, errors, hashes, transfer, verification
from tests.helpers.serve import loopback, serve

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

    with loopback.serving(Handler) as url:
        yield url


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
    assert log == {"url": f"{url}/w.bin", "source": f"{url}/w.bin", "path": str(dest), "bytes": len(DATA), "sha256": SHA,
                   "verified_by": "sha256", "loaded_with": READER, "mirror": False, "cached": False}
    # served from the folder now (the port is closed), re-verified
    again = download.fetch("http://127.0.0.1:9/w.bin", reader=READER, sha256=SHA, cache_dir=tmp_path / "c")
    assert again == dest and download.downloads()[-1]["cached"] is True
    assert download.downloads()[-1]["source"] == "local"


def test_hash_prefix_from_the_file_name(site, tmp_path):
    _, url = site
    u = f"{url}/m-{SHA[:8]}.pth"
    assert hashes.hub_prefix(u) == SHA[:8]
    assert hashes.hub_prefix("https://x/bmshj2018-factorized-prior-1-446d5c7f.pth.tar") == "446d5c7f"
    with pytest.raises(ValueError, match="no sha256 prefix"):
        hashes.hub_prefix("https://x/weights.bin")
    dest = download.fetch(u, reader=READER, hash_prefix=hashes.hub_prefix(u), cache_dir=tmp_path / "c",
                          progress=False)
    assert download.downloads()[-1]["verified_by"] == "hash_prefix" and dest.read_bytes() == DATA
    with pytest.raises(errors.ChecksumError, match="prefix"):
        download.fetch(u, reader=READER, hash_prefix="deadbeef", cache_dir=tmp_path / "d", progress=False)
    assert list((tmp_path / "d").iterdir()) == []


def test_first_use_records_prints_and_rechecks(site, tmp_path, capsys):
    root, url = site
    c = tmp_path / "c"
    dest = download.fetch(f"{url}/w.bin", reader="zip", cache_dir=c, progress=False)
    assert download.downloads()[-1]["verified_by"] == "first_use"
    record = json.loads((c / verification.RECORD).read_text())
    assert record["w.bin"]["sha256"] == SHA and record["w.bin"]["url"] == f"{url}/w.bin"
    out = capsys.readouterr().out
    assert f"first use: recorded sha256 {SHA} for {url}/w.bin" in out and "colleague" in out
    download.fetch(f"{url}/w.bin", reader="zip", cache_dir=c)  # a later use: checked against the record
    assert "first use" not in capsys.readouterr().out
    dest.write_bytes(b"changed")  # the cached file no longer matches its record
    with pytest.raises(errors.ChecksumError, match="delete it"):
        download.fetch(f"{url}/w.bin", reader="zip", cache_dir=c)
    dest.unlink()  # the server now has another file: a fresh download is checked against the record too
    (root / "w.bin").write_bytes(b"another version")
    with pytest.raises(errors.ChecksumError, match="first-use record"):
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
        with pytest.raises(errors.DownloadError, match="not a download URL"):
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
        with pytest.raises(errors.DownloadError, match="https://example.org/files/other.bin.*manifest"):
            download.fetch("https://example.org/files/other.bin", reader="zip", cache_dir=c)
        # the manifest is checked for first-use files as well
        (mirror / "example.org" / "files" / "bad.bin").write_bytes(b"not it")
        verification._MANIFESTS[url]["https://example.org/files/bad.bin"] = {"sha256": SHA}
        with pytest.raises(errors.ChecksumError, match="manifest"):
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
    with pytest.raises(errors.DownloadError, match="manifest"):
        download.fetch("https://example.org/w.bin", reader="zip", cache_dir=tmp_path, timeout=5)


# --- what goes wrong, and what it says ----------------------------------------------------------------------------
def test_no_network_says_what_to_do(tmp_path):
    with pytest.raises(errors.DownloadError, match=r"needs internet.*COURSE_SCALE=tiny.*by hand"):
        download.fetch("http://127.0.0.1:9/nothing.bin", reader="zip", cache_dir=tmp_path, progress=False)
    with pytest.raises(errors.DownloadError, match="needs internet"):  # a name that does not resolve
        download.fetch("http://no-such-host.invalid/x.bin", reader="zip", cache_dir=tmp_path, progress=False,
                       timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_http_errors(site, odd_server, tmp_path):
    _, url = site
    with pytest.raises(errors.DownloadError, match="HTTP 404.*check the URL"):
        download.fetch(f"{url}/missing.bin", reader="zip", cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(errors.DownloadError, match="HTTP 500.*try again later"):
        download.fetch(f"{odd_server}/error", reader="zip", cache_dir=tmp_path / "c", progress=False)
    assert list((tmp_path / "c").iterdir()) == []


def test_web_page_instead_of_the_file(odd_server, tmp_path):
    with pytest.raises(errors.DownloadError, match="answered a web page"):
        download.fetch(f"{odd_server}/html", reader=READER, filename="w.pt", cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
    # reader "text" may be a web page
    assert download.fetch(f"{odd_server}/html", reader="text", filename="p.html", cache_dir=tmp_path,
                          progress=False).read_text().startswith("<!DOCTYPE")


def test_truncated_download_keeps_the_part(odd_server, tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "RETRIES", 1)
    with pytest.raises(errors.DownloadError, match=r"broke off \(\d+ of 1000 bytes, after 1 retries\).*resume"):
        download.fetch(f"{odd_server}/short", reader="zip", filename="s.zip", cache_dir=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zip.part", "s.zip.part.json"]


def test_checksum_mismatch_keeps_nothing(site, tmp_path):
    _, url = site
    with pytest.raises(errors.ChecksumError, match="nothing was kept"):
        download.fetch(f"{url}/w.bin", reader="zip", sha256="0" * 64, cache_dir=tmp_path / "c", progress=False)
    assert list((tmp_path / "c").iterdir()) == []


def test_server_that_never_answers(silent_server, tmp_path):
    t = time.monotonic()
    with pytest.raises(errors.DownloadError, match="no answer within 1 s"):
        download.fetch(f"{silent_server}/w.bin", reader="zip", cache_dir=tmp_path, progress=False, timeout=1)
    assert time.monotonic() - t < 10
    assert list(tmp_path.iterdir()) == []


def test_drive_server_that_never_answers(silent_server, tmp_path, monkeypatch):
    """Through gdown, both with its timeout parameter and, as gdown 5 (Colab's) has none, without."""
    import gdown

    (tmp_path / "m.json").write_text(json.dumps({"files": {download.DRIVE_URL.format("X"): {"sha256": SHA}}}))
    verification._MANIFESTS[silent_server] = json.loads((tmp_path / "m.json").read_text())["files"]
    monkeypatch.setenv("COURSE_MIRROR", silent_server)
    real = gdown.download

    def gdown5(url=None, output=None, quiet=False, proxy=None, speed=None, use_cookies=True):
        return real(url=url, output=output, quiet=quiet, use_cookies=use_cookies)

    for variant in (real, gdown5):
        monkeypatch.setattr(gdown, "download", variant)
        t = time.monotonic()
        with pytest.raises(errors.DownloadError, match="no answer within 1 s"):
            download.fetch_drive("X", reader=READER, filename="x.ckpt", cache_dir=tmp_path / "c", progress=False,
                                 timeout=1)
        assert time.monotonic() - t < 10
        assert list((tmp_path / "c").iterdir()) == []


# --- resume, several sources, the manual path, free space -----------------------------------------------------------
BIG = os.urandom(300_000)
BIG_SHA = hashlib.sha256(BIG).hexdigest()
BIG_MD5 = hashlib.md5(BIG).hexdigest()


@pytest.fixture
def ranged():
    """A server of BIG at /big.bin that answers Range requests with 206 (ETag, If-Range) unless ``ranges`` is off,
    and cuts the connection half-way through the next ``cut`` answers. ``seen`` holds each request's headers."""
    state = {"ranges": True, "cut": 0, "etag": '"v1"', "data": BIG, "seen": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            state["seen"].append({k: self.headers.get(k) for k in ("Range", "If-Range")})
            data = state["data"]
            start = loopback.range_start(self.headers, len(data), state["etag"]) if state["ranges"] else 0
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", state["etag"])
            if state["ranges"]:
                self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if state["cut"]:
                state["cut"] -= 1
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

    with loopback.serving(Handler) as url:
        yield f"{url}/big.bin", state


def test_cut_mid_file_then_resumed_in_the_next_call(ranged, tmp_path, monkeypatch, capsys):
    url, state = ranged
    c = tmp_path / "c"
    monkeypatch.setattr(transfer, "RETRIES", 0)
    state["cut"] = 1
    with pytest.raises(errors.DownloadError, match=r"broke off.*kept in .*big\.bin\.part\. Run again to resume"):
        download.fetch(url, reader="zip", sha256=BIG_SHA, cache_dir=c, progress=False)
    have = (c / "big.bin.part").stat().st_size
    assert 0 < have < len(BIG) and not (c / "big.bin").exists()
    assert json.loads((c / "big.bin.part.json").read_text())["etag"] == '"v1"'
    dest = download.fetch(url, reader="zip", sha256=BIG_SHA, cache_dir=c, progress=False)
    assert state["seen"][-1] == {"Range": f"bytes={have}-", "If-Range": '"v1"'}
    assert dest.read_bytes() == BIG and hashes.sha256sum(dest) == BIG_SHA
    assert f"resuming big.bin at {errors.size_text(have)}" in capsys.readouterr().out
    assert sorted(p.name for p in c.iterdir()) == ["big.bin"]


def test_killed_process_then_resumed(ranged, tmp_path, monkeypatch):
    """A KeyboardInterrupt (as a stopped cell or a killed process leaves it): the part and its sidecar stay."""
    url, state = ranged
    c = tmp_path / "c"
    real_open = open

    class Killed(io.FileIO):
        def write(self, data):
            if self.tell() > 0:
                raise KeyboardInterrupt
            return super().write(data)

    monkeypatch.setattr(transfer, "open", lambda p, mode="r", *a, **k: Killed(p, mode.replace("b", "")) if
                        str(p).endswith(".part") else real_open(p, mode, *a, **k), raising=False)
    with pytest.raises(KeyboardInterrupt):
        download.fetch(url, reader="zip", md5=BIG_MD5, cache_dir=c, progress=False)
    monkeypatch.undo()
    have = (c / "big.bin.part").stat().st_size
    assert have > 0 and (c / "big.bin.part.json").exists()
    dest = download.fetch(url, reader="zip", md5=BIG_MD5, cache_dir=c, progress=False)
    assert state["seen"][-1]["Range"] == f"bytes={have}-" and dest.read_bytes() == BIG
    assert download.downloads()[-1]["verified_by"] == "md5"


def test_broken_connection_is_retried_within_the_call(ranged, tmp_path, capsys):
    url, state = ranged
    state["cut"] = 1
    dest = download.fetch(url, reader="zip", sha256=BIG_SHA, cache_dir=tmp_path, progress=True)
    assert dest.read_bytes() == BIG and len(state["seen"]) == 2 and state["seen"][1]["Range"].startswith("bytes=")
    out, err = capsys.readouterr()
    assert "retrying (1 of 3)" in out and "B/s" in err  # tqdm's bar in bytes with a rate


def test_server_without_range_support_restarts(ranged, tmp_path, monkeypatch, capsys):
    url, state = ranged
    c = tmp_path / "c"
    monkeypatch.setattr(transfer, "RETRIES", 0)
    state.update(cut=1, ranges=False)
    with pytest.raises(errors.DownloadError, match="broke off"):
        download.fetch(url, reader="zip", cache_dir=c, progress=False)
    dest = download.fetch(url, reader="zip", cache_dir=c, progress=False)
    assert state["seen"][-1]["Range"] is not None  # asked to resume, got the whole file
    assert "starting again from 0" in capsys.readouterr().out
    assert dest.read_bytes() == BIG and download.downloads()[-1]["sha256"] == BIG_SHA


def test_a_part_of_another_version_is_discarded(ranged, tmp_path, monkeypatch, capsys):
    url, state = ranged
    c = tmp_path / "c"
    monkeypatch.setattr(transfer, "RETRIES", 0)
    state["cut"] = 1
    with pytest.raises(errors.DownloadError, match="broke off"):
        download.fetch(url, reader="zip", cache_dir=c, progress=False)
    state.update(etag='"v2"', data=BIG[::-1])  # the file changed on the server: If-Range no longer matches
    dest = download.fetch(url, reader="zip", cache_dir=c, progress=False)
    assert dest.read_bytes() == BIG[::-1] and "starting again from 0" in capsys.readouterr().out
    # a server that ignores If-Range but answers the rest of a file with another ETag: started again
    state["cut"] = 1
    with pytest.raises(errors.DownloadError, match="broke off"):
        download.fetch(url, reader="zip", filename="y.bin", cache_dir=c, progress=False)
    sidecar = json.loads((c / "y.bin.part.json").read_text())
    (c / "y.bin.part.json").write_text(json.dumps({**sidecar, "etag": '"v0"'}))
    monkeypatch.setitem(state, "etag", '"v0"')  # If-Range matches, the answer's ETag does not
    monkeypatch.setattr(http.server.BaseHTTPRequestHandler, "send_header", _etag_to_v2(
        http.server.BaseHTTPRequestHandler.send_header))
    assert download.fetch(url, reader="zip", filename="y.bin", cache_dir=c, progress=False).read_bytes() == BIG[::-1]
    assert "changed since y.bin.part was begun" in capsys.readouterr().out
    monkeypatch.undo()
    (c / "x.bin.part").write_bytes(b"old")  # a part begun from another URL
    (c / "x.bin.part.json").write_text(json.dumps({"source": "http://elsewhere/x.bin", "length": 9}))
    download.fetch(url, reader="zip", filename="x.bin", cache_dir=c, progress=False)
    assert "discarding" in capsys.readouterr().out and state["seen"][-1]["Range"] is None
    assert (c / "x.bin").read_bytes() == BIG[::-1]


def _etag_to_v2(send_header):
    def send(self, key, value):
        return send_header(self, key, '"v2"' if key == "ETag" else value)
    return send


def test_disk_too_small_fails_before_writing(ranged, tmp_path, monkeypatch):
    url, state = ranged
    c = tmp_path / "c"
    c.mkdir()
    monkeypatch.setattr(errors.shutil, "disk_usage", lambda p: shutil_usage(999))
    with pytest.raises(errors.NoRoom, match=rf"needs 300 kB, 999 bytes free at {c}"):
        download.fetch(url, reader="zip", cache_dir=c, progress=False)  # from the server's Content-Length
    with pytest.raises(errors.NoRoom, match=rf"needs 300 kB, 999 bytes free at {c}"):  # from size=, for Drive
        download.fetch_drive("ID", reader="zip", filename="d.zip", size=len(BIG), cache_dir=c, progress=False)
    assert list(c.iterdir()) == [] and len(state["seen"]) == 1
    monkeypatch.setattr(errors.shutil, "disk_usage", lambda p: shutil_usage(int(9.8e9)))
    with pytest.raises(errors.NoRoom, match="needs 13.2 GB, 9.8 GB free"):
        errors.room(c, int(13.2e9), 0)


def test_full_disk_during_the_transfer_keeps_the_part(ranged, tmp_path, monkeypatch):
    url, _ = ranged
    real_open = open

    class Full(io.FileIO):
        def write(self, data):
            if self.tell() > 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    monkeypatch.setattr(transfer, "open", lambda p, mode="r", *a, **k: Full(p, mode.replace("b", "")) if
                        str(p).endswith(".part") else real_open(p, mode, *a, **k), raising=False)
    with pytest.raises(errors.NoRoom, match=rf"disk is full at {tmp_path}: needs 300 kB in all, the \d+ kB so far "
                                              rf"are kept in .*Free some space and run again to resume"):
        download.fetch(url, reader="zip", cache_dir=tmp_path, progress=False)
    assert (tmp_path / "big.bin.part").stat().st_size > 0


def shutil_usage(free: int):
    import shutil

    return shutil._ntuple_diskusage(10 * free, 9 * free, free)


def test_quota_page_then_a_good_second_source(odd_server, site, tmp_path, monkeypatch, capsys):
    _, url = site
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("COURSE_DOWNLOAD_LOG", str(log))
    dest = download.fetch(f"{odd_server}/html", mirrors=[f"{url}/w.bin"], reader="zip", sha256=SHA,
                          filename="w.zip", cache_dir=tmp_path / "c", progress=False)
    assert dest.read_bytes() == DATA
    entry = json.loads(log.read_text())
    assert entry["source"] == f"{url}/w.bin" and entry["url"] == f"{odd_server}/html"
    out = capsys.readouterr().out
    assert "web page" in out and f"trying the next source for w.zip: {url}/w.bin" in out


def test_all_sources_dead_names_each_and_the_manual_path(odd_server, silent_server, tmp_path):
    c = tmp_path / "c"
    sources = ["http://127.0.0.1:9/v.tar", f"{silent_server}/v.tar", f"{odd_server}/error"]
    with pytest.raises(errors.DownloadError) as err:
        download.fetch(sources[0], mirrors=sources[1:], reader="tar", cache_dir=c, progress=False, timeout=1)
    text = str(err.value)
    assert "any of its 3 sources" in text
    for source, why in zip(sources, ("ConnectionError", "no answer within 1 s", "HTTP 500")):
        assert re.search(rf"- {re.escape(source)}: .*{why}", text), (source, text)
    assert f"put the file at {c / 'v.tar'} by hand (fetched in a browser), then run again" in text
    assert list(c.iterdir()) == []


def test_a_checksum_error_moves_on_and_is_reported(site, tmp_path):
    root, url = site
    (root / "bad.bin").write_bytes(b"not it")
    dest = download.fetch(f"{url}/bad.bin", mirrors=[f"{url}/w.bin"], reader="zip", sha256=SHA, filename="w.bin",
                          cache_dir=tmp_path / "c", progress=False)
    assert dest.read_bytes() == DATA and download.downloads()[-1]["source"] == f"{url}/w.bin"
    with pytest.raises(errors.ChecksumError, match=r"(?s)any of its 2 sources.*bad.bin: its sha256 .*gone.bin: .*HTTP 404"):
        download.fetch(f"{url}/bad.bin", mirrors=[f"{url}/gone.bin"], reader="zip", sha256=SHA, filename="v.bin",
                       cache_dir=tmp_path / "c", progress=False)


def test_a_file_put_there_by_hand_is_checked_like_a_download(tmp_path, capsys):
    c = tmp_path / "c"
    c.mkdir()
    (c / "VOC.tar").write_bytes(BIG)  # nothing listens on port 9: the file must come from the folder
    dest = download.fetch("http://127.0.0.1:9/VOC.tar", reader="tar", md5=BIG_MD5, cache_dir=c)
    entry = download.downloads()[-1]
    assert dest == c / "VOC.tar" and entry["verified_by"] == "md5" and entry["source"] == "local"
    assert json.loads((c / verification.RECORD).read_text())["VOC.tar"]["sha256"] == BIG_SHA
    assert "first use: recorded" in capsys.readouterr().out
    (c / "w.pt").write_bytes(DATA)
    download.fetch("http://127.0.0.1:9/w.pt", reader=READER, sha256=SHA, cache_dir=c)
    assert download.downloads()[-1]["verified_by"] == "sha256"
    (c / "x.pt").write_bytes(b"something else")
    with pytest.raises(errors.ChecksumError, match=rf"{c / 'x.pt'}.*put the file at {c / 'x.pt'} by hand.*run again"):
        download.fetch("http://127.0.0.1:9/x.pt", reader=READER, sha256=SHA, cache_dir=c)
    (c / "p.tar").write_bytes(b"<!DOCTYPE html><html>quota exceeded</html>")
    with pytest.raises(errors.DownloadError, match=rf"file at {c / 'p.tar'} is a web page"):
        download.fetch("http://127.0.0.1:9/p.tar", reader="tar", cache_dir=c)


def test_filename_stays_in_its_folder(tmp_path):
    for bad in ("../x", "/etc/x", "a/b", "..", "", "a\\b"):
        with pytest.raises(ValueError, match="plain file name"):
            download.fetch("http://127.0.0.1:9/x", reader="zip", filename=bad, cache_dir=tmp_path / "c")
    with pytest.raises(ValueError, match="plain file name"):
        download.fetch("http://127.0.0.1:9/..", reader="zip", cache_dir=tmp_path / "c")
    assert not (tmp_path / "x").exists()


def test_md5_mismatch_refused(site, tmp_path):
    _, url = site
    with pytest.raises(errors.ChecksumError, match=r"md5 .*not the published 0{32}.*nothing was kept"):
        download.fetch(f"{url}/w.bin", reader="zip", md5="0" * 32, cache_dir=tmp_path / "c", progress=False)
    assert list((tmp_path / "c").iterdir()) == []
    with pytest.raises(ValueError, match="32 hex"):
        download.fetch(f"{url}/w.bin", reader="zip", md5="abc", cache_dir=tmp_path / "c")


def test_size_mismatch_refused(site, tmp_path):
    _, url = site
    with pytest.raises(errors.ChecksumError, match=rf"offers {len(DATA)} bytes, not the 7 expected"):
        download.fetch(f"{url}/w.bin", reader="zip", size=7, cache_dir=tmp_path / "c", progress=False)
    assert list((tmp_path / "c").iterdir()) == []


def test_drive_quota_page_names_the_manual_path_then_the_next_source_gives_the_file(tmp_path, monkeypatch, capsys):
    """Drive answers its quota page (no download form: gdown gives up); the error names the manual path, and with a
    second source the file comes from there (everything served by a stand-in mirror)."""
    page = (b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body><p>Too many users "
            b"have viewed or downloaded this file recently.</p></body></html>")
    drive = download.DRIVE_URL.format("Q")
    files = {drive: {"sha256": SHA}, "https://example.org/x.ckpt": {"sha256": SHA}}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body, kind = {"/manifest.json": (json.dumps({"files": files}).encode(), "application/json"),
                          "/example.org/x.ckpt": (DATA, "application/octet-stream")}.get(
                self.path, (page, "text/html; charset=utf-8"))
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with loopback.serving(Handler) as url:
        monkeypatch.setenv("COURSE_MIRROR", url)
        c = tmp_path / "c"
        with pytest.raises(errors.DownloadError, match=rf"(?s)Google Drive did not hand out the file.*put the file at "
                                                         rf"{c / 'x.ckpt'} by hand \(fetched in a browser\), then run again"):
            download.fetch_drive("Q", reader=READER, filename="x.ckpt", cache_dir=c, progress=False, timeout=5)
        dest = download.fetch_drive("Q", mirrors=["https://example.org/x.ckpt"], reader=READER, filename="x.ckpt",
                                    cache_dir=c, progress=False, timeout=5)
        assert dest.read_bytes() == DATA and download.downloads()[-1]["source"] == "https://example.org/x.ckpt"
        assert "trying the next source for x.ckpt: https://example.org/x.ckpt" in capsys.readouterr().out
        assert sorted(p.name for p in c.iterdir()) == ["first-use-sha256.json", "x.ckpt"]


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
