"""Chapter 2's files: torchaudio's XLSR-53 state dict (the real architecture and key names, random weights, fp32),
PartialSpoof-style ``.tar.gz`` archives (protocols, ``con_wav`` wavs, ``.vad`` label files) and an ASVspoof 2019
LA-style zip (protocols, flac), each with a handful of 3.5 s utterances."""

from __future__ import annotations

import io
import re
import tarfile
import zipfile

import numpy as np

from .common import seeded

SR = 16000
N_PER_LABEL = 4          # bona fide and spoofed utterances per split: above the rehearsal's subset sizes
SPLITS = ("train", "dev", "eval")
LETTER = {"train": "T", "dev": "D", "eval": "E"}
# one partially spoofed utterance's labels: two joins a few ms wide, as in PartialSpoof
VAD = [(0.0, 0.3, 101), (0.3, 1.2, 1), (1.2, 1.205, 100), (1.205, 2.3, 7), (2.3, 2.306, 100), (2.306, 3.2, 1),
       (3.2, 3.5, 101)]


def utterances(split: str) -> list[tuple[str, str]]:
    """(utterance, key) of one split: bona fide ``LA_*`` and partially spoofed ``CON_*`` (PartialSpoof)."""
    c = LETTER[split]
    return ([(f"LA_{c}_{1000001 + i}", "bonafide") for i in range(N_PER_LABEL)]
            + [(f"CON_{c}_{i + 1:07d}", "spoof") for i in range(N_PER_LABEL)])


def la_utterances(split: str) -> list[tuple[str, str]]:
    c = LETTER[split]
    return ([(f"LA_{c}_{1000001 + i}", "bonafide") for i in range(N_PER_LABEL)]
            + [(f"LA_{c}_{2000001 + i}", "spoof") for i in range(N_PER_LABEL)])


def speechlike(name: str, seconds: float = 3.5) -> np.ndarray:
    """A few seconds of voiced-sounding noise (harmonics with a wandering pitch, amplitude bursts), 16 kHz."""
    rng = seeded(name)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 30 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    x = x + 0.05 * rng.standard_normal(t.size)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _audio(name: str, fmt: str) -> bytes:
    import soundfile as sf
    buf = io.BytesIO()
    sf.write(buf, speechlike(name), SR, format=fmt, subtype="PCM_16")
    return buf.getvalue()


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _protocol(rows) -> bytes:
    return "".join(f"LA_0079 {u} - {'-' if k == 'bonafide' else 'A07'} {k}\n" for u, k in rows).encode()


def ps_protocols(url: str) -> bytes:
    return _tar({f"database/protocols/PartialSpoof_LA_cm_protocols/PartialSpoof.LA.cm.{s}.trl.txt":
                 _protocol(utterances(s)) for s in SPLITS})


def ps_split(url: str) -> bytes:
    split = re.search(r"database_(train|dev|eval)\.tar\.gz", url).group(1)
    return _tar({f"database/{split}/con_wav/{u}.wav": _audio(u, "WAV") for u, _ in utterances(split)})


def ps_vad(url: str) -> bytes:
    lines = "".join(f"{a} {b} {c}\n" for a, b, c in VAD).encode()
    return _tar({f"vad/{s}/{u}.vad": lines for s in SPLITS for u, k in utterances(s) if u.startswith("CON_")})


