"""The featurize stage: stratified samples of the raw data, tokenized into compact token files.

Texts are cut at ``max_length`` tokens and stored unpadded (``tokens.py``). Train and evaluate pad
each batch to one of a few fixed lengths (``buckets`` plus ``max_length``): XLA compiles one graph
per length, and a short text does not pay for the longest (CUDA kernels like multiples of 8).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from ..errors import UserError
from ..pipeline import runner
from ..pipeline.contract import Paths
from . import FeaturizeParams, corpus, tokens
from . import model as textmodel

logger = logging.getLogger(__name__)


COVERAGE = 95  # percent of the training texts that `max_length: auto` leaves uncut
MOST_TOKENS = 512  # BERT-family position limit; tokenizers without a limit report a huge sentinel


def longest(tokenizer) -> int:
    return min(tokenizer.model_max_length, MOST_TOKENS)


def choose_max_length(tokenizer, texts: Sequence[str]) -> int:
    """The token length that covers COVERAGE % of ``texts``, rounded up to a multiple of 8 (steady
    sizes for CUDA kernels), capped by the tokenizer's model_max_length."""
    lengths = tokens.token_counts(tokenizer, texts)
    covering = int(np.ceil(np.percentile(lengths, COVERAGE) / 8) * 8)
    return max(8, min(covering, longest(tokenizer)))


AUTO_BUCKETS = 3  # lengths below max_length that `buckets: auto` may pick (one graph each on XLA)
PADDING_WARNING = 2.0  # tokens computed per real token above which featurize warns


def choose_buckets(lengths: np.ndarray, max_length: int, most: int = AUTO_BUCKETS) -> list[int]:
    """At most ``most`` lengths below ``max_length``, multiples of 8, that pad the texts of
    ``lengths`` (cut at ``max_length``) to the fewest tokens, each text padded to the shortest
    length that holds it. Exact: a dynamic programme over the multiples of 8, where ``cost[k][i]``
    is the fewest tokens that pad every text up to ``candidates[i]`` with ``k`` buckets, the last
    at ``candidates[i]``."""
    candidates = np.arange(8, max_length, 8)
    if not len(candidates) or not len(lengths):
        return []
    # texts per candidate: those longer than the previous candidate and at most this one
    rows = np.bincount(
        np.searchsorted(candidates, np.minimum(lengths, max_length)), minlength=len(candidates) + 1
    )
    up_to = np.concatenate([[0], np.cumsum(rows[:-1])])  # texts at most candidates[i - 1] long
    within = up_to[1:, None] - up_to[None, :-1]  # within[i, j]: texts in (candidates[j-1], [i]]
    inf = np.iinfo(np.int64).max // 4
    cost = np.full((most + 1, len(candidates)), inf, dtype=np.int64)
    cost[1] = candidates * up_to[1:]  # one bucket: every text up to it padded to it
    choice = np.zeros_like(cost)
    for k in range(2, most + 1):
        for i in range(len(candidates)):
            for j in range(i):  # the previous bucket at candidates[j]
                added = cost[k - 1, j] + candidates[i] * within[i, j + 1]
                if added < cost[k, i]:
                    cost[k, i], choice[k, i] = added, j
    rest = max_length * (up_to[-1] + rows[-1] - up_to[1:])  # texts above candidates[i]
    best = (max_length * int(rows.sum()), 0, -1)  # (tokens, buckets, last bucket): none at all
    for k in range(1, most + 1):
        for i in range(len(candidates)):
            if cost[k, i] < inf and (cost[k, i] + rest[i], k) < best[:2]:
                best = (int(cost[k, i] + rest[i]), k, i)
    _, k, i = best
    picked = []
    while k > 0:
        picked.append(int(candidates[i]))
        i, k = choice[k, i], k - 1
    return sorted(picked)


def bucket_sizes(buckets: Sequence[int], max_length: int) -> list[int]:
    """The fixed lengths batches are padded to: the buckets below ``max_length``, then
    ``max_length`` itself (with ``max_length: auto`` a bucket may land above it, and goes)."""
    return [n for n in buckets if n < max_length] + [max_length]


def padding(lengths: dict[str, np.ndarray], sizes: Sequence[int]) -> dict[str, float]:
    """Tokens a batch computes on, per real token, with the buckets and with one fixed length."""
    real = sum(int(n.sum()) for n in lengths.values())
    rows = np.concatenate(list(lengths.values()))
    bucketed = np.asarray(sizes)[np.searchsorted(sizes, rows)]
    return {
        "real_tokens": real,
        "bucketed_per_real_token": round(float(bucketed.sum()) / real, 4),
        "fixed_per_real_token": round(len(rows) * sizes[-1] / real, 4),
    }


