"""The recurrent forecaster: an LSTM or GRU over a window of daily features, predicting the
scaled log return from the last day of the window to ``horizon`` days later."""

from __future__ import annotations

from typing import get_args

import torch
from torch import nn

from ..core.task import Task
from .project import Cell

CELLS = get_args(Cell)  # the choices the params accept (project.py's Literal)


def _upstream_gru() -> type[nn.GRU]:
    """PyTorch's own GRU. Importing torch_xla replaces ``nn.GRU`` process-wide with a scan-based
    GRU that only accepts XLA tensors, which would break the GRU on CPU or CUDA in any process that
    also imported torch_xla; the upstream module runs on every backend."""
    return getattr(nn.GRU, "_orig", None) or nn.GRU


class RecurrentForecaster(nn.Module):
    def __init__(self, cell: str, n_features: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        if cell == "lstm":
            rnn = nn.LSTM
        elif cell == "gru":
            rnn = _upstream_gru()
        else:
            raise ValueError(f"unknown recurrent cell {cell!r}; choose one of {', '.join(CELLS)}")
        self.rnn = rnn(
            n_features,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).squeeze(-1)


def build_model(config: dict) -> RecurrentForecaster:
    return RecurrentForecaster(
        config["cell"], config["n_features"], config["hidden"], config["layers"], config["dropout"]
    )


PER_ROW_LOSSES = {
    "mae": lambda out, y: (out - y).abs(),
    "mse": lambda out, y: (out - y) ** 2,
    "huber": lambda out, y: nn.functional.huber_loss(out, y, reduction="none", delta=1.0),
}


def _per_row(kind: str):
    if kind not in PER_ROW_LOSSES:
        raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(PER_ROW_LOSSES)}")
    fn = PER_ROW_LOSSES[kind]
    return lambda out, batch: fn(out, batch["y"])


def forecast_task(loss: str) -> Task:
    """Train on ``loss``; early stopping and the best epoch always go by validation MAE."""
    return Task(loss=_per_row(loss), metrics={"mae": _per_row("mae")}, monitor="mae", mode="min")
