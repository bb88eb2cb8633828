"""Figures (written atomically) and DVC plot data shared by the projects."""

from __future__ import annotations

import csv
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # stages run headless
import matplotlib.pyplot as plt
import numpy as np

from ..files import REPORTED_DIGITS, atomic_path, write_json


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    path = Path(path)
    literal_dollars(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def literal_dollars(fig: plt.Figure) -> None:
    """Titles, labels, legends and notes speak of dollars ("$12,300 ... $850"): a pair of "$" in
    them must not switch to math mode. Tick labels keep it (a log axis writes its powers of ten in
    math mode)."""
    from matplotlib.text import Text

    ticks = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            ticks.update(axis.get_ticklabels(which="both"))
    for text in fig.findobj(Text):
        if text not in ticks:
            text.set_parse_math(False)


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
    )
    finding(fig, title)
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
    fig.tight_layout()
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
    for name, points in history.items():
        if name.startswith("val/") and name != "val/loss":
            steps, values = zip(*points)
            right.plot(steps, values, marker="o", label=name)
    right.set(xlabel="epoch", title="validation metrics")
    finding(fig, title)
    fig.tight_layout()
    for ax in (left, right):
        if ax.lines:
            place_legend(ax, fontsize=8)
    return fig


# --- legends that cover no data -------------------------------------------------------------------
# Where a legend may go inside the axes, in the order tried; outside, right of the axes, when every
# one of them covers data.
LEGEND_PLACES = (
    "upper right",
    "upper left",
    "lower right",
    "lower left",
    "center right",
    "center left",
    "upper center",
    "lower center",
)


LEGEND_MARGIN = 4  # pixels


def data_artists(ax: plt.Axes) -> list:
    """The artists of ``ax`` that draw data in data coordinates: lines, bars and other patches,
    scatter points and filled bands. Reference lines (``axhline``, ``axvline``: half in axes
    coordinates) and text are not data."""
    artists = [a for a in (*ax.lines, *ax.patches, *ax.collections) if a.get_visible()]
    return [
        a
        for a in artists
        if a.get_transform().contains_branch(ax.transData) or _is_offset_collection(a)
    ]


def _is_offset_collection(artist) -> bool:
    from matplotlib.collections import PathCollection

    return isinstance(artist, PathCollection) and len(artist.get_offsets()) > 0


def covers_data(box, ax: plt.Axes, renderer=None) -> bool:
    """Whether the display-space ``box`` (a legend's window extent) overlaps what ``ax`` draws:
    a bar or patch, a point of a scatter, any stretch of a line, or a filled band."""
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle
    from matplotlib.transforms import Bbox

    renderer = renderer or ax.figure.canvas.get_renderer()
    # Only what is drawn counts: data outside the axes is clipped away (a histogram's bars on a
    # log scale reach far below them), so only the part of the box inside the axes matters.
    box = Bbox.intersection(box, ax.get_window_extent(renderer))
    if box is None:
        return False
    for artist in data_artists(ax):
        if isinstance(artist, Line2D):
            path = artist.get_transform().transform_path(artist.get_path())
            if len(path.vertices) and path.intersects_bbox(box, filled=False):
                return True
            marked = artist.get_marker() not in (None, "None", "", " ")
            if len(path.vertices) and marked and box.count_contains(path.vertices):
                return True
        elif isinstance(artist, Rectangle):
            extent = artist.get_window_extent(renderer)
            if extent.width > 0 and extent.height > 0 and extent.overlaps(box):
                return True
        elif isinstance(artist, PathCollection):
            points = artist.get_offset_transform().transform(artist.get_offsets())
            if box.count_contains(points):
                return True
        else:  # filled bands (fill_between), polygons
            transform = artist.get_transform()
            for path in getattr(artist, "get_paths", lambda: [])():
                shown = transform.transform_path(path)
                if len(shown.vertices) and shown.intersects_bbox(box, filled=True):
                    return True
    return False


