"""The plot stage: every figure and plot-data file of a text project, the terms that separate the
classes among them.

Everything goes into ``paths.figures``, each figure titled with what it shows. ``top_terms``: the
words that separate the classes (log-odds with an informative Dirichlet prior), as bars and, with
``plot.word_clouds``, as clouds. The confusion matrix and training curves come from
results/plots.py."""

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

COLOURS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
# The sentiment classes keep their colour in every project (imdb's "positive" is its second class,
# reviews' its third); any other class name takes the next of COLOURS.
SENTIMENT = {"negative": "#d62728", "neutral": "#7f7f7f", "positive": "#2ca02c"}


def colour_of(label: str, i: int) -> str:
    return SENTIMENT.get(label, COLOURS[i % len(COLOURS)])


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
            color=colour_of(label, i),
        )
        ax.bar_label(bars, fontsize=7)
    ax.set(xticks=range(len(splits)), xticklabels=splits, ylabel="rows")
    core_plots.finding(fig, title)
    fig.tight_layout()
    core_plots.place_legend(ax, fontsize=8)
    return fig


def distribution_title(project: str, rows: list[dict], labels: Sequence[str]) -> str:
    """How even the classes of the training rows used are."""
    used = {r["label"]: r["count"] for r in rows if r["split"] == "used train"}
    counts = [used.get(label, 0) for label in labels]
    ratio = max(counts) / max(1, min(counts))
    shape = "balanced" if ratio < 1.2 else "imbalanced"
    return (
        f"{project}: {sum(counts):,} training rows used, classes {shape} (largest "
        f"{ratio:.2f}x the smallest)"
    )


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
    bins = np.linspace(1 / n, 1, 21)
    right.hist(confidence[y_true == y_pred], bins=bins, alpha=0.7, label="correct", color="#2ca02c")
    right.hist(confidence[y_true != y_pred], bins=bins, alpha=0.7, label="wrong", color="#d62728")
    right.set(
        xlabel="confidence (softmax of the predicted class)", ylabel="test rows", title="confidence"
    )
    core_plots.finding(fig, title)
    fig.tight_layout()
    core_plots.place_legend(left, fontsize=8)
    core_plots.place_legend(right, fontsize=8)
    return fig


def predictions_title(
    project: str, y_true: np.ndarray, y_pred: np.ndarray, confidence: np.ndarray
) -> str:
    right = y_true == y_pred
    text = f"{project}: {core_plots.percent(right.mean(), 1)} of {len(right):,} test rows right"
    if right.any() and (~right).any():
        text += (
            f"; median confidence {np.median(confidence[right]):.2f} when right, "
            f"{np.median(confidence[~right]):.2f} when wrong"
        )
    return text


