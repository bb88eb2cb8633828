"""The evaluate stage: the fine-tuned model's test predictions, the baselines on the same rows, the
report and the verdict.

The headline metric follows from the data: a binary project is judged by the F1 of its positive
class (the second class name), a project with more classes by macro-F1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ..core import reports
from ..core.artifacts import read_summary
from ..core.io import write_json
from ..core.loop import predict
from ..core.project import Paths
from ..core.runtime import make_backend
from . import EvaluateParams, baselines, corpus
from . import model as textmodel

logger = logging.getLogger(__name__)

MODEL = "finetuned"


def headline(labels: Sequence[str]) -> tuple[str, str]:
    """(metric key, description) that judges the project."""
    if len(labels) == 2:
        return "f1", f"F1 of {labels[1]!r}"
    return "macro_f1", "macro-F1"


def report(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict:
    out = reports.classification(y_true, y_pred, labels)
    if len(labels) == 2:  # binary: F1 of the positive (second) class first
        out = {"f1": out["per_class"][labels[1]]["f1"], **out}
    return out


def evaluate(p: EvaluateParams, paths: Paths) -> None:
    backend = make_backend(p.runtime)
    tensors, texts, meta = corpus.read_features(paths.features)
    labels = meta["labels"]
    summary = read_summary(paths)
    net = textmodel.load_trained(paths.model)

    test_inputs = {k: tensors["test"][k] for k in textmodel.TOKEN_KEYS}
    start = time.perf_counter()
    logits = predict(
        net,
        test_inputs,
        backend,
        p.evaluate.batch_size,
        forward=textmodel.logits,
        desc=f"{paths.project} test",
    )
    predict_seconds = time.perf_counter() - start
    probs = torch.softmax(logits, -1).numpy()
    y_test, y_train = tensors["test"]["labels"].numpy(), tensors["train"]["labels"].numpy()
    y_pred = probs.argmax(-1)

    # Baselines see the same training rows as the model; class-balanced when the model was.
    balanced = summary["balance"]["method"] != "none"
    train_texts = corpus.split_texts(texts, "train")["text"].tolist()
    test_texts = corpus.split_texts(texts, "test")["text"].tolist()
    scored = {"majority": reports.majority_predictions(y_train, len(y_test))}
    scored["tfidf_logreg"], tfidf_info = baselines.tfidf_logreg(
        train_texts, y_train, test_texts, balanced=balanced, seed=p.seed
    )
    notes = {
        "majority": "always the most frequent training class",
        "tfidf_logreg": (
            f"uni+bigrams, English stop words removed, {tfidf_info['vocabulary']} terms"
        ),
    }
    if p.evaluate.embedding_baseline:
        emb = baselines.frozen_embeddings(
            p.model,
            tensors,
            paths.features,
            paths.cache,
            backend,
            p.evaluate.batch_size,
            paths.project,
        )
        scored["embedding_logreg"] = baselines.embedding_logreg(
            emb["train"].numpy(), y_train, emb["test"].numpy(), balanced=balanced, seed=p.seed
        )
        notes["embedding_logreg"] = f"mean-pooled frozen {p.model} embeddings"

    finetuned = report(y_test, y_pred, labels)
    cm = reports.confusion(y_test, y_pred, len(labels))
    finetuned["confusion_matrix"] = {
        a: {b: int(cm[i, j]) for j, b in enumerate(labels)} for i, a in enumerate(labels)
    }
    baseline_reports = {name: report(y_test, pred, labels) for name, pred in scored.items()}
    for r in baseline_reports.values():
        r.pop("per_class")
    key, described = headline(labels)
    scores = {MODEL: finetuned[key], **{name: r[key] for name, r in baseline_reports.items()}}
    verdict = reports.verdict(MODEL, scores, list(scored), described, higher_is_better=True)
    entry = summary["models"][textmodel.WEIGHTS]
    # Everything that makes these numbers less trustworthy, in one place: the data's (from
    # featurize) and the training's (not settled).
    warnings = list(meta.get("warnings", [])) + (
        [entry["settle_note"]] if entry.get("settled") is False else []
    )
    result = {
        "headline": key,
        MODEL: finetuned,
        "baselines": baseline_reports,
        "verdict": verdict,
        "warnings": warnings,
        "test_rows": len(y_test),
        "data": {
            "source": meta.get("source"),
            "labels": labels,
            "rows": meta["rows"],
            "class_counts": meta["class_counts"],
            "max_length": meta["max_length"],
            "max_length_param": meta.get("max_length_param"),
            "share_truncated": meta["share_truncated"],
        },
        "model": {
            "name": p.model,
            "architecture": summary["architecture"],
            "parameters": summary["parameters"],
            "trainable_parameters": summary["trainable_parameters"],
            "best_epoch": entry["best_epoch"],
            "epochs_run": entry["epochs_run"],
            "balance": summary["balance"]["method"],
        },
        "speed": {
            "train_samples_per_sec": entry["samples_per_sec"],
            "train_seconds": entry["train_seconds"],
            "predict_samples_per_sec": len(y_test) / predict_seconds,
        },
        "baseline_notes": notes,
        "runtime": backend.describe(),
    }
    pd.DataFrame(
        {
            "actual": [labels[int(a)] for a in y_test],
            "predicted": [labels[int(b)] for b in y_pred],
            "confidence": probs[np.arange(len(y_pred)), y_pred].round(6),
        }
    ).to_csv(paths.predictions, index=False)
    write_json(paths.metrics, result)
    for warning in warnings:
        logger.warning(f"{paths.project} evaluate: {warning}")
    reports.announce(verdict)  # last: the log ends with the verdict
