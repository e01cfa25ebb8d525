"""Tests for lib.spoof (chapter 2: Grad-CAM + RCQ on partially spoofed audio)."""
import dataclasses
import importlib.util
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.spoof import (KINDS, build_ssl_res1d, check_waveform, frame_of, gradcam, gradcam_reference, n_frames, rcq,
                       rcq_counts, rcq_per_utterance, tiny_cm)
from lib.spoof import data, experiment, metrics
from lib.spoof.partialspoof_subset import real_sets

ROOT = Path(__file__).resolve().parent.parent

torch.set_num_threads(1)


# ---------------------------------------------------------------- RCQ (hand-computed)
def test_frame_mapping_rules():
    # clean: one value per frame, clamp to N - 1, milliseconds rounded first
    assert frame_of(0.0, 10, "clean") == 0           # (0 - 10) / 20 < 0 → clamped to 0
    assert frame_of(0.0299, 10, "clean") == 0
    assert frame_of(0.03, 10, "clean") == 1          # exactly on a boundary
    assert frame_of(0.07, 10, "clean") == 3
    assert frame_of(5.0, 10, "clean") == 9           # clamped to N - 1
    assert list(frame_of(np.array([0.01, 0.05, 0.19]), 100, "clean")) == [0, 2, 9]
    # reference (wedefense XAI_Score_analysis.py): clamp to N - 2, floor on the raw float
    assert frame_of(5.0, 10) == 8 and frame_of(0.19, 10) == 8 and frame_of(0.17, 10) == 8
    assert 1000 * 2.01 < 2010                        # 2009.999…: the raw float floors one frame lower
    assert frame_of(2.01, 200) == 99 and frame_of(2.01, 200, "clean") == 100
    assert frame_of(2.0, 200) == 99 and frame_of(2.03, 200) == 100 and frame_of(2.03, 200, "clean") == 101
    with pytest.raises(ValueError, match="rule must be one of"):
        frame_of(0.1, 10, "exact")


def test_rcq_hand_computed_boundary_rules_and_outside_frames():
    cam = np.arange(10) / 10.0              # frame i has value i / 10
    segs = [(0.0, 0.07, "BN"),              # frames 0..3, both ends (non-speech)   S = 0.6, N = 4
            (0.07, 0.15, "BS"),             # frames 3..7 → interior 4..6          S = 1.5, N = 3
            (0.15, 0.21, "TR")]             # clean: frames 7..9 (clamped to N-1) → interior 8   S = 0.8, N = 1
    # frames 7 and 9 belong to no counted set: they must not enter m̄
    m_bar = (0.6 + 1.5 + 0.8) / 8
    got = rcq([cam], [segs], rule="clean")
    assert got["BN"] == pytest.approx(100 * (0.6 / 4 - m_bar) / m_bar)
    assert got["BS"] == pytest.approx(100 * (0.5 - m_bar) / m_bar)
    assert got["TR"] == pytest.approx(100 * (0.8 - m_bar) / m_bar)
    assert math.isnan(got["SS"]) and math.isnan(got["SN"])
    assert rcq_counts([cam], [segs], rule="clean") == {"BS": 3, "SS": 0, "TR": 1, "BN": 4, "SN": 0}
    # reference: TR ends at frame 10 → clamped to N-2 = 8: frames 7..8 have no interior frame, so TR is empty
    # and scores -100 %, as do SS and SN; m̄ = (0.6 + 1.5) / 7 = 0.3
    ref = rcq([cam], [segs])
    assert rcq_counts([cam], [segs]) == {"BS": 3, "SS": 0, "TR": 0, "BN": 4, "SN": 0}
    assert ref["BN"] == pytest.approx(100 * (0.15 - 0.3) / 0.3) and ref["BS"] == pytest.approx(100 * (0.5 - 0.3) / 0.3)
    assert ref["TR"] == ref["SS"] == ref["SN"] == -100.0


def test_rcq_reference_label_at_and_past_the_cam_end():
    cam = np.arange(10) / 10.0
    segs = [(0.0, 0.1, "BS"), (0.1, 0.21, "BN")]     # BN ends at frame (210-10)//20 = 10: one past the CAM
    # reference: clamp to 8 → BS interior 1..3 (S 0.6, N 3), BN 4..8 (S 3.0, N 5); m̄ = 3.6 / 8 = 0.45
    assert rcq_counts([cam], [segs]) == {"BS": 3, "SS": 0, "TR": 0, "BN": 5, "SN": 0}
    got = rcq([cam], [segs])
    assert got["BS"] == pytest.approx(100 * (0.2 - 0.45) / 0.45) and got["BN"] == pytest.approx(100 * (0.6 - 0.45) / 0.45)
    # clean: clamp to 9 → BN 4..9 (S 3.9, N 6)
    assert rcq_counts([cam], [segs], rule="clean")["BN"] == 6
    # a label ending exactly at the CAM's last frame (0.19 s → frame 9) is clamped to 8 as well
    assert rcq_counts([cam], [[(0.0, 0.1, "BS"), (0.1, 0.19, "BN")]])["BN"] == 5


def test_rcq_reference_drops_surplus_frames_from_the_front():
    cam = np.arange(12) / 10.0                       # 12 frames; labels end at 0.2 s → ceil(200/20) = 10 frames
    segs = [(0.0, 0.1, "BS"), (0.1, 0.2, "BN")]
    # reference: the CAM becomes cam[2:]; BS interior 1..3 → cam[3..5] (S 1.2), BN 4..9 → cam[6..11] (S 5.1)
    got = rcq([cam], [segs])
    m_bar = (1.2 + 5.1) / 9
    assert got["BS"] == pytest.approx(100 * (0.4 - m_bar) / m_bar)
    assert got["BN"] == pytest.approx(100 * (0.85 - m_bar) / m_bar)
    # clean: no trimming: BS cam[1..3] (S 0.6), BN cam[4..9] (S 3.9)
    cl = rcq([cam], [segs], rule="clean")
    assert cl["BS"] == pytest.approx(100 * (0.2 - 0.5) / 0.5) and cl["BN"] == pytest.approx(100 * (0.65 - 0.5) / 0.5)
    # the trim is set by the LAST segment's end, so out-of-order segments that reach past it are refused
    with pytest.raises(ValueError, match="time order"):
        rcq([cam], [[(0.1, 0.2, "BN"), (0.0, 0.05, "BS")]])


