"""SSL-Res1D countermeasure and its CPU-sized sibling, behind one interface.

Liu et al., Interspeech 2024 (arXiv 2406.02483), Sec. 2-4; reference config
``wedefense/egs/detection/partialspoof/x12_ssl_res1d/conf/singlereso_utt_xlsr_53_ft_backend_Res1D.yaml``::

    wave ─► front-end ─► (B, F, T) ─► − mean_t ─► Res1D+SE block(s) ─► fc: Conv1d(C→128) ─► mean_t ─► head ─► 2 logits
            SSL: wav2vec 2.0 / XLS-R, softmax-weighted sum of hidden layers (20 ms frames)
            tiny: log power spectrum, 25 ms window, 20 ms hop (the same frames as wav2vec 2.0's CNN)

Every back-end layer has stride 1, so ``fc`` (the Grad-CAM layer) keeps one vector per 20 ms frame.
``forward(wave, lengths=None)``: ``lengths`` (valid samples per row) masks padding, so an utterance scores
the same alone or inside a padded batch; ``model.n_frames(lengths)`` gives those valid frames, from the front-end's
own framing.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn
from torchaudio.models import wav2vec2_model

from lib import validate
from lib.storage import checkpoint, download

from .audio import HOP, WIN, check_waveform_batch


def n_frames(n_samples):
    """Frames for ``n_samples`` samples: 1 + (L − 400) // 320 (0 if shorter than one window)."""
    n = torch.as_tensor(n_samples)
    return torch.where(n >= WIN, 1 + torch.div(n - WIN, HOP, rounding_mode="floor"), torch.zeros_like(n))


def _mask(lengths, T, like):
    if lengths is None:
        return None
    return (torch.arange(T, device=like.device)[None, :] < lengths[:, None]).to(like.dtype)[:, None, :]  # (B,1,T)


def _mean_t(x, mask):
    if mask is None:
        return x.mean(-1)
    return (x * mask).sum(-1) / mask.sum(-1).clamp_min(1)


class LogSpecFrontend(nn.Module):
    """Log power spectrum (torchaudio), 400-sample window, 320 hop, no centring: (B, 201, T) at 20 ms frames."""

    def __init__(self):
        super().__init__()
        self.spec = torchaudio.transforms.Spectrogram(n_fft=WIN, hop_length=HOP, center=False, power=2.0)
        self.out_dim = WIN // 2 + 1

    def n_frames(self, lengths):
        """Valid frames of utterances of ``lengths`` samples: :func:`n_frames`."""
        return n_frames(lengths)

    def forward(self, wave, lengths=None):
        x = torch.log(self.spec(wave) + 1e-8)
        return x, (None if lengths is None else self.n_frames(lengths))


class SSLFrontend(nn.Module):
    """wav2vec 2.0 / XLS-R (torchaudio architecture) with a learnable softmax-weighted sum of its hidden layers.

    ``frozen=True``: the SSL model stays in eval mode, runs without gradients, and its weights (the downloaded
    file) are left out of ``state_dict()`` (checkpoints and cached results hold only what trains); loading such a
    state dict keeps the SSL weights the module already has.
    """

    def __init__(self, params: dict, normalize_waveform: bool = True, frozen: bool = False):
        super().__init__()
        self.ssl = wav2vec2_model(**params)
        self.normalize_waveform = normalize_waveform
        n_layers = params["encoder_num_layers"]
        self.layer_weights = nn.Parameter(torch.zeros(n_layers))
        self.out_dim = params["encoder_embed_dim"]
        self.frozen = frozen
        if frozen:
            self.ssl.requires_grad_(False)
            self._register_state_dict_hook(_drop_ssl)
            self._register_load_state_dict_pre_hook(self._keep_ssl)

    def n_frames(self, lengths):
        """Valid frames of utterances of ``lengths`` samples, through the SSL model's own convolution stack (the
        lengths ``extract_features`` returns; 1 + (L − 400) // 320 for wav2vec 2.0's stack)."""
        n = torch.as_tensor(lengths)
        for layer in self.ssl.feature_extractor.conv_layers:
            n = (torch.div(n - layer.kernel_size, layer.stride, rounding_mode="floor") + 1).clamp_min(0)
        return n

    def _keep_ssl(self, state, prefix, *args):
        for k, v in self.ssl.state_dict().items():
            state.setdefault(f"{prefix}ssl.{k}", v)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.ssl.eval()   # no dropout in a frozen front-end
        return self

    def forward(self, wave, lengths=None):
        if self.normalize_waveform:  # the bundle's layer-norm of the waveform, over valid samples only
            m = None if lengths is None else (torch.arange(wave.shape[1], device=wave.device)[None] < lengths[:, None])
            if m is None:
                wave = F.layer_norm(wave, wave.shape[-1:])
            else:
                m = m.to(wave.dtype)
                mu = (wave * m).sum(1, keepdim=True) / m.sum(1, keepdim=True)
                var = (((wave - mu) * m) ** 2).sum(1, keepdim=True) / m.sum(1, keepdim=True)
                wave = (wave - mu) / torch.sqrt(var + 1e-5) * m
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            hs, out_len = self.ssl.extract_features(wave, lengths)
        w = torch.softmax(self.layer_weights, 0)
        x = sum(wi * h for wi, h in zip(w, hs))  # (B, T, D)
        return x.transpose(1, 2), out_len


