"""The `paper` scale rehearsed on this CPU: each built recipe under ``torchrun --nproc_per_node=2`` (gloo) with
``COURSE_REHEARSAL=1`` on the Colab rehearsal's loopback mirror of miniature files, then the chapter executed at
``COURSE_SCALE=paper COURSE_REHEARSAL=1`` reading the recipe's results.

    make paper-rehearsal        # reports: artifacts/paper-rehearsal/{spoof,lseg,icm}.json
    python scripts/paper_rehearsal.py --only icm   # one recipe

What it checks, per recipe:
- two ranks trained (a rank was killed during the first attempt, torchrun restarted the job, and it resumed from
  its checkpoint) and end with the same weights as an uninterrupted two-process run;
- the training shards of one epoch are disjoint and cover the episodes (all but the remainder of a batch);
- the evaluation split over two ranks and gathered equals a one-process evaluation of the same weights;
- the chapter at ``paper`` (rehearsal) executes end to end, reads those results and runs no other scale's config.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "colab" / "rehearsal"))
REPORTS = ROOT / "artifacts" / "paper-rehearsal"
PY = str(ROOT / ".venv" / "bin" / "python")
BOOK_CACHE = Path(os.environ.get("COURSE_CACHE") or Path.home() / ".cache" / "repro-course")   # read only


def run(cmd: list[str], env: dict, log: Path, timeout: int = 900) -> float:
    t0 = time.time()
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        r = subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if r.returncode:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}; see {log}:\n{log.read_text()[-3000:]}")
    return time.time() - t0


def torchrun(*args: str, restarts: int = 0) -> list[str]:
    return [PY, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--max-restarts={restarts}",
            "--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:0", "-m", *args]


def in_process(fn, argv: list[str], env: dict) -> float:
    """``fn(argv)`` in this process with ``env`` as its environment (restored afterwards); returns the seconds."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    t0 = time.time()
    try:
        if fn(argv):
            raise SystemExit(f"failed: {argv}")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return time.time() - t0


def weights_difference(a: Path, b: Path) -> float:
    import torch

    from lib.storage import checkpoint

    sa, sb = checkpoint.load(a)["model"], checkpoint.load(b)["model"]
    if sa.keys() != sb.keys():
        return float("inf")
    return max(float((sa[k].double() - sb[k].double()).abs().max()) if sa[k].numel() else 0.0 for k in sa)


# the book build's memoised miniature results each chapter at paper reuses: (prefix, prefixes not to copy)
SEEDED = {"03_lseg": ("lseg-", ("lseg-paper", "lseg-pascal5i")), "01_icm": ("icm-", ("icm-paper",))}


def seed_cache(cache: Path, name: str) -> int:
    """Copy the book build's memoised miniature results of chapter ``name`` (:data:`SEEDED`) into the rehearsal's
    own cache (so that the chapter does not recompute them); returns how many files were copied."""
    (cache / "memo").mkdir(parents=True, exist_ok=True)
    if name not in SEEDED:
        return 0
    prefix, skip = SEEDED[name]
    n = 0
    for f in (BOOK_CACHE / "memo").glob(prefix + "*"):
        if not f.name.startswith(skip):
            shutil.copy2(f, cache / "memo" / f.name)
            n += 1
    return n


def lseg(work: Path, base_url: str, log: Path, notebook: bool) -> dict:
    from lib.lseg import config as lseg_config, recipe as lseg_recipe

    env0 = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_")}
    env0.update({"COURSE_SCALE": "paper", "COURSE_REHEARSAL": "1", "COURSE_MIRROR": base_url, "OMP_NUM_THREADS": "1",
                 "COURSE_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0",
                 "COURSE_DOWNLOAD_LOG": str(work / "downloads.jsonl"), "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"})
    killed = {**env0, "COURSE_CACHE": str(work / "cache"), lseg_recipe.KILL_ENV: "1:2"}
    plain = {**env0, "COURSE_CACHE": str(work / "cache-uninterrupted")}
    seconds = {}
    seconds["train, rank 1 killed, restarted"] = run(
        torchrun("lib.lseg.recipe", "train", "--quiet", "--report", str(work / "train.json"), restarts=1), killed, log)
    seconds["train, uninterrupted"] = run(torchrun("lib.lseg.recipe", "train", "--quiet"), plain, log)
    seconds["evaluate, 2 ranks"] = run(
        torchrun("lib.lseg.recipe", "evaluate", "--report", str(work / "eval2.json")), killed, log)
    seconds["evaluate, 1 process"] = in_process(lseg_recipe.main, ["evaluate", "--no-write", "--quiet", "--report",
                                                                   str(work / "eval1.json")], killed)
    restarted = "killed after step" in log.read_text()
    train_rep = json.loads((work / "train.json").read_text())
    ev2, ev1 = (json.loads((work / f"eval{n}.json").read_text()) for n in (2, 1))
    cfg = lseg_config.CONFIGS["paper"].rehearsed()
    folds = {}
    saved = os.environ.get("COURSE_CACHE")
    for f in cfg.recipe.folds:
        k = f"fold{f}"
        os.environ["COURSE_CACHE"] = killed["COURSE_CACHE"]
        a = lseg_recipe.work_file(cfg, f)
        os.environ["COURSE_CACHE"] = plain["COURSE_CACHE"]
        b = lseg_recipe.work_file(cfg, f)
        os.environ.pop("COURSE_CACHE")
        if saved is not None:
            os.environ["COURSE_CACHE"] = saved
        diff = weights_difference(a, b)
        tr, e2, e1 = train_rep[k], ev2[k], ev1[k]
        folds[k] = {
            "ranks": tr["world"], "steps": tr["steps"], "shards": tr["shards"],
            "killed_and_restarted": restarted, "max_weight_difference_vs_uninterrupted": diff,
            "eval_world": [e2["world"], e1["world"]], "eval_episodes": e2["episodes"],
            "gathered_miou": e2["miou"], "one_process_miou": e1["miou"], "gathered_fb_iou": e2["fb_iou"],
            "one_process_fb_iou": e1["fb_iou"], "reduced_equals_gathered": e2["reduced_equals_gathered"],
            "per_episode_equal": e2["per_episode"] == e1["per_episode"]}
    problems = []
    for k, f in folds.items():
        s = f["shards"]
        if f["ranks"] != 2 or f["eval_world"] != [2, 1]:
            problems.append(f"{k}: ranks {f['ranks']}, evaluation worlds {f['eval_world']}")
        if not (s["disjoint"] and s["covers_all_but_remainder"] and s["global_batches_equal_one_process"]):
            problems.append(f"{k}: shards {s}")
        if not restarted or f["max_weight_difference_vs_uninterrupted"] > 1e-6:
            problems.append(f"{k}: restarted {restarted}, weights differ by {diff}")
        if not (f["per_episode_equal"] and f["reduced_equals_gathered"] and f["gathered_miou"] == f["one_process_miou"]
                and f["gathered_fb_iou"] == f["one_process_fb_iou"]):
            problems.append(f"{k}: gathered evaluation differs from one process")
    out = {"recipe": "lib.lseg.recipe", "config": cfg.describe(), "folds": folds, "seconds": seconds}
    if notebook:
        out["notebook"] = chapter_run("03_lseg", killed, work, problems)
        seconds["chapter 3 at paper (rehearsal)"] = out["notebook"]["seconds"]
    out.update(passed=not problems, problems=problems)
    return out


