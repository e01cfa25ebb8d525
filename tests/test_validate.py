"""Bad input across lib: one test per finding, plus a property-based test of each validator."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lib import validate
from lib.lseg.metrics import check_class_indices
from lib.lseg.text import check_labels
from lib.spoof.audio import MIN_SAMPLES, check_waveform
from lib.spoof import ssl_res1d
from lib.spoof.metrics import check_trials
from lib.spoof.rcq import check_cam, check_segments

torch.set_num_threads(1)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def small_codec(seed=0, N=8, M=12):
    from lib.icm import codec as C

    torch.manual_seed(seed)
    codec = C.build_codec(N, M).eval()
    codec.update(force=True)
    return codec


# --- images -----------------------------------------------------------------------------------------------------
def test_compress_all_refuses_nan_instead_of_hanging():
    from lib.icm import compress_all

    x = torch.rand(3, 32, 32)
    x[0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match=r"images\[0\] holds 1 NaN or inf"):
        compress_all(small_codec(), [x])


def test_compress_all_refuses_a_batch_item():
    from lib.icm import compress_all

    with pytest.raises(ValueError, match=r"batch of 2 images.*list\(batch\)"):
        compress_all(small_codec(), [torch.rand(2, 3, 32, 32)])


def test_codec_takes_float64_numpy_as_float32():
    codec = small_codec()
    x = np.random.default_rng(0).random((1, 3, 32, 32))  # float64, numpy's default
    out = codec.compress(x)
    ref = codec.compress(torch.from_numpy(x).float())
    assert out["strings"] == ref["strings"]


def test_decompress_all_refuses_damaged_bitstreams():
    from lib.icm import compress_all, decompress_all

    codec = small_codec()
    bs = compress_all(codec, [torch.rand(3, 32, 32)])
    assert decompress_all(codec, bs)[0].shape == (1, 3, 32, 32)
    s = bs[0]["strings"][0][0]
    for damaged in (s[:-1], bytes([s[0] ^ 0xFF]) + s[1:]):
        bad = [{**bs[0], "strings": [[damaged]]}]
        with pytest.raises(ValueError, match=r"bitstreams\[0\] is damaged.*Re-encode"):
            decompress_all(codec, bad)


@pytest.fixture(scope="module")
def lseg():
    import lib.lseg as L

    torch.manual_seed(0)
    return L.LSeg(L.config("tiny", arch="bottleneck", depth=2), text_encoder=L.RandomText(384))


def test_lseg_refuses_uint8_and_0_255(lseg):
    with pytest.raises(ValueError, match=r"float tensor in \[0, 1\], got uint8.*/ 255"):
        lseg(torch.zeros(1, 3, 64, 64, dtype=torch.uint8), ["a", "b"])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*255"):
        lseg.segment(torch.rand(1, 3, 64, 64) * 255, ["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        lseg(torch.full((1, 3, 64, 64), float("nan")), ["a", "b"])


def test_lseg_predict_does_not_divide_floats_again(lseg):
    from lib.lseg.training import predict, to_tensor_images

    T = torch.randn(3, 384)
    u8 = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    assert torch.equal(predict(lseg, u8.astype(np.float32) / 255, T), predict(lseg, u8, T))
    assert torch.equal(to_tensor_images(u8), torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predict(lseg, u8.astype(np.float32), T)          # 0-255 floats
    with pytest.raises(ValueError, match="channels-first"):
        to_tensor_images(np.zeros((2, 3, 64, 64), np.uint8))


def test_checkerboard_score_refuses_nan():
    from lib import icm

    img = np.random.default_rng(0).random((64, 64, 3))
    img[3, 3, 0] = np.nan
    with pytest.raises(ValueError, match="image holds 1 NaN"):
        icm.checkerboard_score(img, 4)


def _ft_cfg(**kw):
    from lib.icm import decoder_finetuning as FT

    return FT.FinetuneConfig(**{"steps": 1, "batch": 2, "crop": 32, "pool": 2, "k": 1, "patch": 32, "ndf": 4,
                                "lr_g": 1e-2, **kw})


def test_finetune_bad_photos_say_what_to_do():
    from lib.icm import decoder_finetuning as FT

    base, cfg = small_codec(), _ft_cfg()
    with pytest.raises(ValueError, match="train_photos is empty"):
        FT.finetune(base, [], cfg)
    hwc = np.zeros((48, 48, 3), np.uint8)
    with pytest.raises(ValueError, match=r"train_photos\[0\] \(a\) must have 3 colour channels.*channels-last"):
        FT.finetune(base, [("a", hwc)], cfg)
    with pytest.raises(ValueError, match=r"got uint8.*/ 255"):
        FT.finetune(base, [("a", torch.zeros(3, 48, 48, dtype=torch.uint8))], cfg)
    with pytest.raises(ValueError, match=r"24x24 pixels, smaller than the 32-px crop"):
        FT.finetune(base, [("a", torch.rand(3, 24, 24))], cfg)
    nan = torch.rand(3, 48, 48)
    nan[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        FT.finetune(base, [("a", nan)], cfg)


BAD_PIXELS = [float("nan"), float("inf"), -float("inf"), -0.5, 1.5, 255.0]
CORRUPT = st.one_of(st.none(), st.tuples(st.integers(0, 10**6), st.sampled_from(BAD_PIXELS)))


@FAST
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 2), st.just(3), st.sampled_from([16, 32]),
                                         st.sampled_from([16, 32])), elements=st.floats(0, 1, width=32)), CORRUPT)
def test_images_property(a, corrupt):
    """images() returns the very tensor for valid input and refuses (with the argument's name) everything else."""
    if corrupt is not None:
        a.reshape(-1)[corrupt[0] % a.size] = corrupt[1]
    x = torch.from_numpy(a)
    if corrupt is None:
        assert validate.images(x, stride=16, name="img") is x
        out64 = validate.images(x.double(), stride=16)
        assert out64.dtype == torch.float32 and torch.equal(out64, x)
    else:
        with pytest.raises(ValueError, match="img (holds|must lie)"):
            validate.images(x, stride=16, name="img")
    with pytest.raises(ValueError, match="got uint8"):
        validate.images(x.to(torch.uint8), name="img")
    with pytest.raises(ValueError, match="multiples of 64"):
        validate.images(x.clamp(0, 1).nan_to_num(0.5), stride=64)


# --- waveforms --------------------------------------------------------------------------------------------------
def test_spoof_cm_and_gradcam_refuse_nan_waveforms():
    from lib.spoof import gradcam, tiny_cm

    m = tiny_cm().eval()
    x = torch.randn(2, 16000)
    x[1, 100] = float("nan")
    with pytest.raises(ValueError, match="wave contains NaN or inf"):
        m(x)
    with pytest.raises(ValueError, match="wave contains NaN or inf"):
        gradcam(m, m.fc, x, 1)
    with pytest.raises(ValueError, match="NaN or inf"):
        gradcam(m, m.fc, [x[1]], 1)


def test_gradcam_target_out_of_range():
    from lib.spoof import gradcam, tiny_cm

    m = tiny_cm().eval()
    with pytest.raises(ValueError, match=r"target must be a class index in \[0, 2\).*got 2"):
        gradcam(m, m.fc, torch.randn(1, 16000), 2)
    assert gradcam(m, m.fc, torch.randn(2, 16000), [0, 1]).shape[0] == 2


def test_load_audio_missing_file_names_it(tmp_path):
    from lib.spoof import load_audio

    with pytest.raises(FileNotFoundError, match=r"no audio file at .*nope\.wav"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError, match="cannot read the audio file .*bad.wav"):
        load_audio(tmp_path / "bad.wav")


@FAST
@given(hnp.arrays(np.float32, st.integers(0, 1200), elements=st.floats(-1, 1, width=32)), CORRUPT)
def test_waveform_property(a, corrupt):
    """waveform() returns the same float32 samples for a valid utterance and names the problem otherwise."""
    if corrupt is not None and a.size:
        a[corrupt[0] % a.size] = corrupt[1]
    bad = not np.isfinite(a).all()
    if bad:
        with pytest.raises(ValueError, match="NaN or inf"):
            check_waveform(a)
    elif a.size < MIN_SAMPLES or np.abs(a).max() < 1e-5:
        with pytest.raises(ValueError, match="empty|receptive field|all-silence"):
            check_waveform(a)
    else:
        assert torch.equal(check_waveform(a), torch.from_numpy(a))
        assert torch.equal(check_waveform(a[None]), torch.from_numpy(a))
    with pytest.raises(ValueError, match="int16 samples.*32768"):
        check_waveform((a.clip(-1, 1) * 30000).astype(np.int16) if not bad else np.zeros(5, np.int16))


# --- label sets ---------------------------------------------------------------------------------------------------
def test_labels_equal_up_to_spaces_or_case_are_duplicates(lseg):
    with pytest.raises(ValueError, match=r"duplicate labels in labels: 'car' and 'car '"):
        lseg(torch.rand(1, 3, 64, 64), ["car", "car "])
    with pytest.raises(ValueError, match="duplicate"):
        check_labels(["sky", "Sky"])


def test_a_generator_of_labels_is_read_once(lseg):
    x = torch.rand(1, 3, 64, 64)
    out = lseg(x, (l for l in ["sky", "dog"]))
    assert torch.equal(out, lseg(x, ["sky", "dog"]))


@FAST
@given(st.lists(st.text(alphabet="ab C", min_size=0, max_size=4), max_size=6))
def test_labels_property(ls):
    """labels() returns the same list when the normalised labels are distinct and non-empty, else refuses."""
    keys = [" ".join(l.split()).casefold() for l in ls]
    ok = bool(ls) and all(keys) and len(set(keys)) == len(keys)
    if ok:
        assert check_labels(iter(ls)) == ls
    else:
        with pytest.raises(ValueError, match="empty|non-empty string|duplicate"):
            check_labels(ls)


# --- segment lists and CAMs -----------------------------------------------------------------------------------------
def test_rcq_refuses_milliseconds():
    from lib.spoof import rcq

    cam = np.random.default_rng(0).random(150)  # a 3 s utterance
    with pytest.raises(ValueError, match=r"ends at 1500 s, far past.*milliseconds\? Give seconds"):
        rcq([cam], [[(0, 1500, "BS"), (1500, 3000, "SS")]])


def test_rcq_keeps_the_edge_frame_rule_but_warns_once(recwarn):
    from lib.spoof import rcq, rcq_counts

    validate._warned.discard("segments-past-end")
    cam = np.arange(10) / 10.0
    ref = rcq([cam], [[(0.0, 0.21, "BN")]])     # one frame past the end: the reference's edge rule, no warning
    assert not [w for w in recwarn if "last frame" in str(w.message)]
    got = rcq([cam], [[(0.0, 0.5, "BN")]])      # 15 frames past: clamped as before, with a warning, once
    rcq([cam], [[(0.0, 0.5, "BN")]])
    assert got["BN"] == ref["BN"] and rcq_counts([cam], [[(0.0, 0.5, "BN")]]) == rcq_counts([cam], [[(0, 0.21, "BN")]])
    assert len([w for w in recwarn if "last frame" in str(w.message)]) == 1


def test_rcq_per_utterance_refuses_lists_of_different_lengths():
    from lib.spoof import rcq_per_utterance

    with pytest.raises(ValueError, match="2 score vectors but 1 segment lists"):
        rcq_per_utterance([np.ones(10), np.ones(10)], [[(0.0, 0.1, "BS")]])


def test_rcq_refuses_nan_in_a_cam():
    from lib.spoof import rcq

    cam = np.ones(10)
    cam[4] = np.nan
    with pytest.raises(ValueError, match=r"scores\[1\] holds 1 NaN or inf value\(s\) of 10"):
        rcq([np.ones(10), cam], [[(0.0, 0.1, "BS")], [(0.0, 0.1, "BS")]])


SEGMENT = st.tuples(st.floats(-1, 5000, allow_nan=False), st.floats(0, 5000, allow_nan=False),
                    st.sampled_from(["BS", "SS", "TR", "BN", "SN", "XX"]))


@FAST
@given(st.lists(SEGMENT, max_size=5), st.integers(1, 300), st.booleans())
def test_segments_property(segs, n, ordered):
    """segments() returns the list as given exactly when every rule holds, and otherwise names the rule."""
    kinds = ("BS", "SS", "TR", "BN", "SN")
    limit = 2 * n * 0.02 + 1
    ok = all(k in kinds and 0 <= a <= b <= limit for a, b, k in segs)
    if ordered:
        ends = np.maximum.accumulate([b for _, b, _ in segs]) if segs else []
        ok = ok and all(segs[i][0] >= ends[i - 1] for i in range(1, len(segs)))
    if ok:
        with __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore")
            assert check_segments(segs, kinds=kinds, n_frames=n, ordered=ordered) == segs
    else:
        with pytest.raises(ValueError, match="unknown segment kind|>= 0|ends before|milliseconds|starts before"):
            check_segments(segs, kinds=kinds, n_frames=n, ordered=ordered)


@FAST
@given(hnp.arrays(np.float64, st.integers(0, 50), elements=st.floats(0, 1)), CORRUPT)
def test_cam_property(a, corrupt):
    if corrupt is not None and a.size:
        a[corrupt[0] % a.size] = corrupt[1]
    if a.size == 0:
        with pytest.raises(ValueError, match="empty"):
            check_cam(a)
    elif not np.isfinite(a).all():
        with pytest.raises(ValueError, match="NaN or inf"):
            check_cam(a)
    else:
        assert np.array_equal(check_cam(a), a) and np.array_equal(check_cam(torch.from_numpy(a)), a)


# --- score / label arrays -------------------------------------------------------------------------------------------
def test_eer_string_labels_say_how_to_map():
    from lib.spoof.metrics import eer

    with pytest.raises(ValueError, match=r"0 = bona fide and 1 = spoof; got strings such as 'spoof'.*== 'spoof'"):
        eer(["spoof", "bonafide"], [0.9, 0.1])
    with pytest.raises(ValueError, match="NaN"):
        eer([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="same length"):
        eer([0, 1, 1], [0.1, 0.2])


@FAST
@given(st.lists(st.tuples(st.sampled_from([0, 1, 2, "spoof"]), st.floats(-5, 5)), max_size=12))
def test_trials_property(pairs):
    labels, scores = [p[0] for p in pairs], [p[1] for p in pairs]
    if any(isinstance(l, str) for l in labels):
        with pytest.raises(ValueError, match="strings"):
            check_trials(labels, scores)
    elif any(l == 2 for l in labels):
        with pytest.raises(ValueError, match="0 .bona fide. or 1 .spoof."):
            check_trials(labels, scores)
    else:
        y, s = check_trials(labels, scores)
        assert np.array_equal(y, np.asarray(labels)) and s.dtype == np.float64 and np.array_equal(s, scores)


# --- segmentation masks and class maps ------------------------------------------------------------------------------
def test_episode_iou_refuses_soft_probabilities():
    from lib.lseg.metrics import EpisodeIoU

    m = EpisodeIoU()
    with pytest.raises(ValueError, match=r"pred_fg must be a boolean mask.*such as 0.3.*prob > 0.5"):
        m.update(torch.full((4, 4), 0.3), torch.zeros(4, 4, dtype=torch.bool), "dog")
    m.update(torch.ones(4, 4), torch.ones(4, 4, dtype=torch.bool), "dog")   # 0/1 floats are a mask
    assert m.miou() == 1.0


def test_confusion_matrix_refuses_float_probabilities():
    from lib.lseg.metrics import ConfusionMatrix

    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"pred must hold class indices.*such as 0.7.*argmax\(1\)"):
        cm.update(torch.tensor([0.7, 0.2]), torch.tensor([0, 1]))
    cm.update(torch.tensor([2.0, 1.0]), torch.tensor([2, 1]))                # whole-number floats are indices
    assert cm.pixel_accuracy() == 1.0


@FAST
@given(hnp.arrays(np.float32, st.integers(0, 20), elements=st.sampled_from([0.0, 1.0, 0.5, 2.0, float("nan")])))
def test_mask_and_class_indices_property(a):
    t = torch.from_numpy(a)
    if ((t == 0) | (t == 1)).all():
        assert torch.equal(validate.mask(t), t.bool())
    else:
        with pytest.raises(ValueError, match="boolean mask"):
            validate.mask(t)
    if (torch.isfinite(t) & (t == t.round())).all():
        assert torch.equal(check_class_indices(t), t.long())
    else:
        with pytest.raises(ValueError, match="class indices"):
            check_class_indices(t)


# --- environment variables ------------------------------------------------------------------------------------------
def test_course_threads_abc_names_the_variable(monkeypatch):
    from lib import runtime

    monkeypatch.setenv("COURSE_THREADS", "abc")
    with pytest.raises(ValueError, match=r"COURSE_THREADS='abc' is not a whole number.*COURSE_THREADS=1"):
        runtime.setup(0, device="cpu")
    monkeypatch.setenv("COURSE_THREADS", "1")
    runtime.setup(0, device="cpu")


@FAST
@given(st.one_of(st.none(), st.text(alphabet="0123456789 -+abc.", max_size=4), st.integers(-3, 9).map(str)))
def test_env_int_property(raw):
    import os

    key = "COURSE_TEST_ENV_INT"
    try:
        if raw is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = raw
        text = (raw or "").strip()
        try:
            expected = int(text) if text else 7
        except ValueError:
            expected = None
        if expected is None or expected < 1:
            with pytest.raises(ValueError, match=key):
                validate.env_int(key, 7, minimum=1)
        else:
            assert validate.env_int(key, 7, minimum=1) == expected
    finally:
        os.environ.pop(key, None)


# --- checkpoints and the training loop ------------------------------------------------------------------------------
def _fit(ckpt, steps, model=None, lr=0.1, x=None):
    from lib import train

    torch.manual_seed(0)
    model = model or torch.nn.Linear(2, 1)
    x = torch.ones(4, 2) if x is None else x
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    hist = train.fit(model, lambda s: x, lambda m, b: {"loss": m(b).pow(2).mean()}, opt, steps, ckpt_path=ckpt,
                     ckpt_every=1, progress=False)
    return model, hist


def test_zero_byte_checkpoint_says_delete_it(tmp_path):
    from lib.storage import checkpoint

    p = tmp_path / "run.pt"
    p.write_bytes(b"")
    with pytest.raises(checkpoint.CheckpointError, match=r"is empty \(0 bytes.*delete it \(rm '.*run.pt'\)"):
        _fit(p, 2)
    from lib.storage import cache

    calls = []
    key_path = cache._path("zero-byte-test", "1")
    key_path.write_bytes(b"")                                # memo recomputes over a 0-byte result
    assert cache.memo("zero-byte-test", lambda: calls.append(1) or 5) == 5 and calls == [1]
    key_path.unlink()


def test_checkpoint_of_another_model_names_the_file(tmp_path):
    from lib.storage import checkpoint

    p = tmp_path / "run.pt"
    _fit(p, 1)
    with pytest.raises(checkpoint.CheckpointError, match=r"run.pt does not fit this Linear.*size mismatch.*rm '"):
        _fit(p, 2, model=torch.nn.Linear(3, 1), x=torch.ones(4, 3))


def test_fit_refuses_a_checkpoint_with_more_steps_than_asked(tmp_path):
    p = tmp_path / "run.pt"
    _fit(p, 3)
    with pytest.raises(ValueError, match=r"holds a run of 3 steps, more than the steps=2 asked.*rm '"):
        _fit(p, 2)
    assert len(_fit(p, 3)[1]) > 0                            # a finished run of the same length still returns at once


def test_fit_stops_on_a_non_finite_loss(tmp_path):
    p = tmp_path / "run.pt"
    with pytest.raises(FloatingPointError, match="the loss is nan at step 0.*NaN/inf"):
        _fit(p, 2, x=torch.full((4, 2), float("nan")))
    assert not p.exists()                                    # nothing written from a NaN step


def test_finetune_stops_on_nan_loss(monkeypatch):
    from lib.icm import decoder_finetuning as FT

    real = FT.make_loss

    def nan_loss(cfg):
        fn = real(cfg)
        return lambda model, batch: {**fn(model, batch), "loss": fn(model, batch)["loss"] * float("nan")}

    monkeypatch.setattr(FT, "make_loss", nan_loss)
    with pytest.raises(FloatingPointError, match="the loss is nan at step 0"):
        FT.finetune(small_codec(), [("a", torch.rand(3, 48, 48))], _ft_cfg())


def test_finetune_milestones_resume_after_a_kill_past_one(tmp_path, monkeypatch):
    from lib.icm import decoder_finetuning as FT

    photos, cfg = [("a", torch.rand(3, 48, 48))], _ft_cfg(steps=3, adversarial=False)
    ref = FT.finetune(small_codec(), photos, cfg, milestones=[1])   # uninterrupted
    fit = FT.train.fit

    def killed_after_step_2(*args, **kwargs):                # past the milestone, checkpointed at every step
        def kill(step, terms):
            if step == 1:
                raise KeyboardInterrupt
        return fit(*args, **{**kwargs, "ckpt_every": 1, "on_step": kill})
    monkeypatch.setattr(FT.train, "fit", killed_after_step_2)
    with pytest.raises(KeyboardInterrupt):
        FT.finetune(small_codec(), photos, cfg, ckpt_path=tmp_path / "a.pt", milestones=[1])
    monkeypatch.undo()
    again = FT.finetune(small_codec(), photos, cfg, ckpt_path=tmp_path / "a.pt", milestones=[1])
    for m in ("1", "3"):
        assert all(torch.equal(ref["snapshots"][m][k], again["snapshots"][m][k]) for k in ref["snapshots"][m])


def test_memo_refuses_a_result_it_cannot_read_back():
    from pathlib import Path

    from lib.storage import cache

    with pytest.raises(TypeError, match=r"result\['where'\] is a pathlib.PosixPath.*str\(path\)"):
        cache.memo("path-result-test", lambda: {"where": Path("/tmp")})
    assert not cache._path("path-result-test", "1").exists()


@FAST
@given(st.recursive(st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.text(max_size=3),
                              st.just(torch.arange(3)), st.just(np.arange(2))),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=2), c, max_size=3),
                    max_leaves=8))
