"""Reference models scored on the same test rows as the fine-tuned model, in the evaluate stage:
the ones a reviewer tries first. Each learns from the same training rows as the fine-tuned model
and chooses its penalty ``C`` by cross-validation on those rows alone (scored by the headline
metric), so the comparison is about the method, not the data or the tuning. The majority class
(the floor) comes from results.reports.

Each baseline is one scikit-learn ``Pipeline`` (what turns texts or embeddings into features, then
the classifier), and the search fits the whole pipeline in every fold: the vocabulary, the IDF
weights, ``min_df``, the naive-Bayes ratios and the scaler's means are learned from the fold's
training rows only, as they would be for new data. Fitting them on all training rows first and
cross-validating the classifier alone lets every validation fold shape its own features, which
flatters the search and skews the ``C`` it picks. Where the rows name their movie, the folds keep
each movie on one side (``StratifiedGroupKFold``), as the validation split of the fine-tuned model
does.

- ``tfidf_logreg``: TF-IDF of word uni+bigrams and of character 2-5-grams within words (sublinear
  tf, no stop-word list: "not", "no", "never", "but" and "very" carry sentiment), then logistic
  regression.
- ``nbsvm``: NB-SVM (Wang and Manning 2012, "Baselines and bigrams"), the standard baseline for
  short sentiment snippets: binarized word uni+bigram counts scaled by the naive-Bayes log-count
  ratio of each feature, then a linear classifier on them; here logistic regression (the
  NBSVM-LR variant), one against the rest for more than two classes.
- ``embedding_logreg``: mean-pooled frozen sentence embeddings of the pretrained encoder (not the
  fine-tuned one), standardised, then logistic regression.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import torch
from safetensors.torch import load_file, save_file
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
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
NB_SMOOTHING = 1.0  # Wang and Manning's alpha: one pseudo-count per feature and class
CLASSIFIER = "classifier"  # the last step of every baseline's pipeline


def logistic_regression(*, balanced: bool, seed: int) -> LogisticRegression:
    return LogisticRegression(
        max_iter=5000, class_weight="balanced" if balanced else None, random_state=seed
    )


def folds_for(y: np.ndarray, groups: np.ndarray | None, seed: int):
    """Stratified folds on the training rows, grouped (no movie in two folds) where ``groups``
    names each row's movie; fewer than ``FOLDS`` when a class is too small to fill them."""
    n_splits = max(2, min(FOLDS, int(np.bincount(y).min())))
    if groups is None:
        return StratifiedKFold(n_splits, shuffle=True, random_state=seed), n_splits
    return StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed), n_splits


def cv_search(
    pipeline: Pipeline,
    x,
    y: np.ndarray,
    *,
    groups: np.ndarray | None,
    scoring: str,
    seed: int,
    c_param: str = "C",
) -> tuple[Pipeline, dict[str, Any]]:
    """``pipeline`` with the ``C`` of ``C_GRID`` (``c_param`` of its classifier step) that scores
    best (``scoring``, a scikit-learn scorer name) in stratified ``FOLDS``-fold cross-validation on
    the training rows, then refitted whole on all of them.

    In every fold the feature steps are fitted on the fold's training rows alone and then serve
    every ``C``: the same search as ``GridSearchCV`` over the whole pipeline (ties go to the
    smaller ``C``, as there), without refitting a fold's vocabulary once per ``C`` (55 vectorizer
    fits instead of 5) or reloading it from ``Pipeline(memory=)``'s disk cache, whose unpickling of
    the vocabularies took longer than fitting them (measured: 11 s of CPU for imdb's TF-IDF search
    with the cache, 18 s without it, 4 s this way)."""
    folds, n_splits = folds_for(y, groups, seed)
    rows = np.asarray(x) if isinstance(x, np.ndarray) else np.asarray(list(x), dtype=object)
    features, (_, classifier) = Pipeline(pipeline.steps[:-1]), pipeline.steps[-1]
    scorer = get_scorer(scoring)
    scores = np.zeros((n_splits, len(C_GRID)))
    with threadpool_limits(ONE_THREAD):
        for k, (fit_rows, val_rows) in enumerate(folds.split(rows, y, groups)):
            fold_features = clone(features)
            fit_x = fold_features.fit_transform(rows[fit_rows], y[fit_rows])
            val_x = fold_features.transform(rows[val_rows])
            for j, c in enumerate(C_GRID):
                fold_classifier = clone(classifier).set_params(**{c_param: c})
                fold_classifier.fit(fit_x, y[fit_rows])
                scores[k, j] = scorer(fold_classifier, val_x, y[val_rows])
        best = int(np.argmax(scores.mean(axis=0)))  # the first (smallest C) of equal scores
        fitted = clone(pipeline).set_params(**{f"{CLASSIFIER}__{c_param}": C_GRID[best]})
        fitted.fit(rows, y)
    grouped = "grouped by movie, " if groups is not None else ""
    return fitted, {
        "C": float(C_GRID[best]),
        "cv_score": float(scores.mean(axis=0)[best]),
        "cv": f"{n_splits}-fold stratified, {grouped}on the training rows, {scoring}; "
        "features refitted in every fold",
    }


