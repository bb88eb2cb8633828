"""Trained models on disk, the same way in every project: weights as safetensors (tensors only,
so loading a file can never run code from it) and ``summary.json`` beside them with what is
needed to rebuild the model and how it was trained.

``fit_and_save`` is the end of every train stage, written once: fit (resuming an interrupted run),
keep the best weights, record an honest summary, remove the checkpoint of the finished run.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import UserError
from .io import read_json, write_json
from .loop import Task, TrainConfig, fit
from .project import Paths
from .runtime import Backend


def save_weights(state: dict[str, torch.Tensor], path: Path) -> Path:
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(path))
    return path


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise UserError(f"{path} is missing; run the train stage (dvc repro) first")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path} is not a readable safetensors file ({e}); re-run the train stage") from None


def weights_file(model_dir: Path, name: str) -> Path:
    return model_dir / f"{name}.safetensors"


# A run counts as settled when its last epoch moved the monitored validation value by at most this
# share: a bigger gain means more epochs would likely still have helped, so the model is undertrained.
SETTLE_TOLERANCE = 0.01


def settle_note(history: list[dict[str, float]], task: Task, stopped_early: bool) -> str | None:
    """None when training settled (early-stopped, or the last epoch gained at most SETTLE_TOLERANCE
    relative on ``val/<monitor>``); else the reason it had not. One epoch shows no trend: unsettled."""
    key = f"val/{task.monitor}"
    if stopped_early:
        return None
    if len(history) < 2:
        return f"training ran one epoch, too few to tell whether {key} had settled; raise `train.epochs`"
    before, last = history[-2][key], history[-1][key]
    gain = (before - last) if task.mode == "min" else (last - before)
    relative = gain / max(abs(before), 1e-12)
    if relative <= SETTLE_TOLERANCE:
        return None
    return (f"training had not settled: {key} still improved by {relative:.1%} in the last epoch "
            f"({before:.4g} -> {last:.4g}); raise `train.epochs` (with `patience` to stop once it settles)")


def fit_and_save(name: str, model: torch.nn.Module, train: dict, val: dict, task: Task, cfg: TrainConfig,
                 backend: Backend, paths: Paths, *, config: dict[str, Any], fingerprint: str,
                 live_dir: Path | None = None) -> dict[str, Any]:
    """Train ``model``, write its best weights to ``paths.model/<name>.safetensors`` and return its
    summary entry (``config`` is what rebuilds the model). Only the main process writes; ``model``
    ends holding the best weights on every process (see ``fit``)."""
    checkpoint = paths.checkpoints / f"{name}.ckpt"
    start = time.perf_counter()
    result = fit(model, train, val, task, cfg, backend, live_dir=live_dir or paths.live, checkpoint=checkpoint,
                 fingerprint=fingerprint, desc=name)
    seconds = time.perf_counter() - start
    trained_now = len(result.history) - result.resumed_epochs
    unsettled = settle_note(result.history, task, result.stopped_early)
    entry = {
        "config": config,
        "best_epoch": result.best_epoch,
        "best": result.best,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "settled": unsettled is None,
        "settle_note": unsettled,
        # Time and epochs of this process only: a resumed run does not claim the interrupted one's.
        "epochs_trained_now": trained_now,
        "resumed_after_epoch": result.resumed_epochs or None,
        "train_seconds": round(seconds, 2),
        "samples_per_sec": float(np.mean([r["samples_per_sec"] for r in result.history[result.resumed_epochs:]]))
        if trained_now else None,
        "compile_counts": result.compile_counts,
        "history": result.history,
    }
    if backend.is_main:
        save_weights(result.best_state, weights_file(paths.model, name))
        checkpoint.unlink(missing_ok=True)  # finished: nothing left to resume
        print(f"{name}: best epoch {result.best_epoch}/{len(result.history)}, {trained_now} trained in "
              f"{seconds:.1f} s", file=sys.stderr)
        if unsettled:
            print(f"warning: {name}: {unsettled}", file=sys.stderr)
    return entry


def write_summary(paths: Paths, models: dict[str, dict], backend: Backend, **extra: Any) -> Path:
    return write_json(paths.summary, {"models": models, "runtime": backend.describe(), **extra})


def read_summary(paths: Paths) -> dict[str, Any]:
    return read_json(paths.summary)


def load_trained(paths: Paths, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The best weights of model ``name`` and its summary entry."""
    summary = read_summary(paths)
    if name not in summary.get("models", {}):
        raise UserError(f"{paths.summary} has no model {name!r} (it has {', '.join(summary.get('models', {}))}); "
                        "re-run the train stage")
    return load_weights(weights_file(paths.model, name)), summary["models"][name]
