"""Chapter 1's figures and tables: drawing and formatting only (every number is measured by the chapter's cells).

Each figure carries :func:`lib.display.provenance.caption`; each table is a pandas ``Styler`` whose caption carries
:func:`lib.display.provenance.stamp`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import FancyBboxPatch

from lib.display import provenance
from lib.icm.checkerboard import checkerboard_score, phase_means, residual_spectrum
from lib.icm.experiment import zoom
from lib.icm.paper_numbers import MAIN, PROJECT_PAGE_ARTIFACT, PROJECT_PAGE_ARTIFACT_SOURCE, SOURCE, TABLE_1


def table(df: pd.DataFrame, note: str = "", precision: int = 3):
    """``df`` rounded to ``precision``, with ``note`` and the provenance stamp as its caption."""
    caption = (note + " · " if note else "") + provenance.stamp()
    return df.style.format(precision=precision, na_rep="—").set_caption(caption)


def relative_change(value: float, base: float) -> float:
    """``100 · (value / base − 1)`` in %; a base of 0: 0 if ``value`` is 0 too, else NaN."""
    if base > 0:
        return 100 * (value / base - 1)
    return 0.0 if value == base else float("nan")


def deconv_figure(one, four):
    fig, ax = plt.subplots(1, 2, figsize=(8, 3.6))
    ax[0].imshow(one[4:12, 4:12], cmap="magma")
    ax[0].set_title("one transposed conv (k=5, s=2)\nconstant input: counts 9/6/6/4", fontsize=9)
    ax[1].imshow(four[16:48, 16:48], cmap="magma")
    ax[1].set_title("four stacked (total stride 16)\nconstant input", fontsize=9)
    for a in ax:
        a.set_xlabel("x (pixels)"); a.set_ylabel("y (pixels)")
    provenance.caption(fig); plt.tight_layout()
    return fig


def base_history(record: dict):
    """The base codec's training log: rate, PSNR on the training crops, and the machine terms of stage 2."""
    h, stage2 = record["history"], record["config"].get("rd_steps", 0)
    fig, ax = plt.subplots(1, 3, figsize=(8, 2.8))
    steps = [r["step"] for r in h]
    ax[0].plot(steps, [r["bpp"] for r in h]); ax[0].set_ylabel("rate (bpp, noisy proxy)")
    ax[1].plot(steps, [-10 * np.log10(r["mse"]) for r in h]); ax[1].set_ylabel("PSNR, training crops (dB)")
    h2 = [r for r in h if "feature" in r]
    ax[2].plot([r["step"] for r in h2], [r["feature"] for r in h2], label="feature distance")
    ax[2].plot([r["step"] for r in h2], [r["kl"] for r in h2], label="KL")
    ax[2].set_ylabel("machine terms (stage 2)"); ax[2].legend(fontsize=7)
    for a in ax:
        a.set_xlabel("training step", fontsize=8); a.tick_params(labelsize=7); a.yaxis.label.set_size(8)
    for a in ax[:2]:
        a.axvline(stage2, color="0.6", ls=":", label="stage 2 starts")
    ax[0].legend(fontsize=7); fig.suptitle("the base ICM codec: rate-distortion, then the machine", fontsize=9)
    provenance.caption(fig); plt.tight_layout()
    return fig


