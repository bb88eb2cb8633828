"""Reference points scored on the same test rows as the fine-tuned model, in the evaluate stage.

All three learn from the same training rows as the fine-tuned model, so the comparison is about
the method, not the amount of data."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ..core.io import atomic_path
from ..core.metrics import majority_class


def majority(y_train: np.ndarray, n_test: int, n_classes: int) -> np.ndarray:
    return np.full(n_test, majority_class(y_train, n_classes))


def _logreg(balanced: bool, seed: int) -> LogisticRegression:
    return LogisticRegression(max_iter=2000, C=1.0, class_weight="balanced" if balanced else None,
                              random_state=seed)


def tfidf_logreg(train_texts: Sequence[str], y_train: np.ndarray, test_texts: Sequence[str], *,
                 balanced: bool, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Word uni- and bigrams, English stop words removed, sublinear tf, then logistic regression."""
    vectorizer = TfidfVectorizer(stop_words="english", ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vectorizer.fit_transform(train_texts)
    clf = _logreg(balanced, seed).fit(x_train, y_train)
    return clf.predict(vectorizer.transform(test_texts)), {"vocabulary": len(vectorizer.vocabulary_)}


def embedding_logreg(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, balanced: bool,
                     seed: int) -> np.ndarray:
    scaler = StandardScaler().fit(x_train)
    clf = _logreg(balanced, seed).fit(scaler.transform(x_train), y_train)
    return clf.predict(scaler.transform(x_test))


def cached_embeddings(cache_file: Path, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Frozen embeddings cost a forward pass per row; they depend only on the pretrained model and
    the tokens, so a re-run of evaluate after retraining (new lr, epochs, ...) reuses them.
    ``cache_file`` is named by a fingerprint of both, so a stale file is never read."""
    if cache_file.exists():
        return torch.load(cache_file, weights_only=True)
    embeddings = compute()
    with atomic_path(cache_file) as tmp:
        torch.save(embeddings, tmp)
    for old in cache_file.parent.glob("embeddings-*.pt"):  # keep only the current one
        if old != cache_file:
            old.unlink(missing_ok=True)
    return embeddings
