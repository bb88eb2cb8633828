"""The end of every train stage, written once: fit (resuming an interrupted run), keep the best
weights, record an honest summary entry (settled or not, the time it took, what was resumed) and
remove the checkpoint of the finished run.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine.loop import FitResult, TrainConfig, fit
from ..engine.runtime import Backend
from ..engine.task import Task
from ..pipeline.artifacts import save_weights, weights_file
from ..pipeline.contract import Paths

logger = logging.getLogger(__name__)


# A run counts as settled when its last epoch moved the monitored validation value by at most this
# share: a bigger gain means more epochs would likely still have helped, so the model is
# undertrained.
SETTLE_TOLERANCE = 0.01


def settle_note(history: list[dict[str, float]], task: Task, stopped_early: bool) -> str | None:
    """None when training settled (early-stopped, or the last epoch gained at most SETTLE_TOLERANCE
    relative on ``val/<monitor>``); else the reason it had not. One epoch shows no trend:
    unsettled."""
    key = f"val/{task.monitor}"
    if stopped_early:
        return None
    if len(history) < 2:
        return (
            f"training ran one epoch, too few to tell whether {key} had settled; raise "
            "`train.epochs`"
        )
    before, last = history[-2][key], history[-1][key]
    gain = (before - last) if task.mode == "min" else (last - before)
    relative = gain / max(abs(before), 1e-12)
    if relative <= SETTLE_TOLERANCE:
        return None
    return (
        f"training had not settled: {key} still improved by {relative:.1%} in the last epoch "
        f"({before:.4g} -> {last:.4g}); raise `train.epochs` (with `patience` to stop once it "
        "settles)"
    )


def fit_and_save(
    name: str,
    model: torch.nn.Module,
    train: dict,
    val: dict,
    task: Task,
    cfg: TrainConfig,
    backend: Backend,
    paths: Paths,
    *,
    config: dict[str, Any],
    fingerprint: str,
    live_dir: Path | None = None,
) -> dict[str, Any]:
    """Train ``model``, write its best weights to ``paths.model/<name>.safetensors`` and return its
    summary entry (``config`` is what rebuilds the model). Only the main process writes; ``model``
    ends holding the best weights on every process (see ``fit``)."""
    checkpoint = paths.checkpoints / f"{name}.ckpt"
    start = time.perf_counter()
    result = fit(
        model,
        train,
        val,
        task,
        cfg,
        backend,
        live_dir=live_dir or paths.live,
        checkpoint=checkpoint,
        fingerprint=fingerprint,
        desc=name,
    )
    seconds = time.perf_counter() - start
    entry = summary_entry(result, task, config, seconds)
    if backend.is_main:
        save_weights(result.best_state, weights_file(paths.model, name))
        checkpoint.unlink(missing_ok=True)  # finished: nothing left to resume
        logger.info(
            f"{name}: best epoch {result.best_epoch}/{len(result.history)}, "
            f"{entry['epochs_trained_now']} trained in {seconds:.1f} s"
        )
        if entry["settle_note"]:
            logger.warning(f"{name}: {entry['settle_note']}")
    return entry


def summary_entry(result: FitResult, task: Task, config: dict, seconds: float) -> dict[str, Any]:
    """What summary.json says of one trained model: how to rebuild it, its best epoch, whether
    training settled, and what this run itself trained (a resumed run does not claim the time or
    epochs of the interrupted one)."""
    trained_now = len(result.history) - result.resumed_epochs
    unsettled = settle_note(result.history, task, result.stopped_early)
    rates = [r["samples_per_sec"] for r in result.history[result.resumed_epochs :]]
    return {
        "config": config,
        "best_epoch": result.best_epoch,
        "best": result.best,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "settled": unsettled is None,
        "settle_note": unsettled,
        "epochs_trained_now": trained_now,
        "resumed_after_epoch": result.resumed_epochs or None,
        "train_seconds": round(seconds, 2),
        "samples_per_sec": float(np.mean(rates)) if trained_now else None,
        "compile_counts": result.compile_counts,
        "history": result.history,
    }