def artifact_figure(x, x_base, name: str, bits: dict, P: int, box: tuple[int, int, int]):
    """Original and base decode (enlarged), the per-phase mean map at ``P`` and the residual spectrum."""
    fig, ax = plt.subplots(2, 2, figsize=(8, 6.4))
    ax = ax.flatten()
    bpp = bits["bytes"] * 8 / (x.shape[-1] * x.shape[-2])
    ax[0].imshow(zoom(x, box)); ax[0].set_title(f"original ({name.split('@')[0]})", fontsize=9)
    ax[1].imshow(zoom(x_base, box)); ax[1].set_title(f"base ICM decode, {bpp:.2f} bpp", fontsize=9)
    pm = phase_means(x_base[0], P)
    im = ax[2].imshow(pm, cmap="coolwarm", vmin=-abs(pm).max(), vmax=abs(pm).max())
    ax[2].set_title(f"per-phase mean of the residual, P={P}", fontsize=9)
    ax[2].set_xlabel("j mod P"); ax[2].set_ylabel("i mod P"); fig.colorbar(im, ax=ax[2], fraction=0.046)
    for img, label, alpha in [(x_base, "base decode", 1.0), (x, "original", 0.7)]:
        spec = residual_spectrum(img[0], 8)
        ax[3].plot(np.fft.fftshift(np.fft.fftfreq(spec.shape[1])), spec.mean(0), label=label, alpha=alpha)
    ax[3].set_xlabel("horizontal frequency (cycles/pixel)"); ax[3].set_ylabel("log10 |FFT| (row mean)")
    ax[3].legend(fontsize=8); ax[3].set_title("residual spectrum", fontsize=9)
    for a in ax[:2]:
        a.set_xticks([]); a.set_yticks([])
    provenance.caption(fig); plt.tight_layout()
    return fig


def scheme():
    """The finetuning scheme (poster Fig. 3): frozen (blue) and trained (orange) parts."""
    fig, ax = plt.subplots(figsize=(8, 2.6))
    ax.set_xlim(-0.2, 12.1); ax.set_ylim(0, 3.4); ax.axis("off")

    def node(x, w, text, trained):
        ax.add_patch(FancyBboxPatch((x, 2.2), w, 0.8, boxstyle="round,pad=0.05",
                                    fc="#f6b26b" if trained else "#cfe2f3", ec="k"))
        ax.text(x + w / 2, 2.6, text, ha="center", va="center", fontsize=6)

    for x, w, text, trained in [(0.0, 0.7, "x", False), (1.0, 1.0, "g_a\n(frozen)", False),
                                (2.3, 1.6, "round + entropy\nbottleneck (frozen)", False),
                                (4.2, 1.5, "g_s.0 deconv\ng_s.1 IGDN\n(trained)", True),
                                (6.0, 1.6, "g_s.2 ... g_s.6\n(frozen)", False), (7.9, 0.7, "x̂", False),
                                (8.9, 1.6, "k aligned patches\nfrom x and x̂", False),
                                (10.8, 1.1, "PatchGAN D\n(trained)", True)]:
        node(x, w, text, trained)
    for x0, x1 in [(0.75, 1.0), (2.05, 2.3), (3.95, 4.2), (5.75, 6.0), (7.65, 7.9), (8.65, 8.9), (10.55, 10.8)]:
        ax.annotate("", (x1, 2.6), (x0, 2.6), arrowprops=dict(arrowstyle="->"))
    ax.text(3.1, 1.9, "bitstream: unchanged", ha="center", fontsize=6.5, color="0.3")
    ax.text(6.0, 1.25, "L_G = MSE(patches) + λ_adv · L_GAN(D(fake), real)\n"
            "L_D = ½ [L_GAN(D(real), real) + L_GAN(D(fake), fake)]", ha="center", va="center", fontsize=7)
    ax.text(6.0, 0.35, "orange = trained, blue = frozen; no task loss; at inference D is dropped:\n"
            "same parameters, same decode cost", ha="center", va="center", fontsize=6.5, color="0.3")
    provenance.caption(fig)
    return fig


def finetune_curves(results: dict):
    """Patch MSE of every run, and the LSGAN losses of the adversarial ones, against the finetuning step."""
    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    for name, res in results.items():
        h = res["history"]
        steps = [r["step"] for r in h]
        ax[0].plot(steps, [r["mse"] for r in h], label=name)
        if "adv" in h[0]:
            ax[1].plot(steps, [r["adv"] for r in h], label=f"{name}: L_GAN(G)")
            ax[1].plot(steps, [r["d_loss"] for r in h], ls="--", label=f"{name}: L_D")
    ax[0].set_ylabel("patch MSE"); ax[0].legend(fontsize=7)
    ax[1].set_ylabel("LSGAN loss"); ax[1].legend(fontsize=6)
    for a in ax:
        a.set_xlabel("finetuning step")
    provenance.caption(fig); plt.tight_layout()
    return fig


