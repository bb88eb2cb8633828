"""What a detector's alarms amount to on labelled rows: precision, recall, F1, ROC-AUC and PR-AUC at
its threshold, recall at a fixed false-alarm rate, recall per attack category and on attack types
never seen in training, and where its false alarms and misses come from. Thresholds come from the
scores of NORMAL validation traffic only."""

from __future__ import annotations

import numpy as np
import pandas as pd


def ranking_metrics(y: np.ndarray, scores: np.ndarray) -> tuple[float | None, float | None]:
    """ROC-AUC and PR-AUC (average precision) exactly as scikit-learn defines them (trapezoids
    under the ROC curve; precision summed over the recall steps, one step per distinct score), from
    one sort and 32-bit counts: on 5 M rows scikit-learn's two calls take 380 MB, this 150 MB."""
    positives = int(np.count_nonzero(y))
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None, None
    order = np.argsort(scores, kind="stable")[::-1]  # highest score first
    ranked, hit = scores[order], np.asarray(y, bool)[order]
    del order
    last = np.ones(len(ranked), dtype=bool)  # the last row of each run of equal scores
    np.not_equal(ranked[1:], ranked[:-1], out=last[:-1])
    del ranked
    tps = np.cumsum(hit, dtype=np.int32)[last]  # true positives above each distinct threshold
    fps = np.cumsum(~hit, dtype=np.int32)[last]
    del hit, last
    tps_before = np.concatenate([[0], tps[:-1]])
    fps_steps = np.diff(fps, prepend=0).astype(np.float64)
    roc_auc = float(np.dot(fps_steps, tps + tps_before.astype(np.float64))) / (
        2.0 * positives * negatives
    )
    del fps_steps
    precision = tps / (tps + fps.astype(np.float64))
    pr_auc = float(np.dot((tps - tps_before).astype(np.float64), precision)) / positives
    return roc_auc, pr_auc


def anomaly(is_anomaly: np.ndarray, scores: np.ndarray, flagged: np.ndarray) -> dict:
    """Precision, recall and F1 of the alarms; ROC-AUC and PR-AUC of the scores (higher = more
    anomalous): ``core.reports.anomaly``'s report, in a fraction of its memory on millions of
    rows."""
    y, f = np.asarray(is_anomaly, bool), np.asarray(flagged, bool)
    tp, alarms, positives = int(np.count_nonzero(y & f)), int(f.sum()), int(y.sum())
    precision = tp / alarms if alarms else 0.0
    recall = tp / positives if positives else 0.0
    f1 = 2 * tp / (alarms + positives) if alarms + positives else 0.0
    roc_auc, pr_auc = ranking_metrics(y, np.asarray(scores, dtype=np.float64))
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "alarm_rate": alarms / len(f),
        "alarms": alarms,
    }


def threshold_at(val_scores: np.ndarray, percentile: float) -> float:
    """The alarm threshold: this percentile of the scores of normal validation traffic, so that
    100 - ``percentile`` percent of it raises alarms."""
    return float(np.percentile(val_scores, percentile))


def recall_by(groups: pd.Series, is_attack: np.ndarray, flagged: np.ndarray) -> dict[str, dict]:
    frame = pd.DataFrame({"group": groups.to_numpy(), "caught": flagged})[is_attack]
    table = frame.groupby("group", observed=True)["caught"].agg(["mean", "size"])
    table = table.sort_values("size", ascending=False, kind="stable")
    return {
        str(k): {"recall": float(r["mean"]), "attacks": int(r["size"])} for k, r in table.iterrows()
    }


def at_false_alarm_rate(
    y: np.ndarray, val_scores: np.ndarray, test_scores: np.ndarray, rate: float
) -> dict:
    """Recall with the threshold that raises ``rate`` false alarms on normal validation traffic
    (and the false-alarm rate it then has on normal test traffic)."""
    threshold = threshold_at(val_scores, 100 - 100 * rate)
    flagged = test_scores > threshold
    return {
        "rate": rate,
        "threshold": threshold,
        "recall": float(flagged[y].mean()) if y.any() else None,
        "test_false_alarm_rate": float(flagged[~y].mean()) if (~y).any() else None,
    }


def judge(
    y: np.ndarray,
    info: pd.DataFrame,
    unseen: np.ndarray,
    val_scores: np.ndarray,
    test_scores: np.ndarray,
    percentile: float,
    fixed_false_alarm_rate: float,
) -> tuple[dict, np.ndarray]:
    """A detector's report and alarms at the ``percentile`` of its normal validation scores;
    recall is also given at ``fixed_false_alarm_rate``."""
    threshold = threshold_at(val_scores, percentile)
    flagged = test_scores > threshold
    report = anomaly(y, test_scores, flagged)
    report.update(
        threshold=threshold,
        val_alarm_rate=float((val_scores > threshold).mean()),
        at_fixed_false_alarm_rate=at_false_alarm_rate(
            y, val_scores, test_scores, fixed_false_alarm_rate
        ),
        recall_per_category=recall_by(info["category"], y, flagged),
        recall_unseen_attacks=float(flagged[y & unseen].mean()) if (y & unseen).any() else None,
        recall_seen_attacks=float(flagged[y & ~unseen].mean()) if (y & ~unseen).any() else None,
    )
    return report, flagged


def dominant(
    frame: pd.DataFrame, columns: list[str], reference: pd.DataFrame, top: int = 5
) -> dict:
    """Per column, the values most common in ``frame`` with their count, their share of ``frame``
    and the share of that value's ``reference`` rows that ended up in ``frame``."""
    out = {}
    for c in columns:
        counts = frame[c].value_counts(sort=False)
        counts = counts[counts > 0].sort_values(ascending=False, kind="stable").head(top)
        totals = reference[c].value_counts(sort=False)
        out[c] = [
            {
                "value": str(v),
                "count": int(n),
                "share": float(n / max(len(frame), 1)),
                "rate": float(n / totals.get(v, n)),
            }
            for v, n in counts.items()
        ]
    return out


def error_analysis(
    info: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    flagged: np.ndarray,
    categorical: list[str],
    top: int,
) -> dict:
    false_alarm, missed = flagged & ~y, ~flagged & y
    fp, fn = info[false_alarm], info[missed]
    rows = np.flatnonzero(false_alarm)
    highest = rows[np.argsort(-scores[rows], kind="stable")[:top]]
    return {
        "false_positives": int(false_alarm.sum()),
        "false_negatives": int(missed.sum()),
        "false_positive_rate": float(false_alarm.sum() / max((~y).sum(), 1)),
        "false_positives_by": dominant(fp, categorical, info[~y]),
        "false_negatives_by": dominant(fn, ["attack", "category", *categorical], info[y]),
        "highest_scoring_false_alarms": [
            {
                "row": int(i),
                "score": float(scores[i]),
                **{c: str(info[c].iat[i]) for c in categorical},
            }
            for i in highest
        ],
    }
