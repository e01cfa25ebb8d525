"""A hostile-input sweep of lib's public API.

Every public function and class of every ``lib`` module (found by introspection, ``helpers.hostile.public_api``)
is either swept here (``SWEEP``: for each kind of input it takes, hypothesis draws bad values of that kind) or
excluded with a reason (``EXCLUDED``). Each call must end in a right result or in a clear error from lib's own
validation (``helpers.hostile.judge`` says exactly what counts). ``test_every_public_function_has_an_entry`` prints
the coverage list (function -> kinds tried) and fails when a public function has no entry.
"""
from __future__ import annotations

import errno
import functools
import io
import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.hostile import (Case, Verdict, disk_fault, files, images, judge, label_sets, lib_errors,
                                   names_leaving, public_api, sample_rates, segments, wave_batch, waves,
                                   whole_numbers)

torch.set_num_threads(1)
TMP = Path(tempfile.mkdtemp(prefix="hostile-"))
SWEEP_SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                          suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True, scope="module")
def _private_cache():
    """The sweep writes only below its own temporary folder, never into the course cache."""
    old = os.environ.get("COURSE_CACHE")
    os.environ["COURSE_CACHE"] = str(TMP / "cache")
    yield
    if old is None:
        os.environ.pop("COURSE_CACHE", None)
    else:
        os.environ["COURSE_CACHE"] = old


# --- small, real objects the calls need (built once) ------------------------------------------------------------
@functools.cache
def codec():
    from lib.icm import codec as C

    torch.manual_seed(0)
    c = C.build_codec(8, 12).eval()
    c.update(force=True)
    return c


@functools.cache
def bitstream():
    from lib.icm import compress_all

    return compress_all(codec(), [torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))])[0]


@functools.cache
def cm():
    from lib.spoof import tiny_cm

    torch.manual_seed(0)
    return tiny_cm(channels=8, n_blocks=1, se_dim=4).eval()


@functools.cache
def lseg():
    import lib.lseg as L

    torch.manual_seed(0)
    return L.LSeg(L.architecture("tiny", arch="bottleneck", depth=1),
                  text_encoder=L.RandomText(L.architecture("tiny").out_c))


@functools.cache
def wav_file() -> Path:
    import soundfile as sf

    p = TMP / "good.wav"
    sf.write(p, np.random.default_rng(0).uniform(-0.3, 0.3, 8000).astype(np.float32), 16000)
    return p


@functools.cache
def ckpt_file() -> Path:
    p = TMP / "good.pt"
    torch.save({"w": torch.arange(100.0)}, p)
    return p


def _patched(target, name, replacement):
    """A context manager that sets ``target.name`` to ``replacement`` for the duration of the call."""
    import contextlib

    @contextlib.contextmanager
    def ctx():
        old = getattr(target, name)
        setattr(target, name, replacement)
        try:
            yield
        finally:
            setattr(target, name, old)

    return ctx()


def _failing(code):
    def fail(*a, **k):
        raise disk_fault(code)
    return fail


DISK = st.sampled_from([errno.ENOSPC, errno.EROFS, errno.EACCES])


def _save_under_fault(code):
    from lib.storage import checkpoint

    with _patched(torch, "save", _failing(code)):
        return checkpoint.save({"a": 1}, TMP / "w" / "x.pt")


def _memo_under_fault(code):
    from lib.storage import cache

    with _patched(torch, "save", _failing(code)):
        return cache.memo(f"hostile-{code}", lambda: 1)


def _atomic_under_fault(code):
    from lib.storage import checkpoint

    with _patched(tempfile, "mkstemp", _failing(code)):
        with checkpoint.atomic_path(TMP / "w" / "y.pt") as tmp:
            Path(tmp).write_bytes(b"1")


def _inside(folder_fn):
    return lambda result, value: Path(result).resolve().is_relative_to(Path(folder_fn()).resolve())


def _cache_root():
    return Path(os.environ["COURSE_CACHE"])


def _tar_with(member: str) -> Path:
    p = TMP / f"evil-{abs(hash(member))}.tar"
    with tarfile.open(p, "w") as t:
        info = tarfile.TarInfo(member)
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    return p


def _pascal_extract(member):
    from lib.lseg import pascal

    tar = _tar_with(member)
    with _patched(pascal.download, "fetch", lambda url, **kw: tar):
        return pascal.extract("http://example.org/voc.tar")


def _checker(image):
    from lib import icm

    return icm.checkerboard_score(image, 4)


def _same_as_int(fn):
    """For whole-number floats: the result equals the one for the int."""
    return lambda result, value: (isinstance(value, float) and float(value).is_integer()
                                  and np.array_equal(np.asarray(result), np.asarray(fn(int(value)))))


IMG64 = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
IMG32 = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
CAM = np.linspace(0, 1, 150)
BAD_VADS = [b"0.0 1.0\n", b"0 1 x\n", b"0 1 101\n", b"1 0.5 1\n", b"0 1 1\n0.5 2 0\n", b"0 1 -1\n"]


def _vad_file(name: str, body: bytes) -> Path:
    path = TMP / f"{name}.vad"
    path.write_bytes(body)
    return path


SPANS = [(0.0, 0.3, 2), (0.3, 1.2, 1), (1.2, 1.9, 0)]   # public .vad spans: pause, bona fide, spoofed


