"""A partial-spoof corpus built offline, the way PartialSpoof was built from ASVspoof 2019 LA.

PartialSpoof (Zhang et al., 2021-2023) splices bona fide and spoofed speech segments, cut at VAD boundaries, into
one utterance; Liu et al. (Interspeech 2024) label each frame BS / SS / TR / BN / SN. Here, at ``tiny`` scale:

* bona fide: real human speech, 2-3 consecutive Tux Paint stamp descriptions of one language (one volunteer
  speaker per language), resampled to 16 kHz with torchaudio and joined by a 10 ms cross-fade in their pauses;
* speech / non-speech: silero-vad (the model ships inside its wheel);
* spoof: real re-synthesis of the same utterance through a vocoder, Griffin-Lim (torchaudio) giving the phase, two
  "attacks": ``mel80-GL`` (80-band mel spectrum → least-squares magnitude → GL: clear vocoder artefacts) and
  ``lin-GL`` (the linear magnitude itself → GL: nearly transparent at 20 ms frames, a hard attack);
* fully spoofed ("LA-like"): the whole vocoded utterance;
* partially spoofed ("PS-like"): a contiguous run of VAD regions (at least one speech region, never all of them)
  replaced by the vocoded audio with a gain of ±``gain_db``, cut at the VAD boundaries: ``splice="hard"`` (a hard
  cut) or ``"xfade"`` (a ``xfade_s`` raised-cosine cross-fade centred on the join); with ``shift_s`` the donor
  span is taken from the vocoded recording 0.5-1 × ``shift_s`` earlier or later, so that, as in PartialSpoof
  (donor segments from other utterances), speech does not run on smoothly across a join;
* transition regions: ``tr_width`` seconds centred on each join (default 60 ms: the 2 interior 20 ms frames whose
  25 ms windows contain the join). Segments cover each utterance without gaps.
"""
from __future__ import annotations

import functools
import glob
import os

import numpy as np
import torch
import torchaudio
import torchaudio.functional as AF
from silero_vad import get_speech_timestamps_from_probs, load_silero_vad

from lib.storage.assets import tuxpaint_stamps_dir

from .audio import SR, load_audio

LANGS = ("fr", "ru", "ro", "ca", "bg", "es", "be", "el")
ATTACKS = {"mel80-GL": dict(n_fft=1024, hop_length=256, n_mels=80),  # mel bottleneck: clear artefacts
           "lin-GL": dict(n_fft=512, hop_length=128, n_mels=None)}     # linear |STFT|: near-transparent


def tuxpaint_clips(langs=LANGS) -> dict[str, list[str]]:
    """Paths of the recorded stamp descriptions per language (Debian package tuxpaint-stamps-default)."""
    root = tuxpaint_stamps_dir()
    out = {}
    for lang in langs:
        files = sorted(glob.glob(os.path.join(root, "**", f"*_desc_{lang}.ogg"), recursive=True))
        if files:
            out[lang] = files
    if not out:
        raise FileNotFoundError(f"no *_desc_<lang>.ogg recordings under {root}: apt-get install tuxpaint-stamps-default")
    return out


def vad_regions(wave: np.ndarray, vad_model=None) -> list[list]:
    """silero-vad speech timestamps → contiguous regions ``[start_sample, end_sample, is_speech]`` covering the wave.

    The model's own ``audio_forward`` gives the speech probability of every 512-sample chunk in one call (the
    chunks ``get_speech_timestamps`` feeds it one at a time); silero-vad's ``get_speech_timestamps_from_probs``
    turns them into timestamps.
    """
    vad_model = vad_model or load_silero_vad()
    probs = vad_model.audio_forward(torch.as_tensor(wave)[None], SR)[0].tolist()
    speech = get_speech_timestamps_from_probs(probs, sampling_rate=SR, min_silence_duration_ms=30, speech_pad_ms=5,
                                              audio_length_samples=len(wave))
    regions, t = [], 0
    for s in speech:
        a, b = int(s["start"]), int(min(s["end"], len(wave)))
        if a > t:
            regions.append([t, a, False])
        if b > a:
            regions.append([a, b, True])
            t = b
    if t < len(wave):
        regions.append([t, len(wave), False])
    return regions


