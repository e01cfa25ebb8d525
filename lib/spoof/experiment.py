"""The chapter's runs, memoised: every countermeasure of Table 2's loop at the scale in force.

``chapter_run`` trains one CM and evaluates it (:func:`lib.spoof.countermeasure.run`) on the data its
configuration names: the offline corpus (:class:`~lib.spoof.config.BuiltCorpus`, one result per splice condition)
or the PartialSpoof / ASVspoof 2019 LA subsets (:class:`~lib.spoof.config.RealSubsets`). Every run is memoised on
disk (``lib.storage.cache.memo``) under a key that names every setting it depends on, and training resumes from its
checkpoint (``lib.train.fit``) if interrupted.
"""
from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from lib.storage import cache

from .config import BASE_VERSION, CONFIGS, TINY, VERSION, BuiltCorpus, SpoofConfig, Training  # noqa: F401
from .countermeasure import load_cm, run  # noqa: F401 (load_cm: the chapter's way back to a trained CM)
from .data import LANGS, build_base, build_sets
from .metrics import eer
from .partialspoof_subset import real_sets, subset_key
from .rcq import rcq_from_sums, rcq_sums

# splice conditions of the built corpus, from the most audible joins to the cleanest
SPLICES = {"hard": "hard cut, donor 25-50 ms off, ±6 dB", "xfade": "10 ms cross-fade, donor 25-50 ms off, ±6 dB",
           "clean": "10 ms cross-fade, donor aligned, 0 dB"}
# countermeasures committed with the course (``python scripts/committed_runs.py``): read, not trained, by the build
COMMITTED = Path(__file__).resolve().parent / "checkpoints"
TRAINING_DEFAULTS = Training(steps=0, seeds=())   # built-corpus keys name only the training settings set otherwise


def tiny_base(cfg: SpoofConfig = TINY):
    """Bona fide + vocoded utterances with VAD regions (memoised: ~1-2 min on 2 busy cores the first time)."""
    data = cfg.data
    langs = data.langs or LANGS
    key = cache.key("spoof-base", n_utts=data.n_utts, data_seed=data.data_seed, langs="+".join(langs))
    return cache.memo(key, lambda: build_base(data.data_seed, n_utts=data.n_utts, langs=langs), version=BASE_VERSION)


def tiny_sets(splice: str = "hard", cfg: SpoofConfig = TINY):
    """Bona fide / fully spoofed / partially spoofed sets for one splice condition (built in under a second)."""
    if splice not in SPLICES:
        raise ValueError(f"splice condition must be one of {list(SPLICES)}, not {splice!r}")
    d, clean = cfg.data, splice == "clean"
    return build_sets(tiny_base(cfg), d.data_seed, "hard" if splice == "hard" else "xfade",
                      gain_db=0.0 if clean else d.gain_db, shift_s=0.0 if clean else d.shift_s,
                      tr_width=d.tr_width, xfade_s=d.xfade_s)


def _training_key(t: Training) -> dict:
    """The training settings of a built-corpus CM that differ from :data:`TRAINING_DEFAULTS`, the ones its key
    names (runs at the defaults keep the key they had before these settings could change)."""
    return {k: getattr(t, k) for k in ("batch_size", "lr", "crop_s")
            if getattr(t, k) != getattr(TRAINING_DEFAULTS, k)}


def _train_kwargs(t: Training) -> dict:
    return dict(steps=t.steps, batch_size=t.batch_size, lr=t.lr, crop_s=t.crop_s, eval_batch=t.eval_batch)


