"""How far training has come (``TrainingState``), saved after every epoch and resumed from: the
checkpoint file is written atomically and read without running code from it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..files import atomic_path
from .runtime import Backend
from .task import Task

logger = logging.getLogger(__name__)

CHECKPOINT_KEYS = (
    "fingerprint",
    "epoch",
    "model",
    "optimizer",
    "history",
    "best_state",
    "best_epoch",
    "stopped_early",
)


@dataclass
class TrainingState:
    """How far training has come: what a checkpoint holds and a resumed run starts from."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch: int = 0
    stopped_early: bool = False
    epoch: int = 0  # the last epoch finished

    def checkpoint(self, fingerprint: str, model, optimizer, backend: Backend) -> dict[str, Any]:
        """What ``save_checkpoint`` writes after an epoch."""
        return {
            "fingerprint": fingerprint,
            "epoch": self.epoch,
            "model": backend.unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "history": self.history,
            "best_state": self.best_state,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
        }

    def best_weights(self) -> dict[str, torch.Tensor]:
        if self.best_state is None:  # fit trains an epoch at least, or resumes a run that did
            raise RuntimeError("no epoch has finished: there are no best weights yet")
        return self.best_state

    def best_value(self, task: Task) -> float | None:
        return self.history[self.best_epoch - 1][f"val/{task.monitor}"] if self.best_epoch else None


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Tensors and plain containers only, so ``load_checkpoint`` can refuse anything else."""
    with atomic_path(path) as tmp:
        torch.save(_to_cpu(state), tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The state ``save_checkpoint`` wrote. ``weights_only=True``: unpickling never runs code from
    the file; a planted pickle, a truncated file or garbage is refused with one line."""

    def invalid(reason: str) -> UserError:
        return UserError(
            f"{path} is not a valid checkpoint ({reason}); delete it to train from scratch"
        )

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = (str(e).strip().splitlines() or [""])[0][:160]
        raise invalid(f"{type(e).__name__}: {reason}" if reason else type(e).__name__) from None
    if not isinstance(state, dict) or any(key not in state for key in CHECKPOINT_KEYS):
        raise invalid(f"expected a dict with keys {', '.join(CHECKPOINT_KEYS)}")
    return state


def resume(
    checkpoint: Path | None, fingerprint: str, model, optimizer, backend: Backend, desc: str
) -> TrainingState:
    """Where to start: the checkpoint's state when it was written by a run with the same
    ``fingerprint`` (params and input data), else from scratch. The RNG needs no saving (it is
    re-seeded from (seed, epoch)), nor the schedule (a function of the step count)."""
    if checkpoint is None or not checkpoint.exists():
        return TrainingState()
    state = load_checkpoint(checkpoint)
    if state["fingerprint"] != fingerprint:
        return TrainingState()
    backend.unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if backend.is_main:
        logger.info("%s: resuming from %s after epoch %d", desc, checkpoint, state["epoch"])
    return TrainingState(
        history=state["history"],
        best_state=state["best_state"],
        best_epoch=state["best_epoch"],
        stopped_early=state["stopped_early"],
        epoch=state["epoch"],
    )


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
