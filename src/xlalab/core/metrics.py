"""Metric reports shared by the projects, in the shapes metrics/*.json and DVC plots expect."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import metrics as skm


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support, keyed by label name."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    ids = list(range(len(labels)))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro_f1": float(skm.f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "per_class": {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                             "support": int(s[i])} for i, name in enumerate(labels)},
    }


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    return skm.confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))


def confusion_rows(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> list[dict]:
    """One row per example, the input of DVC's ``confusion`` template (x: actual, y: predicted)."""
    return [{"actual": labels[int(t)], "predicted": labels[int(p)]} for t, p in zip(y_true, y_pred)]


def majority_class(y_train: Sequence[int], n_classes: int) -> int:
    """The most frequent training class (ties go to the lowest id)."""
    return int(np.bincount(np.asarray(y_train), minlength=n_classes).argmax())


def majority_baseline(y_train: Sequence[int], y_test: Sequence[int], labels: Sequence[str]) -> dict:
    """What always predicting the most frequent training class scores on the test set."""
    majority = majority_class(y_train, len(labels))
    report = classification_report(y_test, np.full(len(y_test), majority), labels)
    return {"predicts": labels[majority], "accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}
