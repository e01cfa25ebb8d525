"""Audio in and out for the countermeasures: mono 16 kHz float32, checked with messages that say what to do.

The chapter's sampling rate and frame are defined here, once: every module that needs them imports them from here.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from lib import validate

SR = 16000           # samples per second
WIN = 400            # 25 ms: one analysis window, the countermeasures' receptive field for one frame
HOP = 320            # 20 ms: one frame (wav2vec 2.0's conv stack), one CAM value
MIN_SAMPLES = WIN    # the shortest utterance that gives one frame
FRAME_S = HOP / SR   # 0.02 s
FRAME_MS = 1000 * HOP / SR   # 20.0 ms


def load_audio(path, sr: int = SR) -> np.ndarray:
    """Read any file soundfile can read (wav/flac/ogg), downmix to mono, resample to ``sr`` with torchaudio."""
    validate.sample_rate(sr)
    if not Path(path).is_file():
        raise FileNotFoundError(f"no audio file at {path}: check the path (relative paths start from "
                                f"{Path.cwd()})")
    try:
        with sf.SoundFile(str(path)) as f:
            file_sr, log = f.samplerate, f.extra_info   # libsndfile's notes on the header, read at opening
            x = f.read(dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        raise ValueError(f"cannot read the audio file {path} ({err}): give a wav, flac or ogg file, or convert "
                         f"it first (e.g. ffmpeg -i in.mp3 out.wav)") from None
    short = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", log, re.M)
    if short and int(short.group(2)) < int(short.group(1)):   # libsndfile's own note: fewer bytes than declared
        raise ValueError(f"the audio file {path} is truncated (its header declares {short.group(1)} bytes of "
                         f"samples, it holds {short.group(2)}): a download or extraction was cut short; fetch or "
                         f"extract it again")
    return resample(x.mean(axis=1), file_sr, sr)


def resample(x: np.ndarray, sr_in: int, sr_out: int = SR) -> np.ndarray:
    """``x`` (float samples) from ``sr_in`` to ``sr_out`` Hz with torchaudio."""
    sr_in, sr_out = validate.sample_rate(sr_in, "sr_in"), validate.sample_rate(sr_out, "sr_out")
    if sr_in == sr_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    with torch.no_grad():
        return _resampler(int(sr_in), int(sr_out))(torch.as_tensor(x, dtype=torch.float32)).numpy()


@functools.lru_cache(maxsize=8)
def _resampler(sr_in: int, sr_out: int) -> torchaudio.transforms.Resample:
    """torchaudio's resampler, its windowed-sinc kernel computed once per pair of rates (in float32, as
    ``torchaudio.functional.resample`` computes it for float32 samples)."""
    return torchaudio.transforms.Resample(sr_in, sr_out, dtype=torch.float32)


def check_waveform(wave, sr: int = SR, *, min_samples: int = MIN_SAMPLES, name: str = "wave") -> torch.Tensor:
    """One mono utterance as a 1-D float32 tensor at 16 kHz (another ``sr`` is resampled).

    Refuses integer PCM, stereo, empty, too short, NaN/inf and all-silent input.
    """
    a = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    if a.dtype.kind in "iub":
        raise ValueError(f"{name} holds {a.dtype} samples: give float samples in [-1, 1], e.g. wave / 32768 for "
                         f"16-bit PCM (soundfile.read(path, dtype='float32') reads them so)")
    if a.dtype.kind not in "f":
        raise TypeError(f"{name} must be an array of float samples, got dtype {a.dtype}")
    x = torch.as_tensor(np.asarray(a, dtype=np.float32))
    if x.dim() == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.dim() != 1:
        raise ValueError(f"expected one mono waveform, got shape {tuple(x.shape)}: for stereo, downmix first "
                         "(wave.mean(axis=0) for channels-first, wave.mean(axis=1) for soundfile's (samples, channels))")
    if x.numel() and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf: check how it was decoded")
    sr = validate.sample_rate(sr)
    if sr != SR:
        x = torch.as_tensor(resample(x.numpy(), sr, SR))
    if x.numel() == 0:
        raise ValueError(f"empty waveform {name}: give at least 25 ms ({MIN_SAMPLES} samples at 16 kHz) of audio")
    if x.numel() < min_samples:
        raise ValueError(f"waveform of {x.numel()} samples is shorter than the model's receptive field "
                         f"({min_samples} samples = 25 ms at 16 kHz): pad it (e.g. by repetition) or drop it")
    if x.abs().max() < 1e-5:
        raise ValueError("all-silence waveform (peak < 1e-5): there is nothing to score; drop the utterance")
    return x


def check_waveform_batch(wave, name: str = "wave") -> torch.Tensor:
    """A (batch, samples) float tensor of finite samples; returned as given (float64 as float32)."""
    if not isinstance(wave, torch.Tensor) or wave.dim() != 2:
        got = tuple(wave.shape) if hasattr(wave, "shape") else type(wave).__name__
        raise ValueError(f"expected a (batch, samples) mono waveform at 16 kHz as a torch tensor, got {got}: "
                         f"use lib.spoof.batch_waveforms(list_of_waves) for utterances of different lengths")
    if not wave.is_floating_point():
        raise ValueError(f"{name} holds {wave.dtype} samples: give float samples in [-1, 1] (16-bit PCM / 32768)")
    # a finite sum proves every sample finite (a NaN or inf anywhere makes it NaN or inf) at a fraction of the cost
    # of testing each sample; only a sum that is not finite (bad samples, or an overflow) needs the sample test
    if wave.device.type != "meta" and not torch.isfinite(wave.detach().sum()) and \
            not torch.isfinite(wave.detach()).all():
        raise ValueError(f"{name} contains NaN or inf samples: check how it was decoded or computed")
    return wave.float() if wave.dtype == torch.float64 else wave


def pad_repeat(x: torch.Tensor, length: int) -> torch.Tensor:
    """Pad a 1-D signal to ``length`` by repeating it (zeros would corrupt BatchNorm and mean statistics)."""
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
