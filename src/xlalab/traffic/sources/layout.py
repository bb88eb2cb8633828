"""The one layout every traffic connector writes, and what they share to get there.

Every connector streams its source in chunks and yields them in the project's layout: the
source's feature columns, then ``attack`` (the label as published, cleaned: no trailing dot, no
padding), ``category`` (DoS/Probe/R2L/U2R for KDD data, ``attack_cat`` for UNSW-NB15, the label for
CIC-IDS2017), ``is_attack`` (0/1) and ``time`` (epoch seconds, empty where the source has none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import UserError
from ...pipeline import sources

META = ("attack", "category", "is_attack", "time")
FIX = "point traffic.download.path at the published file"


@dataclass
class TrafficData:
    """What a connector found: its chunks per split, and what the card should say."""

    name: str
    splits: dict[str, Callable[[], Iterator[pd.DataFrame]]]
    categorical: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    files: list[Path] = field(default_factory=list)
    has_time: bool = False
    notes: list[str] = field(default_factory=list)
    # Filled while the chunks stream: rows left out of each file (e.g. rows without a label).
    dropped: dict[str, int] = field(default_factory=dict)


def read_chunks(path: Path, chunk_rows: int, **kwargs) -> Iterator[pd.DataFrame]:
    """pandas chunks of a CSV (plain or gzip), every format problem a one-line UserError."""
    sources.complete(sources.not_empty(path, FIX), FIX)
    yield from sources.csv_chunks(path, FIX, chunk_rows, **kwargs)


def check_fields(chunk: pd.DataFrame, expected: int, path: Path, start_line: int) -> None:
    """Headerless files: every line must have ``expected`` fields (pandas pads short lines with
    NaN)."""
    if chunk.shape[1] != expected:
        raise UserError(
            f"{path} has {chunk.shape[1]} fields per line, expected {expected}; is it the "
            "published file of this source?"
        )
    short = chunk.iloc[:, -1].isna().to_numpy()
    if short.any():
        line = start_line + int(np.argmax(short))
        raise UserError(
            f"{path} line {line} has fewer than {expected} fields; the file is truncated or corrupt"
        )


def numeric_features(features: pd.DataFrame, columns, path: Path, first_line: int) -> pd.DataFrame:
    """``columns`` as numbers: the shared check (a word stops the stage; blanks, NaN and Infinity
    become missing values, which the stage counts per split for the card)."""
    return sources.numbers(features, columns, str(path), first_line)[0]


def clean_label(values: pd.Series) -> pd.Series:
    """KDD labels end with '.', bytes come from sklearn's fetcher, copies pad with spaces."""
    text = values.map(lambda v: v.decode() if isinstance(v, bytes) else v).astype(str)
    return text.str.strip().str.rstrip(".")


def layout(
    features: pd.DataFrame,
    attack: pd.Series,
    category: pd.Series,
    is_attack: pd.Series,
    time: pd.Series | None = None,
) -> pd.DataFrame:
    out = features.reset_index(drop=True).copy()
    out["attack"] = attack.to_numpy()
    out["category"] = category.to_numpy()
    out["is_attack"] = is_attack.astype(int).to_numpy()
    out["time"] = np.nan if time is None else pd.Series(time).to_numpy(dtype=float)
    return out


def random_split(
    chunks: Callable[[], Iterator[pd.DataFrame]], test_fraction: float, seed: int
) -> dict[str, Callable[[], Iterator[pd.DataFrame]]]:
    """Train/test for sources without a published test file: a seeded coin per row, chunk by chunk
    (the same rows land in the same split on every run, without holding the file in memory)."""

    def side(want_test: bool) -> Iterator[pd.DataFrame]:
        rng = np.random.default_rng(seed)
        for chunk in chunks():
            is_test = rng.random(len(chunk)) < test_fraction
            yield chunk[is_test == want_test]

    return {"train": lambda: side(False), "test": lambda: side(True)}


def need(path: Path, what: str) -> Path:
    return sources.existing(path, f"set traffic.download.path to {what}")
