"""The train stage: the headline recurrent cell and every cell compared with it, through the
engine's loop.

The headline cell and every cell compared with it, each through the shared loop,
from the same seed, with its own DVCLive curves (``paths.live / cell``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..engine.runtime import make_backend
from ..files import fingerprint, read_json
from ..pipeline import runner
from ..pipeline.artifacts import write_summary
from ..pipeline.contract import Paths
from ..pipeline.training import fit_and_save
from .model import build_model, forecast_task
from .project import PROJECT, SPLITS, TrainParams


def load_windows(features: Path) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(features / "windows.npz") as f:
        arrays = {k: f[k] for k in f.files}
    return arrays, read_json(features / "card.json")


def split_tensors(arrays: dict[str, np.ndarray], split: str) -> dict[str, torch.Tensor]:
    mask = arrays["split"] == SPLITS.index(split)
    return {"x": torch.from_numpy(arrays["x"][mask]), "y": torch.from_numpy(arrays["y"][mask])}


def train(params: TrainParams, paths: Paths) -> None:
    backend = make_backend(params.runtime)
    cfg = params.train.seeded(params.seed)
    arrays, card = load_windows(paths.features)
    train_set, val_set = split_tensors(arrays, "train"), split_tensors(arrays, "val")
    task = forecast_task(params.train.loss)
    entries = {}
    for cell in params.train.cells:
        config = {
            "cell": cell,
            "n_features": int(arrays["x"].shape[2]),
            "hidden": params.train.hidden,
            "layers": params.train.layers,
            "dropout": params.train.dropout,
        }
        backend.seed(params.seed)  # the same initial draw for the same params
        model = build_model(config)
        run = {**config, "loss": params.train.loss, "loop": cfg.model_dump()}
        entries[cell] = fit_and_save(
            cell,
            model,
            train_set,
            val_set,
            task,
            cfg,
            backend,
            paths,
            config=config,
            fingerprint=fingerprint(run, files=(paths.features / "windows.npz",)),
            live_dir=paths.live / cell,
        )
    # The target's scaling travels with the weights: evaluate turns predictions back into prices
    # with it.
    write_summary(
        paths, entries, backend.describe(), headline=params.train.cell, target=card["target"]
    )


if __name__ == "__main__":
    runner.main(train, PROJECT)
