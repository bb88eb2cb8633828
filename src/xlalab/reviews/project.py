"""The reviews contract: its download params and connectors here, the other stages from the
text-classification family."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ..engine.settings import Params
from ..pipeline.params import Field, Seed, field_validator, model_validator
from ..textclf import text_project

LABELS = ("negative", "neutral", "positive")  # in id order
STARS = (1, 2, 3, 4, 5)


def check_star_map(star_map: Any) -> dict[int, str]:
    """``{1: negative, ..., 5: positive}``: every star from 1 to 5 mapped to a known class."""
    if not isinstance(star_map, Mapping):
        raise ValueError(f"must map the stars 1-5 to {', '.join(LABELS)}")
    try:
        mapping = {int(k): v for k, v in star_map.items()}
    except (TypeError, ValueError):
        raise ValueError(f"keys must be the star numbers 1-5, got {list(star_map)}") from None
    if sorted(mapping) != list(STARS):
        raise ValueError(f"must have exactly the keys 1-5, got {sorted(mapping)}")
    bad = sorted({str(v) for v in mapping.values() if v not in LABELS})
    if bad:
        raise ValueError(f"maps to unknown class(es) {bad}; use {', '.join(LABELS)}")
    return mapping


class DownloadConfig(Params):
    source: Literal["offline", "huggingface", "local"]
    path: str | None  # local: parquet/CSV with a text column plus a star rating or class names
    hf_dataset: str
    hf_config: str | None
    hf_revision: str | None  # the dataset's branch, tag or commit; None: its default branch
    # The columns of every source (Hugging Face and local files alike). rating_column None: "label"
    # on the hub; in a local file "stars" (1-5) or else "label" (star numbers or class names).
    text_column: str
    rating_column: str | None
    # stars = rating + offset; None: 1 on the hub (the SetFit/mteb mirrors store 0-4), 0 for a file
    rating_offset: int | None = Field(ge=-1, le=1)
    star_map: dict[int, str]
    test_fraction: float = Field(ge=0.05, le=0.5)  # offline and local sources

    @field_validator("star_map", mode="before")
    @classmethod
    def _stars_one_to_five(cls, value: Any) -> dict[int, str]:
        return check_star_map(value)

    @model_validator(mode="after")
    def _local_needs_a_path(self) -> DownloadConfig:
        if self.source == "local" and not self.path:
            raise ValueError("needs `path`: the CSV/parquet file for source 'local'")
        return self


class DownloadParams(Params):
    seed: Seed
    download: DownloadConfig


PROJECT = text_project("reviews", DownloadParams, word_clouds=True)
