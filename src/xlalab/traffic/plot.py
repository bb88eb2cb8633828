"""The plot stage: anomalies over time, score distributions, ROC and PR curves and recall per attack
category.

Anomalies over time (record order where the source has no timestamps, and
labelled so), score distributions of normal and attack traffic with each threshold, ROC and PR
curves as DVC plot data, recall per attack category, the feature-set table as a chart, the
training curve, and ``report.md``: the verdict with its intervals, what the headline detector
caught and missed and where its false alarms come from, written from the metrics. Every file's
name comes from project.py, its folder from ``Paths``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sklearn.metrics import precision_recall_curve, roc_curve

from ..files import read_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from ..results.plots import plt, read_live_history, save_figure, training_curves_figure, write_rows
from .project import (
    ANOMALIES,
    CATEGORY_CHART,
    DETECTORS,
    DISTRIBUTIONS,
    FEATURE_SET_CHART,
    FEATURE_SETS,
    PR,
    PROJECT,
    RECALL_PER_CATEGORY,
    REPORT,
    ROC,
    TRAINING_CHART,
    PlotParams,
)


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


def time_figure(
    predictions: pd.DataFrame, headline: str, has_time: bool, window: int
) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(11, 4))
    frame = predictions[["is_attack", f"flag_{headline}", "time"]].copy()
    if has_time and frame["time"].notna().any():
        frame = frame.dropna(subset=["time"]).sort_values("time")
        frame.index = pd.to_datetime(frame["time"], unit="s")
        rolled = frame[["is_attack", f"flag_{headline}"]].resample(f"{window}s").mean()
        xlabel = f"time (share per {window} s)"
    else:
        rolled = (
            frame[["is_attack", f"flag_{headline}"]]
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
        rolled.index,
        rolled[f"flag_{headline}"],
        label=f"{headline}: alarm share",
        color="tab:red",
        lw=1,
    )
    ax.set(
        xlabel=xlabel,
        ylabel="share of traffic",
        ylim=(-0.02, 1.02),
        title=f"traffic: anomalies over {'time' if has_time else 'record order'} ({headline})",
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


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _ci(pair: list[float]) -> str:
    return f"[{pair[0]:.3f}, {pair[1]:.3f}]"


def detector_lines(metrics: dict) -> list[str]:
    """The table of every detector and baseline on the test traffic."""
    d, b = metrics["detectors"], metrics["baselines"]
    rate = _pct(metrics["fixed_false_alarm_rate"])
    lines = [
        f"| detector | precision | recall | F1 | ROC-AUC | PR-AUC | alarms | unseen-type recall | "
        f"recall at {rate} false alarms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in {**d, **b}.items():
        fixed = (m.get("at_fixed_false_alarm_rate") or {}).get("recall")
        lines.append(
            f"| {name}{' (baseline)' if name in b else ''} | {m['precision']:.3f} | "
            f"{m['recall']:.3f} | {m['f1']:.3f} | {_num(m['roc_auc'])} | {_num(m['pr_auc'])} | "
            f"{m['alarms']} | {_pct(m['recall_unseen_attacks'])} | {_pct(fixed)} |"
        )
    return lines


def verdict_lines(metrics: dict) -> list[str]:
    v, headline = metrics["verdict"], metrics["headline"]
    lines = [
        "",
        f"**Verdict** (F1 at the threshold, 95 % paired bootstrap over the test rows): headline "
        f"{headline} {v['score']:.3f} {_ci(v['interval'])} against the strongest other candidate "
        f"{v['best_baseline']} {v['baseline_score']:.3f} {_ci(v['baseline_interval'])}: "
        f"difference {v['difference']:+.3f} {_ci(v['difference_interval'])}, **{v['verdict']}**.",
        "",
        "| candidate | F1 | 95 % interval |",
        "|---|---:|---|",
        f"| {headline} (headline) | {v['score']:.3f} | {_ci(v['interval'])} |",
    ]
    lines += [
        f"| {name} | {c['score']:.3f} | {_ci(c['interval'])} |"
        for name, c in v["baselines"].items()
    ]
    val = metrics.get("validation")
    if val:
        lines += [
            "",
            f"Labelled validation traffic ({val['rows']['normal']} normal validation rows and "
            f"{val['rows']['attacks']} held-out training attacks; no test row): best F1 "
            f"{val['best_f1']}. "
            + "; ".join(f"{n} {m['f1']:.3f}" for n, m in val["detectors"].items())
            + ".",
        ]
    return lines


def caught_lines(metrics: dict) -> list[str]:
    """What the headline detector caught and missed."""
    headline, a = metrics["headline"], metrics["analysis"]
    lines = ["", f"## What {headline} caught and missed", ""]
    for category, r in metrics["detectors"][headline]["recall_per_category"].items():
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
    return lines


def false_alarm_lines(metrics: dict) -> list[str]:
    """Where the headline detector's false alarms come from."""
    a = metrics["analysis"]
    expected = _pct((100 - metrics["threshold_percentile"]) / 100)
    lines = [
        "",
        "## Where the false alarms come from",
        "",
        f"{a['false_positives']} normal records were flagged ({_pct(a['false_positive_rate'])} of "
        f"normal test traffic, against {expected} expected from validation).",
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
    highest = a["highest_scoring_false_alarms"]
    if highest:
        keys = [k for k in highest[0] if k not in ("row", "score")]
        lines += ["", "Highest-scoring false alarms:", ""]
        lines += ["| row | score | " + " | ".join(keys) + " |", "|---|---:|" + "---|" * len(keys)]
        lines += [
            f"| {r['row']} | {r['score']:.4g} | " + " | ".join(r[k] for k in keys) + " |"
            for r in highest
        ]
    return lines


def study_lines(metrics: dict) -> list[str]:
    lines = [
        "",
        "## Feature-set study",
        "",
        "| feature set | detector | columns | ROC-AUC | PR-AUC | F1 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    return lines + [
        f"| {r['feature_set']} | {r['detector']} | {r['columns']} | {r['roc_auc']:.3f} | "
        f"{r['pr_auc']:.3f} | {r['f1']:.3f} |"
        for r in metrics["feature_sets"]
    ]


def report(metrics: dict) -> str:
    test = metrics["test"]
    lines = [
        f"# traffic: anomaly report ({metrics['source']})",
        "",
        f"Test traffic: {test['rows']} records, {test['attacks']} attacks "
        f"({_pct(test['attack_share'])}); {test['unseen_attack_rows']} attack records are of "
        f"types never seen in training ({_first(test['unseen_attack_types'], 12)}).",
        f"Detectors learned from {metrics['fit_on']} training traffic on feature set "
        f"`{metrics['feature_set']}`; each alarm threshold is the "
        f"{metrics['threshold_percentile']:g}th percentile of its scores on normal validation "
        "traffic (no test labels). The headline detector is named in params before the run.",
        "",
        *detector_lines(metrics),
        *verdict_lines(metrics),
        *caught_lines(metrics),
        *false_alarm_lines(metrics),
        *study_lines(metrics),
    ]
    return "\n".join(lines) + "\n"


def read_predictions(paths: Paths, columns: list[str], rows: int) -> pd.DataFrame:
    """The columns the figures use, streamed from the predictions in blocks (the whole CSV of 5 M
    rows is never parsed in memory at once: 2 GB)."""
    types = {"time": pa.float64(), "is_attack": pa.int8()}
    types |= {c: pa.float64() if c.startswith("score_") else pa.int8() for c in columns}
    wanted = ["is_attack", "time", *columns]
    options = pacsv.ConvertOptions(include_columns=wanted, column_types=types)
    out = {c: np.empty(rows, dtype=types[c].to_pandas_dtype()) for c in wanted}
    start = 0
    reader = pacsv.open_csv(
        paths.predictions,
        read_options=pacsv.ReadOptions(block_size=1 << 24),
        convert_options=options,
    )
    for batch in reader:
        for c in wanted:
            out[c][start : start + batch.num_rows] = batch.column(c).to_numpy(zero_copy_only=False)
        start += batch.num_rows
    pa.default_memory_pool().release_unused()
    return pd.DataFrame(out)


def plot(p: PlotParams, paths: Paths) -> None:
    metrics = read_json(paths.metrics)
    detectors, headline = list(metrics["detectors"]), metrics["headline"]
    columns = [f"flag_{headline}", *(f"score_{d}" for d in detectors)]
    predictions = read_predictions(paths, columns, metrics["test"]["rows"])
    roc, pr = curve_rows(predictions, detectors, p.plot.curve_points)
    write_rows(Path(paths.figure(ROC)), roc)
    write_rows(Path(paths.figure(PR)), pr)
    write_rows(Path(paths.figure(RECALL_PER_CATEGORY)), category_rows(metrics))
    write_rows(
        Path(paths.figure(FEATURE_SETS)),
        [{"run": f"{r['feature_set']} / {r['detector']}", **r} for r in metrics["feature_sets"]],
    )
    has_time = predictions["time"].notna().any()
    figure = time_figure(predictions, headline, has_time, p.plot.window)
    save_figure(figure, Path(paths.figure(ANOMALIES)))
    save_figure(distributions_figure(predictions, metrics), Path(paths.figure(DISTRIBUTIONS)))
    save_figure(category_figure(metrics), Path(paths.figure(CATEGORY_CHART)))
    if metrics["feature_sets"]:
        figure = feature_set_figure(metrics["feature_sets"])
        save_figure(figure, Path(paths.figure(FEATURE_SET_CHART)))
    history = read_live_history(paths.live)
    if history:
        title = "traffic: autoencoder reconstruction loss"
        figure = training_curves_figure(history, title)
        save_figure(figure, Path(paths.figure(TRAINING_CHART)))
    Path(paths.figure(REPORT)).write_text(report(metrics))


if __name__ == "__main__":
    runner.main(plot, PROJECT)
