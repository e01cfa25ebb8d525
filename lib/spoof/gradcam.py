"""Grad-CAM over time for a speech countermeasure, a whole batch in one forward/backward.

Selvaraju et al., ICCV 2017, applied over time as in Liu et al., Interspeech 2024 (arXiv 2406.02483), Sec. 3:
on layer activations ``A_k(t)`` (the back-end's ``fc`` Conv1d, before temporal pooling) and the target logit ``y``,

    α_k = mean_t ∂y/∂A_k(t),    CAM(t) = ReLU(Σ_k α_k A_k(t)),    then min-max to [0, 1] per utterance,

one value per 20 ms frame, no resizing. The post-processing is pytorch-grad-cam's (``scale_cam_image``), and
``gradcam_reference`` runs pytorch-grad-cam itself (one utterance at a time, the way the reference code does) so
tests can check that both agree. ``temporal_cam`` is the formula itself, on activations and gradients given.
"""
from __future__ import annotations

import numpy as np
import torch

from .audio import batch_waveforms


def _scale(cam, valid):
    """pytorch-grad-cam's ``scale_cam_image`` (applied twice, as it is: per layer, then after aggregation)."""
    for _ in range(2):
        lo = torch.where(valid, cam, torch.full_like(cam, float("inf"))).amin(-1, keepdim=True)
        cam = cam - lo
        hi = torch.where(valid, cam, torch.full_like(cam, -float("inf"))).amax(-1, keepdim=True)
        cam = torch.where(valid, cam / (1e-7 + hi), torch.zeros_like(cam))
    return cam


def gradcam(model, layer, inputs, target, lengths=None) -> torch.Tensor:
    """Grad-CAM over the time axis of ``layer`` for class ``target`` (int, or one per utterance).

    ``inputs``: a (B, L) waveform tensor, or a list of 1-D waveforms of any lengths (padded by repetition and
    masked through ``lengths``), moved to the model's device. Returns (B, T) in [0, 1] on that device; frames past
    an utterance's end are 0.
    """
    if isinstance(inputs, (list, tuple)):
        inputs, lengths = batch_waveforms(inputs)
    dev = next(model.parameters()).device                  # inputs go where the model is; the CAM comes back on it
    inputs = torch.as_tensor(inputs).to(dev)
    lengths = None if lengths is None else torch.as_tensor(lengths).to(dev)
    store = {}
    hook = layer.register_forward_hook(lambda mod, inp, out: store.__setitem__("A", out))
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            out = model(inputs, lengths) if lengths is not None else model(inputs)
            A = store["A"]  # (B, C, T)
            tgt = torch.as_tensor(target, device=out.device)
            if tgt.is_floating_point() or tgt.dim() > 1 or tgt.numel() not in (1, out.shape[0]) or \
                    ((tgt < 0) | (tgt >= out.shape[1])).any():
                raise ValueError(f"target must be a class index in [0, {out.shape[1]}) (0 = bona fide, 1 = spoof), "
                                 f"or one per utterance ({out.shape[0]}); got {target!r}")
            tgt = tgt.expand(out.shape[0])
            y = out.gather(1, tgt[:, None]).sum()  # utterances are independent in eval mode: one backward for all
            (G,) = torch.autograd.grad(y, A)
    finally:
        hook.remove()
        model.train(was_training)
    n = None if lengths is None else _frames(model, lengths, A.shape[-1])
    return temporal_cam(A.detach(), G, n)


def temporal_cam(A, G, n=None):
    """Grad-CAM over time: activations A, gradients G = ∂y/∂A, both (B, C, T).

    n: valid frames per utterance (None: all T); frames past them get 0."""
    B, C, T = A.shape
    n = torch.full((B,), T, device=A.device) if n is None else n
    valid = torch.arange(T, device=A.device)[None, :] < n[:, None]  # (B, T)
    # α_k = mean_t ∂y/∂A_k(t), over each utterance's own frames
    alpha = (G * valid[:, None]).sum(-1) / n[:, None].clamp_min(1)
    cam = torch.relu((alpha[:, :, None] * A).sum(1))  # ReLU(Σ_k α_k A_k(t))
    return _scale(cam, valid)                          # min-max to [0, 1]


def _frames(model, lengths, T):
    """Valid frames per utterance, from the model's own framing (``model.n_frames``), at most ``T``."""
    if not hasattr(model, "n_frames"):
        raise TypeError(f"{type(model).__name__} has no n_frames(lengths): give a model that says how many "
                        "frames an utterance of L samples has (as SpoofCM does), or inputs of equal length "
                        "without lengths")
    return torch.as_tensor(model.n_frames(lengths)).clamp(max=T).to(lengths.device)


def gradcam_reference(model, layer, wave, target):
    """pytorch-grad-cam's GradCAM on one utterance (1-D waveform) → (T,) array; on a list, one at a time → list.

    pytorch-grad-cam refuses 1-D signals, so the waveform goes in as (1, 1, 1, L), a wrapper squeezes it, and a
    ``reshape_transform`` turns (B, C, T) activations into (B, C, 1, T). Resizing to the input size is switched off
    (one value per 20 ms frame, as in the paper's vendored copy).
    """
    from pytorch_grad_cam import GradCAM  # deferred: seconds to import, only the comparison uses it
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    class _NoResize(GradCAM):
        def get_target_width_height(self, input_tensor):
            return None

    class _Squeeze(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x[:, 0, 0, :])

    single = not isinstance(wave, (list, tuple))
    waves = [wave] if single else wave
    was_training = model.training
    cam = _NoResize(_Squeeze(model), [layer], reshape_transform=lambda a: a[:, :, None, :])
    out = []
    try:
        for w in waves:
            w = torch.as_tensor(np.asarray(w, dtype=np.float32)).to(next(model.parameters()).device)
            out.append(cam(input_tensor=w[None, None, None, :], targets=[ClassifierOutputTarget(int(target))])[0, 0])
    finally:
        cam.activations_and_grads.release()
        model.train(was_training)
    return out[0] if single else out
