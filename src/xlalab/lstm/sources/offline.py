"""The offline default: MSFT daily prices 1986-03-13..2017-11-10 as shipped in pmdarima (MIT)."""

from __future__ import annotations

import pandas as pd

from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams
from .yahoo import COLUMNS, Prices, select_range


def load_offline() -> pd.DataFrame:
    from pmdarima.datasets import load_msft

    frame = load_msft()
    out = frame[COLUMNS].copy()
    out["Date"] = pd.to_datetime(out["Date"])
    return out


def read(params: DownloadParams, paths: Paths) -> Prices:
    download = params.download
    start, end = download.start.isoformat(), download.end.isoformat()
    fix = "widen lstm.download.start/end (offline MSFT covers 1986-03-13..2017-11-10)"
    return Prices(
        select_range(load_offline(), start, end, "the offline MSFT prices", fix),
        "MIT (pmdarima); the prices come from the Kaggle 'Huge Stock Market Dataset' (B. "
        "Marjanovic)",
        "MSFT daily prices as shipped in pmdarima (pmdarima.datasets.load_msft)",
    )


SOURCE = Source("offline", ("start", "end"), read, "MSFT daily prices shipped in pmdarima")
