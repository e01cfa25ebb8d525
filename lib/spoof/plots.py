"""Figures and table cells for chapter 2: segment labels under a waveform/spectrogram, Grad-CAM over time,
training curves, RCQ tables drawn as the paper's Table 2 and per seed (seaborn), the utterance browser's panels,
and mean ± sd over seeds."""
from __future__ import annotations

import base64
import html
import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
import torchaudio
from IPython.display import HTML
from matplotlib.patches import Patch

from lib.display import provenance, widgets

from .audio import HOP, SR, WIN
from .gradcam import gradcam

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
    return [Patch(color=c, label=f"{k}: {NAMES[k]}") for k, c in COLORS.items()]


def utterance_figure(wave, segments, cams: dict | None = None, *, sr=SR, title="", spec=True, fig=None):
    """Waveform (+ log spectrogram) with the segment labels underneath and optional Grad-CAM curves.

    ``cams``: {label: 1-D array, one value per 20 ms frame}; frame n is drawn at its window centre 20 n + 12.5 ms.
    ``fig``: draw into this (sub)figure instead of a new one.
    """
    wave = np.asarray(wave, dtype=np.float32)
    t = np.arange(len(wave)) / sr
    dur = len(wave) / sr
    rows = [2, 2 if spec else 0, 0.45, 2 if cams else 0]
    rows = [r for r in rows if r]
    own = fig is None
    fig = plt.figure(figsize=(8, 1.3 * sum(rows) / 1.5)) if own else fig
    axes = fig.subplots(len(rows), 1, sharex=True, gridspec_kw={"height_ratios": rows})
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
            tc = (HOP * np.arange(len(cam)) + WIN / 2) / SR   # each window's centre, in seconds
            axes[i].plot(tc, cam, lw=1.2, label=name)
        for a, b, k in segments:
            if k == "TR":
                axes[i].axvspan(a, b, color=COLORS["TR"], alpha=0.2, lw=0)
        axes[i].set_ylim(-0.02, 1.05)
        axes[i].set_ylabel("Grad-CAM")
        axes[i].legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(0, dur)
    if own:
        fig.tight_layout()
    return fig


PUBLIC_COLORS = {0: COLORS["SS"], 1: COLORS["BS"], 2: "0.8"}
PUBLIC_NAMES = {0: "0 spoof", 1: "1 bona fide", 2: "2 non-speech"}


def derivation_figure(spans, seglab, segments, *, resolution=0.01, title=""):
    """One utterance's labels as three strips on one time axis: the public ``.vad`` spans (0 spoof, 1 bona fide,
    2 non-speech), the segment labels (one per ``resolution`` s: 1 bona fide, 0 spoof) and the five segment types
    derived from them."""
    end = max(spans[-1][1], len(seglab) * resolution)
    fig, axes = plt.subplots(3, 1, figsize=(8, 2.6), sharex=True)
    for a, b, c in spans:
        axes[0].axvspan(a, b, color=PUBLIC_COLORS[int(c)], lw=0)
        if b - a > 0.12:
            axes[0].text((a + b) / 2, 0.5, str(int(c)), ha="center", va="center", fontsize=8,
                         transform=axes[0].get_xaxis_transform())
    seglab = np.asarray(seglab)
    t = np.arange(len(seglab) + 1) * resolution
    axes[1].imshow(seglab[None, :].astype(float), aspect="auto", cmap="RdYlGn", vmin=-0.3, vmax=1.3,
                   extent=[0, t[-1], 0, 1], interpolation="nearest")
    draw_segments(axes[2], segments)
    names = (".vad label", f"segment labels\n({resolution * 1000:g} ms)", "derived type")
    for ax, name in zip(axes, names):
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    for a, b, k in segments:
        if k == "TR":
            for ax in axes:
                ax.axvline((a + b) / 2, color="k", lw=0.6, ls=":")
    axes[-1].set_xlim(0, end)
    axes[-1].set_xlabel("time (s)")
    handles = ([Patch(color=PUBLIC_COLORS[c], label=f".vad {PUBLIC_NAMES[c]}") for c in PUBLIC_COLORS]
               + legend_handles())
    fig.legend(handles=handles, loc="upper center", ncol=4, fontsize=6.5, frameon=False,
               title=title or None, title_fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.72))
    return fig


