"""lib.sweep: points run once, an interrupted sweep resumes, the file carries its provenance."""
import json

import pytest

from lib import sweep


def test_sweep_runs_resumes_and_records_provenance(tmp_path):
    calls = []

    def fn(p):
        calls.append(p["seed"])
        if p["seed"] == 2 and len(calls) == 3:
            raise KeyboardInterrupt  # the run stops part-way
        return {"score": p["seed"] * 0.5, "steps": p["steps"]}

    points = [{"steps": 10, "seed": s} for s in range(4)]
    path = tmp_path / "results" / "demo.json"
    with pytest.raises(KeyboardInterrupt):
        sweep.run("demo", path, fn, points, script="python scripts/sweeps.py demo", progress=False)
    assert not path.exists() and (tmp_path / "results" / "demo.partial.json").exists()
    out = sweep.run("demo", path, fn, points, script="python scripts/sweeps.py demo", progress=False)
    assert calls == [0, 1, 2, 2, 3]          # the two finished points were not run again
    assert not (tmp_path / "results" / "demo.partial.json").exists()
    data = sweep.load(path)
    assert data == json.loads(path.read_text()) and data["script"].endswith("demo")
    assert all(k in data for k in sweep.PROVENANCE) and [p["params"] for p in data["points"]] == points
    assert sweep.find(data, seed=3)["score"] == 1.5
    assert sweep.table(data, "score")[1] == {"steps": 10, "seed": 1, "score": 0.5}


def test_sweep_refuses_bad_input(tmp_path):
    with pytest.raises(sweep.SweepError, match="twice"):
        sweep.run("d", tmp_path / "d.json", lambda p: {}, [{"a": 1}, {"a": 1}], script="x", progress=False)
    with pytest.raises(sweep.SweepError, match="not a dict"):
        sweep.run("d", tmp_path / "d.json", lambda p: 3.0, [{"a": 1}], script="x", progress=False)
    with pytest.raises(sweep.SweepError, match="make sweeps"):
        sweep.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"sweep": "x", "points": []}))
    with pytest.raises(sweep.SweepError, match="lacks"):
        sweep.load(tmp_path / "bad.json")
    data = {"sweep": "x", "points": [{"params": {"a": 1, "s": 0}, "result": {}}, {"params": {"a": 1, "s": 1},
                                                                                     "result": {}}]}
    with pytest.raises(sweep.SweepError, match="2 points match"):
        sweep.find(data, a=1)


def test_close_compares_nested_results():
    assert sweep.close({"a": [1.0, 2.0]}, {"a": [1.0, 2.0 + 1e-9]})
    assert not sweep.close({"a": [1.0, 2.0]}, {"a": [1.0, 2.1]})
    assert not sweep.close({"a": 1.0}, {"b": 1.0}) and sweep.close(float("nan"), float("nan"))
