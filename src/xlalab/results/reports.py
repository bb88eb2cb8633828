"""Metric reports, written once per kind of task, from scikit-learn where it has the metric.

Every report puts the headline model beside baselines computed on the same test rows, and
``verdict`` says in one line whether the model beats the best of them. Projects put the verdict in
their metrics and print it at the end of evaluate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier, DummyRegressor

from ..pipeline.log import say_last


# --- the verdict ------------------------------------------------------------------------------
def verdict(
    model: str,
    scores: Mapping[str, float],
    baselines: Sequence[str],
    metric: str,
    higher_is_better: bool,
) -> dict:
    """Does ``model`` beat the best of ``baselines`` on ``metric``? ``scores`` holds every
    candidate."""
    if not baselines:
        raise ValueError("a verdict needs at least one baseline")
    pick = max if higher_is_better else min
    best_baseline = pick(baselines, key=lambda b: scores[b])
    ours, theirs = float(scores[model]), float(scores[best_baseline])
    beats = ours > theirs if higher_is_better else ours < theirs
    line = (
        f"{model} {metric} {ours:.4g} vs best baseline {best_baseline} {theirs:.4g}: "
        f"{'beats' if beats else 'does NOT beat'} it"
    )
    return {
        "model": model,
        "metric": metric,
        "score": ours,
        "best_baseline": best_baseline,
        "baseline_score": theirs,
        "beats_baseline": bool(beats),
        "margin": ours - theirs,
        "line": line,
    }


def announce(result: dict) -> None:
    """Print the verdict line: the last line of a stage's log (see ``log.say_last``)."""
    say_last(f"verdict: {result['line']}")


# --- classification ---------------------------------------------------------------------------
def classification(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support, keyed by label name."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    ids = list(range(len(labels)))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            skm.f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)
        ),
        "per_class": {
            name: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, name in enumerate(labels)
        },
    }


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    return skm.confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))


def confusion_rows(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> list[dict]:
    """One row per example, the input of DVC's ``confusion`` template."""
    return [{"actual": labels[int(t)], "predicted": labels[int(p)]} for t, p in zip(y_true, y_pred)]


def majority_predictions(y_train: Sequence[int], n_test: int) -> np.ndarray:
    """What always predicting the most frequent training class predicts (ties: the lowest id)."""
    dummy = DummyClassifier(strategy="most_frequent").fit(
        np.zeros((len(y_train), 1)), np.asarray(y_train)
    )
    return dummy.predict(np.zeros((n_test, 1)))


# --- regression -------------------------------------------------------------------------------
def regression(y_true: Sequence[float], y_pred: Sequence[float]) -> dict:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return {
        "rmse": float(skm.root_mean_squared_error(y_true, y_pred)),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)),
    }


def mean_predictions(y_train: Sequence[float], n_test: int) -> np.ndarray:
    """The mean-predictor baseline: the training mean for every test row."""
    dummy = DummyRegressor(strategy="mean").fit(
        np.zeros((len(y_train), 1)), np.asarray(y_train, float)
    )
    return dummy.predict(np.zeros((n_test, 1)))


# --- forecasting ------------------------------------------------------------------------------
def forecasting(
    actual: np.ndarray,
    predicted: np.ndarray,
    last_value: np.ndarray,
    naive_mae: float,
    scale: float,
) -> dict:
    """MAE, RMSE, MAPE (%), MASE (MAE over the in-sample naive MAE, Hyndman's scaling), MAE relative
    to the naive forecast on the same days, and directional accuracy (share of days with a move
    whose direction was called right; None for a forecast that never calls a move)."""
    moved = np.sign(actual - last_value)
    called = np.sign(predicted - last_value)
    has_move = moved != 0
    direction = (
        None
        if not np.any(called[has_move])
        else float((called[has_move] == moved[has_move]).mean())
    )
    mae = float(skm.mean_absolute_error(actual, predicted))
    return {
        "mae": mae,
        "rmse": float(skm.root_mean_squared_error(actual, predicted)),
        "mape": float(skm.mean_absolute_percentage_error(actual, predicted) * 100),
        "mase": mae / scale,
        "mae_vs_naive": mae / naive_mae,
        "directional_accuracy": direction,
    }


# --- anomaly detection ------------------------------------------------------------------------
def anomaly(is_anomaly: Sequence[bool], scores: Sequence[float], flagged: Sequence[bool]) -> dict:
    """Precision, recall and F1 of the alarms at the detector's threshold; ROC-AUC and PR-AUC
    (average precision) of its scores, higher meaning more anomalous."""
    y, s, f = np.asarray(is_anomaly, bool), np.asarray(scores, float), np.asarray(flagged, bool)
    p, r, f1, _ = skm.precision_recall_fscore_support(y, f, average="binary", zero_division=0)
    both_classes = 0 < y.sum() < len(y)
    return {
        "precision": float(p),
        "recall": float(r),
        "f1": float(f1),
        "roc_auc": float(skm.roc_auc_score(y, s)) if both_classes else None,
        "pr_auc": float(skm.average_precision_score(y, s)) if both_classes else None,
        "alarm_rate": float(f.mean()),
        "alarms": int(f.sum()),
    }