def cam_figure(panels, title=""):
    """One figure of utterances stacked: ``panels`` = [(wave, segments, {label: cam}, title)]; at the top,
    ``title`` over the legend of the segment types."""
    fig = plt.figure(figsize=(8, 3.1 * len(panels)), layout="constrained")
    for sub, (wave, segments, cams, name) in zip(np.atleast_1d(fig.subfigures(len(panels), 1)), panels):
        utterance_figure(wave, segments, cams, spec=False, title=name, fig=sub)
    fig.legend(handles=legend_handles(), loc="outside upper center", ncol=3, fontsize=7,
               title=title or None, title_fontsize=10, frameon=False)
    fig.get_layout_engine().set(rect=(0, 0.02, 1, 0.98))   # room for the provenance caption
    return fig


def training_curves(results, splice, seeds):
    """Loss and batch accuracy per step of both CMs of ``splice``, one line per seed."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for tr, name, color in (("full", "trained on fully spoofed", "C0"), ("partial", "trained on partial spoofs", "C3")):
        for s in seeds:
            h = results[(tr, splice, s)]["history"]
            step = [r["step"] for r in h]
            axes[0].plot(step, [r["loss"] for r in h], color=color, alpha=0.7, label=name if s == seeds[0] else None)
            axes[1].plot(step, [r["acc"] for r in h], color=color, alpha=0.7)
    axes[0].set(xlabel="step", ylabel="P2SGrad-MSE loss", title=f"training loss ({len(seeds)} seeds)")
    axes[1].set(xlabel="step", ylabel="batch accuracy", title=f"training accuracy ({len(seeds)} seeds)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.subplots_adjust(bottom=0.25)   # room for the provenance caption
    return fig


def rcq_heatmaps(ours: dict, paper: dict, kinds, *, titles=("ours", "paper")):
    """Two RCQ tables side by side as the paper's Table 2 shades them: one row per CM and target, each cell coloured
    by its value relative to the largest magnitude **in its row** (red above the data set's mean attention, blue
    below), annotated with the value in percent. ``ours``, ``paper``: {row name: {type: RCQ %}}; a row missing from
    one table is left blank there."""
    rows = list(dict.fromkeys([*ours, *paper]))
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.55 * len(rows) + 1.4), sharey=True)
    for ax, table, title in zip(axes, (ours, paper), titles):
        values = pd.DataFrame([[table.get(r, {}).get(k, np.nan) for k in kinds] for r in rows], index=rows,
                              columns=list(kinds), dtype=float)
        scale = values.abs().max(axis=1).replace(0, 1.0)
        sns.heatmap(values.div(scale, axis=0), annot=values, fmt="+.1f", cmap="RdBu_r", vmin=-1, vmax=1, center=0,
                    cbar=False, linewidths=0.5, linecolor="white", annot_kws={"fontsize": 8}, ax=ax)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("segment type")
        ax.tick_params(axis="y", labelsize=8, rotation=0)
    axes[0].set_ylabel("CM · Grad-CAM target")
    fig.tight_layout()
    fig.subplots_adjust(bottom=0.3)   # room for the provenance caption
    return fig


def per_seed_figure(per_seed, paper_rcq: dict, paper_eer: dict, kinds, *, title=""):
    """RCQ per type (spoof target) and EER of each seed as strip plots, one colour per CM, the paper's value of
    each CM marked as a short black bar. ``per_seed``: rows ``{"CM", "seed", "EER", **{type: RCQ}}``;
    ``paper_rcq``: {CM: {type: RCQ}}; ``paper_eer``: {CM: EER}."""
    df = pd.DataFrame(per_seed)
    cms = list(dict.fromkeys(df["CM"]))
    long = df.melt(id_vars=["CM", "seed"], value_vars=list(kinds), var_name="type", value_name="RCQ %")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [3, 1]})
    sns.stripplot(long, x="type", y="RCQ %", hue="CM", hue_order=cms, order=list(kinds), dodge=True, size=6,
                  jitter=0.1, ax=axes[0])
    sns.stripplot(df, x="CM", y="EER", hue="CM", order=cms, hue_order=cms, size=6, jitter=0.1, legend=False,
                  ax=axes[1])
    width = 0.8 / len(cms)
    for j, cm in enumerate(cms):          # the paper's values, at each CM's dodged position
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(kinds))]
        axes[0].scatter(xs, [paper_rcq[cm][k] for k in kinds], marker="_", s=300, color="k", zorder=3,
                        label="paper" if j == 0 else None)
        axes[1].scatter([j], [paper_eer[cm]], marker="_", s=600, color="k", zorder=3)
    axes[0].axhline(0, color="0.6", lw=0.8)
    axes[0].legend(fontsize=7, loc="best")
    axes[0].set_title(title or "RCQ per seed, spoof target", fontsize=10)
    axes[1].set(ylabel="EER %", xlabel="", title="EER per seed")
    axes[1].tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.subplots_adjust(bottom=0.25)   # room for the provenance caption
    return fig


def stamp():
    """The provenance stamp (``lib.display.provenance.stamp``) as a small HTML line that wraps on a phone."""
    return HTML(f'<p class="course-stamp"><small>{html.escape(provenance.stamp())}</small></p>')


def mean_sd(vals) -> str:
    """``"12.3 ± 4.5"``: mean ± sample sd over seeds (one value: just it)."""
    vals = np.asarray(vals, dtype=float)
    return f"{vals.mean():.1f} ± {vals.std(ddof=1):.1f}" if len(vals) > 1 else f"{vals[0]:.1f}"


def cam_panel_html(model, name, item, target, rcq_of) -> str:
    """The utterance browser's panel: audio player and Grad-CAM of ``model`` on ``item`` for ``target``, titled
    with the utterance's own RCQ per type (``rcq_of(cam, segments)``), as HTML."""
    cam = gradcam(model, model.fc, [item["wave"]], target=target)[0].cpu().numpy()
    r = rcq_of(cam, item["segments"])
    title = f"{item['id']}: " + " ".join(f"{k} {v:+.0f}%" for k, v in r.items() if np.isfinite(v))
    fig = utterance_figure(item["wave"].numpy(), item["segments"], {f"{name}, target {target}": cam}, spec=False,
                           title=title)
    provenance.caption(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=70, bbox_inches="tight")
    plt.close(fig)
    img = base64.b64encode(buf.getvalue()).decode()
    return widgets.audio(item["wave"].numpy(), SR) + f'<img src="data:image/png;base64,{img}" style="max-width:100%">'


