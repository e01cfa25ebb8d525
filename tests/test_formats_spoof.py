"""Chapter 2's downloads against their publishers: the rehearsal's miniatures read through the publisher's own
loading path (torchaudio's bundle for XLSR-53) or the way the publisher's code reads them (PartialSpoof's labels),
and through ours, with the same result."""
import io
import re
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio

from lib.spoof import partialspoof as PS, partialspoof_labels as P, rcq_counts
from lib.spoof.ssl_res1d import build_ssl_res1d, xlsr53_url

ROOT = Path(__file__).resolve().parent.parent


def _maker():
    sys.path.insert(0, str(ROOT / "colab" / "rehearsal"))
    from makers import spoof
    return spoof


@pytest.fixture(scope="session")
def xlsr53_file(tmp_path_factory):
    """The rehearsal's XLSR-53 miniature (about 1.2 GB), made once per test session."""
    path = tmp_path_factory.mktemp("xlsr53") / "wav2vec2_fairseq_large_xlsr53.pth"
    path.write_bytes(_maker().xlsr53_state(xlsr53_url()))
    yield path
    path.unlink()


def test_xlsr53_miniature_loads_through_torchaudios_bundle_and_ours_alike(xlsr53_file, tmp_path, monkeypatch):
    """torchaudio's ``WAV2VEC2_XLSR53.get_model()`` finds the file where ``torch.hub.load_state_dict_from_url`` keeps
    its downloads (``<hub dir>/checkpoints/<file name of the URL>``) and loads it strictly; ours fetches the same
    file by URL. Same tensor names, shapes and values; same features and front-end output on one input."""
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    placed = hub / "checkpoints" / Path(xlsr53_url()).name
    placed.symlink_to(xlsr53_file)

    def no_network(*args, **kwargs):
        raise AssertionError("torch.hub tried to download: the miniature is not where the bundle looks")
    bundle = torchaudio.pipelines.WAV2VEC2_XLSR53
    with monkeypatch.context() as m:
        m.setattr(torch.hub, "get_dir", lambda: str(hub))
        m.setattr(torch.hub, "download_url_to_file", no_network)
        theirs = bundle.get_model(dl_kwargs={"weights_only": True})

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    ours = build_ssl_res1d(pretrained=True, url=xlsr53_file.as_uri(), frozen=True).eval()
    a, b = theirs.model.state_dict(), ours.frontend.ssl.state_dict()
    assert list(a) == list(b) and len(a) > 400
    for k in a:
        assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype == torch.float32, k
        assert torch.equal(a[k], b[k]), k

    torch.manual_seed(0)
    x = 0.1 * torch.randn(1, 16000)
    with torch.no_grad():
        torch.nn.init.normal_(ours.frontend.layer_weights)      # layers mixed unevenly
        feats, _ = theirs.extract_features(x)                   # the bundle normalises the waveform itself
        mine, _ = ours.frontend(x)
        w = torch.softmax(ours.frontend.layer_weights, 0)
    assert len(feats) == bundle._params["encoder_num_layers"]
    want = sum(wi * h for wi, h in zip(w, feats)).transpose(1, 2)
    assert mine.shape == want.shape == (1, 1024, 49)
    torch.testing.assert_close(mine, want, rtol=1e-5, atol=1e-5)