def _sweep():
    from importlib import import_module as m

    cache, checkpoint, hashes = (m(f"lib.storage.{n}") for n in ("cache", "checkpoint", "hashes"))
    IM, widgets, runtime, scale = m("lib.images"), m("lib.display.widgets"), m("lib.runtime"), m("lib.scale")
    CB, C, ID, EV, FT, PG = (m(f"lib.icm.{n}") for n in ("checkerboard", "codec", "data", "evaluate", "decoder_finetuning",
                                                          "patchgan"))
    LM, LMOD, LT = m("lib.lseg.metrics"), m("lib.lseg.model"), m("lib.lseg.training")
    SA, SG, PS, R, SR, SE = (m(f"lib.spoof.{n}") for n in ("audio", "gradcam", "partialspoof", "rcq", "ssl_res1d",
                                                            "metrics"))
    PL = m("lib.spoof.partialspoof_labels")

    img_kinds = ("dtype", "range", "nan", "shape", "empty")
    s = {}

    # storage ----------------------------------------------------------------------------------------------------
    s["lib.storage.cache.cache_dir"] = [Case("path", "parts", names_leaving(), lambda v: cache.cache_dir(v),
                                     _inside(_cache_root))]
    s["lib.storage.cache.key"] = [Case("path", "key", names_leaving(), lambda v: cache.work_path(cache.key(v, part=v)),
                               _inside(lambda: _cache_root() / "work"))]
    s["lib.storage.cache.work_path"] = [Case("path", "key", names_leaving(), lambda v: cache.work_path(v),
                                     _inside(lambda: _cache_root() / "work"))]
    s["lib.storage.cache.committed_path"] = [Case("path", "key", names_leaving(),
                                                  lambda v: cache.committed_path(TMP, v), _inside(lambda: TMP))]
    s["lib.storage.cache.memo"] = [Case("disk", "memo", DISK, _memo_under_fault),
                           Case("path", "key", names_leaving(),
                                lambda v: (cache.memo(v, lambda: 3), cache._path(v, "1")),
                                lambda r, v: r[0] == 3 and r[1].resolve().is_relative_to(_cache_root()))]
    s["lib.storage.checkpoint.save"] = [Case("disk", "x.pt", DISK, _save_under_fault)]
    s["lib.storage.checkpoint.atomic_path"] = [Case("disk", "y.pt", DISK, _atomic_under_fault)]
    s["lib.storage.checkpoint.load"] = [Case("file", lambda p: p.name, files(TMP, ckpt_file()),
                                             lambda p: checkpoint.load(p))]
    s["lib.storage.hashes.sha256sum"] = [Case("file", "no-such-file", st.just(TMP / "no-such-file" / "x"),
                                        lambda p: hashes.sha256sum(p))]
    s["lib.storage.hashes.hub_prefix"] = [Case("type", lambda u: u,
                                                 st.sampled_from(["https://example.org/a.bin", "x.pt"]),
                                         lambda u: hashes.hub_prefix(u))]
    s["lib.lseg.pascal.extract"] = [Case("path", "member", names_leaving().filter(lambda n: n and "\0" not in n),
                                         _pascal_extract)]
    s["lib.spoof.partialspoof_labels.derive_segments"] = [
        Case("range", "tr_width", st.sampled_from([-0.1, NAN_, float("inf"), "0.06", None]),
             lambda w: PL.derive_segments(SPANS, np.ones(200, np.int8), w)),
        Case("range", "spans", st.sampled_from([[], [(0.0, 1.0, 3)], [(0.0, 1.0, 101)], [(1.0, 0.5, 1)],
                                                [(0.0, NAN_, 1)], [(0.0, "1", 1)], [(0.0, 1.0, 1), (0.5, 2.0, 0)],
                                                [(0.0, 1.0)], "0 1 1"]),
             lambda sp: PL.derive_segments(sp, np.ones(200, np.int8), 0.06)),
        Case("shape", "seglab", st.sampled_from([np.ones(3), np.ones((2, 200)), np.full(200, 7), np.zeros(0)]),
             lambda sl: PL.derive_segments(SPANS, sl, 0.06))]
    s["lib.spoof.partialspoof_labels.read_public_vad"] = [
        Case("file", lambda p: p.name, st.one_of(files(TMP, _vad_file("good", b"0 0.3 2\n0.3 1.2 1\n")),
                                                  st.sampled_from([_vad_file(f"bad{i}", body) for i, body in
                                                                   enumerate(BAD_VADS)])),
             lambda p: PL.read_public_vad(p))]
    s["lib.spoof.partialspoof.extract"] = [Case("path", "wanted", names_leaving().filter(lambda n: n not in ("",)),
                                                lambda n: PS.extract(_tar_with("a/b.wav"), {"/" + n: TMP / "o"}))]

    # images -----------------------------------------------------------------------------------------------------
    s["lib.icm.codec.check_images"] = [Case(k, "x", images(k), C.check_images) for k in img_kinds]
    s["lib.icm.codec.ICMCodec"] = [Case(k, "x", images(k), lambda x: codec()(x)) for k in img_kinds]
    s["lib.icm.codec.compress_all"] = [
        *[Case(k, "images[0]", images(k, batch=False), lambda x: C.compress_all(codec(), [x]))
          for k in img_kinds],
        Case("type", "update", st.just(0), lambda _: C.compress_all(C.build_codec(8, 12), [IMG32[0]]))]
    s["lib.icm.codec.decompress_all"] = [
        Case("shape", "shape", st.sampled_from([(4, 4), (2, 4), (1, 1), (0, 2), (2.0, 2), "2x2"]),
             lambda v: C.decompress_all(codec(), [{**bitstream(), "shape": v}])),
        Case("file", "another codec", st.integers(1, 3),
             lambda seed: C.decompress_all(_other_codec(seed), [bitstream()])),
        Case("file", "damaged", st.integers(0, 20),
             lambda i: C.decompress_all(codec(), [{**bitstream(), "strings": [[_flip(bitstream(), i)]]}])),
        Case("type", "update", st.just(0), lambda _: C.decompress_all(C.build_codec(8, 12), [bitstream()]))]
    s["lib.icm.codec.bpp_from_likelihoods"] = [
        Case("range", "num_pixels", whole_numbers(1),
             lambda n: C.bpp_from_likelihoods({"y": torch.rand(1, 2, 2, 2)}, n))]
    s["lib.icm.codec.compressai_url"] = [Case("range", "quality", whole_numbers(1, 4),
                                              lambda q: C.compressai_url(q))]
    s["lib.icm.evaluate.psnr"] = [
        *[Case(k, "x", images(k), lambda x: EV.psnr(x, IMG32)) for k in ("range", "nan", "shape", "empty")],
        Case("range", "x_hat", images("range"), lambda x: EV.psnr(IMG32, x))]
    s["lib.icm.evaluate.jpeg"] = [
        *[Case(k, "images[0]", images(k), lambda x: EV.jpeg([x], 75)) for k in img_kinds],
        Case("range", "quality", whole_numbers(1, 95), lambda q: EV.jpeg([IMG32], q))]
    s["lib.icm.evaluate.artifact_scores"] = [
        Case("range", "period", st.sampled_from([0, 1, -2, 2.5, NAN_, "4"]),
             lambda p: EV.artifact_scores([IMG64], periods=(p,)))]
    for fn in ("residual", "phase_means", "checkerboard_score", "residual_spectrum"):
        f = getattr(CB, fn)
        s[f"lib.icm.checkerboard.{fn}"] = [
            *[Case(k, "image", images(k, 64), lambda x, f=f: f(x, 4)) for k in ("range", "nan", "shape", "empty")],
            Case("range", "period", st.sampled_from([0, 1, -3, 2.5, 4.0, NAN_, "4", None]),
                 lambda p, f=f: f(IMG64, p), _same_as_int(lambda p, f=f: f(IMG64, p)))]
    s["lib.images.to_tensor"] = [
        Case("shape", "images", st.sampled_from([(8, 8), (8, 8, 2), (2, 8, 8, 5), (3, 8, 8)]).map(
            lambda sh: np.zeros(sh, np.uint8)), IM.to_tensor),
        Case("nan", "images", st.just(np.full((8, 8, 3), np.nan, np.float32)), IM.to_tensor)]
    s["lib.icm.data.check_photos"] = [Case(k, "train_photos[0]", images(k, 48, batch=False, stride=False),
                                           lambda x: ID.check_photos([("a", x)], 32)) for k in img_kinds]
    s["lib.icm.data.random_crops"] = [
        Case("range", "n", whole_numbers(1), lambda n: ID.random_crops([("a", IMG64[0])], n, 32, 0)),
        Case("range", "size", whole_numbers(1, 64), lambda v: ID.random_crops([("a", IMG64[0])], 2, v, 0))]
    s["lib.icm.patchgan.PatchDiscriminator"] = [
        *[Case(k, "x", images(k, 64), lambda x: _disc()(x)) for k in ("dtype", "nan", "shape", "empty")],
        Case("dtype", "x", st.just(IMG64.double()), lambda x: _disc()(x),
             lambda r, x: torch.equal(r, _disc()(x.float())))]
    s["lib.icm.decoder_finetuning.gan_loss"] = [Case("type", "mode", st.sampled_from(["ls", "", None, "LSGAN"]),
                                           lambda m: FT.gan_loss(torch.zeros(1, 1, 2, 2), True, m))]
    s["lib.icm.decoder_finetuning.finetune"] = [
        Case("lengths", "cfg.batch", st.integers(3, 9).map(lambda b: _ft_cfg(batch=b, pool=2)),
             lambda cfg: FT.finetune(codec(), [("a", IMG64[0])], cfg)),
        Case("dtype", "train_photos[0]", images("dtype", 48, batch=False),
             lambda x: FT.finetune(codec(), [("a", x)], _ft_cfg()))]
    s["lib.display.widgets.png_bytes"] = [Case(k, "image", images(k, 16, batch=False), widgets.png_bytes)
                                  for k in ("range", "nan")]

    # audio ------------------------------------------------------------------------------------------------------
    s["lib.spoof.audio.resample"] = [Case("range", "sr_in", sample_rates(), lambda r: SA.resample(
        np.zeros(100, np.float32), r, 16000)), Case("range", "sr_out", sample_rates(), lambda r: SA.resample(
        np.zeros(100, np.float32), 16000, r))]
    s["lib.spoof.audio.load_audio"] = [Case("file", lambda p: p.name, files(TMP, wav_file()), SA.load_audio),
        Case("file", "no-such-file", st.just(TMP / "no-such-file" / "a.wav"), SA.load_audio),
        Case("range", "sr", sample_rates(), lambda r: SA.load_audio(wav_file(), r))]
    s["lib.spoof.audio.batch_waveforms"] = [
        *[Case(k, "wave", waves(k), lambda w: SA.batch_waveforms([w])) for k in ("dtype", "nan", "shape")],
        Case("empty", "waveform", waves("empty"), lambda w: SA.batch_waveforms([w])),
        Case("range", "sr", sample_rates(), lambda r: SA.batch_waveforms([np.ones(4000, np.float32) * .1], r))]
    s["lib.spoof.audio.pad_repeat"] = [
        Case("range", "length", whole_numbers(1), lambda n: SA.pad_repeat(torch.ones(10), n)),
        Case("empty", "x", st.just(torch.zeros(0)), lambda x: SA.pad_repeat(x, 10))]
    s["lib.spoof.ssl_res1d.SpoofCM"] = [
        *[Case(k, "wave", wave_batch(k), lambda w: cm()(w)) for k in ("dtype", "nan", "shape")],
        Case("dtype", "wave", st.just(torch.rand(2, 4000, dtype=torch.float64) - .5), lambda w: cm()(w),
             lambda r, w: torch.equal(r, cm()(w.float()))),
        Case("lengths", "lengths", st.sampled_from([[4001, 100], [0, 100], [100], [1.5, 2.0], [100, 100, 100],
                                                    [-5, 100]]),
             lambda n: cm()(torch.rand(2, 4000) - .5, torch.tensor(n)))]
    s["lib.spoof.ssl_res1d.p2sgrad_loss"] = [
        Case("dtype", "labels", st.sampled_from([[0.0, 1.0], [0.5, 1.0]]).map(torch.tensor),
             lambda y: SR.p2sgrad_loss(torch.rand(2, 2), y)),
        Case("range", "labels", st.sampled_from([[0, 2], [-1, 0], [5, 5]]).map(torch.tensor),
             lambda y: SR.p2sgrad_loss(torch.rand(2, 2), y)),
        Case("lengths", "labels", st.sampled_from([[0], [0, 1, 1]]).map(torch.tensor),
             lambda y: SR.p2sgrad_loss(torch.rand(2, 2), y)),
        Case("nan", "scores", st.just(torch.tensor([[NAN_, 0.0], [0.0, 1.0]])),
             lambda x: SR.p2sgrad_loss(x, torch.tensor([0, 1])))]
    s["lib.spoof.gradcam.gradcam"] = [
        Case("type", "layer", st.sampled_from([torch.nn.Linear(2, 2), torch.nn.Conv1d(1, 1, 1)]),
             lambda layer: SG.gradcam(cm(), layer, torch.rand(1, 4000) - .5, 1)),
        Case("range", "target", st.sampled_from([2, -1, 0.5, [0, 1, 1]]),
             lambda t: SG.gradcam(cm(), cm().fc, torch.rand(2, 4000) - .5, t)),
        *[Case(k, "wave", wave_batch(k), lambda w: SG.gradcam(cm(), cm().fc, w, 1)) for k in ("dtype", "nan")]]

    # segments, CAMs, labels -------------------------------------------------------------------------------------
    for fn in ("rcq", "rcq_counts", "rcq_per_utterance"):
        f = getattr(R, fn)
        s[f"lib.spoof.rcq.{fn}"] = [
            *[Case(k, "segments", segments(k), lambda seg, f=f: f([CAM], [seg])) for k in ("units", "nan", "type")],
            Case("nan", "scores[0]", st.sampled_from([NAN_, INF_]).map(lambda v: np.where(
                np.arange(150) == 7, v, CAM)), lambda c, f=f: f([c], [[(0.0, 1.0, "BS")]])),
            Case("empty", "scores[0]", st.just(np.zeros(0)), lambda c, f=f: f([c], [[(0.0, 1.0, "BS")]])),
            Case("lengths", "segment lists", st.integers(2, 4), lambda n, f=f: f([CAM] * n, [[(0.0, 1.0, "BS")]])),
            Case("type", "rule", st.sampled_from(["ref", "", None]),
                 lambda r, f=f: f([CAM], [[(0.0, 1.0, "BS")]], rule=r))]
    s["lib.spoof.rcq.segment_frames"] = [Case(k, "segments", segments(k), lambda seg: R.segment_frames(seg, 150))
                                         for k in ("units", "nan", "type")]
    s["lib.spoof.partialspoof_labels.segment_labels"] = [
        *[Case(k, "segments", segments(k), lambda seg: PL.segment_labels(seg, 9.0)) for k in ("units", "nan")],
        Case("units", "segments", st.floats(2.5, 60).map(lambda e: [(0.0, 1.0, "BS"), (1.0, e, "SS")]),
             lambda seg: PL.segment_labels(seg, 2.0)),
        Case("range", "duration_s", st.sampled_from([0, -1.0, NAN_, "2", None]),
             lambda d: PL.segment_labels([(0.0, 1.0, "BS")], d))]
    s["lib.spoof.metrics.eer"] = [
        Case("type", "labels", st.sampled_from([["spoof", "bonafide"], [0, 2], [0.5, 1]]),
             lambda y: SE.eer(y, [0.1, 0.9])),
        Case("nan", "scores", st.sampled_from([NAN_, INF_]), lambda v: SE.eer([0, 1], [0.1, v])),
        Case("lengths", "same length", st.integers(3, 6), lambda n: SE.eer([0, 1] * n, [0.1, 0.9]))]
    s["lib.lseg.model.architecture"] = [Case("type", "keyword", st.sampled_from(["depht", "archh", "outc", "Patch"]),
                                             lambda k: LMOD.architecture("tiny", **{k: 2}))]
    s["lib.lseg.model.LSeg"] = [
        *[Case(k, "x", images(k, 64), lambda x: lseg()(x, ["sky", "dog"])) for k in img_kinds],
        Case("duplicates", "label", label_sets(), lambda ls: lseg()(IMG64, ls)),
        Case("nan", "T", st.sampled_from([NAN_, INF_]).map(lambda v: _with_nan(torch.randn(2, lseg().cfg.out_c), v)),
             lambda T: lseg()(IMG64, T))]
    s["lib.lseg.training.remap"] = [Case("duplicates", "offered", st.sampled_from([[1, 1], [3, 4, 3], [0, 0, 0]]),
                                         lambda o: LT.remap(torch.zeros(2, 2, dtype=torch.long), o))]
    s["lib.lseg.training.lseg_loss"] = [Case("duplicates", "offered", st.sampled_from([[1, 1], [3, 4, 3]]),
                                             lambda o: LT.lseg_loss(torch.randn(2, 8), o))]
    s["lib.lseg.training.evaluate"] = [Case("duplicates", "offered", st.sampled_from([[1, 1], [3, 4, 3]]),
                                            lambda o: LT.evaluate(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), o))]
    s["lib.lseg.metrics.ConfusionMatrix"] = [
        Case("dtype", "pred", st.sampled_from([0.3, 0.7, NAN_]).map(lambda v: torch.full((4,), v)),
             lambda p: LM.ConfusionMatrix(3).update(p, torch.zeros(4, dtype=torch.long)))]
    s["lib.lseg.metrics.EpisodeIoU"] = [
        Case("dtype", "pred_fg", st.sampled_from([0.3, 0.7, 2.0]).map(lambda v: torch.full((4, 4), v)),
             lambda p: LM.EpisodeIoU().update(p, torch.zeros(4, 4, dtype=torch.bool), "dog"))]
    s["lib.runtime.seed_everything"] = [Case("type", "seed", whole_numbers(0), runtime.seed_everything,
                                             lambda r, v: isinstance(v, int) and not isinstance(v, bool))]
    s["lib.scale.set_scale"] = [Case("type", "scale", st.sampled_from(["big", " TINY", "", 3]),
                                     lambda v: (scale.set_scale(v), scale.current(), scale.set_scale(None))[1],
                                     lambda r, v: v == " TINY" and r == "tiny")]
    s["lib.spoof.audio.check_waveform"] = [
        Case("range", "sr", sample_rates(), lambda r: SA.check_waveform(np.ones(4000, np.float32) * .1, r)),
        *[Case(k, "wave", waves(k), SA.check_waveform) for k in ("dtype", "nan")],
        Case("shape", "stereo", waves("shape"), SA.check_waveform),
        Case("empty", "wave", waves("empty"), SA.check_waveform)]
    s["lib.spoof.audio.check_waveform_batch"] = [Case(k, "wave", wave_batch(k), SA.check_waveform_batch)
                                                 for k in ("dtype", "nan", "shape")]
    s["lib.spoof.rcq.check_segments"] = [
        Case(k, "segments", segments(k), lambda seg: R.check_segments(seg, kinds=R.KINDS, n_frames=150))
        for k in ("units", "nan", "type")]
    s["lib.spoof.rcq.check_cam"] = [Case("nan", "cam", st.sampled_from([NAN_, INF_]).map(
        lambda v: np.where(np.arange(150) == 3, v, CAM)), R.check_cam),
        Case("empty", "cam", st.just(np.zeros(0)), R.check_cam)]
    s["lib.spoof.partialspoof.choose"] = [Case("range", "n", whole_numbers(0, 3), lambda n: PS.choose(["a", "b", "c"],
                                                                                                   n, 0))]
    RC = m("lib.recipe")
    s["lib.recipe.EpochSampler"] = [
        Case("range", "world", whole_numbers(1), lambda w: RC.EpochSampler(8, 4, 0, w)),
        Case("range", "rank", st.sampled_from([-1, 2, 5, 0.5, None]), lambda r: RC.EpochSampler(8, 4, r, 2)),
        Case("range", "batch", whole_numbers(1), lambda b: RC.EpochSampler(8, b, 0, 1)),
        Case("range", "n", whole_numbers(1), lambda n: RC.EpochSampler(n, 2, 0, 1))]
    SW = m("lib.sweep")
    s["lib.sweep.run"] = [
        Case("empty", "points", st.sampled_from([[], ()]), lambda p: SW.run("s", TMP / "s.json", dict, p,
                                                                          script="x", progress=False)),
        Case("duplicates", "points", st.just([{"seed": 0}, {"seed": 0}]),
             lambda p: SW.run("s", TMP / "s.json", dict, p, script="x", progress=False)),
        Case("type", "points", st.sampled_from([None, 3, "seed", [1, 2], [{"seed": 0}, None]]),
             lambda p: SW.run("s", TMP / "s.json", dict, p, script="x", progress=False))]
    s["lib.sweep.load"] = [Case("file", lambda p: p.name, files(TMP, ckpt_file()), lambda p: SW.load(p))]
    s["lib.recipe.shard_report"] = [Case("range", "world", whole_numbers(1), lambda w: RC.shard_report(8, 4, w))]
    s["lib.recipe.rank_slice"] = [
        Case("range", "world", whole_numbers(1), lambda w: RC.rank_slice(8, 0, w)),
        Case("range", "rank", st.sampled_from([-1, 2, 5, 0.5, None]), lambda r: RC.rank_slice(8, r, 2))]
    s["lib.train.shard"] = [Case("range", "world", st.sampled_from([0, -2, 2.5, None, "2"]),
                                 lambda w: m("lib.train").shard(torch.zeros(4, 2), 0, w)),
                            Case("range", "rank", st.sampled_from([-1, 2, 5, 0.5, None]),
                                 lambda r: m("lib.train").shard(torch.zeros(4, 2), r, 2))]
    s["lib.icm.patchgan.aligned_patches"] = [
        Case("shape", "x_hat", images("shape", 64), lambda x: PG.aligned_patches(IMG64, x, 1, 32)),
        Case("range", "k", whole_numbers(1), lambda k: PG.aligned_patches(IMG64, IMG64, k, 32)),
        Case("range", "size", whole_numbers(1, 64), lambda v: PG.aligned_patches(IMG64, IMG64, 1, v))]
    s["lib.lseg.data.to_tensor_images"] = [
        Case("shape", "images", st.sampled_from([(2, 3, 16, 16), (16, 16), (2, 16, 16, 4)]).map(
            lambda sh: np.zeros(sh, np.uint8)), LT.to_tensor_images)]
    s["lib.storage.assets.photos"] = [Case("range", "min_side", whole_numbers(1), lambda v: m(
        "lib.storage.assets").photos(min_side=v))]
    s["lib.display.colab_time.colab_time"] = [Case("type", "chapter", st.sampled_from(["4", "01_icm", 1, None, ""]),
                                                    lambda c: m("lib.display.colab_time").colab_time(c))]
    return s


