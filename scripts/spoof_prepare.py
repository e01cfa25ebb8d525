"""Build the chapter-2 corpus and train every countermeasure of the chapter into the cache (lib.storage.cache).

    COURSE_SCALE=tiny python scripts/spoof_prepare.py     # ~8 min on 2 busy cores the first time, seconds afterwards

`make book` runs it before the book build. The chapter calls the same memoised functions, so after this it executes
in well under a minute. `--n-utts/--steps/--seeds/--langs` shrink the run (the test suite runs a 4-step version)
of the chapter's `tiny` configuration (lib.spoof.experiment.CONFIGS).
"""
import argparse
import dataclasses
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lib  # noqa: E402
from lib.spoof import experiment  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tiny = experiment.CONFIGS["tiny"]
    p.add_argument("--n-utts", type=int, default=tiny.data.n_utts)
    p.add_argument("--steps", type=int, default=tiny.train.steps)
    p.add_argument("--seeds", type=int, nargs="+", default=list(tiny.train.seeds))
    p.add_argument("--langs", nargs="+", default=tiny.data.langs, help="languages of the corpus (default: all)")
    a = p.parse_args(argv)
    cfg = dataclasses.replace(
        tiny, data=dataclasses.replace(tiny.data, n_utts=a.n_utts, langs=tuple(a.langs) if a.langs else None),
        train=dataclasses.replace(tiny.train, steps=a.steps, seeds=tuple(a.seeds)))
    lib.runtime.setup(seed=0)
    t0 = time.time()
    base = experiment.tiny_base(cfg)
    print(f"corpus: {len(base['id'])} bona fide utterances (+ vocoded copies) in {time.time() - t0:.0f} s")
    res = experiment.tiny_all(cfg)
    for (tr, sp, s), r in res.items():
        print(f"{tr:8s} {sp:6s} seed {s}: EER(PS eval) {r['eer_ps']:5.1f} %  "
              + " ".join(f"{k} {v:+6.1f}" for k, v in r["rcq_spoof"].items()))
    print(f"done in {time.time() - t0:.0f} s; cache in {lib.storage.cache.cache_dir()}")
    return res


if __name__ == "__main__":
    main()