def test_rcq_reference_floors_the_raw_float():
    cam = np.full(150, 0.5)
    cam[99] = 1.0                                    # the frame that 2.01 s maps to in the clean rule only
    segs = [(0.0, 2.01, "BS"), (2.01, 3.0, "SS")]
    # reference: 2.01 → frame 99, so BS is 1..98 (all 0.5) and SS 100..147 (end 149 clamped to 148): RCQ 0 for both
    assert rcq_counts([cam], [segs]) == {"BS": 98, "SS": 48, "TR": 0, "BN": 0, "SN": 0}
    got = rcq([cam], [segs])
    assert got["BS"] == pytest.approx(0.0, abs=1e-9) and got["SS"] == pytest.approx(0.0, abs=1e-9)
    # clean: 2.01 → frame 100, so BS is 1..99 and takes the 1.0
    cl = rcq([cam], [segs], rule="clean")
    assert rcq_counts([cam], [segs], rule="clean")["BS"] == 99 and cl["BS"] > 0


def test_rcq_empty_type_scores_minus_100_in_the_reference_nan_in_clean():
    cam = np.linspace(0, 1, 50)
    segs = [(0.0, 0.5, "BS"), (0.5, 1.0, "SS")]
    ref, cl = rcq([cam], [segs]), rcq([cam], [segs], rule="clean")
    for k in ("TR", "BN", "SN"):
        assert ref[k] == -100.0 and math.isnan(cl[k])
    assert math.isnan(rcq_per_utterance([cam], [segs])[0]["TR"])      # per utterance: absent, not -100


def _reference_rcq(cams, segment_lists):
    """The authors' scoring code's RCQs (tests/helpers/reference_scorers.py) on these CAMs and segments."""
    from lib.spoof.partialspoof_labels import KIND_CODE
    from tests.helpers.reference_scorers import rcq_reference
    return rcq_reference(cams, [[(a, b, KIND_CODE[k]) for a, b, k in segs] for segs in segment_lists])


@pytest.mark.parametrize("seed", range(6))
def test_rcq_equals_the_reference_scoring_code_on_random_utterances(seed):
    """Random CAMs and label files: labels inside, at and past the CAM's end, CAMs longer than the labels, times at
    any millisecond (not multiples of 10 ms), rare types that may get no frames."""
    rng = np.random.default_rng(seed)
    cams, segss = [], []
    for u in range(int(rng.integers(1, 8))):
        n = int(rng.integers(20, 300))
        cam = rng.random(n)
        span = (n + int(rng.integers(-6, 4))) * 0.02          # labels end before, at or after the CAM's end
        cuts = np.sort(rng.choice(np.arange(1, int(span * 1000)), size=int(rng.integers(1, 8)), replace=False))
        edges = np.r_[0, cuts, int(span * 1000)] / 1000.0     # milliseconds, mostly not multiples of 10
        kinds = rng.choice(KINDS[:2] + ("BN",) if seed % 3 == 0 else KINDS, size=len(edges) - 1)
        cams.append(cam)
        segss.append([(float(a), float(b), str(k)) for a, b, k in zip(edges[:-1], edges[1:], kinds)])
    want = _reference_rcq(cams, segss)
    got = rcq(cams, segss)
    for k in KINDS:
        assert got[k] == pytest.approx(want[k], abs=1e-9), (k, got, want)


def test_rcq_pools_frames_not_utterance_means():
    a, b = np.full(20, 1.0), np.full(5, 0.2)
    segs_a = [(0.0, 0.41, "SS")]            # frames 0..19 → interior 1..18: 18 frames of 1.0
    segs_b = [(0.0, 0.11, "SN"), (0.11, 0.2, "BS")]  # (clean) SN 0..5→0..4 clamp: 5 frames; BS interior 5..3: none
    S = {"SS": 18.0, "SN": 1.0}
    N = {"SS": 18, "SN": 5}
    m_bar = sum(S.values()) / sum(N.values())
    got = rcq([a, b], [segs_a, segs_b], rule="clean")
    assert got["SS"] == pytest.approx(100 * (1.0 - m_bar) / m_bar)
    assert got["SN"] == pytest.approx(100 * (0.2 - m_bar) / m_bar)
    assert math.isnan(got["BS"])            # a segment shorter than two frames has no interior frame
    # Σ_k N_k RCQ_k = 0 and RCQ is invariant to the CAM's scale
    assert sum(N[k] * got[k] for k in N) == pytest.approx(0, abs=1e-9)
    assert rcq([3 * a, 3 * b], [segs_a, segs_b], rule="clean")["SS"] == pytest.approx(got["SS"])
    per = rcq_per_utterance([a, b], [segs_a, segs_b], rule="clean")
    assert per[0]["SS"] == pytest.approx(0.0) and math.isnan(per[1]["BS"])


def test_rcq_bad_inputs():
    with pytest.raises(ValueError, match="unknown segment kind"):
        rcq([np.ones(5)], [[(0, 0.1, "XX")]])
    with pytest.raises(ValueError, match="one of each"):
        rcq([np.ones(5)], [])
    with pytest.raises(ValueError, match="undefined"):
        rcq([np.zeros(5)], [[(0, 0.1, "BN")]])


# ---------------------------------------------------------------- Grad-CAM
def _trained_ish(model):
    """Give BatchNorm real statistics so eval mode is not an identity."""
    model.train()
    with torch.no_grad():
        model(torch.randn(6, 12000) * 0.1)
    return model.eval()


@pytest.mark.parametrize("target", [0, 1])
def test_batched_gradcam_equals_pytorch_grad_cam_per_utterance(target):
    torch.manual_seed(0)
    m = _trained_ish(tiny_cm())
    g = torch.Generator().manual_seed(1)
    waves = [torch.randn(n, generator=g) * 0.1 for n in (16000, 12345, 7001, 20000)]
    cams = gradcam(m, m.fc, waves, target)  # one padded batch, one forward/backward
    assert cams.shape == (4, int(n_frames(20000)))
    for i, w in enumerate(waves):
        ref = gradcam_reference(m, m.fc, w.numpy(), target)
        n = int(n_frames(w.numel()))
        assert ref.shape == (n,)
        np.testing.assert_allclose(cams[i, :n].numpy(), ref, atol=1e-5)
        assert cams[i, n:].abs().sum() == 0
        assert cams[i, :n].min() == pytest.approx(0, abs=1e-6) and cams[i, :n].max() == pytest.approx(1, abs=1e-5)


def _tiny_ssl_params():
    return dict(
        extractor_mode="layer_norm", extractor_conv_layer_config=[(32, 10, 5), (32, 3, 2), (32, 3, 2), (32, 3, 2),
                                                                   (32, 3, 2), (32, 2, 2), (32, 2, 2)],
        extractor_conv_bias=True, encoder_embed_dim=32, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=16,
        encoder_pos_conv_groups=4, encoder_num_layers=2, encoder_num_heads=2, encoder_attention_dropout=0.0,
        encoder_ff_interm_features=64, encoder_ff_interm_dropout=0.0, encoder_dropout=0.0,
        encoder_layer_norm_first=True, encoder_layer_drop=0.0, aux_num_out=None)


