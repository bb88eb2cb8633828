"""What housing's headline model is judged against on the same held-out houses: every other fitted
model (linear, forest, boosting, MLP, and the blend when the headline is a single model), the
strongest of them on those houses taken, and the mean training price (the floor every model must
clear). Also the verdict without the one house that weighs most on the headline's error.

Taking the strongest baseline on the held-out houses is the choice least favourable to the
headline: of four or so fitted models, the one that happened to suit these houses best. Its score
is a little optimistic (chosen on the rows it is scored on), so a ``beats`` is conservative, and
the interval of the difference is that of the comparison with this one baseline, not widened for
the choice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..results import evidence, reports

MEAN_PRICE = "mean_price"


def rivals(models: Sequence[str], headline: str) -> list[str]:
    """The verdict's baselines: every fitted model but the headline, then the mean price."""
    return [name for name in models if name not in (headline, MEAN_PRICE)] + [MEAN_PRICE]


def judge(
    headline: str,
    log_prices: Mapping[str, np.ndarray],
    actual_log: np.ndarray,
    baselines: Sequence[str],
    seed: int,
) -> dict:
    """The headline against the strongest of ``baselines`` on these houses: RMSE of log price
    with paired bootstrap intervals (``results.evidence.compare``)."""
    return evidence.compare(
        headline,
        log_prices,
        actual_log,
        evidence.rmse,
        metric_name="RMSE(log)",
        higher_is_better=False,
        baselines=list(baselines),
        seed=seed,
    )


def heaviest_house(actual_log: np.ndarray, headline_log: np.ndarray) -> tuple[int, float]:
    """The row of the held-out house with the largest share of the headline's squared log error,
    and that share."""
    squared = (np.asarray(headline_log) - np.asarray(actual_log)) ** 2
    row = int(np.argmax(squared))
    return row, float(squared[row] / squared.sum())


def judge_without_heaviest_house(
    headline: str,
    log_prices: Mapping[str, np.ndarray],
    actual_log: np.ndarray,
    ids: np.ndarray,
    baselines: Sequence[str],
    seed: int,
) -> dict:
    """The same verdict on the held-out houses less the one that carries most of the headline's
    squared error (with seed 0, Id 1299: a partial sale of a very large house): how much of the
    verdict that one house decides."""
    row, share = heaviest_house(actual_log, log_prices[headline])
    kept = np.arange(len(actual_log)) != row
    verdict = judge(
        headline,
        {name: np.asarray(values)[kept] for name, values in log_prices.items()},
        np.asarray(actual_log)[kept],
        baselines,
        seed,
    )
    return {"left_out_id": int(ids[row]), "share_of_squared_error": share, **verdict}


def mean_price(train_prices: np.ndarray, n_test: int) -> np.ndarray:
    """The training houses' mean price (dollars) for every held-out house."""
    return reports.mean_predictions(train_prices, n_test)
