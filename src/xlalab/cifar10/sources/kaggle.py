"""The kaggle source: the folder unzipped from ``kaggle competitions download -c cifar-10``,
``trainLabels.csv`` (id,label) and ``train/<id>.png``. Kaggle's test images carry no labels, so a
stratified part of train is held out as the test split."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np

from ...errors import UserError
from ...pipeline import sources
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams
from .images import decode_images, first_image_size
from .raw import (
    CIFAR10_LICENCE,
    CLASSES_CIFAR10,
    HOLD_OUT_FRACTION,
    RawData,
    hold_out_test,
    require_classes,
)

KAGGLE_LABELS = "trainLabels.csv"


def _kaggle_labels(folder: Path) -> tuple[bytes, list[str], np.ndarray]:
    """``trainLabels.csv``'s bytes, its ids and their class indices, checked."""
    labels_file = folder / KAGGLE_LABELS
    if not labels_file.is_file():
        raise UserError(
            f"{folder} has no {KAGGLE_LABELS}; unzip the Kaggle download "
            "(kaggle competitions download -c cifar-10) into it"
        )
    labels_bytes = labels_file.read_bytes()
    if not labels_bytes.strip():
        raise UserError(f"{labels_file} is empty; download the Kaggle data again")
    text = io.StringIO(sources.decode_text(labels_bytes, str(labels_file), "utf-8-sig"))
    table = [row for row in csv.reader(text) if row]
    columns = [c.strip() for c in table[0]] if table else []
    sources.check_header(columns, labels_file)
    for column in ("id", "label"):
        if column not in columns:
            raise UserError(
                f"{labels_file} has no column '{column}' (columns: "
                f"{', '.join(columns) or 'none'}); expected id,label"
            )
    if len(table) < 2:
        raise UserError(f"{labels_file} has no rows; download the Kaggle data again")
    id_col, label_col = columns.index("id"), columns.index("label")
    try:
        ids = [r[id_col].strip() for r in table[1:]]
        names = [r[label_col].strip() for r in table[1:]]
    except IndexError:
        raise UserError(
            f"{labels_file} has rows with fewer fields than its header; download the Kaggle data "
            "again"
        ) from None
    index = {name: i for i, name in enumerate(CLASSES_CIFAR10)}
    unknown = sorted(set(names) - set(index), key=str)
    if unknown:
        raise UserError(
            f"{labels_file} has unknown labels {unknown[:5]}; expected CIFAR-10 class names: "
            f"{', '.join(CLASSES_CIFAR10)}"
        )
    if len(set(ids)) != len(ids):
        raise UserError(f"{labels_file} repeats some ids; download the Kaggle data again")
    blank = next((k for k, i in enumerate(ids) if not i), None)
    if blank is not None:
        raise UserError(f"{labels_file} line {blank + 2} has no id; download the Kaggle data again")
    labels = np.array([index[n] for n in names], dtype=np.int64)
    require_classes(labels, CLASSES_CIFAR10, str(labels_file), "download the Kaggle data again")
    return labels_bytes, ids, labels


def read_kaggle(
    folder: Path,
    *,
    seed: int = 0,
    storage_size: int | None = None,
    test_fraction: float = HOLD_OUT_FRACTION,
) -> RawData:
    """The folder unzipped from ``kaggle competitions download -c cifar-10``: ``trainLabels.csv``
    (id,label) and ``train/<id>.png``. Kaggle's test images carry no labels, so a stratified
    ``test_fraction`` of train is held out as the test split."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(
            f"{folder} is not a directory; set cifar10.download.path to the folder that holds "
            f"{KAGGLE_LABELS} and train/"
        )
    labels_bytes, ids, y = _kaggle_labels(folder)
    names = [f"{i}.png" for i in ids]
    missing = [n for n in names if not (folder / "train" / n).is_file()]
    if missing:
        raise UserError(
            f"{folder}/train lacks {len(missing)} of the images listed in {KAGGLE_LABELS} "
            f"(e.g. {missing[0]}); unzip train.7z into {folder}/train"
        )
    # Hashed in sorted file-name order (the checksum's definition), kept in the labels' order.
    order = sorted(range(len(names)), key=lambda k: names[k])
    files = [(names[k], folder / "train" / names[k]) for k in order]
    fix = "download the Kaggle data again"
    size = storage_size or first_image_size(files[0][1], fix)
    digest = hashlib.sha256(labels_bytes)
    x = np.empty((len(ids), size, size, 3), dtype=np.uint8)
    x[order] = decode_images(files, size, storage_size is not None, digest, fix, "train/")
    train_x, train_y, test_x, test_y = hold_out_test(
        x, y, test_fraction, seed, str(folder / KAGGLE_LABELS)
    )
    return RawData(
        train_x,
        train_y,
        test_x,
        test_y,
        CLASSES_CIFAR10,
        source="kaggle",
        description="CIFAR-10 as laid out by the Kaggle competition 'cifar-10' (trainLabels.csv + "
        "train/<id>.png)",
        checksum={
            "algorithm": "sha256",
            "value": digest.hexdigest(),
            "of": f"the bytes of {KAGGLE_LABELS}, then for each image it lists, in sorted "
            "file-name order, '<id>.png', a NUL byte and the file's bytes",
            "verified": False,
            "why_not_verified": "Kaggle publishes no checksum for this data; the value lets you "
            "compare copies",
        },
        licence=CIFAR10_LICENCE + "; Kaggle competition rules also apply",
        note="CIFAR-10's 50,000 training images; Kaggle's test images are unlabelled, so the test "
        "split here is held out from them and differs from the official test_batch",
        test_split=f"stratified {test_fraction:.4g} of the labelled train images per class, seed "
        f"{seed}",
        extra={"path": str(folder)},
    )


def read(params: DownloadParams, paths: Paths) -> RawData:
    download = params.download
    if not download.path:
        raise UserError(
            "cifar10.download.source: kaggle needs cifar10.download.path: the folder where you "
            "unzipped `kaggle competitions download -c cifar-10` (trainLabels.csv + train/)"
        )
    return read_kaggle(Path(download.path), seed=params.seed, storage_size=download.storage_size)


SOURCE = Source(
    "kaggle",
    ("path", "storage_size"),
    read,
    "the Kaggle competition's trainLabels.csv and train/<id>.png, a test split held out",
)
