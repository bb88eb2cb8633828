"""The featurize stage: cleaning, technical indicators, the chronological split, scaling and
windows.

No look-ahead anywhere: every indicator at day t is computed from days <= t (rolling windows and
recursive EMAs run forwards only, missing values are filled forwards), the scaler is fitted on
training days only, and a sample belongs to the split of the day it predicts, so no training
sample sees or predicts a validation or test day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from ..errors import UserError
from ..files import read_json, write_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from .project import PROJECT, SPLITS, FeaturizeParams
from .sources.yahoo import COLUMNS


def clean_prices(frame: pd.DataFrame, dates: str = "fix") -> tuple[pd.DataFrame, dict]:
    """Sorted, de-duplicated daily prices with missing values filled forwards, and a report.

    ``dates="fix"`` sorts out-of-order rows and drops repeated identical rows; ``"strict"`` refuses
    both. A date repeated with different prices is always an error: there is no way to know
    which row is right.
    """
    frame = checked_columns(frame)
    report: dict = {"rows_in": int(len(frame))}
    frame, report["out_of_order_rows"] = sorted_by_date(frame, dates)
    frame, report["duplicate_rows_dropped"] = without_repeated_dates(frame, dates)
    report["missing_values"] = {c: int(frame[c].isna().sum()) for c in COLUMNS[1:]}
    # Fill forwards only: a gap takes the last value seen, never a later one.
    frame[COLUMNS[1:]] = frame[COLUMNS[1:]].ffill()
    leading = int(frame["Close"].isna().sum())
    frame = frame.dropna(subset=["Close"]).reset_index(drop=True)
    frame["Volume"] = frame["Volume"].fillna(0.0)
    for col in ("Open", "High", "Low"):
        frame[col] = frame[col].fillna(frame["Close"])
    report["leading_rows_without_close_dropped"] = leading
    if (frame["Close"] <= 0).any():
        bad = frame.loc[frame["Close"] <= 0, "Date"].iloc[0]
        raise UserError(
            f"the close on {bad.date()} is not positive; prices must be > 0 for returns"
        )
    report["rows_out"] = int(len(frame))
    return frame, report


def checked_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The price columns, dates parsed; an error for a missing or empty column, or no rows."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"the raw prices lack column(s) {missing}; re-run the download stage")
    frame = frame[COLUMNS].copy()
    frame["Date"] = pd.to_datetime(frame["Date"])
    if frame.empty:
        raise UserError(
            "the raw prices are empty; widen lstm.download.start/end or check the source"
        )
    for col in COLUMNS[1:]:
        if frame[col].isna().all():
            raise UserError(
                f"column {col} is empty (all {len(frame)} values missing); check the source file"
            )
    return frame


def sorted_by_date(frame: pd.DataFrame, dates: str) -> tuple[pd.DataFrame, int]:
    """The rows in date order and how many were out of order (``strict``: an error if any)."""
    order = frame["Date"].to_numpy()
    out_of_order = int((order[1:] < order[:-1]).sum())
    if out_of_order and dates == "strict":
        i = int(np.argmax(order[1:] < order[:-1])) + 1
        raise UserError(
            f"dates are not in increasing order: row {i + 1} is {frame['Date'].iloc[i].date()} "
            f"after {frame['Date'].iloc[i - 1].date()}; sort the file or set "
            "lstm.featurize.dates: fix"
        )
    return frame.sort_values("Date", kind="stable").reset_index(drop=True), out_of_order


def without_repeated_dates(frame: pd.DataFrame, dates: str) -> tuple[pd.DataFrame, int]:
    """One row per date and how many identical repeats were dropped (``strict``: an error if
    any); a date repeated with different prices is always an error."""
    repeated = frame["Date"].duplicated(keep=False)
    if repeated.any():
        groups = frame[repeated].groupby("Date")
        conflicting = [d for d, g in groups if len(g.drop_duplicates()) > 1]
        if conflicting:
            raise UserError(
                f"{len(conflicting)} date(s) appear twice with different prices, first "
                f"{pd.Timestamp(conflicting[0]).date()}; keep one row per date in the source"
            )
        if dates == "strict":
            raise UserError(
                f"{int(frame['Date'].duplicated().sum())} date(s) appear twice, first "
                f"{frame.loc[frame['Date'].duplicated(), 'Date'].iloc[0].date()}; remove the "
                "repeats or set lstm.featurize.dates: fix"
            )
    dropped = int(frame["Date"].duplicated().sum())
    return frame.drop_duplicates("Date").reset_index(drop=True), dropped


def indicator_columns(features: list[str]) -> list[str]:
    """The model's input columns for the chosen features (macd gives two)."""
    cols = []
    for f in features:
        cols += ["macd", "macd_signal"] if f == "macd" else [f]
    return cols


