"""The kaggle source: Kaggle's 'IMDB Dataset.csv' (review, sentiment);
split by a seeded hash of the text."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams
from .labels import from_file


def read(params: DownloadParams, paths: Paths) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    return from_file(params.download, params.seed)


SOURCE = Source(
    "kaggle",
    ("path", "text_column", "label_column", "test_fraction"),
    read,
    "Kaggle's 'IMDB Dataset.csv' (review, sentiment)",
)
