"""Reference models scored on the same test rows as the fine-tuned model, in the evaluate stage
(the majority class comes from core.reports).

Both learn from the same training rows as the fine-tuned model, so the comparison is about the
method, not the amount of data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ..core.io import fingerprint
from ..core.loop import predict
from . import corpus
from . import model as textmodel


def _logreg(balanced: bool, seed: int) -> LogisticRegression:
    return LogisticRegression(
        max_iter=2000, C=1.0, class_weight="balanced" if balanced else None, random_state=seed
    )


def tfidf_logreg(
    train_texts: Sequence[str],
    y_train: np.ndarray,
    test_texts: Sequence[str],
    *,
    balanced: bool,
    seed: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Word uni- and bigrams, English stop words removed, sublinear tf, then logistic regression."""
    vectorizer = TfidfVectorizer(
        stop_words="english", ngram_range=(1, 2), min_df=2, sublinear_tf=True
    )
    x_train = vectorizer.fit_transform(train_texts)
    clf = _logreg(balanced, seed).fit(x_train, y_train)
    return clf.predict(vectorizer.transform(test_texts)), {
        "vocabulary": len(vectorizer.vocabulary_)
    }


def embedding_logreg(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, balanced: bool, seed: int
) -> np.ndarray:
    scaler = StandardScaler().fit(x_train)
    clf = _logreg(balanced, seed).fit(scaler.transform(x_train), y_train)
    return clf.predict(scaler.transform(x_test))


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
    model_name: str,
    tensors: dict,
    features_dir: Path,
    cache_dir: Path,
    backend,
    batch_size: int,
    desc: str,
) -> dict[str, torch.Tensor]:
    """Mean-pooled embeddings of the pretrained (not fine-tuned) encoder for train and test."""
    stamp = fingerprint(
        model_name, textmodel.resolve_model(model_name), files=(features_dir / corpus.TOKENS_FILE,)
    )

    def compute() -> dict[str, torch.Tensor]:
        encoder = textmodel.load_encoder(model_name)
        return {
            split: predict(
                encoder,
                {k: tensors[split][k] for k in textmodel.TOKEN_KEYS},
                backend,
                batch_size,
                forward=textmodel.mean_pooled,
                desc=f"{desc} embeddings {split}",
            )
            for split in ("train", "test")
        }

    return cached_embeddings(cache_dir / f"embeddings-{stamp}.safetensors", compute)