def _members(blob: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as t:
        return {m.name: t.extractfile(m).read() for m in t if m.isfile()}


def test_public_vad_miniature_is_the_maintainers_format_and_ours_reads_it(tmp_path):
    """The layout and lines the maintainer describes (PartialSpoof issue #2): ``database/vad/{split}/{utt}.vad``,
    ``start end label`` in seconds, labels 0 spoof / 1 bona fide / 2 non-speech; spans tile the utterance."""
    spoof = _maker()
    files = _members(spoof.ps_vad(PS.PS_VAD_URL))
    assert files and all(re.fullmatch(r"database/vad/(train|dev|eval)/(CON|LA)_[TDE]_\d{7}\.vad", n) for n in files)
    for name, data in files.items():
        rows = [line.split(" ") for line in data.decode().splitlines()]
        assert all(len(r) == 3 and r[2] in ("0", "1", "2") for r in rows), name
        times = [(float(a), float(b)) for a, b, _ in rows]
        assert times[0][0] == 0 and all(x[1] == y[0] for x, y in zip(times, times[1:])), name
        assert ("0" in {r[2] for r in rows}) == ("/CON_" in name)     # only the partial spoofs hold spoof
        f = tmp_path / Path(name).name
        f.write_bytes(data)
        assert [(a, b, str(c)) for a, b, c in P.read_public_vad(f)] == [(float(a), float(b), c) for a, b, c in rows]


def test_segment_label_miniature_reads_as_partialspoofs_code_reads_it(tmp_path):
    """PartialSpoof's 03multireso/model.py: ``np.load(path, allow_pickle=True).item()`` gives {utt: labels};
    ``'0' in labels`` marks an utterance spoofed; a coarser resolution is the min over windows of the 10 ms one
    (``lab_in_scale``). Our reader (no pickle beyond numpy arrays) gives the same labels, and they agree with the
    ``.vad`` miniature's spoofed spans."""
    spoof = _maker()
    files = _members(spoof.ps_seglab(PS.PS_SEGLAB_URL))
    name = "database/segment_labels/dev_seglab_0.01.npy"
    assert name in files and "database/segment_labels/eval_seglab_0.64.npy" in files
    theirs = np.load(io.BytesIO(files[name]), allow_pickle=True).item()      # the publisher's own call
    assert {u for u, lab in theirs.items() if "0" in lab} == {u for u, _ in spoof.utterances("dev") if "CON" in u}
    coarse = np.load(io.BytesIO(files["database/segment_labels/dev_seglab_0.16.npy"]), allow_pickle=True).item()
    for u, lab in theirs.items():
        n = len(lab) // 16
        assert [min(lab[i * 16:(i + 1) * 16]) for i in range(n)] == list(coarse[u]), u
    (tmp_path / "dev_seglab_0.01.npy").write_bytes(files[name])
    ours = P.read_seglab(tmp_path / "dev_seglab_0.01.npy")
    assert set(ours) == set(theirs) and all(ours[u].tolist() == [int(x) for x in theirs[u]] for u in theirs)
    vad = _members(spoof.ps_vad(PS.PS_VAD_URL))
    for u in ours:
        (tmp_path / f"{u}.vad").write_bytes(vad[f"database/vad/dev/{u}.vad"])
        for a, b, c in P.read_public_vad(tmp_path / f"{u}.vad"):
            if c != 2:        # speech: its .vad source is what the segment labels say, all through
                assert set(ours[u][round(a / 0.01):round(b / 0.01)].tolist()) == {c}, (u, a, b)


def test_every_chapter_2_download_has_a_format_row():
    """Each URL regex of the chapter's miniatures names its file, what vouches for its format, how it is verified."""
    spoof = _maker()
    assert set(spoof.FORMATS) == {pattern for pattern, _ in spoof.MAKERS}
    for pattern, row in spoof.FORMATS.items():
        assert set(row) == {"file", "vouched_by", "verified"} and all(row.values()), pattern
    for url in spoof.urls():
        assert any(re.fullmatch(p, url) for p in spoof.FORMATS), url


# ---------------------------------------------------------------- the label files' readers and the derivation
def test_partialspoof_vad_reader(tmp_path):
    f = tmp_path / "CON_E_0000001.vad"
    f.write_text("0.00 0.31 101\n0.31 1.20 1\n1.20 1.205 100\n1.205 2.00 7\n2.00 2.30 107\n")
    segs = P.read_vad(f)
    assert [k for *_, k in segs] == ["BN", "BS", "TR", "SS", "SN"]
    assert segs[2][:2] == (1.2, 1.205)
    # a 5 ms join has no interior frame: the pitfall the chapter warns about
    assert rcq_counts([np.ones(115)], [segs])["TR"] == 0
    with pytest.raises(ValueError, match="unknown PartialSpoof segment code"):
        P.kind_of_code(50)
    p = tmp_path / "proto.txt"
    p.write_text("LA_0079 CON_E_0000001 - - spoof\nLA_0079 LA_E_1000001 - - bonafide\n")
    assert PS.read_protocol(p) == [("CON_E_0000001", 1), ("LA_E_1000001", 0)]


def _public(tmp_path, name, spans, spoofed, dur):
    """A hand-made public label pair: ``name.vad`` (0 spoof, 1 bona fide, 2 non-speech) and 10 ms segment labels
    that say spoof over the ``spoofed`` (start, end) spans; returns what the course reads from them."""
    f = tmp_path / f"{name}.vad"
    f.write_text("".join(f"{a:.3f} {b:.3f} {c}\n" for a, b, c in spans))
    lab = np.ones(int(round(dur / 0.01)), int)
    for a, b in spoofed:
        lab[int(round(a / 0.01)):int(round(b / 0.01))] = 0
    return P.read_public_vad(f), lab


def _kinds(segs):
    return [k for *_, k in segs]


def test_derive_segments_join_inside_speech(tmp_path):
    spans, lab = _public(tmp_path, "a", [(0, 0.3, 2), (0.3, 1.2, 1), (1.2, 2.3, 0), (2.3, 3.0, 1)], [(1.2, 2.3)], 3.0)
    segs = P.derive_segments(spans, lab, 0.06)
    assert _kinds(segs) == ["BN", "BS", "TR", "SS", "TR", "BS"]
    assert [s[:2] for s in segs[2:5]] == [pytest.approx((1.17, 1.23)), pytest.approx((1.23, 2.27)),
                                          pytest.approx((2.27, 2.33))]
    assert all(x[1] == pytest.approx(y[0]) for x, y in zip(segs, segs[1:])) and segs[-1][1] == 3.0
    assert 2 <= rcq_counts([np.ones(150)], [segs])["TR"] <= 4     # a 60 ms join: 1-2 interior frames
    assert _kinds(P.derive_segments(spans, lab, 0.0)) == ["BN", "BS", "SS", "BS"]   # width 0: no TR at all


def test_derive_segments_joins_at_non_speech(tmp_path):
    """A pause between bona fide and spoofed speech takes the source its segment labels give it (more than half
    spoof → SN); the join is where the source changes, at either edge of the pause."""
    spans = [(0, 1.0, 1), (1.0, 1.2, 2), (1.2, 2.0, 0), (2.0, 2.5, 2), (2.5, 3.0, 1)]
    spans, lab = _public(tmp_path, "b", spans, [(1.05, 2.0), (2.0, 2.2)], 3.0)
    segs = P.derive_segments(spans, lab, 0.06)
    # pause 1: 15 of 20 units spoof → SN, join at its start; pause 2: 20 of 50 spoof → BN, join at its start
    assert _kinds(segs) == ["BS", "TR", "SN", "SS", "TR", "BN", "BS"]
    assert segs[1][:2] == pytest.approx((0.97, 1.03)) and segs[4][:2] == pytest.approx((1.97, 2.03))
    spans2, lab2 = _public(tmp_path, "c", spans, [(1.2, 2.0)], 3.0)   # pauses bona fide: join after the pause
    assert _kinds(P.derive_segments(spans2, lab2, 0.06)) == ["BS", "BN", "TR", "SS", "TR", "BN", "BS"]


def test_derive_segments_start_or_end_spoofed_and_joins_at_the_ends(tmp_path):
    spans, lab = _public(tmp_path, "d", [(0, 1.0, 0), (1.0, 2.0, 1), (2.0, 2.2, 2)], [(0, 1.0)], 2.2)
    assert _kinds(P.derive_segments(spans, lab, 0.06)) == ["SS", "TR", "BS", "BN"]      # starts spoofed: no TR at 0
    spans, lab = _public(tmp_path, "e", [(0, 0.2, 2), (0.2, 1.0, 1), (1.0, 2.0, 0), (2.0, 2.2, 2)],
                         [(1.0, 2.2)], 2.2)
    assert _kinds(P.derive_segments(spans, lab, 0.06)) == ["BN", "BS", "TR", "SS", "SN"]  # ends spoofed, pause too
    # a change 10 ms after the start / before the end: TR clipped to the utterance, the sliver dropped
    spans, lab = _public(tmp_path, "f", [(0, 0.01, 2), (0.01, 1.0, 0), (1.0, 1.99, 1), (1.99, 2.0, 0)],
                         [(0.01, 1.0), (1.99, 2.0)], 2.0)
    segs = P.derive_segments(spans, lab, 0.06)
    assert _kinds(segs) == ["TR", "SS", "TR", "BS", "TR"]
    assert segs[0][:2] == pytest.approx((0.0, 0.04)) and segs[-1][:2] == pytest.approx((1.96, 2.0))
    # two changes closer than the width: one merged TR
    spans, lab = _public(tmp_path, "g", [(0, 1.0, 1), (1.0, 1.03, 0), (1.03, 2.0, 1)], [(1.0, 1.03)], 2.0)
    segs = P.derive_segments(spans, lab, 0.06)
    assert _kinds(segs) == ["BS", "TR", "BS"] and segs[1][:2] == pytest.approx((0.97, 1.06))


def test_public_labels_bad_inputs_say_what_to_do(tmp_path):
    (tmp_path / "five.vad").write_text("0.0 0.3 101\n0.3 1.0 1\n")
    with pytest.raises(ValueError, match=r"five\.vad, line 1.*not a public PartialSpoof .vad label.*labels='authors'"):
        P.read_public_vad(tmp_path / "five.vad")
    (tmp_path / "pub.vad").write_text("0.0 0.3 2\n0.3 1.0 0\n")
    with pytest.raises(ValueError, match=r"unknown PartialSpoof segment code 0.*labels='public'"):
        P.read_vad(tmp_path / "pub.vad")
    with pytest.raises(ValueError, match=r"segment labels cover 0.5 s but the .vad labels run to 1 s.*same split"):
        P.derive_segments(P.read_public_vad(tmp_path / "pub.vad"), np.ones(50), 0.06)


def test_segment_label_file_read_without_running_its_pickle(tmp_path):
    """The publisher's layout (a pickled dict of '0'/'1' arrays, read by np.load(...).item() in PartialSpoof's
    model.py) reads; a pickle that names any other class is refused before it is called."""
    import fractions
    table = {"CON_D_0000001": np.array(list("1100")), "LA_D_1000001": np.array([1, 1, 1])}
    np.save(tmp_path / "dev_seglab_0.01.npy", table, allow_pickle=True)
    got = P.read_seglab(tmp_path / "dev_seglab_0.01.npy")
    assert got["CON_D_0000001"].tolist() == [1, 1, 0, 0] and got["LA_D_1000001"].tolist() == [1, 1, 1]
    np.save(tmp_path / "bad.npy", {"a": fractions.Fraction(1, 2)}, allow_pickle=True)
    with pytest.raises(ValueError, match=r"fractions.Fraction is not allowed.*extract it again"):
        P.read_seglab(tmp_path / "bad.npy")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"not the pickled \{utterance: labels\} dict"):
        P.read_seglab(tmp_path / "plain.npy")
    np.save(tmp_path / "two.npy", {"u": np.array(["0", "2"])}, allow_pickle=True)
    with pytest.raises(ValueError, match=r"'u' are not a list of 0/1"):
        P.read_seglab(tmp_path / "two.npy")


