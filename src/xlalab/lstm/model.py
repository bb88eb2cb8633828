"""The recurrent forecaster: an LSTM or GRU over a window of daily features, predicting the
scaled log return from the last day of the window to ``horizon`` days later.

The weights are always PyTorch's ``nn.LSTM`` / ``nn.GRU`` (their names and gate layout), so a
checkpoint from either backend loads and predicts the same on the other. How the time steps run
depends on the device (core/recurrent.py): the fused eager module on CPU and CUDA; on XLA the same
cell equations as one ``scan`` per layer, whose body is traced once instead of 60 times a step.
"""

from __future__ import annotations

from typing import get_args

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.recurrent import loops_in_graph, scan
from ..engine.task import Task
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
        if loops_in_graph(x):
            last = scanned_last_hidden(self.rnn, x)
        else:
            out, _ = self.rnn(x)
            last = out[:, -1]
        return self.head(last).squeeze(-1)


def _lstm_step(carry, gates_x):
    """One LSTM time step in nn.LSTM's gate order (input, forget, cell, output). ``gates_x`` is
    the input's projection with both biases, computed for every time step before the loop."""
    h, c, w_hh = carry
    i, f, g, o = (gates_x + F.linear(h, w_hh)).chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return (h, c, w_hh), h


def _gru_step(carry, gates_x):
    """One GRU time step in nn.GRU's gate order (reset, update, new). The hidden bias stays in
    the loop: nn.GRU applies the reset gate to the new gate's hidden projection with its bias."""
    h, w_hh, b_hh = carry
    x_r, x_z, x_n = gates_x.chunk(3, dim=1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    h = n + z * (h - n)  # (1 - z) * n + z * h
    return (h, w_hh, b_hh), h


def scanned_last_hidden(rnn: nn.LSTM | nn.GRU, x: torch.Tensor) -> torch.Tensor:
    """The top layer's hidden state after the last time step of ``x`` (batch, time, features),
    from ``rnn``'s own weights, one ``scan`` over time per layer; what ``rnn(x)[0][:, -1]``
    computes."""
    seq = x.transpose(0, 1)  # (time, batch, features): scan walks the leading dimension
    zeros = seq.new_zeros(seq.shape[1], rnn.hidden_size)
    for layer in range(rnn.num_layers):
        w_ih, w_hh, b_ih, b_hh = (
            getattr(rnn, f"{name}_l{layer}")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )
        if isinstance(rnn, nn.LSTM):
            (h, *_), seq = scan(_lstm_step, (zeros, zeros, w_hh), F.linear(seq, w_ih, b_ih + b_hh))
        else:
            (h, *_), seq = scan(_gru_step, (zeros, w_hh, b_hh), F.linear(seq, w_ih, b_ih))
        if layer < rnn.num_layers - 1:
            seq = F.dropout(seq, rnn.dropout, rnn.training)
    return h


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