NAN_, INF_ = float("nan"), float("inf")


def _with_nan(t, v):
    t = t.clone()
    t[1, 3] = v
    return t


def _flip(b, i):
    s = b["strings"][0][0]
    i %= len(s)
    return s[:i] + bytes([s[i] ^ 0x5A]) + s[i + 1:]


@functools.cache
def _other_codec(seed):
    from lib.icm import codec as C

    torch.manual_seed(seed + 10)
    c = C.build_codec(8, 12).eval()
    with torch.no_grad():
        for p in c.entropy_bottleneck.parameters():
            p.add_(torch.randn_like(p))
    c.update(force=True)
    return c


@functools.cache
def _disc():
    from lib.icm.patchgan import PatchDiscriminator

    torch.manual_seed(0)
    return PatchDiscriminator(3, 4, 2).eval()


def _ft_cfg(**kw):
    from lib.icm import decoder_finetuning as FT

    return FT.FinetuneConfig(**{"steps": 1, "batch": 2, "crop": 32, "pool": 2, "k": 1, "patch": 32, "ndf": 4,
                                "lr_g": 1e-2, **kw})


# --- what the sweep leaves out, and why ------------------------------------------------------------------------------
_PLOT = "draws or tabulates results that lib itself computed (no learner input reaches it unchecked)"
_RUN = "runs a whole chapter step from a frozen configuration; its parts are swept one by one"
_NET = "downloads from the network; the download path is tested in tests/test_download.py"
_MODULE = "a building block of a model whose forward is swept (it sees only what that forward checked)"
_CONFIG = "a frozen configuration (data); lib.scale.pick and the chapters' tests check its values"
_VALIDATOR = "the validation layer itself: each check is property-tested in tests/test_validate.py"
_ERROR = "an error class"
_NOARG = "takes no learner input (reads the installed course data or the environment)"
_INTERNAL = "a step inside a swept function, with that function's already-checked arguments"
_FETCH_STEP = ("a step of lib.storage.download.fetch, with the arguments fetch checked; tested through fetch in "
               "tests/test_download.py")
