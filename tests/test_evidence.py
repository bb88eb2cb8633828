"""The verdict's statistics: metrics that take row weights agree with scikit-learn, resamples are
what they say, and the three outcomes follow the interval of the paired difference."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from xlalab import numbers
from xlalab.results import evidence


def test_weighted_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 3, 500), rng.integers(0, 3, 500)
    w = rng.integers(0, 4, 500).astype(float)
    assert evidence.accuracy(y, pred, w) == pytest.approx(
        skm.accuracy_score(y, pred, sample_weight=w)
    )
    assert evidence.macro_f1_of(3)(y, pred, w) == pytest.approx(
        skm.f1_score(y, pred, average="macro", sample_weight=w)
    )
    yb, pb = y % 2, pred % 2
    assert evidence.f1_of_class(1)(yb, pb, w) == pytest.approx(
        skm.f1_score(yb, pb, sample_weight=w)
    )
    a, b = rng.normal(size=500), rng.normal(size=500)
    assert evidence.mae(a, b, w) == pytest.approx(skm.mean_absolute_error(a, b, sample_weight=w))
    assert evidence.rmse(a, b, w) == pytest.approx(
        skm.root_mean_squared_error(a, b, sample_weight=w)
    )
    # ROC-AUC of continuous scores and of scores with many ties (ties count half)
    for scores in (rng.normal(size=500) + yb, np.round(rng.normal(size=500) + yb, 1)):
        expected = skm.roc_auc_score(yb, scores, sample_weight=w)
        assert evidence.roc_auc(yb, scores, w) == pytest.approx(expected)
        ranks = np.unique(scores, return_inverse=True)[1]
        assert evidence.roc_auc_of_ranks(yb, ranks, w) == pytest.approx(expected)
    assert np.isnan(evidence.roc_auc(np.ones(5, int), np.arange(5.0), np.ones(5)))


def test_resamples_draw_n_rows_and_blocks_keep_neighbours_together():
    for w in evidence.resamples(100, count=20, seed=1):
        assert w.sum() == 100
    for w in evidence.resamples(100, count=20, seed=1, block=10):
        assert w.sum() == 100
    # With blocks of 10, a row's neighbour is drawn about as often as the row itself.
    draws = np.array(list(evidence.resamples(200, count=300, seed=2, block=10)))
    same = np.corrcoef(draws[:, 50], draws[:, 51])[0, 1]
    rows = np.array(list(evidence.resamples(200, count=300, seed=2)))
    assert same > 0.5 > abs(np.corrcoef(rows[:, 50], rows[:, 51])[0, 1])
    # The last row's block goes on with the first rows (circular), so they are drawn together.
    assert np.corrcoef(draws[:, -1], draws[:, 0])[0, 1] > 0.5


def test_circular_blocks_draw_the_first_and_last_rows_as_often_as_the_middle():
    """Moving blocks that stop at the last row would draw the first and last rows about
    1/block as often as a middle row; circular blocks draw every row equally often."""
    n, block = 100, 10
    draws = np.array(list(evidence.resamples(n, count=4000, seed=3, block=block)))
    per_row = draws.mean(axis=0)  # 1 for every row if none is favoured
    assert per_row[0] == pytest.approx(1, abs=0.1) and per_row[-1] == pytest.approx(1, abs=0.1)
    assert per_row[:block].mean() == pytest.approx(per_row[40:60].mean(), abs=0.05)


def test_blocks_leave_the_row_bootstrap_as_it_was():
    """Only resampling in blocks changed: a row bootstrap draws what it always drew (the rows
    of ``rng.integers``), so no project without blocks sees other intervals."""
    rng = np.random.default_rng(7)
    expected = [np.bincount(rng.integers(0, 50, 50), minlength=50) for _ in range(3)]
    drawn = list(evidence.resamples(50, count=3, seed=7))
    assert all((a == b).all() for a, b in zip(drawn, expected))


def verdict(model_correct: float, baseline_correct: float, n: int = 400, **kw) -> dict:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, n)
    flip = lambda share: np.where(rng.random(n) < share, y, 1 - y)  # noqa: E731
    predictions = {
        "model": flip(model_correct),
        "const": np.zeros(n, int),
        "other": flip(baseline_correct),
    }
    return evidence.compare(
        "model",
        predictions,
        y,
        evidence.accuracy,
        metric_name="accuracy",
        higher_is_better=True,
        baselines=["const", "other"],
        **kw,
    )


def test_the_three_outcomes_follow_the_interval_of_the_difference():
    clear = verdict(0.95, 0.7)
    assert clear["verdict"] == "beats" and clear["best_baseline"] == "other"
    assert (
        0 < clear["difference_interval"][0] < clear["difference"] < clear["difference_interval"][1]
    )
    assert clear["interval"][0] < clear["score"] < clear["interval"][1]
    assert verdict(0.8, 0.8)["verdict"] == "ties"
    assert verdict(0.6, 0.9)["verdict"] == "loses"
    assert "(95 %): beats" in clear["line"]
    # the log's line prints its numbers as `xlalab summary` and the results page do
    difference = numbers.with_interval(clear["difference"], clear["difference_interval"], sign=True)
    assert (
        f"accuracy ↑ {numbers.with_interval(clear['score'], clear['interval'])} vs"
        in (clear["line"])
    )
    assert f": difference {difference} (95 %)" in clear["line"]


def test_lower_is_better_and_identical_predictions_tie():
    y = np.linspace(0, 1, 50)
    same = {"m": y + 0.1, "b": y + 0.1}
    v = evidence.compare(
        "m", same, y, evidence.mae, metric_name="mae", higher_is_better=False, baselines=["b"]
    )
    assert v["verdict"] == "ties" and v["difference_interval"] == [0.0, 0.0]
    better = {"m": y + 0.01, "b": y + 0.1}
    v = evidence.compare(
        "m", better, y, evidence.mae, metric_name="mae", higher_is_better=False, baselines=["b"]
    )
    assert v["verdict"] == "beats" and v["difference"] < 0


def test_the_same_seed_gives_the_same_intervals():
    assert verdict(0.8, 0.75, seed=5) == verdict(0.8, 0.75, seed=5)


def test_collapsed_rows_give_the_same_scores_and_the_same_bootstrap_distribution():
    """Rows with equal labels and predictions collapsed into one weighted row: the same point
    scores, and intervals from a multinomial draw that match the row bootstrap's."""
    rng = np.random.default_rng(4)
    n = 3000
    y = rng.integers(0, 2, n)
    predictions = {
        "model": np.where(rng.random(n) < 0.8, y, 1 - y),
        "other": np.where(rng.random(n) < 0.7, y, 1 - y),
    }
    code = y * 4 + predictions["model"] * 2 + predictions["other"]
    counts = np.bincount(code, minlength=8)
    kept = np.flatnonzero(counts)
    collapsed = {"model": (kept >> 1) & 1, "other": kept & 1}
    kw = dict(metric_name="f1", higher_is_better=True, baselines=["other"], seed=0)
    full = evidence.compare("model", predictions, y, evidence.f1_of_class(1), **kw)
    short = evidence.compare(
        "model", collapsed, kept >> 2, evidence.f1_of_class(1), weights=counts[kept], **kw
    )
    assert short["score"] == pytest.approx(full["score"])
    assert short["baseline_score"] == pytest.approx(full["baseline_score"])
    for key in ("interval", "difference_interval"):
        assert short[key] == pytest.approx(full[key], abs=0.006)
    for w in evidence.resamples(len(kept), count=5, seed=1, weights=counts[kept]):
        assert w.sum() == n
    with pytest.raises(ValueError, match="blocks"):
        next(evidence.resamples(3, block=2, weights=np.ones(3)))
