"""The plot stage: where the forecasts differ from the naive one, the prices, the errors and the
training curves, from the evaluate stage's predictions.

What it draws (no metrics file is read):

* ``error_vs_naive.png`` (the key figure): each model's absolute error minus the naive forecast's,
  added up over the test days, beside the band that 95 % of such sums stay in when the headline
  model has no edge over the naive forecast (a block bootstrap of its centred daily differences,
  with the verdict's block length). A curve below the band beats the naive forecast; inside it,
  the difference is what chance gives.
* ``forecast.png``: the whole test period (actual and headline forecast), and the last
  ``ZOOM_DAYS`` test days with every forecast, where a day's step can be seen.
* ``residuals.png``: the distribution of every model's forecast error, in one axes.
* ``training.png``: the training curves of every recurrent cell.

Each title says what its figure shows, in numbers from the predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import UserError
from ..pipeline import runner
from ..pipeline.contract import Paths
from ..results import evidence
from ..results.plots import (
    finding,
    listing,
    place_legend,
    plt,
    read_live_history,
    save_figure,
    write_rows,
)
from .project import PROJECT, PlotParams

History = dict[str, list[tuple[int, float]]]
CURVES = ("train/loss", "val/loss", "val/mae")
NAIVE = "naive"
ZOOM_DAYS = 30  # short enough that one day's step can be seen
# A model whose summed difference from the naive forecast ends beyond this many band widths is
# drawn off the scale (named in the legend with where it ends), so the close ones stay readable.
OFF_SCALE = 4.0
LABELS = {
    "lstm": "LSTM",
    "gru": "GRU",
    "arima": "ARIMA",
    NAIVE: "naive",
    "moving_average": "moving average",
}


def label(model: str) -> str:
    return LABELS.get(model, model)


# --- error against the naive forecast -------------------------------------------------------------
@dataclass
class AgainstNaive:
    """Each model's absolute error minus the naive forecast's, added up day by day, and the band a
    model with the headline's day-to-day spread but no edge would stay in."""

    cumulative: dict[str, np.ndarray]  # model -> running sum over the test days ($)
    band: np.ndarray  # (2, days): 2.5 % and 97.5 % of the no-edge sums at each day
    headline: str
    block: int

    @property
    def days(self) -> int:
        return len(self.band[0])

    def outcome(self, model: str) -> str:
        """beats (ends below the band), loses (above it) or ties, on the last day."""
        end = self.cumulative[model][-1]
        low, high = self.band[:, -1]
        return "beats" if end < low else "loses" if end > high else "ties"


def against_naive(
    rows: pd.DataFrame, models: list[str], headline: str, block: int, seed: int
) -> AgainstNaive:
    naive_error = np.abs(rows[NAIVE] - rows["actual"]).to_numpy()
    daily = {m: np.abs(rows[m] - rows["actual"]).to_numpy() - naive_error for m in models}
    # The no-edge band: the headline's daily differences centred on 0 (same spread and short-range
    # dependence, no drift), resampled in blocks of consecutive days as the verdict does.
    centred = daily[headline] - daily[headline].mean()
    n = len(centred)
    sums = np.array(
        [np.cumsum(centred[r]) for r in evidence.resampled_rows(n, evidence.RESAMPLES, seed, block)]
    )
    band = np.percentile(sums, [2.5, 97.5], axis=0)
    return AgainstNaive({m: np.cumsum(d) for m, d in daily.items()}, band, headline, block)


def against_naive_title(a: AgainstNaive) -> str:
    end = a.cumulative[a.headline][-1]
    low, high = a.band[:, -1]
    name = label(a.headline)
    direction = "less" if end < 0 else "more"
    lead = {
        "beats": f"{name} beats the naive forecast",
        "loses": f"{name} does worse than the naive forecast",
        "ties": f"{name} ties with the naive forecast",
    }[a.outcome(a.headline)]
    others = [m for m in a.cumulative if m != a.headline]
    beating = [label(m) for m in others if a.outcome(m) == "beats"]
    tail = (
        f"; beyond chance below it: {listing(beating)}"
        if beating
        else "; no model ends below the band"
    )
    return (
        f"lstm: {lead}: its absolute errors add up to {abs(end):.2f} $ {direction} over "
        f"{a.days} test days (no-edge band [{low:+.2f}, {high:+.2f}] $){tail}"
    )