def separating_terms(
    texts: Sequence[str], y: np.ndarray, labels: Sequence[str], k: int
) -> dict[str, list[dict]]:
    """The k terms that most separate each class from the others: the log-odds ratio of a term in
    the class against the rest, with an informative Dirichlet prior, divided by its standard
    error (Monroe, Colaresi and Quinn 2008, "Fightin' Words", section 3.5). The prior is the
    term's count over all the texts, so a rare term needs more evidence than a common one, and a
    term as common in every class ("movie", "film") scores near 0 instead of topping every class.
    Stop words are removed, and so are words of one or two letters (the "ll" and "ve" that
    tokenising "you'll" and "we've" leaves); a term must occur in two texts."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(stop_words="english", min_df=2, token_pattern=r"(?u)\b\w\w\w+\b")
    counts = vectorizer.fit_transform(texts)
    vocab = np.asarray(vectorizer.get_feature_names_out())
    prior = np.asarray(counts.sum(axis=0), dtype=float).ravel()  # alpha_w
    prior_total = prior.sum()  # alpha_0
    out = {}
    for i, label in enumerate(labels):
        inside = y == i
        if not inside.any() or inside.all():
            continue
        here = np.asarray(counts[inside].sum(axis=0), dtype=float).ravel()
        rest = np.asarray(counts[~inside].sum(axis=0), dtype=float).ravel()

        def log_odds(c: np.ndarray) -> np.ndarray:
            return np.log(c + prior) - np.log(c.sum() + prior_total - c - prior)

        delta = log_odds(here) - log_odds(rest)
        z = delta / np.sqrt(1 / (here + prior) + 1 / (rest + prior))
        order = np.argsort(-z, kind="stable")[:k]
        out[label] = [
            {"term": str(vocab[j]), "z": float(z[j]), "log_odds": float(delta[j]),
             "count": int(here[j])}
            for j in order
        ]  # fmt: skip
    return out


def terms_title(project: str, terms: dict[str, list[dict]], shown: int = 3) -> str:
    """The first few separating terms of each class, in words."""
    parts = [
        f"{', '.join(repr(t['term']) for t in ranked[:shown])} mark {label}"
        for label, ranked in terms.items()
    ]
    return f"{project}: {'; '.join(parts)} (training texts)"


def separating_terms_figure(
    project: str, terms: dict[str, list[dict]], shown: int = 15
) -> plt.Figure:
    """Per class, its most separating terms as bars of their z-score (log-odds over its standard
    error): how far the term's rate in the class is from its rate elsewhere, in standard errors."""
    fig, axes = plt.subplots(
        1, len(terms), figsize=(4.2 * len(terms), 0.3 * shown + 1.8), squeeze=False
    )
    for i, (ax, (label, ranked)) in enumerate(zip(axes[0], terms.items())):
        top = ranked[:shown]
        ax.barh(np.arange(len(top)), [t["z"] for t in top], color=colour_of(label, i), alpha=0.8)
        ax.set_yticks(np.arange(len(top)), [t["term"] for t in top])
        ax.invert_yaxis()
        ax.set(title=label, xlabel="z: log-odds against the other classes / s.e.")
    core_plots.finding(fig, terms_title(project, terms))
    fig.tight_layout()
    return fig


def word_cloud_figure(project: str, terms: dict[str, list[dict]], seed: int) -> plt.Figure:
    """One word cloud per class of its separating terms, sized by z-score; bar charts of the same
    terms when the ``wordcloud`` package is not installed."""
    try:
        from wordcloud import WordCloud
    except ImportError:
        return separating_terms_figure(project, terms)
    fig, axes = plt.subplots(1, len(terms), figsize=(5 * len(terms), 4.5), squeeze=False)
    for ax, (label, ranked) in zip(axes[0], terms.items()):
        weights = {t["term"]: t["z"] for t in ranked if t["z"] > 0}
        cloud = WordCloud(
            width=500, height=380, background_color="white", random_state=seed, colormap="viridis"
        ).generate_from_frequencies(weights or {"(none)": 1.0})
        ax.imshow(cloud, interpolation="bilinear")
        ax.axis("off")
        ax.set_title(label)
    core_plots.finding(fig, terms_title(project, terms))
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


def plot(params: PlotParams, paths: Paths) -> None:
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
        label_distribution_figure(dist, labels, distribution_title(name, dist, labels)),
        out / "label_distribution.png",
    )
    core_plots.save_figure(
        predictions_figure(
            y_true, y_pred, confidence, labels, predictions_title(name, y_true, y_pred, confidence)
        ),
        out / "predictions.png",
    )
    core_plots.write_rows(out / "confusion.json", reports.confusion_rows(y_true, y_pred, labels))
    cm = reports.confusion(y_true, y_pred, len(labels))
    core_plots.save_figure(
        core_plots.confusion_figure(
            cm, labels, core_plots.confusion_title(name, "fine-tuned model", cm, labels)
        ),
        out / "confusion.png",
    )
    history = core_plots.read_live_history(paths.live)
    if history:
        core_plots.save_figure(
            core_plots.training_curves_figure(
                history, core_plots.training_title(name, history, "val/acc")
            ),
            out / "training_curves.png",
        )
    train = corpus.split_texts(texts, "train")
    ids = {lab: i for i, lab in enumerate(labels)}
    terms = separating_terms(
        train["text"].tolist(), train["label"].map(ids).to_numpy(), labels, params.plot.top_terms
    )
    core_plots.write_rows(
        out / "top_terms.json",
        [{"label": lab, "rank": r, **t} for lab, ts in terms.items() for r, t in enumerate(ts, 1)],
    )
    core_plots.save_figure(separating_terms_figure(name, terms), out / "top_terms.png")
    if params.plot.word_clouds:
        core_plots.save_figure(word_cloud_figure(name, terms, params.seed), out / "word_clouds.png")


if __name__ == "__main__":
    runner.main(plot)