# --- TF-IDF ------------------------------------------------------------------------------------
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


def tfidf_pipeline(*, balanced: bool, seed: int) -> Pipeline:
    return Pipeline(
        [
            ("features", tfidf_features()),
            (CLASSIFIER, logistic_regression(balanced=balanced, seed=seed)),
        ]
    )


def tfidf_logreg(
    train_texts: Sequence[str],
    y_train: np.ndarray,
    test_texts: Sequence[str],
    *,
    groups: np.ndarray | None = None,
    balanced: bool,
    scoring: str,
    seed: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    fitted, chosen = cv_search(
        tfidf_pipeline(balanced=balanced, seed=seed), train_texts, y_train,
        groups=groups, scoring=scoring, seed=seed,
    )  # fmt: skip
    features = sum(len(v.vocabulary_) for _, v in fitted.named_steps["features"].transformer_list)
    return predict_texts(fitted, test_texts, chosen, features)


def predict_texts(
    fitted: Pipeline, test_texts: Sequence[str], chosen: dict[str, Any], features: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """A searched pipeline's test predictions, and what the search chose with its feature count."""
    return fitted.predict(list(test_texts)), {**chosen, "features": features}


# --- NB-SVM ------------------------------------------------------------------------------------
class NaiveBayesLogisticRegression(ClassifierMixin, BaseEstimator):
    """Two classes: each feature scaled by its naive-Bayes log-count ratio
    ``r = log((p / |p|_1) / (q / |q|_1))``, ``p`` and ``q`` the smoothed feature counts of the
    second and first class (Wang and Manning 2012), then logistic regression on the scaled
    features. A word that only one class uses gets a large weight before the classifier sees it,
    which is what lets a linear model learn from a thousand short snippets."""

    def __init__(
        self,
        C: float = 1.0,
        smoothing: float = NB_SMOOTHING,
        class_weight: str | None = None,
        random_state: int | None = None,
    ):
        self.C = C
        self.smoothing = smoothing
        self.class_weight = class_weight
        self.random_state = random_state

    def fit(self, x, y):
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError("NaiveBayesLogisticRegression is binary; wrap it in OneVsRest")
        x = scipy.sparse.csr_matrix(x)
        second = np.asarray(y) == self.classes_[1]
        p = self.smoothing + np.asarray(x[second].sum(axis=0)).ravel()
        q = self.smoothing + np.asarray(x[~second].sum(axis=0)).ravel()
        self.ratio_ = np.log(p / p.sum()) - np.log(q / q.sum())
        self.classifier_ = LogisticRegression(
            C=self.C,
            max_iter=5000,
            class_weight=self.class_weight,
            random_state=self.random_state,
        ).fit(self._scaled(x), y)
        return self

    def _scaled(self, x):
        return scipy.sparse.csr_matrix(x) @ scipy.sparse.diags(self.ratio_)

    def decision_function(self, x) -> np.ndarray:
        return self.classifier_.decision_function(self._scaled(x))

    def predict_proba(self, x) -> np.ndarray:
        return self.classifier_.predict_proba(self._scaled(x))

    def predict(self, x) -> np.ndarray:
        return self.classifier_.predict(self._scaled(x))


def nbsvm_pipeline(*, balanced: bool, seed: int) -> Pipeline:
    """Binarized word uni+bigrams (Wang and Manning's NBSVM-bi), then NB-scaled logistic
    regression, one per class against the rest (for two classes, one)."""
    return Pipeline(
        [
            ("counts", CountVectorizer(ngram_range=(1, 2), binary=True)),
            (
                CLASSIFIER,
                OneVsRestClassifier(
                    NaiveBayesLogisticRegression(
                        class_weight="balanced" if balanced else None, random_state=seed
                    )
                ),
            ),
        ]
    )


def nbsvm(
    train_texts: Sequence[str],
    y_train: np.ndarray,
    test_texts: Sequence[str],
    *,
    groups: np.ndarray | None = None,
    balanced: bool,
    scoring: str,
    seed: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    fitted, chosen = cv_search(
        nbsvm_pipeline(balanced=balanced, seed=seed), train_texts, y_train,
        groups=groups, scoring=scoring, seed=seed, c_param="estimator__C",
    )  # fmt: skip
    return predict_texts(fitted, test_texts, chosen, len(fitted.named_steps["counts"].vocabulary_))


# --- frozen embeddings ---------------------------------------------------------------------------
def embedding_pipeline(*, balanced: bool, seed: int) -> Pipeline:
    return Pipeline(
        [
            ("scale", StandardScaler()),
            (CLASSIFIER, logistic_regression(balanced=balanced, seed=seed)),
        ]
    )


def embedding_logreg(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    balanced: bool,
    scoring: str,
    seed: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    # float64: in float32 each BLAS kernel (one per processor) steered the solver to coefficients
    # of its own (measured on cifar10's pixels: validation accuracy 0.9, 0.8975 or 0.905 by kernel)
    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    fitted, chosen = cv_search(
        embedding_pipeline(balanced=balanced, seed=seed),
        x_train,
        y_train,
        groups=groups,
        scoring=scoring,
        seed=seed,
    )
    return fitted.predict(x_test), chosen


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