def add_indicators(
    prices: pd.DataFrame, features: list[str], periods: dict[str, int]
) -> pd.DataFrame:
    """Scale-free indicators: each is a return, a ratio or a bounded oscillator, so a model
    trained on one price level applies at another. Every value at day t uses days <= t only."""
    close = prices["Close"]
    log_close = np.log(close)
    log_ret = log_close.diff()
    out = pd.DataFrame({"Date": prices["Date"], "Close": close})
    for f in features:
        if f == "log_return":
            out[f] = log_ret
        elif f == "return":
            out[f] = close.pct_change()
        elif f == "sma":
            out[f] = close / close.rolling(periods["sma"]).mean() - 1
        elif f == "ema":
            out[f] = close / _ema(close, periods["ema"]) - 1
        elif f == "rsi":
            out[f] = _rsi(close, periods["rsi"]) / 100 - 0.5
        elif f == "macd":
            macd = (_ema(close, periods["macd_fast"]) - _ema(close, periods["macd_slow"])) / close
            out["macd"] = macd
            out["macd_signal"] = _ema(macd, periods["macd_signal"])
        elif f == "volatility":
            out[f] = log_ret.rolling(periods["volatility"]).std()
        elif f == "volume_change":
            out[f] = np.log1p(prices["Volume"]).diff()
    # Recursive indicators are defined from day 1, but their first values lean on an arbitrary
    # start; treat them as warming up for their own period, like the rolling ones.
    warmup = 1 + max([periods[k] for k in _periods_used(features)] or [0])
    out.iloc[:warmup, 2:] = np.nan
    return out


def _periods_used(features: list[str]) -> list[str]:
    keys = {
        "sma": ["sma"],
        "ema": ["ema"],
        "rsi": ["rsi"],
        "volatility": ["volatility"],
        "macd": ["macd_slow", "macd_signal"],
    }
    return [k for f in features for k in keys.get(f, [])]


def _ema(series: pd.Series, span: int) -> pd.Series:
    return series.ewm(span=span, adjust=False).mean()


def _rsi(close: pd.Series, period: int) -> pd.Series:
    change = close.diff()
    gain = change.clip(lower=0).ewm(alpha=1 / period, adjust=False).mean()
    loss = (-change.clip(upper=0)).ewm(alpha=1 / period, adjust=False).mean()
    rs = gain / loss.replace(0, np.nan)
    return (100 - 100 / (1 + rs)).fillna(100.0)


def split_days(n_days: int, val: float, test: float) -> np.ndarray:
    """0/1/2 (train/val/test) for each day, in time order."""
    n_test, n_val = int(round(test * n_days)), int(round(val * n_days))
    labels = np.zeros(n_days, dtype=np.int8)
    labels[n_days - n_test - n_val : n_days - n_test] = 1
    labels[n_days - n_test :] = 2
    return labels


def fit_scaler(values: np.ndarray) -> StandardScaler:
    """Standardisation fitted on the rows given (training rows only); a constant column keeps scale
    1."""
    return StandardScaler().fit(values)


def scaler_card(scaler: StandardScaler) -> dict:
    return {"mean": scaler.mean_.tolist(), "std": scaler.scale_.tolist()}


@dataclass
class Windows:
    x: np.ndarray  # (n, window, features) scaled inputs, days origin-window+1 .. origin
    y: np.ndarray  # (n,) scaled target: log(close[origin + horizon] / close[origin])
    origin: np.ndarray  # (n,) day index of the last input day
    target: np.ndarray  # (n,) day index of the predicted day
    split: np.ndarray  # (n,) 0/1/2: the split of the predicted day


