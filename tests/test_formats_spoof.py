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

from lib.spoof import partialspoof as P
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
    files = _members(spoof.ps_vad(P.PS_VAD_URL))
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
    files = _members(spoof.ps_seglab(P.PS_SEGLAB_URL))
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
    vad = _members(spoof.ps_vad(P.PS_VAD_URL))
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
