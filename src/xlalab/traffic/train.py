"""The train stage: an autoencoder per entry of ``hidden_choices``, the best on validation kept.

Each is fitted by the shared loop on the training rows that featurize kept (normal traffic, or all
of it with ``fit_on: all``), with early stopping on the reconstruction error of held-out NORMAL
traffic; the one kept has the best ROC-AUC on labelled validation traffic (those normal rows and
the attack types held out whole), the rule and the budget by which evaluate chooses the other
detectors' settings. Only the chosen one's weights and training curves are kept; every
candidate's score is in the summary.

The scikit-learn and PyOD detectors are fitted in evaluate instead: their fitted state can only
be stored by pickling (which this repository never loads), and fitting them takes seconds.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import torch

from ..engine.runtime import Backend, make_backend
from ..errors import UserError
from ..files import fingerprint, read_json
from ..pipeline import runner
from ..pipeline.artifacts import save_weights, weights_file, write_summary
from ..pipeline.contract import Paths
from ..pipeline.training import fit_and_save
from .analysis import ranking_metrics
from .model import Autoencoder, autoencoder_task, reconstruction_errors
from .project import PROJECT, TrainParams

logger = logging.getLogger(__name__)


def load_matrix(paths: Paths, name: str, columns: list[int]) -> np.ndarray:
    return np.load(paths.features / f"{name}.npy", mmap_mode="r")[:, columns]


def label(hidden: list[int]) -> str:
    """A candidate's name: ``autoencoder_64x16``."""
    return "autoencoder_" + "x".join(map(str, hidden))


def validation_roc_auc(
    model: Autoencoder, val: dict[str, np.ndarray], backend: Backend, batch_size: int
) -> float | None:
    """ROC-AUC of the reconstruction error on labelled validation traffic (None without held-out
    attacks)."""
    if len(val["val_attacks"]) == 0:
        return None
    normal = reconstruction_errors(model, val["val"], backend, batch_size)
    attacks = reconstruction_errors(model, val["val_attacks"], backend, batch_size)
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(attacks), bool)]
    return ranking_metrics(y, np.concatenate([normal, attacks]))[0]


def keep_curves(paths: Paths, chosen: str, candidates: list[str]) -> None:
    """The chosen candidate's DVCLive curves become the stage's (``paths.live``); the others go."""
    for name in candidates:
        folder = paths.live / name
        if name == chosen and folder.exists():
            for item in folder.iterdir():
                shutil.move(str(item), paths.live / item.name)
        shutil.rmtree(folder, ignore_errors=True)


def train(params: TrainParams, paths: Paths) -> None:
    meta = read_json(paths.features / "meta.json")
    columns = meta["selected"]
    fit_x, val_x = load_matrix(paths, "fit", columns), load_matrix(paths, "val", columns)
    val = {"val": val_x, "val_attacks": load_matrix(paths, "val_attacks", columns)}
    cfg = params.train.seeded(params.seed)
    if len(fit_x) < cfg.batch_size:
        raise UserError(
            f"{len(fit_x)} training rows is less than one batch of {cfg.batch_size}; lower "
            "traffic.train.batch_size"
        )
    backend = make_backend(params.runtime)
    entries, scores, states = {}, {}, {}
    for hidden in params.train.hidden_choices:
        name = label(hidden)
        backend.seed(params.seed)  # the initial weights: every candidate starts from the same seed
        model = Autoencoder(len(columns), hidden, params.train.dropout)
        config = {"n_inputs": len(columns), "hidden": hidden, "dropout": params.train.dropout}
        entries[name] = fit_and_save(
            name,
            model,
            {"x": torch.from_numpy(np.ascontiguousarray(fit_x))},
            {"x": torch.from_numpy(np.ascontiguousarray(val_x))},
            autoencoder_task(),
            cfg,
            backend,
            paths,
            config=config,
            fingerprint=fingerprint(
                params.model_dump(),
                config,
                meta["selected"],
                files=(paths.features / "fit.npy", paths.features / "val.npy"),
            ),
            live_dir=paths.live / name,
        )
        scores[name] = validation_roc_auc(model, val, backend, cfg.eval_batch_size or 4096)
        states[name] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    chosen, rule = choose_autoencoder(scores)
    if backend.is_main:
        save_weights(states[chosen], weights_file(paths.model, "autoencoder"))
        for name in entries:
            weights_file(paths.model, name).unlink(missing_ok=True)
        keep_curves(paths, chosen, list(entries))
    write_summary(
        paths,
        {"autoencoder": entries[chosen]},
        backend.describe(),
        feature_set=meta["feature_set"],
        fit_on=meta["fit_on"],
        autoencoder_choice={
            "chosen": chosen,
            "rule": rule,
            "candidates": candidates(entries, scores),
        },
    )


def choose_autoencoder(scores: dict[str, float | None]) -> tuple[str, str]:
    """The candidate with the best ROC-AUC on labelled validation traffic, and the rule used."""
    if any(score is None for score in scores.values()):
        chosen, rule = next(iter(scores)), "the first choice: no labelled validation traffic"
        logger.warning(f"no attack types were held out for validation: keeping {chosen}")
        return chosen, rule
    chosen = max(scores, key=lambda name: scores[name] or 0.0)
    listed = ", ".join(f"{n} {s:.4f}" for n, s in scores.items() if s is not None)
    logger.info(f"autoencoder: {chosen} chosen by validation ROC-AUC ({listed})")
    return chosen, "validation ROC-AUC"


def candidates(entries: dict[str, dict], scores: dict[str, float | None]) -> dict[str, dict]:
    return {
        name: {
            "hidden": entries[name]["config"]["hidden"],
            "val_roc_auc": scores[name],
            "best_epoch": entries[name]["best_epoch"],
            "train_seconds": entries[name]["train_seconds"],
        }
        for name in entries
    }


if __name__ == "__main__":
    runner.main(train, PROJECT)