def test_segment_labels_partialspoof_convention():
    segs = [(0.0, 0.05, "BN"), (0.05, 0.11, "TR"), (0.11, 0.2, "SS"), (0.2, 0.3, "BS")]
    assert P.segment_labels(segs, 0.3).tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert P.segment_labels(segs, 0.3, 0.16).tolist() == [0, 0]            # [0.16, 0.32) still holds spoofed speech
    assert P.segment_labels(segs, 0.32, 0.08).tolist() == [0, 0, 0, 1]
    assert P.segment_labels([(0, 1.0, "BS")], 1.0).sum() == 50


def test_widen_transitions_keeps_segments_contiguous():
    segs = [(0.0, 0.3, "BN"), (0.3, 1.2, "BS"), (1.2, 1.205, "TR"), (1.205, 2.3, "SS"), (2.3, 2.33, "BN")]
    w = P.widen_transitions(segs, 0.06)
    assert [k for *_, k in w] == ["BN", "BS", "TR", "SS", "BN"]
    assert w[2][:2] == pytest.approx((1.1725, 1.2325))
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(w, w[1:])) and w[-1][1] == 2.33
    assert rcq_counts([np.ones(120)], [segs])["TR"] == 0 and rcq_counts([np.ones(120)], [w])["TR"] == 2
    assert P.widen_transitions([(0.0, 0.01, "TR"), (0.01, 0.02, "BN")], 0.06) == [(0.0, 0.02, "TR")]
