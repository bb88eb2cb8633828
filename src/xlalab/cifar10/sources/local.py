"""The local source: a copy on disk of either CIFAR-10 format: the official archive, its extracted
``cifar-10-batches-py`` folder, or a Kaggle folder (``trainLabels.csv`` + ``train/``)."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams
from . import batches, kaggle
from .batches import CIFAR10_ARCHIVE, CIFAR10_DIR
from .kaggle import KAGGLE_LABELS
from .raw import RawData


def read_local(path: str | None, *, seed: int = 0, storage_size: int | None = None) -> RawData:
    """A copy on disk of either format: the archive, its extracted folder, or a Kaggle folder."""
    if not path:
        raise UserError(
            "cifar10.download.source: local needs cifar10.download.path: a "
            "cifar-10-python.tar.gz, its extracted "
            "cifar-10-batches-py folder, or a Kaggle folder with trainLabels.csv and train/"
        )
    given = Path(path)
    if not given.exists():
        raise UserError(
            f"{given} does not exist; set cifar10.download.path to a cifar-10-python.tar.gz, a "
            "cifar-10-batches-py folder or a Kaggle folder (trainLabels.csv + train/)"
        )
    if given.is_file():
        raw, form = batches.read_cifar_archive(given), CIFAR10_ARCHIVE
    elif (given / KAGGLE_LABELS).is_file():
        raw, form = kaggle.read_kaggle(given, seed=seed, storage_size=storage_size), "kaggle"
    elif (given / "batches.meta").is_file():
        raw, form = batches.read_cifar_folder(given), CIFAR10_DIR
    elif (given / CIFAR10_DIR / "batches.meta").is_file():
        raw, form = batches.read_cifar_folder(given / CIFAR10_DIR), CIFAR10_DIR
    elif (given / CIFAR10_ARCHIVE).is_file():
        raw, form = (
            batches.read_cifar_archive(given / CIFAR10_ARCHIVE),
            CIFAR10_ARCHIVE,
        )
    else:
        raise UserError(
            f"{given} holds neither {CIFAR10_ARCHIVE}, {CIFAR10_DIR}/ nor {KAGGLE_LABELS}; point "
            "cifar10.download.path at one of them"
        )
    raw.extra["format"] = form
    raw.source = "local"
    return raw


def read(params: DownloadParams, paths: Paths) -> RawData:
    download = params.download
    return read_local(download.path, seed=params.seed, storage_size=download.storage_size)


SOURCE = Source(
    "local",
    ("path", "storage_size"),
    read,
    "a CIFAR-10 archive, its extracted folder or a Kaggle folder on disk",
)
