"""The two classes of imdb, the label values every source may use for them, and the one table
format the kaggle and local sources read (a CSV or parquet file of texts and labels)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...files import file_digest
from ...textclf import corpus
from ..project import DownloadConfig

LABELS = ("negative", "positive")  # in id order: the second is the positive class

# Label values accepted from any source: stanfordnlp/imdb's ClassLabel (0 = neg, 1 = pos) and its
# names, and the Kaggle "IMDB Dataset.csv" sentiment words.
LABEL_VALUES = {
    0: "negative",
    1: "positive",
    "neg": "negative",
    "pos": "positive",
    "negative": "negative",
    "positive": "positive",
}
# The column pair of each known format: Kaggle "IMDB Dataset.csv", Hugging Face stanfordnlp/imdb.
KAGGLE_COLUMNS, HF_COLUMNS = ("review", "sentiment"), ("text", "label")
TEXT_PARAM, LABEL_PARAM = "imdb.download.text_column", "imdb.download.label_column"


def columns(d: DownloadConfig, defaults: tuple[str, str]) -> dict[str, str]:
    """{column: the param that names it} for the text and the label column."""
    return {d.text_column or defaults[0]: TEXT_PARAM, d.label_column or defaults[1]: LABEL_PARAM}


def to_frame(table: pd.DataFrame, cols: dict[str, str], where: str) -> pd.DataFrame:
    corpus.require_columns(table, cols, where)
    text_col, label_col = cols
    return corpus.to_frame(table[text_col], table[label_col], LABEL_VALUES, where)


def from_file(d: DownloadConfig, seed: int) -> tuple[dict[str, pd.DataFrame], dict]:
    """One CSV/parquet. Its columns: ``text_column``/``label_column`` where set, else the Kaggle
    pair
    (review, sentiment) for source kaggle, and for source local whichever known pair it has."""
    kaggle_only = d.source == "kaggle"
    what = "Kaggle IMDB" if kaggle_only else "local IMDb"
    table = corpus.read_table(d.path, what)
    known = KAGGLE_COLUMNS if kaggle_only or KAGGLE_COLUMNS[0] in table.columns else HF_COLUMNS
    cols = columns(d, known)
    named = (
        "from params"
        if d.text_column or d.label_column
        else "kaggle (review, sentiment)"
        if known == KAGGLE_COLUMNS
        else "huggingface (text, label)"
    )
    frame = to_frame(table, cols, f"{what} file {d.path}")
    splits = corpus.split_rows(frame, d.test_fraction, seed)
    return splits, {
        "source": f"{d.source}:{Path(d.path).name}",
        "format": named,
        "columns": list(cols),
        "checksum_sha256": file_digest(Path(d.path).expanduser()),
        "licence": "as given by the file's provider (the Kaggle set is IMDb reviews, research use)",
        "split": f"seeded hash of the text, {d.test_fraction:.0%} test",
    }
