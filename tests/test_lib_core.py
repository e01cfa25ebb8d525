"""Unit tests of the shared runtime in lib/ (scales, runtime, downloads, checkpoints, cache, training, provenance,
assets, widgets)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

import lib
from lib import runtime, scale
from lib.storage import assets, cache, checkpoint
from lib.display import provenance, widgets

ROOT = Path(__file__).resolve().parent.parent
TOY = ROOT / "tests" / "helpers" / "train_toy.py"


# --- scales -------------------------------------------------------------------------------------------------------
def test_scale_from_env(monkeypatch):
    for name in ("colab", "paper", "tiny"):
        monkeypatch.setenv("COURSE_SCALE", name)
        assert scale.current() == name and scale.explicit()


def test_scale_default_without_gpu(monkeypatch):
    monkeypatch.delenv("COURSE_SCALE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert scale.current() == "tiny"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert scale.current() == "colab"


def test_scale_override_and_bad_name(monkeypatch):
    monkeypatch.setenv("COURSE_SCALE", "tiny")
    scale.set_scale("paper")
    try:
        assert scale.current() == "paper"
    finally:
        scale.set_scale(None)
    assert scale.current() == "tiny"
    with pytest.raises(ValueError, match="use one of tiny, colab, paper"):
        scale.set_scale("huge")
    monkeypatch.setenv("COURSE_SCALE", "medium")
    with pytest.raises(ValueError, match="COURSE_SCALE"):
        scale.current()


@pytest.fixture
def configs():
    """A chapter's configurations: tiny and colab built, paper not."""

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class ToyConfig(scale.ScaleConfig):
        steps: int
        images: tuple[int, ...]
        REHEARSAL: ClassVar[dict] = {"steps": 2, "images": (1,)}

    scale.in_force.clear()
    yield {"tiny": ToyConfig(scale="tiny", steps=10, images=(1, 2)), "colab": ToyConfig(scale="colab", steps=1000,
                                                                                       images=(1, 2, 3))}
    scale.in_force.clear()
    scale.set_scale(None)


def test_pick_returns_the_scales_config_and_records_it(configs, monkeypatch):
    monkeypatch.delenv("COURSE_REHEARSAL", raising=False)
    monkeypatch.setenv("COURSE_SCALE", "colab")
    assert scale.explicit() and not scale.rehearsal()
    cfg = scale.pick(configs, chapter="9")
    assert cfg is configs["colab"] and scale.in_force["9"] is cfg and scale.picked() is cfg
    assert cfg.describe() == {"config": "ToyConfig", "scale": "colab", "rehearsal": False, "steps": 1000,
                              "images": [1, 2, 3]}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 3
    monkeypatch.setenv("COURSE_SCALE", "tiny")
    assert scale.pick(configs, chapter="9") is configs["tiny"] and scale.in_force["9"] is configs["tiny"]


def test_pick_under_rehearsal_shrinks_the_gpu_configs_only(configs, monkeypatch):
    monkeypatch.setenv("COURSE_REHEARSAL", "1")
    monkeypatch.setenv("COURSE_SCALE", "colab")
    assert scale.rehearsal()
    cfg = scale.pick(configs, chapter="9")
    assert (cfg.scale, cfg.rehearsal, cfg.steps, cfg.images) == ("colab", True, 2, (1,))
    assert cfg == configs["colab"].rehearsed() and cfg.label == "colab (rehearsal)"
    assert cfg.name == "ToyConfig(colab, rehearsal)" and not configs["colab"].rehearsal
    monkeypatch.setenv("COURSE_SCALE", "tiny")   # tiny is already the CPU budget (and reuses the book's cache)
    assert scale.pick(configs, chapter="9") is configs["tiny"]
    monkeypatch.setenv("COURSE_REHEARSAL", "0")
    assert not scale.rehearsal()


