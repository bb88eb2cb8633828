"""The plot stage: predicted against actual price, the errors, cross-validation scores, the MLP's
training curves, and SHAP and LIME in the houses' own columns and dollars.

In detail: predicted against actual price, the errors, cross-validation scores per model, the
MLP's training curves, and the explanations: SHAP for the tree model and the linear model (each
column's effect on the predicted price over the held-out houses) and LIME for three held-out houses
(the best, the median and the worst prediction of the headline model, ``housing.train.headline``).

The explanations speak of the houses' own columns in their units and of dollars of the predicted
price, not of the standardised, one-hot inputs the models see (``explain.py`` says how). Each
title says what its figure shows, from the predictions and the models.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..pipeline import runner
from ..pipeline.artifacts import load_trained, read_summary
from ..pipeline.contract import Paths
from ..results.plots import (
    finding,
    percent,
    place_legend,
    plt,
    read_live_history,
    save_figure,
    training_curves_figure,
    training_title,
    write_rows,
)
from . import explain
from .download import ID
from .model import build_mlp, load_estimator, mlp_log_price
from .project import BLEND, PROJECT, PlotParams

logger = logging.getLogger(__name__)


def plot(params: PlotParams, paths: Paths) -> None:
    predictions = pd.read_csv(paths.predictions)
    summary = read_summary(paths)
    headline = summary["headline"]
    out = paths.figures
    actual = np.log1p(predictions["actual"].to_numpy())
    predicted = np.log1p(predictions[headline].to_numpy())

    write_rows(
        out / "predicted_vs_actual.json",
        [
            {ID: int(i), "actual_log_price": float(a), "predicted_log_price": float(b)}
            for i, a, b in zip(predictions[ID], actual, predicted)
        ],
    )
    save_figure(
        predicted_vs_actual_figure(actual, predicted, headline), out / "predicted_vs_actual.png"
    )
    save_figure(residuals_figure(actual, predicted, headline), out / "residuals.png")
    cv = summary["cv"]
    write_rows(
        out / "cv_scores.json",
        [
            {"model": name, "cv_rmse_log": c["rmse_log_mean"], "cv_rmse_log_std": c["rmse_log_std"]}
            for name, c in cv.items()
        ],
    )
    save_figure(cv_figure(cv), out / "cv_scores.png")
    history = read_live_history(paths.live)
    if history:
        title = training_title("housing: MLP (standardized log price)", history, "val/loss")
        save_figure(training_curves_figure(history, title), out / "mlp_training.png")

    prep = load_estimator(paths.model, "preprocessor")
    train = pd.read_parquet(paths.features / "train.parquet")
    test = (
        pd.read_parquet(paths.features / "test.parquet")
        .set_index(ID)
        .loc[predictions[ID]]
        .reset_index()
    )
    explain_with_shap(params, shap_estimators(params, paths, summary), prep, train, test, out)
    explain_with_lime(
        params,
        prep,
        train,
        test,
        log_price_function(paths, summary, headline),
        actual,
        predicted,
        headline,
        out,
    )


# --- evaluation figures ---------------------------------------------------------------------------
def within(actual: np.ndarray, predicted: np.ndarray, share: float) -> float:
    """The share of houses whose predicted price is within ``share`` of the sale price."""
    return float((np.abs(np.expm1(predicted) / np.expm1(actual) - 1) <= share).mean())


def predicted_vs_actual_title(actual: np.ndarray, predicted: np.ndarray, model: str) -> str:
    rmse = float(np.sqrt(np.mean((actual - predicted) ** 2)))
    return (
        f"housing: {model} prices {percent(within(actual, predicted, 0.1))} of {len(actual)} "
        f"held-out houses within 10 % of the sale price, {percent(within(actual, predicted, 0.2))} "
        f"within 20 % (RMSE of log price {rmse:.3f})"
    )


def predicted_vs_actual_figure(actual: np.ndarray, predicted: np.ndarray, model: str) -> plt.Figure:
    sold, price = np.expm1(actual), np.expm1(predicted)
    fig, ax = plt.subplots(figsize=(6.5, 6))
    ax.scatter(sold, price, s=10, alpha=0.6, label="a held-out house")
    ends = np.array([min(sold.min(), price.min()), max(sold.max(), price.max())])
    ax.plot(ends, ends, color="grey", linestyle="--", label="predicted = sold")
    ax.fill_between(ends, ends * 0.9, ends * 1.1, color="grey", alpha=0.15, label="within 10 %")
    ax.set(xscale="log", yscale="log", xlabel="sale price", ylabel="predicted price")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(lambda v, _: f"${v / 1000:,.0f}k")
        axis.set_minor_formatter(lambda v, _: "")
    finding(fig, predicted_vs_actual_title(actual, predicted, model))
    fig.tight_layout()
    place_legend(ax, fontsize=8)
    return fig


def residuals_title(actual: np.ndarray, predicted: np.ndarray, model: str) -> str:
    """The median error of the cheapest and the priciest quarter of houses (by predicted price)."""
    error = np.expm1(predicted) / np.expm1(actual) - 1  # > 0: priced above the sale
    low, high = np.percentile(predicted, [25, 75])

    def words(share: float, houses: str) -> str:
        return f"{'over' if share > 0 else 'under'}prices {houses} by {percent(abs(share), 1)}"

    worst = int(np.argmax(np.abs(error)))
    return (
        f"housing: {model} {words(np.median(error[predicted <= low]), 'the cheapest quarter')} "
        f"(median) and {words(np.median(error[predicted >= high]), 'the priciest')}; its largest "
        f"miss: {percent(abs(error[worst]))} {'over' if error[worst] > 0 else 'under'} the sale "
        "price"
    )


def residuals_figure(actual: np.ndarray, predicted: np.ndarray, model: str) -> plt.Figure:
    error = 100 * (np.expm1(predicted) / np.expm1(actual) - 1)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.scatter(np.expm1(predicted), error, s=10, alpha=0.6)
    ax.axhline(0, color="grey", linestyle="--")
    ax.set(
        xscale="log",
        xlabel="predicted price",
        ylabel="predicted / sold - 1 (%)",
    )
    ax.xaxis.set_major_formatter(lambda v, _: f"${v / 1000:,.0f}k")
    ax.xaxis.set_minor_formatter(lambda v, _: "")
    finding(fig, residuals_title(actual, predicted, model))
    fig.tight_layout()
    return fig


def cv_title(cv: dict) -> str:
    ranked = sorted(cv, key=lambda n: cv[n]["rmse_log_mean"])
    best, runner_up = ranked[0], ranked[1] if len(ranked) > 1 else None
    text = (
        f"housing: by cross-validation on the training houses {best} is best (RMSE of log price "
        f"{cv[best]['rmse_log_mean']:.3f} ± {cv[best]['rmse_log_std']:.3f})"
    )
    if runner_up:
        text += f", then {runner_up} ({cv[runner_up]['rmse_log_mean']:.3f})"
    return text


def cv_figure(cv: dict) -> plt.Figure:
    names = list(cv)
    fig, ax = plt.subplots(figsize=(7.5, 0.6 * len(names) + 1.8))
    means = [cv[n]["rmse_log_mean"] for n in names]
    ax.barh(
        names,
        means,
        xerr=[cv[n]["rmse_log_std"] for n in names],
        color="tab:blue",
        alpha=0.7,
        capsize=4,
    )
    for row, name in enumerate(names):
        ax.scatter(cv[name]["folds"], [row] * len(cv[name]["folds"]), color="black", s=10, zorder=3)
    ax.set(xlabel="RMSE of log price (mean ± std over folds; dots: folds)")
    finding(fig, cv_title(cv))
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


# --- explanations ---------------------------------------------------------------------------------
def log_price_function(
    paths: Paths, summary: dict, model: str
) -> Callable[[np.ndarray], np.ndarray]:
    """The headline model's log price for preprocessed rows, on the host CPU (LIME calls it
    often)."""
    members = summary["blend"] if model == BLEND else [model]
    parts = []
    for name in members:
        if summary["models"][name]["kind"] == "torch":
            state, entry = load_trained(paths, name)
            mlp = build_mlp(entry["config"])
            mlp.load_state_dict(state)
            parts.append(lambda x, mlp=mlp, config=entry["config"]: mlp_log_price(mlp, x, config))
        else:
            parts.append(load_estimator(paths.model, name).predict)
    return lambda x: np.mean([part(x) for part in parts], axis=0)


def shap_estimators(p: PlotParams, paths: Paths, summary: dict) -> dict:
    """The trained models SHAP explains: the tree model named in params and the linear one."""
    names = []
    if p.plot.tree_model in summary["models"]:
        names.append(p.plot.tree_model)
    else:
        logger.warning(f"plot.tree_model {p.plot.tree_model} was not trained; no tree SHAP figures")
    if "linear" in summary["models"]:
        names.append("linear")
    return {name: load_estimator(paths.model, name) for name in names}


def explain_with_shap(
    p: PlotParams, estimators: dict, prep, train: pd.DataFrame, test: pd.DataFrame, out
) -> None:
    """SHAP of each of ``estimators`` (trees: TreeExplainer; the linear model: LinearExplainer over
    ``plot.shap_background`` training houses) on the held-out houses, in dollars per column."""
    import shap  # slow to import (numba): only here

    inputs = explain.input_columns(prep)
    train_x, test_x = prep.transform(train), prep.transform(test)
    rows = []
    for name, estimator in estimators.items():
        if name == "linear":
            background = shap.utils.sample(train_x, p.plot.shap_background, random_state=p.seed)
            explainer = shap.LinearExplainer(estimator, background)
        else:
            explainer = shap.TreeExplainer(estimator)
        values = explainer(test_x)
        in_dollars = explain.shap_in_dollars(name, values, inputs, test)
        importance = in_dollars.importance()
        rows += [
            {"model": name, "feature": column, "mean_abs_dollars": float(v)}
            for column, v in importance.head(20).items()
        ]
        save_figure(shap_importance_figure(in_dollars), out / f"shap_{name}_importance.png")
        # The beeswarm jitters its dots with NumPy's global random state (it takes no rng):
        # seeded, the same values give the same image.
        np.random.seed(p.seed)
        save_figure(shap_beeswarm_figure(shap, in_dollars), out / f"shap_{name}_beeswarm.png")
    write_rows(out / "shap_importance.json", rows)


def shap_title(shap_values: explain.ShapInDollars) -> str:
    importance = shap_values.importance()
    first, second = importance.index[0], importance.index[1]
    how = explain.direction(shap_values, first)
    return (
        f"SHAP, {shap_values.model}: {first} moves the predicted price most "
        f"(±${importance.iloc[0]:,.0f} a house on average), then {second} "
        f"(±${importance.iloc[1]:,.0f})" + (f"; {how}" if how else "")
    )


def shap_importance_figure(shap_values: explain.ShapInDollars, shown: int = 15) -> plt.Figure:
    """Mean absolute effect on the predicted price per column, in dollars."""
    importance = shap_values.importance().head(shown)
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(importance) + 1.6))
    rows = np.arange(len(importance))
    ax.barh(rows, importance.to_numpy(), color="tab:blue", alpha=0.8)
    ax.set_yticks(rows, [explain.titled(c) for c in importance.index])
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(lambda v, _: f"${v:,.0f}")
    ax.set(xlabel="mean |effect on the predicted price| over the held-out houses")
    finding(fig, shap_title(shap_values))
    fig.tight_layout()
    return fig


def shap_beeswarm_figure(shap, shap_values: explain.ShapInDollars, shown: int = 15) -> plt.Figure:
    """Every held-out house's dollar effect per column, coloured by the house's value of it (grey:
    a category, which has no order)."""
    explanation = shap.Explanation(
        values=shap_values.effect,
        data=shap_values.values,
        feature_names=[explain.titled(c) for c in shap_values.columns],
    )
    plt.figure()  # shap draws on the current figure
    with warnings.catch_warnings():  # categories have no values to colour by: all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        shap.plots.beeswarm(explanation, max_display=shown, show=False)
    fig = plt.gcf()
    ax = fig.axes[0]
    ax.set_xlabel("effect on the house's predicted price")
    ax.set_ylabel("")
    ax.xaxis.set_major_formatter(lambda v, _: explain.dollars(v, short=True))
    finding(fig, shap_title(shap_values))
    return fig


def explain_with_lime(
    p: PlotParams,
    prep,
    train: pd.DataFrame,
    test: pd.DataFrame,
    predict_prepared: Callable[[np.ndarray], np.ndarray],
    actual: np.ndarray,
    predicted: np.ndarray,
    model: str,
    out,
) -> None:
    space, fill = explain.house_columns(prep, train, test)
    train_rows, test_rows = space.encode(train, fill), space.encode(test, fill)
    lime = explain.lime_over(space, train_rows, p.seed)

    def predict(rows: np.ndarray) -> np.ndarray:
        return predict_prepared(prep.transform(space.decode(rows)))

    order = np.argsort(np.abs(actual - predicted), kind="stable")
    chosen = {"best": order[0], "median": order[len(order) // 2], "worst": order[-1]}
    records = []
    for label, row in chosen.items():
        rules, log_price = explain.explain_house(
            lime, space, test_rows[row], predict, p.plot.lime_features, p.plot.lime_samples
        )
        house = int(test[ID].iloc[row])
        price, sold = float(np.expm1(log_price)), float(np.expm1(actual[row]))
        save_figure(lime_figure(rules, model, label, house, price, sold), out / f"lime_{label}.png")
        records += [
            {
                "house": label,
                ID: house,
                "predicted_price": price,
                "sale_price": sold,
                "feature": r.column,
                "rule": r.text,
                "lower": r.lower,
                "upper": r.upper,
                "unit": r.unit,
                "category": r.category,
                "value": r.value,
                "weight_log_price": r.weight,
                "effect_dollars": r.effect,
            }
            for r in rules
        ]
    write_rows(out / "lime.json", records)


def lime_title(rules: list, model: str, label: str, house: int, price: float, sold: float) -> str:
    strongest = max(rules, key=lambda r: abs(r.effect))
    verb = "adds" if strongest.effect >= 0 else "takes off"
    return (
        f"LIME, {model}: the {label} prediction, house {house}: predicted ${price:,.0f}, sold for "
        f"${sold:,.0f}; the largest effect: {strongest.text} {verb} ${abs(strongest.effect):,.0f}"
    )


def lime_figure(
    rules: list, model: str, label: str, house: int, price: float, sold: float
) -> plt.Figure:
    """The rules LIME weighs for one house, each with the house's own value and its effect on the
    predicted price in dollars."""
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(rules) + 1.8))
    rows = np.arange(len(rules))
    effects = [r.effect for r in rules]
    ax.barh(rows, effects, color=["tab:green" if e >= 0 else "tab:red" for e in effects])
    names = [
        r.text
        if r.category is not None
        else f"{r.text} (this house: {explain.amount(r.column, r.value)})"
        for r in rules
    ]
    ax.set_yticks(rows, names)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.8)
    ax.xaxis.set_major_formatter(lambda v, _: explain.dollars(v, short=True))
    ax.set(xlabel="effect on this house's predicted price")
    finding(fig, lime_title(rules, model, label, house, price, sold))
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    runner.main(plot, PROJECT)
