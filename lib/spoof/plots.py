"""Figures for chapter 2: segment labels under a waveform/spectrogram, and Grad-CAM over time."""
from __future__ import annotations

import numpy as np

COLORS = {"BS": "#2e7d32", "SS": "#c62828", "TR": "#6a1b9a", "BN": "#a5d6a7", "SN": "#ef9a9a"}
NAMES = {"BS": "bona fide speech", "SS": "spoofed speech", "TR": "transition", "BN": "bona fide non-speech",
         "SN": "spoofed non-speech"}


def draw_segments(ax, segments, *, y=0.0, height=1.0, labels=True):
    """Coloured spans for (start_s, end_s, kind) segments on a time axis in seconds."""
    for a, b, k in segments:
        ax.axvspan(a, b, ymin=y, ymax=y + height, color=COLORS[k], alpha=0.9, lw=0)
        if labels and b - a > 0.25:
            ax.text((a + b) / 2, 0.5, k, ha="center", va="center", fontsize=8, color="white",
                    transform=ax.get_xaxis_transform())
    ax.set_yticks([])


def legend_handles():
    from matplotlib.patches import Patch
    return [Patch(color=c, label=f"{k}: {NAMES[k]}") for k, c in COLORS.items()]


def utterance_figure(wave, segments, cams: dict | None = None, *, sr=16000, title="", spec=True):
    """Waveform (+ log spectrogram) with the segment labels underneath and optional Grad-CAM curves.

    ``cams``: {label: 1-D array, one value per 20 ms frame}; frame n is drawn at its window centre 20 n + 12.5 ms.
    """
    import matplotlib.pyplot as plt
    import torch
    import torchaudio

    wave = np.asarray(wave, dtype=np.float32)
    t = np.arange(len(wave)) / sr
    dur = len(wave) / sr
    rows = [2, 2 if spec else 0, 0.45, 2 if cams else 0]
    rows = [r for r in rows if r]
    fig, axes = plt.subplots(len(rows), 1, figsize=(9, 1.3 * sum(rows) / 1.5), sharex=True,
                             gridspec_kw={"height_ratios": rows})
    i = 0
    axes[i].plot(t, wave, lw=0.4, color="0.2")
    axes[i].set_ylabel("amplitude")
    if title:
        axes[i].set_title(title, fontsize=10)
    i += 1
    if spec:
        S = torchaudio.transforms.Spectrogram(n_fft=512, hop_length=128)(torch.as_tensor(wave))
        axes[i].imshow(np.log(S.numpy() + 1e-8), origin="lower", aspect="auto", cmap="magma",
                       extent=[0, dur, 0, sr / 2000])
        axes[i].set_ylabel("kHz")
        i += 1
    draw_segments(axes[i], segments)
    axes[i].set_ylabel("label", rotation=0, ha="right", va="center")
    i += 1
    if cams:
        for name, cam in cams.items():
            tc = (20 * np.arange(len(cam)) + 12.5) / 1000
            axes[i].plot(tc, cam, lw=1.2, label=name)
        for a, b, k in segments:
            if k == "TR":
                axes[i].axvspan(a, b, color=COLORS["TR"], alpha=0.2, lw=0)
        axes[i].set_ylim(-0.02, 1.05)
        axes[i].set_ylabel("Grad-CAM")
        axes[i].legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(0, dur)
    fig.tight_layout()
    return fig
