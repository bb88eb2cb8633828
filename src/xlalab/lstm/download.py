"""The download stage: daily prices of one ticker (Yahoo Finance, a Yahoo CSV, or the offline MSFT
prices) and the data card.

Every source (``sources/``, one module each) returns the same frame (sources/yahoo.py): one row
per trading day, columns ``Date, Open, High, Low, Close, Volume``, ``Close`` adjusted for splits
and dividends."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..files import file_digest, write_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from .project import PROJECT, DownloadParams
from .sources import SOURCES
from .sources.yahoo import COLUMNS


def describe(frame: pd.DataFrame) -> dict:
    dates = frame["Date"]
    return {
        "rows": int(len(frame)),
        "first_day": str(dates.min().date()),
        "last_day": str(dates.max().date()),
        "missing_values": {c: int(frame[c].isna().sum()) for c in COLUMNS[1:]},
        "close_min": float(np.nanmin(frame["Close"])) if frame["Close"].notna().any() else None,
        "close_max": float(np.nanmax(frame["Close"])) if frame["Close"].notna().any() else None,
    }


def download(params: DownloadParams, paths: Paths) -> None:
    download = params.download
    prices = SOURCES[download.source].read(params, paths)
    csv = paths.raw / "prices.csv"
    prices.frame.to_csv(csv, index=False, date_format="%Y-%m-%d")
    sha256 = file_digest(csv)
    write_json(
        paths.card,
        {
            "source": download.source,
            "ticker": download.ticker if download.source != "local" else None,
            "range": {
                "start": download.start.isoformat(),
                "end_exclusive": download.end.isoformat(),
            },
            **describe(prices.frame),
            "sha256": sha256,
            "licence": prices.licence,
            "what_it_is": prices.what
            + "; one row per trading day, Close adjusted for splits and dividends.",
            "what_it_is_not": "not intraday, not survivorship-free, not an investment signal; the "
            "offline copy "
            "stops on 2017-11-10 and is not updated.",
        },
    )


if __name__ == "__main__":
    runner.main(download, PROJECT)
