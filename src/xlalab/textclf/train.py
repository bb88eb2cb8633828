"""The train stage: fine-tune the pretrained encoder through the engine's loop, with early stopping.

Balance the classes if asked, fine-tune through core's loop (batches in the
features' length buckets, at most ``epochs``, stopped by ``patience``), save.

Saving goes through ``core.training.fit_and_save``: the best weights (by validation accuracy) become
``<model dir>/model.safetensors`` (the name ``from_pretrained`` reads, so the directory also loads
as a Hugging Face model with its config.json and tokenizer), the summary entry reports what this
run trained, and the checkpoint of a finished run is removed, so running the stage again trains
again rather than "resuming" a finished run.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight

from ..engine.runtime import make_backend
from ..errors import UserError
from ..files import fingerprint
from ..pipeline import runner
from ..pipeline.artifacts import write_summary
from ..pipeline.contract import Paths
from ..pipeline.training import fit_and_save
from . import TrainParams, tokens
from . import model as textmodel

logger = logging.getLogger(__name__)


def imbalance_ratio(y: torch.Tensor, n_classes: int) -> float:
    counts = torch.bincount(y, minlength=n_classes).float()
    present = counts[counts > 0]
    return float(present.max() / present.min())


def balance_training(
    train: dict[str, torch.Tensor],
    val: dict[str, torch.Tensor],
    n_classes: int,
    method: str,
    threshold: float,
    seed: int,
) -> tuple[dict, dict, dict[str, Any]]:
    """Apply ``method`` when the largest class outnumbers the smallest by ``threshold`` or more.

    Every row carries a ``class_weight`` (all ones unless class weighting applies), so the loss is
    the same function in training and validation and the batch shapes never change."""
    y = train["labels"].numpy()
    ratio = imbalance_ratio(train["labels"], n_classes)
    applied = method if method != "none" and ratio >= threshold else "none"
    weights = torch.ones(n_classes)
    if applied != "none":
        missing = sorted(set(range(n_classes)) - set(np.unique(y).tolist()))
        if missing:
            raise UserError(
                f"class id(s) {missing} have no training rows; balancing needs every class; "
                "raise `max_train` or set `balance: none`"
            )
    if applied == "class_weights":  # inverse frequency: the average training row weighs 1
        weights = torch.tensor(
            compute_class_weight("balanced", classes=np.arange(n_classes), y=y), dtype=torch.float32
        )
    elif applied == "oversample":
        train = {k: v[oversampled_rows(y, n_classes, seed)] for k, v in train.items()}
    train = {**train, "class_weight": weights[train["labels"]]}
    val = {**val, "class_weight": weights[val["labels"]]}
    info = {
        "imbalance_ratio": ratio,
        "method": applied,
        "threshold": threshold,
        "class_weights": weights.tolist(),
        "train_rows": int(train["labels"].shape[0]),
    }
    return train, val, info


def oversampled_rows(y: np.ndarray, n_classes: int, seed: int) -> torch.Tensor:
    """Every class drawn with replacement up to the largest one, in a shuffled order."""
    rng = np.random.default_rng(seed)
    target = int(np.bincount(y, minlength=n_classes).max())
    rows = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), size=target, replace=True) for c in range(n_classes)]
    )
    return torch.from_numpy(rng.permutation(rows))


def check_features(meta: dict, model: textmodel.Pretrained, features_dir) -> None:
    """The features were tokenized by this model, at the commit the hub resolves now."""
    made_by = meta.get("pretrained", {})
    if meta.get("model") != model.name or made_by.get("commit") != model.commit:
        raise UserError(
            f"{features_dir} was tokenised for model {meta.get('model')!r} "
            f"({made_by.get('commit')}), not {model.name!r} ({model.commit}); "
            "re-run the featurize stage"
        )


def train(params: TrainParams, paths: Paths) -> None:
    cfg = params.train.seeded(params.seed)
    backend = make_backend(params.runtime)
    model = textmodel.pretrained(params.model, params.revision)
    splits, _, meta = tokens.read_features(paths.features)
    check_features(meta, model, paths.features)
    labels = meta["labels"]
    data = {
        name: tokens.as_tensors(splits[name], meta["max_length"], meta["pad_token_id"])
        for name in ("train", "val")
    }
    train_rows, val_rows, balance = balance_training(
        data["train"], data["val"], len(labels), cfg.balance, cfg.imbalance_threshold, params.seed
    )
    backend.seed(params.seed)  # the new head's initial weights
    net = textmodel.load_classifier(model, labels)
    textmodel.freeze_lower_layers(net, cfg.freeze_layers)
    described = textmodel.describe(net)
    if backend.is_main:
        logger.info(
            f"{paths.project} train: {described['parameters']:,} parameters, "
            f"{described['trainable_parameters']:,} trainable; balance: {balance['method']} "
            f"(largest/smallest class {balance['imbalance_ratio']:.2f}); token buckets "
            f"{meta['buckets']}"
        )
    entry = fit_and_save(
        textmodel.WEIGHTS,
        net,
        train_rows,
        val_rows,
        textmodel.classification_task(tokens.buckets(meta["buckets"])),
        cfg,
        backend,
        paths,
        fingerprint=fingerprint(
            params.model_dump(exclude={"runtime"}),
            model.commit,
            files=tokens.token_files(paths.features),
        ),
        config={**model.record(), "labels": labels, "freeze_layers": cfg.freeze_layers},
    )
    if backend.is_main:
        save(
            net,
            model,
            paths,
            backend,
            entry,
            pretrained=model.record(),
            labels=labels,
            balance=balance,
            buckets=meta["buckets"],
            **described,
        )


def save(net, model: textmodel.Pretrained, paths: Paths, backend, entry: dict, **summary) -> None:
    """The model directory: weights (written by fit_and_save), config, tokenizer, summary."""
    textmodel.save_for_loading(backend.unwrap(net), textmodel.load_tokenizer(model), paths.model)
    write_summary(paths, {textmodel.WEIGHTS: entry}, backend.describe(), **summary)


if __name__ == "__main__":
    runner.main(train)
