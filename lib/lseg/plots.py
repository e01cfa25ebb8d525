"""Chapter 3's figures and tables: they only draw and format what :mod:`lib.lseg.evaluation` measured.

Every figure carries the provenance stamp (:func:`lib.display.provenance.caption`) and is at most 8 inches wide; every
table is a pandas DataFrame of at most four columns beside its index, values already rounded to what the text quotes,
shown through :func:`compact` (its ``.data`` is the DataFrame).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lib.display import provenance
from lib.lseg import pascal
from lib.lseg.data import COLOURS, IGNORE
from lib.lseg.evaluation import removal_per_run, seed_stats
from lib.lseg.pascal import PAPER_RN101

PALETTE = plt.get_cmap("tab20", 20)


def mean_sd(v, fmt: str = ".1f", scale: float = 100) -> str:
    """'mean ± sd' (sample sd, ddof=1) of the values ``v`` times ``scale`` (default: fractions as %)."""
    v = scale * np.asarray(v, dtype=float)
    return f"{v.mean():{fmt}} ± {v.std(ddof=1):{fmt}}"


def compact(df: pd.DataFrame) -> "pd.io.formats.style.Styler":
    """``df`` styled to fit a phone's width: smaller type, tight cells, and a long word may break inside a cell."""
    cell = [("font-size", "0.85em"), ("padding", "0.25em 0.45em"), ("overflow-wrap", "anywhere")]
    return df.style.set_table_styles([{"selector": "th, td", "props": cell}])


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


def nearest_labels(S: np.ndarray, names: list[str], rows: list[int], k: int = 3):
    """For each label in ``rows``: its ``k`` nearest other labels by cosine similarity ``S``."""
    near = {names[i]: ", ".join(names[j] for j in np.argsort(-S[i])[1:k + 1]) for i in rows}
    return compact(pd.DataFrame({f"nearest {k} other labels": near}).rename_axis(columns="label"))


def word_choice_table(cases: dict):
    """``cases``: {title: (labels, (same colour, same object, {label: nearest}))} from
    :func:`lib.lseg.evaluation.nearest_same`; one row per label set."""
    rows = {}
    for title, (labels, (c, o, nn_)) in cases.items():
        rows[title] = {"nearest: same colour": f"{c:.0%}", "nearest: same object": f"{o:.0%}",
                       "example": f"{labels[2]} → {nn_[labels[2]]}"}
    return compact(pd.DataFrame(rows).T.rename_axis(columns="labels"))


def feature_shapes(model, f: dict):
    """The shapes of ``model.forward_features``'s maps: tokens and reassembled map per hook, then fused and I."""
    rows = {f"hook {h}": {"tokens": str(tuple(t.shape)), "map": str(tuple(r.shape))}
            for h, t, r in zip(model.cfg.hooks, f["hooks"], f["reassembled"])}
    rows["fused"] = {"tokens": "", "map": str(tuple(f["fused"].shape))}
    rows["pixel embeddings I"] = {"tokens": "", "map": str(tuple(f["pixel_embeddings"].shape))}
    return compact(pd.DataFrame(rows).T.rename_axis(columns="stage"))


def manifest_table(manifest: dict, names):
    """The committed tiny runs: sha256 prefix, steps and training time from ``MANIFEST.json``."""
    rows = {}
    for n in names:
        m = manifest.get(n, {})   # a run trained here has no entry
        rows[n] = {"sha256": m.get("sha256", "?")[:12] + "…", "steps": m.get("steps", "?"),
                   "train (s)": f"{m['seconds']:.1f}" if "seconds" in m else "?"}
    return compact(pd.DataFrame(rows).T.rename_axis(columns="run"))


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


