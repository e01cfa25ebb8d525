"""Chapter 2's files: torchaudio's XLSR-53 state dict (the real architecture and key names, random weights, fp32),
PartialSpoof-style ``.tar.gz`` archives (protocols, ``con_wav`` wavs, public ``.vad`` labels, segment labels) and an
ASVspoof 2019 LA-style zip (protocols, flac), each with a handful of 3.5 s utterances.

The label archives follow the public format (see ``FORMATS``): ``database/vad/{split}/{utt}.vad`` with lines
``start end label`` in seconds, 0 spoof / 1 bona fide / 2 non-speech, and
``database/segment_labels/{split}_seglab_{res}.npy``, a pickled ``{utt: array of '0'/'1' strings}`` per resolution,
1 bona fide, 0 spoof, the coarser resolutions the min over windows of the 10 ms one."""

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
# partially spoofed utterances' public labels (0 spoof, 1 bona fide, 2 non-speech), alternating between the two:
# a spoofed word inside bona fide speech, and a spoofed ending whose pause is spoofed too
VAD = ([(0.0, 0.3, 2), (0.3, 1.2, 1), (1.2, 2.3, 0), (2.3, 3.2, 1), (3.2, 3.5, 2)],
       [(0.0, 0.3, 2), (0.3, 1.2, 1), (1.2, 3.2, 0), (3.2, 3.5, 2)])
SPOOFED = ([(1.2, 2.3)], [(1.2, 3.5)])     # where each one's segment labels say spoof (the spoofed donor's span)
SEGLAB_RES = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64)
DURATION = 3.5


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


def _pattern(utt: str) -> int:
    return int(utt[-1]) % 2 if utt.startswith("CON_") else -1


def ps_vad(url: str) -> bytes:
    """``database_vad.tar.gz``: one ``.vad`` per utterance, public codes (bona fide ones: speech in pauses)."""
    files = {}
    for s in SPLITS:
        for u, _ in utterances(s):
            spans = VAD[_pattern(u)] if u.startswith("CON_") else [(0.0, 0.3, 2), (0.3, 3.2, 1), (3.2, 3.5, 2)]
            files[f"database/vad/{s}/{u}.vad"] = "".join(f"{a} {b} {c}\n" for a, b, c in spans).encode()
    return _tar(files)


def seglab(utt: str, res: float) -> np.ndarray:
    """One utterance's segment labels at ``res`` s, as the strings '1' (bona fide) / '0' (spoof)."""
    n10 = int(round(DURATION / 0.01))
    lab = np.ones(n10, dtype=int)
    if utt.startswith("CON_"):
        for a, b in SPOOFED[_pattern(utt)]:
            lab[int(round(a / 0.01)):int(round(b / 0.01))] = 0
    k = int(round(res / 0.01))
    lab = np.array([lab[i:i + k].min() for i in range(0, n10 - k + 1, k)]) if k > 1 else lab
    return lab.astype(str)


def ps_seglab(url: str) -> bytes:
    """``database_segment_labels_v1.2.tar.gz``: per split and resolution a pickled ``{utt: labels}`` dict."""
    files = {}
    for s in SPLITS:
        for res in SEGLAB_RES:
            buf = io.BytesIO()
            np.save(buf, {u: seglab(u, res) for u, _ in utterances(s)}, allow_pickle=True)
            files[f"database/segment_labels/{s}_seglab_{res:g}.npy"] = buf.getvalue()
    return _tar(files)


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
    (r"https://zenodo\.org/record/5766198/files/database_segment_labels_v1\.2\.tar\.gz\?download=1", ps_seglab),
    (r"https://datashare\.ed\.ac\.uk/bitstream/handle/10283/3336/LA\.zip", la_zip),
    (r"https://download\.pytorch\.org/torchaudio/models/wav2vec2_fairseq_large_xlsr53\.pth", xlsr53_state),
]

