"""Why "missed partial spoofs have negative TR" (the paper's Table 3) does not hold at ``tiny``: a budget sweep.

Each point trains the chapter's partial-spoof countermeasure (``experiment.tiny_run``: the ``tiny`` configuration
with only the training steps and the seed changed) on the main splice condition and measures what Table 3 needs:
its EER, how many partial spoofs it misses at its EER threshold (the chapter's rule), the RCQ of those missed ones
(spoof target) and the RCQ of all partial spoofs. Across budgets and seeds this shows whether the sign of the
missed ones' TR follows the CM's strength. The sweep runs from ``scripts/sweeps.py``; the chapter reads its file.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from lib import sweep

from . import countermeasure, experiment
from .config import TINY
from .metrics import eer
from .rcq import KINDS, rcq, rcq_counts

NAME = "spoof_table3"
PATH = Path(__file__).parent / "results" / f"{NAME}.json"
SPLICE = "hard"                         # the chapter's main splice condition
STEPS = (50, 300, 150, 600)             # training budgets (300: the chapter's own CMs)
SEEDS = (0, 1, 2)


def points(steps=STEPS, seeds=SEEDS) -> list[dict]:
    """The grid, cheapest budgets first so that an interrupted sweep has the informative points early."""
    return [{"steps": int(n), "seed": int(s), "splice": SPLICE} for n in steps for s in seeds]


def _finite(x: float):
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


def summarise(res: dict, segments: list) -> dict:
    """Table 3's numbers from one CM's result (``experiment.run``'s dict): EER, misses at the EER threshold, RCQ of
    the missed partial spoofs and of all of them (spoof target), and their TR frame counts."""
    _, thr = eer(res["labels_ps"], res["scores_ps"], return_threshold=True)
    correct = np.asarray(res["scores_ps"])[np.asarray(res["labels_ps"]) == 1] >= thr
    wrong = np.flatnonzero(~correct)
    cams = res["cam_spoof"]
    out = {"eer": round(float(res["eer_ps"]), 6), "n_partial": int(len(correct)), "n_missed": int(len(wrong)),
           "rcq_all": {k: _finite(v) for k, v in rcq(cams, segments).items()}}
    if len(wrong):
        cw, sw = [cams[i] for i in wrong], [segments[i] for i in wrong]
        out["rcq_missed"] = {k: _finite(v) for k, v in rcq(cw, sw).items()}
        out["n_tr_missed"] = int(rcq_counts(cw, sw)["TR"])
    else:
        out["rcq_missed"] = dict.fromkeys(KINDS)
        out["n_tr_missed"] = 0
    out["tr_missed"], out["tr_all"] = out["rcq_missed"]["TR"], out["rcq_all"]["TR"]
    return out


def point(params: dict, fresh: bool = False) -> dict:
    """One point: the partial-spoof CM of ``params`` (steps, seed, splice), memoised in the course cache like the
    chapter's own CMs; ``fresh`` trains it again without the cache (what the test does)."""
    cfg = dataclasses.replace(TINY, train=dataclasses.replace(TINY.train, steps=int(params["steps"])))
    splice, seed, t = params.get("splice", SPLICE), int(params["seed"]), cfg.train
    sets = experiment.tiny_sets(splice, cfg)
    if fresh:
        res = countermeasure.run(sets, train_on="partial", seed=seed, steps=t.steps, model_fn=cfg.model.factory(),
                                 batch_size=t.batch_size, lr=t.lr, crop_s=t.crop_s, eval_batch=t.eval_batch)
    else:
        res = experiment.tiny_run("partial", splice, seed, cfg)
    return summarise(res, [it["segments"] for it in sets["eval"]["partial"]])


def point_1thread(params: dict) -> dict:
    """:func:`point` with one torch thread, as the committed file was made (the same sums, the same numbers)."""
    with sweep.one_thread():
        return point(params)


def meta() -> dict:
    """The settings shared by every point, written into the sweep file."""
    return {"config": "tiny", "changed": ["steps", "seed"], "train_on": "partial",
            "threshold": "each CM's EER threshold", "target": "spoof", "torch_threads": 1}


def run_sweep(path=PATH, steps=STEPS, seeds=SEEDS, progress: bool = True) -> dict:
    """Run (or resume) the sweep and write its file at ``path``."""
    return sweep.run(NAME, path, point_1thread, points(steps, seeds), script=f"python scripts/sweeps.py {NAME}",
                     meta=meta(), progress=progress)


def load(path=PATH) -> dict:
    """The committed sweep file."""
    return sweep.load(path)


def rows(data: dict) -> list[dict]:
    """One flat row per CM: steps, seed, EER %, misses, TR RCQ % of the missed and of all partial spoofs."""
    return [{"steps": p["params"]["steps"], "seed": p["params"]["seed"], "eer": p["result"]["eer"],
             "n_missed": p["result"]["n_missed"], "n_partial": p["result"]["n_partial"],
             "tr_missed": p["result"]["tr_missed"], "tr_all": p["result"]["tr_all"]} for p in data["points"]]


def sign_vs_strength(data: dict) -> dict:
    """Whether the missed spoofs' TR sign follows CM strength: Spearman's rho of EER against missed-TR over all CMs
    (scipy), the mean missed-TR per budget, and how many CMs per budget give it a negative sign and how many give
    the missed ones less TR attention than all partial spoofs."""
    from scipy.stats import spearmanr

    r = [x for x in rows(data) if x["tr_missed"] is not None]
    rho, p = spearmanr([x["eer"] for x in r], [x["tr_missed"] for x in r]) if len(r) > 2 else (np.nan, np.nan)
    by = {}
    for x in r:
        by.setdefault(x["steps"], []).append(x)
    budgets = {n: {"eer": float(np.mean([x["eer"] for x in v])), "tr_missed": float(np.mean([x["tr_missed"] for x in v])),
                   "negative": sum(x["tr_missed"] < 0 for x in v),
                   "below_all": sum(x["tr_missed"] < x["tr_all"] for x in v), "cms": len(v),
                   "missed": float(np.mean([x["n_missed"] for x in v]))} for n, v in sorted(by.items())}
    return {"rho": float(rho), "p": float(p), "n": len(r), "budgets": budgets}
