"""The trainings committed with the course (scripts/committed_runs.py): each file is listed with its sha256, each is
a run the tiny build asks for (so none is silently ignored after a change of settings), the cache reads a committed
file before computing and refuses a changed one, and the first steps of one run of each chapter, trained again
here, give the committed history to the last bit."""
import importlib.util
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from lib.icm import experiment as icm_x
from lib.spoof import experiment as spoof_x
from lib.storage import cache
from lib.storage.hashes import ChecksumError, sha256sum
from lib.sweep import one_thread

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("committed_runs", ROOT / "scripts" / "committed_runs.py")
committed_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(committed_runs)
FOLDERS = {"icm": (icm_x.COMMITTED, committed_runs.icm_runs), "spoof": (spoof_x.COMMITTED, committed_runs.spoof_runs)}
PREFIX = 11   # steps trained again: the history logs steps 0 and 10 of the run


@pytest.mark.parametrize("paper", sorted(FOLDERS))
def test_every_committed_file_is_listed_checked_and_asked_for(paper):
    folder, runs = FOLDERS[paper]
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert sorted(manifest) == sorted(p.name for p in folder.glob("*.pt"))
    for name, entry in manifest.items():
        assert sha256sum(folder / name) == entry["sha256"], name
    asked = {cache.committed_path(folder, key, version).name: name for name, key, version, _ in runs()}
    assert asked == {f: e["run"] for f, e in manifest.items()}


def test_memo_reads_a_committed_result_and_refuses_a_changed_one(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "committed"
    folder.mkdir()
    path = cache.committed_path(folder, "k", "1")
    shutil.copy(next(spoof_x.COMMITTED.glob("*.pt")), path)
    (folder / "MANIFEST.json").write_text(json.dumps({path.name: {"sha256": sha256sum(path), "command": "make it"}}))
    result = cache.memo("k", lambda: pytest.fail("computed although committed"), committed=folder)
    assert {"history", "scores_ps", "state"} <= set(result)
    with path.open("ab") as f:
        f.write(b"x")
    with pytest.raises(ChecksumError, match="make it"):
        cache.memo("k", lambda: None, committed=folder)
    assert cache.memo("other", lambda: 7, committed=folder) == 7   # nothing committed under that key: computed


def _prefix_matches(committed: list[dict], again: list[dict]) -> None:
    steps = {h["step"] for h in again} & {h["step"] for h in committed}
    assert steps == {0, PREFIX - 1}
    assert [h for h in again if h["step"] in steps] == [h for h in committed if h["step"] in steps]


def test_icm_run_first_steps_equal_the_committed_history():
    from lib.icm.config import CONFIGS
    from lib.icm.decoder_finetuning import finetune

    run = min(CONFIGS["tiny"].runs().ablation, key=lambda r: r.settings.k * r.settings.patch ** 2)
    base, _ = icm_x.load_base()
    key = icm_x.finetune_key(base, run.settings, run.milestones, tag="tiny")
    committed = cache.read_committed(icm_x.COMMITTED, key)
    with one_thread():
        again = finetune(base, icm_x.photos_split()[0], replace(run.settings, steps=PREFIX))
    _prefix_matches(committed["history"], again["history"])


def test_spoof_cm_first_steps_equal_the_committed_history():
    from lib.spoof.countermeasure import train_cm

    cfg, splice = spoof_x.TINY, "xfade"
    seed = cfg.seeds[-1]
    _, key = spoof_x.tiny_keys("partial", splice, seed, cfg)
    committed = cache.read_committed(spoof_x.COMMITTED, key, spoof_x.VERSION)
    train = spoof_x.tiny_sets(splice, cfg)["train"]
    with one_thread():
        _, again = train_cm(train["bona"] + train["partial"], seed=seed, steps=PREFIX,
                            model_fn=cfg.model.factory(), batch_size=cfg.train.batch_size, lr=cfg.train.lr,
                            crop_s=cfg.train.crop_s)
    _prefix_matches(committed["history"], again)
