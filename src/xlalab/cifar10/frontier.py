"""The accuracy-against-training-cost frontier of cifar10's recipes, drawn by the plot stage from
the measurements in ``docs/cifar10_frontier.json`` (made by ``bench/cifar10_frontier.py``, one run
of the train and evaluate stages per recipe). Drawing never re-measures: ``make repro`` redraws the
figure from the file, and a change to the file redraws it (a dep of the plot stage)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import ticker

from ..errors import UserError
from ..results import plots
from .project import FRONTIER

plt = plots.plt
MARKERS = {"frozen": "o", "last": "s", "full": "^"}  # by what trains, from the recipe's name


def read(path: str | Path = FRONTIER) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
        recipes = data["recipes"]
        needed = ("recipe", "image_size", "test_accuracy", "interval", "train_cpu_seconds")
        if not recipes or any(key not in r for r in recipes for key in needed):
            raise KeyError(", ".join(needed))
    except (OSError, ValueError, KeyError) as e:
        raise UserError(
            f"{path} does not hold the frontier's measurements ({type(e).__name__}: {e}); "
            "restore it from git or re-measure with bench/cifar10_frontier.py"
        ) from None
    return data


def cheapest_winner(recipes: list[dict]) -> dict | None:
    """The recipe with the lowest training cost whose difference from the strongest baseline has
    its whole interval above 0 (verdict ``beats``); None when none does."""
    winners = [r for r in recipes if r.get("verdict") == "beats"]
    return min(winners, key=lambda r: r["train_cpu_seconds"], default=None)


def pareto(recipes: list[dict]) -> list[dict]:
    """The frontier: by cost, each recipe more accurate than every cheaper one."""
    best, front = -1.0, []
    for r in sorted(recipes, key=lambda r: (r["train_cpu_seconds"], -r["test_accuracy"])):
        if r["test_accuracy"] > best:
            best = r["test_accuracy"]
            front.append(r)
    return front


def frontier_figure(data: dict[str, Any]) -> plt.Figure:
    recipes = data["recipes"]
    sizes = sorted({r["image_size"] for r in recipes})
    colours = dict(zip(sizes, plt.get_cmap("viridis")(np.linspace(0.1, 0.8, len(sizes)))))
    fig, ax = plt.subplots(figsize=(8, 5))
    svm = recipes[0].get("svm_rbf")
    if svm is not None:
        ax.axhspan(*svm["interval"], color="0.85", zorder=0)
        ax.axhline(svm["score"], color="0.4", linestyle="--", zorder=1)
        ax.annotate(
            f"RBF SVM on pixels {svm['score']:.3f}",
            (0.01, svm["score"]),
            xycoords=("axes fraction", "data"),
            va="bottom",
            fontsize=8,
            color="0.3",
        )
    for r in recipes:
        draw_recipe(ax, r, colours)
    front = pareto(recipes)
    ax.step(
        [r["train_cpu_seconds"] for r in front],
        [r["test_accuracy"] for r in front],
        where="post",
        color="0.6",
        linewidth=1,
        zorder=2,
        label="frontier: the best accuracy at that cost or less",
    )
    mark_choices(ax, data)
    for size in sizes:
        ax.plot([], [], "o", color=colours[size], label=f"{size} px")
    for kind, marker in MARKERS.items():
        what = {"frozen": "head only", "last": "head + last stages", "full": "everything"}[kind]
        ax.plot([], [], marker, color="0.3", label=what)
    ax.set_xscale("log")
    costs = [r["train_cpu_seconds"] for r in recipes]
    ax.set_xlim(min(costs) / 1.3, max(costs) * 1.5)  # room for the names
    ax.set_xticks(
        [t for t in (25, 50, 100, 200, 400, 800, 1600) if min(costs) / 2 <= t <= max(costs) * 2]
    )
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel("train stage, CPU seconds (one thread; log scale)")
    ax.set_ylabel("test accuracy, 95 % interval")
    ax.set_title("cifar10 (offline digits): accuracy against training cost")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def mark_choices(ax: plt.Axes, data: dict[str, Any]) -> None:
    """Circle the cheapest recipe that beats the SVM in these runs, and mark the one chosen as the
    default (``default_check.chosen``, which also weighs the runs at make repro's thread count)."""
    recipes = data["recipes"]
    winner = cheapest_winner(recipes)
    if winner is not None:
        ax.scatter(
            winner["train_cpu_seconds"],
            winner["test_accuracy"],
            s=260,
            facecolors="none",
            edgecolors="red",
            zorder=4,
            label=f"cheapest that beats the SVM here: {winner['recipe']}",
        )
    chosen = data.get("default_check", {}).get("chosen")
    default = next((r for r in recipes if r["recipe"] == chosen), None)
    if default is not None:
        ax.scatter(
            default["train_cpu_seconds"],
            default["test_accuracy"],
            s=200,
            marker="D",
            facecolors="none",
            edgecolors="black",
            zorder=4,
            label=f"the default (params.yaml): {chosen}",
        )


def draw_recipe(ax: plt.Axes, r: dict[str, Any], colours: dict) -> None:
    """One recipe: its accuracy with the interval, at its cost, named."""
    lo, hi = r["interval"]
    kind = next((k for k in MARKERS if r["recipe"].startswith(k)), "full")
    ax.errorbar(
        r["train_cpu_seconds"],
        r["test_accuracy"],
        yerr=[[r["test_accuracy"] - lo], [hi - r["test_accuracy"]]],
        fmt=MARKERS[kind],
        color=colours[r["image_size"]],
        capsize=3,
        zorder=3,
    )
    note = f"{r['recipe']}" + (f" ({r['epochs']} ep)" if r.get("epochs_reduced") else "")
    below = kind == "full"  # the fine-tuned recipes sit beside others of about their cost
    ax.annotate(
        note,
        (r["train_cpu_seconds"], r["test_accuracy"]),
        xytext=(6, -11 if below else 4),
        textcoords="offset points",
        fontsize=7,
    )
