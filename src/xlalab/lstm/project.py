"""The lstm project: daily closes of one company, forecast by small recurrent nets and judged on the
same test days against the naive forecast, a moving average and ARIMA.

Every params check of the project lives here, in the ``Params`` classes of its stages.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

import pandas as pd

from ..engine.settings import Params, Runtime, TrainConfig
from ..pipeline.contract import Paths, Project
from ..pipeline.params import Field, Seed, Unique, field_validator, model_validator

Source = Literal["offline", "yfinance", "local"]
Feature = Literal[
    "log_return", "return", "sma", "ema", "rsi", "macd", "volatility", "volume_change"
]
Cell = Literal["lstm", "gru"]
Loss = Literal["mae", "mse", "huber"]

OFFLINE_TICKER = "MSFT"  # the only prices that ship offline (pmdarima)
SPLITS = ("train", "val", "test")  # chronological; features store a day's split as its index here


# --- download ---------------------------------------------------------------------------------
class Download(Params):
    source: Source
    ticker: str = Field(min_length=1)
    # YAML reads an unquoted 2008-01-01 as a date and a quoted one as text: both are accepted.
    start: datetime.date
    end: datetime.date  # exclusive, as in Yahoo's own API
    path: str  # local: a CSV in Yahoo's export layout

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date(cls, value: object) -> datetime.date:
        if isinstance(value, datetime.date):
            return value.date() if isinstance(value, datetime.datetime) else value
        try:
            return pd.Timestamp(str(value)).date()
        except (ValueError, TypeError):
            raise ValueError("must be a date written as YYYY-MM-DD") from None

    @field_validator("ticker")
    @classmethod
    def _ticker(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty; name a Yahoo symbol such as MSFT")
        return value.strip()

    @model_validator(mode="after")
    def _consistent(self) -> Download:
        if self.start >= self.end:
            raise ValueError(f"start {self.start} is not before end {self.end}; the range is empty")
        if self.source == "offline" and self.ticker.upper() != OFFLINE_TICKER:
            raise ValueError(
                f"the offline source ships {OFFLINE_TICKER} only, not {self.ticker!r}; set "
                f"ticker: {OFFLINE_TICKER} or source: yfinance"
            )
        return self


class DownloadParams(Params):
    download: Download


# --- featurize --------------------------------------------------------------------------------
class Indicators(Params):
    """Periods in days."""

    sma: int = Field(ge=2)
    ema: int = Field(ge=2)
    rsi: int = Field(ge=2)
    macd_fast: int = Field(ge=2)
    macd_slow: int = Field(ge=2)
    macd_signal: int = Field(ge=2)
    volatility: int = Field(ge=2)

    @model_validator(mode="after")
    def _macd(self) -> Indicators:
        if self.macd_fast >= self.macd_slow:
            raise ValueError(
                f"macd_fast {self.macd_fast} must be shorter than macd_slow {self.macd_slow}"
            )
        return self


class Split(Params):
    """Chronological shares of the days: train | val | test."""

    val: float = Field(ge=0.01, le=0.5)
    test: float = Field(ge=0.01, le=0.5)

    @model_validator(mode="after")
    def _room_to_train(self) -> Split:
        if self.val + self.test >= 0.9:
            raise ValueError(
                f"val {self.val} + test {self.test} leaves almost no training days; lower them"
            )
        return self


class Featurize(Params):
    dates: Literal["fix", "strict"]
    features: Annotated[list[Feature], Unique] = Field(min_length=1)
    indicators: Indicators
    split: Split


class FeaturizeParams(Params):
    window: int = Field(ge=1)  # days of history the model sees
    horizon: int = Field(ge=1)  # predict the close this many days after the window's last day
    featurize: Featurize


# --- train ------------------------------------------------------------------------------------
class Train(TrainConfig):
    """The loop's keys plus the recurrent net's."""

    cell: Cell  # the headline model
    compare_cells: list[Cell]  # trained in the same stage and evaluated beside it
    layers: int = Field(ge=1, le=8)
    hidden: int = Field(ge=1, le=4096)
    dropout: float = Field(ge=0.0, le=0.9)  # between stacked layers only
    loss: Loss  # early stopping always watches validation MAE

    @model_validator(mode="after")
    def _one_seed(self) -> Train:
        if "seed" in self.model_fields_set:  # the loop's own key would be overridden by lstm.seed
            raise ValueError("seed belongs at the top of the section (lstm.seed), not under train")
        return self

    @property
    def cells(self) -> list[str]:
        """The headline cell first, then the others (each once)."""
        return list(dict.fromkeys([self.cell, *self.compare_cells]))


class TrainParams(Params):
    seed: Seed
    train: Train
    runtime: Runtime


# --- evaluate ---------------------------------------------------------------------------------
ArimaOrder = Annotated[list[Annotated[int, Field(ge=0, le=5)]], Field(min_length=3, max_length=3)]


class Arima(Params):
    order: ArimaOrder | None  # [p, d, q]; None: auto_arima chooses on the last select_days days
    max_p: int = Field(ge=0, le=5)
    max_q: int = Field(ge=0, le=5)
    select_days: int = Field(ge=50)


class Evaluate(Params):
    moving_average: int = Field(ge=1)  # days averaged by the moving-average forecast
    arima: Arima
    # Consecutive test days per block of the verdict's bootstrap; None: round(n ** (1/3)) for n test
    # days (the rate that suits a block bootstrap's variance estimate).
    block: int | None = Field(ge=1)


# seed: the verdict's bootstrap resamples


class EvaluateParams(Params):
    seed: Seed
    evaluate: Evaluate
    runtime: Runtime


# --- plot -------------------------------------------------------------------------------------


class PlotParams(Params):
    """The models come from the predictions and the training logs; ``train.cell`` names the
    headline, and the band of the error against the naive forecast is a block bootstrap like the
    verdict's (``seed``, ``evaluate.block``)."""

    seed: Seed
    train: Train
    evaluate: Evaluate


