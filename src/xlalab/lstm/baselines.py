"""The forecasts a recurrent model must beat (naive, moving average, ARIMA) and the Diebold-Mariano
test that compares two forecasts, all in price units on the same test days.

Every forecast for day ``origin + horizon`` uses closes up to ``origin`` only.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..errors import UserError


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
    # One BLAS thread: these are many tiny matrix products, and on a shared machine extra threads
    # make the fits ten times slower, not faster.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        chosen_by = "given" if order is not None else "auto_arima"
        order, intercept = arima_order(train[-select_days:], order, max_p, max_q)
        model = pm.ARIMA(tuple(order), with_intercept=intercept, suppress_warnings=True).fit(train)
        fitted = model.arima_res_
        predicted = rolling_forecasts(fitted.apply(log_close, refit=False), origin, horizon)
    return np.exp(predicted), {
        "order": [int(v) for v in order],
        "with_intercept": intercept,
        "chosen_by": chosen_by,
        # fitted on the training days, then held fixed
        "coefficients": dict(zip(fitted.model.param_names, map(float, fitted.params))),
    }


def arima_order(
    recent_train: np.ndarray, order: list[int] | None, max_p: int, max_q: int
) -> tuple[list[int], bool]:
    """The (p, d, q) order and whether it has an intercept: the given order with one, or
    auto_arima's choice (stepwise, by AIC) on the recent training days given."""
    if order is not None:
        return list(order), True
    import pmdarima as pm

    chosen = pm.auto_arima(
        recent_train,
        seasonal=False,
        # auto_arima starts its search at p = q = 2 and refuses a smaller maximum
        start_p=min(2, max_p),
        start_q=min(2, max_q),
        max_p=max_p,
        max_q=max_q,
        stepwise=True,
        suppress_warnings=True,
        error_action="ignore",
    )
    return list(chosen.order), bool(chosen.with_intercept)


def rolling_forecasts(full, origin: np.ndarray, horizon: int) -> np.ndarray:
    """The forecast of the log close ``horizon`` days after each ``origin``, from a model applied
    to the whole series with fixed coefficients (``full``): each conditions on days <= origin."""
    if horizon == 1:
        first = int(origin.min()) + 1
        one_step = full.get_prediction(start=first, end=int(origin.max()) + 1, dynamic=False)
        return np.asarray(one_step.predicted_mean)[origin + 1 - first]
    return np.array(
        [
            np.asarray(
                full.get_prediction(start=o + 1, end=o + horizon, dynamic=True).predicted_mean
            )[-1]
            for o in origin
        ]
    )


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


def dm_verdict(stat: float, p_value: float, level: float = 0.05) -> str:
    """The Diebold-Mariano test as a three-way verdict for forecast a against b: ``beats`` when
    a's absolute errors are smaller and the test rejects equal accuracy at ``level``, ``loses``
    when they are larger and it rejects, ``ties`` when it does not reject."""
    if p_value >= level:
        return "ties"
    return "beats" if stat < 0 else "loses"


def naive_scale(close: np.ndarray, train_days: int, horizon: int) -> float:
    """In-sample MAE of the naive ``horizon``-day forecast over the training days (MASE's
    denominator)."""
    train = close[:train_days]
    return float(np.abs(train[horizon:] - train[:-horizon]).mean())
