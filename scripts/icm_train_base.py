"""Train the base ICM codec of Chapter 1 (rate + machine-task loss) and write a small checkpoint with its sha256.

    python scripts/icm_train_base.py --steps 2000 --out lib/icm/checkpoints/icm_base_tiny.pt

produced the committed ``lib/icm/checkpoints/icm_base_tiny.pt`` (see ``lib/icm/checkpoints/README.md``). Resumable:
a killed run continues from ``--work`` (its training checkpoint). ``--steps 3 --crop 64`` is the test suite's short run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import torch  # noqa: E402

import lib  # noqa: E402
from lib.icm import base, data  # noqa: E402
from lib.icm.machine import EfficientNetLite0  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = base.BaseConfig()
    for f, v in base.config_dict(d).items():
        p.add_argument(f"--{f.replace('_', '-')}", type=type(v), default=v)
    p.add_argument("--out", required=True, help="where to write the codec's state dict (fp32, entropy tables)")
    p.add_argument("--work", default=None, help="training checkpoint (resume); default: next to --out")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    cfg = base.BaseConfig(**{f: getattr(a, f) for f in base.config_dict(d)})
    lib.runtime.setup(seed=cfg.seed)
    train_photos, _ = data.split(data.load_photos())
    t0 = time.time()
    codec, hist = base.train_base(cfg, train_photos, EfficientNetLite0(), a.work or a.out + ".train",
                                  progress=not a.quiet)
    lib.checkpoint.save({"state_dict": codec.state_dict(), "config": base.config_dict(cfg),
                         "history": hist, "command": " ".join(["python", "scripts/icm_train_base.py", *(argv or sys.argv[1:])])},
                        a.out)
    digest = lib.download.sha256sum(a.out)
    last = {k: round(v, 4) for k, v in hist[-1].items()}
    print(json.dumps({"out": a.out, "sha256": digest, "bytes": os.path.getsize(a.out), "seconds": round(time.time() - t0),
                      "last": last}))
    return digest


if __name__ == "__main__":
    main()
