"""The evaluate stage: test predictions of the trained model, the majority-class baseline on the
same rows, the report and the verdict.

``paths.predictions`` (CSV) has one row per test image, in the test split's order: ``test_index``,
``actual``, ``predicted``, ``confidence`` (the predicted class's probability) and ``prob_<class>``
for every class.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..core import launch, reports
from ..core.artifacts import load_trained, read_summary
from ..core.io import read_json, write_json
from ..core.loop import predict
from ..core.project import Paths
from ..core.runtime import make_backend
from .features import load_split
from .model import TransferClassifier
from .project import NAME, PROB_PREFIX, PROJECT, EvaluateParams

MAJORITY = "majority_class"


def evaluate(p: EvaluateParams, paths: Paths) -> None:
    e = p.evaluate
    state, entry = load_trained(paths, NAME)
    options, classes = entry["config"]["options"], entry["config"]["classes"]
    # pretrained=False: the trained weights replace whatever the backbone started from.
    model = TransferClassifier(num_classes=len(classes), **{**options, "pretrained": False})
    model.load_state_dict(state)
    test, train_y = (
        load_split(paths.features, "test"),
        load_split(paths.features, "train")["y"].numpy(),
    )
    backend = make_backend(p.runtime)

    probs = torch.softmax(
        predict(model, test, backend, e.batch_size, desc="cifar10 evaluate"), -1
    ).numpy()
    y_true, y_pred = test["y"].numpy(), probs.argmax(-1)
    majority = reports.majority_predictions(train_y, len(y_true))
    report = reports.classification(y_true, y_pred, classes)
    baseline = reports.classification(y_true, majority, classes)
    model_name = options["backbone"]
    verdict = reports.verdict(
        model_name,
        {model_name: report["accuracy"], MAJORITY: baseline["accuracy"]},
        [MAJORITY],
        "accuracy",
        higher_is_better=True,
    )

    cm = reports.confusion(y_true, y_pred, len(classes))
    off_diagonal = [
        (int(cm[i, j]), i, j) for i in range(len(classes)) for j in range(len(classes)) if i != j
    ]
    pairs = [
        {
            "actual": classes[i],
            "predicted": classes[j],
            "count": n,
            "share_of_actual": n / max(1, cm[i].sum()),
        }
        for n, i, j in sorted(off_diagonal, reverse=True)[: e.top_confused_pairs]
        if n > 0
    ]
    wrong = np.flatnonzero(y_pred != y_true)
    confident = wrong[np.argsort(-probs[wrong, y_pred[wrong]], kind="stable")][
        : e.top_confident_mistakes
    ]
    mistakes = [
        {
            "test_index": int(i),
            "actual": classes[y_true[i]],
            "predicted": classes[y_pred[i]],
            "confidence": float(probs[i, y_pred[i]]),
        }
        for i in confident
    ]

    table = pd.DataFrame(
        {
            "test_index": np.arange(len(y_true)),
            "actual": [classes[i] for i in y_true],
            "predicted": [classes[i] for i in y_pred],
            "confidence": probs.max(-1),
        }
    )
    table[[PROB_PREFIX + c for c in classes]] = probs
    table.to_csv(paths.predictions, index=False, float_format="%.6g")

    card = read_json(paths.card)
    summary = read_summary(paths)
    best = entry["best"]
    write_json(
        paths.metrics,
        {
            "accuracy": report["accuracy"],
            "macro_f1": report["macro_f1"],
            "test_examples": int(len(y_true)),
            "per_class": report["per_class"],
            "baselines": {
                MAJORITY: {
                    "predicts": classes[int(majority[0])],
                    "accuracy": baseline["accuracy"],
                    "macro_f1": baseline["macro_f1"],
                }
            },
            "verdict": verdict,
            "most_confused_pairs": pairs,
            "most_confident_mistakes": mistakes,
            "train": {
                "best_epoch": entry["best_epoch"],
                "epochs_run": entry["epochs_run"],
                "stopped_early": entry["stopped_early"],
                "best_val_accuracy": best["val/accuracy"],
                "samples_per_sec": entry["samples_per_sec"],
                "runtime": summary["runtime"],
            },
            "model": options,
            "data": {k: card.get(k) for k in ("source", "description", "note")},
            "runtime": backend.describe(),
        },
    )
    reports.announce(verdict)


if __name__ == "__main__":
    launch.main(PROJECT, "evaluate", evaluate)
