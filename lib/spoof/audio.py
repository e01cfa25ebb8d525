"""Audio in and out for the countermeasures: mono 16 kHz float32, checked with messages that say what to do."""
from __future__ import annotations

import numpy as np
import torch

from lib.validate import MIN_SAMPLES, SR  # noqa: F401  (16 kHz; 400 samples = one 25 ms window)
from lib.validate import waveform as check_waveform  # one utterance, checked and resampled to 16 kHz


def load_audio(path, sr: int = SR) -> np.ndarray:
    """Read any file soundfile can read (wav/flac/ogg), downmix to mono, resample to ``sr`` with torchaudio."""
    from pathlib import Path

    import soundfile as sf

    from lib import validate

    validate.sample_rate(sr)
    if not Path(path).is_file():
        raise FileNotFoundError(f"no audio file at {path}: check the path (relative paths start from "
                                f"{Path.cwd()})")
    try:
        x, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        raise ValueError(f"cannot read the audio file {path} ({err}): give a wav, flac or ogg file, or convert "
                         f"it first (e.g. ffmpeg -i in.mp3 out.wav)") from None
    import re

    short = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", sf.info(str(path)).extra_info, re.M)
    if short and int(short.group(2)) < int(short.group(1)):   # libsndfile's own note: fewer bytes than declared
        raise ValueError(f"the audio file {path} is truncated (its header declares {short.group(1)} bytes of "
                         f"samples, it holds {short.group(2)}): a download or extraction was cut short; fetch or "
                         f"extract it again")
    return resample(x.mean(axis=1), file_sr, sr)


def resample(x: np.ndarray, sr_in: int, sr_out: int = SR) -> np.ndarray:
    """``x`` (float samples) from ``sr_in`` to ``sr_out`` Hz with torchaudio."""
    from lib import validate

    sr_in, sr_out = validate.sample_rate(sr_in, "sr_in"), validate.sample_rate(sr_out, "sr_out")
    if sr_in == sr_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    import torchaudio.functional as AF
    return AF.resample(torch.as_tensor(x, dtype=torch.float32), int(sr_in), int(sr_out)).numpy()


def pad_repeat(x: torch.Tensor, length: int) -> torch.Tensor:
    """Pad a 1-D signal to ``length`` by repeating it (zeros would corrupt BatchNorm and mean statistics)."""
    from lib import validate

    length = validate.integer(length, "length", minimum=1, hint="the padded length in samples")
    if x.numel() == 0:
        raise ValueError("x is an empty signal: there is nothing to repeat; drop the utterance")
    reps = -(-length // x.numel())
    return x.repeat(reps)[:length]


def batch_waveforms(waves, sr: int = SR):
    """Check a list of utterances and stack them into (B, Lmax) padded by repetition, plus their lengths."""
    xs = [check_waveform(w, sr) for w in waves]
    if not xs:
        raise ValueError("no utterances given")
    L = max(x.numel() for x in xs)
    return torch.stack([pad_repeat(x, L) for x in xs]), torch.tensor([x.numel() for x in xs])