def la_zip(url: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for s in SPLITS:
            rows = la_utterances(s)
            z.writestr(f"LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{s}.{'trn' if s == 'train' else 'trl'}.txt",
                       _protocol(rows))
            for u, _ in rows:
                z.writestr(f"LA/ASVspoof2019_LA_{s}/flac/{u}.flac", _audio(u, "FLAC"))
    return buf.getvalue()


def xlsr53_state(url: str) -> bytes:
    """``wav2vec2_fairseq_large_xlsr53.pth``: the state dict of ``wav2vec2_model(**WAV2VEC2_XLSR53._params)``
    (315 M parameters, fp32, ~1.2 GB), random weights. The model is built on the meta device (no memory, no
    initialisation); each tensor is then filled on its own: normal(0, 0.02) weights, unit norm scales, zero biases."""
    import torch
    import torchaudio
    from torchaudio.models import wav2vec2_model

    with torch.device("meta"):
        model = wav2vec2_model(**torchaudio.pipelines.WAV2VEC2_XLSR53._params)
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, meta in model.state_dict().items():
        if key.endswith("bias"):
            state[key] = torch.zeros(meta.shape)
        elif meta.dim() == 1:                     # layer-norm scales
            state[key] = torch.ones(meta.shape)
        else:
            state[key] = torch.empty(meta.shape).normal_(0, 0.02, generator=gen)
    # the file predates parametrized weight norm: its positional convolution is stored as weight_g / weight_v
    # (torch's weight_norm converts them when the state dict is loaded)
    state = {re.sub(r"parametrizations\.weight\.original([01])$", lambda m: "weight_" + "gv"[int(m.group(1))], k): v
             for k, v in state.items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    del state
    return buf.getbuffer()


MAKERS = [
    (r"https://zenodo\.org/record/5766198/files/database_protocols\.tar\.gz\?download=1", ps_protocols),
    (r"https://zenodo\.org/record/5766198/files/database_(train|dev|eval)\.tar\.gz\?download=1", ps_split),
    (r"https://zenodo\.org/record/5766198/files/database_vad\.tar\.gz\?download=1", ps_vad),
    (r"https://datashare\.ed\.ac\.uk/bitstream/handle/10283/3336/LA\.zip", la_zip),
    (r"https://download\.pytorch\.org/torchaudio/models/wav2vec2_fairseq_large_xlsr53\.pth", xlsr53_state),
]


# For each MAKERS regex: the file, what vouches that the miniature has the real file's format (a public loader that
# reads it, or the cited public code or maintainer's words), and how the real download is checked.
FORMATS: dict[str, dict] = {
    r"https://zenodo\.org/record/5766198/files/database_protocols\.tar\.gz\?download=1": {
        "file": "database_protocols.tar.gz (PartialSpoof)",
        "vouched_by": "our own reader only (not yet evidence): protocol lines as lib.spoof.partialspoof reads them",
        "verified": "first-use sha256 record"},
    r"https://zenodo\.org/record/5766198/files/database_(train|dev|eval)\.tar\.gz\?download=1": {
        "file": "database_{train,dev,eval}.tar.gz (PartialSpoof)",
        "vouched_by": "our own reader only (not yet evidence): database/<split>/con_wav/<utt>.wav as lib.spoof.partialspoof reads them",
        "verified": "first-use sha256 record"},
    r"https://zenodo\.org/record/5766198/files/database_vad\.tar\.gz\?download=1": {
        "file": "database_vad.tar.gz (PartialSpoof)",
        "vouched_by": "our own reader only (not yet evidence), and known to differ: the miniature writes five-type segment codes, the public archive "
                      "labels 0 spoof / 1 bona fide / 2 non-speech (maintainer, nii-yamagishilab/PartialSpoof "
                      "issue #2)",
        "verified": "first-use sha256 record"},
    r"https://datashare\.ed\.ac\.uk/bitstream/handle/10283/3336/LA\.zip": {
        "file": "LA.zip (ASVspoof 2019)",
        "vouched_by": "our own reader only (not yet evidence): LA/ASVspoof2019_LA_cm_protocols and flac folders as lib.spoof reads them",
        "verified": "first-use sha256 record"},
    r"https://download\.pytorch\.org/torchaudio/models/wav2vec2_fairseq_large_xlsr53\.pth": {
        "file": "wav2vec2_fairseq_large_xlsr53.pth",
        "vouched_by": "our own reader only (not yet evidence): a state dict of torchaudio's wav2vec2_model(**WAV2VEC2_XLSR53._params); "
                      "WAV2VEC2_XLSR53.get_model() not yet exercised on it",
        "verified": "first-use sha256 record (torchaudio publishes none)"},
}


def urls() -> list[str]:
    """Every URL chapter 2's colab configurations download (read from the course's own constants)."""
    from lib.spoof import experiment, partialspoof as P
    from lib.spoof.ssl_res1d import xlsr53_url

    out = []
    for cfg in experiment.CONFIGS.values():
        if cfg.data != "real":
            continue
        out += [P.PS_URLS["protocols"], P.LA_URL, P.PS_URLS["train"], P.PS_URLS[cfg.eval_split], P.PS_VAD_URL]
    out.append(xlsr53_url())
    return list(dict.fromkeys(out))
