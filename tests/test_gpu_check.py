"""The GPU check (scripts/gpu_check.py) without a GPU: its CPU dry run, its refusal of --device cuda, its pieces."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.py"
sys.path.insert(0, str(ROOT / "scripts"))

import gpu_check  # noqa: E402


def _env(**extra):
    env = {**os.environ, "COURSE_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0", **extra}
    env.pop("COURSE_SCALE", None)
    return env


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check") / "cpu.json"
    t = time.time()
    p = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--out", str(out)],  # the dry run's defaults
                       env=_env(CUDA_VISIBLE_DEVICES=""), capture_output=True, text=True, timeout=600)
    return p, (json.loads(out.read_text()) if out.exists() else None), time.time() - t


def test_cpu_dry_run_passes_and_records_every_stage(dry_run):
    p, rec, seconds = dry_run
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert rec["device_type"] == "cpu" and rec["device_name"].startswith("CPU")
    assert rec["passed"] == {"chapters": True, "timings": True, "cuda_checks": True}
    assert rec["versions"]["torch"] == torch.__version__
    print(f"CPU dry run: {seconds:.0f} s (chapters {rec['chapters_s']} s, timings {rec['timings_s']} s)")


def test_cpu_dry_run_ran_the_notebook_cell_by_cell(dry_run):
    _, rec, _ = dry_run
    nb = rec["chapters"]["00_pipeline"]
    n_code = sum(c["cell_type"] == "code" for c in json.loads((ROOT / "book" / "00_pipeline.ipynb").read_text())["cells"])
    assert nb["passed"] and nb["error"] is None and nb["exit_status"] == 0
    assert [c["cell"] for c in nb["cells"]] == list(range(n_code))
    assert nb["modules_off_device"] == {}


def test_cpu_dry_run_timed_every_step(dry_run):
    _, rec, _ = dry_run
    steps = {k: v for k, v in rec["timings"].items() if k != "sizes"}
    assert len(steps) == 12 and {k.split()[0] for k in steps} == {"01_icm", "02_spoof", "03_lseg"}
    for name, r in steps.items():
        assert r["passed"], (name, r.get("error"))
        assert len(r["times_s"]) == r["iters"] == 1 and r["median_s"] > 0, name
    assert rec["timings"]["sizes"]["label"].startswith("tiny")


def test_cuda_checks_are_skipped_on_the_cpu_with_a_reason(dry_run):
    _, rec, _ = dry_run
    assert set(rec["cuda_checks"]) == {"bitstreams_gpu_to_cpu", "resume_on_cuda", "amp_losses_finite"}
    for name, r in rec["cuda_checks"].items():
        assert "CUDA" in r["skipped"], name


def test_cuda_asked_without_cuda_is_refused_clearly():
    p = subprocess.run([sys.executable, str(SCRIPT), "--device", "cuda", "--chapters", "none"],
                       env=_env(CUDA_VISIBLE_DEVICES=""), capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    assert "--device cuda was asked, but torch sees no CUDA GPU here" in p.stderr
    assert "--device cpu" in p.stderr and "Traceback" not in p.stderr


def test_unknown_chapter_is_refused(capsys):
    threads = torch.get_num_threads()   # main() sets this process's thread count for a CPU run
    try:
        with pytest.raises(SystemExit) as exit_:   # the command line's own parser refuses it, before any stage runs
            gpu_check.main(["--device", "cpu", "--chapters", "04_nothing"])
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err
    assert exit_.value.code != 0 and "unknown chapter" in err and "01_icm" in err


def test_a_module_left_on_another_device_is_caught():
    ns = {"model": torch.nn.Linear(2, 2), "x": torch.zeros(1), "_hidden": torch.nn.Linear(1, 1),
          "shapes_only": torch.nn.Linear(2, 2, device="meta")}
    assert gpu_check.modules_off_device(ns, "cuda") == {"model": ["cpu"]}
    assert gpu_check.modules_off_device(ns, "cpu") == {}
    err = RuntimeError("Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!")
    assert gpu_check.device_error(err) and not gpu_check.device_error(ValueError("shapes differ"))


def test_the_device_run_command_fits_and_installs_the_wheels():
    cmd = gpu_check.RUN_COMMAND
    assert len(cmd) <= 2000
    assert ".whl/*.whl" in cmd and "--device cuda" in cmd and "$OUT/gpu-check.json" in cmd
    assert re.search(r"timeout (\d+) ", cmd) and int(re.search(r"timeout (\d+) ", cmd).group(1)) <= 480


def test_the_wheel_list_is_pinned_and_agrees_with_the_course_pins():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        m = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
        if m:
            pins[re.sub(r"[-_.]+", "-", m.group(1).lower())] = m.group(2)
    lines = [l.split("#")[0].strip() for l in (ROOT / "scripts" / "gpu_wheels.txt").read_text().splitlines()]
    specs = [l for l in lines if l]
    names = [re.sub(r"[-_.]+", "-", s.split("==")[0].lower()) for s in specs]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", s) for s in specs)
    assert len(set(names)) == len(names), "one version of each package"
    assert {"compressai", "open-clip-torch", "grad-cam"} <= set(names)
    for s, n in zip(specs, names):
        if n in pins:
            assert s.split("==")[1] == pins[n], f"{s}: constraints.txt pins {pins[n]}"


def test_resuming_a_cuda_checkpoint_without_cuda_says_what_to_do(tmp_path, monkeypatch):
    from lib import train
    from lib.storage import checkpoint

    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = lambda step: (torch.ones(4, 2), torch.zeros(4, 1))  # noqa: E731
    loss_fn = lambda m, b: {"loss": torch.nn.functional.mse_loss(m(b[0]), b[1])}  # noqa: E731
    ckpt = tmp_path / "run.pt"
    train.fit(model, batches, loss_fn, opt, 2, ckpt_path=ckpt, progress=False)
    state = torch.load(ckpt, weights_only=True)
    assert "cuda_rng" not in state  # a CPU run's checkpoint keeps the entries it always had
    state["step"] = 1
    state["cuda_rng"] = [torch.zeros(16, dtype=torch.uint8)]
    checkpoint.save(state, ckpt)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(checkpoint.CheckpointError, match="resume it on a GPU runtime"):
        train.fit(model, batches, loss_fn, opt, 2, ckpt_path=ckpt, progress=False)


def _budget():
    parts = {"train": {"step": "x train", "unit": "training step", "count": 100, "flops": 6e12, "cpu_s": 50.0},
             "coder": {"step": "x coder", "unit": "coding", "count": 10, "on_cpu": True, "flops": 0, "cpu_s": 0.5}}
    return {"chapters": {"9": {"parts": parts, "download_mb": 300}}}


def _record(device_type="cuda", label="real (the colab configurations)", name="NVIDIA H100 80GB HBM3"):
    return {"device_type": device_type, "device_name": name, "date": "2026-12-07T18:00:00+00:00",
            "timings": {"sizes": {"label": label}, "x train": {"passed": True, "median_s": 0.25},
                        "x coder": {"passed": True, "median_s": 0.4}}}


def test_colab_time_is_an_estimate_without_a_gpu_record():
    from lib.display import colab_time as CT

    t = CT.colab_time("9", budget=_budget(), gpu_check={})
    want = (100 * 6e12 / CT.T4_SUSTAINED + 10 * 0.5 + 300 / CT.DOWNLOAD_MBPS + CT.INSTALL_S) / 60
    assert t.source == "estimated" and abs(t.minutes - want) < 1e-9
    assert t.text.startswith("estimated, not measured on a GPU") and f"{CT.T4_SUSTAINED / 1e12:.1f} TFLOP/s" in t.text
    # a CPU run, or a run at the dry run's sizes, is no measurement of the colab steps
    for rec in (_record(device_type="cpu"), _record(label="tiny (CPU dry run)"), _record(name="Some Unlisted GPU")):
        assert CT.colab_time("9", budget=_budget(), gpu_check=rec).source == "estimated"


def test_colab_time_from_a_gpu_record_scales_by_the_fp32_peaks():
    from lib.display import colab_time as CT

    t = CT.colab_time("9", budget=_budget(), gpu_check=_record())
    ratio = CT.fp32_peak("NVIDIA H100 80GB HBM3") / CT.T4_FP32_PEAK
    want = (100 * 0.25 * ratio + 10 * 0.4 + 300 / CT.DOWNLOAD_MBPS + CT.INSTALL_S) / 60
    assert t.source == "measured" and abs(t.minutes - want) < 1e-9
    assert "measured on NVIDIA H100 80GB HBM3 (2026-12-07" in t.text and "0.25 s per training step" in t.text
    assert "H100 80GB HBM3 (2026-12-07)" in t.short
    rec = _record()
    rec["timings"]["x train"] = {"passed": False, "error": "boom"}
    assert CT.colab_time("9", budget=_budget(), gpu_check=rec).source == "partly measured"


def test_the_committed_budget_covers_every_chapter_with_its_gpu_check_steps():
    from lib.display import colab_time as CT

    budget = json.loads(CT.BUDGET.read_text())
    steps = {name for name, _ in gpu_check.STEPS}
    for ch in ("1", "2", "3"):
        t = CT.colab_time(ch, budget=budget, gpu_check={})
        assert 1 < t.minutes < 600 and t.source == "estimated"
        for p in budget["chapters"][ch]["parts"].values():
            assert p["step"] is None or p["step"] in steps, p["step"]
