"""The plot stage: anomalies over time (record order where the source has no timestamps, and
labelled so), score distributions of normal and attack traffic with each threshold, ROC and PR
curves as DVC plot data, recall per attack category, the feature-set table as a chart, the
training curve, and ``report.md``: what was caught, what was missed and where false alarms come
from, written from the metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from ..core import runner
from ..core.io import read_json
from ..core.plots import plt, read_live_history, save_figure, training_curves_figure, write_rows
from ..core.project import Paths
from .project import DETECTORS, PROJECT, PlotParams


def curve_rows(
    predictions: pd.DataFrame, detectors: list[str], points: int
) -> tuple[list[dict], list[dict]]:
    """ROC and PR curves of every detector on one shared x grid (DVC plots one file, one column per
    detector)."""
    y = predictions["is_attack"].to_numpy(int)
    grid = np.linspace(0, 1, points)
    roc, pr = {"fpr": grid}, {"recall": grid}
    for name in DETECTORS:
        if name not in detectors:
            continue
        scores = predictions[f"score_{name}"].to_numpy(float)
        fpr, tpr, _ = roc_curve(y, scores)
        roc[name] = np.interp(grid, fpr, tpr)
        precision, recall, _ = precision_recall_curve(y, scores)
        # interpolated precision: the best precision at this recall or higher
        best = np.maximum.accumulate(precision[::-1])[::-1]
        pr[name] = np.interp(grid, recall[::-1], best[::-1])

    def to_rows(table: dict) -> list[dict]:
        return [dict(zip(table, map(float, values))) for values in zip(*table.values())]

    return to_rows(roc), to_rows(pr)


def time_figure(predictions: pd.DataFrame, best: str, has_time: bool, window: int) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(11, 4))
    frame = predictions[["is_attack", f"flag_{best}", "time"]].copy()
    if has_time and frame["time"].notna().any():
        frame = frame.dropna(subset=["time"]).sort_values("time")
        frame.index = pd.to_datetime(frame["time"], unit="s")
        rolled = frame[["is_attack", f"flag_{best}"]].resample(f"{window}s").mean()
        xlabel = f"time (share per {window} s)"
    else:
        rolled = (
            frame[["is_attack", f"flag_{best}"]]
            .rolling(window, min_periods=1)
            .mean()
            .iloc[:: max(1, window // 10)]
        )
        xlabel = (
            "record order in the test file (the source has no timestamps); rolling share "
            f"over {window} records"
        )
    ax.plot(rolled.index, rolled["is_attack"], label="actual attack share", color="black", lw=1)
    ax.plot(
        rolled.index, rolled[f"flag_{best}"], label=f"{best}: alarm share", color="tab:red", lw=1
    )
    ax.set(
        xlabel=xlabel,
        ylabel="share of traffic",
        ylim=(-0.02, 1.02),
        title=f"traffic: anomalies over {'time' if has_time else 'record order'} ({best})",
    )
    ax.legend(loc="upper right")
    return fig


def distributions_figure(predictions: pd.DataFrame, metrics: dict) -> plt.Figure:
    names = list(metrics["detectors"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    attack = predictions["is_attack"].to_numpy(bool)
    for ax, name in zip(axes[0], names):
        scores = predictions[f"score_{name}"].to_numpy(float)
        low, high = np.percentile(scores, [0.5, 99.5])
        bins = np.linspace(low, high, 60)
        ax.hist(
            np.clip(scores[~attack], low, high), bins=bins, alpha=0.6, density=True, label="normal"
        )
        ax.hist(
            np.clip(scores[attack], low, high), bins=bins, alpha=0.6, density=True, label="attack"
        )
        ax.axvline(
            metrics["detectors"][name]["threshold"], color="black", ls="--", label="threshold"
        )
        ax.set(title=name, xlabel="anomaly score (clipped to 0.5-99.5 %)")
        ax.set_yscale("log")
    axes[0][0].legend()
    fig.suptitle(
        "traffic: score distributions on the test traffic, threshold from normal validation traffic"
    )
    fig.tight_layout()
    return fig


def category_rows(metrics: dict) -> list[dict]:
    rows = []
    for name, m in {
        **metrics["detectors"],
        **{"random_scores": metrics["baselines"]["random_scores"]},
    }.items():
        for category, r in m["recall_per_category"].items():
            rows.append(
                {
                    "category": f"{category} ({name})",
                    "detector": name,
                    "recall": r["recall"],
                    "attacks": r["attacks"],
                }
            )
    return rows


def category_figure(metrics: dict) -> plt.Figure:
    names = list(metrics["detectors"])
    categories = list(metrics["detectors"][names[0]]["recall_per_category"])
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        recalls = [
            metrics["detectors"][name]["recall_per_category"][c]["recall"] for c in categories
        ]
        ax.bar(np.arange(len(categories)) + i * width, recalls, width, label=name)
    counts = [
        metrics["detectors"][names[0]]["recall_per_category"][c]["attacks"] for c in categories
    ]
    ax.set_xticks(
        np.arange(len(categories)) + 0.4 - width / 2,
        [f"{c}\n({n})" for c, n in zip(categories, counts)],
    )
    ax.set(
        ylabel="recall at the threshold",
        ylim=(0, 1),
        title="traffic: recall per attack category (test attacks)",
    )
    ax.legend(fontsize=8)
    return fig


def feature_set_figure(study: list[dict]) -> plt.Figure:
    table = pd.DataFrame(study).pivot(index="feature_set", columns="detector", values="roc_auc")
    table = table.reindex(
        [r["feature_set"] for r in study if r["detector"] == study[0]["detector"]]
    )
    fig, ax = plt.subplots(figsize=(8, 4))
    table.plot.bar(ax=ax, rot=0)
    ax.set(ylabel="ROC-AUC on test traffic", ylim=(0.4, 1), title="traffic: feature-set study")
    ax.axhline(0.5, color="grey", ls=":")
    return fig


def _first(names: list[str], n: int) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def report(metrics: dict) -> str:
    d, b, a, test = metrics["detectors"], metrics["baselines"], metrics["analysis"], metrics["test"]
    best = metrics["best"]
    lines = [
        f"# traffic: anomaly report ({metrics['source']})",
        "",
        f"Test traffic: {test['rows']} records, {test['attacks']} attacks "
        f"({_pct(test['attack_share'])}); "
        f"{test['unseen_attack_rows']} attack records are of types never seen in training "
        f"({_first(test['unseen_attack_types'], 12)}).",
        f"Detectors learned from {metrics['fit_on']} training traffic on feature set "
        f"`{metrics['feature_set']}`; "
        f"each alarm threshold is the {metrics['threshold_percentile']:g}th percentile of its "
        "scores on normal "
        "validation traffic (no test labels).",
        "",
        "| detector | precision | recall | F1 | ROC-AUC | PR-AUC | alarms | unseen-type recall |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in {**d, **b}.items():
        roc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}"
        pr = "n/a" if m["pr_auc"] is None else f"{m['pr_auc']:.3f}"
        lines.append(
            f"| {name}{' (baseline)' if name in b else ''} | {m['precision']:.3f} | "
            f"{m['recall']:.3f} | "
            f"{m['f1']:.3f} | {roc} | {pr} | {m['alarms']} | {_pct(m['recall_unseen_attacks'])} |"
        )
    lines += [
        "",
        f"**Verdict:** {metrics['verdict']['line']}.",
        "",
        f"## What {best} caught and missed",
        "",
    ]
    for category, r in d[best]["recall_per_category"].items():
        lines.append(f"- {category}: {_pct(r['recall'])} of {r['attacks']} attacks caught")
    missed = a["false_negatives_by"]["attack"]
    lines += [
        "",
        f"It missed {a['false_negatives']} attacks. The most missed attack types: "
        + "; ".join(
            f"{r['value']} ({r['count']} missed, {_pct(r['rate'])} of that type)" for r in missed
        )
        + ".",
    ]
    lines += [
        "",
        "## Where the false alarms come from",
        "",
        f"{a['false_positives']} normal records were flagged ({_pct(a['false_positive_rate'])} of "
        "normal test "
        f"traffic, against {_pct((100 - metrics['threshold_percentile']) / 100)} "
        "expected from validation).",
    ]
    for column, rows in a["false_positives_by"].items():
        lines.append(
            f"- by {column}: "
            + "; ".join(
                f"{r['value']} {r['count']} ({_pct(r['share'])} of false alarms, "
                f"{_pct(r['rate'])} of its normal traffic)"
                for r in rows
            )
        )
    lines += [
        "",
        "Highest-scoring false alarms:",
        "",
        "| row | score | "
        + " | ".join(k for k in a["highest_scoring_false_alarms"][0] if k not in ("row", "score"))
        + " |"
        if a["highest_scoring_false_alarms"]
        else "",
    ]
    if a["highest_scoring_false_alarms"]:
        keys = [k for k in a["highest_scoring_false_alarms"][0] if k not in ("row", "score")]
        lines.append("|---|---:|" + "---|" * len(keys))
        lines += [
            f"| {r['row']} | {r['score']:.4g} | " + " | ".join(r[k] for k in keys) + " |"
            for r in a["highest_scoring_false_alarms"]
        ]
    lines += [
        "",
        "## Feature-set study",
        "",
        "| feature set | detector | columns | ROC-AUC | PR-AUC | F1 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['feature_set']} | {r['detector']} | {r['columns']} | {r['roc_auc']:.3f} | "
        f"{r['pr_auc']:.3f} | "
        f"{r['f1']:.3f} |"
        for r in metrics["feature_sets"]
    ]
    return "\n".join(lines) + "\n"


def plot(p: PlotParams, paths: Paths) -> None:
    metrics = read_json(paths.metrics)
    predictions = pd.read_csv(paths.predictions, keep_default_na=False, na_values=[""])
    out = paths.figures
    roc, pr = curve_rows(predictions, list(metrics["detectors"]), p.plot.curve_points)
    write_rows(out / "roc.json", roc)
    write_rows(out / "pr.json", pr)
    write_rows(out / "recall_per_category.json", category_rows(metrics))
    write_rows(
        out / "feature_sets.json",
        [{"run": f"{r['feature_set']} / {r['detector']}", **r} for r in metrics["feature_sets"]],
    )
    has_time = predictions["time"].notna().any()
    save_figure(
        time_figure(predictions, metrics["best"], has_time, p.plot.window),
        out / "anomalies_over_time.png",
    )
    save_figure(distributions_figure(predictions, metrics), out / "score_distributions.png")
    save_figure(category_figure(metrics), out / "recall_per_category.png")
    if metrics["feature_sets"]:
        save_figure(feature_set_figure(metrics["feature_sets"]), out / "feature_sets.png")
    history = read_live_history(paths.live)
    if history:
        save_figure(
            training_curves_figure(history, "traffic: autoencoder reconstruction loss"),
            out / "autoencoder_training.png",
        )
    (out / "report.md").write_text(report(metrics))


if __name__ == "__main__":
    runner.main(PROJECT, "plot", plot)
