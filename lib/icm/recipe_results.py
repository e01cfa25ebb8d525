"""What the ICM paper recipe (:mod:`lib.icm.recipe`) measures, what it costs, and the chapter's scorecard of it.

- :func:`evaluate_all`: every variant decoded from the stored base bitstreams, the images split over the ranks and
  each image's scores gathered back in order (mask mAP from the gathered detections).
- :func:`plan` / :func:`estimate`: the commands, the downloads, the disk and an estimate of the GPU-hours.
- :func:`scorecard`: the recipe's numbers beside poster Table 1.
"""

from __future__ import annotations

import numpy as np
import torch
from pycocotools import mask as mask_utils

from lib import recipe, train
from lib.display import provenance
from lib.icm import codec as C, config, decoder_finetuning as FT, evaluate as E
from lib.icm import machine as M
from lib.icm.coco import COCO_ZIP_URL
from lib.icm.paper_numbers import SOURCE, TABLE_1
from lib.icm.patchgan import PatchDiscriminator

NAME = "icm-paper"
DOWNLOAD_GB = {config.COCO_TRAIN_ZIP_URL: 18.0, COCO_ZIP_URL: 0.8}   # the zips' published sizes, about




def grid(cfg) -> dict[str, FT.FinetuneConfig]:
    """``{run name: settings}`` of the parts ``cfg.ft_runs`` of the chapter's runs (:meth:`lib.icm.config.ICMConfig.runs`:
    ``patchgan``, ``control``, ``li``, ``ablation``), named as the chapter names them."""
    runs = cfg.runs()
    unknown = [p for p in cfg.ft_runs if p not in runs._fields]
    if unknown:
        raise ValueError(f"ft_runs names {unknown}, not parts of the chapter's runs: use some of {list(runs._fields)}")
    return {r.name: r.settings for p in cfg.ft_runs for r in (runs.ablation if p == "ablation" else (getattr(runs, p),))}


def poster_rows(cfg) -> dict[str, str]:
    """``{run name: its row of poster Table 1}`` (:data:`lib.icm.paper_numbers.TABLE_1`, rows named ``k×s``), for
    the base and the runs the poster has (the MSE-only control is not one)."""
    runs = cfg.runs()
    rows = {"base": "base", runs.li.name: f"LI {runs.li.settings.k_by_s}",
            **{r.name: r.settings.k_by_s for r in (runs.patchgan, *runs.ablation)}}
    return {name: row for name, row in rows.items() if row in TABLE_1}


# ---------------------------------------------------------------------------------------------------- evaluation
def _rle(det: dict) -> dict:
    """A detection with its masks as COCO run-length encodings (small enough to gather)."""
    m = np.asfortranarray((det["masks"][:, 0] > 0.5).permute(1, 2, 0).numpy().astype(np.uint8))
    return {**{k: det[k] for k in ("boxes", "labels", "scores")}, "masks": mask_utils.encode(m),
            "size": tuple(det["masks"].shape[-2:])}


def _unrle(det: dict) -> dict:
    m = torch.from_numpy(mask_utils.decode(det["masks"])).permute(2, 0, 1)[:, None] if det["masks"] else \
        torch.zeros(0, 1, *det["size"])
    return {**{k: det[k] for k in ("boxes", "labels", "scores")}, "masks": m.float()}


