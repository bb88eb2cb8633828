"""The evaluate stage: every candidate on the held-out houses beside the mean-price baseline.

Metrics per candidate: RMSE of log price (Kaggle's metric), RMSE and MAE in dollars, R² (dollars),
and
its cross-validation mean and spread from train. The headline model is the one train chose by
cross-validation (the held-out rows choose nothing); the verdict says whether it beats the baseline
and by how much. ``predictions.csv``: one row per held-out house, its Id, actual price and every
candidate's price in dollars.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..core import launch, reports
from ..core.artifacts import load_trained, read_summary
from ..core.io import read_json, write_json
from ..core.loop import predict
from ..core.project import Paths
from ..core.runtime import make_backend
from .data import ID, TARGET
from .model import build_mlp, load_estimator, tensors
from .project import PROJECT, EvaluateParams

logger = logging.getLogger(__name__)

BASELINE = "mean_price"
BLEND = "blend"


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


def score(actual_dollars: np.ndarray, predicted_dollars: np.ndarray) -> dict:
    dollars = reports.regression(actual_dollars, predicted_dollars)
    return {
        "rmse_log": reports.regression(np.log1p(actual_dollars), np.log1p(predicted_dollars))[
            "rmse"
        ],
        "rmse_dollars": dollars["rmse"],
        "mae_dollars": dollars["mae"],
        "r2": dollars["r2"],
    }


def evaluate(p: EvaluateParams, paths: Paths) -> None:
    summary = read_summary(paths)
    train = pd.read_parquet(paths.features / "train.parquet", columns=[TARGET])
    test = pd.read_parquet(paths.features / "test.parquet")
    x = load_estimator(paths.model, "preprocessor").transform(test)
    actual = test[TARGET].to_numpy(float)
    backend = make_backend(p.runtime)
    prices = {
        name: np.expm1(logs)
        for name, logs in candidate_log_prices(paths, summary, x, backend).items()
    }
    prices[BASELINE] = reports.mean_predictions(train[TARGET].to_numpy(float), len(test))

    table = {name: score(actual, predicted) for name, predicted in prices.items()}
    for name, row in table.items():
        if name in summary["cv"]:
            row["cv_rmse_log_mean"] = summary["cv"][name]["rmse_log_mean"]
            row["cv_rmse_log_std"] = summary["cv"][name]["rmse_log_std"]
    candidates = [name for name in table if name != BASELINE]
    headline = summary["best_by_cv"]
    verdict = reports.verdict(
        headline,
        {n: r["rmse_log"] for n, r in table.items()},
        [BASELINE],
        "RMSE(log)",
        higher_is_better=False,
    )
    losers = [n for n in candidates if table[n]["rmse_log"] >= table[BASELINE]["rmse_log"]]
    if losers:
        logger.warning(
            f"{', '.join(losers)} do not beat the mean-price baseline on the held-out houses"
        )
    best_single = min(
        (n for n in candidates if n != BLEND), key=lambda n: table[n]["cv_rmse_log_mean"]
    )
    features_card = read_json(paths.features / "card.json")
    write_json(
        paths.metrics,
        {
            "headline": headline,
            "best_single_by_cv": best_single,
            "best_single_cv_rmse_log": table[best_single]["cv_rmse_log_mean"],
            "every_model_beats_baseline": not losers,
            "models": {n: table[n] for n in candidates},
            "baseline": {BASELINE: table[BASELINE]},
            "test_rows": len(test),
            "training_rows": summary["training_rows"],
            "cv_folds": summary["cv_folds"],
            "outliers_dropped": features_card["outliers_dropped"],
            "data": {"source": features_card["source"]},
            "runtime": summary["runtime"],  # what trained the MLP
            "verdict": verdict,
        },
    )
    frame = pd.DataFrame(
        {
            ID: test[ID].astype(int),
            "actual": actual,
            **{name: values.round(2) for name, values in prices.items()},
        }
    )
    frame.to_csv(paths.predictions, index=False)
    for name, row in table.items():
        logger.info(
            f"housing {name:>10}: RMSE(log) {row['rmse_log']:.4f}  RMSE "
            f"${row['rmse_dollars']:,.0f}  "
            f"MAE ${row['mae_dollars']:,.0f}  R² {row['r2']:.3f}"
        )
    reports.announce(verdict)


if __name__ == "__main__":
    launch.main(PROJECT, "evaluate", evaluate)