def legend_covers_data(ax: plt.Axes) -> bool:
    """Whether the legend of ``ax`` (if any) lies over any of its data, as drawn now."""
    legend = ax.get_legend()
    if legend is None:
        return False
    ax.figure.draw_without_rendering()
    renderer = ax.figure.canvas.get_renderer()
    # a few pixels of margin: a legend that touches a line reads as covering it
    return covers_data(legend.get_window_extent(renderer).padded(LEGEND_MARGIN), ax, renderer)


def place_legend(ax: plt.Axes, **options) -> None:
    """A legend where it covers no data: the first of LEGEND_PLACES inside the axes that is clear,
    else outside, right of the axes. Call it once the figure's layout is final (after
    ``tight_layout``): the legend keeps its size in pixels while the axes around it change."""
    for place in LEGEND_PLACES:
        ax.legend(loc=place, **options)
        if not legend_covers_data(ax):
            return
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **options)


def legend_below(fig: plt.Figure, ax: plt.Axes, **options) -> None:
    """One legend for a row of panels, below them (it covers none of their data): the entries of
    ``ax``. Call it instead of ``tight_layout``."""
    handles, labels = ax.get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, **options)


def text_of(fig: plt.Figure) -> list[str]:
    """Every piece of text a figure shows: titles, axis labels, tick labels, legend entries,
    annotations."""
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def finding(fig: plt.Figure, text: str, size: float = 10) -> None:
    """The figure's title: what it shows, in a sentence, wrapped to the figure's width (a title
    wider than the figure would be cut off when saved)."""
    characters = max(40, int(fig.get_figwidth() * 72 / (0.55 * size)))
    fig.suptitle(textwrap.fill(text, characters), fontsize=size)


def title_of(fig: plt.Figure) -> str:
    """The figure's title on one line: its suptitle, else the first axes' title."""
    text = fig.get_suptitle() or next((ax.get_title() for ax in fig.axes if ax.get_title()), "")
    return " ".join(text.split())


def percent(share: float, digits: int = 0) -> str:
    """A share as a percentage; the sign stays on the number's line (a no-break space)."""
    return f"{100 * share:.{digits}f}\u00a0%"


def listing(names: Sequence[str]) -> str:
    """Names for a title: ``a``, ``a and b``, ``a, b and c``."""
    names = list(names)
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


# --- findings in words ----------------------------------------------------------------------------
def most_confused(cm: np.ndarray, labels: Sequence[str], top: int) -> list[dict]:
    """The ``top`` most frequent mistakes (actual class read as another), most frequent first."""
    k = len(labels)
    off_diagonal = sorted(
        ((int(cm[i, j]), i, j) for i in range(k) for j in range(k) if i != j),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    return [
        {
            "actual": labels[i],
            "predicted": labels[j],
            "count": n,
            "share_of_actual": n / max(1, int(cm[i].sum())),
        }
        for n, i, j in off_diagonal[:top]
        if n > 0
    ]


def confusion_title(project: str, what: str, cm: np.ndarray, labels: Sequence[str]) -> str:
    """The share right and the most frequent mistake."""
    right = np.trace(cm) / max(1, cm.sum())
    text = f"{project}: {what}: {percent(right, 1)} of {int(cm.sum()):,} test rows right"
    worst = most_confused(cm, labels, 1)
    if worst:
        w = worst[0]
        text += (
            f"; most frequent mistake: {w['actual']} read as {w['predicted']} ({w['count']}, "
            f"{percent(w['share_of_actual'], 1)} of {w['actual']})"
        )
    return text


def training_title(project: str, history: dict[str, list[tuple[int, float]]], metric: str) -> str:
    """The best epoch of the validation ``metric`` (higher is better unless it is a loss or an
    error) and how it compares with the first epoch."""
    series = history.get(metric) or []
    if not series:
        return f"{project}: training"
    steps, values = zip(*series)
    lower = any(word in metric for word in ("loss", "mae", "rmse", "error"))
    best = int(np.argmin(values) if lower else np.argmax(values))
    return (
        f"{project}: best {metric} {values[best]:.4g} at epoch {steps[best]} of {steps[-1]} "
        f"(epoch {steps[0]}: {values[0]:.4g})"
    )
