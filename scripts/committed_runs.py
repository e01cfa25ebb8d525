"""The trainings committed with the course, so that the `tiny` build reads them instead of training them.

    python scripts/committed_runs.py              # write them from the course cache (computing what it lacks)
    python scripts/committed_runs.py --recompute  # train every one of them again first

Which: chapter 1's ablation rows (the poster's other ``k × s`` finetunings, :meth:`lib.icm.config.ICMConfig.runs`)
and chapter 2's partial-spoof countermeasures of the cross-faded and clean splice conditions. The runs each chapter
is about (chapter 1's PatchGAN, MSE-only control and LI; chapter 2's hard-splice CMs) are still trained by the build.
Each file is the run's memoised result, named as in the cache (``lib.storage.cache.committed_path``), its sha256 in
the folder's ``MANIFEST.json`` with the command and commit that wrote it; ``tests/test_committed_runs.py`` trains
the first steps of one of each again and compares them with the committed history.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib import runtime  # noqa: E402
from lib.icm import experiment as icm_x  # noqa: E402
from lib.icm.config import CONFIGS as ICM_CONFIGS  # noqa: E402
from lib.icm.decoder_finetuning import finetune  # noqa: E402
from lib.spoof import experiment as spoof_x  # noqa: E402
from lib.storage import cache, checkpoint  # noqa: E402
from lib.storage.hashes import sha256sum  # noqa: E402

COMMAND = "python scripts/committed_runs.py --recompute"
SPOOF_SPLICES = ("xfade", "clean")


def icm_runs():
    """``[(name, key, version, compute)]`` of chapter 1's committed finetunings (the ablation rows at tiny)."""
    cfg = ICM_CONFIGS["tiny"]
    train_photos, _ = icm_x.photos_split()
    base, _ = icm_x.load_base()
    out = []
    for run in cfg.runs().ablation:
        key = icm_x.finetune_key(base, run.settings, run.milestones, tag=cfg.scale)
        out.append((run.name, key, "1", lambda run=run: finetune(base, train_photos, run.settings,
                                                                  milestones=run.milestones)))
    return out


def spoof_runs():
    """``[(name, key, version, compute)]`` of chapter 2's committed CMs (partial spoofs, cross-faded and clean)."""
    cfg = spoof_x.TINY
    out = []
    for seed in cfg.seeds:
        for splice in SPOOF_SPLICES:
            _, key = spoof_x.tiny_keys("partial", splice, seed, cfg)
            out.append((f"partial-{splice}-s{seed}", key, spoof_x.VERSION,
                        lambda splice=splice, seed=seed: spoof_x.run(
                            spoof_x.tiny_sets(splice, cfg), train_on="partial", seed=seed,
                            model_fn=cfg.model.factory(), **spoof_x._train_kwargs(cfg.train))))
    return out


def write(folder: Path, runs, recompute: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for name, key, version, compute in runs:
        path = cache.committed_path(folder, key, version)
        t0 = time.time()
        runtime.setup(seed=0, threads=1)   # as `make data` runs a memoised step
        if recompute:
            result = compute()
        else:
            result = cache.memo(key, compute, version=version, committed=folder if path.exists() else None)
        seconds = time.time() - t0
        with checkpoint.atomic_path(path) as tmp:
            checkpoint.save(cache._encode(result), tmp)
        manifest = {f: e for f, e in manifest.items() if e.get("run") != name or f == path.name}
        manifest[path.name] = {"run": name, "sha256": sha256sum(path), "key": key, "version": version,
                               "command": COMMAND, "commit": runtime.commit(), "machine": platform.machine(),
                               "date": time.strftime("%Y-%m-%d"),
                               **({"train_seconds": round(seconds, 1)} if recompute else {})}
        print(f"{folder.relative_to(ROOT)}/{path.name[:40]}…  {name}  ({seconds:.0f} s)")
    stale = [f for f in folder.glob("*.pt") if f.name not in manifest]
    for f in stale:
        f.unlink()
    with checkpoint.atomic_path(manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recompute", action="store_true", help="train every committed run again (about 7 minutes)")
    a = p.parse_args(argv)
    write(icm_x.COMMITTED, icm_runs(), a.recompute)
    write(spoof_x.COMMITTED, spoof_runs(), a.recompute)


if __name__ == "__main__":
    main()