def test_memo_values_round_trip_property(value):
    """Every value the cache accepts reads back equal (the checkpoint validator's counterpart: nothing is dropped)."""
    from lib.storage import cache

    key = f"prop-{hashlib.sha256(repr(value).encode()).hexdigest()[:8]}"
    cache.memo(key, lambda: value)
    back = cache.memo(key, lambda: pytest.fail("recomputed"))
    assert repr(back) == repr(value)
    cache._path(key, "1").unlink()


# --- the validation layer's own checks, property by property -------------------------------------------------------
@FAST
@given(st.one_of(st.integers(-50, 50), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                 st.text(max_size=3), st.none()), st.integers(-5, 5), st.integers(-5, 5))
def test_integer_accepts_exactly_the_whole_numbers_within_bounds(value, lo, hi):
    whole = (not isinstance(value, (bool, str)) and value is not None and np.isfinite(value)
             and float(value).is_integer())
    if whole and lo <= value <= hi:
        assert validate.integer(value, "steps", minimum=lo, maximum=hi) == int(value)
    else:
        with pytest.raises((TypeError, ValueError), match="steps"):
            validate.integer(value, "steps", minimum=lo, maximum=hi)


@FAST
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-9, 9), st.booleans(),
                 st.text(max_size=3)), st.booleans())
