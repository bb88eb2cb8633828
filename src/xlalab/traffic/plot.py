"""The plot stage: ROC and PR curves with the operating points, recall per attack category, score
distributions, anomalies over time, the feature-set study and the anomaly report.

In detail: the detectors' ROC and PR curves with each one's operating point (where its alarms
fire) marked, recall per attack category, anomalies over time (record order where the source has
no timestamps, and labelled so), score distributions of normal and attack traffic with each
detector's alarm threshold, ROC and PR curves as DVC plot data, the feature-set table as a chart,
the training curve, and ``report.md``: the verdict with its intervals, what the headline
detector caught and missed and where its false alarms come from, written from evaluate's details.

The figures read the predictions (scores, alarms, labels and categories per test row): the
operating points, thresholds and recalls drawn are those of the alarms evaluate wrote. What they
take from evaluate's details is read in ``figure_facts`` alone. Every file's name comes from
project.py, its folder from ``Paths``; every title says what its figure shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from pandas.api.types import union_categoricals
from sklearn.metrics import precision_recall_curve, roc_curve

from ..files import read_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from ..results.plots import (
    finding,
    legend_below,
    percent,
    place_legend,
    plt,
    read_live_history,
    save_figure,
    training_curves_figure,
    training_title,
    write_rows,
)
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
    ROC_PR_CHART,
    TRAINING_CHART,
    PlotParams,
)
from .report import report


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
        # interpolated precision: the best precision at this recall or higher. scikit-learn lists
        # recall falling, so "this recall or higher" is every point up to here.
        best = np.maximum.accumulate(precision)
        pr[name] = np.interp(grid, recall[::-1], best[::-1])

    def to_rows(table: dict) -> list[dict]:
        return [dict(zip(table, map(float, values))) for values in zip(*table.values())]

    return to_rows(roc), to_rows(pr)


def operating_points(predictions: pd.DataFrame, detectors: list[str]) -> dict[str, dict]:
    """Each detector's alarms on the test traffic: false-alarm rate, recall and precision."""
    attack = predictions["is_attack"].to_numpy(bool)
    points = {}
    for name in detectors:
        flag = predictions[f"flag_{name}"].to_numpy(bool)
        points[name] = {
            "false_alarm_rate": float(flag[~attack].mean()) if (~attack).any() else 0.0,
            "recall": float(flag[attack].mean()) if attack.any() else 0.0,
            "precision": float(attack[flag].mean()) if flag.any() else 1.0,
        }
    return points


def roc_pr_title(roc: list[dict], points: dict[str, dict], headline: str) -> str:
    grid = np.array([r["fpr"] for r in roc])
    auc = {name: float(np.trapezoid([r[name] for r in roc], grid)) for name in points}
    ranked = sorted(auc, key=auc.get, reverse=True)
    h = points[headline]
    return (
        f"traffic: {ranked[0]} ranks attacks best (ROC-AUC {auc[ranked[0]]:.3f}, "
        f"{ranked[-1]} {auc[ranked[-1]]:.3f}); at its alarm threshold {headline} catches "
        f"{percent(h['recall'], 1)} of attacks with {percent(h['false_alarm_rate'], 1)} false "
        "alarms"
    )


def roc_pr_figure(
    roc: list[dict], pr: list[dict], points: dict[str, dict], headline: str
) -> plt.Figure:
    """ROC (left) and precision-recall (right) curves of every detector on the test traffic, each
    with a dot where its alarms operate."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    fpr, recall = [r["fpr"] for r in roc], [r["recall"] for r in pr]
    for i, (name, point) in enumerate(points.items()):
        colour, width = f"C{i}", 2.2 if name == headline else 1.2
        left.plot(fpr, [r[name] for r in roc], color=colour, lw=width, label=name)
        left.plot(point["false_alarm_rate"], point["recall"], "o", color=colour, ms=7, mec="black")
        right.plot(recall, [r[name] for r in pr], color=colour, lw=width, label=name)
        right.plot(point["recall"], point["precision"], "o", color=colour, ms=7, mec="black")
    left.plot([0, 1], [0, 1], color="grey", ls=":", lw=0.8)
    left.set(
        xlabel="false-alarm rate (normal traffic flagged)",
        ylabel="recall (attacks caught)",
        title="ROC; dots: the alarm thresholds",
    )
    right.set(
        xlabel="recall", ylabel="precision (alarms that are attacks)", title="precision-recall"
    )
    finding(fig, roc_pr_title(roc, points, headline))
    fig.tight_layout()
    place_legend(left, fontsize=8)
    place_legend(right, fontsize=8)
    return fig


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
    flagged, attacks = frame[f"flag_{headline}"].to_numpy(bool), frame["is_attack"].to_numpy(bool)
    along = "time" if has_time else "record order"
    ax.set(xlabel=xlabel, ylabel="share of traffic", ylim=(-0.02, 1.02))
    finding(
        fig,
        f"traffic: {headline} flags {percent(flagged.mean(), 1)} of the test records, "
        f"{percent(attacks.mean(), 1)} are attacks; along the {along} its alarm share moves with "
        f"the attack share (correlation "
        f"{np.corrcoef(rolled['is_attack'], rolled[f'flag_{headline}'])[0, 1]:.2f} over the "
        f"rolling windows)",
    )
    fig.tight_layout()
    place_legend(ax, fontsize=8)
    return fig


def alarm_threshold(scores: np.ndarray, flags: np.ndarray) -> float | None:
    """Where a detector's alarms start: its lowest score that raised one."""
    return float(scores[flags].min()) if flags.any() else None


