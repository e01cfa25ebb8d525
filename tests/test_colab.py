"""The Colab path's pieces that run without Colab: the Drive switch and colab/install.sh's checked steps."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lib import colab

ROOT = Path(__file__).resolve().parent.parent


def test_use_drive_off_keeps_the_cache_and_says_where(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_DOWNLOADS", "unset")   # recorded, so use_drive's value is undone after
    monkeypatch.delenv("COURSE_DOWNLOADS")
    assert colab.use_drive(False, drive=tmp_path / "drive") == tmp_path / "cache"
    out = capsys.readouterr().out
    assert "USE_DRIVE = True" in out and f"downloads: {tmp_path / 'cache' / 'downloads'}" in out


def _fake_drive(monkeypatch, mount):
    import types

    google = types.ModuleType("google")
    module = types.ModuleType("google.colab")
    module.drive = types.SimpleNamespace(mount=mount)
    google.colab = module
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", module)


def test_use_drive_mounts_and_moves_the_cache_but_not_the_downloads(monkeypatch, tmp_path, capsys):
    from lib.storage import cache, download, errors, verification

    mounted = []
    _fake_drive(monkeypatch, lambda path: mounted.append(path) or (Path(path) / "MyDrive").mkdir(parents=True))
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "local"))
    monkeypatch.setenv("COURSE_DOWNLOADS", "unset")   # recorded, so use_drive's value is undone after
    monkeypatch.delenv("COURSE_DOWNLOADS")
    monkeypatch.delenv("COURSE_MIRROR", raising=False)
    root = colab.use_drive(True, drive=tmp_path / "drive", downloads=tmp_path / "content" / "downloads")
    assert mounted == [str(tmp_path / "drive")]
    assert root == tmp_path / "drive" / "MyDrive" / "repro-course-cache" and root.is_dir()
    assert os.environ["COURSE_CACHE"] == str(root)
    assert cache.downloads_dir() == tmp_path / "content" / "downloads"
    out = capsys.readouterr().out
    assert f"downloads: {tmp_path / 'content' / 'downloads'}" in out and "record" in out
    # a file fetched now lands on the runtime's disk, its first-use record on Drive; a recycled runtime (the disk
    # wiped) finds the record and checks the file it gets again against it
    (tmp_path / "content" / "downloads" / "a.bin").write_bytes(b"the file")
    download.fetch("http://127.0.0.1:9/a.bin", reader="zip")
    record = root / "downloads" / verification.RECORD
    assert "a.bin" in record.read_text() and not (tmp_path / "content" / "downloads" / verification.RECORD).exists()
    (tmp_path / "content" / "downloads" / "a.bin").write_bytes(b"another file")
    with pytest.raises(errors.ChecksumError, match="first-use record"):
        download.fetch("http://127.0.0.1:9/a.bin", reader="zip")


def test_use_drive_when_drive_does_not_mount_says_what_to_do(monkeypatch, tmp_path):
    _fake_drive(monkeypatch, lambda path: None)  # the learner refused access: nothing appears
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "local"))
    with pytest.raises(colab.DriveNotMounted, match="USE_DRIVE = False"):
        colab.use_drive(True, drive=tmp_path / "drive")
    assert os.environ["COURSE_CACHE"] == str(tmp_path / "local")


def _install(tmp_path, fail_pip="", missing_deb="", broken_deb=""):
    """Run a copy of colab/install.sh with stand-ins for python's pip, dpkg and apt-get; (rc, stderr, course)."""
    course = tmp_path / "course"
    (course / "colab").mkdir(parents=True)
    for name in ("install.sh", "requirements.txt"):
        shutil.copy(ROOT / "colab" / name, course / "colab" / name)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    real = sys.executable
    (bin_ / "python").write_text(f"""#!/bin/bash
if [ "$1 $2 $3" = "-m pip install" ]; then echo "pip $*" >> {tmp_path}/log; case "$*" in *{fail_pip or 'NEVER'}*) exit 1;; esac; exit 0; fi
if [ "$1" = "-c" ]; then exit 0; fi
exec {real} "$@"
""")
    (bin_ / "dpkg").write_text(f"""#!/bin/bash
for p in "${{@:2}}"; do [ -f {tmp_path}/installed-$p ] || exit 1; done
""")
    (bin_ / "apt-get").write_text(f"""#!/bin/bash
echo "apt-get $*" >> {tmp_path}/log
[ "$1" = update ] && exit 0
p="${{@: -1}}"; [ "$p" = "{broken_deb}" ] && exit 100
touch {tmp_path}/installed-$p
""")
    for f in bin_.iterdir():
        f.chmod(0o755)
    if not missing_deb:
        for p in ("mate-backgrounds", "tuxpaint-stamps-default"):
            (tmp_path / f"installed-{p}").touch()
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(course / "colab" / "install.sh")], env=env, capture_output=True, text=True,
                       timeout=120)
    return r.returncode, r.stderr.strip().splitlines(), course


def test_install_pins_colab_versions_and_marks_success(tmp_path):
    rc, err, course = _install(tmp_path)
    assert rc == 0, err
    assert (course / ".installed").exists()
    pins = (course / "colab" / ".colab-pins.txt").read_text().split()
    assert pins and all("==" in p and p.split("==")[0] in {"torch", "torchvision", "torchaudio", "numpy", "ipywidgets"}
                        for p in pins)
    log = (tmp_path / "log").read_text()
    assert f"-c {course}/colab/.colab-pins.txt -r {course}/colab/requirements.txt" in log
    assert "--no-deps compressai==1.2.8" in log and "apt-get" not in log  # data packages already there


def test_install_failure_names_the_step_and_leaves_no_marker(tmp_path):
    rc, err, course = _install(tmp_path, fail_pip="compressai")
    assert rc == 1 and not (course / ".installed").exists()
    assert err[-1].startswith("colab/install.sh: CompressAI 1.2.8 did not install")


def test_install_failure_of_one_data_package_names_it(tmp_path):
    rc, err, course = _install(tmp_path, missing_deb="yes", broken_deb="tuxpaint-stamps-default")
    assert rc == 1 and not (course / ".installed").exists()
    assert "tuxpaint-stamps-default did not install" in err[-1]
    assert (tmp_path / "installed-mate-backgrounds").exists()


@pytest.mark.parametrize("url", ["https://github.com/x/y; rm -rf ~", 'https://github.com/x/y"', "git@github.com:x/y",
                                 "https://github.com/x/$(id)", ""])
def test_repository_url_must_be_a_plain_https_url(tmp_path, url):
    """_config.yml's URL goes into a Python string and a shell command in every first cell."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from sync_notebooks import repository_url

    config = tmp_path / "_config.yml"
    config.write_text(f"repository:\n  url: '{url}'\n")
    with pytest.raises(SystemExit, match="repository.url"):
        repository_url(config)
    config.write_text("repository:\n  url: https://github.com/mmlab-seminar/repro-course/\n")
    assert repository_url(config) == "https://github.com/mmlab-seminar/repro-course"
