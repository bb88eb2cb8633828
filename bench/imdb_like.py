"""Generated movie reviews with IMDb's length distribution, for the text benches.

IMDb's 50,000 labelled reviews have a median of about 174 words and a mean of about 231, with a long
right tail (the longest is about 2,500 words): close to a log-normal with mu = ln 174 and sigma
0.75, which is what is drawn here (at least 10 words, at most 2,500). The words are drawn with
their frequencies in the offline Rotten Tomatoes corpus, so the tokenizer sees real English words
(about 1.3 tokens per word with MiniLM's WordPiece). Paragraph breaks are ``<br /><br />`` as in
the published files. Sentiment is not in the words: these texts are for measuring time and memory,
not accuracy.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from xlalab.textclf import corpus

MEDIAN_WORDS, SIGMA, FEWEST, MOST = 174, 0.75, 10, 2500


def vocabulary() -> tuple[np.ndarray, np.ndarray]:
    """(words, probabilities) of the offline corpus."""
    frame, _, _ = corpus.rotten_tomatoes({"fresh": "positive", "rotten": "negative"})
    counts = Counter(re.findall(r"[a-z']+|[.,!?]", " ".join(frame["text"]).lower()))
    words, n = zip(*counts.most_common())
    p = np.asarray(n, float)
    return np.asarray(words), p / p.sum()


def word_counts(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lengths = rng.lognormal(np.log(MEDIAN_WORDS), SIGMA, n)
    return np.clip(np.round(lengths), FEWEST, MOST).astype(int)


def reviews(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` reviews: text, sentiment (half positive), stars (1-4 or 7-10), id."""
    rng = np.random.default_rng(seed)
    words, p = vocabulary()
    counts = word_counts(n, seed)
    drawn = rng.choice(len(words), size=int(counts.sum()), p=p)
    texts, start = [], 0
    for count in counts:
        piece = words[drawn[start : start + count]]
        start += count
        if count > 60:  # a paragraph break in the longer reviews, as the published files have
            piece = np.insert(piece, count // 2, "<br /><br />")
        texts.append(" ".join(piece).capitalize())
    positive = np.arange(n) % 2 == 0
    stars = np.where(positive, rng.integers(7, 11, n), rng.integers(1, 5, n))
    return pd.DataFrame(
        {
            "review": texts,
            "sentiment": np.where(positive, "positive", "negative"),
            "stars": stars,
            "id": np.arange(n) // 4,  # ids restart in each of the four aclImdb class folders
        }
    )


def write_kaggle_csv(df: pd.DataFrame, path: Path) -> Path:
    """Kaggle's "IMDB Dataset.csv": review,sentiment."""
    df[["review", "sentiment"]].to_csv(path, index=False)
    return path


def write_aclimdb(df: pd.DataFrame, root: Path) -> Path:
    """Stanford's layout: aclImdb/{train,test}/{pos,neg}/<id>_<stars>.txt, half of each class in
    train, plus the files the connector must tolerate."""
    folder = root / "aclImdb"
    for i, row in enumerate(df.itertuples()):
        split = "train" if (i // 2) % 2 == 0 else "test"
        cls = "pos" if row.sentiment == "positive" else "neg"
        target = folder / split / cls
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{row.id}_{row.stars}.txt").write_text(row.review)
    for split in ("train", "test"):
        (folder / split / "labeledBow.feat").write_text("")
        for cls in ("pos", "neg"):
            (folder / split / f"urls_{cls}.txt").write_text("")
    (folder / "imdb.vocab").write_text("")
    return folder
