"""What every cifar10 source returns (``RawData``: the arrays of both splits and what the data card
says about them), and what several sources share: CIFAR-10's class names and a stratified hold-out
for sources without a labelled test split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import UserError
from ...pipeline import sources
from ..featurize import stratified_split

CLASSES_CIFAR10 = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_LICENCE = (
    "CIFAR-10 (Krizhevsky, 2009, 'Learning Multiple Layers of Features from Tiny Images'); "
    "free to use for research with citation; images come from the 80 Million Tiny Images collection"
)
# Sources without a labelled test split (Kaggle, a folder without test/) hold out this share of
# train: 50,000 labelled images -> ~41,667 train / ~8,333 held-out test.
HOLD_OUT_FRACTION = 1 / 6


@dataclass
class RawData:
    """One source, read and checked, before anything is written."""

    train_x: np.ndarray  # uint8 [N, H, W, 3]
    train_y: np.ndarray  # int64 [N]
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]
    source: str
    description: str
    checksum: dict[str, Any]
    licence: str
    note: str
    test_split: str
    extra: dict[str, Any] = field(default_factory=dict)


def hold_out_test(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, where: str = ""):
    """A stratified ``fraction`` of the images held out as the test split; ``where`` (the file or
    folder they came from) opens the message when there are too few."""
    try:
        keep, held = stratified_split(y, fraction, seed, "the test split")
    except UserError as e:
        raise UserError(f"{where}: {e}" if where else str(e)) from None
    return x[keep], y[keep], x[held], y[held]


def require_classes(labels: np.ndarray, classes: tuple[str, ...], where: str, fix: str) -> None:
    """The shared check: a classifier needs images of at least two classes."""
    counts = np.bincount(labels, minlength=len(classes)) if len(labels) else []
    sources.require_classes(dict(zip(classes, map(int, counts))), where, fix)
