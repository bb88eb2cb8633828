"""NSL-KDD as published: the unzipped folder with KDDTrain+.txt (or the 20 % subset
KDDTrain+_20Percent.txt, which many copies hold instead) and KDDTest+.txt."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams
from .kdd import CITATION, KDD_CATEGORICAL, KDD_GROUPS, kdd_file
from .layout import TrafficData, need

# The training file, by preference: the full set, then the 20 % subset (plain or gzip each).
TRAIN_FILES = ("KDDTrain+.txt", "KDDTrain+_20Percent.txt")
TEST_FILE = "KDDTest+.txt"


def _first_present(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read(params: DownloadParams, paths: Paths) -> TrafficData:
    download = params.download
    folder = need(Path(download.path), "the folder holding KDDTrain+.txt and KDDTest+.txt")
    train = _first_present(folder, TRAIN_FILES)
    test = _first_present(folder, (TEST_FILE,))
    for found, wanted in ((train, " or ".join(TRAIN_FILES)), (test, TEST_FILE)):
        if found is None:
            raise UserError(
                f"{folder} has no {wanted}; set traffic.download.path to the unzipped NSL-KDD "
                "folder"
            )
    files = {"train": train, "test": test}
    subset = "the 20 % subset" if "_20Percent" in train.name else "the full training set"
    return TrafficData(
        f"nsl_kdd ({train.name}, {test.name})",
        {s: (lambda f=f: kdd_file(f, download.chunk_rows, True)) for s, f in files.items()},
        KDD_CATEGORICAL,
        KDD_GROUPS,
        list(files.values()),
        notes=[
            f"training file: {train.name} ({subset})",
            "KDDTest-21.txt, if present, is not read",
            f"cite: {CITATION}",
        ],
    )


SOURCE = Source("nsl_kdd", ("path", "chunk_rows"), read, "the NSL-KDD folder as published")