def protocol_table(results: dict, arms: dict, const: tuple[float, str]):
    """Mean ± sd over the seeds of each arm (``arms``: {row title: run-name prefix}) in both protocols, and the
    best constant label."""
    keys = {"held-out mIoU (%)": "held_out_miou", "seen mIoU (%)": "seen_miou",
            "binary mIoU (%)": "binary_miou", "FB-IoU (%)": "binary_fb_iou"}
    rows = {title: {col: mean_sd([results[n][k] for n in results if n.startswith(prefix)])
                    for col, k in keys.items()} for title, prefix in arms.items()}
    rows["best constant label"] = dict.fromkeys(keys, "")
    rows["best constant label"]["held-out mIoU (%)"] = f"{100 * const[0]:.1f} ({const[1]})"
    return compact(pd.DataFrame(rows).T.rename_axis(columns="mean ± sd, 3 seeds"))


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


def blocks_table(results: dict, on: str = "minilm-bottleneck2", off: str = "minilm-none"):
    """Spatial blocks on (``on``) and off (``off``): mean ± sd and each seed's value, the difference of the means."""
    rows = {}
    for key, what in (("seen_miou", "seen labels mIoU"), ("held_out_miou", "held-out mIoU (all labels)"),
                      ("binary_miou", "held-out binary mIoU")):
        a, b = ([results[n][key] for n in results if n.startswith(p)] for p in (on, off))
        seeds = [", ".join(f"{100 * x:.1f}" for x in v) for v in (a, b)]
        rows[what] = {"bottleneck×2": f"{mean_sd(a)} (seeds: {seeds[0]})",
                      "no blocks": f"{mean_sd(b)} (seeds: {seeds[1]})",
                      "Δ (b×2 − none)": f"{100 * (np.mean(a) - np.mean(b)):+.1f}"}
    return compact(pd.DataFrame(rows).T.rename_axis(columns="metric (%)"))


def removal_table(removals: list[dict], removed: list[int], ds: dict):
    """One run's removals: per removed label, its top destination, its text-nearest label (each with the share of
    the removed label's pixels), the shares to the same colour / the same object and to the background."""
    names, rows = ds["names"], {}
    for r, k in zip(removals, removed):
        rows[names[k] + (" (held out)" if k in ds["held_out"] else "")] = {
            "most pixels go to": f"{names[r['top']]} {r['share'][r['top']]:.0%}",
            "text-nearest label": f"{names[r['nearest_text']]} {r['share_to_nearest_text']:.0%}",
            "same colour / object": f"{r['share_same_colour']:.0%} / {r['share_same_object']:.0%}",
            "background": f"{r['share_background']:.0%}"}
    return compact(pd.DataFrame(rows).T.rename_axis(columns="removed label"))


def removal_runs_table(per_run: dict):
    """``per_run``: {arm title: :func:`lib.lseg.evaluation.removal_per_run`}; one row per run and a mean ± sd row
    per arm (shares in %)."""
    rows = {}

    def row(v: dict, f):
        return {"to text-nearest": f(v["to text-nearest"]), "top is text-nearest": f(v["top is text-nearest"]),
                "same colour / object": f"{f(v['same colour'])} / {f(v['same object'])}",
                "background": f(v["background"])}

    for arm, runs in per_run.items():
        for n, v in runs.items():
            rows[n] = row(v, lambda x: f"{x:.0%}")
        cols = {k: [v[k] for v in runs.values()] for k in next(iter(runs.values()))}
        rows[f"mean ± sd, {arm}"] = row(cols, lambda x: f"{np.mean(x):.0%} ± {np.std(x, ddof=1):.0%}")
    return compact(pd.DataFrame(rows).T.rename_axis(columns="run (mean over 12 removals)"))


def other_table(other: dict):
    """The share of the test pixels (all, and those of held-out labels) that an added "other" takes, per run and
    as mean ± sd."""
    rows = {n: {"all test pixels": f"{x['share_all']:.1%}", "held-out pixels": f"{x['share_held_out']:.1%}"}
            for n, x in other.items()}
    sa, sh = ([x[k] for x in other.values()] for k in ("share_all", "share_held_out"))
    rows[f"mean ± sd ({len(other)} runs)"] = {"all test pixels": f"{np.mean(sa):.1%} ± {np.std(sa, ddof=1):.1%}",
                                              "held-out pixels": f"{np.mean(sh):.1%} ± {np.std(sh, ddof=1):.1%}"}
    return compact(pd.DataFrame(rows).T.rename_axis(columns="'other' takes"))


