"""The Colab rehearsal's own parts: the mirror's miniature files are in the real formats, and a run's verdict."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "colab" / "rehearsal"))
import formats  # noqa: E402
import makers  # noqa: E402
import mirror  # noqa: E402
import run  # noqa: E402

from lib.storage import download, hashes  # noqa: E402

KODAK = "https://r0k.us/graphics/kodak/kodak/kodim07.png"
COCO = "http://images.cocodataset.org/val2017/000000000139.jpg"
ZOO = "https://compressai.s3.amazonaws.com/models/v1/bmshj2018-factorized-prior-1-446d5c7f.pth.tar"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mirror")
    return folder, mirror.build(folder, [KODAK, COCO, ZOO])


def test_mirror_serves_real_formats_that_lib_download_verifies(built, tmp_path, monkeypatch):
    from PIL import Image

    folder, manifest = built
    with mirror.serve(folder) as (base, served):
        monkeypatch.setenv("COURSE_MIRROR", base)
        png = download.fetch(KODAK, reader="PIL", cache_dir=tmp_path, progress=False)
        jpg = download.fetch(COCO, reader="PIL", cache_dir=tmp_path, progress=False)
        zoo = download.fetch(ZOO, reader="torch.load(weights_only=True)", hash_prefix=hashes.hub_prefix(ZOO),
                             cache_dir=tmp_path, progress=False)
    assert {mirror.local_name(u) for u in (KODAK, COCO, ZOO)} <= set(served)
    assert Image.open(png).format == "PNG" and Image.open(png).size == (768, 512)
    assert Image.open(jpg).format == "JPEG"
    by = {d["url"]: d["verified_by"] for d in download.downloads()}
    assert by[KODAK] == "first_use" and by[ZOO] == "hash_prefix"
    assert hashes.sha256sum(zoo) == manifest["files"][ZOO]["sha256"]


def test_compressai_miniature_has_the_zoo_old_key_layout(built):
    from compressai.models import FactorizedPrior
    from compressai.zoo.pretrained import load_pretrained

    from lib.storage import checkpoint

    folder, manifest = built
    sd = checkpoint.load(folder / manifest["files"][ZOO]["path"])
    assert "entropy_bottleneck._biases.0" in sd and "entropy_bottleneck._matrices.0" in sd
    assert not any(k.startswith(("entropy_bottleneck.biases", "entropy_bottleneck.matrices")) for k in sd)
    with pytest.raises(Exception):  # what loading without CompressAI's conversion does
        FactorizedPrior(128, 192).load_state_dict(sd)
    model = FactorizedPrior.from_state_dict(load_pretrained(sd))
    assert model.g_a[0].weight.shape == (128, 3, 5, 5)
    torch.testing.assert_close(model.state_dict()["entropy_bottleneck.matrices.0"], sd["entropy_bottleneck._matrices.0"])


def test_manifest_says_what_vouches_for_each_file(built):
    _, manifest = built
    for url, entry in manifest["files"].items():
        pattern = next(p for p, _ in makers.MAKERS if __import__("re").fullmatch(p, url))
        assert entry["vouched_by"] == makers.FORMATS[pattern]["vouched_by"] and entry["vouched_by"]
        assert entry["bytes"] > 0 and len(entry["md5"]) == 32


def test_mirror_answers_head_and_range_requests_and_a_download_resumes_there(built, tmp_path, monkeypatch):
    import json

    import requests

    folder, manifest = built
    whole = (folder / manifest["files"][ZOO]["path"]).read_bytes()
    with mirror.serve(folder) as (base, served):
        target = f"{base}/{mirror.local_name(ZOO)}"
        head = requests.head(target, timeout=10)
        etag = head.headers["ETag"]
        assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(whole)
        assert head.headers["Accept-Ranges"] == "bytes" and not head.content
        part = requests.get(target, headers={"Range": "bytes=100-", "If-Range": etag}, timeout=10)
        assert part.status_code == 206 and part.content == whole[100:]
        assert part.headers["Content-Range"] == f"bytes 100-{len(whole) - 1}/{len(whole)}"
        stale = requests.get(target, headers={"Range": "bytes=100-", "If-Range": '"other"'}, timeout=10)
        assert stale.status_code == 200 and stale.content == whole
        assert requests.get(target, headers={"Range": f"bytes={len(whole)}-"}, timeout=10).status_code == 416
        # what an interrupted download leaves behind, then the run that resumes it
        monkeypatch.setenv("COURSE_MIRROR", base)
        name = ZOO.rsplit("/", 1)[1]
        (tmp_path / f"{name}.part").write_bytes(whole[:1000])
        (tmp_path / f"{name}.part.json").write_text(json.dumps({"source": target, "etag": etag,
                                                                 "length": len(whole)}))
        got = download.fetch(ZOO, reader="torch.load(weights_only=True)", hash_prefix=hashes.hub_prefix(ZOO),
                             cache_dir=tmp_path, progress=False)
    assert got.read_bytes() == whole and f"{mirror.local_name(ZOO)} (from byte 1000)" in served


def test_formats_table_is_generated_and_every_maker_has_an_entry(monkeypatch):
    readme = formats.README.read_text()
    assert formats.missing() == []
    assert formats.render(readme) == readme, "run `python colab/rehearsal/formats.py --write`"
    rows = readme.split(formats.BEGIN)[1].split(formats.END)[0].strip().splitlines()
    assert len(rows) == 2 + len(makers.MAKERS)
    assert formats.main([]) == 0
    # a stale table and a maker without an entry are caught
    chapter = makers.CHAPTERS[0]
    pattern = chapter.MAKERS[0][0]
    monkeypatch.setitem(chapter.FORMATS, pattern, {**chapter.FORMATS[pattern], "vouched_by": "changed"})
    assert formats.render(readme) != readme
    monkeypatch.delitem(chapter.FORMATS, pattern)
    assert formats.missing() == [f"{chapter.__name__}: no FORMATS entry for {pattern}"]
    monkeypatch.delitem(mirror.FORMATS, pattern)
    with pytest.raises(ValueError, match="nothing vouches for its format"):
        mirror.build(formats.README.parent / "never", [KODAK])


def test_mirror_refuses_a_url_it_cannot_make(tmp_path):
    with pytest.raises(ValueError, match="no maker"):
        mirror.build(tmp_path, ["https://example.org/unknown.bin"])


def _facts(errors=(), **report):
    rep = {"colab_branch": True, "numpy": "2.1.3", "ipywidgets": "7.7.1", "scale": "colab", "configs": {}}
    rep.update(report)
    return {"report": rep, "errors": list(errors)}


def test_verdict_flags_a_silent_fall_back_and_unverified_downloads():
    assert run.check("01_icm", "colab", _facts(), []) == []
    fell_back = run.check("01_icm", "colab", _facts(configs={"1 · ICM": {"scale": "tiny"}}), [])
    assert any("silent fall-back" in p for p in fell_back)
    bad = run.check("01_icm", "colab", _facts(), [{"url": "u", "verified_by": None, "mirror": True}])
    assert any("not verified" in p for p in bad)
    assert any("nothing vouches for the format of u" in p for p in bad)
    assert run.check("01_icm", "colab", _facts(), [{"url": "u", "verified_by": "md5", "mirror": True,
                                                    "vouched_by": "torchvision's VOCSegmentation"}]) == []
    assert any("ipywidgets" in p for p in run.check("00_pipeline", "colab", _facts(ipywidgets="8.1.5"), []))
    assert any("Colab branch" in p for p in run.check("00_pipeline", "tiny", _facts(colab_branch=False, scale="tiny"), []))


def test_report_entries_carry_vouched_by(tmp_path):
    import json

    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"url": KODAK, "verified_by": "first_use"}) + "\n"
                   + json.dumps({"url": "https://elsewhere/x", "verified_by": "sha256"}) + "\n")
    got = run.read_downloads(log, {"files": {KODAK: {"vouched_by": "PIL"}}})
    assert [d["vouched_by"] for d in got] == ["PIL", None]


def test_verdict_on_a_pending_chapter_needs_scale_not_built(monkeypatch):
    name = "02_spoof"
    monkeypatch.setattr(run, "PENDING", {name: "issue 12"})
    assert run.check(name, "colab", _facts(errors=[{"ename": "ScaleNotBuilt", "evalue": "…"}]), []) == []
    assert run.check(name, "colab", _facts(), [])  # ran without stopping: it must have fallen back
    assert run.check(name, "colab", _facts(errors=[{"ename": "KeyError", "evalue": "x"}]), [])


def test_snapshot_survives_a_stale_index(tmp_path, monkeypatch):
    """The book's preparation touches chapters' mtimes; the snapshot the first cell clones must still be made, and
    hold the working tree's content (uncommitted edits included)."""
    import os
    import subprocess
    import time

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "a.md").write_text("one\n")
    (repo / "b.md").write_text("two\n")
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "x"], check=True)
    later = time.time() + 5
    os.utime(repo / "a.md", (later, later))               # same content, newer mtime: a stale index
    monkeypatch.setattr(run, "ROOT", repo)
    monkeypatch.setattr(run, "repository_url", lambda: "https://example.org/course.git")
    (tmp_path / "work").mkdir()
    config = run.snapshot(tmp_path / "work")
    bare = tmp_path / "work" / "course.git"
    show = subprocess.run(["git", "-C", str(bare), "show", "main:a.md"], capture_output=True, text=True, check=True)
    assert show.stdout == "one\n" and "insteadOf = https://example.org/course.git" in open(config).read()
    (repo / "b.md").write_text("edited\n")                 # an uncommitted edit is what the clone gets
    run.snapshot(tmp_path / "work")
    show = subprocess.run(["git", "-C", str(bare), "show", "main:b.md"], capture_output=True, text=True, check=True)
    assert show.stdout == "edited\n"


