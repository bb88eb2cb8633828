"""Yahoo's layout of daily prices, which every lstm source returns: one row per trading day,
columns ``Date, Open, High, Low, Close, Volume``, with ``Close`` adjusted for splits and
dividends."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ...errors import UserError
from ...pipeline import sources

COLUMNS = ["Date", "Open", "High", "Low", "Close", "Volume"]
YAHOO_EXPORT = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]


@dataclass
class Prices:
    """What a source read: the prices in ``COLUMNS``, and what the data card says of them."""

    frame: pd.DataFrame
    licence: str
    what: str


def normalise_yahoo_frame(frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """The frame yfinance returns, in either of its shapes, as ``COLUMNS``.

    ``yfinance.download`` gives a DatetimeIndex named Date and MultiIndex columns (Price, Ticker);
    ``Ticker.history`` gives flat columns and a time-zone aware index. Both are adjusted when
    ``auto_adjust=True`` (the default), so ``Close`` is already the adjusted close.
    """
    frame = frame.copy()
    if isinstance(frame.columns, pd.MultiIndex):
        tickers = frame.columns.get_level_values(-1)
        if ticker.upper() not in set(map(str.upper, tickers)):
            raise UserError(
                f"the Yahoo response has no columns for {ticker} (it has {sorted(set(tickers))})"
            )
        frame = frame.xs(ticker.upper(), axis=1, level=-1)
    missing = [c for c in COLUMNS[1:] if c not in frame.columns]
    if missing:
        raise UserError(
            f"the Yahoo response for {ticker} lacks columns {missing} (has {list(frame.columns)})"
        )
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:  # an exchange-local trading day; the clock time carries nothing
        index = index.tz_localize(None)
    # The shared check: a word stops the stage; NaN and infinite prices become missing values
    # (counted in the data card, filled forwards by featurize).
    out, _ = sources.numbers(frame[COLUMNS[1:]], COLUMNS[1:], f"the Yahoo response for {ticker}")
    out.insert(0, "Date", index.normalize())
    return out.reset_index(drop=True)


def select_range(frame: pd.DataFrame, start: str, end: str, where: str, fix: str) -> pd.DataFrame:
    """Rows with ``start <= Date < end`` (Yahoo's convention: end is exclusive), at least one."""
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    frame = frame[(frame["Date"] >= lo) & (frame["Date"] < hi)].reset_index(drop=True)
    if frame.empty:
        raise UserError(f"{where} has no prices between {start} and {end}; {fix}")
    return frame
