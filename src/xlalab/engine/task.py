"""What the training loop needs to know about a project's model: its loss, validation metrics,
forward pass, augmentation and which validation value picks the best epoch. Model modules build
one; it lives apart from the loop so that they (and the stages that only rebuild a model) do not
depend on the loop's code or the backends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..engine.batches import Batch, LengthBuckets, Transform


def forward_x(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The default forward pass: the model applied to the batch's ``x``."""
    return model(batch["x"])


@dataclass
class Task:
    """What the loop needs to know about a project's model.

    ``loss(outputs, batch)`` and every ``metrics[name](outputs, batch)`` return one value per row;
    the loop averages them (weighted, so eval padding counts for nothing).
    ``monitor`` names the validation value that picks the best epoch (``loss`` or a metric).
    ``buckets``: training and validation batches grouped by sequence length (data.LengthBuckets).
    """

    loss: Callable[[torch.Tensor, Batch], torch.Tensor]
    metrics: dict[str, Callable[[torch.Tensor, Batch], torch.Tensor]] = field(default_factory=dict)
    forward: Callable[[torch.nn.Module, Batch], torch.Tensor] = forward_x
    monitor: str = "loss"
    mode: str = "min"  # or "max"
    transform: Transform | None = None  # training-time augmentation
    buckets: LengthBuckets | None = None  # batches of a few fixed sequence lengths (data.py)

    def better(self, new: float, old: float | None) -> bool:
        return old is None or (new < old if self.mode == "min" else new > old)
