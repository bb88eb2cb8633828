"""The reference models a reviewer tries first, fitted on the same training rows as the model and
scored on the same test rows, in the evaluate stage:

- ``majority_class``: the most frequent training class, the floor;
- ``svm_rbf``, ``knn``, ``logreg`` on raw pixels (the stored uint8 images scaled to 0..1);
- ``linear_probe``: logistic regression on the frozen pretrained backbone's embeddings (the
  backbone as loaded, before any training, at the model's image size).

Every hyperparameter is chosen by accuracy on the validation split (the split the model's best
epoch is chosen on), among the candidates in ``cifar10.evaluate.baselines``; the test rows are
predicted once, by the chosen fit, and never seen before that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from joblib import Parallel, delayed
from safetensors.torch import load_file, save_file
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from ..engine.loop import predict
from ..engine.runtime import Backend
from ..files import fingerprint
from ..results import reports
from .featurize import SPLITS, split_path, stratified_split
from .model import TransferClassifier
from .project import Baselines

MAJORITY = "majority_class"
Split = dict[str, torch.Tensor]  # {"x": uint8 [N, 3, H, W], "y": int64 [N]}


@dataclass
class Baseline:
    predictions: np.ndarray  # class indices, one per test row
    chosen: dict[str, Any]  # the hyperparameters chosen on the validation split
    validation_accuracy: dict[str, float]  # of every candidate
    train_rows: int
    note: str
    seconds: float = 0.0


def select_on_validation(
    make: Callable[[Any], Any],
    param: str,
    candidates: Sequence[Any],
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test_x: np.ndarray,
    note: str,
) -> Baseline:
    """One fit per candidate on the training rows (in parallel threads: libsvm and BLAS release
    the GIL), the one with the best validation accuracy kept (the first listed on a tie), and
    the test rows predicted by it."""
    (x, y), (val_x, val_y) = train, val
    start = time.perf_counter()

    def fit(value: Any) -> tuple[Any, float]:
        model = make(value).fit(x, y)
        return model, float(np.mean(model.predict(val_x) == val_y))

    # One BLAS thread per fit: the fits themselves run in parallel, and BLAS threads busy-waiting
    # beside them on a shared machine were measured to slow logistic regression tenfold.
    with threadpool_limits(1):
        fitted = Parallel(n_jobs=-1, prefer="threads")(delayed(fit)(v) for v in candidates)
        scores = [score for _, score in fitted]
        best = int(np.argmax(scores))
        predictions = fitted[best][0].predict(test_x)
    return Baseline(
        predictions=np.asarray(predictions),
        chosen={param: candidates[best]},
        validation_accuracy={f"{param}={v}": s for v, s in zip(candidates, scores)},
        train_rows=len(y),
        note=note,
        seconds=time.perf_counter() - start,
    )


def pixels(images: torch.Tensor, grey: bool) -> np.ndarray:
    """uint8 [N, 3, H, W] -> float64 [N, D] in 0..1. Grey images (three equal channels) keep one:
    the same distances up to a constant factor, which gamma="scale" and k-NN absorb, at a third
    of the cost.

    float64, not float32: every BLAS kernel (OpenBLAS picks one per processor) adds up a product
    in its own order, and in float32 that difference steered logistic regression's solver to
    coefficients 2e-3 apart and a validation accuracy of 0.9, 0.8975 or 0.905 at C=0.1 (measured
    with OPENBLAS_CORETYPE=SkylakeX, Haswell and Sandybridge); in float64 they end at most 3e-8
    apart, with the same predictions."""
    x = images[:, :1] if grey else images
    return x.reshape(len(x), -1).numpy().astype(np.float64) / 255


def is_grey(images: torch.Tensor) -> bool:
    return bool(torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2]))


def pixel_logreg(c: float, seed: int) -> LogisticRegression:
    """Multinomial logistic regression for the raw pixels (``pixels``), with penalty ``1 / c``."""
    return LogisticRegression(C=c, max_iter=1000, random_state=seed)


def pixel_baselines(splits: dict[str, Split], b: Baselines, seed: int) -> dict[str, Baseline]:
    """RBF SVM, k-NN and logistic regression on the raw pixels, each tuned on the validation
    split. With ``b.max_train``, they fit a stratified subset of that many training rows."""
    train_x, train_y = splits["train"]["x"], splits["train"]["y"].numpy()
    if b.max_train is not None and b.max_train < len(train_y):
        _, rows = stratified_split(train_y, b.max_train, seed, "the baselines' max_train rows")
        train_x, train_y = train_x[rows], train_y[rows]
    grey = is_grey(train_x)
    train = (pixels(train_x, grey), train_y)
    val = (pixels(splits["val"]["x"], grey), splits["val"]["y"].numpy())
    test_x = pixels(splits["test"]["x"], grey)
    what = f"raw pixels ({'one channel: the images are grey' if grey else 'RGB'}), 0..1"
    return {
        "svm_rbf": select_on_validation(
            lambda c: SVC(C=c, kernel="rbf", gamma="scale", cache_size=500, random_state=seed),
            "C",
            b.svm_c,
            train,
            val,
            test_x,
            f"RBF SVM on {what}; gamma: scikit-learn's 'scale'",
        ),
        "knn": select_on_validation(
            lambda k: KNeighborsClassifier(n_neighbors=k, algorithm="brute"),
            "k",
            b.knn_k,
            train,
            val,
            test_x,
            f"k-nearest neighbours (Euclidean) on {what}",
        ),
        "logreg": select_on_validation(
            lambda c: pixel_logreg(c, seed),
            "C",
            b.logreg_c,
            train,
            val,
            test_x,
            f"multinomial logistic regression on {what}",
        ),
    }


def linear_probe(
    embeddings: dict[str, np.ndarray], splits: dict[str, Split], b: Baselines, seed: int
) -> Baseline:
    """Logistic regression on standardised embeddings of the frozen pretrained backbone, in float64
    for the reason ``pixels`` gives."""
    wide = {split: np.asarray(rows, dtype=np.float64) for split, rows in embeddings.items()}
    return select_on_validation(
        lambda c: make_pipeline(
            StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed)
        ),
        "C",
        b.probe_c,
        (wide["train"], splits["train"]["y"].numpy()),
        (wide["val"], splits["val"]["y"].numpy()),
        wide["test"],
        f"logistic regression on the {embeddings['train'].shape[1]} pooled features of the "
        "frozen pretrained backbone (standardised)",
    )


def frozen_embeddings(
    options: dict[str, Any],
    weights: dict[str, Any],
    splits: dict[str, Split],
    features_dir: Path,
    cache_dir: Path,
    backend: Backend,
    batch_size: int,
) -> dict[str, np.ndarray]:
    """The pretrained backbone's pooled features of every split at the model's image size, as
    loaded (the same weights and hub revision the model started from), through
    ``core.loop.predict`` on the backend. They depend only on those weights, the image size and
    the splits, so a re-run after retraining reuses them from ``cache_dir``."""
    files = tuple(split_path(features_dir, s) for s in SPLITS)
    stamp = fingerprint(options["backbone"], options["image_size"], weights, files=files)
    cache = cache_dir / f"embeddings-{stamp}.safetensors"
    if cache.exists():
        return {k: v.numpy() for k, v in load_file(str(cache)).items()}
    backbone = TransferClassifier(
        options["backbone"],
        num_classes=1,
        image_size=options["image_size"],
        pretrained=True,
        freeze_backbone=True,
        revision=weights.get("revision"),
    )
    backbone.head = torch.nn.Identity()  # the model's output is now the pooled features
    found = {
        s: predict(backbone, {"x": splits[s]["x"]}, backend, batch_size, desc=f"cifar10 embed {s}")
        for s in SPLITS
    }
    if backend.is_main:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.tmp")
        save_file({k: v.contiguous() for k, v in found.items()}, str(tmp))
        tmp.replace(cache)
        for old in cache_dir.glob("embeddings-*.safetensors"):  # keep only the current one
            if old != cache:
                old.unlink(missing_ok=True)
    return {k: v.numpy() for k, v in found.items()}


def majority(splits: dict[str, Split]) -> Baseline:
    train_y = splits["train"]["y"].numpy()
    predictions = reports.majority_predictions(train_y, len(splits["test"]["y"]))
    return Baseline(
        predictions=np.asarray(predictions),
        chosen={},
        validation_accuracy={},
        train_rows=len(train_y),
        note="always the most frequent training class (the first on a tie)",
    )
