"""The imdb contract: its download params and connectors here, the other stages from the
text-classification family."""

from __future__ import annotations

from typing import Literal

from ..engine.settings import Params
from ..pipeline.params import Field, Seed, model_validator
from ..textclf import text_project


class DownloadConfig(Params):
    source: Literal["offline", "huggingface", "kaggle", "aclimdb", "local"]
    # kaggle/local: the CSV or parquet file; aclimdb: the aclImdb folder or aclImdb_v1.tar.gz
    path: str | None
    hf_dataset: str
    hf_revision: str | None  # the dataset's branch, tag or commit; None: its default branch
    # The columns of every source; None: review/sentiment (Kaggle), text/label (Hugging Face), and
    # for a local file whichever of the two pairs it has. Labels: negative/positive, neg/pos or 0/1.
    text_column: str | None
    label_column: str | None
    test_fraction: float = Field(ge=0.05, le=0.5)  # sources without a test split

    @model_validator(mode="after")
    def _file_sources_need_a_path(self) -> DownloadConfig:
        if self.source in ("kaggle", "local") and not self.path:
            raise ValueError(
                f"needs `path`: the CSV/parquet file for source {self.source!r} "
                "(e.g. the Kaggle 'IMDB Dataset.csv')"
            )
        if self.source == "aclimdb" and not self.path:
            raise ValueError(
                "needs `path`: Stanford's aclImdb folder or the aclImdb_v1.tar.gz archive for "
                "source 'aclimdb'"
            )
        return self


class DownloadParams(Params):
    seed: Seed
    download: DownloadConfig


PROJECT = text_project("imdb", DownloadParams, word_clouds=False)