_FIRST_USE = "sha256 recorded at the first download, re-checked on every later use (none is published)"
FORMATS = {
    MAKERS[0][0]: {
        "file": "PartialSpoof v1.2 protocols: database/protocols/PartialSpoof_LA_cm_protocols/"
                "PartialSpoof.LA.cm.{split}.trl.txt, columns speaker utterance - attack bonafide|spoof",
        "vouched_by": "nii-yamagishilab/PartialSpoof 01_download_database.sh (the archive's name); wedefense "
                      "egs/detection/partialspoof/v03_resnet18/local/prepare_data.sh (path; cut -f2,5: utterance "
                      "and key)",
        "verified": _FIRST_USE},
    MAKERS[1][0]: {
        "file": "PartialSpoof v1.2 audio: database/{split}/con_wav/{utt}.wav, 16 kHz mono",
        "vouched_by": "nii-yamagishilab/PartialSpoof 01_download_database.sh and README.md (folder tree); wedefense "
                      "egs/detection/partialspoof/v03_resnet18/local/prepare_data.sh (find {split}/con_wav -name "
                      "'*.wav')",
        "verified": _FIRST_USE},
    MAKERS[2][0]: {
        "file": "PartialSpoof v1.2 timestamps: database/vad/{split}/{utt}.vad, lines 'start end label' in seconds, "
                "0 spoof, 1 bona fide, 2 non-speech",
        "vouched_by": "the maintainer's description, nii-yamagishilab/PartialSpoof issue #2 (zlin0, 2023-11-05), "
                      "which links this archive",
        "verified": _FIRST_USE},
    MAKERS[3][0]: {
        "file": "PartialSpoof v1.2 segment labels: database/segment_labels/{split}_seglab_{res}.npy, a pickled "
                "{utt: array of '0'/'1'} dict, 1 bona fide, 0 spoof, res 0.01-0.64 s",
        "vouched_by": "nii-yamagishilab/PartialSpoof 01_download_database.sh (archive name), 03multireso/model.py "
                      "(protocol_parse_con: np.load(...).item(); _get_con_target: '0' in labels = spoof; "
                      "lab_in_scale: min over windows), 03multireso/*/00_run.sh (segment_labels/"
                      "{split}_seglab_0.01.npy); wedefense wedefense/utils/file_utils.py read_seglab_npy",
        "verified": _FIRST_USE},
    MAKERS[4][0]: {
        "file": "ASVspoof 2019 LA: LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{split}.{trn,trl}.txt and "
                "LA/ASVspoof2019_LA_{split}/flac/{utt}.flac",
        "vouched_by": "clovaai/aasist download_dataset.py (this URL) and main.py get_loader "
                      "(ASVspoof2019_LA_{split}/, ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{split}.{trn,trl}"
                      ".txt; produce_evaluation_file: columns _ utt _ attack key)",
        "verified": _FIRST_USE},
    MAKERS[5][0]: {
        "file": "torchaudio's XLSR-53 state dict (wav2vec2_model(**WAV2VEC2_XLSR53._params), fp32)",
        "vouched_by": "torchaudio.pipelines.WAV2VEC2_XLSR53.get_model() loads the miniature "
                      "(tests/test_formats_spoof.py)",
        "verified": _FIRST_USE + "; read with torch.load(weights_only=True)"},
}


def urls() -> list[str]:
    """Every URL chapter 2's colab configurations download (read from the course's own constants)."""
    from lib.spoof import config, partialspoof as P
    from lib.spoof.ssl_res1d import xlsr53_url

    out = []
    for cfg in config.CONFIGS.values():
        if not isinstance(cfg.data, config.RealSubsets):
            continue
        out += [P.PS_URLS["protocols"], P.LA_URL, P.PS_URLS["train"], P.PS_URLS[cfg.data.eval_split]]
        if cfg.data.labels == "public":
            out += [P.PS_VAD_URL, P.PS_SEGLAB_URL]
    out.append(xlsr53_url())
    return list(dict.fromkeys(out))
