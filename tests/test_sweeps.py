"""The chapters' committed diagnosis sweeps: each file loads with its provenance, covers the grid scripts/sweeps.py
declares, and one cheap point re-run here equals its committed value."""
import importlib.util
from pathlib import Path

import pytest

from lib import sweep

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("sweeps", ROOT / "scripts" / "sweeps.py")
sweeps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sweeps)


@pytest.mark.parametrize("name", sorted(sweeps.SWEEPS))
def test_committed_sweep_covers_its_grid(name):
    path, _, grid, _ = sweeps.SWEEPS[name]
    data = sweep.load(path)
    assert data["sweep"] == name and data["script"] == f"python scripts/sweeps.py {name}"
    assert sorted(sweep.point_id(p["params"]) for p in data["points"]) == sorted(sweep.point_id(p) for p in grid())
    assert data["seconds"] > 0 and data["commit"] and data["machine"]


def test_icm_sweep_results_are_consistent():
    from lib.icm import diagnosis

    assert sweeps.SWEEPS["icm"][0] == diagnosis.RESULT   # the file the chapter reads is the one the script writes
    data = sweep.load(diagnosis.RESULT)
    for p in data["points"]:
        r = p["result"]
        assert r["same_bitstream"], f"{p['params']}: the finetuned decoder changed the bytes"
        assert 0 < r["amplitude"] < r["spread"] and 0 < r["artifact"] < 1   # a phase mean is within the residual
        assert 0 <= r["top1_n"] <= r["n_task"] and r["psnr"] > 20
        if p["params"]["steps"]:
            assert r["losses"]["step"][-1] == p["params"]["steps"] - 1
            assert ("d_loss" in r["losses"]) == (p["params"]["lambda_adv"] > 0)


def test_icm_cheap_point_reruns_to_its_committed_value():
    from lib.icm import diagnosis

    data = sweep.load(sweeps.SWEEPS["icm"][0])
    params = {"steps": 50, "lambda_adv": 0.0, "layers": "head", "seed": 0}
    committed = {k: v for k, v in sweep.find(data, **params).items() if k != "train_seconds"}
    rerun = {k: v for k, v in diagnosis.point(params).items() if k != "train_seconds"}
    assert sweep.close(rerun, committed, rel=1e-5, abs_=1e-7), {k: (rerun[k], committed[k]) for k in committed
                                                                 if not sweep.close(rerun[k], committed[k], 1e-5)}


def test_icm_point_refuses_unknown_parameters():
    from lib.icm import diagnosis

    with pytest.raises(ValueError, match="layers"):
        diagnosis.run_config({"steps": 10, "seed": 0, "lambda_adv": 0.0, "layers": "encoder"})
    with pytest.raises(ValueError, match="takes steps"):
        diagnosis.run_config({"steps": 10, "seed": 0, "lambda_adv": 0.0, "lr": 1e-3})
    cfg = diagnosis.run_config({"steps": 10, "seed": 2, "lambda_adv": 0.0, "layers": "decoder"})
    assert not cfg.adversarial and cfg.trainable[-1] == "g_s.6" and cfg.seed == 2 and (cfg.k, cfg.patch) == (3, 64)
