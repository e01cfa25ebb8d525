"""Regenerate the chapters' diagnosis sweeps: ``python scripts/sweeps.py [name ...]`` (all of them without a name).

Each entry of ``SWEEPS`` runs one sweep through ``lib.sweep.run`` and writes ``lib/<paper>/results/<name>.json``
(resumable: an interrupted run keeps its finished points). Sweeps run with one torch thread so that a point
re-run later (the tests do) gives the same numbers.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def spoof_table3():
    from lib.spoof import diagnosis
    return diagnosis.run_sweep()


def lseg_blocks_seeds():
    from lib.lseg import diagnosis
    return diagnosis.run_sweep()


SWEEPS = {"spoof_table3": spoof_table3, "lseg_blocks_seeds": lseg_blocks_seeds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"sweeps to run (default: all of {', '.join(SWEEPS)})")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in SWEEPS]
    if unknown:
        ap.error(f"unknown sweep(s) {unknown}; known: {', '.join(SWEEPS)}")
    import torch
    torch.set_num_threads(1)
    for name in args.names or SWEEPS:
        out = SWEEPS[name]()
        print(f"{name}: {len(out['points'])} points, {out['seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
