"""The plot stage: every figure and plot-data file of a text project into ``paths.figures``.
The confusion matrix and training curves come from core.plots."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import UserError
from ..files import read_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from ..results import plots as core_plots
from ..results import reports
from ..results.plots import plt
from . import PlotParams, corpus

COLOURS = ("#d62728", "#7f7f7f", "#2ca02c", "#1f77b4", "#ff7f0e")


def label_distribution_figure(rows: list[dict], labels: Sequence[str], title: str) -> plt.Figure:
    """Grouped bars: rows per class in each split."""
    df = pd.DataFrame(rows)
    splits = list(dict.fromkeys(df["split"]))
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        counts = [int(df[(df.split == s) & (df.label == label)]["count"].sum()) for s in splits]
        bars = ax.bar(
            np.arange(len(splits)) + (i - (len(labels) - 1) / 2) * width,
            counts,
            width,
            label=label,
            color=COLOURS[i % len(COLOURS)],
        )
        ax.bar_label(bars, fontsize=7)
    ax.set(xticks=range(len(splits)), xticklabels=splits, ylabel="rows", title=title)
    ax.legend()
    return fig


def predictions_figure(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray,
    labels: Sequence[str],
    title: str,
) -> plt.Figure:
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
    right.set(
        xlabel="confidence (softmax of the predicted class)", ylabel="test rows", title="confidence"
    )
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def top_terms(
    texts: Sequence[str], y: np.ndarray, labels: Sequence[str], k: int
) -> dict[str, list[tuple[str, float]]]:
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


def word_cloud_figure(
    terms: dict[str, list[tuple[str, float]]], title: str, seed: int
) -> plt.Figure:
    """One word cloud per class, sized by TF-IDF weight; bar charts of the same terms when the
    ``wordcloud`` package is not installed."""
    try:
        from wordcloud import WordCloud
    except ImportError:
        WordCloud = None
    fig, axes = plt.subplots(1, len(terms), figsize=(5 * len(terms), 4.5), squeeze=False)
    for ax, (i, (label, weights)) in zip(axes[0], enumerate(terms.items())):
        if WordCloud is not None:
            cloud = WordCloud(
                width=500,
                height=380,
                background_color="white",
                random_state=seed,
                colormap="viridis",
            ).generate_from_frequencies(dict(weights))
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


def read_predictions(path, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(actual ids, predicted ids, confidence) from the evaluate stage's CSV."""
    rows = pd.read_csv(path)
    if rows.empty:
        raise UserError(f"{path} holds no predictions; re-run the evaluate stage")
    ids = {lab: i for i, lab in enumerate(labels)}
    unknown = sorted(set(rows["actual"]).union(rows["predicted"]) - set(ids))
    if unknown:
        raise UserError(
            f"{path} has class(es) {unknown} that the features do not know; re-run evaluate"
        )
    return (
        rows["actual"].map(ids).to_numpy(),
        rows["predicted"].map(ids).to_numpy(),
        rows["confidence"].to_numpy(float),
    )


def plot(p: PlotParams, paths: Paths) -> None:
    name, out = paths.project, paths.figures
    card = read_json(paths.card)
    texts, meta = corpus.read_texts(paths.features)
    labels = meta["labels"]
    y_true, y_pred, confidence = read_predictions(paths.predictions, labels)

    dist = [
        {"split": f"source {s}", "label": lab, "count": card["counts"][s][lab]}
        for s in corpus.SPLITS
        for lab in labels
    ]
    dist += [
        {"split": f"used {s}", "label": lab, "count": meta["class_counts"][s][lab]}
        for s in corpus.FEATURE_SPLITS
        for lab in labels
    ]
    core_plots.write_rows(out / "label_distribution.json", dist)
    core_plots.save_figure(
        label_distribution_figure(dist, labels, f"{name}: classes ({card.get('source', '')})"),
        out / "label_distribution.png",
    )
    core_plots.save_figure(
        predictions_figure(y_true, y_pred, confidence, labels, f"{name}: test predictions"),
        out / "predictions.png",
    )
    core_plots.write_rows(out / "confusion.json", reports.confusion_rows(y_true, y_pred, labels))
    core_plots.save_figure(
        core_plots.confusion_figure(
            reports.confusion(y_true, y_pred, len(labels)),
            labels,
            f"{name}: fine-tuned model, test split",
        ),
        out / "confusion.png",
    )
    history = core_plots.read_live_history(paths.live)
    if history:
        core_plots.save_figure(
            core_plots.training_curves_figure(history, f"{name}: training"),
            out / "training_curves.png",
        )
    if p.plot.word_clouds:
        train = corpus.split_texts(texts, "train")
        ids = {lab: i for i, lab in enumerate(labels)}
        terms = top_terms(
            train["text"].tolist(), train["label"].map(ids).to_numpy(), labels, p.plot.top_terms
        )
        core_plots.write_rows(
            out / "top_terms.json",
            [{"label": lab, "term": t, "tfidf": w} for lab, ts in terms.items() for t, w in ts],
        )
        core_plots.save_figure(
            word_cloud_figure(terms, f"{name}: words by class (train)", p.seed),
            out / "word_clouds.png",
        )


if __name__ == "__main__":
    runner.main(plot)