def stratified_split(df: pd.DataFrame, size: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``size`` rows, the rest), drawn with the class balance of ``df``. Stratifying needs two rows
    of every class and room for every class in both parts; a tiny table that lacks them is drawn
    without stratification rather than refused."""
    counts = df["label"].value_counts()
    can_stratify = counts.min() >= 2 and len(counts) <= size <= len(df) - len(counts)
    taken, rest = train_test_split(
        df, train_size=size, random_state=seed, stratify=df["label"] if can_stratify else None
    )
    return taken.reset_index(drop=True), rest.reset_index(drop=True)


def validation_split(
    train: pd.DataFrame, size: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(about ``size`` validation rows, the rest), stratified by class. Where the rows name their
    movie (``corpus.GROUP``), grouped too: no movie on both sides, so the epoch chosen on
    validation is not chosen on movies the model trained on. The grouped split is one fold of a
    stratified group K-fold with ``len(train) / size`` folds, so its size is close to ``size``,
    not exact (whole movies move)."""
    if corpus.GROUP not in train.columns:
        return stratified_split(train, size, seed)
    folds = max(2, round(len(train) / size))
    movies = train[corpus.GROUP].nunique()
    if movies < folds:
        raise UserError(
            f"the training rows name only {movies} different {corpus.GROUP}(s), too few to hold "
            f"out {size} rows for validation without a {corpus.GROUP} on both sides; lower "
            "`val_fraction` or add data"
        )
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    rest, val = next(splitter.split(train, train["label"], train[corpus.GROUP]))
    return train.iloc[val].reset_index(drop=True), train.iloc[rest].reset_index(drop=True)