@functools.lru_cache(maxsize=None)
def _mel_pinv(n_fft: int, n_mels: int) -> torch.Tensor:
    fb = AF.melscale_fbanks(n_fft // 2 + 1, 0.0, SR / 2, n_mels, SR)  # (freq, mel), torchaudio's HTK filters
    return torch.linalg.pinv(fb)  # (mel, freq): least-squares inverse, as InverseMelScale without its slow solver


def vocode(wave: np.ndarray, attack: str, seed: int) -> np.ndarray:
    """Copy-synthesis: mel spectrum → least-squares linear magnitude → Griffin-Lim (32 iterations) → waveform.

    The mel bottleneck is what a neural TTS vocoder also starts from; Griffin-Lim supplies the phase.
    The output keeps the original RMS level.
    """
    cfg = ATTACKS[attack]
    x = torch.as_tensor(wave)
    if cfg["n_mels"]:
        mel = torchaudio.transforms.MelSpectrogram(SR, power=1.0, **cfg)(x)  # (n_mels, frames)
        mag = (mel.t() @ _mel_pinv(cfg["n_fft"], cfg["n_mels"])).t().clamp_min(0)
    else:
        mag = torchaudio.transforms.Spectrogram(n_fft=cfg["n_fft"], hop_length=cfg["hop_length"], power=1.0)(x)
    torch.manual_seed(seed)  # Griffin-Lim starts from random phases
    gl = torchaudio.transforms.GriffinLim(n_fft=cfg["n_fft"], hop_length=cfg["hop_length"], power=1.0, n_iter=32,
                                          length=x.numel())
    y = gl(mag).numpy()
    return (y * (np.sqrt((wave ** 2).mean()) / (np.sqrt((y ** 2).mean()) + 1e-9))).astype(np.float32)


def _xfade(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Join a and b with an n-sample raised-cosine cross-fade (used between bona fide clips)."""
    if n <= 0 or len(a) < n or len(b) < n:
        return np.concatenate([a, b])
    w = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n, dtype=np.float32))
    return np.concatenate([a[:-n], a[-n:] * (1 - w) + b[:n] * w, b[n:]])


def build_base(seed: int = 0, n_utts: int = 360, eval_fraction: float = 1 / 3, langs=LANGS, max_s: float = 6.0):
    """Bona fide utterances with their vocoded copies and VAD regions (the slow part: cache it).

    Returns a dict of lists: ``id, lang, split, attack, bona, spoof, regions`` (waves are float32 tensors).
    """
    rng = np.random.default_rng(seed)
    clips = tuxpaint_clips(langs)
    vad = load_silero_vad()
    per_lang = -(-n_utts // len(clips))
    out = {k: [] for k in ("id", "lang", "split", "attack", "bona", "spoof", "regions")}
    for lang, files in clips.items():
        order = rng.permutation(len(files))
        i, made = 0, 0
        while made < per_lang and i < len(order):
            k = int(rng.integers(2, 4))
            parts = [load_audio(files[j]) for j in order[i:i + k]]
            i += k
            wave = parts[0]
            for p in parts[1:]:
                wave = _xfade(wave, p, SR // 100)
            wave = wave[: int(max_s * SR)]
            peak = np.abs(wave).max()
            if peak < 1e-3:
                continue
            wave = (wave / peak * rng.uniform(0.3, 0.9)).astype(np.float32)
            regions = vad_regions(wave, vad)
            if sum(r[2] for r in regions) == 0 or len(regions) < 2:
                continue
            attack = list(ATTACKS)[int(rng.integers(len(ATTACKS)))]
            uid = f"{lang}{made:03d}"
            out["id"].append(uid)
            out["lang"].append(lang)
            out["split"].append("eval" if rng.random() < eval_fraction else "train")
            out["attack"].append(attack)
            out["bona"].append(torch.from_numpy(wave))
            out["spoof"].append(torch.from_numpy(vocode(wave, attack, seed * 100003 + len(out["id"]))))
            out["regions"].append(regions)
            made += 1
    return out


def _segments(regions, spoofed, joins, dur, tr_width):
    """Kinds per VAD region (BS/BN or SS/SN), then TR spans of ``tr_width`` carved around each join (seconds)."""
    segs = [[a / SR, b / SR, ("S" if sp else "B") + ("S" if speech else "N")]
            for (a, b, speech), sp in zip(regions, spoofed)]
    for j in joins:
        t0, t1 = max(0.0, j / SR - tr_width / 2), min(dur, j / SR + tr_width / 2)
        new = []
        for a, b, k in segs:
            if b <= t0 or a >= t1:
                new.append([a, b, k])
                continue
            if a < t0:
                new.append([a, t0, k])
            if b > t1:
                new.append([t1, b, k])
        new.append([t0, t1, "TR"])
        segs = sorted(new, key=lambda s: s[0])
    return [(float(a), float(b), k) for a, b, k in segs if b > a]


def make_partial(bona: np.ndarray, spoof: np.ndarray, regions, rng, *, splice="hard", xfade_s=0.01,
                 gain_db=3.0, shift_s=0.0, tr_width=0.06, max_spoof=0.6):
    """Replace a contiguous run of VAD regions of ``bona`` by the donor ``spoof``; return (wave, segments).

    ``gain_db``: the donor's level jump, uniform in ±gain_db. ``shift_s``: the donor span is cut from its own
    recording ``shift_s``·U(0.5, 1) seconds earlier or later than the host's span (PartialSpoof's donor segments
    come from other utterances, cut at *their* VAD boundaries, so speech does not continue across a join);
    0 keeps the copy time-aligned with what it replaces.
    """
    if splice not in ("hard", "xfade"):
        raise ValueError(f"splice must be 'hard' or 'xfade', not {splice!r}")
    R = len(regions)
    runs = [(i, j) for i in range(R) for j in range(i, R)
            if (i, j) != (0, R - 1) and any(regions[r][2] for r in range(i, j + 1))]
    short = [(i, j) for i, j in runs if regions[j][1] - regions[i][0] <= max_spoof * len(bona)]
    runs = short or runs  # PartialSpoof keeps much of the bona fide speech: prefer runs of ≤ max_spoof of the wave
    i, j = runs[int(rng.integers(len(runs)))]
    a, b = regions[i][0], regions[j][1]
    g = 10 ** (rng.uniform(-gain_db, gain_db) / 20)
    if shift_s:
        d = int(rng.choice((-1, 1)) * rng.uniform(0.5, 1.0) * shift_s * SR)
        spoof = np.roll(spoof, -d)  # donor sample t comes from its recording's t + d
    w = np.zeros(len(bona), np.float32)  # weight of the spoofed signal
    w[a:b] = 1.0
    joins = [t for t in (a, b) if 0 < t < len(bona)]
    if splice == "xfade":
        n = int(xfade_s * SR)
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n, dtype=np.float32))
        for t, up in ((a, True), (b, False)):
            if 0 < t < len(bona):
                lo, hi = max(0, t - n // 2), min(len(bona), t - n // 2 + n)
                r = ramp[lo - (t - n // 2): hi - (t - n // 2)]
                w[lo:hi] = r if up else 1 - r
    wave = (1 - w) * bona + w * g * spoof
    spoofed = [i <= r <= j for r in range(R)]
    return wave.astype(np.float32), _segments(regions, spoofed, joins, len(bona) / SR, tr_width)


def build_sets(base: dict, seed: int = 0, splice: str = "hard", **kw) -> dict:
    """The bona fide, fully spoofed and partially spoofed utterances of one split condition.

    Returns ``{split: {"bona": [...], "full": [...], "partial": [...]}}``, each item a dict with
    ``wave`` (tensor), ``segments`` [(start_s, end_s, kind)], ``label`` (0 bona fide, 1 spoof), ``id``.
    """
    rng = np.random.default_rng(10_000 + seed)
    sets = {"train": {"bona": [], "full": [], "partial": []}, "eval": {"bona": [], "full": [], "partial": []}}
    for n, uid in enumerate(base["id"]):
        bona, spoof, regions = base["bona"][n].numpy(), base["spoof"][n].numpy(), base["regions"][n]
        dur = len(bona) / SR
        s = sets[base["split"][n]]
        kinds = [(r[0] / SR, r[1] / SR, "BS" if r[2] else "BN") for r in regions]
        s["bona"].append(dict(id=uid, wave=torch.from_numpy(bona), segments=kinds, label=0))
        s["full"].append(dict(id=uid + "-full", wave=torch.from_numpy(spoof), label=1,
                              segments=[(a, b, "S" + k[1]) for a, b, k in kinds]))
        wave, segs = make_partial(bona, spoof, regions, rng, splice=splice, **kw)
        s["partial"].append(dict(id=uid + "-ps", wave=torch.from_numpy(wave), segments=segs, label=1))
        assert abs(segs[-1][1] - dur) < 1e-9
    return sets