_READER = ("reads a file in a published format; tests/test_formats_*.py and the chapter tests feed it real and "
           "damaged files")

EXCLUDED = {
    # the paper recipes: torchrun entry points and steps inside them (rehearsed by make paper-rehearsal and
    # tests/test_recipe.py), run from a frozen configuration
    **dict.fromkeys(["lib.lseg.recipe.config", "lib.lseg.recipe.results", "lib.lseg.recipe.require",
                     "lib.lseg.pascal.load_splits", "lib.lseg.recipe.train_fold", "lib.lseg.pascal.evaluate_fold",
                     "lib.lseg.recipe.cmd_train", "lib.lseg.recipe.load_trained", "lib.lseg.recipe.cmd_evaluate",
                     "lib.lseg.recipe.plan", "lib.lseg.recipe.estimate", "lib.lseg.recipe.main"], _RUN),
    **dict.fromkeys(["lib.lseg.recipe.fold_key", "lib.lseg.recipe.work_file", "lib.lseg.pascal.episode_batches",
                     "lib.lseg.pascal.episode_counts", "lib.lseg.training.episode_loss", "lib.lseg.recipe.build_model", "lib.lseg.recipe.optimizer", "lib.recipe.results_key",
                     "lib.recipe.work_file", "lib.recipe.write_result", "lib.recipe.read_result",
                     "lib.recipe.all_reduce_sum", "lib.recipe.gather_in_order"], _INTERNAL),
    **dict.fromkeys(["lib.recipe.setup", "lib.recipe.local_rank", "lib.recipe.barrier", "lib.recipe.log"], _NOARG),
    "lib.recipe.ResultsMissing": _ERROR,
    "lib.storage.cache.read_committed": "reads the course's own folders of committed results by a key the library "
                                        "makes; tests/test_committed_runs.py feeds it a changed file",
    **dict.fromkeys(["lib.icm.experiment.finetune_key", "lib.spoof.experiment.tiny_keys"], _INTERNAL),
    "lib.sweep.SweepError": _ERROR,
    # the diagnosis sweeps: one point of a committed sweep, from a parameter dict that scripts/sweeps.py declares
    # (tests/test_sweeps*.py re-run one cheap point of each and compare it with the committed value)
    **dict.fromkeys([f"lib.{p}.diagnosis.{f}" for p, names in (
        ("icm", ["score_split", "run_config", "curves", "measure", "point", "points", "meta"]),
        ("spoof", ["points", "summarise", "point", "point_1thread", "meta", "run_sweep", "load", "rows",
                   "sign_vs_strength"]),
        ("lseg", ["dataset", "points", "model_for", "point", "point_1thread", "meta", "run_sweep", "load",
                  "paired", "paired_power", "seeds_needed", "power"])) for f in names],
        "one point of a committed diagnosis sweep, or a summary of its file; tests/test_sweeps*.py re-run a point "
        "and check the statistics"),
    **dict.fromkeys(["lib.sweep.find", "lib.sweep.one_thread", "lib.sweep.table", "lib.sweep.close", "lib.sweep.point_id"],
                    "reads or compares a sweep file that lib.sweep.load checked"),
    **dict.fromkeys(["lib.lseg.config.Run", "lib.lseg.config.Part", "lib.lseg.config.TinyData",
                     "lib.lseg.config.PascalFold", "lib.lseg.config.OfficialDemo", "lib.lseg.config.PaperRecipe",
                     "lib.lseg.experiment.fold_key"], _CONFIG),
    **dict.fromkeys(["lib.lseg.experiment.scorecard", "lib.lseg.experiment.glance"], _PLOT),
    **dict.fromkeys(["lib.spoof.recipe.config", "lib.spoof.recipe.require", "lib.spoof.recipe.subset",
                     "lib.spoof.recipe.train_cm", "lib.spoof.recipe.evaluate_cm", "lib.spoof.recipe.cmd_train",
                     "lib.spoof.recipe.load_trained", "lib.spoof.recipe.cmd_evaluate", "lib.spoof.recipe.plan",
                     "lib.spoof.recipe.estimate", "lib.spoof.recipe.main"], _RUN),
    **dict.fromkeys(["lib.spoof.recipe.cm_name", "lib.spoof.recipe.load", "lib.spoof.recipe.chunk_batches",
                     "lib.spoof.recipe.lr_factor", "lib.spoof.recipe.average_into", "lib.spoof.recipe.work"],
                    _INTERNAL),
    **dict.fromkeys(["lib.spoof.config.SpoofPaperConfig", "lib.spoof.config.PaperTraining"], _CONFIG),
    "lib.icm.config.ICMPaperConfig": _CONFIG,
    **dict.fromkeys(["lib.icm.recipe.get_config", "lib.icm.recipe.require", "lib.icm.recipe.train_base",
                     "lib.icm.recipe.finetune", "lib.icm.recipe.load_trained", "lib.icm.recipe.cmd_train",
                     "lib.icm.recipe.cmd_evaluate", "lib.icm.recipe.main", "lib.icm.recipe_results.evaluate_all",
                     "lib.icm.recipe_results.estimate", "lib.icm.recipe_results.plan"], _RUN),
    **dict.fromkeys(["lib.icm.recipe.node_first", "lib.icm.recipe.LossModule", "lib.icm.recipe.run_file",
                     "lib.icm.recipe_results.grid", "lib.icm.recipe_results.poster_rows"], _INTERNAL),
    "lib.icm.recipe_results.scorecard": _PLOT,
    "lib.icm.recipe.ZipPhotos": _READER,
    **dict.fromkeys(["lib.lseg.weights.hub_file", "lib.lseg.weights.build_clip"], _NET),
    "lib.lseg.weights.hub_url": "joins the course's own constant repository, revision and file names into a URL",
    "lib.lseg.weights.hub_offline_for_bundled_model": _NOARG,
    "lib.spoof.partialspoof_labels.example_labels": _NOARG,
    "lib.spoof.paper_numbers.eer_range": _NOARG,
    "lib.spoof.paper_numbers.table2": "looks a split up in the paper's transcribed table (an unknown one is refused)",
    "lib.icm.machine.maskrcnn_coco": _MODULE,
    "lib.icm.machine.load_coco_weights": ("loads a checked download's state dict through checkpoint.load_state (swept "
                                          "through lib.storage.checkpoint.load; tests/test_formats_icm.py feeds it "
                                          "the publisher's layout)"),
    **dict.fromkeys(["lib.spoof.partialspoof_labels.read_seglab", "lib.storage.download.checked"], _READER),
    **dict.fromkeys(["lib.spoof.partialspoof_labels.public_labels", "lib.spoof.partialspoof.utterance_segments"], _INTERNAL),
    # storage, environment, provenance
    **dict.fromkeys(["lib.storage.assets.AssetMissing", "lib.storage.checkpoint.CheckpointError",
                     "lib.colab.DriveNotMounted", "lib.storage.errors.DownloadError",
                     "lib.storage.errors.BadURLError", "lib.storage.errors.ChecksumError",
                     "lib.lseg.official.OfficialCheckpointError", "lib.lseg.weights.WeightsError",
                     "lib.scale.ScaleNotBuilt", "lib.validate.StorageError", "lib.storage.errors.NoRoom"], _ERROR),
    **dict.fromkeys(["lib.lseg.metrics.check_class_indices", "lib.lseg.text.check_labels",
                     "lib.spoof.metrics.check_trials", "lib.storage.checkpoint.load_state",
                     "lib.spoof.ssl_res1d.check_labels", "lib.spoof.ssl_res1d.check_lengths"], _VALIDATOR),
    **dict.fromkeys(["lib.display.provenance.Banner", "lib.display.provenance.banner",
                     "lib.display.colab_time.ColabTime", "lib.display.colab_time.report"], _PLOT),
    "lib.display.colab_time.fp32_peak": "looks a GPU name (torch.cuda.get_device_name) up in a table; None if absent",
    **dict.fromkeys(["lib.lseg.training.fold_text_encoder", "lib.lseg.training.train_fold",
                     "lib.lseg.experiment.tiny_data", "lib.lseg.experiment.tiny_runs"], _RUN),
    **dict.fromkeys(["lib.runtime.commit", "lib.scale.label_in_force", "lib.storage.cache.downloads_dir"], _NOARG),
    **dict.fromkeys(["lib.storage.errors.size_text", "lib.storage.errors.by_hand", "lib.storage.errors.explain",
                     "lib.storage.errors.first_sentence"], _INTERNAL),
    **dict.fromkeys(["lib.storage.errors.room", "lib.storage.hashes.digests", "lib.storage.verification.Expected",
                     "lib.storage.verification.records", "lib.storage.verification.record_first_use",
                     "lib.storage.verification.manifest", "lib.storage.verification.refuse_web_page",
                     "lib.storage.verification.check", "lib.storage.transfer.sidecar", "lib.storage.transfer.discard",
                     "lib.storage.transfer.get", "lib.storage.drive.download"], _FETCH_STEP),
    **dict.fromkeys(["lib.storage.assets.tuxpaint_stamps_dir", "lib.storage.assets.mate_nature_photos",
                     "lib.storage.assets.require", "lib.storage.download.downloads", "lib.runtime.versions",
                     "lib.runtime.hardware", "lib.scale.current", "lib.scale.explicit", "lib.scale.rehearsal",
                     "lib.train.distributed", "lib.display.widgets.is_live"], _NOARG),
    **dict.fromkeys(["lib.storage.download.fetch", "lib.storage.download.fetch_drive", "lib.storage.hashes.verify",
                     "lib.lseg.weights.openai_clip", "lib.lseg.weights.timm_vit", "lib.lseg.official.fetch_official",
                     "lib.icm.codec.pretrained_init", "lib.icm.data.download_images", "lib.icm.kodak.kodak",
                     "lib.icm.coco.coco_val", "lib.icm.coco.coco_train", "lib.icm.coco.coco_annotations",
                     "lib.icm.machine.maskrcnn_url", "lib.icm.machine.MaskRCNN", "lib.spoof.ssl_res1d.xlsr53_url",
                     "lib.spoof.ssl_res1d.xlsr53_params", "lib.spoof.ssl_res1d.build_ssl_res1d",
                     "lib.lseg.text.CLIPText", "lib.lseg.text.MiniLMText", "lib.colab.use_drive"], _NET),
    **dict.fromkeys([n for n in public_api() if n.startswith(("lib.icm.plots.", "lib.lseg.plots.", "lib.lseg.tables.",
                                                               "lib.spoof.plots."))], _PLOT),
    **dict.fromkeys(["lib.display.provenance.scale_label", "lib.display.provenance.stamp",
                     "lib.display.provenance.caption", "lib.display.provenance.Scorecard",
                     "lib.display.provenance.Glance", "lib.display.provenance.glue", "lib.display.widgets.switcher",
                     "lib.display.widgets.live", "lib.display.widgets.explore", "lib.display.widgets.audio"], _PLOT),
    **dict.fromkeys([n for n in public_api() if n.startswith("lib.validate.")], _VALIDATOR),
    **dict.fromkeys(["lib.scale.ScaleConfig", "lib.scale.pick", "lib.scale.picked", "lib.icm.config.ICMConfig",
                     "lib.icm.base.BaseConfig", "lib.icm.decoder_finetuning.FinetuneConfig", "lib.lseg.config.LSegConfig",
                     "lib.lseg.model.Architecture", "lib.spoof.config.SpoofConfig", "lib.icm.base.config_dict",
                     "lib.icm.experiment.finetune_grid", "lib.spoof.config.Training", "lib.spoof.config.BuiltCorpus",
                     "lib.spoof.config.RealSubsets", "lib.spoof.config.TinyCM", "lib.spoof.config.SSLRes1D",
                     "lib.icm.config.CommittedBase", "lib.icm.config.CompressAIBase", "lib.icm.config.ClassifierMachine",
                     "lib.icm.config.MaskRCNNMachine", "lib.icm.config.HeldOut", "lib.icm.config.KodakCoco",
                     "lib.icm.config.Run", "lib.icm.config.Runs", "lib.icm.paper_numbers.Row",
                     "lib.icm.paper_numbers.main_row"], _CONFIG),
    **dict.fromkeys(["lib.icm.base.train_base", "lib.icm.experiment.load_base", "lib.icm.experiment.photos_split",
                     "lib.icm.experiment.stamps_split", "lib.icm.experiment.eval_images",
                     "lib.icm.experiment.task_images", "lib.icm.experiment.eval_sets",
                     "lib.icm.experiment.describe_eval_sets", "lib.icm.experiment.run_finetune",
                     "lib.icm.experiment.base_codec", "lib.icm.experiment.train_base_gpu",
                     "lib.icm.experiment.confident", "lib.icm.experiment.top_probability",
                     "lib.icm.experiment.task_score", "lib.icm.experiment.zoom", "lib.icm.evaluate.evaluate",
                     "lib.icm.data.load_photos", "lib.icm.data.load_stamps", "lib.icm.data.random_scenes",
                     "lib.icm.data.fixed_scenes", "lib.icm.data.split", "lib.icm.data.split_stamps",
                     "lib.icm.data.grid_crops", "lib.icm.machine.build", "lib.lseg.data.load_stamps",
                     "lib.lseg.data.backgrounds", "lib.lseg.data.label_names", "lib.lseg.data.compose",
                     "lib.lseg.data.make_split", "lib.lseg.data.tiny_dataset", "lib.lseg.evaluation.pixel_embeddings",
                     "lib.lseg.evaluation.segment_with", "lib.lseg.evaluation.all_labels_protocol",
                     "lib.lseg.evaluation.binary_protocol", "lib.lseg.evaluation.best_constant_label",
                     "lib.lseg.evaluation.removal", "lib.lseg.evaluation.with_other", "lib.lseg.evaluation.coarse",
                     "lib.lseg.evaluation.evaluate_tiny_run", "lib.lseg.evaluation.tiny_results",
                     "lib.lseg.evaluation.seed_stats", "lib.lseg.evaluation.removal_per_run",
                     "lib.lseg.evaluation.nearest_same", "lib.lseg.evaluation.remove_label_demo",
                     "lib.lseg.pascal.fold_classes", "lib.lseg.pascal.load_split", "lib.lseg.pascal.episodes",
                     "lib.lseg.pascal.binary_target", "lib.lseg.pascal.episode_sampler",
                     "lib.lseg.pascal.binary_logits", "lib.lseg.pascal.evaluate", "lib.lseg.experiment.fold_experiment",
                     "lib.lseg.training.batch_sampler", "lib.lseg.training.text_encoder", "lib.lseg.training.run_name",
                     "lib.lseg.training.work_path", "lib.lseg.training.train_tiny", "lib.lseg.training.pack",
                     "lib.lseg.training.manifest", "lib.lseg.training.load_tiny", "lib.spoof.data.tuxpaint_clips",
                     "lib.spoof.data.vad_regions", "lib.spoof.data.vocode", "lib.spoof.data.build_base",
                     "lib.spoof.data.make_partial", "lib.spoof.data.build_sets", "lib.spoof.countermeasure.make_batches",
                     "lib.spoof.countermeasure.loss_fn", "lib.spoof.countermeasure.train_cm", "lib.spoof.countermeasure.score",
                     "lib.spoof.countermeasure.cams", "lib.spoof.countermeasure.run", "lib.spoof.experiment.tiny_base",
                     "lib.spoof.experiment.tiny_sets", "lib.spoof.experiment.tiny_run", "lib.spoof.experiment.tiny_all",
                     "lib.spoof.partialspoof_subset.real_subset", "lib.spoof.partialspoof_subset.real_sets", "lib.spoof.partialspoof_subset.subset_key", "lib.spoof.experiment.sets",
                     "lib.spoof.experiment.chapter_run", "lib.spoof.experiment.real_run",
                     "lib.spoof.countermeasure.load_cm", "lib.spoof.partialspoof.items",
                     "lib.spoof.partialspoof.ps_protocol_path", "lib.spoof.partialspoof.la_protocol_name",
                     "lib.spoof.partialspoof.choose"], _RUN),
    **dict.fromkeys(["lib.icm.data.composite", "lib.lseg.data.clean_name", "lib.lseg.data.tint",
                     "lib.icm.codec.from_compressai_checkpoint",
                     "lib.icm.codec.build_codec", "lib.icm.codec.state_hashes",
                     "lib.icm.decoder_finetuning.freeze_for_finetuning", "lib.icm.decoder_finetuning.make_loss",
                     "lib.icm.decoder_finetuning.latent_pool", "lib.icm.decoder_finetuning.head_state", "lib.icm.decoder_finetuning.with_head",
                     "lib.icm.base.make_loss", "lib.icm.base.lr_factor", "lib.icm.machine.task_distortion",
                     "lib.icm.machine.task_key", "lib.icm.machine.binary_masks", "lib.icm.patchgan.receptive_field",
                     "lib.icm.patchgan.windows", "lib.icm.decoder_finetuning.generator_loss",
                     "lib.icm.decoder_finetuning.discriminator_loss", "lib.lseg.training.poly_schedule",
                     "lib.lseg.training.pixel_loss", "lib.spoof.rcq.frame_of", "lib.spoof.rcq.front_trim",
                     "lib.spoof.rcq.rcq_sums", "lib.spoof.rcq.rcq_from_sums", "lib.spoof.gradcam.temporal_cam",
                     "lib.spoof.gradcam.gradcam_reference", "lib.spoof.ssl_res1d.n_frames",
                     "lib.spoof.ssl_res1d.tiny_cm", "lib.lseg.text.TextEncoder", "lib.lseg.text.RandomText",
                     "lib.icm.coco.CocoSubset"], _INTERNAL),
    **dict.fromkeys(["lib.lseg.official.split_official_state_dict", "lib.lseg.official.from_official_state_dict",
                     "lib.lseg.official.convert_official_checkpoint", "lib.lseg.weights.torchscript_state_dict",
                     "lib.spoof.partialspoof.read_protocol", "lib.spoof.partialspoof.read_audio",
                     "lib.spoof.partialspoof_labels.read_vad", "lib.spoof.partialspoof_labels.kind_of_code",
                     "lib.spoof.partialspoof_labels.widen_transitions", "lib.spoof.partialspoof_labels.n_label_frames"], _READER),
    "lib.train.fit": "tested for bad checkpoints, NaN losses and step counts in tests/test_validate.py",
    "lib.runtime.setup": ("tested for COURSE_THREADS in tests/test_validate.py; its other arguments come from the "
                          "chapter's first cell"),
    "lib.runtime.pick_device": "picks cuda or cpu; a device name torch does not know is torch's own clear error",
    "lib.lseg.training.predict": "tested for 0-255 floats and uint8 in tests/test_validate.py",
    "lib.icm.machine.EfficientNetLite0": ("its input comes from lib.icm.machine.outputs, which the chapters feed "
                                          "decoded images"),
    "lib.icm.machine.outputs": "sees only images the codec decoded (clamped to [0, 1])",
    "lib.icm.machine.task_fidelity": "sees only images the codec decoded (clamped to [0, 1])",
    "lib.icm.machine.top1_agreement": "sees only images the codec decoded (clamped to [0, 1])",
    "lib.icm.machine.task_scores": "sees only images the codec decoded (clamped to [0, 1])",
    "lib.icm.machine.pseudo_map": "scores detections lib's Mask R-CNN made; tested in tests/test_icm.py",
    **dict.fromkeys(["lib.icm.codec.ste_round", "lib.icm.codec.ste_clamp", "lib.lseg.model.ProjectReadout",
                     "lib.lseg.model.Transpose", "lib.lseg.model.ResidualConvUnit", "lib.lseg.model.FeatureFusionBlock",
                     "lib.lseg.spatial_regularization.SpatialRegularization", "lib.spoof.ssl_res1d.LogSpecFrontend",
                     "lib.spoof.ssl_res1d.SSLFrontend", "lib.spoof.ssl_res1d.SEBlock1D",
                     "lib.spoof.ssl_res1d.Res1DBlock", "lib.spoof.ssl_res1d.P2SGradHead"], _MODULE),
}

