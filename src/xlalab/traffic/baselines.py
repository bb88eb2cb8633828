"""The floors every detector must clear, scored on the same rows as the detectors: random scores
(thresholded like a detector, on normal validation traffic) and flagging everything (every row an
alarm: recall 1, precision the attack share; one score for every row, so its ROC-AUC is 0.5)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .analysis import anomaly, judge, recall_by
from .project import EvaluateParams

RANDOM, FLAG_EVERYTHING = "random_scores", "flag_everything"


def random_scores(seed: int, rows: dict[str, int]) -> dict[str, np.ndarray]:
    """Uniform scores for every row of each split, drawn in the order of ``rows`` from one seeded
    generator: the same rows get the same scores in every run, whatever the labels."""
    rng = np.random.default_rng(seed)
    return {split: rng.random(n) for split, n in rows.items()}


def flag_everything(n: int) -> np.ndarray:
    """Every row an alarm."""
    return np.ones(n, dtype=bool)


def reports(
    p: EvaluateParams, y: np.ndarray, info: pd.DataFrame, unseen: np.ndarray, n_val: int
) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Both baselines on the test rows: their reports, alarms and scores."""
    drawn = random_scores(p.seed, {"val": n_val, "test": len(y)})
    e = p.evaluate
    report, random_flags = judge(
        y, info, unseen, drawn["val"], drawn["test"], e.threshold_percentile,
        e.fixed_false_alarm_rate,
    )  # fmt: skip
    everything = flag_everything(len(y))
    flag_report = anomaly(y, everything.astype(float), everything)
    flag_report.update(
        threshold=None,
        at_fixed_false_alarm_rate=None,
        recall_per_category=recall_by(info["category"], y, everything),
        recall_unseen_attacks=1.0 if (y & unseen).any() else None,
    )
    alarms = {RANDOM: random_flags, FLAG_EVERYTHING: everything}
    scores = {RANDOM: drawn["test"], FLAG_EVERYTHING: everything.astype(float)}
    return {RANDOM: report, FLAG_EVERYTHING: flag_report}, alarms, scores
