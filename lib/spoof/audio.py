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
    if not Path(path).is_file():
        raise FileNotFoundError(f"no audio file at {path}: check the path (relative paths start from "
                                f"{Path.cwd()})")
    try:
        x, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        raise ValueError(f"cannot read the audio file {path} ({err}): give a wav, flac or ogg file, or convert "
                         f"it first (e.g. ffmpeg -i in.mp3 out.wav)") from None
    return resample(x.mean(axis=1), file_sr, sr)


def resample(x: np.ndarray, sr_in: int, sr_out: int = SR) -> np.ndarray:
    if sr_in == sr_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    import torchaudio.functional as AF
    return AF.resample(torch.as_tensor(x, dtype=torch.float32), int(sr_in), int(sr_out)).numpy()


def pad_repeat(x: torch.Tensor, length: int) -> torch.Tensor:
    """Pad a 1-D signal to ``length`` by repeating it (zeros would corrupt BatchNorm and mean statistics)."""
    reps = -(-length // x.numel())
    return x.repeat(reps)[:length]


def batch_waveforms(waves, sr: int = SR):
    """Check a list of utterances and stack them into (B, Lmax) padded by repetition, plus their lengths."""
    xs = [check_waveform(w, sr) for w in waves]
    if not xs:
        raise ValueError("no utterances given")
    L = max(x.numel() for x in xs)
    return torch.stack([pad_repeat(x, L) for x in xs]), torch.tensor([x.numel() for x in xs])
