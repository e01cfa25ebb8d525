"""Chapter 3's figures: they only draw what :mod:`lib.lseg.evaluation` and :mod:`lib.lseg.pascal` measured (the
tables are :mod:`lib.lseg.tables`).

Every figure carries the provenance stamp (:func:`lib.display.provenance.caption`) and is at most 8 inches wide.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from lib.display import provenance
from lib.lseg.data import COLOURS, IGNORE

PALETTE = plt.get_cmap("tab20", 20)


def _bare(axes):
    for a in np.ravel(axes):
        a.set_xticks([])
        a.set_yticks([])


def colourise(lab: np.ndarray) -> np.ndarray:
    """A label map as an RGB image: background black, IGNORE white, label k the k-th colour of tab20."""
    rgb = np.zeros(lab.shape + (3,))
    for k in np.unique(lab):
        rgb[lab == k] = (1, 1, 1) if k == IGNORE else (0, 0, 0) if k == 0 else PALETTE(int(k) % 20)[:3]
    return rgb


def training_examples(ds: dict, n: int = 6):
    """The first ``n`` training images with their label maps and the names of the labels present."""
    fig, axes = plt.subplots(2, n, figsize=(8, 3.3))
    for j in range(n):
        lab = ds["train"]["labels"][j]
        axes[0, j].imshow(ds["train"]["images"][j])
        axes[1, j].imshow(colourise(lab))
        present = [ds["names"][k] for k in np.unique(lab) if 0 < k < IGNORE]
        axes[0, j].set_title("\n".join(present), fontsize=7)
    _bare(axes)
    axes[0, 0].set_ylabel("image (64×64)", fontsize=8)
    axes[1, 0].set_ylabel("label map", fontsize=8)
    provenance.caption(fig, "training images (seen labels only); white = ignored soft edge")
    return fig


def text_similarity(S: np.ndarray, names: list[str], held: list[int]):
    """The cosine-similarity matrix of the label embeddings, held-out labels in red."""
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(S, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for k in held:
        ax.get_xticklabels()[k].set_color("red")
        ax.get_yticklabels()[k].set_color("red")
    fig.colorbar(im, ax=ax, label="cosine similarity of MiniLM embeddings")
    ax.set_title("text space (held-out labels in red)")
    provenance.caption(fig)
    return fig


def training_losses(runs: dict):
    """The training loss of the seed-0 run of each arm (``runs``: {name: (model, history, encoder)})."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for name, (_, hist, _) in runs.items():
        if name.endswith("seed0"):
            ax.plot([h["step"] for h in hist], [h["loss"] for h in hist], label=name.rsplit("-", 1)[0])
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (seen labels)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("training loss, seed 0")
    provenance.caption(fig, "trained with scripts/lseg_train_tiny.py (see MANIFEST.json for the time)")
    return fig