API = public_api()
SWEEP = _sweep()
ERRORS = lib_errors()


def coverage() -> tuple[list[str], list[str]]:
    """The coverage lines (function -> kinds tried, or the reason it is left out) and the functions with neither."""
    lines, missing = [], []
    for name in API:
        if name in SWEEP:
            kinds = sorted({c.kind for c in SWEEP[name]})
            lines.append(f"{name} -> {', '.join(kinds)}")
        elif name in EXCLUDED:
            lines.append(f"{name} -> excluded: {EXCLUDED[name]}")
        else:
            missing.append(name)
    return lines, missing


def test_every_public_function_has_an_entry(capsys):
    lines, missing = coverage()
    swept = sum(n in SWEEP for n in API)
    text = "\n".join([f"hostile-input sweep: {swept} of {len(API)} public names swept, "
                      f"{len(API) - swept - len(missing)} excluded with a reason", *lines])
    out = Path(__file__).resolve().parent.parent / "artifacts" / "hostile-coverage.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    with capsys.disabled():
        print("\n" + text)
    assert not missing, (f"public functions with no entry in the sweep (sweep them or exclude them with a "
                         f"reason): {missing}")
    assert not (set(SWEEP) - set(API)), f"sweep entries for names lib no longer has: {sorted(set(SWEEP) - set(API))}"
    stale = sorted(set(EXCLUDED) - set(API))
    assert not stale, f"exclusions for names lib no longer has: {stale}"