def test_ssl_res1d_gradcam_matches_reference_and_frames_align():
    torch.manual_seed(0)
    m = _trained_ish(build_ssl_res1d(_tiny_ssl_params(), se_dim=16))
    assert isinstance(m.fc, torch.nn.Conv1d) and m.fc.out_channels == 128
    waves = [torch.randn(n) * 0.1 for n in (9600, 16000)]
    cams = gradcam(m, m.fc, torch.stack([w[:9600] for w in waves]), 1)
    for i, w in enumerate(waves):
        ref = gradcam_reference(m, m.fc, w[:9600].numpy(), 1)
        np.testing.assert_allclose(cams[i].numpy(), ref, atol=1e-4)
    # the SSL front-end's 20 ms frames and the tiny front-end's frames are the same frames
    for L in (400, 401, 719, 720, 16000, 33333):
        feats, _ = m.frontend.ssl.feature_extractor(torch.zeros(1, L), None)
        assert feats.shape[1] == int(n_frames(L)) == tiny_cm().frontend(torch.randn(1, L))[0].shape[-1]


def test_gradcam_frames_line_up_with_label_frames():
    """A click at time t lights up the log-spectrum frame(s) whose window holds t; the label mapping is within one."""
    fe = tiny_cm().frontend
    for t in (0.5, 0.513, 1.0, 1.777):
        x = torch.randn(32000) * 1e-4
        x[int(t * 16000)] = 1.0
        energy = fe(x[None])[0][0].exp().sum(0)
        hot = int(energy.argmax())
        assert 320 * hot <= int(t * 16000) < 320 * hot + 400           # the window of that frame contains t
        assert abs(int(frame_of(t, energy.numel())) - hot) <= 1         # label frame(t) is that frame or its neighbour


def test_temporal_cam_is_the_formula_on_each_utterances_own_frames():
    from lib.spoof import temporal_cam
    g = torch.Generator().manual_seed(0)
    A, G = torch.randn(2, 5, 9, generator=g), torch.randn(2, 5, 9, generator=g)
    n = torch.tensor([9, 6])
    cam = temporal_cam(A, G, n)
    for i in range(2):
        a, gr = A[i, :, : n[i]], G[i, :, : n[i]]
        raw = torch.relu((gr.mean(-1)[:, None] * a).sum(0))          # ReLU(Σ_k mean_t(∂y/∂A_k) A_k(t))
        raw = (raw - raw.min()) / (raw - raw.min()).max()
        torch.testing.assert_close(cam[i, : n[i]], raw, atol=1e-5, rtol=0)
    assert cam[1, 6:].abs().sum() == 0                                  # frames past the end
    G2 = G.clone()
    G2[1, :, 6:] = 100.0                                                # gradients of padding frames
    torch.testing.assert_close(temporal_cam(A, G2, n), cam)            # do not enter α_k
    torch.testing.assert_close(temporal_cam(A, G)[0], cam[0])          # n=None: every frame is valid


def test_gradcam_takes_valid_frames_from_the_models_own_framing():
    """A wav2vec 2.0 stack with 10 ms frames (stride 160): valid frames follow it, not the 20 ms formula."""
    torch.manual_seed(0)
    params = dict(_tiny_ssl_params(), extractor_conv_layer_config=[(32, 10, 5), (32, 3, 2), (32, 3, 2),
                                                                    (32, 3, 2), (32, 2, 2), (32, 2, 2)])
    m = _trained_ish(build_ssl_res1d(params, se_dim=16))
    for L in (400, 4000, 9001, 12345):
        _, own = m.frontend.ssl.feature_extractor(torch.zeros(1, L), torch.tensor([L]))
        assert int(m.n_frames(torch.tensor(L))) == int(own) > int(n_frames(L))
    waves = [torch.randn(n) * 0.1 for n in (12345, 6000)]
    cams = gradcam(m, m.fc, waves, 1)                                  # one padded batch
    for i, w in enumerate(waves):
        ref = gradcam_reference(m, m.fc, w.numpy(), 1)
        assert len(ref) == int(m.n_frames(torch.tensor(w.numel())))
        np.testing.assert_allclose(cams[i, : len(ref)].numpy(), ref, atol=1e-4)
        assert cams[i, len(ref):].abs().sum() == 0
    assert int(tiny_cm().n_frames(torch.tensor(12345))) == int(n_frames(12345))


def test_gradcam_with_lengths_needs_a_model_that_states_its_framing():
    class Bare(torch.nn.Module):                 # a CM without n_frames
        def __init__(self):
            super().__init__()
            self.cm = tiny_cm()
            self.fc = self.cm.fc

        def forward(self, x, lengths=None):
            return self.cm(x, lengths)

    m = _trained_ish(Bare())
    with pytest.raises(TypeError, match="n_frames"):
        gradcam(m, m.fc, [torch.randn(8000) * 0.1, torch.randn(9000) * 0.1], 1)
    assert gradcam(m, m.fc, torch.randn(2, 8000) * 0.1, 1).shape == (2, int(n_frames(8000)))


def test_one_sample_rate_and_frame_for_the_chapter():
    """The sampling rate and the 20 ms frame are defined once, in lib/spoof/audio.py; every other module of the
    chapter imports them (no second definition, no literal 16000 or 0.02 / 20 ms frame arithmetic elsewhere)."""
    import ast
    import io
    import tokenize

    import lib.spoof
    from lib.spoof import audio, partialspoof, partialspoof_labels, plots, ssl_res1d
    rcq_module = sys.modules["lib.spoof.rcq"]
    assert lib.spoof.SR == audio.SR == partialspoof.SR == 16000
    assert plots.utterance_figure.__kwdefaults__["sr"] == audio.SR
    assert (ssl_res1d.HOP, ssl_res1d.WIN) == (audio.HOP, audio.WIN) == (320, 400)
    assert audio.FRAME_S == 0.02 and audio.FRAME_MS == rcq_module.FRAME_MS == 20.0 and rcq_module.OFFSET_MS == 10.0
    assert partialspoof_labels.segment_labels.__defaults__[-1] == audio.FRAME_S
    constants = {"SR", "WIN", "HOP", "MIN_SAMPLES", "FRAME_S", "FRAME_MS"}
    for path in sorted((ROOT / "lib" / "spoof").glob("*.py")):
        if path.name == "audio.py":
            continue
        tree = ast.parse(path.read_text())
        names = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) for t in node.targets
                 if isinstance(t, ast.Name)}
        assert not names & constants, f"{path.name} defines its own {names & constants}: import them from audio"
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        numbers = [(tok.string, tok.start[0]) for tok in tokens if tok.type == tokenize.NUMBER]  # code only
        for (a, line), (b, _) in zip(numbers, numbers[1:] + [("", 0)]):
            assert a not in ("16000", "16_000", "320", "20.0") and (a, b) != ("1000", "20"), \
                f"{path.name}:{line} spells out the sample rate or the frame ({a}): import it from lib.spoof.audio"


