"""The evaluate stage: every candidate and the mean-price baseline on the held-out houses, and the
verdict on the headline model.

Metrics per model: RMSE of log price (Kaggle's metric), RMSE and MAE in dollars, R² (dollars), and
its cross-validation mean and spread from train. The headline (``housing.train.headline``) is
judged with ``results.evidence.compare`` against every other fitted model and the mean price, the
strongest on the held-out houses taken (``baselines``): 95 % paired bootstrap intervals over the
held-out houses; and again without the house that carries most of the headline's squared error.
``predictions.csv``: one row per held-out house, its Id, actual price and every model's price in
dollars.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..engine.loop import predict
from ..engine.runtime import make_backend
from ..files import read_json
from ..pipeline import runner
from ..pipeline.artifacts import load_trained, read_summary
from ..pipeline.contract import Paths
from ..pipeline.report import Report
from ..results import reports
from . import baselines
from .baselines import MEAN_PRICE, mean_price
from .download import ID, TARGET
from .model import build_mlp, load_estimator, tensors
from .project import BLEND, PROJECT, EvaluateParams

logger = logging.getLogger(__name__)


def candidate_log_prices(
    paths: Paths, summary: dict, x: np.ndarray, backend
) -> dict[str, np.ndarray]:
    """Log-price predictions of every trained candidate (and the blend) for preprocessed rows
    ``x``."""
    out = {}
    for name, entry in summary["models"].items():
        if entry["kind"] == "torch":
            state, entry = load_trained(paths, name)
            model = build_mlp(entry["config"])
            model.load_state_dict(state)
            standardized = (
                predict(model, tensors(x), backend, 256, desc=f"{name} predict")
                .numpy()
                .astype(float)
            )
            out[name] = (
                standardized * entry["config"]["target_std"] + entry["config"]["target_mean"]
            )
        else:
            out[name] = load_estimator(paths.model, name).predict(x)
    if summary.get("blend"):
        out[BLEND] = np.mean([out[m] for m in summary["blend"]], axis=0)
    return out


def score(actual_dollars: np.ndarray, log_prices: np.ndarray) -> dict:
    dollars = reports.regression(actual_dollars, np.expm1(log_prices))
    return {
        "rmse_log": reports.regression(np.log1p(actual_dollars), log_prices)["rmse"],
        "rmse_dollars": dollars["rmse"],
        "mae_dollars": dollars["mae"],
        "r2": dollars["r2"],
    }


def score_table(actual: np.ndarray, logs: dict[str, np.ndarray], cv: dict) -> dict[str, dict]:
    """Every model's held-out scores, with its cross-validation mean and spread from train."""
    table = {name: score(actual, values) for name, values in logs.items()}
    for name, row in table.items():
        if name in cv:
            row["cv_rmse_log_mean"] = cv[name]["rmse_log_mean"]
            row["cv_rmse_log_std"] = cv[name]["rmse_log_std"]
    return table


def training_warnings(summary: dict) -> list[str]:
    """What makes the numbers less trustworthy: a torch model whose training had not settled."""
    return [
        f"{name}: {entry['settle_note']}"
        for name, entry in summary["models"].items()
        if entry.get("settled") is False
    ]


def evaluate(params: EvaluateParams, paths: Paths) -> Report:
    summary = read_summary(paths)
    train = pd.read_parquet(paths.features / "train.parquet", columns=[TARGET])
    test = pd.read_parquet(paths.features / "test.parquet")
    x = load_estimator(paths.model, "preprocessor").transform(test)
    actual = test[TARGET].to_numpy(float)
    logs = candidate_log_prices(paths, summary, x, make_backend(params.runtime))
    logs[MEAN_PRICE] = np.log1p(mean_price(train[TARGET].to_numpy(float), len(test)))
    table = score_table(actual, logs, summary["cv"])
    headline = summary["headline"]
    # The headline against every other fitted model, the strongest on these houses taken, and the
    # mean price as the floor; paired bootstrap over the held-out houses. Beside it, the same
    # without the house that weighs most on the headline's error.
    rivals = baselines.rivals([name for name in logs if name != MEAN_PRICE], headline)
    verdict = baselines.judge(headline, logs, np.log1p(actual), rivals, params.seed)
    without_heaviest = baselines.judge_without_heaviest_house(
        headline, logs, np.log1p(actual), test[ID].to_numpy(), rivals, params.seed
    )
    candidates = [name for name in table if name != MEAN_PRICE]
    losers = [n for n in candidates if table[n]["rmse_log"] >= table[MEAN_PRICE]["rmse_log"]]
    warnings = training_warnings(summary) + (
        [f"{', '.join(losers)} do not beat the mean-price baseline on the held-out houses"]
        if losers
        else []
    )
    for warning in warnings:
        logger.warning(warning)
    features_card = read_json(paths.features / "card.json")
    write_predictions(paths, test[ID], actual, logs)
    for name, row in table.items():
        logger.info(
            f"housing {name:>10}: RMSE(log) {row['rmse_log']:.4f}  RMSE "
            f"${row['rmse_dollars']:,.0f}  MAE ${row['mae_dollars']:,.0f}  R² {row['r2']:.3f}"
        )
    logger.info(f"without house {without_heaviest['left_out_id']}: {without_heaviest['line']}")
    reports.announce(verdict)
    return Report.judged(
        verdict,
        test_rows=len(test),
        source=features_card["source"],
        runtime=summary["runtime"],  # what trained the MLP
        warnings=warnings,
        details={
            "headline": headline,
            "best_by_cv": summary["best_by_cv"],
            "every_model_beats_mean_price": not losers,
            "models": {n: table[n] for n in candidates},
            "baseline": {MEAN_PRICE: table[MEAN_PRICE]},
            "test_rows": len(test),
            "training_rows": summary["training_rows"],
            "cv_folds": summary["cv_folds"],
            "outliers": features_card["outliers"],
            "outliers_dropped": features_card["outliers_dropped"],
            "data": {"source": features_card["source"]},
            "runtime": summary["runtime"],
            "verdict_without_heaviest_house": without_heaviest,
        },
    )


def write_predictions(
    paths: Paths, ids: pd.Series, actual: np.ndarray, logs: dict[str, np.ndarray]
) -> None:
    """One row per held-out house: its Id, actual price and every model's price, in dollars."""
    pd.DataFrame(
        {
            ID: ids.astype(int),
            "actual": actual,
            **{name: np.expm1(values).round(2) for name, values in logs.items()},
        }
    ).to_csv(paths.predictions, index=False)


if __name__ == "__main__":
    runner.main(evaluate, PROJECT)
