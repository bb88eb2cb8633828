"""The huggingface source: the IMDb dataset on the Hugging Face Hub (stanfordnlp/imdb by default),
at a resolved revision."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...errors import UserError
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ...textclf import corpus, hub
from ..project import DownloadConfig, DownloadParams
from .labels import HF_COLUMNS, columns, to_frame


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


def read(params: DownloadParams, paths: Paths) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    return from_huggingface(params.download)


SOURCE = Source(
    "huggingface",
    ("hf_dataset", "hf_revision", "text_column", "label_column"),
    read,
    "the IMDb dataset on the Hugging Face Hub (25k/25k)",
)