def _drop_ssl(module, state, prefix, local_metadata):
    for k in [k for k in state if k.startswith(prefix + "ssl.")]:
        del state[k]
    return state


class SEBlock1D(nn.Module):
    """Squeeze-excitation over channels: time-mean → Linear(C→r) → ReLU → Linear(r→C) → sigmoid → scale."""

    def __init__(self, C, r=128):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(C, r), nn.Linear(r, C)

    def forward(self, x, mask=None):
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(_mean_t(x, mask)))))
        return x * s[:, :, None]


class Res1DBlock(nn.Module):
    """[Conv1d k1 → ReLU → BN] → [Conv1d k3 → ReLU → BN] → [Conv1d k1 → ReLU → BN] → SE, plus the input."""

    def __init__(self, C, se_dim=128):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(C, C, 1), nn.Conv1d(C, C, 3, padding=1), nn.Conv1d(C, C, 1)])
        self.bns = nn.ModuleList([nn.BatchNorm1d(C) for _ in range(3)])
        self.se = SEBlock1D(C, se_dim)

    def forward(self, x, mask=None):
        y = x
        for conv, bn in zip(self.convs, self.bns):
            y = bn(F.relu(conv(y)))
            if mask is not None:
                y = y * mask  # padded frames act as the zero padding of a lone utterance
        return x + self.se(y, mask)


class P2SGradHead(nn.Module):
    """P2SGrad (Wang & Yamagishi 2021): cosine between embedding and class weights; trained with MSE to one-hot."""

    def __init__(self, dim, n_classes=2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * dim ** -0.5)

    def forward(self, e):
        return F.normalize(e, dim=-1) @ F.normalize(self.weight, dim=-1).t()


class SpoofCM(nn.Module):
    """front-end → per-utterance mean subtraction → Res1D+SE → ``fc`` Conv1d → temporal mean → P2SGrad head.

    Output: (B, 2) cosine scores, class 0 = bona fide, class 1 = spoof. ``model.fc`` is the Grad-CAM layer.
    """

    def __init__(self, frontend: nn.Module, channels=None, emb_dim=128, n_blocks=1, se_dim=128):
        super().__init__()
        self.frontend = frontend
        C = channels or frontend.out_dim
        self.proj = nn.Identity() if C == frontend.out_dim else nn.Conv1d(frontend.out_dim, C, 1)
        self.blocks = nn.ModuleList([Res1DBlock(C, se_dim) for _ in range(n_blocks)])
        self.fc = nn.Conv1d(C, emb_dim, 1)
        self.head = P2SGradHead(emb_dim)

    def n_frames(self, lengths):
        """Valid ``fc`` frames of utterances of ``lengths`` samples (the front-end's framing; the back-end keeps it)."""
        return self.frontend.n_frames(lengths)

    def embed(self, wave, lengths=None):
        x, n = self.frontend(wave, lengths)
        mask = _mask(n, x.shape[-1], x)
        x = x - _mean_t(x, mask)[:, :, None]  # per-utterance mean subtraction (CMVN without variance)
        if mask is not None:
            x = x * mask
        x = self.proj(x)
        for blk in self.blocks:
            x = blk(x, mask)
        return _mean_t(self.fc(x), mask)

    def forward(self, wave, lengths=None):
        wave = check_waveform_batch(wave)
        if lengths is not None:
            lengths = check_lengths(lengths, wave.shape[0], wave.shape[1]).to(wave.device)
        return self.head(self.embed(wave, lengths))