@torch.no_grad()
def evaluate_all(base_codec, heads: dict, fid: list, task: list, machine) -> dict:
    """Every variant (``"base"`` and each head) on the stored base bitstreams: the images split over the ranks
    (:func:`lib.recipe.rank_slice`), each image's scores gathered back in order, then averaged; mask mAP from the
    gathered detections (``machine.ground_truth``), as ``lib.icm.evaluate.evaluate`` measures them."""
    from pytorch_msssim import ms_ssim, ssim

    rank, world = train.distributed()
    variants = {"base": base_codec, **{n: FT.with_head(base_codec, h) for n, h in heads.items()}}
    mine_f, mine_t = [], []
    for pos in recipe.rank_slice(len(fid), rank, world):
        x = fid[pos][1]
        bits = C.compress_all(base_codec, [x])
        rec = {}
        for n, v in variants.items():
            xh = C.decompress_all(v, bits)[0]
            rec[n] = {"bytes": bits[0]["bytes"], "pixels": x.shape[-1] * x.shape[-2], "psnr": E.psnr(x, xh),
                      "ssim": float(ssim(x, xh, data_range=1.0)), "artifact": E.artifact_scores([xh]),
                      "ms_ssim": float(ms_ssim(x, xh, data_range=1.0)) if min(x.shape[-2:]) > 160 else None,
                      "same_bytes": n == "base" or C.compress_all(v, [x])[0]["strings"] == bits[0]["strings"]}
        mine_f.append(rec)
    for pos in recipe.rank_slice(len(task), rank, world):
        x = task[pos][1]
        bits = C.compress_all(base_codec, [x])
        rec, feats = {"ref": _rle(machine.detect([x])[0])}, machine(x)
        for n, v in variants.items():
            xh = C.decompress_all(v, bits)[0]
            rec[n] = {"det": _rle(machine.detect([xh])[0]), "bytes": bits[0]["bytes"],
                      "feature": float(M.task_distortion(machine(xh), feats)["feature"])}
        mine_t.append(rec)
    fids, tasks = recipe.gather_in_order(mine_f, len(fid)), recipe.gather_in_order(mine_t, len(task))
    names = [n for n, _ in task]
    out = {}
    for n in variants:
        f = [r[n] for r in fids]
        refs, dets = [_unrle(r["ref"]) for r in tasks], [_unrle(r[n]["det"]) for r in tasks]
        s = {"bpp": float(np.mean([r["bytes"] * 8 / r["pixels"] for r in f])),
             **{k: float(np.mean([r[k] for r in f])) for k in ("psnr", "ssim")},
             "ms_ssim": None if f[0]["ms_ssim"] is None else float(np.mean([r["ms_ssim"] for r in f])),
             "artifact": {P: float(np.mean([r["artifact"][P] for r in f])) for P in E.PERIODS},
             "feature": float(np.mean([r[n]["feature"] for r in tasks])), "pseudo_map_segm": M.pseudo_map(refs, dets),
             "same_bytes": all(r["same_bytes"] for r in f), "per_image_psnr": [r["psnr"] for r in f]}
        gt = getattr(machine, "ground_truth", None)
        s.update(gt.mean_ap(names, dets) if gt is not None else {"map_segm": float("nan"), "map_bbox": float("nan")})
        out[n] = s
    return {"scores": out, "world": world, "fidelity_images": [n for n, _ in fid], "task_images": names}


