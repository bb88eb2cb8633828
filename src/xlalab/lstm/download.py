"""The download stage: daily prices of one ticker (Yahoo Finance, a Yahoo CSV, or the offline MSFT
prices) and the data card.

Where the daily prices come from (Yahoo Finance, a CSV in Yahoo's export
layout, or the MSFT prices that ship inside pmdarima) and the data card. Every source returns the
same frame: one row per trading day, columns ``Date, Open, High, Low, Close, Volume``, with
``Close`` adjusted for splits and dividends.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from ..files import file_digest, write_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from .project import PROJECT, DownloadParams

COLUMNS = ["Date", "Open", "High", "Low", "Close", "Volume"]
YAHOO_EXPORT = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]


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
    out = frame[COLUMNS[1:]].astype(float)
    out.insert(0, "Date", index.normalize())
    return out.reset_index(drop=True)


def _network_errors() -> tuple[type[BaseException], ...]:
    """What a retry can fix: timeouts, dropped connections and Yahoo's rate limit."""
    errors: list[type[BaseException]] = [OSError, TimeoutError]
    try:
        from yfinance.exceptions import YFRateLimitError

        errors.append(YFRateLimitError)
    except ImportError:  # pragma: no cover
        pass
    for module, name in (
        ("requests", "RequestException"),
        ("curl_cffi.requests.exceptions", "RequestException"),
    ):
        with contextlib.suppress(ImportError, AttributeError):
            errors.append(getattr(__import__(module, fromlist=[name]), name))
    return tuple(errors)