def test_a_drive_download_resumes_through_gdown_against_the_mirror(tmp_path, monkeypatch):
    """gdown's own partial file (``<output><8 characters>.part``), left by an interrupted run, is resumed with a Range
    request after Drive's confirmation page; the file is then checked like any download."""
    import hashlib
    import json
    import os

    data = os.urandom(600_000)
    url = download.DRIVE_URL.format("RESUME_ID")
    (tmp_path / "m" / "files").mkdir(parents=True)
    (tmp_path / "m" / "files" / "x.bin").write_bytes(data)
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(
        {"files": {url: {"sha256": hashlib.sha256(data).hexdigest(), "path": "files/x.bin"}}}))
    c = tmp_path / "c"
    c.mkdir()
    (c / "x.ckpt.driveABCDEFGH.part").write_bytes(data[:200_000])
    with mirror.serve(tmp_path / "m") as (base, served):
        monkeypatch.setenv("COURSE_MIRROR", base)
        path = download.fetch_drive("RESUME_ID", reader="torch.load(weights_only=True)", filename="x.ckpt",
                                    cache_dir=c, progress=False)
    assert path.read_bytes() == data and any(s.endswith("(from byte 200000)") for s in served)
    assert sorted(p.name for p in c.iterdir()) == ["first-use-sha256.json", "x.ckpt"]


def test_mirror_makes_a_file_again_when_its_maker_code_changed(tmp_path, monkeypatch):
    first = mirror.build(tmp_path, [KODAK])["files"][KODAK]["sha256"]
    assert mirror.build(tmp_path, [KODAK])["files"][KODAK]["sha256"] == first      # same code: kept
    path = tmp_path / "files" / mirror.local_name(KODAK)
    stamp = path.with_name(path.name + ".maker")
    path.write_bytes(b"made by an older maker")
    assert mirror.build(tmp_path, [KODAK])["files"][KODAK]["sha256"] != first      # stamp still matches: kept
    stamp.write_text("older maker code")
    assert mirror.build(tmp_path, [KODAK])["files"][KODAK]["sha256"] == first      # stamp differs: made again
