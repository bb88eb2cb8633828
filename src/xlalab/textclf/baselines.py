"""Reference models scored on the same test rows as the fine-tuned model, in the evaluate stage:
the ones a reviewer tries first. Each learns from the same training rows as the fine-tuned model
and chooses its penalty ``C`` by cross-validation on those rows alone (scored by the headline
metric), so the comparison is about the method, not the data or the tuning. The majority class
(the floor) comes from core.reports.

- ``tfidf_logreg``: TF-IDF of word uni+bigrams and of character 2-5-grams within words (sublinear
  tf, no stop-word list: "not", "no", "never", "but" and "very" carry sentiment), then logistic
  regression.
- ``embedding_logreg``: mean-pooled frozen sentence embeddings of the pretrained encoder (not the
  fine-tuned one), standardised, then logistic regression.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..engine.batches import Batch, LengthBuckets
from ..engine.loop import predict
from ..files import fingerprint
from . import model as textmodel
from . import tokens

# One thread: a fit on a thousand short texts takes milliseconds, and the OpenMP threads scikit-
# learn's loss uses spin while they wait for each other; on a busy 2-core machine that made the
# 55 fits of a search take minutes (measured: 0.25-1.45 s of CPU per fit with two threads, 0.03-0.1
# s with one).
ONE_THREAD = 1
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
FOLDS = 5


def cv_logreg(
    x, y: np.ndarray, *, balanced: bool, scoring: str, seed: int
) -> tuple[LogisticRegression, dict[str, Any]]:
    """Logistic regression with the ``C`` of ``C_GRID`` that scores best (``scoring``, a
    scikit-learn scorer name) in stratified ``FOLDS``-fold cross-validation on the training rows,
    refitted on all of them."""
    folds = min(FOLDS, int(np.bincount(y).min()))  # a tiny class cannot fill five folds
    with threadpool_limits(ONE_THREAD):
        search = _search(x, y, balanced=balanced, scoring=scoring, seed=seed, folds=folds)
    return search.best_estimator_, {
        "C": float(search.best_params_["C"]),
        "cv_score": float(search.best_score_),
        "cv": f"{max(2, folds)}-fold stratified on the training rows, {scoring}",
    }


def _search(x, y, *, balanced: bool, scoring: str, seed: int, folds: int) -> GridSearchCV:
    return GridSearchCV(
        LogisticRegression(
            max_iter=5000, class_weight="balanced" if balanced else None, random_state=seed
        ),
        {"C": list(C_GRID)},
        scoring=scoring,
        cv=StratifiedKFold(max(2, folds), shuffle=True, random_state=seed),
    ).fit(x, y)


def tfidf_features() -> FeatureUnion:
    return FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True
                ),
            ),
        ]
    )


def tfidf_logreg(
    train_texts: Sequence[str],
    y_train: np.ndarray,
    test_texts: Sequence[str],
    *,
    balanced: bool,
    scoring: str,
    seed: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    vectorizer = tfidf_features()
    x_train = vectorizer.fit_transform(train_texts)
    clf, chosen = cv_logreg(x_train, y_train, balanced=balanced, scoring=scoring, seed=seed)
    return clf.predict(vectorizer.transform(test_texts)), {**chosen, "features": x_train.shape[1]}


def embedding_logreg(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    balanced: bool,
    scoring: str,
    seed: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    # float64: in float32 each BLAS kernel (one per processor) steered the solver to coefficients
    # of its own (measured on cifar10's pixels: validation accuracy 0.9, 0.8975 or 0.905 by kernel)
    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    scaler = StandardScaler().fit(x_train)
    clf, chosen = cv_logreg(
        scaler.transform(x_train), y_train, balanced=balanced, scoring=scoring, seed=seed
    )
    return clf.predict(scaler.transform(x_test)), chosen


def cached_embeddings(
    cache_file: Path, compute: Callable[[], dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """Frozen embeddings cost a forward pass per row; they depend only on the pretrained model and
    the tokens, so a re-run of evaluate after retraining (new lr, epochs, ...) reuses them.
    ``cache_file`` is named by a fingerprint of both, so a stale file is never read."""
    if cache_file.exists():
        return load_file(str(cache_file))
    embeddings = compute()
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(f".{cache_file.name}.tmp")
    save_file({k: v.contiguous() for k, v in embeddings.items()}, str(tmp))
    tmp.replace(cache_file)
    for old in cache_file.parent.glob("embeddings-*.safetensors"):  # keep only the current one
        if old != cache_file:
            old.unlink(missing_ok=True)
    return embeddings


def frozen_embeddings(
    model: textmodel.Pretrained,
    data: dict[str, Batch],
    buckets: LengthBuckets,
    features_dir: Path,
    cache_dir: Path,
    backend,
    batch_size: int,
    desc: str,
) -> dict[str, torch.Tensor]:
    """Mean-pooled embeddings of the pretrained (not fine-tuned) encoder for train and test."""
    stamp = fingerprint(
        model.name, model.source, model.commit, files=tokens.token_files(features_dir)
    )

    def compute() -> dict[str, torch.Tensor]:
        encoder = textmodel.load_encoder(model)
        return {
            split: predict(
                encoder,
                rows,
                backend,
                batch_size,
                forward=textmodel.mean_pooled,
                desc=f"{desc} embeddings {split}",
                buckets=buckets,
            )
            for split, rows in data.items()
        }

    return cached_embeddings(cache_dir / f"embeddings-{stamp}.safetensors", compute)