def against_naive_figure(a: AgainstNaive, dates: pd.Series) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(12, 5))
    ax.fill_between(
        dates,
        a.band[0],
        a.band[1],
        color="#cccccc",
        alpha=0.6,
        label=f"95 % of sums with no edge ({label(a.headline)}'s spread, blocks of {a.block} days)",
    )
    ax.axhline(0, color="black", lw=0.8)
    width = float(np.max(a.band[1] - a.band[0]))
    on_scale = [m for m in a.cumulative if abs(a.cumulative[m][-1]) <= OFF_SCALE * width]
    for model, running in a.cumulative.items():
        end = running[-1]
        lw = 2.2 if model == a.headline else 1.2
        name = f"{label(model)} (ends {end:+.2f} $)"
        if model not in on_scale:
            name += ", off the scale"
        ax.plot(dates, running, lw=lw, label=name)
    shown = np.concatenate([a.band.ravel(), *(a.cumulative[m] for m in on_scale)])
    pad = 0.1 * (shown.max() - shown.min())
    ax.set_ylim(shown.min() - pad, shown.max() + pad)
    ax.set(
        ylabel="sum of |error| - |naive error| ($)",
        xlabel="test day (forecast for)",
    )
    finding(fig, against_naive_title(a))
    fig.tight_layout()
    place_legend(ax, fontsize=8)
    return fig


# --- prices ---------------------------------------------------------------------------------------
def forecast_title(rows: pd.DataFrame, headline: str, zoom: pd.DataFrame) -> str:
    """How far the headline forecast moves from the last close, against how far the close moves."""
    forecast_move = np.median(np.abs(zoom[headline] - zoom[NAIVE]))
    actual_move = np.median(np.abs(zoom["actual"] - zoom[NAIVE]))
    mae = float(np.abs(rows[headline] - rows["actual"]).mean())
    # A forecast that moves less than half as far as the price is mostly yesterday's close.
    reading = (
        "it follows the price a day late, like the naive forecast"
        if forecast_move < 0.5 * actual_move
        else "it moves about as much as the price"
    )
    return (
        f"lstm: in the last {len(zoom)} test days {label(headline)} forecasts stay a median "
        f"{forecast_move:.2f} $ from the last close while the close moves {actual_move:.2f} $ "
        f"a day: {reading} (MAE {mae:.2f} $ over all {len(rows)} days)"
    )


def forecast_figure(dates: pd.Series, rows: pd.DataFrame, models: list[str], headline: str):
    zoom = rows.iloc[-ZOOM_DAYS:]
    zoom_dates = dates.iloc[-ZOOM_DAYS:]
    fig, (whole, near) = plt.subplots(
        2, 1, figsize=(12, 8), gridspec_kw={"height_ratios": [1, 1.3]}
    )
    whole.plot(dates, rows["actual"], color="black", lw=1.2, label="actual close")
    whole.plot(dates, rows[headline], color="tab:blue", lw=0.8, label=f"{label(headline)} forecast")
    whole.axvspan(zoom_dates.iloc[0], zoom_dates.iloc[-1], color="#f2d16b", alpha=0.5, lw=0)
    whole.set(ylabel="adjusted close ($)", title=f"all {len(rows)} test days; shaded: below")
    near.plot(
        zoom_dates, zoom["actual"], color="black", lw=2, marker="o", ms=4, label="actual close"
    )
    for model in models:
        near.plot(
            zoom_dates,
            zoom[model],
            lw=2 if model == headline else 1,
            marker=".",
            label=label(model),
        )
    near.set(ylabel="adjusted close ($)", title=f"the last {len(zoom)} test days")
    finding(fig, forecast_title(rows, headline, zoom))
    fig.tight_layout()
    place_legend(whole, fontsize=8)
    place_legend(near, fontsize=8)
    return fig


# --- errors ---------------------------------------------------------------------------------------
def residuals_title(rows: pd.DataFrame, models: list[str]) -> str:
    mae = {m: float(np.abs(rows[m] - rows["actual"]).mean()) for m in models}
    naive = mae[NAIVE]
    alike = [m for m in models if abs(mae[m] / naive - 1) < 0.05]
    apart = [m for m in models if m not in alike]
    low, high = min(mae[m] for m in alike), max(mae[m] for m in alike)
    text = (
        f"lstm: the errors of {listing([label(m) for m in alike])} are alike "
        f"(MAE {low:.3f}-{high:.3f} $, within 5 % of naive)"
    )
    if apart:
        text += "; " + ", ".join(f"{label(m)}'s MAE is {mae[m] / naive:.2f}x naive" for m in apart)
    return text