def tiny_keys(train_on: str, splice: str, seed: int, cfg: SpoofConfig = TINY) -> tuple[str, str]:
    """The memo keys of a built-corpus CM: its training's, and its result's (the training's plus its evaluation)."""
    d = cfg.data
    # the training's key names what the CM learns from (a partial-spoof CM: its splice condition's data too) ...
    data = {} if train_on == "full" else dict(splice=splice, gain_db=d.gain_db, shift_s=d.shift_s, xfade_s=d.xfade_s)
    cm = cache.key("spoof-cm", train_on=train_on, seed=seed, **data, n_utts=d.n_utts, data_seed=d.data_seed,
                   steps=cfg.train.steps, langs="+".join(d.langs or ()), **_training_key(cfg.train), **cfg.model.key())
    # ... and the result's key adds what it is evaluated on
    key = cache.key("spoof-run", cm=cm, splice=splice, gain_db=d.gain_db, shift_s=d.shift_s,
                    xfade_s=d.xfade_s, tr_width=d.tr_width)
    return cm, key


def tiny_run(train_on: str, splice: str, seed: int, cfg: SpoofConfig = TINY) -> dict:
    """One CM (trained on ``train_on`` of the ``splice`` condition, ``seed``) evaluated on that condition (memoised,
    or read from :data:`COMMITTED`).

    The fully-spoof-trained CM does not depend on the splice condition: its checkpoint is shared.
    """
    cm, key = tiny_keys(train_on, splice, seed, cfg)

    def compute():
        return run(tiny_sets(splice, cfg), train_on=train_on, seed=seed, ckpt_path=cache.work_path(cm, VERSION),
                   model_fn=cfg.model.factory(), **_train_kwargs(cfg.train))

    res = cache.memo(key, compute, version=VERSION, committed=COMMITTED)
    res["eer_ps"] = eer(res["labels_ps"], res["scores_ps"])  # recomputed from the stored scores (cheap)
    segs = [it["segments"] for it in tiny_sets(splice, cfg)["eval"]["partial"]]
    for name in ("spoof", "bona"):                           # and RCQ from the stored CAMs, by the current rule
        sums = rcq_sums(res[f"cam_{name}"], segs)
        res[f"rcq_{name}"], res["N"] = rcq_from_sums(sums["S"], sums["N"]), sums["N"]
    return res


def real_run(train_on: str, seed: int, cfg: SpoofConfig, device="cpu") -> dict:
    """A CM trained on bona fide + ``train_on`` of the real subset: "partial" = PartialSpoof, "full" = ASVspoof
    2019 LA; evaluated on the PartialSpoof ``eval_split`` subset (memoised; training resumes from its checkpoint)."""
    d, t = cfg.data, cfg.train
    authors = {} if d.authors_vad is None else {"authors_vad": d.authors_vad}
    key = cache.key("spoof-real", train_on=train_on, seed=seed, data=subset_key(d), steps=t.steps,
                    batch_size=t.batch_size, lr=t.lr, crop_s=t.crop_s, tr_width=d.tr_width,
                    **cfg.model.key(), labels=d.labels, **authors)

    def compute():
        return run(real_sets(d), train_on=train_on, seed=seed, ckpt_path=cache.work_path(key, VERSION),
                   model_fn=cfg.model.factory(), device=device, progress=True, **_train_kwargs(t))

    return cache.memo(key, compute, version=VERSION)


def sets(cfg: SpoofConfig, splice: str):
    """The chapter's data sets of ``cfg`` for one splice condition (real data: its only one, "real")."""
    return tiny_sets(splice, cfg) if isinstance(cfg.data, BuiltCorpus) else real_sets(cfg.data)


def chapter_run(train_on: str, splice: str, seed: int, cfg: SpoofConfig, device="cpu") -> dict:
    """One CM of the chapter (memoised): ``tiny_run`` on the built corpus, ``real_run`` on real data."""
    if isinstance(cfg.data, BuiltCorpus):
        return tiny_run(train_on, splice, seed, cfg)
    return real_run(train_on, seed, cfg, device)


def tiny_all(cfg: SpoofConfig = TINY, progress=True) -> dict:
    """Every CM of the chapter: {(train_on, splice, seed): result} for full/partial × splice conditions × seeds."""
    jobs = [(tr, sp, s) for s in cfg.seeds for sp in cfg.splices for tr in ("full", "partial")]
    return {j: tiny_run(*j, cfg) for j in tqdm(jobs, disable=not progress, desc="countermeasures")}