def _chapter_code_cells():
    text = (ROOT / "book" / "02_spoof.md").read_text()
    cells = re.findall(r"```\{code-cell\} ipython3\n(.*?)```", text, re.S)
    return text, [[ln for ln in c.strip("\n").split("\n") if not ln.startswith(":tags:")] for c in cells]


def test_chapter_shows_the_grad_cam_weights_and_ends_with_the_seminar():
    """Chapter 2's own layout (tests/test_chapters_read.py checks what every chapter shares): the Grad-CAM weights
    shown from lib, the seminar questions last, at least seven slides."""
    text, _ = _chapter_code_cells()
    seminar = text[text.index("## For the seminar"):]
    assert len(re.findall(r"^\d\. ", seminar, re.M)) == 4 and "## " not in seminar[3:]
    include = re.search(r"```\{literalinclude\} \.\./(\S+)\n:language: python\n:pyobject: (\w+)", text)
    assert include and include.groups() == ("lib/spoof/gradcam.py", "temporal_cam")  # the weights as code
    assert "def temporal_cam(" in (ROOT / include.group(1)).read_text()
    assert len(re.findall(r'^\+\+\+ \{"tags": \["slide"\]\}|^:tags: \[.*\bslide\b', text, re.M)) >= 7


# ---------------------------------------------------------------- data builder
@pytest.fixture(scope="module")
def small_base():
    return data.build_base(seed=3, n_utts=6, langs=("fr", "es"))


def test_data_builder_labels_cover_and_transitions(small_base):
    sets = data.build_sets(small_base, seed=3, splice="hard", gain_db=6.0)
    items = [it for s in sets.values() for v in s.values() for it in v]
    assert len(items) == 3 * len(small_base["id"]) >= 6
    for it in items:
        dur = it["wave"].numel() / 16000
        segs = it["segments"]
        assert segs[0][0] == 0 and segs[-1][1] == pytest.approx(dur)
        for (a0, b0, k0), (a1, b1, k1) in zip(segs, segs[1:]):
            assert b0 == pytest.approx(a1) and b1 > a1              # contiguous, no gaps, no empty segments
            assert not ({k0[0], k1[0]} == {"B", "S"})               # a bona fide/spoof boundary always has a TR
        kinds = {k for _, _, k in segs}
        if it["id"].endswith("-ps"):
            assert "TR" in kinds and kinds & {"SS", "SN"} and kinds & {"BS", "BN"}
            for a, b, k in segs:
                if k == "TR":
                    assert b - a == pytest.approx(0.06) or a == 0 or b == pytest.approx(dur)
        elif it["label"] == 0:
            assert kinds <= {"BS", "BN"}
        else:
            assert kinds <= {"SS", "SN"}


def test_partial_spoof_is_bona_fide_outside_the_spliced_span(small_base):
    sets = data.build_sets(small_base, seed=3, splice="hard", gain_db=6.0)
    for s in sets.values():
        for bona, ps in zip(s["bona"], s["partial"]):
            same = (bona["wave"] == ps["wave"]).numpy()
            first_spoof = min(a for a, b, k in ps["segments"] if k in ("SS", "SN"))
            assert same[: max(0, int((first_spoof - 0.03) * 16000))].all()
            assert not same.all()


def test_donor_is_cut_at_its_own_boundary(small_base):
    """shift_s: the spliced-in span is the vocoded recording 25-50 ms earlier or later, at the host's level (0 dB)."""
    rng = np.random.default_rng(5)
    offsets = []
    for bona, spoof, regions in zip(small_base["bona"], small_base["spoof"], small_base["regions"]):
        bona, spoof = bona.numpy(), spoof.numpy()
        wave, segs = data.make_partial(bona, spoof, regions, rng, splice="hard", gain_db=0.0, shift_s=0.05)
        changed = np.flatnonzero(wave != bona)
        a, b = changed[0], changed[-1] + 1
        found = [d for d in range(-800, 801) if np.array_equal(wave[a:b], np.roll(spoof, -d)[a:b])]
        assert len(found) >= 1 and all(400 <= abs(d) <= 800 for d in found)
        offsets.append(found[0])
        assert not np.array_equal(wave[a:b], spoof[a:b])                  # not the time-aligned copy
        assert {k for *_, k in segs} >= {"TR"}
    assert len({np.sign(d) for d in offsets}) == 2 or len(offsets) < 4     # both earlier and later donors occur


def test_data_builder_deterministic(small_base):
    again = data.build_base(seed=3, n_utts=6, langs=("fr", "es"))
    assert again["id"] == small_base["id"] and again["regions"] == small_base["regions"]
    for a, b in zip(again["spoof"], small_base["spoof"]):
        assert torch.equal(a, b)
    s1 = data.build_sets(small_base, seed=3, splice="xfade")
    s2 = data.build_sets(again, seed=3, splice="xfade")
    for x, y in zip(s1["eval"]["partial"] + s1["train"]["partial"], s2["eval"]["partial"] + s2["train"]["partial"]):
        assert torch.equal(x["wave"], y["wave"]) and x["segments"] == y["segments"]


def test_crossfade_is_smoother_than_hard_cut(small_base):
    hard = data.build_sets(small_base, seed=3, splice="hard", gain_db=6.0)["train"]["partial"]
    soft = data.build_sets(small_base, seed=3, splice="xfade", gain_db=6.0)["train"]["partial"]

    def jumps(it):  # |x[t] - x[t-1]| at each join t (the centre of each TR span)
        x = it["wave"].numpy()
        ts = [int(round((a + b) / 2 * 16000)) for a, b, k in it["segments"] if k == "TR" and b - a > 0.059]
        return [abs(float(x[t] - x[t - 1])) for t in ts]

    h = sum(sum(jumps(it)) for it in hard)
    s = sum(sum(jumps(it)) for it in soft)
    assert h > 0 and s < 0.5 * h


