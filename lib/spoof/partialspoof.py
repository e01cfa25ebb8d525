"""Readers for PartialSpoof v1.2 (Zhang et al., TASLP 2023; Zenodo record 5766198) and ASVspoof 2019 LA, and the
subsets the ``colab`` scale downloads.

PartialSpoof (one ``.tar.gz`` per part): ``database/{split}/con_wav/{utt}.wav`` (16 kHz mono; ``CON_*`` partially
spoofed, ``LA_*`` bona fide), protocols ``PartialSpoof_LA_cm_protocols/PartialSpoof.LA.cm.{split}.trl.txt``
(column 2 = utterance, column 5 = bonafide/spoof), and one ``.vad`` file per utterance, lines ``start_s end_s code``:
1 = BS, 2-20 = SS (attacks A01-A19), 100 = TR, 101 = BN, 102-120 = SN (what the authors' scoring code reads).
ASVspoof 2019 LA (one zip): ``LA/ASVspoof2019_LA_{split}/flac/{utt}.flac``, protocols
``LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{split}.{trn,trl}.txt`` (same columns).

Archive URLs: the PartialSpoof ones are those of the maintainers' own download script (wedefense
``egs/detection/partialspoof/*/local/01_download_database.sh``: ``database_{train,dev,eval,protocols}.tar.gz``);
the ``.vad`` archive's name (``database_vad.tar.gz``) and the LA zip's URL are **unverified** (no published list
was readable here); none has a published sha256 in this course, so each is checked against its first-use record.
"""
from __future__ import annotations

import math
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from lib.storage.checkpoint import atomic_path

from .audio import FRAME_MS, FRAME_S, SR

ZENODO = "https://zenodo.org/record/5766198/files/database_{part}.tar.gz?download=1"
PS_URLS = {part: ZENODO.format(part=part) for part in ("train", "dev", "eval", "protocols")}
PS_VAD_URL = ZENODO.format(part="vad")                                            # name unverified
LA_URL = "https://datashare.ed.ac.uk/bitstream/handle/10283/3336/LA.zip"          # unverified
KIND_CODE = {"BS": 1, "SS": 2, "TR": 100, "BN": 101, "SN": 102}   # one code per kind (SS/SN: attack A01)


def kind_of_code(code: int) -> str:
    """PartialSpoof/wedefense label code → segment kind."""
    code = int(code)
    if code == 1:
        return "BS"
    if 2 <= code <= 20:
        return "SS"
    if code == 100:
        return "TR"
    if code == 101:
        return "BN"
    if 102 <= code <= 120:
        return "SN"
    raise ValueError(f"unknown PartialSpoof segment code {code}: expected 1, 2-20, 100, 101 or 102-120")


def read_vad(path) -> list[tuple[float, float, str]]:
    """One utterance's ``.vad`` label file → [(start_s, end_s, kind)], in time order, without overlaps."""
    segs = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path}, line {n} ({line.strip()!r})"
        if len(parts) < 3:
            raise ValueError(f"{where}: expected 'start end code': the file is not a PartialSpoof .vad file; "
                             f"extract it again from the label archive")
        try:
            a, b, code = float(parts[0]), float(parts[1]), float(parts[2])
        except ValueError:
            raise ValueError(f"{where}: start, end and code must be numbers; extract the file again") from None
        try:
            kind = kind_of_code(code)
        except ValueError as err:
            raise ValueError(f"{where}: {err}. The file is damaged or of another labelling: extract it again from "
                             f"the label archive, or drop this utterance from the subset") from None
        if b < a:
            raise ValueError(f"{where}: the span ends before it starts; extract the file again")
        if segs and a < segs[-1][1] - 1e-6:
            raise ValueError(f"{where}: starts at {a:g} s, inside the previous span (which ends at "
                             f"{segs[-1][1]:g} s): spans must be in time order and must not overlap. Extract the "
                             f"file again, or drop this utterance from the subset")
        segs.append((a, b, kind))
    if not segs:
        raise ValueError(f"{path} holds no label lines: extract it again from the label archive")
    return segs


