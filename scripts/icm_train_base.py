"""Train the base ICM codec of Chapter 1 (stage 1: rate-distortion; stage 2: rate + machine-task loss) and write a
small checkpoint with its sha256.

    python scripts/icm_train_base.py --out lib/icm/checkpoints/icm_base_tiny.pt --quiet

produced the committed ``lib/icm/checkpoints/icm_base_tiny.pt`` (see ``lib/icm/checkpoints/README.md``). Resumable:
a killed run continues from ``--work`` (its training checkpoint). ``--rd-steps 2 --steps 2 --crop 64`` is the test
suite's short run.
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
    p.add_argument("--init-quality", type=int, default=None,
                   help="start from CompressAI's pretrained bmshj2018-factorized at this quality (colab/paper)")
    p.add_argument("--init-sha256", default=None, help="the full sha256 of that CompressAI file")
    p.add_argument("--init-from", default=None,
                   help="start from this committed codec checkpoint (a state dict written by this script)")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    cfg = base.BaseConfig(**{f: getattr(a, f) for f in base.config_dict(d)})
    given = sys.argv[1:] if argv is None else argv
    if (a.init_quality is not None or a.init_from is not None) and "--rd-steps" not in given:
        cfg.rd_steps = 0  # an initialisation takes the place of stage 1 (pass --rd-steps to run it anyway)
    device = lib.runtime.setup(seed=cfg.seed)
    train_photos, _ = data.split(data.load_photos())
    train_stamps, _ = data.split_stamps(data.load_stamps())
    t0 = time.time()
    init, init_record = None, None
    if a.init_quality is not None:
        from lib.icm.codec import pretrained_init

        init = pretrained_init(a.init_quality, sha256=a.init_sha256)
    elif a.init_from is not None:
        from lib.icm.codec import ICMCodec

        init = ICMCodec.from_state_dict(lib.storage.checkpoint.load(a.init_from)["state_dict"])
        init_record = {"file": os.path.basename(a.init_from), "sha256": lib.storage.hashes.sha256sum(a.init_from)}
    codec, hist = base.train_base(cfg, train_photos, train_stamps, EfficientNetLite0(), a.work or a.out + ".train",
                                  progress=not a.quiet, init=init, device=device)
    lib.storage.checkpoint.save({"state_dict": codec.state_dict(), "config": base.config_dict(cfg),
                         "history": hist, "init_from": init_record, "command": " ".join(["python", "scripts/icm_train_base.py", *(argv or sys.argv[1:])])},
                        a.out)
    record = write_record(a.out, round(time.time() - t0), lib.runtime.hardware())
    print(json.dumps(record))
    return record["sha256"]


def write_record(out: str, seconds, hardware: str) -> dict:
    """``<out>.json`` beside the checkpoint: its sha256, size, the command that made it, config, time, hardware."""
    state = lib.storage.checkpoint.load(out)
    record = {"file": os.path.basename(out), "sha256": lib.storage.hashes.sha256sum(out),
              "bytes": os.path.getsize(out),
              "command": state["command"], "init_from": state.get("init_from"), "config": state["config"], "seconds": seconds, "hardware": hardware,
              "torch": torch.__version__, "last": {k: round(v, 4) for k, v in state["history"][-1].items()}}
    with lib.storage.checkpoint.atomic_path(os.path.splitext(out)[0] + ".json") as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    return record


if __name__ == "__main__":
    main()
