"""The ICM codec: a learned image codec trained end to end for a machine (Le et al., ICIP 2022, Sec. 2).

We use CompressAI's factorized-prior model (Ballé et al., ICLR 2018; ``bmshj2018-factorized``) as the codec. Its
synthesis transform ``g_s`` is four transposed convolutions (k=5, s=2), the layer type that draws checkerboards::

    x ─► g_a ─► y ─► Q ─► y_hat ─► EB (rANS bitstream) ─► y_hat ─► g_s ─► x_hat
                 (frozen during finetuning)                        g_s.0, g_s.1 trained

Two details keep training and real decoding in agreement:

- the decoder sees the *rounded* latent ``y_hat = round(y − m) + m`` (``m`` the entropy bottleneck's medians, as in
  ``compress()``), with a straight-through gradient; the rate term still uses CompressAI's noisy likelihoods;
- ``x_hat`` is clamped to [0, 1] as ``decompress()`` does, with a straight-through gradient.
"""

from __future__ import annotations

import hashlib

import torch
from compressai.models import FactorizedPrior
from compressai.zoo.image import cfgs, model_urls
from compressai.zoo.pretrained import load_pretrained

from lib import validate
from lib.storage import checkpoint, download, hashes

STRIDE = 16  # g_a downsamples by 2**4


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` forward, identity backward."""
    return x + (torch.round(x) - x).detach()


def ste_clamp(x: torch.Tensor) -> torch.Tensor:
    """``clamp(x, 0, 1)`` forward, identity backward."""
    return x + (x.clamp(0, 1) - x).detach()


def check_images(x, *, stride: int = STRIDE, name: str = "x") -> torch.Tensor:
    """A (B, 3, H, W) or (3, H, W) float batch in [0, 1] with H, W multiples of ``stride``, as (B, 3, H, W)
    (:func:`lib.validate.images`)."""
    return validate.images(x, name=name, stride=stride, needs="the codec (its total stride)")


class ICMCodec(FactorizedPrior):
    """CompressAI's ``bmshj2018-factorized`` with straight-through rounding and clamping.

    ``forward(x)`` returns ``{"x_hat", "likelihoods", "y_hat"}``; ``compress``/``decompress`` are CompressAI's (real
    rANS bitstreams), and decode exactly what ``forward`` shows in ``eval()`` mode.
    """

    def medians(self) -> torch.Tensor:
        """The entropy bottleneck's per-channel medians, shaped (1, M, 1, 1)."""
        return self.entropy_bottleneck._get_medians().detach().reshape(1, -1, 1, 1)

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """The latent the decoder receives: ``round(y − m) + m`` (what ``decompress`` rebuilds), straight-through."""
        m = self.medians()
        return ste_round(y - m) + m

    def forward(self, x):
        x = check_images(x)
        y = self.g_a(x)
        _, y_likelihoods = self.entropy_bottleneck(y)  # noisy proxy in train mode: the rate term
        y_hat = self.quantize(y)
        x_hat = ste_clamp(self.g_s(y_hat))
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods}, "y_hat": y_hat}

    def compress(self, x):
        _check_ready(self)
        return super().compress(check_images(x))

    def decompress(self, strings, shape):
        _check_ready(self)
        return super().decompress(strings, shape)


def _coder(codec) -> str:
    """A fingerprint of the codec's entropy-coder tables (what a bitstream can only be decoded with)."""
    eb, h = codec.entropy_bottleneck, hashlib.sha256()
    for t in (eb._quantized_cdf, eb._cdf_length, eb._offset):
        h.update(str(tuple(t.shape)).encode() + t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _check_ready(codec) -> None:
    """Refuse a codec whose entropy coder has no tables yet (CompressAI's "Uninitialized CDFs")."""
    if codec.entropy_bottleneck._quantized_cdf.numel() == 0:
        raise ValueError("codec has no entropy-coder tables yet (a codec built or trained here needs them before "
                         "it can write or read bitstreams): call codec.update(force=True) once, after training")


def build_codec(N: int, M: int) -> ICMCodec:
    return ICMCodec(N=N, M=M)


def bpp_from_likelihoods(likelihoods: dict, num_pixels: int) -> torch.Tensor:
    """Rate estimate in bits per pixel: ``Σ −log2 p(ŷ) / (B·H·W)``."""
    num_pixels = validate.integer(num_pixels, "num_pixels", minimum=1, hint="B·H·W of the coded batch")
    return sum(-torch.log2(l).sum() for l in likelihoods.values()) / num_pixels


@torch.no_grad()
def compress_all(codec: ICMCodec, images: list[torch.Tensor]) -> list[dict]:
    """Real bitstreams (one ``compress()`` per image, its transform on the codec's device):
    ``[{"strings", "shape", "bytes", "sha256", "coded_by"}]`` (``coded_by``: a fingerprint of the entropy coder's
    tables and the latent shape, which :func:`decompress_all` checks before decoding).

    Each item of ``images`` is one image, (3, H, W) or (1, 3, H, W); a batch of several is refused."""
    codec.eval()
    _check_ready(codec)
    out, coder = [], None
    for i, x in enumerate(images):
        x = check_images(x, name=f"images[{i}]")
        if x.shape[0] != 1:
            raise ValueError(f"images[{i}] is a batch of {x.shape[0]} images {tuple(x.shape)}: compress_all codes "
                             f"one image per item and would report only the first; pass list(batch) instead")
        enc = codec.compress(x.to(next(codec.parameters()).device))
        data = b"".join(s[0] for s in enc["strings"])
        shape = tuple(enc["shape"])
        coder = coder if i else _coder(codec)
        out.append({"strings": enc["strings"], "shape": shape, "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(), "coded_by": f"{coder}/{shape[0]}x{shape[1]}"})
    return out


@torch.no_grad()
def decompress_all(codec: ICMCodec, bitstreams: list[dict]) -> list[torch.Tensor]:
    """Decoded images (on the CPU) of :func:`compress_all`'s bitstreams; each one's bytes are first checked against the
    ``sha256`` stored beside them (a damaged bitstream decodes to garbage without any error of its own)."""
    codec.eval()
    _check_ready(codec)
    out, coder = [], None
    for i, b in enumerate(bitstreams):
        if not isinstance(b, dict) or not {"strings", "shape", "coded_by"} <= set(b):
            raise ValueError(f"bitstreams[{i}] must be a dict as compress_all returns it (with 'strings', 'shape' and "
                             f"'coded_by'); got {type(b).__name__} {sorted(b) if isinstance(b, dict) else ''}: "
                             f"encode the images with compress_all")
        data = b"".join(s[0] for s in b["strings"])
        if "sha256" in b and hashlib.sha256(data).hexdigest() != b["sha256"]:
            raise ValueError(f"bitstreams[{i}] is damaged: its {len(data)} bytes do not match the sha256 stored with "
                             f"it ({b['sha256'][:12]}…; {b.get('bytes', '?')} bytes when coded). Re-encode the image "
                             f"with compress_all, or reload the bitstream from where it was saved")
        shape = b["shape"]
        if not isinstance(shape, (tuple, list)) or len(shape) != 2 or \
                not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
            raise ValueError(f"bitstreams[{i}]['shape'] must be the latent's (height, width), two whole numbers > 0, "
                             f"as compress_all stores it; got {shape!r}")
        coder = coder or _coder(codec)                       # decoding at a wrong shape may never end: check first
        if str(b["coded_by"]).split("/")[0] != coder:
            raise ValueError(f"bitstreams[{i}] was written by another codec (or quality) than this one: its "
                             f"entropy-coder tables differ. Decode it with the codec that wrote it, or re-encode "
                             f"the image with this codec")
        if b["coded_by"] != f"{coder}/{shape[0]}x{shape[1]}":
            raise ValueError(f"bitstreams[{i}]['shape'] is {tuple(shape)}, but it was coded at latent shape "
                             f"{str(b['coded_by']).split('/')[-1]}: restore the shape compress_all stored")
        y_hat = codec.entropy_bottleneck.decompress(b["strings"][0], tuple(shape))
        # the entropy coder reads any bytes at any shape: coding the latents again must give the bytes back
        if not torch.isfinite(y_hat).all() or codec.entropy_bottleneck.compress(y_hat) != list(b["strings"][0]):
            raise ValueError(f"bitstreams[{i}] was not written by this codec at shape {tuple(shape)}: its latents do "
                             f"not code back to its bytes (another codec's or quality's bitstream, or a wrong "
                             f"'shape'). Decode it with the codec that wrote it, or re-encode the image")
        x_hat = codec.g_s(y_hat).clamp_(0, 1)
        if not torch.isfinite(x_hat).all():
            raise ValueError(f"bitstreams[{i}] decodes to NaN or inf pixels: the codec's weights are not finite; "
                             f"reload its checkpoint")
        out.append(x_hat.cpu())
    return out


def state_hashes(module: torch.nn.Module, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every parameter and buffer (bit-exact fingerprint), except names starting with ``exclude``."""
    out = {}
    for name, t in module.state_dict().items():
        if any(name == p or name.startswith(p + ".") for p in exclude):
            continue
        out[name] = hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    return out


# --- colab / paper scale: CompressAI's pretrained (MSE-trained) weights as an initialisation only ------------------
# the λ each quality was trained with (MSE: bpp + λ·255²·MSE), from CompressAI's model-zoo page: the qualities
# the course uses as an initialisation
COMPRESSAI_LMBDA = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130}


def compressai_url(quality: int) -> str:
    """The URL of CompressAI's ``bmshj2018-factorized`` (MSE) weights at ``quality``, from CompressAI's own zoo
    table; the 8 hex digits in its file name are the start of its sha256 (torch.hub's convention)."""
    quality = validate.integer(quality, "quality", minimum=min(COMPRESSAI_LMBDA), maximum=max(COMPRESSAI_LMBDA),
                               hint="the course uses CompressAI's qualities 1-4 as an initialisation")
    return model_urls["bmshj2018-factorized"]["mse"][quality]


def pretrained_init(quality: int = 2, *, url: str | None = None, sha256: str | None = None) -> ICMCodec:
    """CompressAI's ``bmshj2018-factorized`` (MSE) weights at ``quality`` as an :class:`ICMCodec`, fetched and
    checked against the sha256 prefix in the file name (or against ``sha256``, if given), and read by
    :func:`from_compressai_checkpoint` (the published files' old key layout or the current one).

    Only an initialisation: those weights were trained for PSNR, not for a machine.
    """
    url = url or compressai_url(quality)
    path = download.fetch(url, reader="torch.load(weights_only=True)", sha256=sha256,
                          hash_prefix=None if sha256 else hashes.hub_prefix(url))
    return ICMCodec.from_state_dict(from_compressai_checkpoint(path, quality).state_dict())


def from_compressai_checkpoint(path, quality: int):
    """CompressAI's ``bmshj2018-factorized`` model (``compressai.models.FactorizedPrior``) from a file of its model
    zoo at ``quality``, in the old key layout the published files use (``entropy_bottleneck._biases.0``,
    ``_matrices.N``, ``_factors.N``) or the current one.

    Loaded the way ``compressai.zoo`` loads its own downloads: ``torch.load(weights_only=True)``, then CompressAI's
    key conversion (``compressai.zoo.pretrained.load_pretrained``), then ``FactorizedPrior.from_state_dict``.
    """
    sizes = cfgs["bmshj2018-factorized"]
    if quality not in sizes:
        raise ValueError(f"quality must be one of {sorted(sizes)} for bmshj2018-factorized, got {quality}")
    state = checkpoint.load(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or "g_a.0.weight" not in state or "g_a.6.weight" not in state:
        raise ValueError(f"{path} is not a CompressAI bmshj2018-factorized state dict (no g_a.0.weight/g_a.6.weight)")
    state = load_pretrained(state)
    N, M = state["g_a.0.weight"].shape[0], state["g_a.6.weight"].shape[0]
    if (N, M) != tuple(sizes[quality]):
        raise ValueError(f"{path} holds a model with N={N}, M={M}; CompressAI's quality {quality} has "
                         f"N={sizes[quality][0]}, M={sizes[quality][1]}: is it the file of another quality?")
    try:
        return FactorizedPrior.from_state_dict(state).eval()
    except RuntimeError as err:
        raise ValueError(f"{path} does not load into CompressAI's bmshj2018-factorized (quality {quality}): "
                         f"{str(err).splitlines()[0]}") from None
