"""The train stage: the autoencoder, fitted by the shared loop on the training rows that
featurize kept (normal traffic, or all of it with ``fit_on: all``); its validation loss is the
reconstruction error of held-out NORMAL traffic.

The scikit-learn and PyOD detectors are fitted in evaluate instead: their fitted state can only
be stored by pickling (which this repository never loads), and fitting them takes seconds.
"""

from __future__ import annotations

import numpy as np
import torch

from ..engine.runtime import make_backend
from ..errors import UserError
from ..files import fingerprint, read_json
from ..pipeline import runner
from ..pipeline.artifacts import write_summary
from ..pipeline.contract import Paths
from ..pipeline.training import fit_and_save
from .model import Autoencoder, autoencoder_task
from .project import PROJECT, TrainParams


def load_matrix(paths: Paths, name: str, columns: list[int]) -> np.ndarray:
    return np.load(paths.features / f"{name}.npy", mmap_mode="r")[:, columns]


def train(p: TrainParams, paths: Paths) -> None:
    meta = read_json(paths.features / "meta.json")
    columns = meta["selected"]
    fit_x, val_x = load_matrix(paths, "fit", columns), load_matrix(paths, "val", columns)
    cfg = p.train.seeded(p.seed)
    if len(fit_x) < cfg.batch_size:
        raise UserError(
            f"{len(fit_x)} training rows is less than one batch of {cfg.batch_size}; lower "
            "traffic.train.batch_size"
        )
    backend = make_backend(p.runtime)
    backend.seed(p.seed)  # the initial weights
    model = Autoencoder(len(columns), p.train.hidden, p.train.dropout)
    config = {"n_inputs": len(columns), "hidden": p.train.hidden, "dropout": p.train.dropout}
    entry = fit_and_save(
        "autoencoder",
        model,
        {"x": torch.from_numpy(np.ascontiguousarray(fit_x))},
        {"x": torch.from_numpy(np.ascontiguousarray(val_x))},
        autoencoder_task(),
        cfg,
        backend,
        paths,
        config=config,
        fingerprint=fingerprint(
            p.model_dump(),
            config,
            meta["selected"],
            files=(paths.features / "fit.npy", paths.features / "val.npy"),
        ),
    )
    write_summary(
        paths,
        {"autoencoder": entry},
        backend.describe(),
        feature_set=meta["feature_set"],
        fit_on=meta["fit_on"],
    )


if __name__ == "__main__":
    runner.main(train, PROJECT)