@pytest.mark.parametrize("name", sorted(SWEEP))
def test_sweep(name):
    cases = SWEEP[name]
    failures = []

    @SWEEP_SETTINGS
    @given(st.sampled_from(range(len(cases))).flatmap(lambda i: st.tuples(st.just(i), cases[i].draw)))
    def run(drawn):
        i, value = drawn
        try:
            judge(cases[i], value, ERRORS)
        except Verdict as v:
            failures.append(str(v))

    run()
    assert not failures, f"{name}:\n" + "\n".join(sorted(set(failures))[:8])


# --- each reported case, on its own ----------------------------------------------------------------------------------
def test_segment_times_as_text_are_refused_not_counted():
    from lib.spoof import rcq
    from lib.spoof.partialspoof_labels import segment_labels

    with pytest.raises(ValueError, match=r"segments\[0\].*numbers of seconds, not text"):
        rcq([CAM], [[("0.0", "1.0", "BS")]])
    with pytest.raises(ValueError, match="not text"):
        segment_labels([("0", "0.5", "SS")], 1.0)


def test_segment_labels_refuses_a_segment_ending_after_the_utterance():
    from lib.spoof.partialspoof_labels import segment_labels

    with pytest.raises(ValueError, match=r"ends at 4 s, after the end of the 2 s utterance"):
        segment_labels([(0.0, 1.0, "BS"), (1.0, 4.0, "SS")], 2.0)
    assert segment_labels([(0.0, 1.0, "BS"), (1.0, 2.0, "SS")], 2.0).tolist() == [1] * 50 + [0] * 50


