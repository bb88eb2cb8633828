"""The detectors: an autoencoder (scored by reconstruction error), and the scikit-learn and PyOD
detectors built from params. Every detector's score is "higher = more anomalous"."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..core.data import Batch
from ..core.task import Task


class Autoencoder(nn.Module):
    """A symmetric MLP: inputs -> hidden[0] -> ... -> hidden[-1] (the code) -> ... -> inputs."""

    def __init__(self, n_inputs: int, hidden: list[int], dropout: float = 0.0):
        super().__init__()
        widths = [n_inputs, *hidden]
        encoder, decoder = [], []
        for a, b in zip(widths, widths[1:]):
            encoder += [nn.Linear(a, b), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
        for a, b in zip(widths[::-1], widths[::-1][1:]):
            decoder += [nn.Linear(a, b), nn.ReLU()]
        decoder.pop()  # the reconstruction is unbounded (standardised features)
        self.encoder, self.decoder = nn.Sequential(*encoder), nn.Sequential(*decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def reconstruction_error(outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean squared error per row: the loss and, at evaluation, the anomaly score."""
    return ((outputs - batch["x"]) ** 2).mean(dim=1)


def autoencoder_task() -> Task:
    return Task(loss=reconstruction_error)


class TailProbabilities:
    """PyOD's ECOD or COPOD score of each new row against the training rows alone.

    PyOD's ``decision_function`` pools the rows it is given with the training rows and ranks them
    all again, so a row's score depends on the batch it arrives in (the test traffic starts to
    define "normal") and every call re-sorts the whole training set: scoring millions of rows in
    small batches takes hours. This computes, for every row at once, exactly what PyOD's
    ``decision_function`` returns for that row given alone (a test checks it): the training columns
    are sorted once, and a row's empirical tail probabilities and the sign of the pooled skewness
    come from a binary search and an update of the training moments."""

    def __init__(self, kind: str, train: np.ndarray):
        train = np.asarray(train, dtype=np.float64)
        self.kind, self.sorted, self.n = kind, np.sort(train, axis=0), len(train)
        self.mean = train.mean(axis=0)
        centred = train - self.mean
        self.m2, self.m3 = (centred**2).sum(axis=0), (centred**3).sum(axis=0)

    # rows per pass: a dozen float64 temporaries of this many rows stay in cache-sized memory
    BLOCK = 4096

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                self._score(np.asarray(x[i : i + self.BLOCK], dtype=np.float64))
                for i in range(0, len(x), self.BLOCK)
            ]
            or [np.empty(0)]
        )

    def _score(self, x: np.ndarray) -> np.ndarray:
        n, pooled = self.n, self.n + 1
        at_or_below = np.empty_like(x)
        at_or_above = np.empty_like(x)
        for j in range(x.shape[1]):
            column = self.sorted[:, j]
            at_or_below[:, j] = np.searchsorted(column, x[:, j], side="right")
            at_or_above[:, j] = n - np.searchsorted(column, x[:, j], side="left")
        # The row itself is one of the pooled rows, on both sides of its own value.
        left_tail = -np.log((at_or_below + 1) / pooled)
        right_tail = -np.log((at_or_above + 1) / pooled)
        # Sign of scipy.stats.skew over training + this row (one-pass update of the central sums);
        # 0 where that column is constant, as every tail probability there is 1 anyway.
        delta = x - self.mean
        m2 = self.m2 + delta**2 * n / pooled
        m3 = self.m3 + delta**3 * n * (n - 1) / pooled**2 - 3 * delta * self.m2 / pooled
        skew_sign = np.where(m2 > 1e-12 * np.maximum(1.0, self.m2), np.sign(m3), 0.0)
        skew_tail = -left_tail * np.sign(skew_sign - 1) + right_tail * np.sign(skew_sign + 1)
        if self.kind == "ecod":
            outlying = np.maximum(np.maximum(left_tail, right_tail), skew_tail)
        else:  # copod
            outlying = np.maximum(skew_tail, (left_tail + right_tail) / 2)
        return outlying.sum(axis=1)


class _Fitted:
    """A detector that is fitted on training rows, then scores any rows (higher = more
    anomalous)."""

    def __init__(self, name: str, make):
        self.name, self.make, self.score = name, make, None

    def fit(self, x: np.ndarray) -> _Fitted:
        self.score = self.make(x)
        return self


def classical_detector(name: str, seed: int, n_estimators: int = 200, max_samples: int = 256):
    """An unfitted scikit-learn/PyOD detector: ``fit(rows)``, then ``score(rows)``."""
    if name == "isolation_forest":
        from sklearn.ensemble import IsolationForest

        def make(x):
            model = IsolationForest(
                n_estimators=n_estimators, max_samples=max_samples, random_state=seed, n_jobs=1
            ).fit(x)
            return lambda rows: -model.score_samples(rows)  # sklearn: lower = more abnormal

        return _Fitted(name, make)
    if name in ("ecod", "copod"):
        return _Fitted(name, lambda x: TailProbabilities(name, x))
    raise ValueError(f"unknown detector {name!r}")