def spoof(work: Path, base_url: str, log: Path, notebook: bool) -> dict:
    """Chapter 2's recipe: two ranks train both countermeasures and evaluate them; the gathered evaluation is
    compared with a one-process evaluation of the same averaged weights; then the chapter reads the results."""
    import numpy as np

    from lib.spoof import config as spoof_config, recipe as spoof_recipe

    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_")}
    env.update({"COURSE_SCALE": "paper", "COURSE_REHEARSAL": "1", "COURSE_MIRROR": base_url, "OMP_NUM_THREADS": "1",
                "COURSE_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0",
                "COURSE_DOWNLOAD_LOG": str(work / "downloads.jsonl"), "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1",
                "COURSE_CACHE": str(work / "cache")})
    seconds = {}
    seconds["train, 2 ranks"] = run(torchrun("lib.spoof.recipe", "train", "--quiet", "--report",
                                             str(work / "train.json")), env, log)
    seconds["evaluate, 2 ranks"] = run(torchrun("lib.spoof.recipe", "evaluate", "--quiet", "--report",
                                                str(work / "eval2.json")), env, log)
    # the one-process comparison for the partial-spoof CM only (XLSR-53 on a shared CPU is slow)
    seconds["evaluate, 1 process"] = in_process(spoof_recipe.main, ["evaluate", "--no-write", "--quiet", "--train-on",
                                                                    "partial", "--report", str(work / "eval1.json")],
                                                env)
    train_rep = json.loads((work / "train.json").read_text())
    ev2, ev1 = (json.loads((work / f"eval{n}.json").read_text()) for n in (2, 1))
    cfg = spoof_config.CONFIGS["paper"].rehearsed()
    cms, problems = {}, []
    for k, tr in train_rep.items():
        e2, e1 = ev2[k], ev1.get(k, ev2[k])
        cam_diff = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(e2["cam_spoof"],
                                                                                         e1["cam_spoof"]))
        cms[k] = {"compared_with_one_process": k in ev1, "ranks": tr["world"], "steps": tr["steps"],
                  "averaged_epochs": tr["averaged_epochs"],
                  "shards": tr["shards"], "eval_world": [e2["world"], e1["world"]], "utterances": e2["utterances"],
                  "ids_equal": e2["ids_ps"] == e1["ids_ps"], "cams": [len(e2["cam_spoof"]), len(e1["cam_spoof"])],
                  "max_score_difference": float(np.abs(np.subtract(e2["scores_ps"], e1["scores_ps"])).max()),
                  "max_cam_difference": cam_diff, "gathered_eer": e2["eer_ps"], "one_process_eer": e1["eer_ps"],
                  "gathered_rcq_spoof": e2["rcq_spoof"], "one_process_rcq_spoof": e1["rcq_spoof"],
                  "reduced_equals_gathered": e2["reduced_equals_gathered"]}
        c, s = cms[k], tr["shards"]
        if c["ranks"] != 2 or c["eval_world"] != [2, 1 if k in ev1 else 2]:
            problems.append(f"{k}: ranks {c['ranks']}, evaluation worlds {c['eval_world']}")
        if not (s["disjoint"] and s["covers_all_but_remainder"] and s["global_batches_equal_one_process"]):
            problems.append(f"{k}: shards {s}")
        if len(c["averaged_epochs"]) != min(cfg.train.num_avg, cfg.train.epochs):
            problems.append(f"{k}: averaged epochs {c['averaged_epochs']}")
        rcq_close = all(abs(e2["rcq_spoof"][x] - e1["rcq_spoof"][x]) < 1e-3 for x in e1["rcq_spoof"])
        if not (c["ids_equal"] and c["cams"][0] == c["cams"][1] and c["max_score_difference"] < 1e-5
                and c["max_cam_difference"] < 1e-4 and rcq_close and c["reduced_equals_gathered"]
                and c["gathered_eer"] == c["one_process_eer"]):
            problems.append(f"{k}: gathered evaluation differs from one process")
    if not any(c["compared_with_one_process"] for c in cms.values()):
        problems.append("no countermeasure was compared with a one-process evaluation")
    out = {"recipe": "lib.spoof.recipe", "config": cfg.describe(), "countermeasures": cms, "seconds": seconds}
    if notebook:
        eer = ev2[spoof_recipe.cm_name("partial", cfg.seeds[0])]["eer_ps"]
        out["notebook"] = chapter_run("02_spoof", env, work, problems, from_recipe=lambda rows: any(
            r[1] == "partial-spoof CM: EER" and r[2] is not None and abs(r[2] - eer) < 1e-9 for r in rows))
        seconds["chapter 2 at paper (rehearsal)"] = out["notebook"]["seconds"]
    out.update(passed=not problems, problems=problems)
    return out


def icm(work: Path, base_url: str, log: Path, notebook: bool) -> dict:
    """Chapter 1's recipe: train (base codec and finetunings) and evaluate on 2 ranks, evaluate again in one
    process from the same checkpoints, then the chapter at ``paper`` (rehearsal)."""
    import torch

    from lib.icm import config, recipe as icm_recipe

    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_")}
    env.update({"COURSE_SCALE": "paper", "COURSE_REHEARSAL": "1", "COURSE_MIRROR": base_url, "OMP_NUM_THREADS": "1",
                "COURSE_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0",
                "COURSE_CACHE": str(work / "cache"),
                "COURSE_DOWNLOAD_LOG": str(work / "downloads.jsonl"), "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"})
    rep = {n: work / f"{n}.json" for n in ("train", "eval2", "eval1")}
    seconds = {"train, 2 ranks": run(torchrun("lib.icm.recipe", "train", "--report", str(rep["train"])), env, log),
               "evaluate, 2 ranks": run(torchrun("lib.icm.recipe", "evaluate", "--report", str(rep["eval2"])), env,
                                        log)}
    # the one-process evaluation in this process (its imports are already paid), on one thread as the ranks were
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seconds["evaluate, 1 process"] = in_process(icm_recipe.main, ["evaluate", "--no-write", "--report",
                                                                      str(rep["eval1"])], env)
    finally:
        torch.set_num_threads(threads)
    train_rep = json.loads(rep["train"].read_text())["train"]
    e2, e1 = (json.loads(rep[n].read_text())["evaluate"] for n in ("eval2", "eval1"))
    runs = {n: {"ranks": r["world"], "steps": r["steps"], "per_rank_batch": r["per_rank_batch"], "shards": r["shards"]}
            for n, r in train_rep.items()}
    problems = []
    for n, r in runs.items():
        s = r["shards"]
        if r["ranks"] != 2 or not (s["disjoint"] and s["covers_all_but_remainder"]
                                   and s["global_batches_equal_one_process"]):
            problems.append(f"{n}: ranks {r['ranks']}, shards {s}")
    if (e2["world"], e1["world"]) != (2, 1):
        problems.append(f"evaluation worlds {e2['world']}, {e1['world']}")
    same = json.dumps(e2["scores"], sort_keys=True) == json.dumps(e1["scores"], sort_keys=True)
    if not same or e2["task_images"] != e1["task_images"] or e2["fidelity_images"] != e1["fidelity_images"]:
        problems.append("the gathered evaluation differs from one process")
    if not all(v["same_bytes"] for v in e2["scores"].values()):
        problems.append("a finetuned head changed the bitstream")
    cfg = config.CONFIGS["paper"].rehearsed()
    out = {"recipe": "lib.icm.recipe", "config": cfg.describe(), "runs": runs, "eval_world": [e2["world"], e1["world"]],
           "gathered_equals_one_process": same, "images": [len(e2["fidelity_images"]), len(e2["task_images"])],
           "scores_2_ranks": {n: {k: v[k] for k in ("bpp", "psnr", "map_segm", "same_bytes")}
                              for n, v in e2["scores"].items()}, "seconds": seconds}
    if notebook:
        out["notebook"] = chapter_run("01_icm", env, work, problems)
        seconds["chapter 1 at paper (rehearsal)"] = out["notebook"]["seconds"]
    out.update(passed=not problems, problems=problems)
    return out


