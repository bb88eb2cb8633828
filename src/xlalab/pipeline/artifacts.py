"""Trained models on disk, the same way in every project: weights as safetensors (tensors only,
so loading a file can never run code from it) and ``summary.json`` beside them with what is
needed to rebuild the model and how it was trained.
(``core/training.py`` writes them at the end of every train stage).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import UserError
from ..files import read_json, write_json
from ..pipeline.contract import Paths


def save_weights(state: dict[str, torch.Tensor], path: Path) -> Path:
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(path))
    return path


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise UserError(f"{path} is missing; run the train stage (dvc repro) first")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(
            f"{path} is not a readable safetensors file ({e}); re-run the train stage"
        ) from None


def weights_file(model_dir: Path, name: str) -> Path:
    return model_dir / f"{name}.safetensors"


def write_summary(
    paths: Paths, models: dict[str, dict], runtime: dict[str, Any], **extra: Any
) -> Path:
    """``runtime``: what trained them (``Backend.describe()``)."""
    return write_json(paths.summary, {"models": models, "runtime": runtime, **extra})


def read_summary(paths: Paths) -> dict[str, Any]:
    return read_json(paths.summary)


def load_trained(paths: Paths, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The best weights of model ``name`` and its summary entry."""
    summary = read_summary(paths)
    if name not in summary.get("models", {}):
        raise UserError(
            f"{paths.summary} has no model {name!r} (it has "
            f"{', '.join(summary.get('models', {}))}); "
            "re-run the train stage"
        )
    return load_weights(weights_file(paths.model, name)), summary["models"][name]
