"""Any CSV of labelled flows: a label column (``label_column``; ``normal_value`` marks normal
traffic), an optional time column, every other column a feature (numeric or categorical, as its
first rows show), split at random."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from ...errors import UserError
from ...pipeline.contract import Paths
from ...pipeline.sources import Source, header_row
from ..project import DownloadParams
from .layout import (
    FIX,
    TrafficData,
    clean_label,
    layout,
    need,
    numeric_features,
    random_split,
    read_chunks,
)


def read(params: DownloadParams, paths: Paths) -> TrafficData:
    download = params.download
    path = need(Path(download.path), "a CSV with a label column")
    header_row(path, FIX, encoding="utf-8-sig")
    first_rows = next(read_chunks(path, 1000, encoding="utf-8-sig"))
    first_rows.columns = first_rows.columns.str.strip()
    for column, key in (
        (download.label_column, "label_column"),
        (download.time_column, "time_column"),
    ):
        if column is not None and column not in first_rows.columns:
            raise UserError(
                f"{path} has no column {column!r} (traffic.download.{key}); it has "
                f"{', '.join(first_rows.columns[:12])}"
            )
    drop = [download.label_column, *([download.time_column] if download.time_column else [])]
    categorical = tuple(
        c
        for c in first_rows.columns
        if c not in drop and not pd.api.types.is_numeric_dtype(first_rows[c])
    )

    def chunks() -> Iterator[pd.DataFrame]:
        line = 2
        for chunk in read_chunks(
            path, download.chunk_rows, encoding="utf-8-sig", dtype={c: str for c in categorical}
        ):
            chunk.columns = chunk.columns.str.strip()
            label = clean_label(chunk[download.label_column])
            time = None
            if download.time_column:
                stamps = pd.to_datetime(
                    chunk[download.time_column], errors="coerce", format="mixed"
                )
                time = (stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
            features = chunk.drop(columns=drop)
            numeric = [c for c in features.columns if c not in categorical]
            features = numeric_features(features, numeric, path, line)
            line += len(chunk)
            yield layout(features, label, label, label != download.normal_value, time)

    return TrafficData(
        f"local ({path.name})",
        random_split(chunks, download.test_fraction, params.seed),
        categorical,
        {},
        [path],
        has_time=bool(download.time_column),
    )


SOURCE = Source(
    "local",
    ("path", "label_column", "normal_value", "time_column", "test_fraction", "chunk_rows"),
    read,
    "a CSV of labelled flows",
)
