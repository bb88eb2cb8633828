"""The evaluate stage: every recurrent model, the naive forecast, a moving average and ARIMA on the
same test days in price units; Diebold-Mariano tests against the naive forecast; and the verdict:
the headline cell's MAE against the best of the baselines."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from ..core import launch, reports
from ..core.artifacts import load_trained, read_summary
from ..core.io import read_json, write_json
from ..core.loop import predict
from ..core.project import Paths
from ..core.runtime import make_backend
from .baselines import (
    arima_forecast,
    diebold_mariano,
    moving_average_forecast,
    naive_forecast,
    naive_scale,
)
from .model import build_model
from .project import PROJECT, SPLITS, EvaluateParams

logger = logging.getLogger(__name__)

BASELINES = ("naive", "moving_average", "arima")


def evaluate(p: EvaluateParams, paths: Paths) -> None:
    backend = make_backend(p.runtime)
    summary = read_summary(paths)
    cells, headline, target_scale = list(summary["models"]), summary["headline"], summary["target"]
    with np.load(paths.features / "windows.npz") as f:
        x, origin_all, target_all, split = f["x"], f["origin"], f["target"], f["split"]
    card = read_json(paths.features / "card.json")
    days = pd.read_csv(paths.features / "days.csv")
    close = days["Close"].to_numpy(np.float64)
    horizon = int(card["horizon"])
    test = split == SPLITS.index("test")
    origin, target = origin_all[test], target_all[test]
    actual, last_close = close[target], close[origin]
    train_days = int(card["days"]["train"])

    forecasts: dict[str, np.ndarray] = {}
    training: dict[str, dict] = {}
    for cell in cells:
        state, entry = load_trained(paths, cell)
        model = build_model(entry["config"])
        model.load_state_dict(state)
        scaled = (
            predict(
                model,
                {"x": torch.from_numpy(x[test])},
                backend,
                batch_size=256,
                desc=f"predict {cell}",
            )
            .numpy()
            .astype(np.float64)
        )
        log_return = scaled * target_scale["std"] + target_scale["mean"]
        forecasts[cell] = last_close * np.exp(log_return)
        training[cell] = {
            "best_epoch": entry["best_epoch"],
            "epochs_run": entry["epochs_run"],
            "stopped_early": entry["stopped_early"],
            "val_mae_scaled": entry["best"]["val/mae"],
        }
    e = p.evaluate
    forecasts["arima"], arima_info = arima_forecast(
        close,
        train_days,
        origin,
        horizon,
        e.arima.order,
        e.arima.max_p,
        e.arima.max_q,
        e.arima.select_days,
    )
    forecasts["naive"] = naive_forecast(close, origin)
    forecasts["moving_average"] = moving_average_forecast(close, origin, e.moving_average)

    naive_err = forecasts["naive"] - actual
    naive_mae = float(np.abs(naive_err).mean())
    scale = naive_scale(close, train_days, horizon)
    models = {}
    for name, predicted in forecasts.items():
        m = reports.forecasting(actual, predicted, last_close, naive_mae, scale)
        if name != "naive":
            stat, p_value = diebold_mariano(predicted - actual, naive_err, horizon)
            m.update(
                beats_naive=m["mae"] < naive_mae,
                dm_stat_vs_naive=stat,
                dm_pvalue_vs_naive=p_value,
                beats_naive_significantly=bool(m["mae"] < naive_mae and p_value < 0.05),
            )
        models[name] = m
    models["arima"].update(arima_info)

    verdict = reports.verdict(
        headline, {k: m["mae"] for k, m in models.items()}, BASELINES, "mae", higher_is_better=False
    )
    h = models[headline]
    moved = np.sign(actual - last_close)
    metrics = {
        "verdict": verdict,
        "headline": {
            "model": headline,
            "mae": h["mae"],
            "naive_mae": naive_mae,
            "mae_vs_naive": h["mae_vs_naive"],
            "beats_naive": bool(h["beats_naive"]),
            "dm_stat_vs_naive": h["dm_stat_vs_naive"],
            "dm_pvalue_vs_naive": h["dm_pvalue_vs_naive"],
            "beats_naive_significantly": h["beats_naive_significantly"],
            "best_model": min(models, key=lambda k: models[k]["mae"]),
        },
        "models": models,
        "test": {
            "days": int(test.sum()),
            "first_day": days["Date"].iloc[int(target.min())],
            "last_day": days["Date"].iloc[int(target.max())],
            "horizon_days": horizon,
            "up_share": float((moved > 0).mean()),
            "price_units": "adjusted close",
        },
        "training": training,
        "data": {
            **card["source"],
            "window": card["window"],
            "features": card["columns"],
            "days": card["days"],
            "cleaning": {
                k: card[k]
                for k in (
                    "out_of_order_rows",
                    "duplicate_rows_dropped",
                    "missing_values",
                    "warmup_rows_dropped",
                )
            },
        },
        "runtime": backend.describe(),
    }
    rows = pd.DataFrame(
        {
            "date": days["Date"].iloc[target].to_numpy(),
            "origin_date": days["Date"].iloc[origin].to_numpy(),
            "actual": actual,
            **forecasts,
        }
    )
    rows.to_csv(paths.predictions, index=False, float_format="%.6f")
    write_json(paths.metrics, metrics)
    significance = "significant" if h["dm_pvalue_vs_naive"] < 0.05 else "not significant"
    logger.info(
        f"{headline} vs naive: MAE {h['mae']:.4f} vs {naive_mae:.4f}, Diebold-Mariano "
        f"p={h['dm_pvalue_vs_naive']:.3f} ({significance})"
    )
    reports.announce(verdict)


if __name__ == "__main__":
    launch.main(PROJECT, "evaluate", evaluate)