# ---------------------------------------------------------------- EER
def test_eer_known_scores_and_brute_force():
    assert metrics.eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert metrics.eer([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 100.0
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.7, 0.25, 0.8, 0.85, 0.9]  # one bona fide above, one spoof below the best threshold
    assert metrics.eer(y, s) == pytest.approx(25.0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = rng.normal(size=400) + 1.2 * y
    th = np.sort(s)
    far = np.array([(s[y == 0] >= t).mean() for t in th])
    frr = np.array([(s[y == 1] < t).mean() for t in th])
    i = np.argmin(np.abs(far - frr))
    assert metrics.eer(y, s) == pytest.approx(100 * (far[i] + frr[i]) / 2, abs=0.6)
    with pytest.raises(ValueError, match="both"):
        metrics.eer([1, 1], [0.1, 0.2])


def test_eer_equals_the_asvspoof_scorer_on_untied_scores():
    """The ASVspoof scorer's compute_eer, restated in tests/helpers/reference_scorers.py."""
    from tests.helpers.reference_scorers import eer_reference
    for seed in range(400):
        rng = np.random.default_rng(seed)
        n0, n1 = rng.integers(1, 30, 2)
        y = rng.permutation(np.r_[np.zeros(n0), np.ones(n1)].astype(int))
        s = rng.normal(size=y.size) + rng.uniform(0, 2) * y       # continuous: no ties
        want = 100 * eer_reference(s[y == 1], s[y == 0])         # target = spoof (higher score = more spoof)
        assert metrics.eer(y, s) == pytest.approx(want, abs=1e-9), seed
    # a tie: sklearn's ROC puts both tied trials on one side (25 %); the ASVspoof scorer splits them in input order
    y, s = np.array([0, 0, 1, 1]), np.array([0.5, 0.1, 0.5, 0.9])
    assert metrics.eer(y, s) == 25.0 and 100 * eer_reference(s[y == 1], s[y == 0]) == 50.0


# ---------------------------------------------------------------- bad inputs
def test_bad_inputs_have_clear_messages():
    with pytest.raises(ValueError, match="downmix"):
        check_waveform(np.random.randn(2, 16000))
    assert check_waveform(np.random.randn(1, 16000)).shape == (16000,)
    assert check_waveform(np.random.randn(8000), sr=8000).shape == (16000,)    # wrong rate → resampled
    with pytest.raises(ValueError, match="empty"):
        check_waveform(np.zeros(0))
    with pytest.raises(ValueError, match="all-silence"):
        check_waveform(np.zeros(16000))
    with pytest.raises(ValueError, match="receptive field"):
        check_waveform(np.random.randn(399))
    m = tiny_cm().eval()
    with pytest.raises(ValueError, match="receptive field"):
        gradcam(m, m.fc, [torch.randn(16000), torch.randn(100)], 1)
    with pytest.raises(ValueError, match="mono waveform"):
        m(torch.randn(2, 1, 16000))
    with pytest.raises(ValueError, match="splice"):
        data.make_partial(np.ones(10), np.ones(10), [[0, 5, True], [5, 10, False]], np.random.default_rng(0),
                          splice="smooth")


def test_load_audio_downmixes_and_resamples():
    clip = data.tuxpaint_clips(("fr",))["fr"][0]
    import soundfile as sf
    info = sf.info(clip)
    x = data.load_audio(clip)
    assert x.ndim == 1 and abs(len(x) - info.frames * 16000 / info.samplerate) < 2


# ---------------------------------------------------------------- pretrained weights path (local file)
def test_pretrained_weights_go_through_fetch_first_use_or_sha256(tmp_path, monkeypatch):
    from lib.storage import checkpoint, download, errors, hashes
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(1)
    src = build_ssl_res1d(_tiny_ssl_params()).frontend.ssl.state_dict()
    f = tmp_path / "w2v.pth"
    checkpoint.save(src, f)
    sha = hashes.sha256sum(f)
    m = build_ssl_res1d(_tiny_ssl_params(), pretrained=True, sha256=sha, url=f.as_uri())
    for k, v in m.frontend.ssl.state_dict().items():
        assert torch.equal(v, src[k])
    assert download.downloads()[-1]["verified_by"] == "sha256"
    with pytest.raises(errors.ChecksumError):
        build_ssl_res1d(_tiny_ssl_params(), pretrained=True, sha256="0" * 64, url=f.as_uri())
    g = f.rename(tmp_path / "w2v_first.pth")  # no checksum given: recorded at first use
    build_ssl_res1d(_tiny_ssl_params(), pretrained=True, url=g.as_uri())
    assert download.downloads()[-1]["verified_by"] == "first_use"
    assert download.downloads()[-1]["loaded_with"] == "torch.load(weights_only=True)"


# ---------------------------------------------------------------- the cached experiment (the chapter's command)
def test_tiny_experiment_is_cached_and_resumable(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    tiny = experiment.CONFIGS["tiny"]
    cfg = dataclasses.replace(tiny, data=dataclasses.replace(tiny.data, langs=("fr", "ca"), n_utts=6),
                              train=dataclasses.replace(tiny.train, steps=4, seeds=(0,)))
    # the project's own cache-filling command (`make book` runs it in full), shortened
    spec = importlib.util.spec_from_file_location("spoof_prepare", ROOT / "scripts" / "spoof_prepare.py")
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    res = prepare.main(["--n-utts", "6", "--steps", "4", "--seeds", "0", "--langs", "fr", "ca"])
    assert set(res) == {(t, s, 0) for t in ("full", "partial") for s in ("hard", "xfade", "clean")}
    r = res[("partial", "hard", 0)]
    assert 0 <= r["eer_ps"] <= 100 and set(r["rcq_spoof"]) == set(KINDS) and sum(r["N"].values()) > 0
    assert len(r["history"]) >= 1 and len(r["cam_spoof"]) == r["labels_ps"].sum()
    t = time.time()
    again = experiment.tiny_all(cfg, progress=False)
    assert time.time() - t < 5
    np.testing.assert_array_equal(again[("partial", "hard", 0)]["scores_ps"], r["scores_ps"])
    # the fully-spoof CM is trained once and shared by both splice conditions
    assert torch.equal(res[("full", "hard", 0)]["state"]["fc.weight"], res[("full", "xfade", 0)]["state"]["fc.weight"])


def test_splice_conditions_of_the_chapter(tmp_path, monkeypatch):
    """hard/xfade: donor out of step with the host; clean: a time-aligned donor at the host's level."""
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    tiny = experiment.CONFIGS["tiny"]
    cfg = dataclasses.replace(tiny, data=dataclasses.replace(tiny.data, langs=("fr", "es"), n_utts=4))
    base = experiment.tiny_base(cfg)
    index = {uid: n for n, uid in enumerate(base["id"])}
    for cond, aligned in (("hard", False), ("xfade", False), ("clean", True)):
        sets = experiment.tiny_sets(cond, cfg)
        for it in sets["train"]["partial"] + sets["eval"]["partial"]:
            n = index[it["id"][:-3]]
            wave, bona, spoof = it["wave"].numpy(), base["bona"][n].numpy(), base["spoof"][n].numpy()
            changed = np.flatnonzero(wave != bona)
            a, b = changed[0] + 160, changed[-1] - 160          # inside the span, clear of any 10 ms cross-fade
            assert np.allclose(wave[a:b], spoof[a:b], atol=1e-6) == aligned, cond
    with pytest.raises(ValueError, match="splice condition"):
        experiment.tiny_sets("smooth")


def test_label_format_is_a_checked_option():
    d = experiment.CONFIGS["colab"].data
    with pytest.raises(ValueError, match=r"labels must be one of \('public', 'authors'\)"):
        dataclasses.replace(d, labels="five")
    with pytest.raises(ValueError, match="labels='authors' needs authors_vad"):
        dataclasses.replace(d, labels="authors")
    with pytest.raises(ValueError, match="n_eval must give counts for 'bona', 'partial' and 'full'"):
        dataclasses.replace(d, n_eval={"bona": 1})


# ---------------------------------------------------------------- configurations: every field keyed and used
class _Stop(Exception):
    pass


def _changed(name, value, part):
    """Another valid value for the field ``name`` of ``part`` (and any field it needs beside it)."""
    if name == "labels":
        return {"labels": "authors" if value == "public" else "public", "authors_vad": "/labels"}
    if name == "authors_vad":
        return {"labels": "authors", "authors_vad": "/other-labels"}
    if name == "eval_split":
        return {name: "eval" if value == "dev" else "dev"}
    if name == "splices":
        return {name: value[:-1]}
    if name == "langs":
        return {name: ("fr", "ca")}
    if isinstance(value, bool):
        return {name: not value}
    if isinstance(value, int):
        return {name: value + 1}
    if isinstance(value, float):
        return {name: value * 1.5 + 0.01}
    if isinstance(value, tuple):
        return {name: value + (max(value) + 1,)}
    if isinstance(value, dict):
        return {name: {k: n + 1 for k, n in value.items()}}
    raise AssertionError(f"no change known for {type(part).__name__}.{name} = {value!r}")


def _variants(cfg):
    """``(part.field, changed configuration, the changed values)`` for every field of every part of ``cfg``."""
    for part_name in ("data", "model", "train"):
        part = getattr(cfg, part_name)
        for f in dataclasses.fields(part):
            change = _changed(f.name, getattr(part, f.name), part)
            yield (f"{part_name}.{f.name}", dataclasses.replace(cfg, **{part_name: dataclasses.replace(part, **change)}),
                   change)


def _trace(cfg, monkeypatch):
    """The memo keys of every run ``cfg``'s chapter makes, and every value its runs pass on to the code that builds
    the data, the model and the training (nothing is computed)."""
    from lib.spoof import config, countermeasure
    from lib.storage import cache
    keys, seen = set(), []
    experiment._base.cache_clear()                         # the corpus and sets a process keeps: read them anew
    experiment._sets.cache_clear()

    def memo(key, fn, version=None, **kw):
        keys.add(key)
        if key.startswith("spoof-base"):
            return fn()
        try:
            fn()
        except _Stop:
            pass
        raise _Stop

    def record(*args, **kwargs):            # (argument name or None, value), a dataclass's fields by name
        for v in args:
            seen.extend(dataclasses.asdict(v).items() if dataclasses.is_dataclass(v) else [(None, v)])
        seen.extend(kwargs.items())
        return {}

    def run(sets, **kwargs):
        record(**{k: v for k, v in kwargs.items() if k not in ("model_fn", "ckpt_path")})
        kwargs["model_fn"]()                               # builds the model the configuration names
        raise _Stop

    monkeypatch.setattr(cache, "memo", memo)
    for name in ("build_base", "build_sets", "real_sets"):
        monkeypatch.setattr(experiment, name, record)
    monkeypatch.setattr(experiment, "run", run)
    monkeypatch.setattr(config, "build_ssl_res1d", record)
    monkeypatch.setattr(config, "tiny_cm", lambda: record("tiny_cm"))
    monkeypatch.setattr(countermeasure, "tiny_cm", lambda: record("tiny_cm"))
    for s in cfg.seeds:
        for sp in cfg.splices:
            for tr in ("full", "partial"):
                with pytest.raises(_Stop):
                    experiment.chapter_run(tr, sp, s, cfg)
    experiment._base.cache_clear()                         # what the stand-ins returned is no corpus
    experiment._sets.cache_clear()
    return keys, seen


# fields that do not change a result, on purpose, so they stay out of the memo key
KEY_FREE = {"train.eval_batch": "utterances per scoring batch: memory only",
            "data.keep_archives": "whether downloaded archives are kept on disk"}


@pytest.mark.parametrize("name", ["tiny", "colab", "colab, rehearsal"])
def test_every_configuration_field_changes_the_memo_key_and_reaches_its_code(name, monkeypatch):
    """For every field of every part of a configuration: a changed value changes the memo key of some run of the
    chapter (else a cached result of other settings would be shown), and the value reaches the code that builds the
    data, the model or the training, unless that field is the loop over runs itself (seeds, splices)."""
    cfg = experiment.CONFIGS[name.split(",")[0]]
    cfg = cfg.rehearsed() if "rehearsal" in name else cfg
    base_keys, _ = _trace(cfg, monkeypatch)
    assert len(base_keys) > 1
    fields = []
    for field, changed, values in _variants(cfg):
        fields.append(field)
        keys, seen = _trace(changed, monkeypatch)
        if field in KEY_FREE:
            assert keys == base_keys, field
        else:
            assert keys != base_keys, f"{field}: changing it leaves every memo key as it was"
        if field in ("train.seeds", "data.splices"):
            continue                                       # the runs themselves: checked by their keys
        short = field.split(".")[1]
        v = values[short]
        assert any(n in (None, short) and type(x) is type(v) and x == v for n, x in seen), \
            f"{field} = {v!r} never reaches the code that builds the data, the model or the training"
    assert len(fields) == sum(len(dataclasses.fields(getattr(cfg, p))) for p in ("data", "model", "train"))


def test_the_chapters_memo_keys_name_what_the_configuration_holds(monkeypatch):
    """A model source or data source swapped changes the keys too: a CM of another kind never reads a cached one."""
    from lib.spoof.config import SSLRes1D, TinyCM
    tiny, colab = experiment.CONFIGS["tiny"], experiment.CONFIGS["colab"]
    keys = lambda cfg: _trace(cfg, monkeypatch)[0]     # noqa: E731
    assert keys(dataclasses.replace(tiny, model=SSLRes1D())) != keys(tiny)
    assert keys(dataclasses.replace(colab, model=TinyCM())) != keys(colab)
    assert keys(dataclasses.replace(colab, data=tiny.data)) != keys(tiny)


def test_configurations_are_picked_by_scale_rehearsed_and_described():
    from lib import scale
    for name, cfg in experiment.CONFIGS.items():
        scale.set_scale(name)
        try:
            assert scale.pick(experiment.CONFIGS, chapter="2") is cfg
        finally:
            scale.set_scale(None)
        described = cfg.describe()
        assert json.loads(json.dumps(described)) == described
        assert {described[p]["source"] for p in ("data", "model", "train")} == {
            type(getattr(cfg, p)).__name__ for p in ("data", "model", "train")}
    colab = experiment.CONFIGS["colab"]
    r = colab.rehearsed()
    assert r.rehearsal and type(r.data) is type(colab.data) and r.model == colab.model and r.splices == colab.splices
    assert r.train.steps < colab.train.steps and sum(r.data.n_eval.values()) < sum(colab.data.n_eval.values())


def test_scoring_batch_size_does_not_change_the_scores():
    """``eval_batch`` only groups utterances: padded batches are masked, so the scores are the same."""
    from lib.spoof.countermeasure import score
    torch.manual_seed(0)
    m = tiny_cm().eval()
    items = [{"wave": torch.randn(n) * 0.1} for n in (8000, 12000, 9000, 16000)]
    np.testing.assert_allclose(score(m, items, batch_size=1), score(m, items, batch_size=3), atol=1e-5)


# ---------------------------------------------------------------- colab path: frozen XLSR-53, real-format data
def test_frozen_ssl_front_end_trains_nothing_stores_nothing_and_gradcam_still_matches():
    torch.manual_seed(0)
    m = _trained_ish(build_ssl_res1d(_tiny_ssl_params(), frozen=True, se_dim=16))
    assert not any(p.requires_grad for p in m.frontend.ssl.parameters()) and m.frontend.layer_weights.requires_grad
    m.train()
    assert not m.frontend.ssl.training                       # no dropout in a frozen front-end
    state = m.state_dict()
    assert state and not [k for k in state if k.startswith("frontend.ssl.")]
    other = build_ssl_res1d(_tiny_ssl_params(), frozen=True, se_dim=16)
    ssl_before = {k: v.clone() for k, v in other.frontend.ssl.state_dict().items()}
    other.load_state_dict(state)                             # strict: the front-end keeps its own weights
    assert torch.equal(other.fc.weight, m.fc.weight)
    assert all(torch.equal(v, ssl_before[k]) for k, v in other.frontend.ssl.state_dict().items())
    m.eval()
    waves = [torch.randn(n) * 0.1 for n in (9000, 16000, 12345)]
    cams = gradcam(m, m.fc, waves, 1)
    for i, w in enumerate(waves):
        ref = gradcam_reference(m, m.fc, w.numpy(), 1)
        np.testing.assert_allclose(cams[i, : len(ref)].numpy(), ref, atol=1e-4)


def _maker():
    import sys
    sys.path.insert(0, str(ROOT / "colab" / "rehearsal"))
    from makers import spoof
    return spoof


def test_xlsr53_url_is_torchaudios_and_the_rehearsal_file_has_its_architecture():
    from lib.spoof.ssl_res1d import XLSR53_URL, xlsr53_url
    assert XLSR53_URL == xlsr53_url() and xlsr53_url().endswith("/wav2vec2_fairseq_large_xlsr53.pth")
    assert xlsr53_url() in _maker().urls()


def test_real_data_bad_inputs_say_what_to_do(tmp_path):
    import soundfile as sf
    from lib.spoof import partialspoof as P
    sf.write(tmp_path / "hi.wav", np.zeros(44100, np.float32), 44100)
    with pytest.raises(ValueError, match=r"44100 Hz.*16 kHz: resample it"):
        P.read_audio(tmp_path / "hi.wav")
    sf.write(tmp_path / "st.wav", np.zeros((16000, 2), np.float32), 16000)
    with pytest.raises(ValueError, match=r"2 channels.*downmix"):
        P.read_audio(tmp_path / "st.wav")
    (tmp_path / "a.vad").write_text("0.0 0.5 101\n0.5 1.0 50\n")
    with pytest.raises(ValueError, match=r"a\.vad, line 2.*unknown PartialSpoof segment code 50.*extract it again"):
        P.read_vad(tmp_path / "a.vad")
    (tmp_path / "b.vad").write_text("0.0 0.5 101\n0.4 1.0 1\n")
    with pytest.raises(ValueError, match=r"line 2.*inside the previous span.*must not overlap"):
        P.read_vad(tmp_path / "b.vad")
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "LA_D_1.wav", np.zeros(16000, np.float32), 16000)
    (tmp_path / "p.txt").write_text("LA_0079 LA_D_1 - - bonafide\nLA_0079 CON_D_2 - A07 spoof\n")
    with pytest.raises(FileNotFoundError, match=r"'CON_D_2' \(entry 2\).*Extract the audio archive"):
        P.read_protocol(tmp_path / "p.txt", audio_dir=tmp_path / "audio")
    (tmp_path / "q.txt").write_text("LA_0079 LA_D_1 bonafide\n")
    with pytest.raises(ValueError, match="CM protocol"):
        P.read_protocol(tmp_path / "q.txt")


@dataclasses.dataclass(frozen=True)
class _SmallSSL:
    """A model source like ``SSLRes1D``: SSL-Res1D on a small random wav2vec 2.0, frozen."""
    frozen: bool = True

    def key(self) -> dict:
        return {"frozen_ssl": self.frozen}

    def factory(self):
        return lambda: build_ssl_res1d(_tiny_ssl_params(), frozen=self.frozen, se_dim=16)


def test_colab_path_on_real_format_miniatures(tmp_path, monkeypatch):
    """The colab configuration's data path (download, extract, read) and a CM run on PartialSpoof- and LA-style
    archives made by the rehearsal's makers, with a small wav2vec 2.0 in place of XLSR-53."""
    from lib.storage import download, errors, hashes
    from lib.spoof import partialspoof as P
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    spoof = _maker()
    urls = {}
    for url, maker in (*[(P.PS_URLS[k], spoof.ps_split) for k in ("train", "dev")],
                       (P.PS_URLS["protocols"], spoof.ps_protocols), (P.PS_VAD_URL, spoof.ps_vad),
                       (P.PS_SEGLAB_URL, spoof.ps_seglab), (P.LA_URL, spoof.la_zip)):
        f = tmp_path / "host" / url.split("/")[-1].split("?")[0]
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(maker(url))
        urls[url] = f.as_uri()
    monkeypatch.setattr(P, "PS_URLS", {k: urls.get(v, v) for k, v in P.PS_URLS.items()})
    monkeypatch.setattr(P, "PS_VAD_URL", urls[P.PS_VAD_URL])
    monkeypatch.setattr(P, "PS_SEGLAB_URL", urls[P.PS_SEGLAB_URL])
    monkeypatch.setattr(P, "LA_URL", urls[P.LA_URL])
    cfg = experiment.CONFIGS["colab"].rehearsed()
    n0 = len(download.downloads())
    sets = real_sets(cfg.data)
    got = download.downloads()[n0:]
    assert len(got) == 6 and {d["verified_by"] for d in got} == {"first_use"}
    assert not list((tmp_path / "cache" / "downloads").glob("*.gz"))        # archives deleted once extracted
    assert {k: len(v) for k, v in sets["eval"].items()} == cfg.data.n_eval
    assert {k: len(v) for k, v in sets["train"].items()} == cfg.data.n_train
    it = sets["eval"]["partial"][0]
    assert it["id"].startswith("CON_D_") and it["wave"].numel() == 56000
    derived = {tuple(k for *_, k in x["segments"]) for x in sets["eval"]["partial"]}   # public labels, derived:
    assert derived == {("BN", "BS", "TR", "SS", "TR", "BS", "BN"), ("BN", "BS", "TR", "SS", "SN")}  # both kinds
    assert it["segments"][2][1] - it["segments"][2][0] == pytest.approx(cfg.data.tr_width)
    assert sets["train"]["full"][0]["id"].startswith("LA_T_2")                # fully spoofed: LA's spoofs
    assert real_sets(cfg.data)["eval"]["partial"][0]["id"] == it["id"]        # from the extracted subset
    assert len(download.downloads()) == n0 + 6
    # the authors' five-code files, when a learner has them: read instead of the derivation, TR widened
    authors = dataclasses.replace(cfg.data, labels="authors", authors_vad=str(tmp_path / "vad_20sil"))
    with pytest.raises(FileNotFoundError, match=r"labels='authors': 3 of 3 label files missing.*vad_20sil/dev/"):
        real_sets(authors)
    for x in sets["eval"]["partial"]:
        f = tmp_path / "vad_20sil" / "dev" / f"{x['id']}.vad"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("0.0 0.3 101\n0.3 1.2 1\n1.2 1.205 100\n1.205 3.2 7\n3.2 3.5 107\n")
    a = real_sets(authors)["eval"]["partial"][0]
    assert [k for *_, k in a["segments"]] == ["BN", "BS", "TR", "SS", "SN"] and a["id"] == it["id"]
    assert a["segments"][2][1] - a["segments"][2][0] == pytest.approx(cfg.data.tr_width)
    assert len(download.downloads()) == n0 + 6                                # nothing downloaded for them
    cfg = dataclasses.replace(cfg, model=_SmallSSL())                        # a small wav2vec 2.0, frozen
    res = experiment.real_run("partial", 0, cfg)
    assert len(res["cam_spoof"]) == 3 and all(res["N"][k] > 0 for k in KINDS) and set(res["rcq_spoof"]) == set(KINDS)
    assert not [k for k in res["state"] if k.startswith("frontend.ssl.")]
    m = experiment.load_cm(cfg, res)
    assert torch.equal(m.fc.weight, res["state"]["fc.weight"])


# ---------------------------------------------------------------- the paper's numbers and the seaborn figures
def test_paper_numbers_cover_every_type_and_the_chapter_quotes_no_other_copy():
    from lib.spoof import paper_numbers as PN
    for split in ("dev", "eval"):
        t2 = PN.table2(split)
        assert {row for row in t2} == {(a, t) for a in ("ASVspoof19", "PartialSpoof") for t in ("spoof", "bona fide")}
        for (_, target), row in t2.items():
            assert set(row) == set(KINDS) | ({"EER"} if target == "spoof" else set())
        assert set(PN.TABLE3[split]) == set(KINDS)
    assert set(PN.TRAINING_SET.values()) == {a for a, _ in PN.TABLE2["dev"]}
    lo, hi = PN.eer_range()
    assert lo == min(PN.TABLE2[s][(a, "spoof")]["EER"] for s in PN.TABLE2 for a in PN.TRAINING_SET.values()) < hi
    with pytest.raises(ValueError, match="Table 2 for the PartialSpoof splits"):
        PN.table2("train")
    values = {f"{v:.2f}" for col in PN.TABLE2.values() for row in col.values() for v in row.values()}
    values |= {f"{v:.2f}" for row in PN.TABLE3.values() for v in row.values()}
    _, cells = _chapter_code_cells()
    code = "\n".join(ln for c in cells for ln in c)
    copies = sorted(v for v in values if re.search(rf"(?<![\d.]){re.escape(v)}(?!\d)", code))
    assert not copies, f"the chapter's code spells out the paper's numbers {copies}: read them from paper_numbers"


def test_rcq_heatmaps_shade_each_row_by_its_own_largest_value():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lib.spoof import plots
    ours = {"a": {"BS": 1.0, "SS": -2.0, "TR": 4.0, "BN": 0.0, "SN": -1.0},
            "b": {"BS": 50.0, "SS": -100.0, "TR": 25.0, "BN": 0.0, "SN": 10.0}}
    paper = {"a": {k: -v for k, v in ours["a"].items()}}
    fig = plots.rcq_heatmaps(ours, paper, KINDS)
    left, right = fig.axes[:2]
    shade = np.asarray(left.collections[0].get_array()).reshape(2, 5)
    np.testing.assert_allclose(shade[0], [0.25, -0.5, 1.0, 0.0, -0.25])        # row a: divided by 4
    np.testing.assert_allclose(shade[1], [0.5, -1.0, 0.25, 0.0, 0.1])          # row b: by 100, the same colours
    assert [t.get_text() for t in left.texts][:5] == ["+1.0", "-2.0", "+4.0", "+0.0", "-1.0"]
    paper_shade = np.ma.getdata(right.collections[0].get_array()).reshape(2, 5)
    assert np.isnan(paper_shade[1]).all() and paper_shade[0][2] == -1.0      # a row the paper lacks stays blank
    plt.close(fig)


def test_per_seed_figure_marks_the_papers_value_of_each_cm():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lib.spoof import plots
    rows = [{"CM": cm, "seed": s, "EER": 30.0 + s, **{k: float(i + s) for i, k in enumerate(KINDS)}}
            for cm in ("x", "y") for s in range(3)]
    paper = {"x": {k: -10.0 - i for i, k in enumerate(KINDS)}, "y": {k: 10.0 + i for i, k in enumerate(KINDS)}}
    fig = plots.per_seed_figure(rows, paper, {"x": 4.0, "y": 0.5}, KINDS)
    marks = [c for c in fig.axes[0].collections if c.get_label() == "paper" or len(c.get_offsets()) == len(KINDS)
             and np.allclose(np.abs(c.get_offsets()[:, 1]) // 10, 1)]
    ys = sorted(float(y) for c in marks for y in c.get_offsets()[:, 1])
    assert ys == sorted([*paper["x"].values(), *paper["y"].values()])
    strips = [c for c in fig.axes[1].collections if len(c.get_offsets()) == 3]
    assert sorted(float(y) for c in strips for y in c.get_offsets()[:, 1]) == [30, 30, 31, 31, 32, 32]
    plt.close(fig)
