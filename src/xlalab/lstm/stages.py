"""The lstm pipeline: download -> featurize -> train -> evaluate -> plot (see dvc.yaml)."""
from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import UserError
from ..core.io import atomic_path, fingerprint, read_json, require_file, sha256_file, write_json
from ..core.params import get, section
from . import sources
from .baselines import (arima_forecast, diebold_mariano, forecast_metrics, moving_average_forecast, naive_forecast,
                        naive_scale)
from .data import DATE_MODES, FEATURES, SPLITS, featurize_prices

# torch, the training loop and plotting are imported by the stages that use them, so download
# and featurize start in a fraction of the time.
CELLS = ("lstm", "gru")
LOSSES = ("mae", "mse", "huber")

RAW = Path("data/lstm/raw")
FEATURES_DIR = Path("data/lstm/features")
MODELS = Path("models/lstm")
LIVE = Path("plots/lstm/train")
CHECKPOINTS = Path("checkpoints/lstm")
METRICS = Path("metrics/lstm.json")
PREDICTIONS = Path("data/lstm/predictions.csv")
PLOTS = Path("plots/lstm")


# --- params ---------------------------------------------------------------------------------
def download_params(params: dict) -> dict:
    p = section(params, "lstm")
    source = get(p, "source", str, "lstm", choices=sources.SOURCES)
    ticker = get(p, "ticker", str, "lstm").strip()
    if not ticker:
        raise UserError("`lstm.ticker` is empty; name a Yahoo symbol such as MSFT")
    # YAML reads an unquoted 2008-01-01 as a date: accept both spellings.
    start = sources.checked_date(get(p, "start", (str, datetime.date), "lstm"), "lstm.start")
    end = sources.checked_date(get(p, "end", (str, datetime.date), "lstm"), "lstm.end")
    if pd.Timestamp(start) >= pd.Timestamp(end):
        raise UserError(f"`lstm.start` {start} is not before `lstm.end` {end}; the range is empty")
    return {"source": source, "ticker": ticker, "start": start, "end": end,
            "path": get(p, "path", str, "lstm")}


def featurize_params(params: dict) -> dict:
    p = section(params, "lstm")
    features = get(p, "features", list, "lstm")
    unknown = [f for f in features if f not in FEATURES]
    if not features or unknown:
        raise UserError(f"`lstm.features` has {unknown or 'nothing'}; choose from: {', '.join(FEATURES)}")
    if len(set(features)) != len(features):
        raise UserError("`lstm.features` names a feature twice; list each once")
    ind = section(params, "lstm", "indicators")
    periods = {k: get(ind, k, int, "lstm.indicators", min=2) for k in
               ("sma", "ema", "rsi", "macd_fast", "macd_slow", "macd_signal", "volatility")}
    if periods["macd_fast"] >= periods["macd_slow"]:
        raise UserError("`lstm.indicators.macd_fast` must be shorter than `macd_slow`")
    split = section(params, "lstm", "split")
    val = get(split, "val", float, "lstm.split", min=0.01, max=0.5)
    test = get(split, "test", float, "lstm.split", min=0.01, max=0.5)
    if val + test >= 0.9:
        raise UserError(f"`lstm.split` val {val} + test {test} leaves almost no training days; lower them")
    return {"features": features, "periods": periods, "val": val, "test": test,
            "window": get(p, "window", int, "lstm", min=1), "horizon": get(p, "horizon", int, "lstm", min=1),
            "dates": get(p, "dates", str, "lstm", choices=DATE_MODES)}


def cells_param(params: dict) -> list[str]:
    """The headline cell first, then the others trained beside it (lstm.cell, lstm.compare_cells)."""
    p = section(params, "lstm")
    cell = get(p, "cell", str, "lstm", choices=CELLS)
    others = get(p, "compare_cells", list, "lstm")
    bad = [c for c in others if c not in CELLS]
    if bad:
        raise UserError(f"`lstm.compare_cells` has {bad}; choose from: {', '.join(CELLS)}")
    return list(dict.fromkeys([cell, *others]))


def train_params(params: dict) -> dict:
    from ..core.loop import TrainConfig

    p = section(params, "lstm")
    seed = get(p, "seed", int, "lstm", min=0)
    return {"cells": cells_param(params), "layers": get(p, "layers", int, "lstm", min=1, max=8),
            "hidden": get(p, "hidden", int, "lstm", min=1, max=4096),
            "dropout": get(p, "dropout", float, "lstm", min=0.0, max=0.9),
            "loss": get(p, "loss", str, "lstm", choices=LOSSES), "seed": seed,
            "loop": TrainConfig.from_params(section(params, "lstm", "train"), "lstm.train", seed)}


