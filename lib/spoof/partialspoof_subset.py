"""The subsets of PartialSpoof v1.2 and ASVspoof 2019 LA that a :class:`~lib.spoof.config.RealSubsets` names:
downloaded once, the chosen utterances and their labels extracted into the course cache, loaded as items."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lib.storage import cache, download
from lib.storage.checkpoint import atomic_path

from . import partialspoof as P
from .config import RealSubsets
from .partialspoof_labels import SEGLAB_RES, read_seglab


def subset_key(cfg: RealSubsets) -> str:
    n = lambda d: "+".join(str(d[k]) for k in ("bona", "partial", "full"))
    return cache.key("ps", split=cfg.eval_split, train=n(cfg.n_train), eval=n(cfg.n_eval), seed=cfg.data_seed)


def _fetched(url, reader):
    return download.fetch(url, reader=reader, filename=url.split("/")[-1].split("?")[0])


def _done(cfg: RealSubsets, path) -> None:
    if not cfg.keep_archives:
        path.unlink(missing_ok=True)


def real_subset(cfg: RealSubsets) -> tuple:
    """Download (once) and extract the utterances ``cfg`` names and their labels: returns (folder, manifest).

    The manifest ``{split: {"bona"|"partial"|"full": [utterances]}}`` is written last, atomically: a run that stops
    earlier extracts again. Archives go through ``lib.storage.download.fetch`` (first-use sha256) into the download folder
    (:func:`lib.storage.cache.downloads_dir`: the runtime's disk, not Drive, with ``USE_DRIVE``), the chosen files into the
    course cache; with ``keep_archives=False`` each archive is deleted once its files are out.
    """
    root = cache.cache_dir("spoof", "data", subset_key(cfg))
    manifest_path = root / "subset.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        _labels(cfg, root, manifest[cfg.eval_split]["partial"])
        return root, manifest
    splits = ("train", cfg.eval_split)
    # protocols: PartialSpoof's, then LA's (the LA zip also holds the fully spoofed audio)
    arch = _fetched(P.PS_URLS["protocols"], "tar")
    P.extract(arch, {f"/PartialSpoof.LA.cm.{s}.trl.txt": P.ps_protocol_path(root, s) for s in splits})
    _done(cfg, arch)
    la = _fetched(P.LA_URL, "zip")
    P.extract(la, {"/" + P.la_protocol_name(s): root / "protocols" / P.la_protocol_name(s) for s in splits})
    manifest = {}
    for split, n in (("train", cfg.n_train), (cfg.eval_split, cfg.n_eval)):
        ps = P.read_protocol(P.ps_protocol_path(root, split))
        la_prot = P.read_protocol(root / "protocols" / P.la_protocol_name(split))
        manifest[split] = {
            "bona": P.choose([u for u, y in ps if y == 0], n["bona"], cfg.data_seed),
            "partial": P.choose([u for u, y in ps if y == 1 and u.startswith("CON_")], n["partial"], cfg.data_seed),
            "full": P.choose([u for u, y in la_prot if y == 1], n["full"], cfg.data_seed)}
    P.extract(la, {f"/{u}.flac": root / s / "audio" / f"{u}.flac" for s, m in manifest.items() for u in m["full"]})
    _done(cfg, la)
    for split, m in manifest.items():
        arch = _fetched(P.PS_URLS[split], "tar")
        P.extract(arch, {f"/{u}.wav": root / split / "audio" / f"{u}.wav" for u in m["bona"] + m["partial"]})
        _done(cfg, arch)
    _labels(cfg, root, manifest[cfg.eval_split]["partial"])
    with atomic_path(manifest_path) as tmp:
        Path(tmp).write_text(json.dumps(manifest))
    return root, manifest


def _labels(cfg: RealSubsets, root: Path, utts) -> None:
    """The label files of the evaluation's partial spoofs ``utts``. ``labels="public"``: each one's ``.vad`` file
    from ``database_vad.tar.gz`` and its 10 ms segment labels from the segment-label archive (one small ``.npy``
    each), fetched only if some are missing; ``"authors"``: checks every ``authors_vad/{split}/{utt}.vad`` is there."""
    split = cfg.eval_split
    if cfg.labels == "authors":
        missing = [u for u in utts if not (Path(cfg.authors_vad) / split / f"{u}.vad").is_file()]
        if missing:
            raise FileNotFoundError(f"labels='authors': {len(missing)} of {len(utts)} label files missing, the first "
                                    f"{Path(cfg.authors_vad) / split / (missing[0] + '.vad')}. Put the authors' "
                                    f"five-code .vad files under authors_vad/{split}/, or use labels='public'")
        return
    vad = {f"/{u}.vad": root / split / "vad" / f"{u}.vad" for u in utts}
    vad = {k: v for k, v in vad.items() if not v.exists()}
    if vad:
        arch = _fetched(P.PS_VAD_URL, "tar")
        P.extract(arch, vad)
        _done(cfg, arch)
    missing = [u for u in utts if not (root / split / "seglab" / f"{u}.npy").exists()]
    if missing:
        arch = _fetched(P.PS_SEGLAB_URL, "tar")
        name = f"{split}_seglab_{SEGLAB_RES:g}.npy"
        big = root / split / name
        P.extract(arch, {"/" + name: big})
        _done(cfg, arch)
        table = read_seglab(big)
        absent = [u for u in missing if u not in table]
        if absent:
            raise ValueError(f"{name} has no segment labels for {len(absent)} drawn utterance(s), the first "
                             f"{absent[0]!r}: the label archive does not match the audio; delete both and download "
                             f"again")
        for u in missing:
            with atomic_path(root / split / "seglab" / f"{u}.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, table[u], allow_pickle=False)
        big.unlink()


def real_sets(cfg: RealSubsets) -> dict:
    """{"train"|"eval": {"bona", "partial", "full": items}} of the real subset (eval = ``cfg.eval_split``),
    every protocol line checked against its file; the evaluation's partial spoofs carry their five-type segments
    (``cfg.labels``: derived from the public labels, or the authors' files; TR spans ``cfg.tr_width`` wide)."""
    root, manifest = real_subset(cfg)
    out = {}
    for name, split in (("train", "train"), ("eval", cfg.eval_split)):
        m = manifest[split]
        P.read_protocol(P.ps_protocol_path(root, split))   # readable
        out[name] = {
            "bona": P.items(root, split, m["bona"], [0] * len(m["bona"]), vad=False),
            "partial": P.items(root, split, m["partial"], [1] * len(m["partial"]), vad=name == "eval",
                               tr_width=cfg.tr_width or 0.0, label_format=cfg.labels, authors_vad=cfg.authors_vad),
            "full": P.items(root, split, m["full"], [1] * len(m["full"]), vad=False, ext=".flac")}
    return out
