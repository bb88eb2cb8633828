"""Connectors for 3-class review sentiment. Star ratings become classes through ``star_map``
in params (1-2 negative, 3 neutral, 4-5 positive by default)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ..core.errors import UserError
from ..core.io import sha256_file
from ..core.params import get
from ..textclf import corpus

LABELS = ("negative", "neutral", "positive")
SOURCES = ("offline", "huggingface", "local")
STARS = (1, 2, 3, 4, 5)
WHERE = "reviews.download"
OFFLINE_CATEGORIES = {"rotten": "negative", "plot": "neutral", "fresh": "positive"}


def check_star_map(star_map: Any) -> dict[int, str]:
    """``{1: negative, ..., 5: positive}``: every star from 1 to 5 mapped to a known class."""
    if not isinstance(star_map, Mapping):
        raise UserError(f"`{WHERE}.star_map` must map the stars 1-5 to {', '.join(LABELS)}")
    try:
        mapping = {int(k): v for k, v in star_map.items()}
    except (TypeError, ValueError):
        raise UserError(f"`{WHERE}.star_map` keys must be the star numbers 1-5, got {list(star_map)}") from None
    if sorted(mapping) != list(STARS):
        raise UserError(f"`{WHERE}.star_map` must have exactly the keys 1-5, got {sorted(mapping)}")
    bad = sorted({str(v) for v in mapping.values() if v not in LABELS})
    if bad:
        raise UserError(f"`{WHERE}.star_map` maps to unknown class(es) {bad}; use {', '.join(LABELS)}")
    return mapping


def stars_to_frame(texts: pd.Series, ratings: pd.Series, offset: int, star_map: Mapping[int, str],
                   where: str) -> pd.DataFrame:
    """stars = rating + offset (the SetFit and mteb mirrors store 0-4), then classes by ``star_map``."""
    if ratings.isna().any():
        raise UserError(f"{where} has {int(ratings.isna().sum())} missing ratings; fill or drop those rows")
    numeric = pd.to_numeric(ratings, errors="coerce")
    if numeric.isna().any() or (numeric != numeric.round()).any():
        bad = ratings[numeric.isna() | (numeric != numeric.round())].iloc[0]
        raise UserError(f"{where} has a non-integer rating {bad!r}; ratings must be whole stars")
    stars = numeric.astype(int) + offset
    return corpus.to_frame(texts, stars, dict(star_map), f"{where} (stars = rating + {offset})")


def from_huggingface(p: dict[str, Any], star_map: Mapping[int, str]) -> tuple[dict[str, pd.DataFrame], dict]:
    from datasets import load_dataset

    name = get(p, "hf_dataset", str, WHERE)
    config = get(p, "hf_config", str, WHERE, allow_none=True)
    text_col, rating_col = get(p, "text_column", str, WHERE), get(p, "rating_column", str, WHERE)
    offset = get(p, "rating_offset", int, WHERE, min=-1, max=1)
    splits = {}
    for split in corpus.SPLITS:
        try:
            table = load_dataset(name, config, split=split).to_pandas()
        except Exception as e:  # noqa: BLE001 - network, missing dataset and bad split all end here
            raise UserError(f"cannot load split {split!r} of Hugging Face dataset {name!r} ({type(e).__name__}); "
                            "check the name/config and the network, or use source: offline") from None
        corpus.require_columns(table, [text_col, rating_col], f"{name} {split}",
                               f"`{WHERE}.text_column` and `rating_column` to name its columns")
        splits[split] = stars_to_frame(table[text_col], table[rating_col], offset, star_map, f"{name} {split} split")
    return splits, {"source": f"huggingface:{name}" + (f"/{config}" if config else ""),
                    "star_map": {str(k): v for k, v in star_map.items()}, "rating_offset": offset,
                    "licence": "as stated on the dataset's Hub page (Amazon reviews: research use)",
                    "what": "star-rated product reviews mapped to 3 classes"}


def from_local(p: dict[str, Any], star_map: Mapping[int, str], seed: int) -> tuple[dict[str, pd.DataFrame], dict]:
    """A CSV/parquet with ``text`` and either ``stars`` (1-5) or ``label`` (class names)."""
    path = get(p, "path", str, WHERE, allow_none=True)
    if not path:
        raise UserError(f"`{WHERE}.path` must name the CSV/parquet file for source 'local'")
    test_fraction = get(p, "test_fraction", float, WHERE, min=0.05, max=0.5)
    table = corpus.read_table(path, "local reviews")
    where = f"local reviews file {path}"
    corpus.require_columns(table, ["text"], where, "text plus stars (1-5) or label (negative/neutral/positive)")
    if "stars" in table.columns:
        frame = stars_to_frame(table["text"], table["stars"], 0, star_map, where)
    elif "label" in table.columns:
        frame = corpus.to_frame(table["text"], table["label"], {name: name for name in LABELS}, where)
    else:
        raise UserError(f"{where} has neither a 'stars' nor a 'label' column (columns: "
                        f"{', '.join(map(str, table.columns))}); expected text plus stars (1-5) or label")
    return corpus.split_rows(frame, test_fraction, seed), {
        "source": f"local:{Path(path).name}", "checksum_sha256": sha256_file(Path(path).expanduser()),
        "star_map": {str(k): v for k, v in star_map.items()}, "licence": "as given by the file's provider",
        "split": f"seeded hash of the text, {test_fraction:.0%} test"}


def from_offline(p: dict[str, Any], seed: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    test_fraction = get(p, "test_fraction", float, WHERE, min=0.05, max=0.5)
    frame, movies, card = corpus.rotten_tomatoes(OFFLINE_CATEGORIES)
    return corpus.split_by_group(frame, movies, test_fraction, seed), {
        "source": "offline:rotten_tomatoes_3class", **card,
        "what": "Rotten Tomatoes snippets: rotten critic snippet -> negative, IMDb plot summary -> neutral, "
                "fresh critic snippet -> positive. NOT star-rated product reviews: 'neutral' here means an "
                "objective plot description (long, third-person, no opinion), not a lukewarm 3-star review, "
                "so it is far easier to recognise than a real neutral class; the negative/positive part is "
                "real critic sentiment. Skewed: about 53% positive, 39% negative, 8% neutral",
        "split": f"by movie (seeded hash), {test_fraction:.0%} of movies in test"}


def download(p: dict[str, Any], seed: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    source = get(p, "source", str, WHERE, choices=SOURCES)
    star_map = check_star_map(get(p, "star_map", dict, WHERE))
    if source == "huggingface":
        return from_huggingface(p, star_map)
    if source == "local":
        return from_local(p, star_map, seed)
    return from_offline(p, seed)
