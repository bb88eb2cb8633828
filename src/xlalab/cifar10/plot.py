"""The plot stage: the most confident mistakes, the most confused pairs, the confusion matrix, the
training curves and a sample of test predictions.

Everything goes to ``paths.figures``, read from the evaluate stage's predictions: the model's most
confident mistakes (a grid of the test images with their true and predicted classes and the
confidence), its most confused pairs of classes, the confusion matrix (png, and its rows for DVC's
confusion template), the training curves and a seeded sample of test predictions. Each title says
what its figure shows, in numbers from the predictions."""

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
from . import frontier
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
        ax.imshow(image_of(images, i), cmap="gray")
        ok = y_pred[i] == y_true[i]
        label = f"{classes[y_pred[i]]} {probs[i, y_pred[i]]:.0%}" + (
            "" if ok else f"\n(true: {classes[y_true[i]]})"
        )
        ax.set_title(("✓ " if ok else "✗ ") + label, fontsize=8, color="green" if ok else "red")
    accuracy = (y_pred == y_true).mean()
    plots.finding(
        fig,
        f"cifar10: {plots.percent(accuracy, 1)} of {len(y_true):,} test images right; a seeded "
        f"sample, {n_wrong} of the {len(chosen)} shown are mistakes",
    )
    fig.tight_layout()
    return fig


def image_of(images: torch.Tensor, i: int) -> np.ndarray:
    """One stored image for imshow: height x width x channels, one channel squeezed to grey."""
    image = images[i].permute(1, 2, 0).numpy()
    return image[..., 0] if image.shape[-1] == 1 else image


def confident_mistakes(probs: np.ndarray, y_true: np.ndarray, top: int) -> np.ndarray:
    """The test rows of the ``top`` mistakes the model was most sure of, surest first."""
    y_pred = probs.argmax(-1)
    wrong = np.flatnonzero(y_pred != y_true)
    return wrong[np.argsort(-probs[wrong, y_pred[wrong]], kind="stable")][:top]


def mistakes_title(probs: np.ndarray, y_true: np.ndarray, classes: list[str]) -> str:
    y_pred = probs.argmax(-1)
    wrong = y_pred != y_true
    if not wrong.any():
        return f"cifar10: no mistakes on {len(y_true):,} test images"
    sure = probs[wrong, y_pred[wrong]]
    first = confident_mistakes(probs, y_true, 1)[0]
    return (
        f"cifar10: {int(wrong.sum()):,} mistakes in {len(y_true):,} test images, "
        f"{int((sure >= 0.9).sum())} of them at 90 % confidence or more; the surest: "
        f"{classes[y_true[first]]} read as {classes[y_pred[first]]} at "
        f"{plots.percent(probs[first, y_pred[first]], 1)}"
    )


def mistakes_grid(
    images: torch.Tensor, y_true: np.ndarray, probs: np.ndarray, classes: list[str], top: int
) -> plt.Figure:
    """The model's ``top`` most confident mistakes, surest first: each image with its true class,
    the class predicted and the confidence in it."""
    chosen = confident_mistakes(probs, y_true, top)
    y_pred = probs.argmax(-1)
    cols = max(1, min(8, len(chosen)))
    rows = max(1, -(-len(chosen) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 2.2 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, chosen):
        ax.imshow(image_of(images, i), cmap="gray")
        ax.set_title(
            f"true {classes[y_true[i]]}\nread {classes[y_pred[i]]} "
            f"{plots.percent(probs[i, y_pred[i]])}",
            fontsize=8,
            color="firebrick",
        )
    plots.finding(fig, mistakes_title(probs, y_true, classes))
    fig.tight_layout()
    return fig


def confused_pairs_figure(
    cm: np.ndarray, classes: list[str], top: int, images: torch.Tensor, y_true, y_pred
) -> plt.Figure:
    """The ``top`` most frequent (true, predicted) pairs: how many test images, the share of the
    true class, and one of those images per pair."""
    pairs = plots.most_confused(cm, classes, top)
    fig, (bars, examples) = plt.subplots(
        1, 2, figsize=(10, 0.55 * max(1, len(pairs)) + 1.8), gridspec_kw={"width_ratios": [4, 1]}
    )
    rows = np.arange(len(pairs))
    bars.barh(rows, [p["count"] for p in pairs], color="firebrick", alpha=0.8)
    bars.set_yticks(rows, [f"{p['actual']} read as {p['predicted']}" for p in pairs])
    bars.invert_yaxis()
    for row, p in zip(rows, pairs):
        bars.annotate(
            f" {p['count']} ({plots.percent(p['share_of_actual'], 1)} of {p['actual']})",
            (p["count"], row),
            va="center",
            fontsize=8,
        )
    bars.set_xlim(0, 1.35 * max([p["count"] for p in pairs], default=1))
    bars.set(xlabel="test images")
    # one example of each pair, stacked in the order of the bars
    index = {c: k for k, c in enumerate(classes)}
    strips = []
    for p in pairs:
        match = np.flatnonzero((y_true == index[p["actual"]]) & (y_pred == index[p["predicted"]]))
        strips.append(image_of(images, int(match[0])))
    examples.axis("off")
    if strips:
        examples.imshow(np.concatenate(strips, axis=0), cmap="gray")
        examples.set_title("one of each", fontsize=8)
    mistakes = int(cm.sum() - np.trace(cm))
    title = "cifar10: no mistakes"
    if pairs:
        covered = sum(p["count"] for p in pairs) / max(1, mistakes)
        first = pairs[0]
        title = (
            f"cifar10: {first['actual']} read as {first['predicted']} is the most frequent mistake "
            f"({first['count']}); these {len(pairs)} pairs are {plots.percent(covered)} of all "
            f"{mistakes:,} mistakes"
        )
    plots.finding(fig, title)
    fig.tight_layout()
    return fig


def plot(params: PlotParams, paths: Paths) -> None:
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
        mistakes_grid(images, y_true, probs, classes, params.evaluate.top_confident_mistakes),
        figure("confident_mistakes.png"),
    )
    plots.save_figure(
        confused_pairs_figure(
            cm, classes, params.evaluate.top_confused_pairs, images, y_true, probs.argmax(-1)
        ),
        figure("confused_pairs.png"),
    )
    plots.save_figure(
        plots.confusion_figure(cm, classes, plots.confusion_title("cifar10", "model", cm, classes)),
        figure("confusion.png"),
    )
    history = plots.read_live_history(paths.live)
    plots.save_figure(
        plots.training_curves_figure(
            history, plots.training_title("cifar10", history, "val/accuracy")
        ),
        figure("training_curves.png"),
    )
    plots.save_figure(
        sample_grid(images, y_true, probs, classes, params.plot.samples, params.seed),
        figure("sample_predictions.png"),
    )
    plots.save_figure(frontier.frontier_figure(frontier.read()), figure("frontier.png"))


if __name__ == "__main__":
    runner.main(plot, PROJECT)
