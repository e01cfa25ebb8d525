"""Work chapter 1 does once and then reuses: the machine's outputs on the same images, the latents of the training
crops that every finetuning run draws from, the photos read once per process. A reuse must give exactly what
computing again gives, and must not be reused once anything it depends on has changed."""

from __future__ import annotations

import torch
from torch import nn

from lib.icm import data
from lib.icm import decoder_finetuning as FT
from lib.icm import experiment as X
from lib.icm import machine as M
from tests.test_icm import small_codec  # the same tiny codec as test_icm's

torch.set_num_threads(1)


class CountingMachine(nn.Module):
    """A tiny machine with the outputs of lib.icm.machine's (logits and feature maps) that counts its passes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.fc, self.passes = nn.Conv2d(3, 4, 3, 2), nn.Linear(4, 10), 0

    def forward(self, x):
        self.passes += 1
        f = self.conv(x)
        return {"logits": self.fc(f.mean((-2, -1))), "features": [f]}


def images(n=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, size, size, generator=g) for _ in range(n)]


def same(a, b):
    return torch.equal(a["logits"], b["logits"]) and all(
        torch.equal(u, v) for fa, fb in zip(a["features"], b["features"]) for u, v in zip(fa, fb))


def test_outputs_run_the_machine_once_per_images_and_weights():
    m, xs = CountingMachine(), images()
    first = M.outputs(m, xs)
    assert m.passes == 1
    assert same(M.outputs(m, xs), first) and same(M.outputs(m, [x.clone() for x in xs]), first)
    assert m.passes == 1                                       # the same images: kept
    with torch.no_grad():
        fresh = m(torch.cat(xs))
    assert torch.equal(first["logits"], fresh["logits"])       # what the machine itself gives
    M.outputs(m, [x.flip(-1) for x in xs])
    assert m.passes == 3                                       # other images: the machine runs
    with torch.no_grad():
        m.conv.weight.mul_(2)                                  # other weights, changed in place
    changed = M.outputs(m, xs)
    assert m.passes == 4 and not torch.equal(changed["logits"], first["logits"])
    xs[0].mul_(0.5)                                            # an image changed in place
    M.outputs(m, xs)
    assert m.passes == 5


def test_outputs_keep_a_bounded_number_of_lists(monkeypatch):
    m = CountingMachine()
    lists = [images(seed=s) for s in range(M.KEEP + 1)]
    for xs in lists:
        M.outputs(m, xs)
    M.outputs(m, lists[0])                                     # the oldest was let go
    assert m.passes == M.KEEP + 2
    monkeypatch.setattr(M, "KEEP_BYTES", 0)                    # nothing fits: nothing is kept
    M.outputs(m, lists[1]), M.outputs(m, lists[1])
    assert m.passes == M.KEEP + 4


def test_finetuning_latents_are_memoised_by_the_crops_and_the_encoder(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    calls = []
    real = FT.encode_latents
    monkeypatch.setattr(FT, "encode_latents", lambda codec, x: calls.append(1) or real(codec, x))
    codec, x = small_codec(), torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = X._memoised_latents(codec, x)
    assert torch.equal(y, real(codec, x)) and torch.equal(X._memoised_latents(codec, x), y) and len(calls) == 1
    X._memoised_latents(codec, x.flip(-1))                        # other crops
    assert len(calls) == 2
    with torch.no_grad():
        codec.g_a[0].weight.mul_(1.5)                          # another encoder
    assert torch.equal(X._memoised_latents(codec, x), real(codec, x)) and len(calls) == 3


def test_memoised_finetuning_is_the_finetuning_bit_for_bit(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    g = torch.Generator().manual_seed(2)
    photos = [(n, torch.rand(3, 80, 96, generator=g)) for n in "ab"]
    base = small_codec(3)
    for k in (2, 1):   # the second run reads the latents the first one stored
        cfg = FT.FinetuneConfig(steps=2, batch=2, crop=64, pool=4, k=k, patch=32, ndf=8, lr_g=1e-2)
        memoised, direct = X.run_finetune(base, photos, cfg, milestones=[1]), FT.finetune(base, photos, cfg,
                                                                                        milestones=[1])
        assert memoised["history"] == direct["history"]
        for step, head in direct["snapshots"].items():
            assert all(torch.equal(memoised["snapshots"][step][n], t) for n, t in head.items())
    assert len(list((tmp_path / "memo").glob("icm-latents-*"))) == 1


def test_photos_are_read_once_and_each_call_gets_its_own_list():
    a = data.load_photos()
    a.pop()
    b = data.load_photos()
    assert len(b) == len(a) + 1 and b is not a
    assert [n for n, _ in b] == [n for n, _ in data.load_photos()]