def with_retries(
    call: Callable[[], pd.DataFrame],
    what: str,
    attempts: int = 4,
    first_wait: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> pd.DataFrame:
    """``call()``, retried on network errors with exponential back-off (1 s, 2 s, 4 s, ...)."""
    transient = _network_errors()
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except transient as e:
            if attempt == attempts:
                raise UserError(
                    f"{what} failed after {attempts} attempts ({type(e).__name__}: {e}); "
                    "check the network, or use lstm.download.source: offline"
                ) from e
            sleep(first_wait * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def fetch_yfinance(
    ticker: str, start: str, end: str, sleep: Callable[[float], None] = time.sleep
) -> pd.DataFrame:
    """Adjusted daily prices of ``ticker`` from Yahoo Finance, ``start`` inclusive, ``end``
    exclusive."""
    import yfinance as yf
    from yfinance.exceptions import YFTickerMissingError

    what = f"downloading {ticker} {start}..{end} from Yahoo Finance"

    def call() -> pd.DataFrame:
        hide = yf.config.debug.hide_exceptions
        yf.config.debug.hide_exceptions = False  # raise instead of logging and returning nothing
        try:
            return yf.Ticker(ticker).history(
                start=start, end=end, interval="1d", auto_adjust=True, actions=False
            )
        except YFTickerMissingError as e:
            raise UserError(
                f"Yahoo Finance has no daily prices for {ticker!r} between {start} and {end} "
                f"({e}); "
                "check the symbol (unknown or delisted?) and lstm.download.start/end"
            ) from e
        finally:
            yf.config.debug.hide_exceptions = hide

    frame = with_retries(call, what, sleep=sleep)
    if frame is None or len(frame) == 0 or frame.dropna(how="all").empty:
        raise UserError(
            f"Yahoo Finance returned no prices for {ticker!r} between {start} and {end}; the "
            "symbol "
            "may be unknown or delisted, or the range empty: check lstm.download.ticker/start/end"
        )
    return normalise_yahoo_frame(frame, ticker)


def read_yahoo_csv(path: str | Path) -> pd.DataFrame:
    """A CSV in Yahoo's export layout (``Date,Open,High,Low,Close,Adj Close,Volume``).

    ``Adj Close`` becomes ``Close`` and Open/High/Low are scaled by the same factor, so every
    price is on the adjusted scale. A file without ``Adj Close`` is taken as already adjusted.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(
            f"lstm.download.path {path} does not exist; point it at a CSV with columns "
            f"{','.join(YAHOO_EXPORT)}"
        )
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UserError(
            f"{path} is not a readable CSV ({type(e).__name__}); expected {','.join(YAHOO_EXPORT)}"
        ) from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(
            f"{path} has no column(s) {missing} (columns: {', '.join(map(str, frame.columns))}); "
            f"expected Yahoo's export layout {','.join(YAHOO_EXPORT)}"
        )
    dates = pd.to_datetime(frame["Date"], errors="coerce")
    if dates.isna().any():
        bad = frame.loc[dates.isna(), "Date"].iloc[0]
        raise UserError(f"{path}: Date {bad!r} is not a date; use YYYY-MM-DD")
    out = frame[COLUMNS].copy()
    out["Date"] = dates.dt.normalize()
    for col in COLUMNS[1:]:
        out[col] = pd.to_numeric(
            out[col], errors="coerce"
        )  # Yahoo writes "null" for missing values
    if "Adj Close" in frame.columns:
        adj = pd.to_numeric(frame["Adj Close"], errors="coerce")
        factor = adj / out["Close"]
        for col in ("Open", "High", "Low"):
            out[col] = out[col] * factor
        out["Close"] = adj
    return out


def load_offline() -> pd.DataFrame:
    """MSFT daily prices 1986-03-13..2017-11-10 as shipped in pmdarima (MIT)."""
    from pmdarima.datasets import load_msft

    frame = load_msft()
    out = frame[COLUMNS].copy()
    out["Date"] = pd.to_datetime(out["Date"])
    return out


def select_range(frame: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    """Rows with ``start <= Date < end`` (Yahoo's convention: end is exclusive)."""
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    return frame[(frame["Date"] >= lo) & (frame["Date"] < hi)].reset_index(drop=True)


LICENCES = {
    "offline": "MIT (pmdarima); the prices come from the Kaggle 'Huge Stock Market Dataset' (B. "
    "Marjanovic)",
    "yfinance": "Yahoo Finance terms of use: personal, non-commercial use; yfinance itself is "
    "Apache-2.0",
    "local": "as the file's owner states",
}


def load_prices(source: str, ticker: str, start: str, end: str, path: str) -> pd.DataFrame:
    """Prices of ``ticker`` from ``source``, ``start`` inclusive, ``end`` exclusive (the offline
    source holds MSFT only; the params say so before this runs)."""
    if source == "yfinance":
        return fetch_yfinance(ticker, start, end)
    frame = read_yahoo_csv(path) if source == "local" else load_offline()
    frame = select_range(frame, start, end)
    if frame.empty:
        raise UserError(
            f"no {source} prices between {start} and {end}; widen lstm.download.start/end"
            + (" (offline MSFT covers 1986-03-13..2017-11-10)" if source == "offline" else "")
        )
    return frame


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


WHAT = {
    "offline": "MSFT daily prices as shipped in pmdarima (pmdarima.datasets.load_msft)",
    "yfinance": "{ticker} daily prices from Yahoo Finance, auto-adjusted",
    "local": "prices read from {path} (Yahoo export layout)",
}


def download(p: DownloadParams, paths: Paths) -> None:
    d = p.download
    start, end = d.start.isoformat(), d.end.isoformat()
    prices = load_prices(d.source, d.ticker, start, end, d.path)
    csv = paths.raw / "prices.csv"
    prices.to_csv(csv, index=False, date_format="%Y-%m-%d")
    sha256 = file_digest(csv)
    write_json(
        paths.card,
        {
            "source": d.source,
            "ticker": d.ticker if d.source != "local" else None,
            "range": {"start": start, "end_exclusive": end},
            **describe(prices),
            "sha256": sha256,
            "licence": LICENCES[d.source],
            "what_it_is": WHAT[d.source].format(ticker=d.ticker, path=d.path)
            + "; one row per trading day, Close adjusted for splits and dividends.",
            "what_it_is_not": "not intraday, not survivorship-free, not an investment signal; the "
            "offline copy "
            "stops on 2017-11-10 and is not updated.",
        },
    )


if __name__ == "__main__":
    runner.main(download, PROJECT)
