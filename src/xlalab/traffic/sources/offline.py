"""The offline default: NSL-KDD's KDDTrain+_20Percent and KDDTest+, shipped in this package."""

from __future__ import annotations

from pathlib import Path

from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams
from .kdd import CITATION, KDD_CATEGORICAL, KDD_GROUPS, kdd_file
from .layout import TrafficData

OFFLINE_DIR = Path(__file__).parents[1] / "nsl_kdd"
OFFLINE_FILES = {"train": "KDDTrain+_20Percent.txt.gz", "test": "KDDTest+.txt.gz"}


def read(params: DownloadParams, paths: Paths) -> TrafficData:
    files = {split: OFFLINE_DIR / name for split, name in OFFLINE_FILES.items()}
    chunk_rows = params.download.chunk_rows
    return TrafficData(
        "offline (NSL-KDD: KDDTrain+_20Percent, KDDTest+)",
        {s: (lambda f=f: kdd_file(f, chunk_rows, True)) for s, f in files.items()},
        KDD_CATEGORICAL,
        KDD_GROUPS,
        list(files.values()),
        notes=["NSL-KDD has no timestamps: plots use record order", f"cite: {CITATION}"],
    )


SOURCE = Source("offline", ("chunk_rows",), read, "NSL-KDD's 20 % training file and KDDTest+")
