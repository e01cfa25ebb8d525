"""Chapters 2 and 3's diagnosis sweeps: the committed files carry their provenance, one cheap point of each re-run
here equals its committed value, and the power arithmetic agrees with the textbook formula."""
import math

import numpy as np
import pytest
import torch

from lib import sweep


@pytest.fixture
def one_thread():
    """The sweeps ran with one torch thread; a re-run uses the same so that its floating-point sums match."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_spoof_table3_point_reruns_to_the_committed_value(one_thread):
    from lib.spoof import diagnosis
    data = diagnosis.load()
    assert data["script"].endswith(diagnosis.NAME) and data["meta"]["changed"] == ["steps", "seed"]
    steps = sorted({p["params"]["steps"] for p in data["points"]})
    assert len(steps) >= 3 and 300 in steps                    # a budget sweep around the chapter's own 300
    params = {"steps": steps[0], "seed": 0, "splice": diagnosis.SPLICE}   # the cheapest point
    again = diagnosis.point(params, fresh=True)                   # trained again, not read from the cache
    assert sweep.close(again, sweep.find(data, **params), rel=1e-5, abs_=1e-6), (again, sweep.find(data, **params))


def test_spoof_table3_rows_and_sign_summary():
    from lib.spoof import diagnosis
    data = diagnosis.load()
    rows = diagnosis.rows(data)
    assert len(rows) == len(data["points"])
    for r in rows:       # misses at the EER threshold: about EER % of the partial spoofs
        assert 0 <= r["n_missed"] <= r["n_partial"]
        assert abs(100 * r["n_missed"] / r["n_partial"] - r["eer"]) < 15
    s = diagnosis.sign_vs_strength(data)
    assert sum(b["cms"] for b in s["budgets"].values()) == s["n"] and -1 <= s["rho"] <= 1


def test_lseg_blocks_point_reruns_to_the_committed_value(one_thread):
    from lib.lseg import diagnosis
    data = diagnosis.load()
    params = {"arch": "bottleneck", "seed": 0}                  # a committed run: evaluation only
    again = diagnosis.point(params)
    assert again["source"] == "committed"
    assert sweep.close(again, sweep.find(data, **params), rel=1e-5, abs_=1e-6), (again, sweep.find(data, **params))


def test_lseg_power_matches_the_normal_approximation_and_the_data():
    from lib.lseg import diagnosis
    sd, delta = 4.0, 1.0
    n = diagnosis.seeds_needed(delta, sd)
    z = 1.959964 + 0.841621                                     # two-sided 5 %, 80 % power
    assert math.ceil((z * sd / delta) ** 2) <= n <= math.ceil((z * sd / delta) ** 2) + 3   # t adds a seed or two
    assert diagnosis.paired_power(n, delta, sd) >= 0.8 > diagnosis.paired_power(n - 1, delta, sd)
    assert diagnosis.seeds_needed(delta, sd / 2) < n            # less spread, fewer seeds
    data = diagnosis.load()
    p = diagnosis.power(data)
    d = diagnosis.paired(data)
    assert p["n"] == len(d["seeds"]) >= 3 and np.isclose(p["sd"], np.std(d["diff"], ddof=1))
    assert p["ci95"][0] < p["mean"] < p["ci95"][1]
    assert (p["power_now"] < 0.8) == (p["needed"] > p["n"])
