"""The detectors: an autoencoder (scored by reconstruction error), and the scikit-learn and PyOD
detectors built from params. Every detector's score is "higher = more anomalous"."""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..core.data import Batch
from ..core.loop import Task


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


def chunks(x: np.ndarray, rows: int) -> Iterator[np.ndarray]:
    for start in range(0, len(x), rows):
        yield np.asarray(x[start:start + rows], dtype=np.float32)


def autoencoder_scorer(model: Autoencoder) -> Callable[[np.ndarray], np.ndarray]:
    model.eval()

    def score(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            t = torch.from_numpy(np.ascontiguousarray(x))
            return reconstruction_error(model(t), {"x": t}).numpy()

    return score


def classical_detector(name: str, seed: int, n_estimators: int = 200, max_samples: int = 256):
    """An unfitted scikit-learn/PyOD detector with a ``fit`` and a score function."""
    if name == "isolation_forest":
        from sklearn.ensemble import IsolationForest

        model = IsolationForest(n_estimators=n_estimators, max_samples=max_samples, random_state=seed, n_jobs=1)
        return model, lambda x: -model.score_samples(x)  # sklearn: lower = more abnormal
    if name == "ecod":
        from pyod.models.ecod import ECOD

        model = ECOD()
    elif name == "copod":
        from pyod.models.copod import COPOD

        model = COPOD()
    else:
        raise ValueError(f"unknown detector {name!r}")
    return model, model.decision_function