def held_out_iou(results: dict, arms: dict, names: list[str], held: list[int], const_miou: float):
    """IoU of each held-out label with all labels offered, per arm (mean ± sd over its seeds)."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    w = 0.27
    for i, (title, prefix) in enumerate(arms.items()):
        per = np.nan_to_num(np.stack([results[n]["iou"][held].numpy() for n in results if n.startswith(prefix)]))
        ax.bar(np.arange(len(held)) + (i - 1) * w, per.mean(0), w, yerr=per.std(0, ddof=1), label=title, capsize=2)
    ax.axhline(const_miou * len(held), color="k", ls=":", lw=1, label="constant label (its one class)")
    ax.set_xticks(range(len(held)), [names[k] for k in held], rotation=15)
    ax.set_ylabel("IoU, all labels offered")
    ax.set_title("held-out labels: IoU per label (mean ± sd over 3 seeds)")
    ax.legend(fontsize=8)
    provenance.caption(fig)
    return fig


def label_panel(images: np.ndarray, pred: np.ndarray, labels: list[str], caption: str = ""):
    """Images above their segmentation ``pred`` (positions in ``labels``), one colour per offered label."""
    cmap = plt.get_cmap("tab20", max(len(labels), 2))
    fig, axes = plt.subplots(2, len(images), figsize=(min(8, 2.3 * len(images)), 4.8))
    for j in range(len(images)):
        axes[0, j].imshow(images[j])
        axes[1, j].imshow(pred[j], cmap=cmap, vmin=-0.5, vmax=cmap.N - 0.5, interpolation="nearest")
    _bare(axes)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(labels))]
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 5), fontsize=8)
    fig.subplots_adjust(top=0.9 if len(labels) <= 5 else 0.84 if len(labels) <= 10 else 0.62, bottom=0.08)
    provenance.caption(fig, caption)
    plt.close(fig)
    return fig


def vehicle_colours(ds: dict) -> dict:
    """A colour per label of the tiny data: background black, each "<colour> car" in its colour word's hue
    (:data:`lib.lseg.data.COLOURS`), each "<colour> bus" in a darker shade of it."""
    out = {ds["names"][0]: (0.0, 0.0, 0.0)}
    for k in range(1, len(ds["names"])):
        shade = 1.0 if ds["object"][k] == ds["object"][1] else 0.45
        out[ds["names"][k]] = tuple(shade * np.asarray(COLOURS[ds["colour"][k]]))
    return out


def label_sets(images: np.ndarray, truth: np.ndarray, preds: dict, sets: dict, colours: dict, caption: str = ""):
    """The chapter's figure: images, their label maps (IGNORE white), then one row per label set (``sets``: {title:
    labels}; ``preds``: {title: (N, H, W) positions in that set}); ``colours``: {label: RGB}, the same in every
    row (truth label k is ``list(colours)[k]``)."""
    names = list(colours)
    rows = [("image", None), ("truth", None)] + [(t, sets[t]) for t in sets]
    fig, axes = plt.subplots(len(rows), len(images), figsize=(8, 1.95 * len(rows) + 0.8))
    shown = set()
    for row, (title, labels) in zip(axes, rows):
        row[0].set_ylabel(title, fontsize=8)
        for j, a in enumerate(row):
            if title == "image":
                a.imshow(images[j])
                continue
            lab, pal = (truth[j], names) if labels is None else (np.asarray(preds[title][j]), labels)
            rgb = np.ones(lab.shape + (3,))
            for k in np.unique(lab):
                if k < len(pal):
                    rgb[lab == k] = colours[pal[k]]
                    shown.add(pal[k])
            a.imshow(rgb, interpolation="nearest")
    _bare(axes)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[l]) for l in names if l in shown]
    fig.legend(handles, [l for l in names if l in shown], loc="lower center", ncol=4, fontsize=8,
               bbox_to_anchor=(0.5, 0.018), frameon=False)
    fig.subplots_adjust(bottom=0.1, hspace=0.06, wspace=0.04, top=0.99, left=0.06, right=0.99)
    provenance.caption(fig, caption)
    return fig


def fold_figure(fold: dict, paper: float, caption: str = ""):
    """Training loss of each PASCAL-5i run, and the IoU of each unseen class beside the paper's fold mIoU."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    w = 0.8 / len(fold["runs"])
    for i, (name, r) in enumerate(fold["runs"].items()):
        axes[0].plot([h["step"] for h in r["history"]], [h["loss"] for h in r["history"]], label=name)
        iou = [100 * r["per_class"].get(c, np.nan) for c in fold["held_out"]]  # a class with no episode: no IoU
        axes[1].bar(np.arange(len(fold["held_out"])) + (i - 1) * w, iou, w, label=name)
    axes[1].axhline(paper, color="k", ls="--", lw=1, label=f"paper fold mIoU (RN101) {paper}")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("cross-entropy {others, class}")
    axes[0].legend(fontsize=7)
    axes[1].set_xticks(range(len(fold["held_out"])), fold["held_out"], rotation=20, fontsize=8)
    axes[1].set_ylabel("IoU (%), unseen classes")
    axes[1].legend(fontsize=6)
    provenance.caption(fig, caption)
    return fig