# ---------------------------------------------------------------------------------------------------------- cost
def _step_flops(cfg) -> dict:
    """FLOPs of one training image, forward and backward (``torch.utils.flop_counter`` on models built on the meta
    device): the base codec's step (analysis and synthesis transforms, the machine's backbone on the original and
    the decoded crop at ``base_crop``; the entropy model's few operations left out) and each finetuning's step."""
    from compressai.zoo.image import cfgs
    from torch.utils.flop_counter import FlopCounterMode

    N, M_ = cfgs["bmshj2018-factorized"][cfg.base_quality]
    runs, flops = grid(cfg), {}
    codec = C.build_codec(N, M_)   # its entropy model is built on the CPU; the transforms move to the meta device
    codec.g_a.to("meta"), codec.g_s.to("meta")
    with torch.device("meta"):
        backbone = M.maskrcnn_coco().backbone
        with FlopCounterMode(display=False) as fc:
            x = torch.zeros(1, 3, cfg.base_crop, cfg.base_crop)
            with torch.no_grad():
                backbone(x)
            sum(v.mean() for v in backbone(codec.g_s(codec.g_a(x))).values()).backward()
        flops["base"] = fc.get_total_flops()
    for name, ft in runs.items():   # the patches' positions are drawn on the CPU: outside the meta device's scope
        D = PatchDiscriminator(3, ft.ndf, ft.n_layers).to("meta") if ft.adversarial else None
        FT.freeze_for_finetuning(codec, ft.trainable)
        with FlopCounterMode(display=False) as fc:
            x = torch.zeros(1, 3, ft.crop, ft.crop, device="meta")
            y = torch.zeros(1, M_, ft.crop // C.STRIDE, ft.crop // C.STRIDE, device="meta")
            FT.make_loss(ft)(FT._Finetuned(codec.g_s, D), (0, x, y))["loss"].backward()
        flops[name] = fc.get_total_flops()
    return flops


def estimate(cfg) -> dict:
    """Disk and GPU-hour estimates of the recipe, with how they were made."""
    flops = _step_flops(cfg)
    sustained = 0.35 * 15.7e12                                  # assumed: 35 % of a V100's fp32 peak
    hours = {"base": flops["base"] * cfg.base_batch * cfg.base_steps / sustained / 3600}
    hours.update({n: flops[n] * cfg.ft_batch * cfg.ft_steps / sustained / 3600 for n in grid(cfg)})
    zip_gb = DOWNLOAD_GB.get(cfg.coco_train_url, float("nan"))
    return {"flops_per_image": flops, "gpu_hours_per_run": hours, "gpu_hours": sum(hours.values()),
            "zip_gb": zip_gb, "disk_gb": zip_gb + 0.24 + 0.17 + 0.05 + 0.05 * len(hours),
            "how": (f"{flops['base'] / 1e9:.0f} GFLOP per base-training crop (codec and Mask R-CNN's backbone, "
                    f"forward and backward, torch.utils.flop_counter) × {cfg.base_batch} × {cfg.base_steps} steps, "
                    f"plus each finetuning's step counted the same way × {cfg.ft_batch} × {cfg.ft_steps} steps, "
                    f"divided by an assumed sustained 35 % of a V100's 15.7 TFLOP/s fp32 peak; the evaluation "
                    f"(minutes) and data loading not counted; not measured on a GPU")}


def plan(cfg) -> str:
    """What the recipe downloads, the disk it needs, an estimate of its GPU-hours, and the commands."""
    est = estimate(cfg)
    g = cfg.gpus
    return (
        f"The ICM paper recipe ({cfg.name}): the base codec (CompressAI bmshj2018-factorized quality "
        f"{cfg.base_quality}, trained for Mask R-CNN: {cfg.base_steps} steps of {cfg.base_batch} crops of "
        f"{cfg.base_crop} px), then {len(grid(cfg))} decoder finetunings of poster Table 1 ({cfg.ft_steps} steps "
        f"of {cfg.ft_batch} crops of {cfg.ft_crop} px each), then their evaluation; made for {g} GPUs.\n"
        f"Run, from the course's folder (one node; see the README for several):\n"
        f"  export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1   # a restart reads fresh rendezvous keys\n"
        f"  torchrun --nproc_per_node={g} --max-restarts=3 -m lib.icm.recipe train --scale paper\n"
        f"  torchrun --nproc_per_node={g} -m lib.icm.recipe evaluate --scale paper\n"
        f"It downloads into $COURSE_CACHE (default ~/.cache/repro-course):\n"
        f"  {cfg.coco_train_url} (about {est['zip_gb']:.1f} GB)\n  {cfg.coco_annotations_url} (about 0.24 GB)\n"
        f"  {M.maskrcnn_url()} (about 0.17 GB)\n  {C.compressai_url(cfg.base_quality)}\n"
        f"  {len(cfg.kodak_ids)} Kodak images and {len(cfg.coco_ids)} COCO val2017 images (a few MB)\n"
        f"Disk: about {est['disk_gb']:.0f} GB (the zip, read in place, the weights, and one resumable checkpoint "
        f"per run).\n"
        f"GPU time: an ESTIMATE of about {est['gpu_hours']:.0f} GPU-hours (the base codec "
        f"{est['gpu_hours_per_run']['base']:.0f}), "
        f"made as {est['how']}.")


# ----------------------------------------------------------------------------------------------------- scorecard
def scorecard(cfg, results: dict) -> provenance.Scorecard:
    """The recipe's numbers beside poster Table 1: PSNR, SSIM and mask mAP of the base and of each run, and whether
    every run decodes the base's bitstreams unchanged."""
    sc = results["scores"]
    card = provenance.Scorecard(f"Poster Table 1 beside the paper recipe ({cfg.label}: {results['world']} "
                                f"process(es), {len(results['fidelity_images'])} Kodak and "
                                f"{len(results['task_images'])} COCO images)", config=cfg)
    note, rows = M.MaskRCNN.task_note, poster_rows(cfg)
    for name, r in sc.items():
        row = TABLE_1.get(rows.get(name))
        m, p, s = (row.map, row.psnr, row.ssim) if row else (None, None, None)
        src = f"{SOURCE}, {rows[name]}" if row else ""
        card.add(f"PSNR {name}, paper recipe", r["psnr"], p, unit="dB", source=src)
        card.add(f"SSIM {name}, paper recipe", r["ssim"], s, source=src)
        card.add(f"mask mAP {name}, paper recipe", r["map_segm"], m, source=src, note=note)
        card.add(f"artifact score {name} (P=4), paper recipe", r["artifact"][4], None, higher_is_better=False)
    card.add("bitstreams unchanged by every run, paper recipe", float(all(r["same_bytes"] for r in sc.values())),
             1.0, source="by design (poster)")
    return card
