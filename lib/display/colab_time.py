"""How long a chapter takes at ``colab`` scale on a Colab T4: measured on a GPU where the GPU check's record exists,
estimated from FLOP counts otherwise, and always saying which.

Two records feed it. ``lib/colab_budget.json`` (``scripts/colab_budget.py``) lists each chapter's GPU work as parts
(a base-training step, a Mask R-CNN inference, ...): the FLOPs of one unit counted on a CPU at the colab sizes, how
many units the chapter runs, the download size. ``artifacts/gpu-check/gpu-check.json`` (``scripts/gpu_check.py
--device cuda``) holds the seconds one unit took on a GPU at the same sizes, in float32 (TF32 off, as on a T4).

* measured: T4 seconds of a part = the GPU's seconds × (the GPU's fp32 peak ÷ the T4's 8.1 TFLOP/s), both peaks from
  NVIDIA's data sheets (:data:`FP32_PEAK`): the GPU's time scaled by how much faster its fp32 arithmetic is;
* estimated: T4 seconds = FLOPs ÷ :data:`T4_SUSTAINED`, the one assumed T4 throughput of this course.

Parts that run on the CPU on Colab too (CompressAI's entropy coder) take their measured CPU seconds as they are.
Downloads are their sizes at :data:`DOWNLOAD_MBPS`; the installation :data:`INSTALL_S`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from lib.display import provenance

ROOT = Path(__file__).resolve().parents[2]
BUDGET = ROOT / "lib" / "colab_budget.json"
GPU_CHECK = ROOT / "artifacts" / "gpu-check" / "gpu-check.json"

T4_FP32_PEAK = 8.1e12   # FLOP/s, NVIDIA T4 data sheet (single precision)
T4_SUSTAINED = 3.0e12   # FLOP/s, assumed: 37 % of that peak sustained by these float32 networks (not measured)
DOWNLOAD_MBPS = 30.0    # MB/s on Colab, assumed
INSTALL_S = 120         # colab/install.sh on Colab, assumed
# fp32 (non-tensor-core) peaks in FLOP/s from NVIDIA's data sheets, matched against torch's device name in this order
FP32_PEAK = (("H100 PCIe", 51.2e12), ("H100", 66.9e12), ("H200", 66.9e12), ("A100", 19.5e12), ("L4", 30.3e12),
             ("A10G", 31.2e12), ("V100", 15.7e12), ("T4", 8.1e12))


def fp32_peak(device_name: str) -> float | None:
    """The data-sheet fp32 peak of the GPU named ``device_name`` (``torch.cuda.get_device_name``), if listed."""
    return next((peak for key, peak in FP32_PEAK if key in device_name), None)


@dataclasses.dataclass
class ColabTime:
    """A chapter's ``colab`` time on a T4: ``minutes``, ``source`` (``measured``/``partly measured``/``estimated``),
    ``text`` (the sentence a chapter prints: what was measured or assumed) and ``short`` (minutes and source)."""
    chapter: str
    minutes: float
    source: str
    text: str
    short: str
    parts: dict = dataclasses.field(repr=False)

    def __str__(self) -> str:
        return self.text

    def wrapped(self, width: int = 88) -> str:
        """``colab time: <text>`` wrapped to ``width`` columns, for a chapter's output."""
        import textwrap

        return textwrap.fill(f"colab time: {self.text}", width, subsequent_indent="  ")


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def colab_time(chapter: str, budget: dict | None = None, gpu_check: dict | None = None) -> ColabTime:
    """Chapter ``chapter``'s (``"1"``, ``"2"``, ``"3"``) time at ``colab`` on a T4, from the records (the files above
    unless given). A GPU-check record counts only if it ran on CUDA at the real sizes and names a listed GPU."""
    budget = budget if budget is not None else _read(BUDGET)
    if budget is None or chapter not in budget.get("chapters", {}):
        raise FileNotFoundError(f"{BUDGET} has no chapter {chapter!r}: run `python scripts/colab_budget.py`")
    gpu_check = gpu_check if gpu_check is not None else _read(GPU_CHECK)
    peak = None
    if gpu_check and gpu_check.get("device_type") == "cuda" and \
            str(gpu_check.get("timings", {}).get("sizes", {}).get("label", "")).startswith("real"):
        peak = fp32_peak(gpu_check.get("device_name", ""))
    ch = budget["chapters"][chapter]
    parts, measured, estimated, shown = {}, 0, 0, []
    for name, p in ch["parts"].items():
        step = (gpu_check or {}).get("timings", {}).get(p.get("step") or "", {}) if peak else {}
        if step.get("passed"):
            each = step["median_s"] * (1.0 if p.get("on_cpu") else peak / T4_FP32_PEAK)
            how = "measured"
            measured += 1
            if len(shown) < 2 and not p.get("on_cpu"):
                shown.append(f"{step['median_s']:.3g} s per {p['unit']}")
        else:
            each = p["cpu_s"] if p.get("on_cpu") else p["flops"] / T4_SUSTAINED
            how = "estimated"
            estimated += 1
        parts[name] = {"t4_s_each": each, "count": p["count"], "t4_s": each * p["count"], "how": how}
    compute = sum(p["t4_s"] for p in parts.values())
    download = ch["download_mb"] / DOWNLOAD_MBPS
    minutes = (compute + download + INSTALL_S) / 60
    rest = (f"downloads of about {ch['download_mb'] / 1000:.1f} GB at an assumed {DOWNLOAD_MBPS:.0f} MB/s and "
            f"{INSTALL_S // 60} minutes of installation included")
    date = str((gpu_check or {}).get("date", "?"))[:10]
    if measured:
        source = "measured" if not estimated else "partly measured"
        text = (f"measured on {gpu_check['device_name']} ({date}, `scripts/gpu_check.py`, float32): "
                f"{', '.join(shown)}; a T4 estimate from that: about {minutes:.0f} minutes (each GPU time × the "
                f"ratio of the two cards' fp32 peaks, {peak / 1e12:.1f} ÷ {T4_FP32_PEAK / 1e12:.1f} TFLOP/s"
                + (f"; {estimated} part(s) not measured: FLOPs ÷ an assumed {T4_SUSTAINED / 1e12:.1f} TFLOP/s"
                   if estimated else "") + f"; {rest})")
    else:
        source = "estimated"
        text = (f"estimated, not measured on a GPU: about {minutes:.0f} minutes on a T4 (the colab configuration's "
                f"FLOPs counted on a CPU by scripts/colab_budget.py, ÷ an assumed sustained "
                f"{T4_SUSTAINED / 1e12:.1f} TFLOP/s, {T4_SUSTAINED / T4_FP32_PEAK:.0%} of the T4's "
                f"{T4_FP32_PEAK / 1e12:.1f} TFLOP/s fp32 peak; {rest})")
    short = (f"about {minutes:.0f} min on a T4, from times {source} on {gpu_check['device_name']} ({date})"
             if measured else f"about {minutes:.0f} min on a T4, estimated from FLOP counts (not measured on a GPU)")
    return ColabTime(chapter, minutes, source, text, short, parts)


def report(chapter: str, glue_key: str) -> str:
    """What a chapter's configuration cell prints: :func:`colab_time`'s sentence, wrapped; its ``short`` form is
    glued under ``glue_key`` for the book's Time line and the introduction's scale table."""

    t = colab_time(chapter)
    provenance.glue(glue_key, t.short)
    return t.wrapped()
