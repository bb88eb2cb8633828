"""The local source: a CSV in Yahoo's export layout (``Date,Open,High,Low,Close,Adj Close,Volume``),
as Yahoo's download button and most copies of it write."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...errors import UserError
from ...pipeline import sources
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams
from .yahoo import COLUMNS, YAHOO_EXPORT, Prices, select_range

FIX = f"point lstm.download.path at a CSV with columns {','.join(YAHOO_EXPORT)}"


def read_yahoo_csv(path: str | Path) -> pd.DataFrame:
    """A CSV in Yahoo's export layout.

    ``Adj Close`` becomes ``Close`` and Open/High/Low are scaled by the same factor, so every
    price is on the adjusted scale. A file without ``Adj Close`` is taken as already adjusted.
    Yahoo's ``null`` (and NaN, Infinity) become missing values; a word stops the stage.
    """
    path = sources.complete(sources.not_empty(sources.existing(path, FIX), FIX), FIX)
    sources.header_row(path, FIX)
    frame = sources.read_csv(path, FIX, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(
            f"{path} has no column(s) {missing} (columns: {', '.join(map(str, frame.columns))}); "
            f"expected Yahoo's export layout {','.join(YAHOO_EXPORT)}"
        )
    sources.require_rows(len(frame), 1, str(path), "add the daily prices")
    dates = pd.to_datetime(frame["Date"], errors="coerce")
    if dates.isna().any():
        bad = frame.loc[dates.isna(), "Date"].iloc[0]
        raise UserError(f"{path}: Date {bad!r} is not a date; use YYYY-MM-DD")
    priced = [c for c in (*COLUMNS[1:], "Adj Close") if c in frame.columns]
    numbers, _ = sources.numbers(frame[priced], priced, str(path))
    out = numbers[COLUMNS[1:]].copy()
    out.insert(0, "Date", dates.dt.normalize())
    if "Adj Close" in numbers.columns:
        factor = numbers["Adj Close"] / out["Close"]
        for col in ("Open", "High", "Low"):
            out[col] = out[col] * factor
        out["Close"] = numbers["Adj Close"]
    return out


def read(params: DownloadParams, paths: Paths) -> Prices:
    download = params.download
    start, end = download.start.isoformat(), download.end.isoformat()
    frame = read_yahoo_csv(download.path)
    return Prices(
        select_range(frame, start, end, download.path, "widen lstm.download.start/end"),
        "as the file's owner states",
        f"prices read from {download.path} (Yahoo export layout)",
    )


SOURCE = Source("local", ("path", "start", "end"), read, "a CSV in Yahoo's export layout")