def evaluate_params(params: dict) -> dict:
    p = section(params, "lstm")
    arima = section(params, "lstm", "arima")
    order = get(arima, "order", list, "lstm.arima", allow_none=True)
    if order is not None and (len(order) != 3 or not all(isinstance(v, int) and 0 <= v <= 5 for v in order)):
        raise UserError(f"`lstm.arima.order` is {order!r}; give [p, d, q] with integers 0..5, or null for auto")
    return {"cells": cells_param(params), "moving_average": get(p, "moving_average", int, "lstm", min=1),
            "order": order, "max_p": get(arima, "max_p", int, "lstm.arima", min=0, max=5),
            "max_q": get(arima, "max_q", int, "lstm.arima", min=0, max=5),
            "select_days": get(arima, "select_days", int, "lstm.arima", min=50)}


# --- stages ---------------------------------------------------------------------------------
def download(params: dict, *, raw_dir: Path = RAW) -> list[Path]:
    cfg = download_params(params)
    prices = sources.load_prices(**cfg)
    what = {"offline": "MSFT daily prices as shipped in pmdarima (pmdarima.datasets.load_msft)",
            "yfinance": f"{cfg['ticker']} daily prices from Yahoo Finance, auto-adjusted",
            "local": f"prices read from {cfg['path']} (Yahoo export layout)"}[cfg["source"]]
    with atomic_path(raw_dir, is_dir=True) as tmp:
        prices.to_csv(tmp / "prices.csv", index=False, date_format="%Y-%m-%d")
        card = {"source": cfg["source"], "ticker": cfg["ticker"] if cfg["source"] != "local" else None,
                "range": {"start": cfg["start"], "end_exclusive": cfg["end"]}, **sources.describe(prices),
                "sha256": sha256_file(tmp / "prices.csv"), "licence": sources.LICENCES[cfg["source"]],
                "what_it_is": what + "; one row per trading day, Close adjusted for splits and dividends.",
                "what_it_is_not": "not intraday, not survivorship-free, not an investment signal; the offline "
                                  "copy stops on 2017-11-10 and is not updated."}
        write_json(tmp / "card.json", card)
    return [raw_dir]


def featurize(params: dict, *, raw_dir: Path = RAW, features_dir: Path = FEATURES_DIR) -> list[Path]:
    cfg = featurize_params(params)
    prices_csv = require_file(raw_dir / "prices.csv", "python -m xlalab lstm download")
    source_card = read_json(raw_dir / "card.json")
    prices = pd.read_csv(prices_csv)
    table, windows, report = featurize_prices(prices, cfg["features"], cfg["periods"], cfg["window"],
                                              cfg["horizon"], cfg["val"], cfg["test"], cfg["dates"])
    report["source"] = {k: source_card.get(k) for k in ("source", "ticker", "range", "sha256", "licence")}
    with atomic_path(features_dir, is_dir=True) as tmp:
        table.to_csv(tmp / "days.csv", index=False, date_format="%Y-%m-%d")
        np.savez(tmp / "windows.npz", x=windows.x, y=windows.y, origin=windows.origin, target=windows.target,
                 split=windows.split)
        write_json(tmp / "card.json", report)
    return [features_dir]


def _load_windows(features_dir: Path) -> tuple[dict[str, np.ndarray], dict]:
    npz = require_file(features_dir / "windows.npz", "python -m xlalab lstm featurize")
    with np.load(npz) as f:
        arrays = {k: f[k] for k in f.files}
    return arrays, read_json(features_dir / "card.json")


def _split_tensors(arrays: dict[str, np.ndarray], split: str) -> dict:
    import torch

    mask = arrays["split"] == SPLITS.index(split)
    return {"x": torch.from_numpy(arrays["x"][mask]), "y": torch.from_numpy(arrays["y"][mask])}


def train(params: dict, *, features_dir: Path = FEATURES_DIR, models_dir: Path = MODELS, live_dir: Path = LIVE,
          checkpoint_dir: Path = CHECKPOINTS) -> list[Path]:
    import torch

    from ..core.loop import fit
    from .model import build_model, forecast_task

    cfg = train_params(params)
    backend = _backend(params)
    arrays, card = _load_windows(features_dir)
    train_set, val_set = _split_tensors(arrays, "train"), _split_tensors(arrays, "val")
    task = forecast_task(cfg["loss"])
    with atomic_path(models_dir, is_dir=True) as tmp_models, atomic_path(live_dir, is_dir=True) as tmp_live:
        for cell in cfg["cells"]:
            config = {"cell": cell, "n_features": int(arrays["x"].shape[2]), "hidden": cfg["hidden"],
                      "layers": cfg["layers"], "dropout": cfg["dropout"]}
            backend.seed(cfg["seed"])  # the same initial draw for the same params
            model = build_model(config)
            run_params = {**config, "loss": cfg["loss"], "loop": vars(cfg["loop"])}
            result = fit(model, train_set, val_set, task, cfg["loop"], backend, live_dir=tmp_live / cell,
                         checkpoint=checkpoint_dir / f"last_{cell}.pt", desc=f"train {cell}",
                         fingerprint=fingerprint(run_params, files=(features_dir / "windows.npz",)))
            if backend.is_main:
                torch.save({"config": config, "state": result.best_state, "best_epoch": result.best_epoch,
                            "epochs_run": len(result.history), "stopped_early": result.stopped_early,
                            "history": result.history, "target": card["target"]}, tmp_models / f"{cell}.pt")
            # The checkpoint exists to resume a killed run; a finished run must not be "resumed"
            # past its early stop by the next one.
            (checkpoint_dir / f"last_{cell}.pt").unlink(missing_ok=True)
    return [models_dir, live_dir]