def coarse_table(results: dict, n_labels: int, prefix: str = "minilm"):
    """Pixel accuracy and mIoU with coarse label sets (colours only, objects only) and the fine set."""
    runs = [n for n in results if n.startswith(prefix)]
    rows = {what: {"pixel accuracy (%)": mean_sd([results[n][key]["pixel_acc"] for n in runs]),
                   "mIoU (%)": mean_sd([results[n][key]["miou"] for n in runs])}
            for key, what in (("coarse_colour", "colours only"), ("coarse_object", "objects only"))}
    rows[f"fine ({n_labels})"] = {"pixel accuracy (%)": mean_sd([results[n]["pixel_acc"] for n in runs]),
                                  "mIoU (%)": ""}
    return compact(pd.DataFrame(rows).T.rename_axis(columns=f"label set ({len(runs)} runs)"))


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


def fold_table(fold: dict, paper: float):
    """PASCAL-5i runs: mIoU and FB-IoU (%), per-class IoU, training minutes; the paper's fold mIoU below."""
    rows = {name: {"mIoU (%)": f"{100 * r['miou']:.1f}", "FB-IoU (%)": f"{100 * r['fb_iou']:.1f}",
                   "per class IoU": ", ".join(f"{c} {v:.2f}" for c, v in r["per_class"].items()),
                   "train (min)": f"{r['train_seconds'] / 60:.1f}"} for name, r in fold["runs"].items()}
    rows["paper, LSeg RN101"] = {"mIoU (%)": f"{paper:.1f}", "FB-IoU (%)": "", "per class IoU": "",
                                 "train (min)": "authors' README"}
    return compact(pd.DataFrame(rows).T.rename_axis(columns=f"PASCAL-5^{fold['fold']}"))


def recipe_table(results: dict, config):
    """The paper recipe's folds (``lib.lseg.recipe.require``): zero-shot mIoU and FB-IoU (%), per-class IoU, steps,
    beside the paper's RN101 fold mIoU (the authors' README), and the mean over the folds run."""

    rows = {f"fold {f}": {"mIoU (%)": f"{100 * r['miou']:.1f}", "FB-IoU (%)": f"{100 * r['fb_iou']:.1f}",
                          "paper RN101 mIoU (%)": f"{PAPER_RN101[f]:.1f}", "episodes": r["episodes"],
                          "steps": r["steps"], "unseen classes": ", ".join(f"{c} {v:.2f}" for c, v in
                                                                            r["per_class"].items())}
            for f, r in sorted(results.items())}
    rows["mean"] = {"mIoU (%)": f"{100 * np.mean([r['miou'] for r in results.values()]):.1f}",
                    "FB-IoU (%)": f"{100 * np.mean([r['fb_iou'] for r in results.values()]):.1f}",
                    "paper RN101 mIoU (%)": f"{np.mean([PAPER_RN101[f] for f in results]):.1f}", "episodes": "",
                    "steps": "", "unseen classes": ""}
    return compact(pd.DataFrame(rows).T.rename_axis(columns=f"{config.fold_backbone}, {config.label}"))


def course_choices(config):
    """The values of the paper configuration that the paper does not give (or that the course changes), and why."""
    return compact(pd.DataFrame({"setting": [k for k, _ in config.course_choices],
                                 "the course's choice, and why": [v for _, v in config.course_choices]}))


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


def demo_table(demos: dict):
    """Where the pixels of a removed label go (:func:`lib.lseg.evaluation.remove_label_demo`, per photo)."""
    rows = {}
    for photo, d in demos.items():
        for k, share in d["share"].items():
            rows[(photo, k)] = {"pixels": d["pixels"],
                                "they go to": ", ".join(f"{l} {s:.0%}" for l, s in share.items())}
    return compact(pd.DataFrame(rows).T.rename_axis(["photo", "label set"]))


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