def scores_table(scores: dict, task: str, task_label: str, P: int, more: dict, short: dict | None = None):
    """One column per variant, one row per metric (``more``: other task scores, key → label; ``short``: column
    names for some variants)."""
    base = scores["base"][task]
    short = short or {}
    rows = {"bpp": "bpp", "psnr": "PSNR (dB)", "ssim": "SSIM", "ms_ssim": "MS-SSIM"}
    df = pd.DataFrame({short.get(n, n): {
        **{label: r[k] for k, label in rows.items()},
        f"{task_label} (%)": 100 * r[task], "Δ task (rel. %)": relative_change(r[task], base),
        **{f"{label} (%)": 100 * r[k] for k, label in more.items()},
        "feature dist. ↓": r["feature"], f"artifact P={P} ↓": r["artifact"][P]}
        for n, r in scores.items()})
    return df.astype(float)


def artifact_by_period(periods, originals: dict, scores: dict, P: int):
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(periods, [originals[p] for p in periods], "k--o", label="originals")
    for name, r in scores.items():
        ax.plot(periods, [r["artifact"][p] for p in periods], "-o", label=name)
    ax.axvline(P, color="0.7", ls=":")
    ax.set_xlabel("period P (pixels)"); ax.set_ylabel("artifact score (mean over crops)")
    ax.legend(fontsize=8); ax.set_title("periodic-artifact score by period")
    provenance.caption(fig); plt.tight_layout()
    return fig


def crops_figure(decoded: list, titles: list[str], P: int, box: tuple[int, int, int], width: float = 8):
    """The same enlarged region of each decoded image, titled with its artifact score at ``P``."""
    fig, ax = plt.subplots(1, len(decoded), figsize=(width, width / len(decoded) + 1.0))
    for a, d, title in zip(np.atleast_1d(ax), decoded, titles):
        a.imshow(zoom(d, box)); a.set_xticks([]); a.set_yticks([])
        a.set_title(f"{title}\nscore(P={P}) {checkerboard_score(d[0], P):.3f}", fontsize=8)
    provenance.caption(fig); plt.tight_layout()
    return fig


def poster_scorecard(cfg, b: dict, g: dict, c: dict, li: dict, li_name: str, task: str, task_note: str):
    """Poster Table 1's 3×64 row, LI, and the artifact scores measured on the project page's crops beside ours
    (base ``b``, PatchGAN ``g``, MSE-only control ``c``, LI ``li``)."""
    rel = {n: relative_change(r[task], b[task]) for n, r in [("g", g), ("c", c), ("li", li)]}
    card = provenance.Scorecard(f"Poster Table 1 (3 patches, 64×64) beside our {cfg.label} run (3 patches, 64×64)",
                                config=cfg)
    src, nip = SOURCE, "not in the poster"
    base, main, li_row = TABLE_1["base"], TABLE_1[MAIN], TABLE_1["LI 3×128"]
    card.add("PSNR base", b["psnr"], base.psnr, unit="dB", source=src)
    card.add("PSNR after PatchGAN finetuning", g["psnr"], main.psnr, unit="dB", source=src)
    card.add("PSNR gain from finetuning", g["psnr"] - b["psnr"], main.psnr - base.psnr, unit="dB", source=src)
    card.add("PSNR gain, MSE-only control", c["psnr"] - b["psnr"], None, unit="dB", note=nip)
    card.add("SSIM base", b["ssim"], base.ssim, source=src)
    card.add("SSIM after PatchGAN finetuning", g["ssim"], main.ssim, source=src)
    card.add("task change, PatchGAN (relative)", rel["g"], main.map_change, unit="%", source=src, note=task_note)
    card.add("task change, MSE-only control (relative)", rel["c"], None, unit="%", note=nip)
    card.add("task change, LI (relative)", rel["li"], li_row.map_change, unit="%", source=src,
             note=f"poster: LI with 3 patches of 128 px; ours: {li_name}, lower lr and λ_adv")
    card.add("PSNR gain, LI", li["psnr"] - b["psnr"], li_row.psnr - base.psnr, unit="dB", source=src)
    page = PROJECT_PAGE_ARTIFACT
    for name, r, paper in [("base", b, page["base"]), ("PatchGAN", g, page["PatchGAN"]),
                           ("MSE-only control", c, None), ("LI", li, page["LI"])]:
        card.add(f"artifact score {name} (P=4)", r["artifact"][4], paper, higher_is_better=False,
                 source=PROJECT_PAGE_ARTIFACT_SOURCE if paper is not None else "")
    card.add("bpp change", g["bpp"] - b["bpp"], 0.0, unit="bpp", source="identical by construction (poster)")
    if task == "map_segm":  # a mask mAP: comparable in kind with the poster's (not its data: COCO vs Open Images)
        for name, r, paper in [("base", b, base.map), ("PatchGAN 3×64", g, main.map), (li_name, li, li_row.map)]:
            card.add(f"mask mAP, {name}", r[task], paper, source=src, note=task_note)
        card.add("mask mAP, MSE-only control", c[task], None, note=nip)
    return card


