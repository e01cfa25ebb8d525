"""Regenerate the chapters' diagnosis sweeps: ``python scripts/sweeps.py [NAME ...]`` (all of them without a name).

Each entry of :data:`SWEEPS` is one sweep: its result file, its point function, its grid of points and its shared
settings. A sweep runs through :func:`lib.sweep.run`: every point once, resumable after an interruption (run the
same command again), written with its provenance to the file the chapter reads; the files are committed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lib import sweep  # noqa: E402
from lib.icm import diagnosis as icm_diagnosis  # noqa: E402
from lib.lseg import diagnosis as lseg_diagnosis  # noqa: E402
from lib.spoof import diagnosis as spoof_diagnosis  # noqa: E402

# name -> (result file, point function, grid, shared settings)
SWEEPS = {
    "icm": (icm_diagnosis.RESULT, icm_diagnosis.point, icm_diagnosis.points, icm_diagnosis.meta),
    "spoof_table3": (spoof_diagnosis.PATH, spoof_diagnosis.point_1thread, spoof_diagnosis.points,
                     spoof_diagnosis.meta),
    "lseg_blocks_seeds": (lseg_diagnosis.PATH, lseg_diagnosis.point_1thread, lseg_diagnosis.points,
                          lseg_diagnosis.meta),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"sweeps to run (default: all of {', '.join(SWEEPS)})")
    ap.add_argument("--list", action="store_true", help="print each sweep's file and number of points, run nothing")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in SWEEPS]
    if unknown:
        ap.error(f"no sweep named {', '.join(unknown)}: choose from {', '.join(SWEEPS)}")
    for name in args.names or list(SWEEPS):
        path, fn, grid, meta = SWEEPS[name]
        if args.list:
            print(f"{name}: {len(grid())} points -> {Path(path).relative_to(ROOT)}")
            continue
        sweep.run(name, path, fn, grid(), script=f"python scripts/sweeps.py {name}", meta=meta())
        print(f"{name}: written {Path(path).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