PATHS = Paths.of("lstm")
MODELS = ["lstm", "gru", "arima", "naive", "moving_average"]

PROJECT = Project(
    "lstm",
    params={
        "download": DownloadParams,
        "featurize": FeaturizeParams,
        "train": TrainParams,
        "evaluate": EvaluateParams,
        "plot": PlotParams,
    },
    key_figures=("error_vs_naive.png", "forecast.png", "residuals.png"),
    plots=(
        {
            "lstm_error_vs_naive": {
                "template": "linear",
                "title": "lstm: sum of |error| - |naive error| over the test days, no-edge band",
                "x": "day",
                "y": {
                    PATHS.figure("error_vs_naive.json"): [
                        "no_edge_low",
                        "no_edge_high",
                        *(m for m in MODELS if m != "naive"),
                    ]
                },
                "x_label": "test day",
                "y_label": "$",
            }
        },
        {
            "lstm_forecast": {
                "template": "linear",
                "title": "lstm: forecast vs actual close over the test days (adjusted price)",
                "x": "day",
                "y": {PATHS.figure("forecast.json"): ["actual", *MODELS]},
                "x_label": "test day",
                "y_label": "close",
            }
        },
        {
            "lstm_residuals": {
                "template": "linear",
                "title": "lstm: residuals (forecast - actual) over the test days",
                "x": "day",
                "y": {PATHS.figure("residuals.json"): MODELS},
                "x_label": "test day",
                "y_label": "forecast - actual",
            }
        },
        {
            "lstm_training": {
                "template": "linear",
                "title": "lstm: training loss and validation MAE (scaled log return) per epoch",
                "x": "epoch",
                "y": {
                    PATHS.figure("training.json"): [
                        "lstm_train_loss",
                        "lstm_val_mae",
                        "gru_train_loss",
                        "gru_val_mae",
                    ]
                },
            }
        },
        {
            "lstm_headline_loss": {
                "template": "linear",
                "title": "lstm: DVCLive curves of the LSTM",
                "x": "step",
                "y": {
                    PATHS.series("train/loss", "lstm"): "loss",
                    PATHS.series("val/mae", "lstm"): "mae",
                },
            }
        },
        PATHS.figure("error_vs_naive.png"),
        PATHS.figure("forecast.png"),
        PATHS.figure("residuals.png"),
        PATHS.figure("training.png"),
    ),
)
