"""The huggingface source: star-rated reviews on the Hugging Face Hub
(SetFit/amazon_reviews_multi_en by default), at a resolved revision."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...errors import UserError
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ...textclf import corpus, hub
from ..project import DownloadConfig, DownloadParams
from .stars import RATING_PARAM, TEXT_PARAM, stars_to_frame


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


def read(params: DownloadParams, paths: Paths) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    return from_huggingface(params.download)


SOURCE = Source(
    "huggingface",
    (
        "hf_dataset",
        "hf_config",
        "hf_revision",
        "text_column",
        "rating_column",
        "rating_offset",
        "star_map",
    ),
    read,
    "star-rated reviews on the Hugging Face Hub",
)
