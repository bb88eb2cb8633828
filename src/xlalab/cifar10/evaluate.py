"""The evaluate stage: the fine-tuned network and its baselines scored on the same test images, with
the verdict.

Test predictions of the trained model, the baselines (baselines.py) on the
same rows, the report and the verdict (core.evidence: the model against its strongest baseline,
with 95 % bootstrap intervals for both scores and their paired difference).

``paths.predictions`` (CSV) has one row per test image, in the test split's order: ``test_index``,
``actual``, ``predicted``, ``confidence`` (the predicted class's probability) and ``prob_<class>``
for every class.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..engine.loop import predict
from ..engine.runtime import Backend, make_backend
from ..files import read_json
from ..pipeline import runner
from ..pipeline.artifacts import load_trained, read_summary
from ..pipeline.contract import Paths
from ..pipeline.report import Report
from ..results import evidence, reports
from . import baselines
from .featurize import SPLITS, load_split
from .model import TransferClassifier
from .project import NAME, PROB_PREFIX, PROJECT, EvaluateParams


def model_name(options: dict[str, Any]) -> str:
    if not options["freeze_backbone"]:
        return f"{options['backbone']}_finetuned"
    if options["unfreeze_blocks"]:
        return f"{options['backbone']}_last{options['unfreeze_blocks']}"
    return f"{options['backbone']}_frozen"


def test_probabilities(
    paths: Paths, test: dict, backend: Backend, batch_size: int
) -> tuple[np.ndarray, dict]:
    """Softmax outputs of the trained model on the test split, and its summary entry."""
    state, entry = load_trained(paths, NAME)
    options, classes = entry["config"]["options"], entry["config"]["classes"]
    # pretrained=False: the trained weights replace whatever the backbone started from.
    model = TransferClassifier(num_classes=len(classes), **{**options, "pretrained": False})
    model.load_state_dict(state)
    logits = predict(model, test, backend, batch_size, desc="cifar10 evaluate")
    return torch.softmax(logits, -1).numpy(), entry


def fit_baselines(
    p: EvaluateParams, paths: Paths, splits: dict, entry: dict, backend: Backend
) -> dict[str, baselines.Baseline]:
    """Every baseline, fitted on the model's training rows and tuned on its validation rows."""
    b = p.evaluate.baselines
    fitted = {baselines.MAJORITY: baselines.majority(splits)}
    fitted.update(baselines.pixel_baselines(splits, b, p.seed))
    options, weights = entry["config"]["options"], entry["config"]["weights"]
    if weights is not None:  # a probe of a randomly initialised backbone says nothing
        start = time.perf_counter()
        embeddings = baselines.frozen_embeddings(
            options, weights, splits, paths.features, paths.cache, backend, p.evaluate.batch_size
        )
        fitted["linear_probe"] = baselines.linear_probe(embeddings, splits, b, p.seed)
        fitted["linear_probe"].seconds += time.perf_counter() - start
    return fitted


def confused_pairs(cm: np.ndarray, classes: list[str], top: int) -> list[dict]:
    k = len(classes)
    off_diagonal = [(int(cm[i, j]), i, j) for i in range(k) for j in range(k) if i != j]
    return [
        {
            "actual": classes[i],
            "predicted": classes[j],
            "count": n,
            "share_of_actual": n / max(1, cm[i].sum()),
        }
        for n, i, j in sorted(off_diagonal, reverse=True)[:top]
        if n > 0
    ]


def confident_mistakes(
    probs: np.ndarray, y_true: np.ndarray, classes: list[str], top: int
) -> list[dict]:
    y_pred = probs.argmax(-1)
    wrong = np.flatnonzero(y_pred != y_true)
    chosen = wrong[np.argsort(-probs[wrong, y_pred[wrong]], kind="stable")][:top]
    return [
        {
            "test_index": int(i),
            "actual": classes[y_true[i]],
            "predicted": classes[y_pred[i]],
            "confidence": float(probs[i, y_pred[i]]),
        }
        for i in chosen
    ]


