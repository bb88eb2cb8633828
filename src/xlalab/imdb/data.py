"""The imdb download stage: connectors for binary movie-review sentiment. Each returns train and
test frames of (text, label) with labels ``negative``/``positive`` and HTML line breaks cleaned, plus
card fields; the stage writes them with the data card (which records the class order)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import UserError
from ..core.io import sha256_file
from ..core.project import Paths
from ..textclf import corpus
from .project import DownloadConfig, DownloadParams

LABELS = ("negative", "positive")  # in id order: the second is the positive class

# Hugging Face stanfordnlp/imdb: ClassLabel 0 = neg, 1 = pos (also accepted as names).
HF_LABELS = {0: "negative", 1: "positive", "neg": "negative", "pos": "positive",
             "negative": "negative", "positive": "positive"}
# Kaggle "IMDB Dataset.csv": sentiment is the word.
KAGGLE_LABELS = {"negative": "negative", "positive": "positive"}
OFFLINE_CATEGORIES = {"fresh": "positive", "rotten": "negative"}


def from_huggingface(name: str) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The 25k/25k train/test splits (the unlabelled 50k ``unsupervised`` split is not used)."""
    from datasets import load_dataset

    splits = {}
    for split in corpus.SPLITS:
        try:
            table = load_dataset(name, split=split).to_pandas()
        except Exception as e:  # noqa: BLE001 - network, missing dataset and bad split all end here
            raise UserError(f"cannot load split {split!r} of Hugging Face dataset {name!r} ({type(e).__name__}); "
                            "check the name and the network, or use source: offline") from None
        corpus.require_columns(table, ["text", "label"], f"{name} {split}", "text,label")
        splits[split] = corpus.to_frame(table["text"], table["label"], HF_LABELS, f"{name} {split} split")
    return splits, {"source": f"huggingface:{name}", "licence": "IMDb large movie review dataset (Maas et al. "
                    "2011), for research use", "what": "IMDb movie reviews, 25k train / 25k test, balanced"}


def kaggle_frame(table: pd.DataFrame, where: str) -> pd.DataFrame:
    corpus.require_columns(table, ["review", "sentiment"], where, "the Kaggle columns review,sentiment")
    return corpus.to_frame(table["review"], table["sentiment"], KAGGLE_LABELS, where)


def hf_frame(table: pd.DataFrame, where: str) -> pd.DataFrame:
    corpus.require_columns(table, ["text", "label"], where, "text,label")
    return corpus.to_frame(table["text"], table["label"], HF_LABELS, where)


def from_file(path: str, test_fraction: float, seed: int, kaggle_only: bool) -> tuple[dict[str, pd.DataFrame], dict]:
    """One CSV/parquet: the Kaggle format (review, sentiment) or the Hugging Face one (text, label)."""
    what = "Kaggle IMDB" if kaggle_only else "local IMDb"
    table = corpus.read_table(path, what)
    if not kaggle_only and not {"review", "text"} & set(table.columns):
        raise UserError(f"{what} file {path} has neither a 'review' nor a 'text' column (columns: "
                        f"{', '.join(map(str, table.columns))}); expected review,sentiment (Kaggle) or "
                        "text,label (Hugging Face)")
    if kaggle_only or "review" in table.columns:
        frame, fmt = kaggle_frame(table, f"{what} file {path}"), "kaggle (review, sentiment)"
    else:
        frame, fmt = hf_frame(table, f"{what} file {path}"), "huggingface (text, label)"
    splits = corpus.split_rows(frame, test_fraction, seed)
    return splits, {"source": f"{'kaggle' if kaggle_only else 'local'}:{Path(path).name}", "format": fmt,
                    "checksum_sha256": sha256_file(Path(path).expanduser()),
                    "licence": "as given by the file's provider (the Kaggle set is IMDb reviews, research use)",
                    "split": f"seeded hash of the text, {test_fraction:.0%} test"}


def from_offline(test_fraction: float, seed: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    frame, movies, card = corpus.rotten_tomatoes(OFFLINE_CATEGORIES)
    splits = corpus.split_by_group(frame, movies, test_fraction, seed)
    return splits, {"source": "offline:rotten_tomatoes", **card,
                    "what": "Rotten Tomatoes critic snippets (one or two sentences, about 25 words): fresh -> "
                            "positive, rotten -> negative. Real movie-review sentiment, but NOT IMDb: snippets "
                            "are much shorter than IMDb reviews and the classes are 58/42, so the numbers are "
                            "not comparable with published IMDb results",
                    "split": f"by movie (seeded hash), {test_fraction:.0%} of movies in test"}


def fetch(d: DownloadConfig, seed: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    if d.source == "huggingface":
        return from_huggingface(d.hf_dataset)
    if d.source in ("kaggle", "local"):
        return from_file(d.path, d.test_fraction, seed, kaggle_only=d.source == "kaggle")
    return from_offline(d.test_fraction, seed)


def download(p: DownloadParams, paths: Paths) -> None:
    splits, card = fetch(p.download, p.seed)
    corpus.write_raw(paths.raw, splits, LABELS, card)
