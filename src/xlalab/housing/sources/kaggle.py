"""The kaggle source: the folder or zip that ``kaggle competitions download -c
house-prices-advanced-regression-techniques`` writes (train.csv, test.csv, data_description.txt,
sample_submission.csv)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from ...errors import UserError
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams
from .offline import KAGGLE_FILES


def read_kaggle(path: Path) -> tuple[bytes, bytes, str]:
    """Kaggle's folder, or its zip (the files at the top level or in one folder)."""
    if path.is_dir():
        files = {name: path / name for name in KAGGLE_FILES}
        missing = [name for name, f in files.items() if not f.exists()]
        if missing:
            raise UserError(
                f"{path} lacks {', '.join(missing)}; point download.path at the folder or zip from "
                "`kaggle competitions download -c house-prices-advanced-regression-techniques`"
            )
        return (
            files["train.csv"].read_bytes(),
            files["test.csv"].read_bytes(),
            f"kaggle folder {path}",
        )
    if not path.exists():
        raise UserError(f"{path} does not exist; set download.path to Kaggle's folder or zip")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {Path(n).name: n for n in archive.namelist() if Path(n).name in KAGGLE_FILES}
            missing = [name for name in KAGGLE_FILES if name not in members]
            if missing:
                raise UserError(
                    f"{path} lacks {', '.join(missing)}; it should be Kaggle's "
                    "house-prices-advanced-regression-techniques.zip"
                )
            return (
                archive.read(members["train.csv"]),
                archive.read(members["test.csv"]),
                f"kaggle zip {path}",
            )
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"{path} is not a readable zip ({e}); download it again") from None


def read(params: DownloadParams, paths: Paths) -> tuple[bytes, bytes | None, str]:
    return read_kaggle(Path(params.download.path))


SOURCE = Source("kaggle", ("path",), read, "Kaggle's House Prices folder or zip")
