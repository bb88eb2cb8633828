"""The recurrent forecaster: an LSTM or GRU over a window of daily features, predicting the
scaled log return from the last day of the window to ``horizon`` days later."""
from __future__ import annotations

import torch
from torch import nn

from ..core.loop import Task

from .stages import CELLS, LOSSES  # noqa: F401  (the params' choices live with the params)


class RecurrentForecaster(nn.Module):
    def __init__(self, cell: str, n_features: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else _upstream_gru()
        self.rnn = rnn(n_features, hidden, num_layers=layers, batch_first=True,
                       dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).squeeze(-1)


def _upstream_gru() -> type[nn.GRU]:
    """PyTorch's own GRU. Importing torch_xla replaces ``nn.GRU`` process-wide with a scan-based
    GRU that only accepts XLA tensors, which would break the GRU on CPU or CUDA in any process that
    also imported torch_xla; the upstream module runs on every backend."""
    return getattr(nn.GRU, "_orig", None) or nn.GRU


def build_model(config: dict) -> RecurrentForecaster:
    return RecurrentForecaster(config["cell"], config["n_features"], config["hidden"], config["layers"],
                               config["dropout"])


def _per_row(kind: str):
    def loss(out: torch.Tensor, batch) -> torch.Tensor:
        if kind == "mse":
            return (out - batch["y"]) ** 2
        if kind == "huber":
            return nn.functional.huber_loss(out, batch["y"], reduction="none", delta=1.0)
        return (out - batch["y"]).abs()
    return loss


def forecast_task(loss: str) -> Task:
    """Train on ``loss``; early stopping and the best epoch always go by validation MAE."""
    return Task(loss=_per_row(loss), metrics={"mae": _per_row("mae")}, monitor="mae", mode="min")