def test_pick_stops_at_an_explicit_scale_that_is_not_built(configs, monkeypatch):
    monkeypatch.delenv("COURSE_SCALE", raising=False)
    scale.set_scale("paper")
    assert scale.explicit()
    with pytest.raises(scale.ScaleNotBuilt) as err:
        scale.pick(configs, chapter="9")
    assert str(err.value) == ("chapter 9 has no `paper` configuration yet: run it with "
                              "COURSE_SCALE=tiny, COURSE_SCALE=colab")
    assert "9" not in scale.in_force
    monkeypatch.setenv("COURSE_SCALE", "paper")
    scale.set_scale(None)
    with pytest.raises(scale.ScaleNotBuilt, match="no `paper` configuration"):
        scale.pick(configs, chapter="9")


def test_pick_on_a_gpu_by_default_runs_tiny_with_a_notice(configs, monkeypatch, capsys):
    monkeypatch.delenv("COURSE_SCALE", raising=False)
    monkeypatch.delenv("COURSE_REHEARSAL", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert scale.current() == "colab" and not scale.explicit()
    assert scale.pick(configs, chapter="9") is configs["colab"]      # built: no notice
    assert capsys.readouterr().out == ""
    only_tiny = {"tiny": configs["tiny"]}
    assert scale.pick(only_tiny, chapter="9") is configs["tiny"]     # not built: tiny, said loudly, on one line
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "GPU" in out and "no `colab` configuration" in out and "`tiny`" in out
    assert scale.in_force["9"] is configs["tiny"]


def test_pick_refuses_a_config_filed_under_another_scale(configs):
    with pytest.raises(ValueError, match="says scale='tiny'"):
        scale.pick({"colab": configs["tiny"]}, chapter="9")


def test_scorecard_and_banner_follow_the_config_that_ran(configs, monkeypatch):
    """COURSE_SCALE=paper with a tiny configuration must not label tiny numbers "paper scale"."""
    monkeypatch.setenv("COURSE_SCALE", "paper")
    tiny = configs["tiny"]
    card = provenance.Scorecard("t", config=tiny).add("m", 1.0, 2.0)
    assert card.rows[0]["paper_scale"] is False and provenance.scorecards[-1] is card
    assert "paper scale no" in repr(card) and "scale tiny ·" in repr(card)
    assert "not at the paper's scale" in card._repr_html_() and "scale tiny ·" in card._repr_html_()
    # the better direction is shown (an arrow), and the table keeps to four columns (a phone's width)
    lower = provenance.Scorecard("t", config=tiny).add("rate", 0.5, 1.5, higher_is_better=False)._repr_html_()
    assert "rate ↓" in lower and lower.count("<th>") == 4
    paper = dataclasses.replace(configs["colab"], scale="paper")
    assert provenance.Scorecard("t", config=paper).add("m", 1.0).rows[0]["paper_scale"] is True
    rehearsed = paper.rehearsed()
    card = provenance.Scorecard("t", config=rehearsed).add("m", 1.0)
    assert card.rows[0]["paper_scale"] is False and "scale paper (rehearsal) ·" in repr(card)
    # without a config: the one picked last, and none picked means "no"
    scale.in_force.clear()
    assert provenance.Scorecard("t").add("m", 1.0).rows[0]["paper_scale"] is False
    monkeypatch.setenv("COURSE_SCALE", "tiny")
    scale.pick(configs, chapter="9")
    monkeypatch.setenv("COURSE_SCALE", "paper")
    assert provenance.Scorecard("t").add("m", 1.0).rows[0]["paper_scale"] is False
    assert provenance.stamp().startswith("scale tiny ·")
    b = provenance.banner(rehearsed, chapter="x")
    glance = provenance.Glance(config=tiny).add("c", paper="1", ours="2", held=False).add("d", paper="x", ours="–",
                                                                                     held=None)
    assert "✗ did not hold" in glance._repr_html_() and "not tested" in repr(glance) and "scale tiny ·" in repr(glance)
    assert b.rows["scale"] == "paper (rehearsal)" and b.rows["config"] == "ToyConfig(paper, rehearsal)"
    assert "<b>config</b>" in b._repr_html_()


def test_no_chapter_or_library_code_branches_on_the_scale_name():
    """Chapters and lib/ ask for a configuration (lib.scale.pick) instead of comparing scale.current() to a name."""
    import ast
    import re

    compare = re.compile(r"""(scale\.current\(\)|\bcurrent\(\))\s*(==|!=|\bin\b|\bnot in\b)|"""
                         r"""(==|!=)\s*(lib\.)?scale\.current\(\)|['"](tiny|colab|paper)['"]\s*(==|!=)\s*"""
                         r"""(lib\.)?scale\.current""")
    chosen = re.compile(r"scale\.choose\(")
    offenders = []
    for md in sorted((ROOT / "book").glob("*.md")):
        text = md.read_text()
        cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", text, flags=re.S)
        for k, cell in enumerate(cells):
            if compare.search(cell) or chosen.search(cell):
                offenders.append(f"{md.name} code cell {k + 1}")
    for py in sorted((ROOT / "lib").rglob("*.py")):
        if py.name == "scale.py" and py.parent.name == "lib":
            continue
        tree = ast.parse(py.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                src = ast.unparse(node)
                if "current()" in src and any(f"'{s}'" in src for s in scale.SCALES):
                    offenders.append(f"{py.relative_to(ROOT)}:{node.lineno}: {src}")
    assert not offenders, offenders
    assert compare.search('if lib.scale.current() == "tiny":') and compare.search("x = scale.current() != 'colab'")


# --- runtime ------------------------------------------------------------------------------------------------------
def test_setup_seeds_and_threads():
    dev = runtime.setup(seed=3, threads=1)
    assert dev.type in ("cpu", "cuda") and torch.get_num_threads() == 1
    a = (torch.rand(3), np.random.rand(3))
    runtime.setup(seed=3, threads=1)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_banner_shows_scale_device_versions_commit():
    html = provenance.banner(chapter="x")._repr_html_()
    for key in ("scale", "hardware", "torch", "python", "commit", "chapter"):
        assert f"<b>{key}</b>" in html
    assert scale.current() in repr(provenance.banner())


# --- downloads: tests/test_download.py ---------------------------------------------------------------------------


# --- checkpoints and cache ----------------------------------------------------------------------------------------
def test_checkpoint_roundtrip_and_weights_only(tmp_path):
    path = checkpoint.save({"w": torch.arange(3.0), "step": 7}, tmp_path / "ck.pt")
    assert checkpoint.load(path)["step"] == 7
    torch.save({"obj": Path("x")}, tmp_path / "pickled.pt")  # an arbitrary pickled object
    with pytest.raises(checkpoint.CheckpointError, match="weights_only"):
        checkpoint.load(tmp_path / "pickled.pt")
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint"):
        checkpoint.load(tmp_path / "missing.pt")


def _fake_module(monkeypatch, name):
    import types

    for i in range(1, name.count(".") + 2):
        part = ".".join(name.split(".")[:i])
        monkeypatch.setitem(sys.modules, part, sys.modules.get(part) or types.ModuleType(part))
    return sys.modules[name]


def test_lightning_checkpoint_loads_with_the_allow_list_only(tmp_path, monkeypatch):
    """A checkpoint like PyTorch-Lightning 1.x writes, saved while a fake ``pytorch_lightning`` is importable, loads
    with ``LIGHTNING_ALLOW`` after it is gone: weights_only=True, nothing run."""
    import argparse

    parsing = _fake_module(monkeypatch, "pytorch_lightning.utilities.parsing")
    callbacks = _fake_module(monkeypatch, "pytorch_lightning.callbacks.model_checkpoint")

    class AttributeDict(dict):  # as in Lightning: attribute access is item access
        __getattr__ = dict.__getitem__

        def __setattr__(self, key, value):
            self[key] = value

    class ModelCheckpoint:
        pass

    for cls, mod in ((AttributeDict, parsing), (ModelCheckpoint, callbacks)):
        cls.__module__, cls.__qualname__ = mod.__name__, cls.__name__
        setattr(mod, cls.__name__, cls)
    hp = AttributeDict(backbone="clip_vitl16_384", lr=0.004)
    hp.arch_option = 0
    torch.save({"state_dict": {"net.w": torch.ones(2)}, "epoch": 199, "hyper_parameters": hp,
                "callbacks": {ModelCheckpoint: {"best_model_score": torch.tensor(0.5)}},
                "args": argparse.Namespace(lr=0.004), "pytorch-lightning_version": "1.3.5"}, tmp_path / "pl.ckpt")
    monkeypatch.undo()  # pytorch_lightning is gone again
    assert "pytorch_lightning" not in sys.modules
    with pytest.raises(checkpoint.CheckpointError, match="pytorch_lightning.utilities.parsing.AttributeDict"):
        checkpoint.load(tmp_path / "pl.ckpt")
    ck = checkpoint.load(tmp_path / "pl.ckpt", allow=checkpoint.LIGHTNING_ALLOW)
    assert torch.equal(ck["state_dict"]["net.w"], torch.ones(2)) and ck["epoch"] == 199
    assert ck["hyper_parameters"] == {"backbone": "clip_vitl16_384", "lr": 0.004, "arch_option": 0}
    assert ck["args"].lr == 0.004
    assert [k.__qualname__ for k in ck["callbacks"]] == ["ModelCheckpoint"]


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {_RunsCode.target}",))


def test_a_payload_that_runs_code_is_refused(tmp_path):
    _RunsCode.target = tmp_path / "pwned"
    torch.save({"state_dict": {}, "x": _RunsCode()}, tmp_path / "evil.ckpt")
    for allow in ((), checkpoint.LIGHTNING_ALLOW):
        with pytest.raises(checkpoint.CheckpointError, match="system"):
            checkpoint.load(tmp_path / "evil.ckpt", allow=allow)
    assert not (tmp_path / "pwned").exists()


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "ck.pt"
    checkpoint.save({"v": 1}, target)
    with pytest.raises(RuntimeError):
        with checkpoint.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert checkpoint.load(target)["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_one_key_scheme_for_memos_and_training_files(tmp_path, monkeypatch):
    """cache.key names every part, expands a dataclass field by field (so settings that differ anywhere differ in
    the key), and a run's resumable training file is named after the same key and version as its memo."""
    import dataclasses

    @dataclasses.dataclass
    class S:
        steps: int
        lr: float = 1e-3

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    k = cache.key("run", seed=0, cfg=S(10))
    assert k == "run-seed=0-cfg.steps=10-cfg.lr=0.001"
    assert cache.key("run", seed=0, cfg=S(10, lr=2e-3)) != k and cache.key("run", seed=1, cfg=S(10)) != k
    work, memo = cache.work_path(k, "2"), cache._path(k, "2")
    assert work.parent == tmp_path / "work" and work.name == memo.name and cache.work_path(k, "3") != work


def test_memo_computes_once(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    calls = []

    def work():
        calls.append(1)
        return {"curve": np.linspace(0, 1, 5), "n": 3, "names": ["a", "b"]}

    a = cache.memo("demo", work)
    b = cache.memo("demo", work)
    assert len(calls) == 1
    assert isinstance(b["curve"], np.ndarray) and np.array_equal(a["curve"], b["curve"]) and b["names"] == ["a", "b"]
    cache.memo("demo", work, version="2")
    assert len(calls) == 2
    # A damaged cache entry is recomputed, not a crash.
    for p in (tmp_path / "memo").iterdir():
        p.write_bytes(b"garbage")
    cache.memo("demo", work)
    assert len(calls) == 3


# --- training: resume after a kill, and DDP -----------------------------------------------------------------------
def _run(args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300, **kw)


@pytest.fixture(scope="module")
def toy_reference(tmp_path_factory):
    """``ref(dropout)``: the path of the toy's uninterrupted one-process run (30 steps) with that dropout, run once
    per module and shared by the resume and DDP tests."""
    folder, done = tmp_path_factory.mktemp("toy-ref"), {}

    def ref(dropout: str) -> Path:
        if dropout not in done:
            path = folder / f"ref{dropout}.pt"
            assert _run([str(TOY), "--out", str(path), "--dropout", dropout]).returncode == 0
            done[dropout] = path
        return done[dropout]

    return ref


def test_killed_run_resumes_to_the_same_end(tmp_path, toy_reference):
    for dropout in ("0.0", "0.2"):  # dropout: the random-number state must be resumed too
        ref = toy_reference(dropout)
        ck = tmp_path / f"run{dropout}.ckpt"
        killed = _run([str(TOY), "--ckpt", str(ck), "--out", str(tmp_path / "never.pt"), "--kill-at", "12",
                       "--dropout", dropout])
        assert killed.returncode != 0 and not (tmp_path / "never.pt").exists()
        assert checkpoint.load(ck)["step"] == 10  # the last checkpoint before the kill
        out = tmp_path / f"resumed{dropout}.pt"
        assert _run([str(TOY), "--ckpt", str(ck), "--out", str(out), "--dropout", dropout]).returncode == 0
        a, b = checkpoint.load(ref), checkpoint.load(out)
        for k in a["params"]:
            assert torch.equal(a["params"][k], b["params"][k]), k
        assert torch.equal(a["losses"], b["losses"])


def test_before_step_runs_between_backward_and_the_optimiser_step():
    from lib import train

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []

    def zero_grads():  # sees the gradients of this step; zeroing them means SGD moves nothing
        seen.append(all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters()))
        for p in model.parameters():
            p.grad.zero_()

    train.fit(model, lambda step: torch.randn(4, 3), lambda m, x: {"loss": m(x).pow(2).mean()}, opt, 3,
              progress=False, before_step=zero_grads)
    assert seen == [True, True, True]
    assert all(torch.equal(start[k], v) for k, v in model.state_dict().items())


def test_ddp_two_processes_match_one(tmp_path, toy_reference):
    single = toy_reference("0.0")   # one process, 30 steps
    ddp = tmp_path / "ddp.pt"
    proc = _run(["-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=0", "--rdzv_backend=c10d",
                 "--rdzv_endpoint=127.0.0.1:0", str(TOY), "--out", str(ddp), "--steps", "30"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = checkpoint.load(single), checkpoint.load(ddp)
    assert b["world"] == 2
    for k in a["params"]:
        torch.testing.assert_close(a["params"][k], b["params"][k], rtol=1e-5, atol=1e-6)


def test_shard_needs_divisible_batch():
    x = torch.arange(6)
    assert torch.equal(lib.train.shard(x, 1, 2), torch.tensor([3, 4, 5]))
    with pytest.raises(ValueError, match="divisible"):
        lib.train.shard(torch.arange(5), 0, 2)


# --- provenance ---------------------------------------------------------------------------------------------------
def test_stamp_and_scorecard(monkeypatch):
    monkeypatch.setenv("COURSE_SCALE", "tiny")
    s = provenance.stamp()
    assert "scale tiny" in s and "torch" in s and "commit" in s
    card = provenance.Scorecard("T").add("PSNR", ours=25.0, paper=27.5, unit="dB", source="Table 1")
    row = card.rows[0]
    assert row["difference"] == pytest.approx(-2.5) and row["paper_scale"] is False
    html = card._repr_html_()
    assert "27.5" in html and "−2.5" not in html and "-2.5" in html and "scale tiny" in html
    card.add("mAP", ours=None, paper=0.766)
    assert card.rows[1]["difference"] is None


def test_caption_adds_stamp():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    provenance.caption(fig, extra="seed 0")
    assert any("scale" in t.get_text() and "seed 0" in t.get_text() for t in fig.texts)
    plt.close(fig)


# --- assets -------------------------------------------------------------------------------------------------------
def test_require_names_the_package(tmp_path):
    with pytest.raises(assets.AssetMissing, match="apt-get install some-package"):
        assets.require(tmp_path / "nope", apt="some-package")


def test_photos_are_real_rgb_images():
    photos = assets.photos(min_side=256, max_side=512)
    assert len(photos) >= 15
    for name, img in photos:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and max(img.shape[:2]) <= 512, name
        assert img.std() > 10, f"{name} looks blank"


# --- widgets ------------------------------------------------------------------------------------------------------
def test_switcher_links_control_to_tab():
    import ipywidgets as w

    box = widgets.switcher({"a": np.zeros((4, 4, 3), np.uint8), "b": "<b>html</b>"}, control="dropdown")
    ctrl, deck = box.children
    assert isinstance(deck, w.Tab) and len(deck.children) == 2 and deck.selected_index == 0
    assert [deck.get_title(i) for i in range(2)] == ["a", "b"]
    assert isinstance(deck.children[0], w.Image) and deck.children[1].value == "<b>html</b>"
    assert box.link.source == (ctrl, "index") and box.link.target == (deck, "selected_index")
    assert "course-switcher" in box._dom_classes
    with pytest.raises(ValueError, match="at least one"):
        widgets.switcher({})
    with pytest.raises(ValueError, match="slider"):
        widgets.switcher({"a": b"x"}, control="knob")


def test_explore_is_static_in_the_build_and_live_on_colab(monkeypatch):
    import ipywidgets as w

    monkeypatch.setenv("COURSE_LIVE", "0")
    calls = []
    box = widgets.explore(lambda v: calls.append(v) or np.full((2, 2, 3), v, np.uint8), [1, 2, 3])
    assert calls == [1, 2, 3] and isinstance(box.children[1], w.Tab)
    monkeypatch.setenv("COURSE_LIVE", "1")
    calls.clear()
    live = widgets.explore(lambda v: calls.append(v) or f"<i>{v}</i>", [1, 2], control="dropdown")
    ctrl, panel = live.children
    assert isinstance(ctrl, w.Dropdown) and calls == [1] and panel.value == "<i>1</i>"
    ctrl.value = 2
    assert calls == [1, 2] and live.children[1].value == "<i>2</i>"
    with pytest.raises(ValueError, match="at least one value"):
        widgets.explore(str, [])
    with pytest.raises(ValueError, match="slider"):
        widgets.explore(str, [1], control="knob")


def test_live_recomputes_in_the_kernel_and_shows_errors():
    import ipywidgets as w

    def fn(text):
        if not text:
            raise ValueError("give at least one label")
        return f"<b>{text}</b>"

    text = w.Text(value="a, b")
    box = widgets.live(fn, text)
    assert box.children[0] is text and box.children[1].value == "<b>a, b</b>"
    text.value = ""
    assert "ValueError: give at least one label" in box.children[1].value
    text.value = "c"
    assert box.children[1].value == "<b>c</b>"
    with pytest.raises(ValueError, match="at least one label"):
        widgets.live(fn, w.Text(value=""))
    with pytest.raises(TypeError, match="control with a value"):
        widgets.live(fn, w.Button(description="no value"))


def test_audio_player_embeds_wav():
    html = widgets.audio(np.sin(np.linspace(0, 100, 1600)), 16000, label="tone")
    assert "data:audio/wav;base64," in html and "tone" in html
    with pytest.raises(ValueError, match="mono"):
        widgets.audio(np.zeros((2, 100)), 16000)


def test_png_bytes_rejects_unknown():
    with pytest.raises(TypeError, match="PIL image"):
        widgets.png_bytes(object())


def test_one_image_to_tensor_conversion_for_both_image_chapters():
    """lib.images.to_tensor serves chapter 1 (one (H, W, C) image, RGB or RGBA) and chapter 3 (an (N, H, W, 3) batch,
    through lib.lseg.training.to_tensor_images); lib.icm has no conversion of its own any more."""
    from PIL import Image

    from lib import images
    from lib.icm import data as icm_data
    from lib.lseg import training

    u8 = np.random.default_rng(0).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    one = images.to_tensor(Image.fromarray(u8))
    assert one.shape == (4, 5, 7) and torch.equal(one, torch.from_numpy(u8).permute(2, 0, 1).float() / 255)
    batch = images.to_tensor(u8[None, ..., :3])
    assert torch.equal(batch, training.to_tensor_images(u8[None, ..., :3])) and batch.shape == (1, 3, 5, 7)
    with pytest.raises(ValueError, match="channels-first"):
        training.to_tensor_images(np.zeros((2, 3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        images.to_tensor(u8.astype(np.float32))
    assert not hasattr(icm_data, "to_tensor") or icm_data.to_tensor is images.to_tensor
