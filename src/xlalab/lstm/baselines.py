"""The forecasts a recurrent model must beat (naive, moving average, ARIMA) and the Diebold-Mariano
test that compares two forecasts, all in price units on the same test days.

Every forecast for day ``origin + horizon`` uses closes up to ``origin`` only.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..core.errors import UserError


def naive_forecast(close: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Tomorrow (or ``horizon`` days on) closes where today closed: the random walk."""
    return close[origin]


def moving_average_forecast(close: np.ndarray, origin: np.ndarray, days: int) -> np.ndarray:
    if origin.min() < days - 1:
        raise UserError(
            f"lstm.evaluate.moving_average={days} reaches before the first day; lower it"
        )
    cumulative = np.concatenate([[0.0], np.cumsum(close)])
    return (cumulative[origin + 1] - cumulative[origin + 1 - days]) / days


def arima_forecast(
    close: np.ndarray,
    train_days: int,
    origin: np.ndarray,
    horizon: int,
    order: list[int] | None,
    max_p: int,
    max_q: int,
    select_days: int,
) -> tuple[np.ndarray, dict]:
    """Rolling ARIMA forecasts of log closes, converted back to prices.

    The order is chosen (auto_arima, on the last ``select_days`` training days, to keep it fast) or
    given, its coefficients are fitted on the training days once, and the fitted model is then run
    over the whole series with those coefficients fixed: the forecast from ``origin`` conditions on
    observations up to ``origin`` only (the Kalman filter's update with each observed day), with no
    refitting on later data.
    """
    import pmdarima as pm
    from threadpoolctl import threadpool_limits

    log_close = np.log(close)
    train = log_close[:train_days]
    chosen_by = "given"
    # One BLAS thread: these are many tiny matrix products, and on a shared machine extra threads
    # make the fits ten times slower, not faster.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        if order is None:
            chosen_by = "auto_arima"
            chosen = pm.auto_arima(
                train[-select_days:],
                seasonal=False,
                max_p=max_p,
                max_q=max_q,
                stepwise=True,
                suppress_warnings=True,
                error_action="ignore",
            )
            order, intercept = list(chosen.order), bool(chosen.with_intercept)
        else:
            intercept = True
        model = pm.ARIMA(tuple(order), with_intercept=intercept, suppress_warnings=True).fit(train)
        full = model.arima_res_.apply(log_close, refit=False)
        if horizon == 1:
            one_step = full.get_prediction(
                start=int(origin.min()) + 1, end=len(close) - 1, dynamic=False
            )
            predicted = np.asarray(one_step.predicted_mean)[origin + 1 - (int(origin.min()) + 1)]
        else:
            predicted = np.array(
                [
                    np.asarray(
                        full.get_prediction(
                            start=o + 1, end=o + horizon, dynamic=True
                        ).predicted_mean
                    )[-1]
                    for o in origin
                ]
            )
    return np.exp(predicted), {
        "order": [int(v) for v in order],
        "with_intercept": intercept,
        "chosen_by": chosen_by,
    }


def diebold_mariano(
    errors_a: np.ndarray, errors_b: np.ndarray, horizon: int
) -> tuple[float, float]:
    """DM statistic and two-sided p-value for equal mean absolute error (negative: a is better).

    The long-run variance counts autocovariances up to lag ``horizon - 1``, as overlapping
    ``horizon``-day forecasts are correlated.
    """
    d = np.abs(errors_a) - np.abs(errors_b)
    n = len(d)
    centred = d - d.mean()
    variance = centred @ centred / n
    for lag in range(1, horizon):
        variance += 2 * (centred[lag:] @ centred[:-lag]) / n
    if variance <= 0:
        return 0.0, 1.0
    stat = d.mean() / math.sqrt(variance / n)
    return float(stat), float(math.erfc(abs(stat) / math.sqrt(2)))


def naive_scale(close: np.ndarray, train_days: int, horizon: int) -> float:
    """In-sample MAE of the naive ``horizon``-day forecast over the training days (MASE's
    denominator)."""
    train = close[:train_days]
    return float(np.abs(train[horizon:] - train[:-horizon]).mean())
