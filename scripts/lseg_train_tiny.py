"""Train the tiny LSeg runs the chapter loads, and write them (fp16 weights) with a sha256 manifest.

    python scripts/lseg_train_tiny.py                      # all runs (3 seeds × {bottleneck×2, none} + random control)
    python scripts/lseg_train_tiny.py --runs minilm-bottleneck2-seed0 --steps 5 --out /tmp/x   # shortened (tests)

Each run resumes from its work checkpoint in $COURSE_CACHE/lseg/work if interrupted.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

import lib  # noqa: E402
from lib import runtime  # noqa: E402
from lib.storage import checkpoint
from lib.lseg import data, training  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="*", default=None, help="run names (default: all of training.TINY_RUNS)")
    ap.add_argument("--steps", type=int, default=None, help="override the recipe's number of steps")
    ap.add_argument("--out", default=str(training.CHECKPOINT_DIR))
    args = ap.parse_args(argv)
    runtime.setup(seed=0, threads=1)
    ds = data.tiny_dataset()
    runs = {training.run_name(*r): r for r in training.TINY_RUNS}
    names = args.runs or list(runs)
    os.makedirs(args.out, exist_ok=True)
    man_path = os.path.join(args.out, "MANIFEST.json")
    for name in names:
        text, arch, depth, seed = runs[name]
        t0 = time.time()
        model, history, _ = training.train_tiny(ds, text, arch, depth, seed, steps=args.steps,
                                                ckpt_path=training.work_path(name, args.steps))
        path = os.path.join(args.out, f"{name}.pt")
        checkpoint.save(training.pack(model, history, name, args.steps), path)
        manifest = json.load(open(man_path)) if os.path.exists(man_path) else {}  # re-read: runs may be parallel
        manifest[name] = {"sha256": lib.storage.hashes.sha256sum(path), "seconds": round(time.time() - t0, 1),
                          "steps": args.steps or training.TINY_RECIPE["steps"],
                          "command": f"python scripts/lseg_train_tiny.py --runs {name}"
                                     + (f" --steps {args.steps}" if args.steps else "")}
        with checkpoint.atomic_path(man_path) as tmp:
            tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        print(f"{name}: {manifest[name]['seconds']} s, final loss {history[-1]['loss']:.3f}", flush=True)


if __name__ == "__main__":
    main()
