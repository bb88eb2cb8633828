"""Verdicts that are evidence: the headline model against its strongest baseline on the same test
rows, with 95 % bootstrap intervals for both scores and for their paired difference.

Every candidate is scored on the same resamples of the test rows (a paired bootstrap), so the
interval of the difference reflects how much the comparison itself could move with other test rows,
not the two scores' spreads added up. A resample is a vector of row weights (how many times each row
was drawn), which every metric here takes as ``sample_weight``. Time series are resampled in blocks
of consecutive rows, which keeps the dependence between neighbouring days that a row bootstrap
would break; the blocks are circular (Politis and Romano, 1992): a block may start on any row and
wraps from the last row to the first, so every row has the same chance to be drawn. Moving blocks
that stop at the last row draw the first and last ``block - 1`` rows less often (the first and last
row about ``1/block`` as often as a middle one).

The verdict has three outcomes: ``beats`` when the interval of the difference lies wholly on the
model's side of 0, ``loses`` when it lies wholly on the baseline's side, ``ties`` when it holds 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from ..numbers import metric_name, with_interval

# (y_true, y_pred, sample_weight) -> score. y_pred may be labels, values or scores.
Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]

LEVEL = 0.95
RESAMPLES = 1000
VERDICTS = ("beats", "ties", "loses")


# --- metrics that take row weights (numpy, fast enough for a thousand resamples) ---------------
def accuracy(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(w * (y == pred)) / np.sum(w))


def _confusion(y: np.ndarray, pred: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y * k + pred, weights=w, minlength=k * k).reshape(k, k)


def macro_f1_of(n_classes: int) -> Metric:
    """Macro-averaged F1 over ``n_classes`` integer labels (a class never predicted nor present
    scores 0, as scikit-learn's ``zero_division=0``)."""

    def macro_f1(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> float:
        cm = _confusion(np.asarray(y, int), np.asarray(pred, int), w, n_classes)
        tp = np.diag(cm)
        denominator = cm.sum(axis=0) + cm.sum(axis=1)
        f1 = np.divide(2 * tp, denominator, out=np.zeros(n_classes), where=denominator > 0)
        return float(f1.mean())

    return macro_f1


def f1_of_class(positive: int = 1) -> Metric:
    """F1 of one class (binary tasks: the positive class, or alarms on anomalies)."""

    def f1(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> float:
        hit, said = np.asarray(y) == positive, np.asarray(pred) == positive
        tp = np.sum(w * (hit & said))
        denominator = np.sum(w * hit) + np.sum(w * said)
        return float(2 * tp / denominator) if denominator > 0 else 0.0

    return f1


def roc_auc(y: np.ndarray, scores: np.ndarray, w: np.ndarray) -> float:
    """ROC-AUC of ``scores`` (higher = more likely the positive class 1) with row weights, as
    scikit-learn's ``roc_auc_score(sample_weight=w)``: the weighted chance that a positive row
    outscores a negative one, ties counting half."""
    return roc_auc_of_ranks(y, np.unique(scores, return_inverse=True)[1].ravel(), w)


def roc_auc_of_ranks(y: np.ndarray, ranks: np.ndarray, w: np.ndarray) -> float:
    """``roc_auc`` of scores already replaced by their dense ranks (0 for the lowest distinct
    score, as ``np.unique(scores, return_inverse=True)`` gives them): no sort, so each of a
    thousand resamples costs one weighted count per rank and class and a running sum."""
    size = int(ranks.max()) + 1 if len(ranks) else 1
    # One weighted count per (rank, class): column 0 the negative rows, column 1 the positive.
    cell = 2 * np.asarray(ranks, dtype=np.int64) + (np.asarray(y) == 1)
    negative, positive = np.bincount(cell, weights=w, minlength=2 * size).reshape(size, 2).T
    pairs = positive.sum() * negative.sum()
    if pairs <= 0:
        return float("nan")  # one class only: the area is undefined
    negatives_below = np.cumsum(negative) - negative
    # A sum of products, not ``@``: a BLAS dot product wakes its threads on every call, which on a
    # busy machine costs thirty times the counting itself.
    return float(np.sum(positive * (negatives_below + negative / 2)) / pairs)


def mae(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(w * np.abs(y - pred)) / np.sum(w))


def rmse(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> float:
    return float(np.sqrt(np.sum(w * (y - pred) ** 2) / np.sum(w)))


# --- resampling --------------------------------------------------------------------------------
def resamples(
    n: int,
    count: int = RESAMPLES,
    seed: int = 0,
    block: int | None = None,
    weights: np.ndarray | None = None,
) -> Iterator[np.ndarray]:
    """Row weights of ``count`` bootstrap resamples of ``n`` rows: rows drawn with replacement, or,
    with ``block``, runs of ``block`` consecutive rows drawn with replacement until ``n`` rows are
    reached (circular blocks: a run that passes the last row goes on from the first; the last run
    is cut to fit). With ``weights`` (row ``i`` stands for ``weights[i]`` identical rows), the
    counts of a row bootstrap of all ``sum(weights)`` rows, drawn as one multinomial: the same
    distribution, at the cost of ``n`` rows, not their sum."""
    rng = np.random.default_rng(seed)
    if weights is not None:
        if block is not None and block > 1:
            raise ValueError("collapsed rows (weights) cannot be resampled in blocks")
        total = np.asarray(weights, dtype=float)
        for _ in range(count):
            yield rng.multinomial(int(round(total.sum())), total / total.sum()).astype(float)
        return
    for rows in _drawn_rows(rng, n, count, block):
        yield np.bincount(rows, minlength=n).astype(float)


def resampled_rows(
    n: int, count: int = RESAMPLES, seed: int = 0, block: int | None = None
) -> Iterator[np.ndarray]:
    """The rows of the resamples ``resamples`` weighs, in the order drawn (a block's rows stay
    consecutive): for a statistic that depends on the order, such as a running sum over days."""
    yield from _drawn_rows(np.random.default_rng(seed), n, count, block)


def _drawn_rows(
    rng: np.random.Generator, n: int, count: int, block: int | None
) -> Iterator[np.ndarray]:
    for _ in range(count):
        if block is None or block <= 1:
            yield rng.integers(0, n, n)
        else:
            # circular blocks: a run that passes the last row goes on from the first
            starts = rng.integers(0, n, -(-n // block))
            yield (starts[:, None] + np.arange(block)).ravel()[:n] % n


def block_length(n_rows: int, block: int | None = None) -> int:
    """Consecutive rows per bootstrap block of a time series: ``block`` if given, else
    round(n ** (1/3)), the rate at which a block bootstrap's estimate of a mean's variance is best
    (Hall, Horowitz and Jing, 1995)."""
    return block if block is not None else max(1, round(n_rows ** (1 / 3)))


def interval(values: np.ndarray, level: float = LEVEL) -> list[float]:
    """The percentile interval holding ``level`` of ``values``."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [float(low), float(high)]


# --- the verdict ---------------------------------------------------------------------------------
def compare(
    model: str,
    predictions: Mapping[str, np.ndarray],
    y_true: np.ndarray,
    metric: Metric,
    *,
    metric_name: str,
    higher_is_better: bool,
    baselines: Sequence[str],
    count: int = RESAMPLES,
    seed: int = 0,
    block: int | None = None,
    weights: np.ndarray | None = None,
) -> dict:
    """Score ``model`` and every one of ``baselines`` (their ``predictions`` on the same rows as
    ``y_true``), find the strongest baseline, and judge the model against it with intervals.
    The strongest baseline is the one with the best score on these rows: of all the choices that
    could be made, the one least favourable to the model; it is chosen once and held fixed in
    every resample (``docs/verdicts.md``: what that does to the interval). ``weights``: see
    ``resamples``."""
    if not baselines:
        raise ValueError("a verdict needs at least one baseline")
    names = [model, *baselines]
    y = np.asarray(y_true)
    ones = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    scores = {name: metric(y, np.asarray(predictions[name]), ones) for name in names}
    drawn = np.array(
        [
            [metric(y, np.asarray(predictions[name]), w) for name in names]
            for w in resamples(len(y), count, seed, block, weights)
        ]
    )
    best = (max if higher_is_better else min)(baselines, key=lambda b: scores[b])
    # The difference model - baseline, and the same on every resample (paired).
    low, high = interval(drawn[:, 0] - drawn[:, names.index(best)])
    result = {
        "model": model,
        "metric": metric_name,
        "higher_is_better": higher_is_better,
        "score": scores[model],
        "interval": interval(drawn[:, 0]),
        "best_baseline": best,
        "baseline_score": scores[best],
        "baseline_interval": interval(drawn[:, names.index(best)]),
        "difference": scores[model] - scores[best],
        "difference_interval": [low, high],
        "verdict": outcome(low, high, higher_is_better),
        "baselines": {
            b: {"score": scores[b], "interval": interval(drawn[:, i + 1])}
            for i, b in enumerate(baselines)
        },
        "bootstrap": bootstrap_record(count, seed, block),
    }
    result["line"] = describe(result)
    return result


def bootstrap_record(count: int, seed: int, block: int | None) -> dict:
    """How a verdict's resamples were drawn, for its record."""
    unit = f"circular blocks of {block} consecutive rows" if block and block > 1 else "rows"
    return {"resamples": count, "level": LEVEL, "seed": seed, "unit": unit}


def outcome(low: float, high: float, higher_is_better: bool) -> str:
    """beats, ties or loses, from the interval of the difference model - baseline."""
    sign = 1.0 if higher_is_better else -1.0
    if sign * low > 0 and sign * high > 0:
        return "beats"
    return "loses" if sign * low < 0 and sign * high < 0 else "ties"


def describe(v: Mapping) -> str:
    """The verdict in one line, its numbers as ``xlalab summary`` prints them (xlalab/numbers.py):
    ``lstm mae ↓ 0.43 [0.38, 0.49] vs strongest baseline arima 0.43 [0.38, 0.49]: difference
    -0.0001 [-0.0040, 0.0044] (95 %): ties``."""
    return (
        f"{v['model']} {metric_name(v['metric'], v['higher_is_better'])} "
        f"{with_interval(v['score'], v['interval'])} vs strongest baseline {v['best_baseline']} "
        f"{with_interval(v['baseline_score'], v['baseline_interval'])}: difference "
        f"{with_interval(v['difference'], v['difference_interval'], sign=True)} (95 %): "
        f"{v['verdict']}"
    )
