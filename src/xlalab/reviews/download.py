"""The reviews download stage: product or movie reviews in three classes, from the configured
source, with the data card.

Connectors for 3-class review sentiment. Star ratings become
classes through ``star_map`` in params (1-2 negative, 3 neutral, 4-5 positive by default)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import UserError
from ..files import file_digest
from ..pipeline import runner
from ..pipeline.contract import Paths
from ..textclf import corpus, hub
from .project import LABELS, PROJECT, DownloadConfig, DownloadParams

OFFLINE_CATEGORIES = {"rotten": "negative", "plot": "neutral", "fresh": "positive"}
TEXT_PARAM, RATING_PARAM = "reviews.download.text_column", "reviews.download.rating_column"


def stars_to_frame(
    texts: pd.Series, ratings: pd.Series, offset: int, star_map: Mapping[int, str], where: str
) -> pd.DataFrame:
    """stars = rating + offset (the SetFit and mteb mirrors store 0-4), then classes by
    ``star_map``."""
    if ratings.isna().any():
        raise UserError(
            f"{where} has {int(ratings.isna().sum())} missing ratings; fill or drop those rows"
        )
    numeric = pd.to_numeric(ratings, errors="coerce")
    if numeric.isna().any() or (numeric != numeric.round()).any():
        bad = ratings[numeric.isna() | (numeric != numeric.round())].iloc[0]
        raise UserError(f"{where} has a non-integer rating {bad!r}; ratings must be whole stars")
    stars = numeric.astype(int) + offset
    outside = sorted(set(stars[~stars.isin(star_map)].tolist()))
    if outside:
        raise UserError(
            f"{where}: rating + offset {offset} gives star(s) {outside[:5]} outside 1-5; set "
            "`reviews.download.rating_offset` (0 for ratings 1-5, 1 for ratings 0-4)"
        )
    return corpus.to_frame(texts, stars, dict(star_map), f"{where} (stars = rating + {offset})")


def from_huggingface(d: DownloadConfig) -> tuple[dict[str, pd.DataFrame], dict]:
    from datasets import load_dataset

    name, config, star_map = d.hf_dataset, d.hf_config, d.star_map
    text_col, rating_col = d.text_column, d.rating_column or "label"
    offset = 1 if d.rating_offset is None else d.rating_offset
    revision, commit = hub.resolve(name, d.hf_revision, "dataset")
    splits = {}
    for split in corpus.SPLITS:
        try:
            table = load_dataset(name, config, split=split, revision=revision).to_pandas()
        except Exception as e:
            raise UserError(
                f"cannot load split {split!r} of Hugging Face dataset {name!r} "
                f"({type(e).__name__}); "
                "check the name/config and the network, or use source: offline"
            ) from None
        corpus.require_columns(
            table, {text_col: TEXT_PARAM, rating_col: RATING_PARAM}, f"{name} {split}"
        )
        splits[split] = stars_to_frame(
            table[text_col], table[rating_col], offset, star_map, f"{name} {split} split"
        )
    return splits, {
        "source": f"huggingface:{name}" + (f"/{config}" if config else ""),
        "revision": d.hf_revision,
        "commit": commit,
        "star_map": {str(k): v for k, v in star_map.items()},
        "rating_offset": offset,
        "licence": "as stated on the dataset's Hub page (Amazon reviews: research use)",
        "what": "star-rated product reviews mapped to 3 classes",
    }


def from_local(d: DownloadConfig, seed: int) -> tuple[dict[str, pd.DataFrame], dict]:
    """A CSV/parquet with a text column and a rating column, named by ``text_column`` and
    ``rating_column`` (e.g. the Kaggle Amazon Fine Food ``Reviews.csv``: Text, Score). A numeric
    rating is a star count (rating + ``rating_offset``, mapped by ``star_map``); a text rating is a
    class name."""
    path, test_fraction, star_map = d.path, d.test_fraction, d.star_map
    table = corpus.read_table(path, "local reviews")
    where = f"local reviews file {path}"
    corpus.require_columns(table, {d.text_column: TEXT_PARAM}, where)
    rating_col = d.rating_column or next(
        (c for c in ("stars", "label") if c in table.columns), None
    )
    if rating_col is None:
        raise UserError(
            f"{where} has neither a 'stars' nor a 'label' column (columns found: "
            f"{', '.join(map(str, table.columns))}); name its rating column with `{RATING_PARAM}`"
        )
    corpus.require_columns(table, {rating_col: RATING_PARAM}, where)
    offset = 0 if d.rating_offset is None else d.rating_offset
    ratings = table[rating_col]
    if pd.api.types.is_numeric_dtype(ratings):
        frame, rated = (
            stars_to_frame(table[d.text_column], ratings, offset, star_map, where),
            "stars",
        )
    else:
        frame = corpus.to_frame(
            table[d.text_column], ratings, {name: name for name in LABELS}, where
        )
        rated = "class names"
    return corpus.split_rows(frame, test_fraction, seed), {
        "source": f"local:{Path(path).name}",
        "checksum_sha256": file_digest(Path(path).expanduser()),
        "columns": {"text": d.text_column, "rating": rating_col, "rating_is": rated},
        **(
            {"star_map": {str(k): v for k, v in star_map.items()}, "rating_offset": offset}
            if rated == "stars"
            else {}
        ),
        "licence": "as given by the file's provider",
        "split": f"seeded hash of the text, {test_fraction:.0%} test",
    }


def from_offline(test_fraction: float, seed: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    frame, movies, card = corpus.rotten_tomatoes(OFFLINE_CATEGORIES)
    return corpus.split_by_group(frame, movies, test_fraction, seed), {
        "source": "offline:rotten_tomatoes_3class",
        **card,
        "what": "Rotten Tomatoes snippets: rotten critic snippet -> negative, IMDb plot summary "
        "-> neutral, "
        "fresh critic snippet -> positive. NOT star-rated product reviews: 'neutral' here means an "
        "objective plot description (long, third-person, no opinion), not a lukewarm 3-star "
        "review, "
        "so it is far easier to recognise than a real neutral class; the negative/positive part is "
        "real critic sentiment. Skewed: about 53% positive, 39% negative, 8% neutral",
        "split": f"by movie (seeded hash), {test_fraction:.0%} of movies in test",
    }


READERS = {
    "offline": lambda d, seed: from_offline(d.test_fraction, seed),
    "huggingface": lambda d, seed: from_huggingface(d),
    "local": from_local,
}


def fetch(d: DownloadConfig, seed: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """(train and test frames, card fields) from the configured source."""
    return READERS[d.source](d, seed)


def download(p: DownloadParams, paths: Paths) -> None:
    corpus.save_download(paths, *fetch(p.download, p.seed), LABELS)


if __name__ == "__main__":
    runner.main(download, PROJECT)
