"""`buckets: auto` for the text projects: the padded lengths are chosen from the training texts'
token lengths (as `max_length: auto` is), so real reviews are not padded to 512 tokens; padding of
more than twice the real tokens is warned about, in the log and in what the metrics carry."""

from __future__ import annotations

import copy
import itertools
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from xlalab.pipeline.runner import run_stage
from xlalab.textclf.evaluate import data_section
from xlalab.textclf.featurize import bucket_sizes, choose_buckets

REPO_PARAMS = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())


def padded_tokens(lengths: np.ndarray, buckets: list[int], max_length: int) -> int:
    sizes = np.asarray(bucket_sizes(buckets, max_length))
    return int(sizes[np.searchsorted(sizes, np.minimum(lengths, max_length))].sum())


@pytest.mark.parametrize("seed", range(20))
def test_auto_buckets_pad_the_texts_least(seed):
    """Against every choice of at most three multiples of 8 below max_length."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 120, rng.integers(1, 80))
    max_length = int(rng.choice([16, 48, 96]))
    chosen = choose_buckets(lengths, max_length)
    assert len(chosen) <= 3 and chosen == sorted(chosen)
    assert all(n % 8 == 0 and n < max_length for n in chosen)
    fewest = min(
        padded_tokens(lengths, list(c), max_length)
        for k in range(4)
        for c in itertools.combinations(range(8, max_length, 8), k)
    )
    assert padded_tokens(lengths, chosen, max_length) == fewest


def long_reviews(n: int, median_words: int = 230, seed: int = 0) -> pd.DataFrame:
    """Reviews in the Kaggle "IMDB Dataset.csv" layout (review, sentiment, HTML line breaks) with
    IMDb's spread of lengths: about 230 words at the median, a long tail past 1,000."""
    rng = np.random.default_rng(seed)
    words = np.array(
        [
            "the",
            "film",
            "was",
            "a",
            "story",
            "of",
            "love",
            "and",
            "loss",
            "with",
            "acting",
            "that",
            "felt",
            "honest",
            "though",
            "the",
            "plot",
            "dragged",
            "in",
            "the",
            "middle",
            "and",
            "the",
            "ending",
            "surprised",
            "everyone",
            "watching",
            "it",
            "at",
            "the",
            "cinema",
        ]
    )
    rows = []
    for i in range(n):
        count = int(np.clip(np.exp(rng.normal(np.log(median_words), 0.7)), 10, 2500))
        text = " ".join(rng.choice(words, count))
        rows.append((text[:200] + "<br /><br />" + text[200:], ("positive", "negative")[i % 2]))
    return pd.DataFrame(rows, columns=["review", "sentiment"])


def featurize_imdb(tmp_path, monkeypatch, csv: Path, **featurize) -> dict:
    params = copy.deepcopy(REPO_PARAMS)
    params["imdb"]["download"].update(source="kaggle", path=str(csv))
    params["imdb"]["featurize"].update(featurize)
    monkeypatch.chdir(tmp_path)
    run_stage("imdb", "download", params)
    run_stage("imdb", "featurize", params)
    return json.loads((tmp_path / "data/imdb/features/meta.json").read_text())


def test_long_reviews_with_the_default_params_pad_at_most_one_and_a_half_times(
    tmp_path, monkeypatch, caplog
):
    csv = tmp_path / "IMDB Dataset.csv"
    long_reviews(500).to_csv(csv, index=False)
    with caplog.at_level(logging.WARNING):
        meta = featurize_imdb(tmp_path, monkeypatch, csv)
    assert REPO_PARAMS["imdb"]["featurize"]["buckets"] == "auto"
    assert meta["max_length"] == 512  # auto: 95 % of these reviews are longer than the model takes
    assert len(meta["buckets"]) == 4 and meta["buckets"][-1] == 512
    padding = meta["padding"]
    assert padding["bucketed_per_real_token"] <= 1.5 < padding["fixed_per_real_token"]
    assert not any(w.startswith("padding:") for w in meta["warnings"])
    assert data_section(meta)["padding"] == padding  # what evaluate records in the metrics

    # The snippets' buckets on shorter reviews (about 120 words): most padded to max_length, more
    # than twice their own tokens, and said.
    shorter = tmp_path / "shorter.csv"
    long_reviews(500, median_words=120).to_csv(shorter, index=False)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        meta = featurize_imdb(tmp_path, monkeypatch, shorter, buckets=[24, 32])
    assert meta["buckets"][:2] == [24, 32] and len(meta["buckets"]) == 3
    (warning,) = [w for w in meta["warnings"] if w.startswith("padding:")]
    assert meta["padding"]["bucketed_per_real_token"] > 2
    assert "set `imdb.featurize.buckets: auto`" in warning
    assert any(warning in record.getMessage() for record in caplog.records)
    # the same reviews with auto: no warning
    meta = featurize_imdb(tmp_path, monkeypatch, shorter)
    assert meta["padding"]["bucketed_per_real_token"] <= 1.5
    assert not any(w.startswith("padding:") for w in meta["warnings"])
