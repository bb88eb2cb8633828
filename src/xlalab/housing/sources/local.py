"""The local source: a CSV in Kaggle's train.csv layout, or a folder with train.csv (and
optionally test.csv)."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams


def read_local(path: Path) -> tuple[bytes, bytes | None, str]:
    if path.is_dir():
        train, test = path / "train.csv", path / "test.csv"
        if not train.exists():
            raise UserError(
                f"{path} has no train.csv; put a CSV in Kaggle's train.csv layout there"
            )
        return (
            train.read_bytes(),
            test.read_bytes() if test.exists() else None,
            f"local folder {path}",
        )
    if not path.exists():
        raise UserError(
            f"{path} does not exist; set download.path to a CSV in Kaggle's train.csv layout"
        )
    return path.read_bytes(), None, f"local file {path}"


def read(params: DownloadParams, paths: Paths) -> tuple[bytes, bytes | None, str]:
    return read_local(Path(params.download.path))


SOURCE = Source("local", ("path",), read, "a CSV (or folder) in Kaggle's train.csv layout")