def make_windows(
    table: pd.DataFrame, columns: list[str], labels: np.ndarray, window: int, horizon: int
) -> tuple[Windows, StandardScaler, StandardScaler]:
    """Windows of ``window`` days predicting ``horizon`` days ahead, with scalers fitted on training
    days (inputs) and training samples (target) only."""
    n = len(table)
    n_train = int((labels == 0).sum())
    if window + horizon > n_train:
        raise UserError(
            f"lstm.window={window} plus lstm.horizon={horizon} is longer than the training part "
            f"({n_train} of {n} usable days); lower the window or widen lstm.download.start/end"
        )
    if (labels == 2).sum() == 0 or (labels == 1).sum() == 0:
        raise UserError(
            f"the validation or test part is empty ({n} usable days); raise lstm.featurize.split "
            "or widen the date range"
        )
    values = table[columns].to_numpy(np.float64)
    x_scaler = fit_scaler(values[labels == 0])
    scaled = x_scaler.transform(values).astype(np.float32)

    log_close = np.log(table["Close"].to_numpy(np.float64))
    origin = np.arange(window - 1, n - horizon)
    target = origin + horizon
    y_raw = log_close[target] - log_close[origin]
    split = labels[target]
    y_scaler = fit_scaler(y_raw[split == 0][:, None])
    y = y_scaler.transform(y_raw[:, None])[:, 0].astype(np.float32)
    # A strided view, copied once: (n, window, features).
    x = np.lib.stride_tricks.sliding_window_view(scaled, window, axis=0)[
        origin - window + 1
    ].transpose(0, 2, 1)
    return Windows(np.ascontiguousarray(x), y, origin, target, split), x_scaler, y_scaler


def featurize_prices(
    prices: pd.DataFrame,
    features: list[str],
    periods: dict[str, int],
    window: int,
    horizon: int,
    val: float,
    test: float,
    dates: str = "fix",
) -> tuple[pd.DataFrame, Windows, dict]:
    """Everything featurize computes, in memory: the per-day table, the windows and a report."""
    clean, report = clean_prices(prices, dates)
    table = add_indicators(clean, features, periods)
    columns = indicator_columns(features)
    warm = table[columns].isna().any(axis=1)
    report["warmup_rows_dropped"] = int(warm.sum())
    table = table[~warm].reset_index(drop=True)
    if len(table) == 0:
        raise UserError(
            f"no day is left after the indicators' warm-up ({report['rows_out']} days); "
            "widen the date range or shorten lstm.featurize.indicators"
        )
    labels = split_days(len(table), val, test)
    windows, x_scaler, y_scaler = make_windows(table, columns, labels, window, horizon)
    table["split"] = [SPLITS[i] for i in labels]
    report.update(
        {
            "columns": columns,
            "window": window,
            "horizon": horizon,
            "days": {s: int((labels == i).sum()) for i, s in enumerate(SPLITS)},
            "samples": {s: int((windows.split == i).sum()) for i, s in enumerate(SPLITS)},
            "first_day": {
                s: str(table.loc[labels == i, "Date"].iloc[0].date()) for i, s in enumerate(SPLITS)
            },
            "scaler": {
                "columns": columns,
                **scaler_card(x_scaler),
                "fitted_on": "training days only",
            },
            "target": {
                "what": f"log(close[t+{horizon}] / close[t])",
                "mean": float(y_scaler.mean_[0]),
                "std": float(y_scaler.scale_[0]),
                "fitted_on": "training samples only",
            },
        }
    )
    return table, windows, report


def featurize(params: FeaturizeParams, paths: Paths) -> None:
    f = params.featurize
    source_card = read_json(paths.card)
    prices = pd.read_csv(paths.raw / "prices.csv")
    table, windows, report = featurize_prices(
        prices,
        f.features,
        f.indicators.model_dump(),
        params.window,
        params.horizon,
        f.split.val,
        f.split.test,
        f.dates,
    )
    report["source"] = {
        k: source_card.get(k) for k in ("source", "ticker", "range", "sha256", "licence")
    }
    table.to_csv(paths.features / "days.csv", index=False, date_format="%Y-%m-%d")
    np.savez(
        paths.features / "windows.npz",
        x=windows.x,
        y=windows.y,
        origin=windows.origin,
        target=windows.target,
        split=windows.split,
    )
    write_json(paths.features / "card.json", report)


if __name__ == "__main__":
    runner.main(featurize, PROJECT)