def _backend(params: dict):
    import torch

    from ..core.runtime import make_backend

    backend = make_backend(section(params, "runtime"))
    if backend.device_type == "cpu":
        # A recurrent net this small runs its time steps one after another: a second intra-op
        # thread only adds synchronisation, and on a busy machine it is several times slower.
        torch.set_num_threads(1)
    return backend


def _load_model(models_dir: Path, cell: str) -> dict:
    import torch

    path = require_file(models_dir / f"{cell}.pt", "python -m xlalab lstm train")
    return torch.load(path, map_location="cpu", weights_only=False)


def evaluate(params: dict, *, features_dir: Path = FEATURES_DIR, models_dir: Path = MODELS,
             metrics_file: Path = METRICS, predictions_file: Path = PREDICTIONS) -> list[Path]:
    import torch

    from ..core.loop import predict
    from .model import build_model

    cfg = evaluate_params(params)
    cells = cfg["cells"]
    backend = _backend(params)
    arrays, card = _load_windows(features_dir)
    days = pd.read_csv(require_file(features_dir / "days.csv", "python -m xlalab lstm featurize"))
    close = days["Close"].to_numpy(np.float64)
    horizon = int(card["horizon"])
    test = arrays["split"] == SPLITS.index("test")
    origin, target = arrays["origin"][test], arrays["target"][test]
    actual, last_close = close[target], close[origin]
    train_days = int(card["days"]["train"])

    forecasts: dict[str, np.ndarray] = {}
    training: dict[str, dict] = {}
    for cell in cells:
        saved = _load_model(models_dir, cell)
        model = build_model(saved["config"])
        model.load_state_dict(saved["state"])
        scaled = predict(model, {"x": torch.from_numpy(arrays["x"][test])}, backend, batch_size=256,
                         desc=f"predict {cell}").numpy().astype(np.float64)
        log_return = scaled * saved["target"]["std"] + saved["target"]["mean"]
        forecasts[cell] = last_close * np.exp(log_return)
        training[cell] = {"best_epoch": saved["best_epoch"], "epochs_run": saved["epochs_run"],
                          "stopped_early": saved["stopped_early"],
                          "val_mae_scaled": saved["history"][saved["best_epoch"] - 1]["val/mae"]}
    forecasts["arima"], arima_info = arima_forecast(close, train_days, origin, horizon, cfg["order"], cfg["max_p"],
                                                    cfg["max_q"], cfg["select_days"])
    forecasts["naive"] = naive_forecast(close, origin)
    forecasts["moving_average"] = moving_average_forecast(close, origin, cfg["moving_average"])

    naive_err = forecasts["naive"] - actual
    naive_mae = float(np.abs(naive_err).mean())
    scale = naive_scale(close, train_days, horizon)
    models = {}
    for name, predicted in forecasts.items():
        m = forecast_metrics(actual, predicted, last_close, naive_mae, scale)
        if name != "naive":
            stat, p_value = diebold_mariano(predicted - actual, naive_err, horizon)
            m.update(beats_naive=m["mae"] < naive_mae, dm_stat_vs_naive=stat, dm_pvalue_vs_naive=p_value,
                     beats_naive_significantly=bool(m["mae"] < naive_mae and p_value < 0.05))
        models[name] = m
    models["arima"].update(arima_info)
    headline = cells[0]
    best = min(models, key=lambda k: models[k]["mae"])
    h = models[headline]
    significance = ("the difference is significant" if h["dm_pvalue_vs_naive"] < 0.05
                    else "the difference is not significant")
    verdict = (f"{headline} MAE {h['mae']:.4f} vs naive {naive_mae:.4f}: "
               f"{'beats' if h['beats_naive'] else 'does not beat'} the naive forecast "
               f"(Diebold-Mariano p={h['dm_pvalue_vs_naive']:.3f}, {significance})")
    moved = np.sign(actual - last_close)
    metrics = {
        "headline": {"model": headline, "mae": models[headline]["mae"], "naive_mae": naive_mae,
                     "mae_vs_naive": models[headline]["mae_vs_naive"],
                     "beats_naive": bool(models[headline]["beats_naive"]),
                     "beats_naive_significantly": models[headline]["beats_naive_significantly"],
                     "best_model": best, "verdict": verdict},
        "models": models,
        "test": {"days": int(test.sum()), "first_day": days["Date"].iloc[int(target.min())],
                 "last_day": days["Date"].iloc[int(target.max())], "horizon_days": horizon,
                 "up_share": float((moved > 0).mean()), "price_units": "adjusted close"},
        "training": training,
        "data": {**card["source"], "window": card["window"], "features": card["columns"],
                 "days": card["days"], "cleaning": {k: card[k] for k in ("out_of_order_rows", "duplicate_rows_dropped",
                                                                          "missing_values", "warmup_rows_dropped")}},
        "runtime": backend.describe(),
    }
    rows = pd.DataFrame({"date": days["Date"].iloc[target].to_numpy(), "origin_date": days["Date"].iloc[origin]
                         .to_numpy(), "actual": actual, **forecasts})
    with atomic_path(predictions_file) as tmp:
        rows.to_csv(tmp, index=False, float_format="%.6f")
    write_json(metrics_file, metrics)
    print(verdict)
    return [metrics_file, predictions_file]


