"""The plot stage: forecast vs actual, residuals over the test days and the training curves of every
recurrent cell, as DVC plot data (json) and as images."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..errors import UserError
from ..pipeline import runner
from ..pipeline.contract import Paths
from ..results.plots import read_live_history, save_figure, write_rows
from .project import PROJECT, PlotParams

History = dict[str, list[tuple[int, float]]]
CURVES = ("train/loss", "val/loss", "val/mae")


def forecast_figure(dates: pd.Series, rows: pd.DataFrame, models: list[str]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(12, 5))
    ax.plot(dates, rows["actual"], color="black", lw=2, label="actual")
    for m in models:
        ax.plot(dates, rows[m], lw=1, label=m)
    ax.set(title="test period: forecast vs actual close", ylabel="adjusted close")
    ax.legend()
    return fig


def residuals_figure(dates: pd.Series, rows: pd.DataFrame, models: list[str]) -> plt.Figure:
    fig, axes = plt.subplots(
        len(models), 1, figsize=(12, 1.8 * len(models)), sharex=True, sharey=True
    )
    for ax, m in zip(np.atleast_1d(axes), models):
        ax.plot(dates, rows[m] - rows["actual"], lw=0.8)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_ylabel(m)
    fig.suptitle("residuals (forecast - actual) over the test period")
    return fig


def training_figure(histories: dict[str, History]) -> plt.Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for cell, history in histories.items():
        for name, ax in zip(CURVES, (left, left, right)):
            if history.get(name):
                steps, values = zip(*history[name])
                ax.plot(steps, values, marker=".", label=f"{cell} {name}")
    left.set(xlabel="epoch", title="loss (scaled log return)")
    right.set(xlabel="epoch", title="validation MAE (scaled); early stopping watches it")
    left.legend()
    right.legend()
    return fig


def training_rows(histories: dict[str, History]) -> list[dict]:
    """One row per epoch with ``<cell>_train_loss``, ``<cell>_val_loss``, ``<cell>_val_mae``."""
    by_epoch: dict[int, dict] = {}
    for cell, history in histories.items():
        for name in CURVES:
            for step, value in history.get(name, []):
                by_epoch.setdefault(step, {"epoch": step})[f"{cell}_{name.replace('/', '_')}"] = (
                    value
                )
    return [by_epoch[e] for e in sorted(by_epoch)]


def plot(p: PlotParams, paths: Paths) -> None:
    rows = pd.read_csv(paths.predictions)
    models = [c for c in rows.columns if c not in ("date", "origin_date", "actual")]
    # The recurrent models are those with training curves; the rest are the baselines.
    histories = {m: read_live_history(paths.live / m) for m in models if (paths.live / m).is_dir()}
    if not histories or not all(histories.values()):
        raise UserError(
            f"{paths.live} lacks training curves for the models in {paths.predictions}; re-run "
            "`dvc repro lstm-train`"
        )

    # DVC's linear template wants a numeric x: the test day's number, with its date beside it.
    rows.insert(0, "day", np.arange(1, len(rows) + 1))
    residuals = rows[["day", "date"]].assign(**{m: rows[m] - rows["actual"] for m in models})
    write_rows(
        paths.figures / "forecast.json",
        rows[["day", "date", "actual", *models]].round(4).to_dict("records"),
    )
    write_rows(paths.figures / "residuals.json", residuals.round(4).to_dict("records"))
    write_rows(paths.figures / "training.json", training_rows(histories))

    dates = pd.to_datetime(rows["date"])
    save_figure(forecast_figure(dates, rows, models), paths.figures / "forecast.png")
    save_figure(residuals_figure(dates, rows, models), paths.figures / "residuals.png")
    save_figure(training_figure(histories), paths.figures / "training.png")


if __name__ == "__main__":
    runner.main(plot, PROJECT)