def demo_figure(demos: dict, caption: str = ""):
    """Each photo and its segmentation with each label set of :func:`lib.lseg.evaluation.remove_label_demo`."""
    fig, axes = plt.subplots(len(demos), 4, figsize=(8, 2.4 * len(demos)), squeeze=False)
    for row, (photo, d) in zip(axes, demos.items()):
        row[0].imshow(d["image"])
        row[0].set_title(photo, fontsize=8)
        for a, (k, pred) in zip(row[1:], d["preds"].items()):
            a.imshow(pred, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
            a.set_title(f"{k}\n" + ", ".join(f"{i}:{l}" for i, l in enumerate(d["sets"][k])), fontsize=6)
    _bare(axes)
    provenance.caption(fig, caption)
    return fig


def miou_distribution(results: dict, arms: dict, paper_folds: dict, fold: dict | None = None,
                      recipe: dict | None = None, caption: str = ""):
    """Left: the held-out mIoU of every tiny run (one point per seed, a box per arm; ``arms``: {title: run-name
    prefix}) in both protocols. Right: zero-shot mIoU per PASCAL-5i fold, the paper's (``paper_folds``: {fold: %})
    beside ours where run (``fold``: the colab fold study, CLIP text without blocks; ``recipe``: {fold: result})."""
    rows = [{"arm": title.replace(" (control)", "\n(control)").replace(", ", ",\n"), "protocol": proto,
             "mIoU (%)": 100 * r[key]}
            for title, prefix in arms.items() for n, r in results.items() if n.startswith(prefix)
            for proto, key in (("all labels", "held_out_miou"), ("binary", "binary_miou"))]
    df = pd.DataFrame(rows)
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.6), width_ratios=(3, 2))
    sns.boxplot(df, x="arm", y="mIoU (%)", hue="protocol", ax=a, fill=False, showfliers=False, legend=False)
    sns.stripplot(df, x="arm", y="mIoU (%)", hue="protocol", ax=a, dodge=True, size=6, jitter=0.1)
    a.set_xlabel("")
    a.tick_params(axis="x", labelsize=7)
    a.set_title("tiny: held-out labels, one point per seed", fontsize=9)
    a.legend(title="protocol", fontsize=7, title_fontsize=7)
    ours = [(f, 100 * r["miou"], "paper recipe") for f, r in (recipe or {}).items()]
    if fold is not None and "clip-none-seed0" in fold["runs"]:
        ours.append((fold["fold"], 100 * fold["runs"]["clip-none-seed0"]["miou"], "colab fold run"))
    folds = sorted(paper_folds)
    b.scatter(folds, [paper_folds[f] for f in folds], marker="_", s=400, color="k", label="paper (RN101)")
    if ours:
        sns.stripplot(pd.DataFrame(ours, columns=["fold", "mIoU (%)", "ours"]), x="fold", y="mIoU (%)",
                      hue="ours", order=folds, native_scale=True, ax=b, size=6)
    else:
        b.text(1.5, 10, "ours: not run at this scale", ha="center", fontsize=8)
    b.set_xticks(folds, [f"$5^{f}$" for f in folds])
    b.set_ylim(0, 100)
    b.set_xlabel("PASCAL-5i fold")
    b.set_ylabel("zero-shot mIoU (%)")
    b.set_title("PASCAL-5i, binary protocol", fontsize=9)
    b.legend(fontsize=7)
    fig.subplots_adjust(bottom=0.24, wspace=0.3)
    provenance.caption(fig, caption)
    return fig


def blocks_seeds_figure(data: dict, paired: dict, power: dict, metric_label: str = "seen-label mIoU (%)"):
    """The spatial-blocks seed sweep (``data``): each seed's mIoU with and without blocks (lines join a seed), and the
    paired differences with their mean and 95 % interval beside ±1 point; seaborn."""
    seeds, on, off, diff = paired["seeds"], paired["on"], paired["off"], paired["diff"]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), layout="constrained", width_ratios=(1.1, 1))
    for s, a, b in zip(seeds, on, off):
        axes[0].plot([0, 1], [b, a], color="0.6", lw=0.8, marker="o", ms=4)
    sns.pointplot(x=[0] * len(off) + [1] * len(on), y=np.r_[off, on], errorbar="sd", color="C3", markers="_",
                  ax=axes[0], native_scale=True)
    axes[0].set_xticks([0, 1], ["no blocks", "bottleneck×2"])
    axes[0].set(xlim=(-0.4, 1.4), ylabel=metric_label, title=f"{len(seeds)} seeds (mean ± sd in red)")
    sns.stripplot(x=np.zeros(len(diff)), y=diff, color="0.4", size=6, jitter=0.08, ax=axes[1], native_scale=True)
    lo, hi = power["ci95"]
    axes[1].errorbar([0.25], [power["mean"]], yerr=[[power["mean"] - lo], [hi - power["mean"]]], fmt="D", color="C3",
                     capsize=4, label="mean, 95 % interval")
    axes[1].axhspan(-power["delta"], power["delta"], color="C0", alpha=0.12, label=f"±{power['delta']:g} point")
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set(xlim=(-0.4, 0.6), xticks=[], ylabel="blocks − none, same seed (points)",
                title=f"80 % power at {power['delta']:g} point: {power['needed']} seeds")
    axes[1].legend(fontsize=7, loc="lower right")
    note = (f"paired sd {power['sd']:.1f} points, power now {power['power_now']:.0%} · sweep {data['sweep']} · "
            f"commit {data['commit']} · {data['machine']} · {data['started'][:10]} · {data['seconds'] / 60:.0f} min")
    fig.text(0.995, 0.002, note, ha="right", va="bottom", fontsize=6, color="0.4")
    fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    return fig