def separation(scores: np.ndarray, attack: np.ndarray) -> float:
    """The share of attacks scoring above 95 % of the normal records."""
    return float((scores[attack] > np.percentile(scores[~attack], 95)).mean())


def distributions_figure(predictions: pd.DataFrame, detectors: list[str]) -> plt.Figure:
    fig, axes = plt.subplots(1, len(detectors), figsize=(4.2 * len(detectors), 3.8), squeeze=False)
    attack = predictions["is_attack"].to_numpy(bool)
    apart = {}
    for ax, name in zip(axes[0], detectors):
        scores = predictions[f"score_{name}"].to_numpy(float)
        apart[name] = separation(scores, attack)
        low, high = np.percentile(scores, [0.5, 99.5])
        bins = np.linspace(low, high, 60)
        ax.hist(
            np.clip(scores[~attack], low, high), bins=bins, alpha=0.6, density=True, label="normal"
        )
        ax.hist(
            np.clip(scores[attack], low, high), bins=bins, alpha=0.6, density=True, label="attack"
        )
        threshold = alarm_threshold(scores, predictions[f"flag_{name}"].to_numpy(bool))
        if threshold is not None:
            ax.axvline(threshold, color="black", ls="--", label="alarm threshold")
        ax.set(title=name, xlabel="anomaly score (clipped to 0.5-99.5 %)")
        ax.set_yscale("log")
    best = max(apart, key=apart.get)
    worst = min(apart, key=apart.get)
    finding(
        fig,
        f"traffic: {best} separates attacks from normal traffic most "
        f"({percent(apart[best])} of attacks score above 95 % of normal records; {worst} "
        f"{percent(apart[worst])}); alarm thresholds from normal validation traffic",
    )
    legend_below(fig, axes[0][0], fontsize=8)
    return fig


def recall_per_category(predictions: pd.DataFrame, detectors: list[str]) -> pd.DataFrame:
    """Per attack category (rows, most attacks first) and detector (columns): the share of its test
    attacks the detector's alarms caught; ``attacks``: how many there are."""
    attacks = predictions[predictions["is_attack"] == 1]
    caught = attacks.groupby("category", observed=True)[[f"flag_{d}" for d in detectors]].mean()
    caught.columns = detectors
    caught["attacks"] = attacks.groupby("category", observed=True).size()
    return caught.sort_values("attacks", ascending=False, kind="stable")


def category_rows(table: pd.DataFrame, detectors: list[str]) -> list[dict]:
    return [
        {
            "category": f"{category} ({name})",
            "detector": name,
            "recall": float(row[name]),
            "attacks": int(row["attacks"]),
        }
        for category, row in table.iterrows()
        for name in detectors
    ]


def category_title(table: pd.DataFrame, detectors: list[str], headline: str) -> str:
    hardest = table[detectors].mean(axis=1).idxmin()
    best_there = table.loc[hardest, detectors].astype(float).idxmax()
    return (
        f"traffic: {hardest} is the hardest category to catch (mean recall "
        f"{table.loc[hardest, detectors].mean():.2f} over the detectors; best {best_there} "
        f"{table.loc[hardest, best_there]:.2f}); {headline} catches "
        + ", ".join(f"{c} {table.loc[c, headline]:.2f}" for c in table.index)
    )


def category_figure(table: pd.DataFrame, detectors: list[str], headline: str) -> plt.Figure:
    categories = list(table.index)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(detectors)
    for i, name in enumerate(detectors):
        ax.bar(np.arange(len(categories)) + i * width, table[name], width, label=name)
    ax.set_xticks(
        np.arange(len(categories)) + 0.4 - width / 2,
        [f"{c}\n({n} attacks)" for c, n in zip(categories, table["attacks"])],
    )
    ax.set(ylabel="recall at the alarm threshold", ylim=(0, 1.05))
    finding(fig, category_title(table, detectors, headline))
    fig.tight_layout()
    place_legend(ax, fontsize=8)
    return fig


