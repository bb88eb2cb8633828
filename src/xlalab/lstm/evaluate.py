"""The evaluate stage: every recurrent model, the naive forecast, a moving average and ARIMA on the
same test days in price units; the verdict on the headline cell against the strongest baseline
(``results.evidence.compare`` with a circular block bootstrap of consecutive test days);
Diebold-Mariano tests against the naive forecast (with the beats/ties/loses they give at 5 %) and
against that strongest baseline."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..engine.loop import predict
from ..engine.runtime import Backend, make_backend
from ..files import read_json
from ..pipeline import runner
from ..pipeline.artifacts import load_trained, read_summary
from ..pipeline.contract import Paths
from ..pipeline.report import Report
from ..results import evidence, reports
from .baselines import (
    arima_forecast,
    diebold_mariano,
    dm_verdict,
    moving_average_forecast,
    naive_forecast,
    naive_scale,
)
from .model import build_model
from .project import PROJECT, SPLITS, Evaluate, EvaluateParams

logger = logging.getLogger(__name__)

BASELINES = ("naive", "moving_average", "arima")


@dataclass
class HeldOutDays:
    """The test samples: the day each forecast is made from (``origin``) and for (``target``)."""

    dates: pd.Series  # every day's date (days.csv)
    close: np.ndarray  # every day's close
    x: np.ndarray  # the test windows
    origin: np.ndarray
    target: np.ndarray
    horizon: int
    train_days: int

    @property
    def actual(self) -> np.ndarray:
        return self.close[self.target]

    @property
    def last_close(self) -> np.ndarray:
        return self.close[self.origin]


def load_test_days(paths: Paths) -> tuple[HeldOutDays, dict]:
    with np.load(paths.features / "windows.npz") as f:
        test = f["split"] == SPLITS.index("test")
        x, origin, target = f["x"][test], f["origin"][test], f["target"][test]
    card = read_json(paths.features / "card.json")
    days = pd.read_csv(paths.features / "days.csv")
    close = days["Close"].to_numpy(np.float64)
    train_days = int(card["days"]["train"])
    return HeldOutDays(
        days["Date"], close, x, origin, target, int(card["horizon"]), train_days
    ), card


def recurrent_forecasts(
    paths: Paths, summary: dict, days: HeldOutDays, backend: Backend
) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Each trained cell's price forecasts for the test days, and what its training chose."""
    target_scale = summary["target"]
    forecasts, training = {}, {}
    for cell in summary["models"]:
        state, entry = load_trained(paths, cell)
        model = build_model(entry["config"])
        model.load_state_dict(state)
        scaled = predict(
            model, {"x": torch.from_numpy(days.x)}, backend, batch_size=256, desc=f"predict {cell}"
        )
        log_return = scaled.numpy().astype(np.float64) * target_scale["std"] + target_scale["mean"]
        forecasts[cell] = days.last_close * np.exp(log_return)
        training[cell] = {
            "best_epoch": entry["best_epoch"],
            "epochs_run": entry["epochs_run"],
            "stopped_early": entry["stopped_early"],
            "settled": entry["settled"],
            "val_mae_scaled": entry["best"]["val/mae"],
        }
    return forecasts, training


def baseline_forecasts(e: Evaluate, days: HeldOutDays) -> tuple[dict[str, np.ndarray], dict]:
    """Naive, moving-average and ARIMA forecasts of the test days, and what ARIMA chose."""
    arima, arima_info = arima_forecast(
        days.close,
        days.train_days,
        days.origin,
        days.horizon,
        e.arima.order,
        e.arima.max_p,
        e.arima.max_q,
        e.arima.select_days,
    )
    return {
        "arima": arima,
        "naive": naive_forecast(days.close, days.origin),
        "moving_average": moving_average_forecast(days.close, days.origin, e.moving_average),
    }, arima_info


def score_models(forecasts: dict[str, np.ndarray], days: HeldOutDays) -> dict[str, dict]:
    """Every model's forecasting metrics, and its Diebold-Mariano test against the naive
    forecast (on absolute errors) with the three-way verdict it gives at 5 %."""
    naive_err = forecasts["naive"] - days.actual
    naive_mae = float(np.abs(naive_err).mean())
    scale = naive_scale(days.close, days.train_days, days.horizon)
    models = {}
    for name, predicted in forecasts.items():
        m = reports.forecasting(days.actual, predicted, days.last_close, naive_mae, scale)
        if name != "naive":
            stat, p_value = diebold_mariano(predicted - days.actual, naive_err, days.horizon)
            m.update(
                dm_stat_vs_naive=stat,
                dm_pvalue_vs_naive=p_value,
                vs_naive=dm_verdict(stat, p_value),
            )
        models[name] = m
    return models


def dm_against(
    models: dict[str, dict], forecasts: dict[str, np.ndarray], days: HeldOutDays, baseline: str
) -> None:
    """Add every other model's Diebold-Mariano test against ``baseline`` to its metrics."""
    baseline_err = forecasts[baseline] - days.actual
    for name, m in models.items():
        if name != baseline:
            stat, p_value = diebold_mariano(
                forecasts[name] - days.actual, baseline_err, days.horizon
            )
            m.update(dm_stat_vs_best_baseline=stat, dm_pvalue_vs_best_baseline=p_value)


