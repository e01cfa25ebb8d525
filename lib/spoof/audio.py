"""Audio in and out for the countermeasures: mono 16 kHz float32, checked with messages that say what to do."""
from __future__ import annotations

import numpy as np
import torch

SR = 16000
MIN_SAMPLES = 400  # one 25 ms analysis window = the models' receptive field for one frame


def load_audio(path, sr: int = SR) -> np.ndarray:
    """Read any file soundfile can read (wav/flac/ogg), downmix to mono, resample to ``sr`` with torchaudio."""
    import soundfile as sf
    x, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    return resample(x.mean(axis=1), file_sr, sr)


def resample(x: np.ndarray, sr_in: int, sr_out: int = SR) -> np.ndarray:
    if sr_in == sr_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    import torchaudio.functional as AF
    return AF.resample(torch.as_tensor(x, dtype=torch.float32), int(sr_in), int(sr_out)).numpy()


def check_waveform(wave, sr: int = SR, *, min_samples: int = MIN_SAMPLES) -> torch.Tensor:
    """Validate one utterance for a countermeasure; returns a 1-D float32 tensor at 16 kHz.

    A different sample rate is resampled; stereo, empty, silent or too-short input raises ValueError.
    """
    x = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    if x.dim() == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.dim() != 1:
        raise ValueError(f"expected one mono waveform, got shape {tuple(x.shape)}: for stereo, downmix first "
                         "(wave.mean(axis=0) for channels-first, wave.mean(axis=1) for soundfile's (samples, channels))")
    if sr != SR:
        x = torch.as_tensor(resample(x.numpy(), sr, SR))
    if x.numel() == 0:
        raise ValueError("empty waveform: give at least 25 ms (400 samples at 16 kHz) of audio")
    if x.numel() < min_samples:
        raise ValueError(f"waveform of {x.numel()} samples is shorter than the model's receptive field "
                         f"({min_samples} samples = 25 ms at 16 kHz): pad it (e.g. by repetition) or drop it")
    if not torch.isfinite(x).all():
        raise ValueError("waveform contains NaN or inf: check how it was decoded")
    if x.abs().max() < 1e-5:
        raise ValueError("all-silence waveform (peak < 1e-5): there is nothing to score; drop the utterance")
    return x


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
