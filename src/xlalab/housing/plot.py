"""The plot stage: predicted against actual price, residuals, cross-validation scores per model, the
MLP's training curves, and the explanations: SHAP for the tree model and the linear model (global
importance and a beeswarm over the held-out houses) and LIME for three held-out houses (the best,
the median and the worst prediction of the headline model, ``housing.train.headline``).

SHAP and LIME work on the preprocessed inputs the models see (one-hot columns, Yeo-Johnson-scaled
numbers, quality ordinals), so a feature's effect is in standardized units of log price.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..pipeline import runner
from ..pipeline.artifacts import load_trained, read_summary
from ..pipeline.contract import Paths
from ..results.plots import read_live_history, save_figure, training_curves_figure, write_rows
from .download import ID
from .model import build_mlp, load_estimator, mlp_log_price
from .project import BLEND, PROJECT, PlotParams

logger = logging.getLogger(__name__)


def plot(p: PlotParams, paths: Paths) -> None:
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
        save_figure(
            training_curves_figure(history, "housing: MLP (standardized log price)"),
            out / "mlp_training.png",
        )

    prep = load_estimator(paths.model, "preprocessor")
    names = [str(n) for n in prep.get_feature_names_out()]
    train_x = prep.transform(pd.read_parquet(paths.features / "train.parquet"))
    test = (
        pd.read_parquet(paths.features / "test.parquet")
        .set_index(ID)
        .loc[predictions[ID]]
        .reset_index()
    )
    test_x = prep.transform(test)
    explain_with_shap(p, paths, summary, train_x, test_x, names, out)
    predict = log_price_function(paths, summary, headline)
    explain_with_lime(
        p,
        train_x,
        test_x,
        names,
        predict,
        test[ID].to_numpy(),
        np.abs(actual - predicted),
        headline,
        out,
    )


# --- evaluation figures ---------------------------------------------------------------------------
def predicted_vs_actual_figure(actual: np.ndarray, predicted: np.ndarray, model: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.scatter(actual, predicted, s=10, alpha=0.6)
    ends = [min(actual.min(), predicted.min()), max(actual.max(), predicted.max())]
    ax.plot(ends, ends, color="grey", linestyle="--", label="perfect")
    ax.set(
        xlabel="actual log(1 + price)",
        ylabel="predicted log(1 + price)",
        title=f"held-out houses: {model}",
    )
    ax.legend()
    return fig


def residuals_figure(actual: np.ndarray, predicted: np.ndarray, model: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.scatter(predicted, actual - predicted, s=10, alpha=0.6)
    ax.axhline(0, color="grey", linestyle="--")
    ax.set(
        xlabel="predicted log(1 + price)",
        ylabel="actual − predicted (log)",
        title=f"held-out residuals: {model}",
    )
    return fig


def cv_figure(cv: dict) -> plt.Figure:
    names = list(cv)
    fig, ax = plt.subplots(figsize=(6.5, 0.6 * len(names) + 1.5))
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
    ax.set(
        xlabel="RMSE of log price (mean ± std over folds; dots: folds)", title="cross-validation"
    )
    ax.invert_yaxis()
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


def explain_with_shap(
    p: PlotParams,
    paths: Paths,
    summary: dict,
    train_x: np.ndarray,
    test_x: np.ndarray,
    names: list[str],
    out,
) -> None:
    import shap  # slow to import (numba): only here

    explainers = {}
    tree = p.plot.tree_model
    if tree in summary["models"]:
        explainers[tree] = lambda est: shap.TreeExplainer(est)
    else:
        logger.warning(f"explain.tree_model {tree} was not trained; no tree SHAP figures")
    if "linear" in summary["models"]:
        background = shap.utils.sample(train_x, p.plot.shap_background, random_state=p.seed)
        explainers["linear"] = lambda est: shap.LinearExplainer(est, background)
    rows = []
    for name, make in explainers.items():
        values = make(load_estimator(paths.model, name))(test_x)
        values.feature_names = names
        importance = np.abs(values.values).mean(axis=0)
        rows += [
            {"model": name, "feature": names[i], "mean_abs_shap": float(importance[i])}
            for i in np.argsort(-importance)[:20]
        ]
        for kind, draw in (("importance", shap.plots.bar), ("beeswarm", shap.plots.beeswarm)):
            # The beeswarm jitters its dots with NumPy's global random state (it takes no rng):
            # seeded, the same values give the same image.
            np.random.seed(p.seed)
            draw(values, max_display=15, show=False)
            fig = plt.gcf()
            fig.suptitle(f"SHAP ({kind}), {name}: held-out houses, log price")
            save_figure(fig, out / f"shap_{name}_{kind}.png")
    write_rows(out / "shap_importance.json", rows)


def explain_with_lime(
    p: PlotParams,
    train_x: np.ndarray,
    test_x: np.ndarray,
    names: list[str],
    predict: Callable,
    ids: np.ndarray,
    abs_error: np.ndarray,
    model: str,
    out,
) -> None:
    from lime.lime_tabular import LimeTabularExplainer

    binary = [i for i in range(train_x.shape[1]) if set(np.unique(train_x[:, i])) <= {0.0, 1.0}]
    explainer = LimeTabularExplainer(
        train_x,
        mode="regression",
        feature_names=names,
        categorical_features=binary,
        discretize_continuous=True,
        random_state=p.seed,
    )
    order = np.argsort(abs_error, kind="stable")
    chosen = {"best": order[0], "median": order[len(order) // 2], "worst": order[-1]}
    rows = []
    for label, row in chosen.items():
        explanation = explainer.explain_instance(
            test_x[row], predict, num_features=p.plot.lime_features, num_samples=p.plot.lime_samples
        )
        fig = explanation.as_pyplot_figure()
        fig.set_size_inches(8, 0.4 * p.plot.lime_features + 1.5)
        fig.axes[0].set_title(
            f"LIME, {model}: {label} prediction (Id {int(ids[row])}, "
            f"|error| {abs_error[row]:.3f} log)"
        )
        save_figure(fig, out / f"lime_{label}.png")
        rows += [
            {"house": label, ID: int(ids[row]), "rule": rule, "weight": float(weight)}
            for rule, weight in explanation.as_list()
        ]
    write_rows(out / "lime.json", rows)


if __name__ == "__main__":
    runner.main(plot, PROJECT)
