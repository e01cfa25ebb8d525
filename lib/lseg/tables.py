"""Chapter 3's tables: they only format what :mod:`lib.lseg.evaluation`, :mod:`lib.lseg.pascal` and the recipe
measured.

Every table is a pandas DataFrame of at most four columns beside its index, values already rounded to what the
text quotes, shown through :func:`compact` (its ``.data`` is the DataFrame).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lib.lseg import paper_numbers


def mean_sd(v, fmt: str = ".1f", scale: float = 100) -> str:
    """'mean ± sd' (sample sd, ddof=1) of the values ``v`` times ``scale`` (default: fractions as %)."""
    v = scale * np.asarray(v, dtype=float)
    return f"{v.mean():{fmt}} ± {v.std(ddof=1):{fmt}}"


def compact(df: pd.DataFrame) -> "pd.io.formats.style.Styler":
    """``df`` styled to fit a phone's width: smaller type, tight cells, and a long word may break inside a cell."""
    cell = [("font-size", "0.85em"), ("padding", "0.25em 0.45em"), ("overflow-wrap", "anywhere")]
    return df.style.set_table_styles([{"selector": "th, td", "props": cell}])


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
                          "paper RN101 mIoU (%)": f"{paper_numbers.PASCAL5I_RN101[f]:.1f}", "episodes": r["episodes"],
                          "steps": r["steps"], "unseen classes": ", ".join(f"{c} {v:.2f}" for c, v in
                                                                            r["per_class"].items())}
            for f, r in sorted(results.items())}
    rows["mean"] = {"mIoU (%)": f"{100 * np.mean([r['miou'] for r in results.values()]):.1f}",
                    "FB-IoU (%)": f"{100 * np.mean([r['fb_iou'] for r in results.values()]):.1f}",
                    "paper RN101 mIoU (%)": f"{np.mean([paper_numbers.PASCAL5I_RN101[f] for f in results]):.1f}", "episodes": "",
                    "steps": "", "unseen classes": ""}
    return compact(pd.DataFrame(rows).T.rename_axis(columns=f"{config.recipe.backbone}, {config.label}"))


def course_choices(config):
    """The values of the paper configuration that the paper does not give (or that the course changes), and why."""
    return compact(pd.DataFrame({"setting": [k for k, _ in config.recipe.course_choices],
                                 "the course's choice, and why": [v for _, v in config.recipe.course_choices]}))


def demo_table(demos: dict):
    """Where the pixels of a removed label go (:func:`lib.lseg.evaluation.remove_label_demo`, per photo)."""
    rows = {}
    for photo, d in demos.items():
        for k, share in d["share"].items():
            rows[(photo, k)] = {"pixels": d["pixels"],
                                "they go to": ", ".join(f"{l} {s:.0%}" for l, s in share.items())}
    return compact(pd.DataFrame(rows).T.rename_axis(["photo", "label set"]))