def write_predictions(paths: Paths, probs: np.ndarray, y_true: np.ndarray, classes: list[str]):
    table = pd.DataFrame(
        {
            "test_index": np.arange(len(y_true)),
            "actual": [classes[i] for i in y_true],
            "predicted": [classes[i] for i in probs.argmax(-1)],
            "confidence": probs.max(-1),
        }
    )
    table[[PROB_PREFIX + c for c in classes]] = probs
    table.to_csv(paths.predictions, index=False, float_format="%.6g")


def baseline_entries(
    fitted: dict[str, baselines.Baseline], verdict: dict, y_true: np.ndarray, classes: list[str]
) -> dict[str, dict]:
    """Each baseline's score and interval (from the verdict's bootstrap), what was chosen on the
    validation split and how."""
    entries = {}
    for name, b in fitted.items():
        report = reports.classification(y_true, b.predictions, classes)
        entries[name] = {
            **verdict["baselines"][name],
            "macro_f1": report["macro_f1"],
            "chosen": b.chosen,
            "validation_accuracy": b.validation_accuracy,
            "train_rows": b.train_rows,
            "note": b.note,
        }
    return entries


def training_record(entry: dict, summary: dict) -> dict:
    return {
        "best_epoch": entry["best_epoch"],
        "epochs_run": entry["epochs_run"],
        "stopped_early": entry["stopped_early"],
        "settled": entry["settled"],
        "best_val_accuracy": entry["best"]["val/accuracy"],
        "train_seconds": entry["train_seconds"],
        "samples_per_sec": entry["samples_per_sec"],
        "runtime": summary["runtime"],
    }


def data_record(card: dict) -> dict:
    """What the details say of the data: the card's description and the archive's checksum."""
    keys = ("source", "description", "note", "test_split", "image_shape")
    return {k: card.get(k) for k in keys} | {"checksum": (card.get("checksum") or {}).get("value")}


def evaluate(params: EvaluateParams, paths: Paths) -> Report:
    e = params.evaluate
    splits = {s: load_split(paths.features, s) for s in SPLITS}
    backend = make_backend(params.runtime)
    start = time.perf_counter()
    probs, entry = test_probabilities(paths, splits["test"], backend, e.batch_size)
    predict_seconds = time.perf_counter() - start
    options, classes = entry["config"]["options"], entry["config"]["classes"]
    y_true, y_pred = splits["test"]["y"].numpy(), probs.argmax(-1)
    fitted = fit_baselines(params, paths, splits, entry, backend)

    name = model_name(options)
    verdict = evidence.compare(
        name,
        {name: y_pred, **{b: f.predictions for b, f in fitted.items()}},
        y_true,
        evidence.accuracy,
        metric_name="accuracy",
        higher_is_better=True,
        baselines=list(fitted),
        seed=params.seed,
    )
    write_predictions(paths, probs, y_true, classes)
    report = reports.classification(y_true, y_pred, classes)
    card = read_json(paths.card)
    summary = read_summary(paths)
    reports.announce(verdict)
    return Report.judged(
        verdict,
        test_rows=len(y_true),
        source=card.get("source") or "-",
        runtime=summary["runtime"],
        warnings=[entry["settle_note"]] if entry.get("settle_note") else [],
        details={
            "model_name": name,
            "accuracy": report["accuracy"],
            "interval": verdict["interval"],
            "macro_f1": report["macro_f1"],
            "test_examples": int(len(y_true)),
            "per_class": report["per_class"],
            "baselines": baseline_entries(fitted, verdict, y_true, classes),
            "most_confused_pairs": confused_pairs(
                reports.confusion(y_true, y_pred, len(classes)), classes, e.top_confused_pairs
            ),
            "most_confident_mistakes": confident_mistakes(
                probs, y_true, classes, e.top_confident_mistakes
            ),
            "train": training_record(entry, summary),
            "model": {**options, "weights": entry["config"]["weights"]},
            "data": data_record(card),
            "seconds": {
                "predict": predict_seconds,
                **{f"baseline {b}": f.seconds for b, f in fitted.items()},
            },
            "runtime": backend.describe(),
        },
    )


if __name__ == "__main__":
    runner.main(evaluate, PROJECT)