def scorecard(results: dict, fold: dict | None, n_labels: int, const_miou: float, config=None,
              recipe: dict | None = None):
    """The chapter's scorecard: the paper's zero-shot numbers, ours on PASCAL-5i fold 0 (``fold``; None: not run at
    this scale), the paper recipe's folds (``recipe``: ``lib.lseg.recipe.require``; None below ``paper``) and the
    tiny runs' held-out numbers in both protocols (mean ± sd over 3 seeds)."""
    card = provenance.Scorecard("LSeg zero-shot (binary {others, class} protocol) and the all-labels protocol",
                                config=config)
    runs5i = fold["runs"] if fold is not None else {}
    f0, rnd5i = runs5i.get("clip-none-seed0"), runs5i.get("random-none-seed0")
    not_run = "ours: not run at this scale"
    card.add("zero-shot mIoU, PASCAL-5i fold 0 (%)", None if f0 is None else round(100 * f0["miou"], 1),
             pascal.PAPER_RN101[0], source="paper (RN101; the authors' README)",
             note=not_run if f0 is None else
             "ours: ImageNet ViT-B/32, CLIP text, VOC2012 without SBD, 600 steps, one seed")
    card.add("PASCAL-5i fold 0, random-vector control (%)", None if rnd5i is None else round(100 * rnd5i["miou"], 1),
             None, note=not_run if rnd5i is None else "same training, random label vectors")
    card.add("PASCAL-5i fold 0 FB-IoU (%)", None if f0 is None else round(100 * f0["fb_iou"], 1), None,
             note="the paper's FB-IoU is a mean over folds (unverified here)")
    card.add("zero-shot mIoU, PASCAL-5i mean, RN101 (%)", None, 47.4, source="paper Table (zero-shot)",
             note="ours: one fold only (row above)")
    if recipe:
        folds = sorted(recipe)
        card.add(f"zero-shot mIoU, PASCAL-5i folds {', '.join(map(str, folds))}, paper recipe (%)",
                 round(100 * float(np.mean([recipe[f]["miou"] for f in folds])), 1),
                 round(float(np.mean([pascal.PAPER_RN101[f] for f in folds])), 1),
                 source="paper (RN101; the authors' README)",
                 note=f"ours: {config.fold_backbone}, CLIP text, VOC2012 without SBD, {config.epochs} epochs "
                      f"(lib.lseg.recipe)")
    card.add("zero-shot mIoU, PASCAL-5i mean, ViT-L/16 (%)", None, 52.3, source="paper Table (zero-shot)",
             note="[R] unverified; ours: not run")
    card.add("FSS-1000 mIoU, ViT-L/16 (%)", None, 87.8, source="paper Table (FSS-1000)", note="ours: not run")
    b, fb, h = (seed_stats(results, "minilm-bottleneck2", k) for k in ("binary_miou", "binary_fb_iou", "held_out_miou"))
    rnd = seed_stats(results, "random-bottleneck2", "binary_miou")
    card.add("tiny: held-out binary mIoU (%)", round(100 * b[0], 1), None,
             note=f"± {100 * b[1]:.1f} over 3 seeds; random-vector control {100 * rnd[0]:.1f}")
    card.add("tiny: held-out binary FB-IoU (%)", round(100 * fb[0], 1), None, note=f"± {100 * fb[1]:.1f}")
    card.add(f"tiny: held-out mIoU, all {n_labels} labels offered (%)", round(100 * h[0], 1), None,
             note=f"± {100 * h[1]:.1f}; best constant label {100 * const_miou:.1f}")
    card.add("ADE20K ViT-B/32 baseline, no blocks: mIoU (%)", None, 37.8, source="paper ablation",
             note="a lang-seg user reported reproducing 33.7 (not ours); ours: not run")
    return card


