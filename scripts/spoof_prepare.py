"""Build the chapter-2 corpus and train every countermeasure of the chapter into the cache (lib.cache).

    COURSE_SCALE=tiny python scripts/spoof_prepare.py     # ~15 min on 2 busy cores the first time, seconds afterwards

The chapter calls the same memoised functions, so after this it executes in well under a minute.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lib  # noqa: E402
from lib.spoof import experiment  # noqa: E402

if __name__ == "__main__":
    lib.runtime.setup(seed=0)
    t0 = time.time()
    base = experiment.tiny_base()
    print(f"corpus: {len(base['id'])} bona fide utterances (+ vocoded copies) in {time.time() - t0:.0f} s")
    res = experiment.tiny_all()
    for (tr, sp, s), r in res.items():
        print(f"{tr:8s} {sp:6s} seed {s}: EER(PS eval) {r['eer_ps']:5.1f} %  "
              + " ".join(f"{k} {v:+6.1f}" for k, v in r["rcq_spoof"].items()))
    print(f"done in {time.time() - t0:.0f} s; cache in {lib.cache.cache_dir()}")