def subsample(df: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows, stratified by class (training rows only)."""
    if limit is None or len(df) <= limit:
        return df.reset_index(drop=True)
    return stratified_split(df, limit, seed)[0]


def blind_sample(df: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows drawn without looking at their labels, in their original order: the
    test rows kept must not depend on the test labels."""
    if limit is None or len(df) <= limit:
        return df.reset_index(drop=True)
    rows = np.sort(np.random.default_rng(seed).choice(len(df), size=limit, replace=False))
    return df.iloc[rows].reset_index(drop=True)


def make_splits(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    val_fraction: float,
    max_train: int | None,
    max_val: int | None,
    max_test: int | None,
    seed: int,
) -> dict[str, pd.DataFrame]:
    """Validation comes out of the training data (grouped by movie where the data names movies),
    never out of the test split; the test rows kept are drawn blind to their labels."""
    n_val = max(1, int(round(val_fraction * len(train))))
    if n_val >= len(train):
        raise UserError(
            f"the training data has {len(train)} rows, too few to hold out "
            f"{val_fraction:.0%} for validation; lower `val_fraction` or add data"
        )
    val, rest = validation_split(train, n_val, seed)
    return {
        "train": subsample(rest, max_train, seed),
        "val": subsample(val, max_val, seed),
        "test": blind_sample(test, max_test, seed),
    }


# Below these sizes a score is mostly noise: with 200 test rows one row is half a point of accuracy,
# and a class with fewer than 20 test rows (or under 2% of the training rows) has per-class scores,
# and a macro average, that hinge on a handful of texts.
MIN_TEST_ROWS, MIN_TEST_PER_CLASS, RARE_SHARE = 200, 20, 0.02


def data_warnings(
    splits: dict[str, pd.DataFrame], labels: Sequence[str], project: str
) -> list[str]:
    """Why a result on these splits is not to be trusted; empty when nothing is wrong."""
    warnings = []
    test, train = (
        corpus.class_counts(splits["test"], labels),
        corpus.class_counts(splits["train"], labels),
    )
    if len(splits["test"]) < MIN_TEST_ROWS:
        warnings.append(
            f"the test split has only {len(splits['test'])} rows (< {MIN_TEST_ROWS}): scores move "
            "by "
            f"several points with a few rows; raise `{project}.featurize.max_test` or add data"
        )
    few = {name: n for name, n in test.items() if n < MIN_TEST_PER_CLASS}
    if few:
        warnings.append(
            f"the test split has fewer than {MIN_TEST_PER_CLASS} rows of "
            + ", ".join(f"{name!r} ({n})" for name, n in few.items())
            + ": per-class scores and macro-F1 hinge on a handful of texts; add data of those "
            "classes"
        )
    rare = {
        name: n / len(splits["train"])
        for name, n in train.items()
        if n < RARE_SHARE * len(splits["train"])
    }
    if rare:
        warnings.append(
            "nearly absent from the training rows (< 2%): "
            + ", ".join(f"{name!r} ({share:.1%})" for name, share in rare.items())
            + f"; the model barely learns them: add rows or set `{project}.train.balance`"
        )
    return warnings


def write_tokens(
    paths: Paths, tokenizer, splits: dict[str, pd.DataFrame], labels: Sequence[str], max_length: int
) -> dict[str, np.ndarray]:
    """Every split's token files; returns each split's token counts."""
    ids = {name: i for i, name in enumerate(labels)}
    return {
        name: tokens.write_split(
            paths.features,
            name,
            tokenizer,
            df["text"].tolist(),
            df["label"].map(ids).to_numpy(),
            max_length,
        )
        for name, df in splits.items()
    }


def featurize(params: FeaturizeParams, paths: Paths) -> None:
    f = params.featurize
    raw, card = corpus.read_raw(paths.raw)
    labels = card["classes"]
    model = textmodel.pretrained(params.model, params.revision)
    tokenizer = textmodel.load_tokenizer(model)
    splits = make_splits(
        raw["train"],
        raw["test"],
        val_fraction=f.val_fraction,
        max_train=f.max_train,
        max_val=f.max_val,
        max_test=f.max_test,
        seed=params.seed,
    )
    start = time.perf_counter()
    max_length = (
        choose_max_length(tokenizer, splits["train"]["text"].tolist())
        if f.max_length == "auto"
        else f.max_length
    )
    lengths = write_tokens(paths, tokenizer, splits, labels, max_length)
    buckets = choose_buckets(lengths["train"], max_length) if f.buckets == "auto" else f.buckets
    # Timing goes to the log, not into the features: the same inputs must give the same bytes, or
    # DVC would see new features and retrain after every forced featurize.
    logger.info(
        f"{paths.project} featurize: tokenized {sum(len(df) for df in splits.values()):,} texts at "
        f"max_length={max_length} in {time.perf_counter() - start:.1f} s"
    )
    meta = features_meta(
        params, paths.project, model, tokenizer, splits, labels, lengths, max_length, buckets
    )
    meta["source"] = card.get("source")
    report(paths.project, meta, longest(tokenizer))
    corpus.write_features(paths.features, splits, meta)


def features_meta(
    p, project, model, tokenizer, splits, labels, lengths, max_length, buckets
) -> dict:
    sizes = bucket_sizes(buckets, max_length)
    pads = padding(lengths, sizes)
    return {
        "model": p.model,
        "pretrained": model.record(),
        "max_length": max_length,
        "max_length_param": p.featurize.max_length,
        "buckets": sizes,
        "buckets_param": p.featurize.buckets,
        "pad_token_id": int(tokenizer.pad_token_id or 0),
        "token_dtype": tokens.id_dtype(len(tokenizer)).name,
        "labels": list(labels),
        "validation_grouped_by": corpus.GROUP if corpus.GROUP in splits["val"].columns else None,
        "rows": {name: len(df) for name, df in splits.items()},
        "class_counts": {name: corpus.class_counts(df, labels) for name, df in splits.items()},
        # A text as long as max_length was (probably) cut: the share tells whether it fits the data.
        "share_truncated": {n: float((c >= max_length).mean()) for n, c in lengths.items()},
        "rows_per_bucket": {
            n: np.bincount(np.searchsorted(sizes, c), minlength=len(sizes)).tolist()
            for n, c in lengths.items()
        },
        "padding": pads,
        "warnings": data_warnings(splits, labels, project) + padding_warnings(pads, sizes, project),
    }


def padding_warnings(pads: dict[str, float], sizes: Sequence[int], project: str) -> list[str]:
    """Batches that compute on more than PADDING_WARNING tokens per real token: most of the time
    goes to padding (real reviews padded to snippets' buckets, say)."""
    ratio = pads["bucketed_per_real_token"]
    if ratio <= PADDING_WARNING:
        return []
    return [
        f"padding: batches padded to {list(sizes)} tokens compute on {ratio:.1f} tokens per real "
        f"token; set `{project}.featurize.buckets: auto` (lengths chosen from the training texts) "
        "or add buckets nearer the texts' lengths"
    ]


def report(project: str, meta: dict, most: int) -> None:
    """Warnings about the features, in the log (and, through meta, in the metrics)."""
    cut, max_length = meta["share_truncated"]["train"], meta["max_length"]
    if cut > 0.5:
        logger.warning(
            f"{project} featurize: {cut:.0%} of the training texts are cut at "
            f"max_length={max_length} tokens; raise `{project}.featurize.max_length` (at most "
            f"{most} for this model)"
        )
    for warning in meta["warnings"]:
        logger.warning(f"{project} featurize: {warning}")


if __name__ == "__main__":
    runner.main(featurize)