def read_protocol(path, audio_dir=None, ext: str = ".wav") -> list[tuple[str, int]]:
    """A PartialSpoof or ASVspoof 2019 LA CM protocol → [(utterance, label)], label 1 = spoof, 0 = bona fide.

    With ``audio_dir``, every utterance must have its file ``audio_dir/{utt}{ext}``."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 5 or parts[4] not in ("bonafide", "spoof"):
            raise ValueError(f"{path}, line {n} ({line.strip()!r}): expected 'speaker utterance - attack "
                             f"bonafide|spoof': is this a CM protocol file?")
        out.append((parts[1], 1 if parts[4] == "spoof" else 0))
    if audio_dir is not None:
        missing = [(n, u) for n, (u, _) in enumerate(out, 1) if not (Path(audio_dir) / f"{u}{ext}").is_file()]
        if missing:
            n, u = missing[0]
            raise FileNotFoundError(f"{path} names {len(missing)} utterance(s) with no audio file, the first "
                                    f"{u!r} (entry {n}): no {Path(audio_dir) / (u + ext)}. Extract the audio "
                                    f"archive of this split again (an interrupted extraction leaves files out), "
                                    f"or remove those lines from the protocol")
    return out


def read_audio(path) -> np.ndarray:
    """A database file (wav/flac) as float32 at 16 kHz, mono; anything else is refused with what to do."""
    import soundfile as sf
    if not Path(path).is_file():
        raise FileNotFoundError(f"no audio file at {path}: extract the archive of its split again")
    info = sf.info(str(path))
    if info.samplerate != SR:
        raise ValueError(f"{path} is sampled at {info.samplerate} Hz; PartialSpoof and ASVspoof 2019 are 16 kHz: "
                         f"resample it (e.g. ffmpeg -i in.wav -ar 16000 out.wav) or extract the original file again")
    if info.channels != 1:
        raise ValueError(f"{path} has {info.channels} channels; PartialSpoof and ASVspoof 2019 are mono: downmix "
                         f"it (e.g. ffmpeg -i in.wav -ac 1 out.wav) or extract the original file again")
    return sf.read(str(path), dtype="float32")[0]


def widen_transitions(segments, width: float):
    """TR spans narrower than ``width`` seconds widened to ``width`` around their centre, the neighbours cut back
    (segments stay contiguous and in order; a neighbour cut to nothing is dropped)."""
    segs = [list(s) for s in segments]
    for i, (a, b, k) in enumerate(segs):
        if k != "TR" or b - a >= width:
            continue
        c = (a + b) / 2
        lo, hi = max(c - width / 2, 0.0), c + width / 2
        segs[i][:2] = [lo, hi]
        for j in range(i - 1, -1, -1):               # earlier spans end where TR now starts
            segs[j][1] = min(segs[j][1], lo)
            segs[j][0] = min(segs[j][0], segs[j][1])
        for j in range(i + 1, len(segs)):            # later spans start where TR now ends
            segs[j][0] = max(segs[j][0], hi)
            segs[j][1] = max(segs[j][1], segs[j][0])
    end = max((s[1] for s in segments), default=0.0)
    out = [(a, min(b, end), k) for a, b, k in segs if min(b, end) > a]
    return out


def segment_labels(segments, duration_s: float, resolution: float = FRAME_S):
    """PartialSpoof-style segment labels: one per ``resolution`` seconds, 1 = bona fide, 0 = spoof.

    Segment k covers [k·res, (k+1)·res); it is 0 if any spoofed or transition span overlaps it (the database's
    coarser resolutions are the min over windows, the same rule).
    """
    n = int(np.ceil(round(duration_s / resolution, 6)))
    lab = np.ones(n, dtype=np.int64)
    for a, b, k in segments:
        if k in ("SS", "SN", "TR") and b > a:
            lo = int(np.floor(round(a / resolution, 6)))
            hi = int(np.ceil(round(b / resolution, 6)))
            lab[lo:hi] = 0
    return lab


# ---- subsets of the real archives ------------------------------------------------------------------------------
def choose(utts, n: int, seed: int) -> list[str]:
    """``n`` utterances drawn without replacement (seeded), in protocol order."""
    if n > len(utts):
        raise ValueError(f"asked for {n} utterances but the protocol lists only {len(utts)}: lower the count in "
                         f"the configuration")
    idx = np.sort(np.random.default_rng(seed).choice(len(utts), size=n, replace=False))
    return [utts[i] for i in idx]


def extract(archive, wanted: dict[str, Path]) -> None:
    """Copy the members of a tar(.gz) or zip ``archive`` whose names end with a key of ``wanted`` (``"/name"``) to
    the paths it maps to (written atomically); one pass through the archive. A member missing is an error."""
    todo = dict(wanted)

    def take(name, read):
        key = "/" + name.rsplit("/", 1)[-1]
        if key in todo and name.endswith(key):
            dest = todo.pop(key)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dest) as tmp:
                Path(tmp).write_bytes(read())

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if todo and not info.is_dir():
                    take(info.filename, lambda: z.read(info))
    else:
        with tarfile.open(archive, "r|*") as t:
            for m in t:
                if not todo:
                    break
                if m.isfile():
                    take(m.name, lambda: t.extractfile(m).read())
    if todo:
        first = next(iter(todo))
        raise FileNotFoundError(f"{archive} holds no member ending in {first!r} ({len(todo)} wanted files missing): "
                                f"the archive is incomplete or not the one expected; delete it and download again")


def ps_protocol_path(root: Path, split: str) -> Path:
    return root / "protocols" / f"PartialSpoof.LA.cm.{split}.trl.txt"


def la_protocol_name(split: str) -> str:
    return f"ASVspoof2019.LA.cm.{split}.{'trn' if split == 'train' else 'trl'}.txt"


def items(root: Path, split: str, utts, labels, *, vad: bool, tr_width: float = 0.0, ext: str = ".wav"):
    """Loaded utterances ``{"id", "wave", "label", "segments"}`` of one extracted subset (see ``experiment``)."""
    import torch
    out = []
    for u, y in zip(utts, labels):
        wave = torch.from_numpy(read_audio(root / split / "audio" / f"{u}{ext}"))
        segs = read_vad(root / split / "vad" / f"{u}.vad") if vad else []
        if tr_width:
            segs = widen_transitions(segs, tr_width)
        out.append({"id": u, "wave": wave, "label": int(y), "segments": segs})
    return out


def n_label_frames(segments) -> int:
    """``ceil(1000 · end / 20)``: the frames the labels span (the reference's trimming length)."""
    return math.ceil(float(segments[-1][1]) * 1000 / FRAME_MS) if segments else 0