def grid_scorecard(cfg, grid: dict, b: dict, c: dict, li: dict, li_name: str, task: str, task_note: str):
    """Every row of the poster's Table 1 (PSNR gain over the base, relative task change) beside ours."""
    card = provenance.Scorecard(f"Poster Table 1, every row, beside our {cfg.label} run (PSNR gain over the "
                                f"base, relative task change)", config=cfg)
    src, base, li_row = SOURCE, TABLE_1["base"], TABLE_1["LI 3×128"]
    for name, r in grid.items():
        row = TABLE_1[name]
        card.add(f"PSNR gain {name}", r["psnr"] - b["psnr"], row.psnr - base.psnr, unit="dB", source=src)
        card.add(f"task change {name} (relative)", relative_change(r[task], b[task]), row.map_change, unit="%",
                 source=src, note=task_note)
    card.add(f"PSNR gain {li_name}", li["psnr"] - b["psnr"], li_row.psnr - base.psnr, unit="dB",
             source=src + " (LI, 3×128)")
    card.add(f"task change {li_name} (relative)", relative_change(li[task], b[task]), li_row.map_change, unit="%",
             source=src + " (LI, 3×128)")
    card.add("PSNR gain MSE-only control", c["psnr"] - b["psnr"], None, unit="dB", note="not in the poster")
    card.add("task change MSE-only control (relative)", relative_change(c[task], b[task]), None, unit="%",
             note="not in the poster")
    return card


def per_image_figure(df: pd.DataFrame, P: int):
    """Two distributions over the fidelity images, one box and one dot per image for each run: the PSNR gain over
    the base decode, with the poster's mean gain of its main run marked, and the artifact score at ``P``.
    ``df``: one row per (run, image) with columns ``run``, ``PSNR gain (dB)`` and ``artifact``."""
    fig, ax = plt.subplots(1, 2, figsize=(8.4, 3.4))
    gains = df[df["PSNR gain (dB)"].notna()]
    for a, data, y in [(ax[0], gains, "PSNR gain (dB)"), (ax[1], df, "artifact")]:
        sns.boxplot(data=data, x="run", y=y, ax=a, color="0.9", fliersize=0, width=0.55)
        sns.stripplot(data=data, x="run", y=y, ax=a, size=3, alpha=0.6, jitter=0.2)
        a.set_xlabel(""); a.tick_params(axis="x", labelsize=8)
    poster = TABLE_1[MAIN].psnr - TABLE_1["base"].psnr
    ax[0].axhline(poster, color="C3", ls="--", lw=1)
    ax[0].text(ax[0].get_xlim()[0], poster, f" {SOURCE}, {MAIN}: mean +{poster:.2f} dB", color="C3", fontsize=7,
               va="bottom", ha="left", bbox=dict(fc="white", ec="none", alpha=0.8, pad=1))
    ax[0].axhline(0, color="0.5", lw=0.8)
    ax[0].set_title("PSNR gain over the base decode, per image", fontsize=9)
    ax[1].set_ylabel(f"artifact score, P={P}")
    ax[1].set_title(f"artifact score at P={P}, per image", fontsize=9)
    provenance.caption(fig); plt.tight_layout()
    return fig


