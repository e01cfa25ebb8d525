"""Regenerate the chapters' diagnosis sweeps: ``python scripts/sweeps.py NAME [NAME ...]`` (``make sweeps`` runs
them all). Each sweep is one entry of :data:`SWEEPS`: its result file, its point function and its grid of points.

A sweep runs through :func:`lib.sweep.run`: every point once, resumable after an interruption (run the same command
again), written with its provenance to the file the chapter reads. They cost far more than the book's build, so
their files are committed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lib import sweep  # noqa: E402


def icm_grid() -> list[dict]:
    """Chapter 1: the base codec (``steps=0``), then the MSE-only control and the PatchGAN at λ_adv 0.01 (the
    chapter's run) at 50 and 150 steps, and the ceiling arm (the whole decoder trained, MSE only) at 150 steps; three
    seeds per point. About 40 minutes on one core of a busy 2-core machine (a point costs about 45 s of measuring
    plus 0.6 s per MSE step and 1.6 s per PatchGAN step there)."""
    head = lambda steps, lam, seed: {"steps": steps, "lambda_adv": lam, "layers": "head", "seed": seed}
    seeds = (0, 1, 2)
    points = [head(0, 0.0, 0)]
    for steps in (50, 150):
        points += [head(steps, lam, s) for lam in (0.0, 0.01) for s in seeds]
    points += [{"steps": 150, "lambda_adv": 0.0, "layers": "decoder", "seed": s} for s in seeds]
    return points


def icm_point(params: dict) -> dict:
    from lib.icm import diagnosis

    return diagnosis.point(params)


def icm_meta() -> dict:
    from lib.icm import diagnosis

    return {"what": "chapter 1: decoder-head finetuning of the committed tiny base, FinetuneConfig(k=3, patch=64) "
                    "with the tiny scale's batch, crops and learning rates; steps=0 is the base codec",
            "threads": 1, "layers": {k: list(v) for k, v in diagnosis.LAYERS.items()}}


# name -> (result file, point function, grid, shared settings)
SWEEPS = {
    "icm": (ROOT / "lib" / "icm" / "results" / "icm_diagnosis.json", icm_point, icm_grid, icm_meta),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"sweeps to run (default: all of {', '.join(SWEEPS)})")
    ap.add_argument("--list", action="store_true", help="print each sweep's file and number of points, run nothing")
    args = ap.parse_args(argv)
    names = args.names or list(SWEEPS)
    unknown = [n for n in names if n not in SWEEPS]
    if unknown:
        ap.error(f"no sweep named {', '.join(unknown)}: choose from {', '.join(SWEEPS)}")
    for name in names:
        path, fn, grid, meta = SWEEPS[name]
        if args.list:
            print(f"{name}: {len(grid())} points -> {path.relative_to(ROOT)}")
            continue
        sweep.run(name, path, fn, grid(), script=f"python scripts/sweeps.py {name}", meta=meta())
        print(f"{name}: written {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