def plot(params: dict, *, predictions_file: Path = PREDICTIONS, live_dir: Path = LIVE, plots_dir: Path = PLOTS
         ) -> list[Path]:
    import matplotlib.pyplot as plt

    from ..core.plots import read_live_history, save_figure, write_rows

    cells = cells_param(params)
    rows = pd.read_csv(require_file(predictions_file, "python -m xlalab lstm evaluate"))
    models = [c for c in rows.columns if c not in ("date", "origin_date", "actual")]
    histories = {cell: read_live_history(live_dir / cell) for cell in cells}
    if not all(histories.values()):
        raise UserError(f"{live_dir} lacks training curves for {cells}; re-run `python -m xlalab lstm train`")

    # DVC's linear template wants a numeric x: the test day's number, with its date beside it.
    rows.insert(0, "day", np.arange(1, len(rows) + 1))
    forecast_rows = rows[["day", "date", "actual", *models]].round(4).to_dict("records")
    residual_rows = [{"day": r["day"], "date": r["date"], **{m: round(r[m] - r["actual"], 4) for m in models}}
                     for r in rows.to_dict("records")]
    training_rows = []
    for cell, history in histories.items():
        by_epoch: dict[int, dict] = {}
        for name in ("train/loss", "val/loss", "val/mae"):
            for step, value in history.get(name, []):
                by_epoch.setdefault(step, {"epoch": step})[f"{cell}_{name.replace('/', '_')}"] = value
        for epoch, row in sorted(by_epoch.items()):
            if len(training_rows) < epoch:
                training_rows.append({"epoch": epoch})
            training_rows[epoch - 1].update(row)

    out = [write_rows(plots_dir / "forecast.json", forecast_rows),
           write_rows(plots_dir / "residuals.json", residual_rows),
           write_rows(plots_dir / "training.json", training_rows)]

    dates = pd.to_datetime(rows["date"])
    fig, ax = plt.subplots(figsize=(12, 5))
    ax.plot(dates, rows["actual"], color="black", lw=2, label="actual")
    for m in models:
        ax.plot(dates, rows[m], lw=1, label=m)
    ax.set(title="test period: forecast vs actual close", ylabel="adjusted close")
    ax.legend()
    out.append(save_figure(fig, plots_dir / "forecast.png"))

    fig, axes = plt.subplots(len(models), 1, figsize=(12, 1.8 * len(models)), sharex=True, sharey=True)
    for ax, m in zip(np.atleast_1d(axes), models):
        ax.plot(dates, rows[m] - rows["actual"], lw=0.8)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_ylabel(m)
    fig.suptitle("residuals (forecast - actual) over the test period")
    out.append(save_figure(fig, plots_dir / "residuals.png"))

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for cell, history in histories.items():
        for name, ax in (("train/loss", left), ("val/loss", left), ("val/mae", right)):
            if history.get(name):
                steps, values = zip(*history[name])
                ax.plot(steps, values, marker=".", label=f"{cell} {name}")
    left.set(xlabel="epoch", title="loss (scaled log return)")
    right.set(xlabel="epoch", title="validation MAE (scaled); early stopping watches it")
    left.legend()
    right.legend()
    out.append(save_figure(fig, plots_dir / "training.png"))
    return out


STAGES = {"download": download, "featurize": featurize, "train": train, "evaluate": evaluate, "plot": plot}