def diagnosis_figure(data: dict, originals: float | None = None):
    """Chapter 1's sweep (a :func:`lib.sweep.load` file of :mod:`lib.icm.diagnosis` points): each arm across its
    budgets, one dot per seed and a line through the means, for the normalised artifact score, its two factors
    (periodic amplitude, residual spread), PSNR and top-1 agreement; and the PatchGAN runs' losses over the steps.
    ``originals``: the originals' artifact score, drawn as a floor."""
    def arm(p):
        if p["layers"] != "head":
            return "whole decoder, MSE only"
        return "MSE only (head)" if p["lambda_adv"] == 0 else f"PatchGAN λ={p['lambda_adv']:g} (head)"

    pts = data["points"]
    base = next(p["result"] for p in pts if p["params"]["steps"] == 0)
    arms = sorted({arm(p["params"]) for p in pts if p["params"]["steps"] > 0}, key=lambda a: (a[0] != "M", a))
    rows = [{"arm": a, "steps": 0, "seed": 0, **{k: v for k, v in base.items() if not isinstance(v, dict)}}
            for a in arms]
    rows += [{"arm": arm(p["params"]), **p["params"], **{k: v for k, v in p["result"].items()
                                                        if not isinstance(v, dict)}}
             for p in pts if p["params"]["steps"] > 0]
    df = pd.DataFrame(rows)
    df["amplitude ×1000"], df["spread ×1000"] = 1000 * df["amplitude"], 1000 * df["spread"]
    palette = dict(zip(arms, sns.color_palette("colorblind", len(arms))))
    P = base["P"]
    panels = [("artifact", f"artifact score, P={P} ↓"), ("amplitude ×1000", "periodic amplitude ↓"),
              ("spread ×1000", "residual spread"), ("psnr", "PSNR (dB) ↑"), ("top1_n", f"top-1 agreement "
                                                                                         f"(of {base['n_task']}) ↑")]
    fig, axes = plt.subplots(2, 3, figsize=(11, 6.4))
    for ax, (col, label) in zip(axes.flat, panels):
        sns.lineplot(df, x="steps", y=col, hue="arm", palette=palette, errorbar=None, marker="o", ax=ax,
                     legend=col == "artifact", lw=1.2, alpha=0.9)
        sns.stripplot(df[df.steps > 0], x="steps", y=col, hue="arm", palette=palette, native_scale=True,
                      dodge=False, jitter=0.04, size=3.5, alpha=0.7, legend=False, ax=ax)
        ax.set_xscale("symlog", linthresh=50); ax.set_ylabel(label); ax.set_xlabel("finetuning steps")
        ax.set_xticks(sorted(df.steps.unique())); ax.set_xticklabels(sorted(df.steps.unique()))
    if originals is not None:
        axes[0, 0].axhline(originals, color="0.5", ls=":", lw=1, label="originals")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    axes[0, 0].get_legend().remove()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=7.5, frameon=False,
               title="lines: mean over the seeds · dots: one seed each", title_fontsize=7.5)
    ax = axes[1, 2]
    gan = [p for p in pts if p["params"]["lambda_adv"] > 0 and p["params"]["layers"] == "head"]
    longest = max(p["params"]["steps"] for p in gan) if gan else 0
    for p in [p for p in gan if p["params"]["steps"] == longest]:
        c, loss = palette[arm(p["params"])], p["result"]["losses"]
        ax.plot(loss["step"], loss["d_loss"], color=c, lw=1, alpha=0.8)
        ax.plot(loss["step"], loss["adv"], color=c, lw=1, alpha=0.8, ls="--")
    ax.set_xlabel("finetuning step"); ax.set_ylabel("LSGAN loss")
    ax.set_title(f"PatchGAN, {longest} steps, each seed:\nL_D (solid), L_GAN(G) (dashed)", fontsize=8)
    provenance.caption(fig, f"sweep '{data['sweep']}': commit {data['commit']}, {data['machine']}, "
                            f"{data['seconds'] / 60:.0f} min, {data['started'][:10]}")
    fig.tight_layout(rect=(0, 0.02, 1, 0.93))
    return fig