def glance(results: dict, fold: dict | None, config=None):
    """The chapter's results at a glance, each verdict computed from the runs:

    - zero-shot through the text space: held when the MiniLM arm's held-out mIoU (all labels offered) exceeds the
      random-vector control's by more than twice the MiniLM arm's seed sd;
    - PASCAL-5i fold 0 (colab only; otherwise not tested): held when CLIP text beats the random-vector control;
    - spatial blocks improve mIoU on the trained labels: held when bottleneck×2 beats no blocks on seen-label mIoU
      by more than one seed sd;
    - a removed label's pixels go to the text-nearest label: held when the MiniLM runs send it more than half;
    - an untrained "other" is no rejection class: held when it takes under 5 % of the test pixels in every run.
    """
    g = provenance.Glance(config=config)
    txt, rnd = (seed_stats(results, p, "held_out_miou") for p in ("minilm-bottleneck2", "random-bottleneck2"))
    g.add("unseen labels are recognised through the text space", paper="zero-shot on PASCAL-5i, COCO-20i, "
          "FSS-1000", ours=f"held-out mIoU {100 * txt[0]:.1f} ± {100 * txt[1]:.1f} % with text, "
          f"{100 * rnd[0]:.1f} % with random vectors (3 seeds each)", held=bool(txt[0] - rnd[0] > 2 * txt[1]))
    runs5i = fold["runs"] if fold is not None else {}
    f0, r0 = runs5i.get("clip-none-seed0"), runs5i.get("random-none-seed0")
    g.add("the same on PASCAL-5i fold 0", paper=f"{PAPER_RN101[0]} % mIoU (RN101)",
          ours="not run at this scale (colab)" if f0 is None or r0 is None else
          f"{100 * f0['miou']:.1f} % (ViT-B/32, a budget run); random vectors {100 * r0['miou']:.1f} %",
          held=None if f0 is None or r0 is None else bool(f0["miou"] > r0["miou"]))
    arms = ("minilm-bottleneck2", "minilm-none")
    on, off = (seed_stats(results, p, "seen_miou") for p in arms)
    ho, hf = (seed_stats(results, p, "held_out_miou") for p in arms)
    g.add("spatial blocks add mIoU on trained labels", paper="small gains (ADE20K ablation)",
          ours=f"seen labels {100 * on[0]:.1f} % with blocks, {100 * off[0]:.1f} % without (sd "
          f"{100 * on[1]:.1f}); held-out {100 * ho[0]:.1f} vs {100 * hf[0]:.1f} % (sd {100 * ho[1]:.1f})",
          held=bool(on[0] - off[0] > on[1]))
    to_near = [v["to text-nearest"] for v in removal_per_run(results, "minilm").values()]
    bg = [v["background"] for v in removal_per_run(results, "minilm").values()]
    g.add("no rejection: a missing label's pixels go to the offered label nearest in text space",
          paper="argmax over the offered labels",
          ours=f"{np.mean(to_near):.0%} ± {np.std(to_near, ddof=1):.0%} to that label, {np.mean(bg):.0%} to the "
          "background (6 text runs; words chosen so that nearest = same colour)",
          held=bool(np.mean(to_near) > 0.5))
    other = [results[n]["other"]["share_all"] for n in results if n.startswith("minilm")]
    g.add("an untrained \"other\" is no rejection class", paper="the demos append \"other\"",
          ours=f"\"other\" took at most {max(other):.2%} of the test pixels (6 text runs)",
          held=bool(max(other) < 0.05))
    return g


def blocks_seeds_figure(data: dict, paired: dict, power: dict, metric_label: str = "seen-label mIoU (%)"):
    """The spatial-blocks seed sweep (``data``): each seed's mIoU with and without blocks (lines join a seed), and the
    paired differences with their mean and 95 % interval beside ±1 point; seaborn."""
    import seaborn as sns

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
