"""The plot stage: confusion matrix, training curves and a grid of test predictions.

Everything goes to ``paths.figures``: the confusion matrix (png, and its rows
for DVC's confusion template), the training curves and a grid of test predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import UserError
from ..pipeline import runner
from ..pipeline.contract import Paths
from ..results import plots
from ..results.reports import confusion, confusion_rows
from .featurize import load_split
from .project import PROB_PREFIX, PROJECT, PlotParams

plt = plots.plt  # matplotlib, already set to draw headless


def sample_grid(
    images: torch.Tensor,
    y_true: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
    n: int,
    seed: int,
):
    """A seeded sample of test images, about a third of them mistakes; titles green if right, red if
    wrong."""
    y_pred = probs.argmax(-1)
    rng = np.random.default_rng(seed)
    wrong, right = np.flatnonzero(y_pred != y_true), np.flatnonzero(y_pred == y_true)
    n_wrong = min(len(wrong), n // 3)
    chosen = np.concatenate(
        [
            rng.choice(wrong, n_wrong, replace=False),
            rng.choice(right, min(len(right), n - n_wrong), replace=False),
        ]
    )
    chosen = rng.permutation(chosen)
    cols = min(8, len(chosen))
    rows = -(-len(chosen) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 2.15 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, chosen):
        ax.imshow(images[i].permute(1, 2, 0).numpy())
        ok = y_pred[i] == y_true[i]
        label = f"{classes[y_pred[i]]} {probs[i, y_pred[i]]:.0%}" + (
            "" if ok else f"\n(true: {classes[y_true[i]]})"
        )
        ax.set_title(("✓ " if ok else "✗ ") + label, fontsize=8, color="green" if ok else "red")
    fig.suptitle(f"cifar10: test predictions ({n_wrong} of {len(chosen)} shown are mistakes)")
    fig.tight_layout()
    return fig


def plot(p: PlotParams, paths: Paths) -> None:
    table = pd.read_csv(paths.predictions, dtype={"actual": str, "predicted": str})
    prob_columns = [c for c in table.columns if c.startswith(PROB_PREFIX)]
    classes = [c[len(PROB_PREFIX) :] for c in prob_columns]
    images = load_split(paths.features, "test")["x"]
    if len(images) != len(table) or not prob_columns:
        raise UserError(
            f"{paths.predictions} has {len(table)} rows and {len(classes)} class columns but the "
            "test "
            f"split has {len(images)} images; re-run evaluate (dvc repro)"
        )
    index = {c: i for i, c in enumerate(classes)}
    y_true = table["actual"].map(index).to_numpy()
    y_pred = table["predicted"].map(index).to_numpy()
    probs = table[prob_columns].to_numpy()

    def figure(name: str) -> Path:
        return Path(paths.figure(name))

    plots.write_rows(figure("confusion.json"), confusion_rows(y_true, y_pred, classes))
    cm = confusion(y_true, y_pred, len(classes))
    plots.save_figure(
        plots.confusion_figure(cm, classes, "cifar10: test confusion matrix"),
        figure("confusion.png"),
    )
    plots.save_figure(
        plots.training_curves_figure(plots.read_live_history(paths.live), "cifar10 training"),
        figure("training_curves.png"),
    )
    plots.save_figure(
        sample_grid(images, y_true, probs, classes, p.plot.samples, p.seed),
        figure("sample_predictions.png"),
    )


if __name__ == "__main__":
    runner.main(plot, PROJECT)
