"""Readers for PartialSpoof v1.2 (Zhang et al., TASLP 2023; Zenodo record 5766198) and ASVspoof 2019 LA: protocols,
audio, archive extraction, the loaded items.

PartialSpoof (one ``.tar.gz`` per part): ``database/{split}/con_wav/{utt}.wav`` (16 kHz mono; ``CON_*`` partially
spoofed, ``LA_*`` bona fide), protocols ``PartialSpoof_LA_cm_protocols/PartialSpoof.LA.cm.{split}.trl.txt``
(column 2 = utterance, column 5 = bonafide/spoof). ASVspoof 2019 LA (one zip):
``LA/ASVspoof2019_LA_{split}/flac/{utt}.flac``, protocols
``LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{split}.{trn,trl}.txt`` (same columns).

The label archives and the five segment types derived from them: :mod:`lib.spoof.partialspoof_labels`; the
subsets the ``colab`` scale downloads: :mod:`lib.spoof.partialspoof_subset`.

Archive URLs: the PartialSpoof ones are those of the maintainers' own download script (nii-yamagishilab/PartialSpoof
``01_download_database.sh``: ``database_{train,dev,eval,segment_labels_v1.2,protocols}.tar.gz``) and, for
``database_vad.tar.gz``, the maintainer's link in issue #2; the LA zip's is Edinburgh DataShare's (the one
clovaai/aasist ``download_dataset.py`` fetches). None has a published sha256 in this course, so each is checked
against its first-use record.
"""
from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from lib import validate
from lib.storage.checkpoint import atomic_path

from .audio import SR
from .partialspoof_labels import (LABEL_FORMATS, derive_segments, read_public_vad,  # noqa: F401 (read here too)
                                  read_vad, widen_transitions)

ZENODO = "https://zenodo.org/record/5766198/files/database_{part}.tar.gz?download=1"
PS_URLS = {part: ZENODO.format(part=part) for part in ("train", "dev", "eval", "protocols")}
PS_VAD_URL = ZENODO.format(part="vad")
PS_SEGLAB_URL = ZENODO.format(part="segment_labels_v1.2")
LA_URL = "https://datashare.ed.ac.uk/bitstream/handle/10283/3336/LA.zip"


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



# ---- subsets of the real archives ------------------------------------------------------------------------------
def choose(utts, n: int, seed: int) -> list[str]:
    """``n`` utterances drawn without replacement (seeded), in protocol order."""
    n = validate.integer(n, "n", minimum=0, hint="how many utterances to draw")
    if n > len(utts):
        raise ValueError(f"asked for {n} utterances but the protocol lists only {len(utts)}: lower the count in "
                         f"the configuration")
    idx = np.sort(np.random.default_rng(seed).choice(len(utts), size=n, replace=False))
    return [utts[i] for i in idx]


def extract(archive, wanted: dict[str, Path]) -> None:
    """Copy the members of a tar(.gz) or zip ``archive`` whose names end with a key of ``wanted`` (``"/name"``) to
    the paths it maps to (written atomically); one pass through the archive. A member missing is an error."""
    todo = dict(wanted)
    for key in todo:
        validate.file_name(key[1:] if isinstance(key, str) and key.startswith("/") else key, f"wanted key {key!r}")

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


def utterance_segments(root: Path, split: str, utt: str, *, labels: str = "public", tr_width: float = 0.0,
                       authors_vad=None):
    """The five-type segments of one extracted utterance: derived from its public labels (``root/split/vad`` and
    ``root/split/seglab``, see :func:`derive_segments`), or read from the authors' file
    ``authors_vad/split/utt.vad`` with TR spans widened to ``tr_width``."""
    if labels == "public":
        seglab = np.load(root / split / "seglab" / f"{utt}.npy", allow_pickle=False)
        return derive_segments(read_public_vad(root / split / "vad" / f"{utt}.vad"), seglab, tr_width)
    if labels == "authors":
        if authors_vad is None:
            raise ValueError("labels='authors' needs authors_vad: the folder holding {split}/{utterance}.vad in the "
                             "authors' five-code format")
        segs = read_vad(Path(authors_vad) / split / f"{utt}.vad")
        return widen_transitions(segs, tr_width) if tr_width else segs
    raise ValueError(f"labels must be one of {LABEL_FORMATS}, not {labels!r}")


def items(root: Path, split: str, utts, labels, *, vad: bool, tr_width: float = 0.0, ext: str = ".wav",
          label_format: str = "public", authors_vad=None):
    """Loaded utterances ``{"id", "wave", "label", "segments"}`` of one extracted subset (see ``experiment``)."""
    out = []
    for u, y in zip(utts, labels):
        wave = torch.from_numpy(read_audio(root / split / "audio" / f"{u}{ext}"))
        segs = (utterance_segments(root, split, u, labels=label_format, tr_width=tr_width, authors_vad=authors_vad)
                if vad else [])
        out.append({"id": u, "wave": wave, "label": int(y), "segments": segs})
    return out
