"""The imdb download stage: movie reviews labelled negative/positive, from the configured source,
with the data card.

Connectors for binary movie-review sentiment. Each returns train and
test frames of (text, label) with labels ``negative``/``positive`` and HTML line breaks cleaned
(aclimdb adds each review's stars), plus card fields; the stage writes them with the data card
(which records the class order)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import UserError
from ..files import file_digest
from ..pipeline import runner
from ..pipeline.contract import Paths
from ..textclf import corpus, hub
from . import aclimdb
from .project import PROJECT, DownloadConfig, DownloadParams

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
OFFLINE_CATEGORIES = {"fresh": "positive", "rotten": "negative"}
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


def from_huggingface(d: DownloadConfig) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The 25k/25k train/test splits (the unlabelled 50k ``unsupervised`` split is not used)."""
    from datasets import load_dataset

    name, cols = d.hf_dataset, columns(d, HF_COLUMNS)
    revision, commit = hub.resolve(name, d.hf_revision, "dataset")
    splits = {}
    for split in corpus.SPLITS:
        try:
            table = load_dataset(name, split=split, revision=revision).to_pandas()
        except Exception as e:
            raise UserError(
                f"cannot load split {split!r} of Hugging Face dataset {name!r} "
                f"({type(e).__name__}); "
                "check the name and the network, or use source: offline"
            ) from None
        splits[split] = to_frame(table, cols, f"{name} {split} split")
    return splits, {
        "source": f"huggingface:{name}",
        "revision": d.hf_revision,
        "commit": commit,
        "columns": list(cols),
        "licence": "IMDb large movie review dataset (Maas et al. 2011), for research use",
        "what": "IMDb movie reviews, 25k train / 25k test, balanced",
    }


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


def from_offline(test_fraction: float, seed: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    frame, movies, card = corpus.rotten_tomatoes(OFFLINE_CATEGORIES)
    splits = corpus.split_by_group(frame, movies, test_fraction, seed)
    return splits, {
        "source": "offline:rotten_tomatoes",
        **card,
        "what": "Rotten Tomatoes critic snippets (one or two sentences, about 25 words): fresh -> "
        "positive, rotten -> negative. Real movie-review sentiment, but NOT IMDb: snippets "
        "are much shorter than IMDb reviews and the classes are 58/42, so the numbers are "
        "not comparable with published IMDb results",
        "split": f"by movie (seeded hash), {test_fraction:.0%} of movies in test",
    }


READERS = {
    "offline": lambda d, seed: from_offline(d.test_fraction, seed),
    "huggingface": lambda d, seed: from_huggingface(d),
    "aclimdb": lambda d, seed: aclimdb.read(d.path),
    "kaggle": from_file,
    "local": from_file,
}


def fetch(d: DownloadConfig, seed: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """(train and test frames, card fields) from the configured source."""
    return READERS[d.source](d, seed)


def download(p: DownloadParams, paths: Paths) -> None:
    corpus.save_download(paths, *fetch(p.download, p.seed), LABELS)


if __name__ == "__main__":
    runner.main(download, PROJECT)
