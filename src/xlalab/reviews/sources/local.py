"""The local source: a CSV or parquet file with a text column and a rating column (stars or class
names), split by a seeded hash of the text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ...errors import UserError
from ...files import file_digest
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ...textclf import corpus
from ..project import LABELS, DownloadConfig, DownloadParams
from .stars import RATING_PARAM, TEXT_PARAM, stars_to_frame


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


def read(params: DownloadParams, paths: Paths) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    return from_local(params.download, params.seed)


SOURCE = Source(
    "local",
    ("path", "text_column", "rating_column", "rating_offset", "star_map", "test_fraction"),
    read,
    "a CSV or parquet file of reviews with stars or class names",
)