def residuals_figure(rows: pd.DataFrame, models: list[str]) -> plt.Figure:
    """One box per model: the middle half of its errors (forecast - actual), whiskers at 2.5 and
    97.5 %, with its MAE."""
    errors = [(rows[m] - rows["actual"]).to_numpy() for m in models]
    fig, ax = plt.subplots(figsize=(10, 0.7 * len(models) + 1.8))
    ax.boxplot(
        errors,
        orientation="horizontal",
        whis=(2.5, 97.5),
        showfliers=False,
        tick_labels=[label(m) for m in models],
        medianprops={"color": "black"},
    )
    for row, e in enumerate(errors, start=1):
        ax.annotate(
            f"MAE {np.abs(e).mean():.3f} $",
            (1.0, row),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.axvline(0, color="grey", lw=0.8, ls=":")
    ax.invert_yaxis()
    ax.set(xlabel="forecast - actual close ($); box: middle half, whiskers: 2.5-97.5 %")
    finding(fig, residuals_title(rows, models))
    fig.tight_layout()
    return fig


# --- training -------------------------------------------------------------------------------------
def training_title(histories: dict[str, History]) -> str:
    """Each cell's best epoch and how much validation MAE improved on its first epoch."""
    parts = []
    for cell, history in histories.items():
        series = history.get("val/mae") or []
        if not series:
            continue
        steps, values = zip(*series)
        best = int(np.argmin(values))
        gain = 1 - values[best] / values[0]
        parts.append(
            f"{label(cell)} best at epoch {steps[best]} of {steps[-1]}, "
            f"{100 * gain:.1f} % below epoch {steps[0]}"
        )
    return "lstm: validation MAE: " + "; ".join(parts)


def training_figure(histories: dict[str, History]) -> plt.Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for colour, (cell, history) in enumerate(histories.items()):
        for name, ax in zip(CURVES, (left, left, right)):
            if history.get(name):
                steps, values = zip(*history[name])
                style = "--" if name == "train/loss" else "-"  # one colour per cell
                ax.plot(
                    steps,
                    values,
                    style,
                    marker=".",
                    color=f"C{colour}",
                    label=f"{label(cell)} {name}",
                )
    left.set(xlabel="epoch", title="loss (scaled log return)")
    right.set(xlabel="epoch", title="validation MAE (scaled); early stopping watches it")
    finding(fig, training_title(histories))
    fig.tight_layout()
    place_legend(left, fontsize=8)
    place_legend(right, fontsize=8)
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


def read_forecasts(paths: Paths, headline: str) -> tuple[pd.DataFrame, list[str]]:
    """The evaluate stage's predictions and the models in them (every column but the dates and
    the actual close)."""
    rows = pd.read_csv(paths.predictions)
    models = [c for c in rows.columns if c not in ("date", "origin_date", "actual")]
    missing = [m for m in (headline, NAIVE) if m not in models]
    if missing or rows.empty:
        raise UserError(
            f"{paths.predictions} lacks the forecasts of {missing or 'any day'}; re-run "
            "`dvc repro lstm-evaluate`"
        )
    return rows, models


def plot(params: PlotParams, paths: Paths) -> None:
    headline = params.train.cell
    rows, models = read_forecasts(paths, headline)
    # The recurrent models are those with training curves; the rest are the baselines.
    histories = {m: read_live_history(paths.live / m) for m in models if (paths.live / m).is_dir()}
    if not histories or not all(histories.values()):
        raise UserError(
            f"{paths.live} lacks training curves for the models in {paths.predictions}; re-run "
            "`dvc repro lstm-train`"
        )
    compared = [m for m in models if m != NAIVE]
    block = evidence.block_length(len(rows), params.evaluate.block)
    against = against_naive(rows, compared, headline, block, params.seed)

    # DVC's linear template wants a numeric x: the test day's number, with its date beside it.
    rows.insert(0, "day", np.arange(1, len(rows) + 1))
    residuals = rows[["day", "date"]].assign(**{m: rows[m] - rows["actual"] for m in models})
    write_rows(
        paths.figures / "forecast.json",
        rows[["day", "date", "actual", *models]].round(4).to_dict("records"),
    )
    write_rows(paths.figures / "residuals.json", residuals.round(4).to_dict("records"))
    write_rows(
        paths.figures / "error_vs_naive.json",
        rows[["day", "date"]]
        .assign(
            no_edge_low=against.band[0],
            no_edge_high=against.band[1],
            **{m: s for m, s in against.cumulative.items()},
        )
        .round(4)
        .to_dict("records"),
    )
    write_rows(paths.figures / "training.json", training_rows(histories))

    dates = pd.to_datetime(rows["date"])
    save_figure(against_naive_figure(against, dates), paths.figures / "error_vs_naive.png")
    save_figure(forecast_figure(dates, rows, models, headline), paths.figures / "forecast.png")
    save_figure(residuals_figure(rows, models), paths.figures / "residuals.png")
    save_figure(training_figure(histories), paths.figures / "training.png")


if __name__ == "__main__":
    runner.main(plot, PROJECT)