def test_spoof_cm_refuses_lengths_longer_than_the_batch():
    x = torch.rand(2, 4000) - 0.5
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 4000\].*\[100, 4001\]"):
        cm()(x, torch.tensor([4001, 100]))
    assert torch.equal(cm()(x, torch.tensor([4000, 4000])), cm()(x))


def test_psnr_refuses_0_255_images_and_mismatched_shapes():
    from lib.icm.evaluate import psnr

    x, y = IMG32, IMG32.clamp(0.05, 0.95)
    assert psnr(x, y) == pytest.approx(float(-10 * torch.log10(((x - y) ** 2).mean())))
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\].*255"):
        psnr(x * 255, y * 255)
    with pytest.raises(ValueError, match=r"x \(1, 3, 32, 32\) and x_hat \(1, 3, 32, 1\) must have the same shape"):
        psnr(x, y[..., :1])


def test_jpeg_refuses_values_above_one():
    from lib.icm.evaluate import jpeg

    with pytest.raises(ValueError, match=r"images\[0\] must lie in \[0, 1\]"):
        jpeg([IMG32 * 1.5], 75)
    out, bpp = jpeg([IMG32], 75)
    assert out[0].shape == IMG32.shape and bpp > 0


def test_decompress_all_refuses_a_wrong_shape_and_another_codecs_bitstream():
    from lib.icm import decompress_all

    assert decompress_all(codec(), [bitstream()])[0].shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"\['shape'\] is \(4, 4\), but it was coded at latent shape 2x2"):
        decompress_all(codec(), [{**bitstream(), "shape": (4, 4)}])
    with pytest.raises(ValueError, match="written by another codec"):
        decompress_all(_other_codec(0), [bitstream()])


