"""The yfinance source: adjusted daily prices of any ticker from Yahoo Finance, retried on network
errors."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pandas as pd

from ...errors import UserError
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams
from .yahoo import Prices, normalise_yahoo_frame


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


def read(params: DownloadParams, paths: Paths) -> Prices:
    download = params.download
    start, end = download.start.isoformat(), download.end.isoformat()
    return Prices(
        fetch_yfinance(download.ticker, start, end),
        "Yahoo Finance terms of use: personal, non-commercial use; yfinance itself is Apache-2.0",
        f"{download.ticker} daily prices from Yahoo Finance, auto-adjusted",
    )


SOURCE = Source(
    "yfinance", ("ticker", "start", "end"), read, "daily prices of any ticker from Yahoo Finance"
)
