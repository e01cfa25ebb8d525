"""Whether "spatial blocks add mIoU on trained labels" can be resolved at ``tiny``: more seeds, and the power.

Each point is one tiny LSeg with MiniLM text, with bottleneck×2 spatial blocks or none, at one seed: the
committed run where there is one (``training.load_tiny``), else trained here with the chapter's own
``training.train_tiny`` (the ``tiny`` recipe, only the seed changed). Each is evaluated with the chapter's
protocols (``evaluation.all_labels_protocol``, ``evaluation.binary_protocol``). From the per-seed differences
(blocks minus none, same seed) :func:`power` computes how many seeds a paired t-test needs to detect a one-point
difference with 80 % power. The sweep runs from ``scripts/sweeps.py``; the chapter reads its file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lib import sweep
from lib.lseg import evaluation, training
from lib.lseg.config import CONFIGS
from lib.lseg.data import tiny_dataset

NAME = "lseg_blocks_seeds"
PATH = Path(__file__).parent / "results" / f"{NAME}.json"
ARMS = {"bottleneck": 2, "none": 0}     # block arch -> depth: the chapter's two MiniLM arms
SEEDS = tuple(range(4))                 # 0-2: the committed runs; 3 trained by the sweep
METRICS = ("seen_miou", "held_out_miou", "binary_miou")
_DS = {}


def _tiny_data() -> tuple:
    """(n_train, n_test, image_size, seed) of the ``tiny`` configuration's data."""
    d = CONFIGS["tiny"].data
    return d.n_train, d.n_test, d.image_size, d.seed


def dataset() -> dict:
    """The chapter's tiny data set (built once per process)."""
    if "ds" not in _DS:
        _DS["ds"] = tiny_dataset(*_tiny_data())
    return _DS["ds"]


def points(seeds=SEEDS) -> list[dict]:
    """Both arms at every seed, seed by seed (an interrupted sweep keeps whole pairs)."""
    return [{"arch": a, "seed": int(s)} for s in seeds for a in ARMS]


def model_for(arch: str, seed: int, ds: dict):
    """(model, encoder, where it came from): the committed run if there is one, else trained here (resumable)."""
    depth = ARMS[arch]
    name = training.run_name("minilm", arch, depth, seed)
    if ("minilm", arch, depth, seed) in training.TINY_RUNS:
        model, _, enc = training.load_tiny(name, ds)
        return model, enc, "committed"
    model, _, enc = training.train_tiny(ds, "minilm", arch, depth, seed, ckpt_path=training.work_path(name))
    return model, enc, "trained"


def point(params: dict) -> dict:
    """One run's seen-label and held-out mIoU (all labels offered) and held-out binary mIoU, as fractions."""
    ds = dataset()
    model, enc, source = model_for(params["arch"], int(params["seed"]), ds)
    T = enc(ds["names"])
    I = evaluation.pixel_embeddings(model, ds["test"]["images"])
    allp = evaluation.all_labels_protocol(model, I, T, ds)
    binp = evaluation.binary_protocol(model, I, T, ds)
    return {"seen_miou": round(float(allp["seen_miou"]), 8), "held_out_miou": round(float(allp["held_out_miou"]), 8),
            "binary_miou": round(float(binp["miou"]), 8), "source": source}


def point_1thread(params: dict) -> dict:
    """:func:`point` with one torch thread, as the committed file was made (the same sums, the same numbers)."""
    with sweep.one_thread():
        return point(params)


def meta() -> dict:
    """The settings shared by every point, written into the sweep file."""
    return {"config": "tiny", "changed": ["seed"], "text": "minilm", "arms": dict(ARMS), "torch_threads": 1}


def run_sweep(path=PATH, seeds=SEEDS, progress: bool = True) -> dict:
    """Run (or resume) the sweep and write its file at ``path``."""
    return sweep.run(NAME, path, point_1thread, points(seeds), script=f"python scripts/sweeps.py {NAME}",
                     meta=meta(), progress=progress)


def load(path=PATH) -> dict:
    """The committed sweep file."""
    return sweep.load(path)


def paired(data: dict, metric: str = "seen_miou") -> dict:
    """Per seed present in both arms: the blocks' and the no-blocks value and their difference, in mIoU points."""
    by = {(p["params"]["arch"], p["params"]["seed"]): 100 * p["result"][metric] for p in data["points"]}
    seeds = sorted(s for a, s in by if a == "bottleneck" and ("none", s) in by)
    on = np.array([by[("bottleneck", s)] for s in seeds])
    off = np.array([by[("none", s)] for s in seeds])
    return {"seeds": seeds, "on": on, "off": off, "diff": on - off}


def paired_power(n: int, delta: float, sd: float, alpha: float = 0.05) -> float:
    """Power of a two-sided paired t-test with ``n`` pairs to detect a mean difference ``delta`` when the
    differences have standard deviation ``sd`` (non-central t, scipy)."""
    from scipy.stats import nct, t

    df = n - 1
    crit = t.ppf(1 - alpha / 2, df)
    ncp = delta / sd * np.sqrt(n)
    return float(1 - nct.cdf(crit, df, ncp) + nct.cdf(-crit, df, ncp))


def seeds_needed(delta: float, sd: float, power: float = 0.8, alpha: float = 0.05, limit: int = 100_000) -> int:
    """The fewest seeds (pairs) with which a paired t-test reaches ``power`` for a difference ``delta``."""
    if sd <= 0:
        return 2
    lo, hi = 2, 2
    while paired_power(hi, delta, sd, alpha) < power:
        lo, hi = hi, hi * 2
        if hi > limit:
            return limit
    while lo < hi:                      # power grows with n: bisect for the first n that reaches it
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if paired_power(mid, delta, sd, alpha) < power else (lo, mid)
    return lo


def power(data: dict, metric: str = "seen_miou", delta: float = 1.0) -> dict:
    """The measured paired differences (mean, sd, 95 % interval, paired t-test p) and the seeds a one-point
    (``delta``) difference needs for 80 % power at that spread."""
    from scipy.stats import t, ttest_rel

    d = paired(data, metric)
    diff, n = d["diff"], len(d["diff"])
    sd = float(diff.std(ddof=1))
    half = float(t.ppf(0.975, n - 1) * sd / np.sqrt(n))
    return {"metric": metric, "n": n, "mean": float(diff.mean()), "sd": sd, "ci95": (float(diff.mean()) - half,
            float(diff.mean()) + half), "p": float(ttest_rel(d["on"], d["off"]).pvalue),
            "power_now": paired_power(n, delta, sd), "needed": seeds_needed(delta, sd), "delta": delta,
            "sd_arms": (float(d["on"].std(ddof=1)), float(d["off"].std(ddof=1)))}