def check_labels(y, n_classes: int, name: str = "labels") -> torch.Tensor:
    """Integer class labels in ``[0, n_classes)`` as a long tensor."""
    t = torch.as_tensor(y)
    if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must hold integer class indices in [0, {n_classes}), got {t.dtype}: use "
                         f"torch.as_tensor(labels, dtype=torch.long) (0 = bona fide, 1 = spoof)")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes}), got values in [{int(t.min())}, {int(t.max())}]: "
                         f"one class index per item")
    return t.long()


def check_lengths(lens, batch: int, n_samples: int, name: str = "lengths") -> torch.Tensor:
    """One valid length per batch item, each in ``[1, n_samples]``, as a long tensor."""
    t = torch.as_tensor(lens)
    if t.is_floating_point() or t.dim() != 1 or t.numel() != batch:
        raise ValueError(f"{name} must be one whole number of samples per utterance ({batch}), got "
                         f"{t.dtype} of shape {tuple(t.shape)}: lib.spoof.batch_waveforms returns them")
    if t.numel() and (int(t.min()) < 1 or int(t.max()) > n_samples):
        raise ValueError(f"{name} must lie in [1, {n_samples}] (the batch holds {n_samples} samples per row), got "
                         f"values in [{int(t.min())}, {int(t.max())}]: give each utterance's own length")
    return t


def p2sgrad_loss(scores, labels):
    """P2SGrad-MSE: mean squared error between the cosine scores and the one-hot labels."""
    scores = validate.float_input(validate.finite(scores, "scores"), "scores", "the loss")
    if scores.dim() != 2:
        raise ValueError(f"scores must be (batch, classes), got shape {tuple(scores.shape)}: pass the model's output")
    labels = check_labels(labels, scores.shape[-1], "labels").to(scores.device)
    if labels.shape != scores.shape[:1]:
        raise ValueError(f"labels {tuple(labels.shape)} must hold one class index per row of scores "
                         f"{tuple(scores.shape)}")
    return F.mse_loss(scores, F.one_hot(labels, scores.shape[-1]).to(scores.dtype))


def tiny_cm(channels=64, n_blocks=2, se_dim=32) -> SpoofCM:
    """The CPU countermeasure for ``tiny`` scale: log spectrum + the SSL-Res1D back-end (~70 k parameters)."""
    return SpoofCM(LogSpecFrontend(), channels=channels, emb_dim=channels, n_blocks=n_blocks, se_dim=se_dim)


# torchaudio's URL for the XLSR-53 weights in its own state-dict layout (torchaudio.pipelines.WAV2VEC2_XLSR53).
XLSR53_URL = "https://download.pytorch.org/torchaudio/models/wav2vec2_fairseq_large_xlsr53.pth"


def xlsr53_url() -> str:
    """``WAV2VEC2_XLSR53._path`` under torchaudio's model host (the URL its ``get_model()`` downloads)."""
    return "https://download.pytorch.org/torchaudio/models/" + torchaudio.pipelines.WAV2VEC2_XLSR53._path


def xlsr53_params() -> dict:
    """The XLSR-53 architecture (24 layers, 1024-d), built offline from torchaudio's bundle description."""
    return dict(torchaudio.pipelines.WAV2VEC2_XLSR53._params)


def build_ssl_res1d(params: dict | None = None, pretrained: bool = False, sha256: str | None = None,
                    url: str = XLSR53_URL, frozen: bool = False, **backend) -> SpoofCM:
    """The paper's SSL-Res1D. ``params``: torchaudio wav2vec2_model kwargs (default XLSR-53, built with
    ``torchaudio.models.wav2vec2_model(**WAV2VEC2_XLSR53._params)``).

    ``pretrained=True`` downloads the weights (torchaudio's own file, ``WAV2VEC2_XLSR53._path`` under its model
    host) through :func:`lib.storage.download.fetch`: checked against ``sha256`` if given, else against the sha256
    recorded at their first download (none is published); read with ``torch.load(weights_only=True)``. ``frozen=True``:
    the SSL weights do not train (see :class:`SSLFrontend`).
    """
    m = SpoofCM(SSLFrontend(params or xlsr53_params(), frozen=frozen), **backend)
    if pretrained:
        state = checkpoint.load(download.fetch(url, reader="torch.load(weights_only=True)", sha256=sha256))
        checkpoint.load_state(m.frontend.ssl, state, url)
    return m
