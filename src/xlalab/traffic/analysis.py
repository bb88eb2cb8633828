"""What a detector's alarms amount to on labelled rows: precision, recall, F1, ROC-AUC and PR-AUC at
its threshold, recall at a fixed false-alarm rate, recall per attack category and on attack types
never seen in training, and where its false alarms and misses come from. Thresholds come from the
scores of NORMAL validation traffic only.

The verdict is on ROC-AUC, which no threshold moves: the headline detector's against the strongest
other candidate's, with a paired bootstrap of the test rows (``ranking_verdict``). F1 at the
common operating point (every detector at the same false-alarm rate on normal validation traffic)
is compared beside it (``operating_point_verdict``); thresholds put at the same false-alarm rate on
the normal TEST rows are a diagnostic only, since they are set with test labels
(``same_test_false_alarm_rate``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..results.evidence import compare, f1_of_class, roc_auc_of_ranks

SLICE = 1 << 20


def ranking_metrics(y: np.ndarray, scores: np.ndarray) -> tuple[float | None, float | None]:
    """ROC-AUC and PR-AUC (average precision) as scikit-learn defines them, from the sorted scores
    of attacks and of normal rows: ROC-AUC is the chance that an attack outscores a normal row
    (ties count half: the area under scikit-learn's trapezoids); average precision sums, over
    each distinct attack score, the share of attacks at it times the precision of the alarms at
    or above it. On 5 M rows it needs 100 MB where scikit-learn's two calls need 380 MB."""
    attacks, normal = np.sort(scores[y]), np.sort(scores[~y])
    if len(attacks) == 0 or len(normal) == 0:
        return None, None
    below = int(np.searchsorted(normal, attacks, side="left").sum())
    at_or_below = int(np.searchsorted(normal, attacks, side="right").sum())
    roc_auc = (below + (at_or_below - below) / 2) / (len(attacks) * len(normal))
    starts = np.ones(len(attacks), dtype=bool)  # where each run of equal attack scores starts
    np.not_equal(attacks[1:], attacks[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    del starts
    total = 0.0
    for lo in range(0, len(first), SLICE):  # slices keep the float temporaries small
        part = first[lo : lo + SLICE]
        end = first[lo + SLICE] if lo + SLICE < len(first) else len(attacks)
        at_value = np.diff(part, append=end)  # attacks at each distinct score
        caught = len(attacks) - part  # attacks scored at or above it
        false_alarms = len(normal) - np.searchsorted(normal, attacks[part], side="left")
        total += float(np.dot(at_value, caught / (caught + false_alarms)))
    return roc_auc, total / len(attacks)


def alarms_report(is_anomaly: np.ndarray, flagged: np.ndarray) -> dict:
    """Precision, recall, F1 and accuracy of the alarms, and how many there are."""
    y, f = np.asarray(is_anomaly, bool), np.asarray(flagged, bool)
    tp, alarms, positives = int(np.count_nonzero(y & f)), int(f.sum()), int(y.sum())
    tn = len(f) - alarms - positives + tp  # rows neither flagged nor attacks
    return {
        "precision": tp / alarms if alarms else 0.0,
        "recall": tp / positives if positives else 0.0,
        "f1": 2 * tp / (alarms + positives) if alarms + positives else 0.0,
        "accuracy": (tp + tn) / len(f) if len(f) else 0.0,
        "alarm_rate": alarms / len(f) if len(f) else 0.0,
        "alarms": alarms,
    }


def anomaly(is_anomaly: np.ndarray, scores: np.ndarray, flagged: np.ndarray) -> dict:
    """Precision, recall, F1 and accuracy of the alarms; ROC-AUC and PR-AUC of the scores
    (higher = more anomalous): ``results.reports.anomaly``'s report, in a fraction of its memory
    on millions of rows."""
    y = np.asarray(is_anomaly, bool)
    roc_auc, pr_auc = ranking_metrics(y, np.asarray(scores, dtype=np.float64))
    return alarms_report(y, flagged) | {"roc_auc": roc_auc, "pr_auc": pr_auc}


def threshold_at(val_scores: np.ndarray, percentile: float) -> float:
    """The alarm threshold: this percentile of the scores of normal validation traffic, so that
    100 - ``percentile`` percent of it raises alarms."""
    return float(np.percentile(val_scores, percentile))


def recall_by(groups: pd.Series, is_attack: np.ndarray, flagged: np.ndarray) -> dict[str, dict]:
    """Recall per group of attacks (category, attack type), largest group first."""
    codes, names = pd.factorize(groups, sort=True)
    counted = is_attack & (codes >= 0)  # a missing group (code -1) counts in none
    size = np.bincount(codes[counted], minlength=len(names))
    caught = np.bincount(codes[counted], weights=flagged[counted], minlength=len(names))
    order = np.argsort(-size, kind="stable")
    return {
        str(names[k]): {"recall": float(caught[k] / size[k]), "attacks": int(size[k])}
        for k in order
        if size[k]
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


# --- the verdicts -------------------------------------------------------------------------------
def bootstrap_rows(n: int, most: int, seed: int) -> np.ndarray | None:
    """The test rows the ROC-AUC bootstrap resamples: all of them (None) up to ``most``, else a
    seeded sample of ``most`` rows in file order. A bootstrap of fewer rows gives a wider
    interval, never one narrower than the data support, at a cost that stays flat."""
    if n <= most:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, most, replace=False))


def ranking_verdict(
    headline: str, scores: dict[str, np.ndarray], y: np.ndarray, seed: int, rows: int
) -> dict:
    """The headline's ROC-AUC against the strongest of every other candidate's (detectors and
    baselines) on the same rows, paired bootstrap. Each candidate's scores become dense ranks
    once, so a resample costs one weighted count per candidate, not a sort. ``rows``: how many
    rows there are in all (``scores`` may hold a sample of them)."""
    ranks = {name: np.unique(s, return_inverse=True)[1].ravel() for name, s in scores.items()}
    others = [name for name in scores if name != headline]
    result = compare(
        headline, ranks, y.astype(np.int8), roc_auc_of_ranks, metric_name="roc_auc",
        higher_is_better=True, baselines=others, seed=seed,
    )  # fmt: skip
    result["bootstrap"] |= {"test_rows": len(y), "of": rows}
    return result


def collapse(y: np.ndarray, alarms: dict[str, np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
    """Test rows with the same label and the same alarm from every candidate, as one row each
    (at most 2 ** (candidates + 1) of them) and how many rows each stands for."""
    code = y.astype(np.int32)
    for bit, flags in enumerate(alarms.values(), start=1):
        code |= flags.astype(np.int32) << bit
    counts = np.bincount(code)
    patterns = np.flatnonzero(counts)
    columns = {name: (patterns >> bit) & 1 for bit, name in enumerate(alarms, start=1)}
    return patterns & 1, columns, counts[patterns]


def operating_point_verdict(
    headline: str, y: np.ndarray, alarms: dict[str, np.ndarray], seed: int
) -> dict:
    """The headline's F1 against the strongest other candidate's at the common operating point
    (every detector's threshold at the same false-alarm rate on normal validation traffic),
    paired bootstrap over the test rows (collapsed: the same distribution, drawn as one
    multinomial)."""
    labels, patterns, counts = collapse(y, alarms)
    others = [name for name in alarms if name != headline]
    return compare(
        headline, patterns, labels, f1_of_class(1), metric_name="f1", higher_is_better=True,
        baselines=others, seed=seed, weights=counts,
    )  # fmt: skip


def same_test_false_alarm_rate(y: np.ndarray, scores: np.ndarray, rate: float) -> dict:
    """DIAGNOSTIC (its threshold is set with the test labels): precision, recall and F1 with the
    threshold that raises ``rate`` false alarms on the normal TEST rows, so every detector is
    compared at exactly the same test false-alarm rate."""
    flagged = scores > threshold_at(scores[~y], 100 - 100 * rate)
    report = alarms_report(y, flagged)
    keep = ("precision", "recall", "f1", "accuracy")
    return {k: report[k] for k in keep} | {"test_false_alarm_rate": float(flagged[~y].mean())}


def rank_agreement(validation: dict[str, float], test: dict[str, float]) -> float | None:
    """DIAGNOSTIC: Spearman's correlation between the detectors' ROC-AUC ranking on validation
    traffic and on the test traffic (does the validation ranking carry over?)."""
    names = [n for n in validation if validation[n] is not None and test.get(n) is not None]
    if len(names) < 3:
        return None
    rho = spearmanr([validation[n] for n in names], [test[n] for n in names]).statistic
    return None if np.isnan(rho) else float(rho)


def test_card(y: np.ndarray, info: pd.DataFrame, unseen: np.ndarray, meta: dict) -> dict:
    """The test traffic, and its attack types by what the detectors saw of them: held out whole
    for validation (settings were chosen on them), in the other training rows (which the
    detectors are fitted on with ``fit_on: all``), or never seen in training."""
    types = set(info.loc[y, "attack"].astype(str))
    never_seen = set(info.loc[y & unseen, "attack"].astype(str))
    validation = types & set(meta["validation_attack_types"])
    return {
        "rows": int(len(y)),
        "attacks": int(y.sum()),
        "attack_share": float(y.mean()),
        "unseen_attack_rows": int((y & unseen).sum()),
        "unseen_attack_types": sorted(never_seen),
        "attack_types": {
            "in_validation": sorted(validation),
            "in_training_not_validation": sorted(types - validation - never_seen),
            "never_seen": sorted(never_seen),
        },
    }
