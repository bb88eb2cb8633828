"""The evaluate stage: the fine-tuned model's test predictions, the baselines on the same rows, the
report and the verdict (``core.evidence.compare``: 95 % bootstrap intervals, paired over the test
rows, against the strongest baseline).

The headline metric follows from the data and is one a constant answer cannot reach: accuracy for
a binary project (imdb; the published IMDb results are accuracies on a balanced test set, and the
majority baseline shows what answering one class scores), macro-F1 for a project with more classes
(reviews, where a skewed test set would let accuracy reward ignoring a small class). A binary
project also gets the F1 of its positive class (the second class name) judged the same way, and a
project with a neutral class the macro-F1 of its other classes (reviews: negative and positive,
the two-class sentiment verdict; its offline "neutral" is plot summaries, which a model can tell
from opinions by their style alone).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ..engine.loop import predict
from ..engine.runtime import make_backend
from ..pipeline import runner
from ..pipeline.artifacts import read_summary
from ..pipeline.contract import Paths
from ..pipeline.report import Report
from ..results import evidence, reports
from . import EvaluateParams, baselines, corpus, tokens
from . import model as textmodel

logger = logging.getLogger(__name__)

MODEL = "finetuned"
NEUTRAL = "neutral"


def headline(labels: Sequence[str]) -> tuple[str, str, evidence.Metric, str]:
    """(metric key in the reports, its name, the metric, scikit-learn's name for it in the
    baselines' cross-validation)."""
    if len(labels) == 2:
        return "accuracy", "accuracy", evidence.accuracy, "accuracy"
    return "macro_f1", "macro-F1", evidence.macro_f1_of(len(labels)), "f1_macro"


def report(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict:
    out = reports.classification(y_true, y_pred, labels)
    if len(labels) == 2:  # binary: the F1 of the positive (second) class beside accuracy
        out = {"f1": out["per_class"][labels[1]]["f1"], **out}
    return out


def finetuned_probabilities(
    paths: Paths, backend, rows: dict, buckets, batch_size: int
) -> tuple[np.ndarray, float]:
    """The fine-tuned model's class probabilities for the test rows, and the seconds it took."""
    net = textmodel.load_trained(paths.model)
    start = time.perf_counter()
    logits = predict(
        net,
        tokens.model_inputs(rows),
        backend,
        batch_size,
        forward=textmodel.logits,
        desc=f"{paths.project} test",
        buckets=buckets,
    )
    return torch.softmax(logits, -1).numpy(), time.perf_counter() - start


TEXT_BASELINES = {
    "tfidf_logreg": (
        baselines.tfidf_logreg,
        "TF-IDF of word 1-2-grams and char_wb 2-5-grams (sublinear tf, stop words kept) + logistic "
        "regression",
    ),
    "nbsvm": (
        baselines.nbsvm,
        "NB-SVM (Wang and Manning 2012): binarized word 1-2-grams scaled by the naive-Bayes "
        "log-count ratio + logistic regression, one against the rest",
    ),
}


def run_baselines(p: EvaluateParams, paths: Paths, backend, data, texts, meta, balanced: bool):
    """Every baseline's test predictions, and what each is and chose (on the training rows)."""
    y_train, n_test = data["train"]["labels"].numpy(), len(data["test"]["labels"])
    scoring = headline(meta["labels"])[3]
    train_texts = corpus.split_texts(texts, "train")
    groups = corpus.groups_of(train_texts)  # each training row's movie, where the data has one
    scored = {"majority": reports.majority_predictions(y_train, n_test)}
    notes = {"majority": {"what": "always the most frequent training class"}}
    for name, (fit_predict, what) in TEXT_BASELINES.items():
        scored[name], chosen = fit_predict(
            train_texts["text"].tolist(),
            y_train,
            corpus.split_texts(texts, "test")["text"].tolist(),
            groups=groups,
            balanced=balanced,
            scoring=scoring,
            seed=p.seed,
        )
        notes[name] = {"what": what, **chosen}
    if p.evaluate.embedding_baseline:
        emb = baselines.frozen_embeddings(
            textmodel.pretrained(p.model, p.revision),
            {split: tokens.model_inputs(data[split]) for split in ("train", "test")},
            tokens.buckets(meta["buckets"]),
            paths.features,
            paths.cache,
            backend,
            p.evaluate.batch_size,
            paths.project,
        )
        scored["embedding_logreg"], chosen = baselines.embedding_logreg(
            emb["train"].numpy(),
            y_train,
            emb["test"].numpy(),
            groups=groups,
            balanced=balanced,
            scoring=scoring,
            seed=p.seed,
        )
        notes["embedding_logreg"] = {"what": f"mean-pooled frozen {p.model} embeddings", **chosen}
    return scored, notes


def sentiment_classes(labels: Sequence[str]) -> list[int] | None:
    """The ids of the opinion classes of a project with a ``neutral`` class besides them (reviews:
    negative and positive; its offline neutral class is plot summaries, easy to tell apart by
    style), or None."""
    if len(labels) <= 2 or NEUTRAL not in labels:
        return None
    return [i for i, name in enumerate(labels) if name != NEUTRAL]


def mean_f1_of(classes: Sequence[int]) -> evidence.Metric:
    """The F1 of each of ``classes``, averaged: macro-F1 over those classes only, on every row."""
    per_class = [evidence.f1_of_class(c) for c in classes]

    def mean_f1(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> float:
        return float(np.mean([f1(y, pred, w) for f1 in per_class]))

    return mean_f1


def judge(predictions: dict, y_test: np.ndarray, labels: Sequence[str], seed: int) -> dict:
    """The headline verdict; for a binary project the F1 of its positive class the same way, and
    for a project with a neutral class the macro-F1 of its opinion classes alone (two-class
    sentiment), each against its own strongest baseline on the same rows."""
    _, name, metric, _ = headline(labels)
    rivals = [b for b in predictions if b != MODEL]
    verdicts = {
        "verdict": evidence.compare(
            MODEL,
            predictions,
            y_test,
            metric,
            metric_name=name,
            higher_is_better=True,
            baselines=rivals,
            seed=seed,
        )
    }
    sentiment = sentiment_classes(labels)
    if sentiment:  # does the model read opinions better, not just tell plots from reviews?
        verdicts["verdict_sentiment"] = evidence.compare(
            MODEL,
            predictions,
            y_test,
            mean_f1_of(sentiment),
            metric_name="macro-F1 of " + " and ".join(labels[c] for c in sentiment),
            higher_is_better=True,
            baselines=rivals,
            seed=seed,
        )
    if len(labels) == 2:
        verdicts["verdict_f1_positive"] = evidence.compare(
            MODEL,
            predictions,
            y_test,
            evidence.f1_of_class(1),
            metric_name=f"F1 of {labels[1]!r}",
            higher_is_better=True,
            baselines=rivals,
            seed=seed,
        )
    return verdicts


def evaluate(params: EvaluateParams, paths: Paths) -> Report:
    backend = make_backend(params.runtime)
    splits, texts, meta = tokens.read_features(paths.features)
    labels, summary = meta["labels"], read_summary(paths)
    data = {
        split: tokens.as_tensors(splits[split], meta["max_length"], meta["pad_token_id"])
        for split in ("train", "test")
    }
    probs, seconds = finetuned_probabilities(
        paths, backend, data["test"], tokens.buckets(meta["buckets"]), params.evaluate.batch_size
    )
    y_test, y_pred = data["test"]["labels"].numpy(), probs.argmax(-1)
    balanced = summary["balance"]["method"] != "none"  # the baselines balance when the model did
    scored, notes = run_baselines(params, paths, backend, data, texts, meta, balanced)
    verdicts = judge({MODEL: y_pred, **scored}, y_test, labels, params.seed)
    result = details(params, meta, summary, y_test, y_pred, scored, notes, verdicts, seconds)
    result["runtime"] = backend.describe()
    pd.DataFrame(
        {
            "actual": [labels[int(a)] for a in y_test],
            "predicted": [labels[int(b)] for b in y_pred],
            "confidence": probs[np.arange(len(y_pred)), y_pred].round(6),
        }
    ).to_csv(paths.predictions, index=False)
    warnings = result.pop("warnings")
    for warning in warnings:
        logger.warning(f"{paths.project} evaluate: {warning}")
    for extra in ("verdict_f1_positive", "verdict_sentiment"):
        if extra in verdicts:
            logger.info(f"{paths.project} evaluate: {verdicts[extra]['line']}")
    reports.announce(verdicts["verdict"])  # last: the log ends with the verdict
    return Report.judged(
        result.pop("verdict"),
        test_rows=len(y_test),
        source=meta.get("source") or "-",
        runtime=summary["runtime"],
        warnings=warnings,
        details=result,
    )


def details(p, meta, summary, y_test, y_pred, scored, notes, verdicts, seconds) -> dict:
    """The model and every baseline, the verdicts, and what to trust (the details file)."""
    labels = meta["labels"]
    finetuned = report(y_test, y_pred, labels)
    cm = reports.confusion(y_test, y_pred, len(labels))
    finetuned["confusion_matrix"] = {
        a: {b: int(cm[i, j]) for j, b in enumerate(labels)} for i, a in enumerate(labels)
    }
    baseline_reports = {}
    for name, pred in scored.items():
        baseline_reports[name] = report(y_test, pred, labels)
        baseline_reports[name].pop("per_class")
    entry = summary["models"][textmodel.WEIGHTS]
    # Everything that makes these numbers less trustworthy, in one place: the data's (from
    # featurize) and the training's (not settled).
    warnings = list(meta.get("warnings", [])) + (
        [entry["settle_note"]] if entry.get("settled") is False else []
    )
    return {
        "headline": headline(labels)[0],
        MODEL: finetuned,
        "baselines": baseline_reports,
        **verdicts,
        "warnings": warnings,
        "test_rows": len(y_test),
        "data": data_section(meta),
        "model": model_section(p, summary, entry),
        "speed": {
            "train_samples_per_sec": entry["samples_per_sec"],
            "train_seconds": entry["train_seconds"],
            "predict_samples_per_sec": len(y_test) / seconds,
        },
        "baseline_notes": notes,
    }


def data_section(meta: dict) -> dict:
    keys = (
        "source",
        "labels",
        "rows",
        "class_counts",
        "max_length",
        "max_length_param",
        "validation_grouped_by",
    )
    return {
        **{key: meta.get(key) for key in keys},
        **{key: meta[key] for key in ("buckets", "padding", "share_truncated")},
    }


def model_section(p: EvaluateParams, summary: dict, entry: dict) -> dict:
    return {
        "name": p.model,
        "pretrained": summary["pretrained"],
        "architecture": summary["architecture"],
        "parameters": summary["parameters"],
        "trainable_parameters": summary["trainable_parameters"],
        "best_epoch": entry["best_epoch"],
        "epochs_run": entry["epochs_run"],
        "stopped_early": entry["stopped_early"],
        "balance": summary["balance"]["method"],
    }


if __name__ == "__main__":
    runner.main(evaluate)