def sweep_note(data: dict) -> str:
    """A sweep file's provenance in one line: name, commit, machine, date, total time."""
    return (f"sweep {data['sweep']} · commit {data['commit']} · {data['machine']} · {data['started'][:10]} · "
            f"{data['seconds'] / 60:.0f} min")


def table3_sweep(data: dict, rows, paper_tr: float, paper_label: str = "paper, Table 3"):
    """The Table 3 budget sweep (``data``, its ``lib.spoof.diagnosis.rows``): EER per training budget, and the TR RCQ
    of the missed partial spoofs against EER, one dot per CM (seed), the all-utterance TR beside it; seaborn."""
    import pandas as pd
    import seaborn as sns

    df = pd.DataFrame(rows)
    df["budget"] = df["steps"].astype(str) + " steps"
    order = [f"{n} steps" for n in sorted(df["steps"].unique())]
    pal = dict(zip(order, sns.color_palette("viridis_r", len(order))))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.3), layout="constrained")
    sns.pointplot(df, x="steps", y="eer", errorbar="sd", color="0.3", markers="_", linestyles=":", ax=axes[0])
    sns.stripplot(df, x="steps", y="eer", hue="budget", hue_order=order, palette=pal, size=6, jitter=0.15,
                  legend=False, ax=axes[0])
    axes[0].set(xlabel="training steps", ylabel="EER % (partial spoofs)", title="CM strength by budget")
    miss = df.dropna(subset=["tr_missed"])
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].axhline(paper_tr, color="C3", ls="--", lw=1, label=f"{paper_label}: TR {paper_tr:+.1f} %")
    sns.scatterplot(df, x="eer", y="tr_all", hue="budget", hue_order=order, palette=pal, marker="o", s=25,
                    alpha=0.35, legend=False, ax=axes[1])
    sns.scatterplot(miss, x="eer", y="tr_missed", hue="budget", hue_order=order, palette=pal, marker="D", s=45,
                    ax=axes[1])
    axes[1].set(xlabel="EER % (weaker →)", ylabel="RCQ TR %",
                title="RCQ TR: missed ◆, all ○ partial spoofs")
    axes[1].legend(fontsize=7, loc="best")
    fig.text(0.995, 0.002, sweep_note(data), ha="right", va="bottom", fontsize=6, color="0.4")
    fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    return fig
