"""The train stage: a pretrained backbone with a new head, trained through the engine's loop.

A pretrained backbone with a new head, through the core loop; the best epoch's
weights (by validation accuracy) go to ``paths.model`` with the summary that rebuilds the model and
says where its pretrained weights came from (the hub revision they resolved to)."""

from __future__ import annotations

from ..engine.runtime import make_backend
from ..files import fingerprint, read_json
from ..pipeline import runner
from ..pipeline.artifacts import write_summary
from ..pipeline.contract import Paths
from ..pipeline.training import fit_and_save
from .featurize import load_split, split_path
from .model import TransferClassifier, task
from .project import NAME, PROJECT, TrainParams


def train(params: TrainParams, paths: Paths) -> None:
    cfg = params.train.seeded(params.seed)
    classes = read_json(paths.features / "meta.json")["classes"]
    train_split, val_split = load_split(paths.features, "train"), load_split(paths.features, "val")
    options = {
        "backbone": params.backbone,
        "image_size": params.train.image_size,
        "pretrained": params.train.pretrained,
        "freeze_backbone": params.train.freeze_backbone,
        "unfreeze_blocks": params.train.unfreeze_blocks,
    }
    backend = make_backend(params.runtime)

    backend.seed(cfg.seed)  # the new head's initial weights
    model = TransferClassifier(num_classes=len(classes), revision=params.revision, **options)
    files = (split_path(paths.features, "train"), split_path(paths.features, "val"))
    entry = fit_and_save(
        NAME,
        model,
        train_split,
        val_split,
        task(params.train.augment_crop, params.train.augment_flip),
        cfg,
        backend,
        paths,
        config={"options": options, "weights": model.weights, "classes": classes},
        fingerprint=fingerprint(cfg.model_dump(), options, model.weights, files=files),
    )
    write_summary(paths, {NAME: entry}, backend.describe())


if __name__ == "__main__":
    runner.main(train, PROJECT)