def test_number_accepts_finite_reals_and_refuses_the_rest(value, positive):
    real = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    if real and (not positive or value > 0):
        assert validate.number(value, "tr_width", positive=positive) == float(value)
    else:
        with pytest.raises((TypeError, ValueError), match="tr_width"):
            validate.number(value, "tr_width", positive=positive)


@FAST
@given(st.one_of(st.integers(-3, 48000), st.floats(allow_nan=True), st.text(max_size=2)))
def test_sample_rate_is_a_positive_whole_number(sr):
    if isinstance(sr, int) and sr >= 1 or isinstance(sr, float) and np.isfinite(sr) and sr >= 1 and sr.is_integer():
        assert validate.sample_rate(sr) == int(sr)
    else:
        with pytest.raises((TypeError, ValueError), match="sr"):
            validate.sample_rate(sr)


@FAST
@given(st.text(max_size=4), st.lists(st.text(max_size=4), max_size=4))
def test_keywords_refuse_what_is_not_offered(value, options):
    if value in options:
        validate.keywords([value], options, "config")
    else:
        with pytest.raises(TypeError, match="unknown keyword"):
            validate.keywords([value], options, "config")


@FAST
@given(hnp.arrays(np.float32, st.integers(0, 6), elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_finite_refuses_exactly_the_arrays_with_nan_or_inf(a):
    if np.isfinite(a).all():
        assert validate.finite(a, "embeddings") is a
        assert validate.finite(torch.from_numpy(a), "embeddings").shape == a.shape
    else:
        with pytest.raises(ValueError, match="embeddings"):
            validate.finite(a, "embeddings")


@FAST
@given(st.lists(st.integers(1, 3), min_size=1, max_size=3), st.lists(st.integers(1, 3), min_size=1, max_size=3),
       st.sampled_from([torch.float64, torch.float32, torch.uint8, torch.int64]))
def test_same_shape_and_float_input(sa, sb, dtype):
    a, b = torch.zeros(sa), torch.zeros(sb)
    if sa == sb:
        validate.same_shape(a, b, "x", "x_hat")
    else:
        with pytest.raises(ValueError, match="x_hat"):
            validate.same_shape(a, b, "x", "x_hat")
    x = torch.zeros(sa, dtype=dtype)
    if dtype.is_floating_point:
        assert validate.float_input(x, "x").dtype == torch.float32
    else:
        with pytest.raises(ValueError, match="x holds"):
            validate.float_input(x, "x")


@FAST
@given(st.lists(st.integers(-2, 4), max_size=6), st.integers(1, 3), st.booleans())
def test_class_labels_and_lengths_keep_to_their_ranges(values, n, as_float):
    y = torch.tensor(values, dtype=torch.float32 if as_float else torch.int64)
    if not as_float and all(0 <= v < n for v in values):
        assert ssl_res1d.check_labels(y, n).tolist() == values
    else:
        with pytest.raises(ValueError, match="labels"):
            ssl_res1d.check_labels(y, n)
    if not as_float and all(1 <= v <= n for v in values):
        assert ssl_res1d.check_lengths(y, len(values), n).tolist() == values
    else:
        with pytest.raises(ValueError, match="lengths"):
            ssl_res1d.check_lengths(y, len(values), n)


@FAST
@given(st.lists(st.integers(0, 5), max_size=6))
def test_distinct_refuses_repeats_only(items):
    if len(set(items)) == len(items):
        assert validate.distinct(items, "labels") == items
    else:
        with pytest.raises(ValueError, match="labels repeats"):
            validate.distinct(items, "labels")


@FAST
@given(st.text(alphabet="ab./\\\0", max_size=6))
def test_file_name_and_inside_keep_paths_in_their_folder(tmp_path_factory, name):
    folder = tmp_path_factory.getbasetemp() / "inside"
    plain = name not in ("", ".", "..") and not any(c in name for c in "/\\\0")
    if plain:
        assert validate.file_name(name) == name
    else:
        with pytest.raises(ValueError, match="filename"):
            validate.file_name(name)
    try:
        path = validate.inside(folder, name, "member")
    except ValueError as err:
        assert "member" in str(err)
    else:
        assert path.resolve().is_relative_to(folder.resolve())


@pytest.mark.parametrize("code", ["ENOSPC", "EROFS", "EACCES"])
def test_writing_turns_a_full_or_read_only_disk_into_a_storage_error(tmp_path, code):
    import errno

    target = tmp_path / "x.pt"
    with pytest.raises(validate.StorageError, match="x.pt"):
        with validate.writing(target):
            raise OSError(getattr(errno, code), "stand-in")
    with pytest.raises(OSError) as other:          # any other OS error passes through unchanged
        with validate.writing(target):
            raise OSError(errno.EIO, "stand-in")
    assert not isinstance(other.value, validate.StorageError)