def test_a_codec_without_tables_says_call_update():
    from lib.icm import codec as C

    fresh = C.build_codec(8, 12).eval()
    for call in (lambda: C.compress_all(fresh, [IMG32[0]]), lambda: C.decompress_all(fresh, [bitstream()]),
                 lambda: fresh.compress(IMG32)):
        with pytest.raises(ValueError, match=r"codec.update\(force=True\)"):
            call()


def test_nan_label_embeddings_are_refused():
    T = torch.randn(2, lseg().cfg.out_c)
    T[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"T holds \d+ NaN or inf value"):
        lseg()(IMG64, T)


def test_finetune_batch_larger_than_its_pool_is_refused():
    from lib.icm import decoder_finetuning as FT

    with pytest.raises(ValueError, match=r"cfg.batch must be between 1 and 2, got 4.*raise pool or lower batch"):
        FT.finetune(codec(), [("a", IMG64[0])], _ft_cfg(batch=4, pool=2))


def test_duplicate_offered_labels_are_refused():
    from lib.lseg.training import evaluate, lseg_loss, remap

    y = torch.tensor([[1, 3], [3, 7]])
    assert remap(y, [3, 1]).tolist() == [[1, 0], [0, 255]]
    for call in (lambda: remap(y, [3, 1, 3]), lambda: lseg_loss(torch.randn(3, 8), [3, 1, 3]),
                 lambda: evaluate(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), [3, 3])):
        with pytest.raises(ValueError, match=r"offered repeats \[3\]"):
            call()


def test_float64_and_uint8_tensors_before_a_convolution():
    x = torch.rand(2, 4000, dtype=torch.float64) - 0.5
    assert torch.equal(cm()(x), cm()(x.float()))                 # float64 samples: read as float32
    with pytest.raises(ValueError, match="wave holds torch.uint8 samples|wave holds uint8"):
        cm()((x * 100).to(torch.uint8))
    with pytest.raises(ValueError, match=r"x holds uint8 values.*x.float\(\)"):
        _disc()((IMG64 * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"got uint8.*/ 255"):
        codec()((IMG32 * 255).to(torch.uint8))


def test_checkerboard_period_float_and_zero():
    from lib.icm import checkerboard_score

    assert checkerboard_score(IMG64, 4.0) == checkerboard_score(IMG64, 4)
    with pytest.raises(ValueError, match="period must be at least 2, got 0"):
        checkerboard_score(IMG64, 0)
    with pytest.raises(TypeError, match=r"period must be a whole number, got 4.5"):
        checkerboard_score(IMG64, 4.5)


def test_sample_rate_zero_is_refused():
    from lib.spoof.audio import batch_waveforms, load_audio, resample

    wave = np.full(4000, 0.1, np.float32)
    for call in (lambda: resample(wave, 0), lambda: batch_waveforms([wave], 0), lambda: load_audio(wav_file(), 0)):
        with pytest.raises(ValueError, match=r"sr(_in)? must be at least 1, got 0: the sample rate in Hz"):
            call()


def test_p2sgrad_loss_refuses_float_and_out_of_range_labels():
    from lib.spoof.ssl_res1d import p2sgrad_loss

    s = torch.rand(3, 2)
    assert p2sgrad_loss(s, torch.tensor([0, 1, 1])) == pytest.approx(
        float(((s - torch.tensor([[1.0, 0], [0, 1], [0, 1]])) ** 2).mean()))
    with pytest.raises(ValueError, match=r"labels must hold integer class indices in \[0, 2\), got torch.float32"):
        p2sgrad_loss(s, torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), got values in \[0, 2\]"):
        p2sgrad_loss(s, torch.tensor([0, 2, 1]))


def test_gradcam_layer_off_the_forward_path():
    from lib.spoof import gradcam

    with pytest.raises(ValueError, match=r"layer Conv1d was not run by the model's forward pass.*model.fc"):
        gradcam(cm(), torch.nn.Conv1d(8, 8, 1), torch.rand(1, 4000) - 0.5, 1)


def test_lseg_architecture_unknown_keyword_names_the_near_one():
    import lib.lseg as L

    with pytest.raises(TypeError,
                       match=r"unknown keyword\(s\) 'depht' \(did you mean 'depth'\?\) for lib.lseg.architecture"):
        L.architecture("tiny", depht=2)
    assert L.architecture("tiny", depth=3).depth == 3


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_full_disk_and_read_only_cache_name_the_path(code):
    from lib.storage import cache, checkpoint
    from lib.validate import StorageError

    target = TMP / "fault" / "x.pt"
    with pytest.raises(StorageError, match=r"cannot write .*x\.pt: .*(full|cannot be written).*COURSE_CACHE"):
        _save_under_fault(code)
    with pytest.raises(StorageError, match=r"cannot write .*hostile-.*\.pt"):
        _memo_under_fault(code)
    assert checkpoint.save({"a": 1}, target) == target and cache.memo("hostile-ok", lambda: 2) == 2


def test_names_that_become_paths_stay_in_their_folder():
    from lib.storage import cache
    from lib.spoof.partialspoof import extract

    root = _cache_root()
    assert cache.work_path("../../x").resolve().is_relative_to(root / "work")
    assert cache.memo("../../escape", lambda: 5) == 5 and not (root.parent.parent / "escape").exists()
    with pytest.raises(ValueError, match=r"parts='\.\./x' would leave the folder"):
        cache.cache_dir("..", "x")
    with pytest.raises(ValueError, match=r"wanted key '/\.\./x\.wav'.*plain file name"):
        extract(_tar_with("a/x.wav"), {"/../x.wav": TMP / "o.wav"})
    with pytest.raises(ValueError, match=r"member '\.\./\.\./evil'.*would leave the folder"):
        _pascal_extract("../../evil")


def test_download_file_name_stays_in_the_download_folder():
    from lib.storage import download

    src = TMP / "src.bin"
    src.write_bytes(b"payload")
    folder = TMP / "downloads"
    for name in ("../x.bin", "/tmp/abs.bin", "a/b.bin", ".."):
        with pytest.raises(ValueError, match=r"filename=.* must be a plain file name"):
            download.fetch(src.as_uri(), reader="text", filename=name, cache_dir=folder, progress=False)
    assert not (TMP / "x.bin").exists()
