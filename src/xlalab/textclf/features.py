"""Tokenisation to fixed-shape tensors, cached on disk by the featurize stage.

Every text is truncated or padded to exactly ``max_length`` tokens, so every batch has the same
shape: XLA compiles one graph, and CUDA kernels see a steady size (use a multiple of 8 there).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from ..core.errors import UserError
from ..core.io import atomic_path, read_json, write_json

FEATURE_SPLITS = ("train", "val", "test")
TOKENS_FILE, TEXTS_FILE, META_FILE = "tokens.pt", "texts.parquet", "meta.json"
BALANCING = ("none", "class_weights", "oversample")


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    encoded = tokenizer(list(texts), truncation=True, padding="max_length", max_length=max_length,
                        return_attention_mask=True, return_token_type_ids=False, return_tensors="pt")
    return {"input_ids": encoded["input_ids"].long(), "attention_mask": encoded["attention_mask"].long()}


def subsample(df: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows, drawn with a seed (the class balance stays as in the source)."""
    if limit is None or len(df) <= limit:
        return df.reset_index(drop=True)
    return df.sample(n=limit, random_state=seed).reset_index(drop=True)


def make_splits(train: pd.DataFrame, test: pd.DataFrame, *, val_fraction: float, max_train: int | None,
                max_val: int | None, max_test: int | None, seed: int) -> dict[str, pd.DataFrame]:
    """Validation comes out of the training data, never out of the test split."""
    shuffled = train.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    n_val = max(1, int(round(val_fraction * len(shuffled))))
    if n_val >= len(shuffled):
        raise UserError(f"the training data has {len(shuffled)} rows, too few to hold out "
                        f"{val_fraction:.0%} for validation; lower `val_fraction` or add data")
    return {"train": subsample(shuffled.iloc[n_val:], max_train, seed),
            "val": subsample(shuffled.iloc[:n_val], max_val, seed + 1),
            "test": subsample(test, max_test, seed + 2)}


def build_features(tokenizer, splits: dict[str, pd.DataFrame], labels: Sequence[str],
                   max_length: int) -> dict[str, dict[str, torch.Tensor]]:
    ids = {name: i for i, name in enumerate(labels)}
    out = {}
    for name, df in splits.items():
        tensors = tokenize(tokenizer, df["text"].tolist(), max_length)
        tensors["labels"] = torch.tensor(df["label"].map(ids).to_numpy(), dtype=torch.long)
        out[name] = tensors
    return out


def write_features(features_dir: Path, tensors: dict[str, dict[str, torch.Tensor]],
                   splits: dict[str, pd.DataFrame], meta: dict[str, Any]) -> list[Path]:
    with atomic_path(features_dir, is_dir=True) as tmp:
        torch.save(tensors, tmp / TOKENS_FILE)
        pd.concat([df.assign(split=name) for name, df in splits.items()], ignore_index=True) \
            .to_parquet(tmp / TEXTS_FILE, index=False)
        write_json(tmp / META_FILE, meta)
    return [features_dir]


def read_features(features_dir: Path) -> tuple[dict[str, dict[str, torch.Tensor]], pd.DataFrame, dict]:
    for name in (TOKENS_FILE, TEXTS_FILE, META_FILE):
        if not (features_dir / name).exists():
            raise UserError(f"{features_dir / name} is missing; run the featurize stage (or `dvc repro`) first")
    tensors = torch.load(features_dir / TOKENS_FILE, weights_only=True)
    return tensors, pd.read_parquet(features_dir / TEXTS_FILE), read_json(features_dir / META_FILE)


def class_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights, scaled so that the average training row weighs 1."""
    counts = torch.bincount(y, minlength=n_classes).float()
    if (counts == 0).any():
        missing = (counts == 0).nonzero().flatten().tolist()
        raise UserError(f"class id(s) {missing} have no training rows; class weights need every class; "
                        "raise `max_train` or set `balance: none`")
    weights = counts.sum() / (n_classes * counts)
    return weights


def imbalance_ratio(y: torch.Tensor, n_classes: int) -> float:
    counts = torch.bincount(y, minlength=n_classes).float()
    present = counts[counts > 0]
    return float(present.max() / present.min())


def balance_training(train: dict[str, torch.Tensor], val: dict[str, torch.Tensor], n_classes: int,
                     method: str, threshold: float, seed: int) -> tuple[dict, dict, dict[str, Any]]:
    """Apply ``method`` when the largest class outnumbers the smallest by ``threshold`` or more.

    Every row carries a ``class_weight`` (all ones unless class weighting applies), so the loss is
    the same function in training and validation and the batch shapes never change."""
    ratio = imbalance_ratio(train["labels"], n_classes)
    applied = method if method != "none" and ratio >= threshold else "none"
    weights = torch.ones(n_classes)
    if applied == "class_weights":
        weights = class_weights(train["labels"], n_classes)
    elif applied == "oversample":
        y = train["labels"].numpy()
        target = np.bincount(y, minlength=n_classes).max()
        rng = np.random.default_rng(seed)
        rows = np.concatenate([rng.choice(np.flatnonzero(y == c), size=target, replace=True)
                               if (y == c).any() else np.array([], dtype=int) for c in range(n_classes)])
        rows = torch.from_numpy(rng.permutation(rows))
        train = {k: v[rows] for k, v in train.items()}
    train = {**train, "class_weight": weights[train["labels"]]}
    val = {**val, "class_weight": weights[val["labels"]]}
    info = {"imbalance_ratio": ratio, "method": applied, "threshold": threshold,
            "class_weights": weights.tolist(), "train_rows": int(train["labels"].shape[0])}
    return train, val, info
