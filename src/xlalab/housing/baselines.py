"""What housing's headline model is judged against on the same held-out houses: the best other
single model by cross-validation (a fitted model, the verdict's baseline) and the mean training
price (the floor every model must clear)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..results import reports
from .project import BLEND

MEAN_PRICE = "mean_price"


def best_single_by_cv(cv: Mapping[str, Mapping[str, float]], headline: str) -> str:
    """The single model, other than ``headline`` (and never the blend), with the lowest
    cross-validated RMSE(log): chosen on the training rows, before any held-out house is seen."""
    singles = [name for name in cv if name not in (BLEND, headline)]
    if not singles:
        raise ValueError(f"no single model besides {headline} was cross-validated")
    return min(singles, key=lambda name: cv[name]["rmse_log_mean"])


def mean_price(train_prices: np.ndarray, n_test: int) -> np.ndarray:
    """The training houses' mean price (dollars) for every held-out house."""
    return reports.mean_predictions(train_prices, n_test)
