"""The optimizer and its learning-rate schedule, built from the loop's params (``TrainConfig``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..errors import UserError
from .runtime import Backend
from .settings import TrainConfig


def build_optimizer(
    params, cfg: TrainConfig, lr: float | torch.Tensor | None = None
) -> torch.optim.Optimizer:
    """``lr``: the backend's hyperparameter holder (a device tensor on XLA); default ``cfg.lr``."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise UserError("the model has no trainable parameters; unfreeze something")
    lr = cfg.lr if lr is None else lr
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True
        )
    # capturable with a tensor lr: the step count and bias corrections stay on the device too,
    # instead of reaching the compiled step as new host floats every step.
    return torch.optim.AdamW(
        params, lr=lr, weight_decay=cfg.weight_decay, capturable=isinstance(lr, torch.Tensor)
    )


def lr_schedule(cfg: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """The learning rate of optimizer step ``step`` (0-based): linear warm-up, then the decay.
    A pure function of the step, so a resumed run needs only the number of steps taken."""
    warmup = int(cfg.warmup_fraction * total_steps)

    def lr_at(step: int) -> float:
        if step < warmup:
            return cfg.lr * (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if cfg.scheduler == "cosine":
            return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))
        if cfg.scheduler == "linear":
            return cfg.lr * max(0.0, 1 - progress)
        return cfg.lr

    return lr_at


class Schedule:
    """The learning rate, set before every optimizer step from a pure function of the step.

    The compiled step reads it as device data (a tensor on XLA, updated in place before each
    step), so a new value never means a new graph; see Backend.hyperparameter."""

    def __init__(self, lr_at: Callable[[int], float], backend: Backend):
        self.lr_at, self.backend = lr_at, backend
        self.holder = backend.hyperparameter(lr_at(0))

    def set(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        self.holder = self.backend.update_hyperparameter(self.holder, self.lr_at(step))
        # also replaces the lr a loaded optimizer state brought
        for group in optimizer.param_groups:
            group["lr"] = self.holder