def chapter_run(name: str, env: dict, work: Path, problems: list, from_recipe=None) -> dict:
    """Execute the chapter notebook at ``paper`` (rehearsal) in this venv, with the recipe's cache.
    ``from_recipe(numbers)``: whether the chapter's scorecard shows the recipe's numbers (default: a row whose
    metric names the paper recipe)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from run import REPORT_CELL

    copied = seed_cache(Path(env["COURSE_CACHE"]), name)
    nb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(REPORT_CELL))
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    t0, error = time.time(), None
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "book")}},
                       allow_errors=False).execute()
    except CellExecutionError as err:
        error = f"{err.ename}: {str(err.evalue)[:1500]}"
    finally:
        os.environ.clear()
        os.environ.update(saved)
    report = None
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream" and "REHEARSAL-REPORT " in o.get("text", ""):
                report = json.loads(o["text"].split("REHEARSAL-REPORT ", 1)[1].splitlines()[0])
    if error:
        problems.append(f"chapter {name}: {error}")
    elif report is None:
        problems.append(f"chapter {name}: the report cell did not run")
    else:
        for ch, c in report["configs"].items():
            if c["scale"] != "paper" or c.get("rehearsal") != "True":
                problems.append(f"chapter {name} ran {ch}'s {c['scale']} configuration")
        if from_recipe is None:
            from_recipe = lambda rows: any(r[0] and "paper recipe" in r[1] and r[2] is not None for r in rows)  # noqa
        if not from_recipe(report["numbers"]):
            problems.append(f"chapter {name}: no scorecard number from the paper recipe")
    return {"seconds": round(time.time() - t0, 1), "error": error, "memo_files_reused": copied,
            "numbers": report and report["numbers"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=str(ROOT / ".cache" / "paper-rehearsal"))
    ap.add_argument("--no-notebook", action="store_true", help="skip executing the chapters")
    ap.add_argument("--only", choices=sorted(RECIPES), action="append", help="rehearse only this recipe (repeatable)")
    args = ap.parse_args()
    import mirror

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    mirror_dir = ROOT / ".cache" / "colab-rehearsal" / "mirror"
    subprocess.run([PY, str(ROOT / "colab" / "rehearsal" / "mirror.py"), "build", str(mirror_dir)], check=True)
    REPORTS.mkdir(parents=True, exist_ok=True)
    passed = True
    with mirror.serve(mirror_dir) as (base_url, _served):
        for name in args.only or RECIPES:
            t0 = time.time()
            (work / name).mkdir()
            out = RECIPES[name](work / name, base_url, work / name / f"{name}.log", notebook=not args.no_notebook)
            out["total_seconds"] = round(time.time() - t0, 1)
            (REPORTS / f"{name}.json").write_text(json.dumps(out, indent=1, default=str))
            print(json.dumps({k: out[k] for k in ("seconds", "total_seconds", "passed", "problems")}, indent=1))
            print(f"paper rehearsal: {name} {'passed' if out['passed'] else 'FAILED'} ({REPORTS / (name + '.json')})")
            passed &= out["passed"]
    return 0 if passed else 1


RECIPES = {"spoof": spoof, "lseg": lseg, "icm": icm}


if __name__ == "__main__":
    sys.exit(main())