def training_warnings(training: dict[str, dict], summary: dict) -> list[str]:
    """A cell whose training had not settled, or whose best epoch is its first (every later
    epoch only made validation MAE worse: the recipe learned nothing after one pass)."""
    warnings = []
    for cell, t in training.items():
        if not t["settled"]:
            warnings.append(f"{cell}: {summary['models'][cell]['settle_note']}")
        if t["best_epoch"] == 1 and t["epochs_run"] > 1:
            warnings.append(
                f"{cell}: its best epoch is the first of {t['epochs_run']}: validation MAE never "
                "improved after one pass; lower lstm.train.lr"
            )
    return warnings


def evaluate(params: EvaluateParams, paths: Paths) -> Report:
    backend = make_backend(params.runtime)
    summary = read_summary(paths)
    headline = summary["headline"]
    days, card = load_test_days(paths)
    forecasts, training = recurrent_forecasts(paths, summary, days, backend)
    baselines, arima_info = baseline_forecasts(params.evaluate, days)
    forecasts.update(baselines)
    models = score_models(forecasts, days)
    models["arima"].update(arima_info)
    block = evidence.block_length(len(days.target), params.evaluate.block)
    verdict = evidence.compare(
        headline,
        forecasts,
        days.actual,
        evidence.mae,
        metric_name="mae",
        higher_is_better=False,
        baselines=list(BASELINES),
        seed=params.seed,
        block=block,
    )
    verdict["bootstrap"]["block_rule"] = (
        "round(n ** (1/3))" if params.evaluate.block is None else "lstm.evaluate.block"
    )
    dm_against(models, forecasts, days, verdict["best_baseline"])
    warnings = training_warnings(training, summary)
    for warning in warnings:
        logger.warning(warning)
    details = {
        "headline": headline_metrics(headline, models, verdict["best_baseline"]),
        "models": models,
        "test": period_card(days),
        "training": training,
        "data": data_card(card),
        "runtime": backend.describe(),
    }
    write_predictions(paths, days, forecasts)
    h = details["headline"]
    logger.info(
        f"{headline}: MAE {h['mae']:.4f}; Diebold-Mariano p={h['dm_pvalue_vs_naive']:.3f} vs naive "
        f"(MAE {h['naive_mae']:.4f}: {h['vs_naive']} at 5 %), "
        f"p={h['dm_pvalue_vs_best_baseline']:.3f} vs {h['best_baseline']} "
        f"(MAE {h['best_baseline_mae']:.4f})"
    )
    reports.announce(verdict)
    return Report.judged(
        verdict,
        test_rows=len(days.target),
        source=card["source"]["source"],
        runtime=summary["runtime"],
        warnings=warnings,
        details=details,
    )


def headline_metrics(headline: str, models: dict[str, dict], best_baseline: str) -> dict:
    """The headline cell against the naive forecast and the strongest baseline."""
    h = models[headline]
    return {
        "model": headline,
        "mae": h["mae"],
        "naive_mae": models["naive"]["mae"],
        "mae_vs_naive": h["mae_vs_naive"],
        "dm_stat_vs_naive": h["dm_stat_vs_naive"],
        "dm_pvalue_vs_naive": h["dm_pvalue_vs_naive"],
        "vs_naive": h["vs_naive"],
        "best_baseline": best_baseline,
        "best_baseline_mae": models[best_baseline]["mae"],
        "dm_stat_vs_best_baseline": h["dm_stat_vs_best_baseline"],
        "dm_pvalue_vs_best_baseline": h["dm_pvalue_vs_best_baseline"],
        "best_model": min(models, key=lambda k: models[k]["mae"]),
    }


def period_card(days: HeldOutDays) -> dict:
    moved = np.sign(days.actual - days.last_close)
    return {
        "days": len(days.target),
        "first_day": days.dates.iloc[int(days.target.min())],
        "last_day": days.dates.iloc[int(days.target.max())],
        "horizon_days": days.horizon,
        "up_share": float((moved > 0).mean()),
        "price_units": "adjusted close",
    }


def data_card(card: dict) -> dict:
    cleaning = ("out_of_order_rows", "duplicate_rows_dropped", "missing_values")
    return {
        **card["source"],
        "window": card["window"],
        "features": card["columns"],
        "days": card["days"],
        "cleaning": {k: card[k] for k in (*cleaning, "warmup_rows_dropped")},
    }


def write_predictions(paths: Paths, days: HeldOutDays, forecasts: dict[str, np.ndarray]) -> None:
    rows = pd.DataFrame(
        {
            "date": days.dates.iloc[days.target].to_numpy(),
            "origin_date": days.dates.iloc[days.origin].to_numpy(),
            "actual": days.actual,
            **forecasts,
        }
    )
    rows.to_csv(paths.predictions, index=False, float_format="%.6f")


if __name__ == "__main__":
    runner.main(evaluate, PROJECT)
