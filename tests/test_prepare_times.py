"""The order of a first build: with no durations in its cache, the scheduler orders the steps by the committed
durations of a fresh build, which name every step the tiny build has."""
import json

from scripts import prepare


def test_a_fresh_cache_orders_by_the_committed_durations_and_a_measured_one_by_its_own(tmp_path):
    committed = json.loads(prepare.MEASURED.read_text())["seconds"]
    assert prepare.step_seconds(tmp_path / "absent.json") == committed
    (tmp_path / "times.json").write_text(json.dumps({"spoof corpus": 3.0}))
    assert prepare.step_seconds(tmp_path / "times.json") == {"spoof corpus": 3.0}


def test_the_committed_durations_name_every_step_of_the_tiny_build(monkeypatch):
    monkeypatch.setenv("COURSE_SCALE", "tiny")
    names = {s.name for s in prepare.all_steps()}
    assert names <= set(json.loads(prepare.MEASURED.read_text())["seconds"]), (
        "a step has no committed duration: run `make data` on a fresh cache, then python -m scripts.prepare --save-times")
