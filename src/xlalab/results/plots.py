"""Figures (written atomically) and DVC plot data shared by the projects."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # stages run headless
import matplotlib.pyplot as plt
import numpy as np

from ..files import REPORTED_DIGITS, atomic_path, write_json


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def write_rows(path: str | os.PathLike, rows: Sequence[dict]) -> Path:
    """Plot data for dvc.yaml plots: a JSON list of flat records, numbers to REPORTED_DIGITS
    significant digits (the figures folder is git-tracked; see core/io.py)."""
    return write_json(path, list(rows), digits=REPORTED_DIGITS)


def confusion_figure(
    cm: np.ndarray, labels: Sequence[str], title: str, normalize: bool = True
) -> plt.Figure:
    shown = cm / np.clip(cm.sum(axis=1, keepdims=True), 1, None) if normalize else cm
    size = max(4.0, 0.55 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="actual",
        title=title,
    )
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                f"{cm[i, j]}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shown[i, j] > 0.5 * shown.max() else "black",
            )
    fig.colorbar(
        im, ax=ax, fraction=0.046, label="share of the actual class" if normalize else "count"
    )
    return fig


def read_live_history(live_dir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """The per-epoch series DVCLive wrote under ``live_dir`` (``train/loss`` -> [(step, value),
    ...])."""
    root = Path(live_dir) / "plots" / "metrics"
    series = {}
    for tsv in sorted(root.rglob("*.tsv")):
        name = tsv.relative_to(root).with_suffix("").as_posix()
        with open(tsv) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        value_key = Path(name).name
        series[name] = [(int(r["step"]), float(r[value_key])) for r in rows]
    return series


def training_curves_figure(history: dict[str, list[tuple[int, float]]], title: str) -> plt.Figure:
    """Loss (train and val) on the left, every other validation metric on the right."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in ("train/loss", "val/loss"):
        if name in history:
            steps, values = zip(*history[name])
            left.plot(steps, values, marker="o", label=name)
    left.set(xlabel="epoch", ylabel="loss", title="loss")
    left.legend()
    for name, points in history.items():
        if name.startswith("val/") and name != "val/loss":
            steps, values = zip(*points)
            right.plot(steps, values, marker="o", label=name)
    right.set(xlabel="epoch", title="validation metrics")
    if right.lines:
        right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig
