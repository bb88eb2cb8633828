"""The featurize stage: tokenisation to fixed-shape tensors, from stratified samples of the raw
data.

Every text is truncated or padded to exactly ``max_length`` tokens, so every batch has the same
shape: XLA compiles one graph, and CUDA kernels see a steady size (use a multiple of 8 there).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from ..core.errors import UserError
from ..core.project import Paths
from . import FeaturizeParams, corpus
from . import model as textmodel

logger = logging.getLogger(__name__)


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    encoded = tokenizer(
        list(texts),
        truncation=True,
        padding="max_length",
        max_length=max_length,
        return_attention_mask=True,
        return_token_type_ids=False,
        return_tensors="pt",
    )
    return {
        "input_ids": encoded["input_ids"].long(),
        "attention_mask": encoded["attention_mask"].long(),
    }


COVERAGE = 95  # percent of the training texts that `max_length: auto` leaves uncut
MOST_TOKENS = 512  # BERT-family position limit; tokenizers without a limit report a huge sentinel


def choose_max_length(tokenizer, texts: Sequence[str]) -> int:
    """The token length that covers COVERAGE % of ``texts``, rounded up to a multiple of 8 (steady
    sizes for CUDA kernels), capped by the tokenizer's model_max_length."""
    lengths = [
        len(ids) for ids in tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]
    ]
    covering = int(np.ceil(np.percentile(lengths, COVERAGE) / 8) * 8)
    return max(8, min(covering, tokenizer.model_max_length, MOST_TOKENS))


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


def subsample(df: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows, stratified by class."""
    if limit is None or len(df) <= limit:
        return df.reset_index(drop=True)
    return stratified_split(df, limit, seed)[0]


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
    """Validation comes out of the training data, never out of the test split."""
    n_val = max(1, int(round(val_fraction * len(train))))
    if n_val >= len(train):
        raise UserError(
            f"the training data has {len(train)} rows, too few to hold out "
            f"{val_fraction:.0%} for validation; lower `val_fraction` or add data"
        )
    val, rest = stratified_split(train, n_val, seed)
    return {
        "train": subsample(rest, max_train, seed),
        "val": subsample(val, max_val, seed + 1),
        "test": subsample(test, max_test, seed + 2),
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


def build_features(
    tokenizer, splits: dict[str, pd.DataFrame], labels: Sequence[str], max_length: int
) -> dict[str, dict[str, torch.Tensor]]:
    ids = {name: i for i, name in enumerate(labels)}
    out = {}
    for name, df in splits.items():
        tensors = tokenize(tokenizer, df["text"].tolist(), max_length)
        tensors["labels"] = torch.tensor(df["label"].map(ids).to_numpy(), dtype=torch.long)
        out[name] = tensors
    return out


def featurize(p: FeaturizeParams, paths: Paths) -> None:
    f = p.featurize
    raw, card = corpus.read_raw(paths.raw)
    labels = card["classes"]
    tokenizer = textmodel.load_tokenizer(p.model)
    splits = make_splits(
        raw["train"],
        raw["test"],
        val_fraction=f.val_fraction,
        max_train=f.max_train,
        max_val=f.max_val,
        max_test=f.max_test,
        seed=p.seed,
    )
    start = time.perf_counter()
    max_length = (
        choose_max_length(tokenizer, splits["train"]["text"].tolist())
        if f.max_length == "auto"
        else f.max_length
    )
    tensors = build_features(tokenizer, splits, labels, max_length)
    # A text whose last position is a real token was (probably) cut: the share tells whether
    # max_length fits the data.
    truncated = {
        name: float((t["attention_mask"][:, -1] == 1).float().mean()) for name, t in tensors.items()
    }
    meta = {
        "model": p.model,
        "max_length": max_length,
        "max_length_param": f.max_length,
        "labels": list(labels),
        "source": card.get("source"),
        "rows": {name: len(df) for name, df in splits.items()},
        "class_counts": {name: corpus.class_counts(df, labels) for name, df in splits.items()},
        "share_truncated": truncated,
        "warnings": data_warnings(splits, labels, paths.project),
    }
    # Timing goes to the log, not into the features: the same inputs must give the same bytes, or
    # DVC would see new features and retrain after every forced featurize.
    logger.info(
        f"{paths.project} featurize: tokenized {sum(len(df) for df in splits.values()):,} texts at "
        f"max_length={max_length} in {time.perf_counter() - start:.1f} s"
    )
    if truncated["train"] > 0.5:
        logger.warning(
            f"{paths.project} featurize: {truncated['train']:.0%} of the training texts are cut at "
            f"max_length={max_length} tokens; raise `{paths.project}.featurize.max_length` (at "
            "most "
            f"{min(tokenizer.model_max_length, MOST_TOKENS)} for this model)"
        )
    for warning in meta["warnings"]:
        logger.warning(f"{paths.project} featurize: {warning}")
    corpus.write_features(paths.features, tensors, splits, meta)