def feature_set_figure(study: list[dict]) -> plt.Figure:
    table = pd.DataFrame(study).pivot(index="feature_set", columns="detector", values="roc_auc")
    table = table.reindex(
        [r["feature_set"] for r in study if r["detector"] == study[0]["detector"]]
    )
    fig, ax = plt.subplots(figsize=(9, 4.5))
    table.plot.bar(ax=ax, rot=0, legend=False)
    ax.set(ylabel="ROC-AUC on test traffic", ylim=(0.4, 1))
    ax.axhline(0.5, color="grey", ls=":")
    best = max(study, key=lambda r: r["roc_auc"])
    by_set = table.max(axis=1).sort_values(ascending=False)  # each set's best detector
    text = (
        f"traffic: the {best['feature_set']} feature set ranks attacks best "
        f"({best['detector']}, ROC-AUC {best['roc_auc']:.3f})"
    )
    if len(by_set) > 1:
        text += (
            f", then {by_set.index[1]} ({by_set.iloc[1]:.3f}); {by_set.index[-1]} is the "
            f"weakest ({by_set.iloc[-1]:.3f})"
        )
    finding(fig, text)
    fig.tight_layout()
    place_legend(ax, fontsize=8)
    return fig


def read_predictions(paths: Paths, columns: list[str], rows: int) -> pd.DataFrame:
    """The columns the figures use, streamed from the predictions in blocks (the whole CSV of 5 M
    rows is never parsed in memory at once: 2 GB)."""
    types = {"time": pa.float64(), "is_attack": pa.int8()}
    types |= {c: pa.float64() if c.startswith("score_") else pa.int8() for c in columns}
    wanted = ["is_attack", "time", *columns]
    options = pacsv.ConvertOptions(
        include_columns=[*wanted, "category"], column_types=types | {"category": pa.string()}
    )
    out = {c: np.empty(rows, dtype=types[c].to_pandas_dtype()) for c in wanted}
    categories = []  # a few distinct names: kept as a categorical, a byte or two per row
    start = 0
    reader = pacsv.open_csv(
        paths.predictions,
        read_options=pacsv.ReadOptions(block_size=1 << 24),
        convert_options=options,
    )
    for batch in reader:
        for c in wanted:
            out[c][start : start + batch.num_rows] = batch.column(c).to_numpy(zero_copy_only=False)
        categories.append(
            pd.Categorical(batch.column("category").to_numpy(zero_copy_only=False).astype(str))
        )
        start += batch.num_rows
    pa.default_memory_pool().release_unused()
    frame = pd.DataFrame(out)
    frame["category"] = union_categoricals(categories) if categories else pd.Categorical([])
    return frame


def figure_facts(metrics: dict) -> tuple[list[str], str, int, list[dict]]:
    """What the figures take from the metrics file: the detectors, the headline, the number of
    test rows (to size the arrays the predictions are streamed into) and the feature-set study."""
    return (
        list(metrics["detectors"]),
        metrics["headline"],
        int(metrics["test"]["rows"]),
        metrics.get("feature_sets") or [],
    )


def plot(params: PlotParams, paths: Paths) -> None:
    details = read_json(paths.details)  # evaluate's details: every detector's report
    detectors, headline, rows, study = figure_facts(details)
    columns = [*(f"flag_{d}" for d in detectors), *(f"score_{d}" for d in detectors)]
    predictions = read_predictions(paths, columns, rows)
    roc, pr = curve_rows(predictions, detectors, params.plot.curve_points)
    write_rows(Path(paths.figure(ROC)), roc)
    write_rows(Path(paths.figure(PR)), pr)
    points = operating_points(predictions, detectors)
    save_figure(roc_pr_figure(roc, pr, points, headline), Path(paths.figure(ROC_PR_CHART)))
    by_category = recall_per_category(predictions, detectors)
    write_rows(Path(paths.figure(RECALL_PER_CATEGORY)), category_rows(by_category, detectors))
    save_figure(
        category_figure(by_category, detectors, headline), Path(paths.figure(CATEGORY_CHART))
    )
    write_rows(
        Path(paths.figure(FEATURE_SETS)),
        [{"run": f"{r['feature_set']} / {r['detector']}", **r} for r in study],
    )
    has_time = predictions["time"].notna().any()
    figure = time_figure(predictions, headline, has_time, params.plot.window)
    save_figure(figure, Path(paths.figure(ANOMALIES)))
    save_figure(distributions_figure(predictions, detectors), Path(paths.figure(DISTRIBUTIONS)))
    if study:
        save_figure(feature_set_figure(study), Path(paths.figure(FEATURE_SET_CHART)))
    history = read_live_history(paths.live)
    if history:
        title = training_title("traffic: autoencoder reconstruction", history, "val/loss")
        figure = training_curves_figure(history, title)
        save_figure(figure, Path(paths.figure(TRAINING_CHART)))
    Path(paths.figure(REPORT)).write_text(report(details))


if __name__ == "__main__":
    runner.main(plot, PROJECT)
