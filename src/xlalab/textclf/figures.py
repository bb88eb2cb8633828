"""Figures of the text projects; the confusion matrix and training curves come from core.plots."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..core.plots import plt

COLOURS = ("#d62728", "#7f7f7f", "#2ca02c", "#1f77b4", "#ff7f0e")


def label_distribution_figure(rows: list[dict], labels: Sequence[str], title: str) -> "plt.Figure":
    """Grouped bars: rows per class in each split."""
    df = pd.DataFrame(rows)
    splits = list(dict.fromkeys(df["split"]))
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        counts = [int(df[(df.split == s) & (df.label == label)]["count"].sum()) for s in splits]
        bars = ax.bar(np.arange(len(splits)) + (i - (len(labels) - 1) / 2) * width, counts, width,
                      label=label, color=COLOURS[i % len(COLOURS)])
        ax.bar_label(bars, fontsize=7)
    ax.set(xticks=range(len(splits)), xticklabels=splits, ylabel="rows", title=title)
    ax.legend()
    return fig


def predictions_figure(y_true: np.ndarray, y_pred: np.ndarray, confidence: np.ndarray, labels: Sequence[str],
                       title: str) -> "plt.Figure":
    """Left: predicted vs actual class counts. Right: confidence of the predicted class, split by
    whether the prediction was right (a calibrated model is rarely confident and wrong)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    n = len(labels)
    x = np.arange(n)
    left.bar(x - 0.2, np.bincount(y_true, minlength=n), 0.4, label="actual", color="#aaaaaa")
    left.bar(x + 0.2, np.bincount(y_pred, minlength=n), 0.4, label="predicted", color="#1f77b4")
    left.set(xticks=x, xticklabels=labels, ylabel="test rows", title="predicted labels")
    left.legend()
    bins = np.linspace(1 / n, 1, 21)
    right.hist(confidence[y_true == y_pred], bins=bins, alpha=0.7, label="correct", color="#2ca02c")
    right.hist(confidence[y_true != y_pred], bins=bins, alpha=0.7, label="wrong", color="#d62728")
    right.set(xlabel="confidence (softmax of the predicted class)", ylabel="test rows", title="confidence")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def top_terms(texts: Sequence[str], y: np.ndarray, labels: Sequence[str], k: int) -> dict[str, list[tuple[str, float]]]:
    """The k terms with the highest mean TF-IDF in each class (stop words removed)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words="english", min_df=2, sublinear_tf=True)
    x = vectorizer.fit_transform(texts)
    vocab = np.asarray(vectorizer.get_feature_names_out())
    out = {}
    for i, label in enumerate(labels):
        if not (y == i).any():
            continue
        mean = np.asarray(x[y == i].mean(axis=0)).ravel()
        order = np.argsort(-mean, kind="stable")[:k]
        out[label] = [(str(vocab[j]), float(mean[j])) for j in order]
    return out


def word_cloud_figure(terms: dict[str, list[tuple[str, float]]], title: str, seed: int) -> "plt.Figure":
    """One word cloud per class, sized by TF-IDF weight; bar charts of the same terms when the
    ``wordcloud`` package is not installed."""
    try:
        from wordcloud import WordCloud
    except ImportError:
        WordCloud = None
    fig, axes = plt.subplots(1, len(terms), figsize=(5 * len(terms), 4.5), squeeze=False)
    for ax, (i, (label, weights)) in zip(axes[0], enumerate(terms.items())):
        if WordCloud is not None:
            cloud = WordCloud(width=500, height=380, background_color="white", random_state=seed,
                              colormap="viridis").generate_from_frequencies(dict(weights))
            ax.imshow(cloud, interpolation="bilinear")
            ax.axis("off")
        else:
            words, values = zip(*weights[:20])
            ax.barh(range(len(words))[::-1], values, color=COLOURS[i % len(COLOURS)])
            ax.set(yticks=range(len(words))[::-1], yticklabels=words, xlabel="mean TF-IDF")
        ax.set_title(label)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
