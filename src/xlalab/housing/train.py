"""The train stage: every candidate model cross-validated on the training part, then fitted on all
of it.

Shuffled, seeded K-fold cross-validation of every candidate on the training
part, then each candidate fitted on the whole training part, and Kaggle's test.csv priced for a
submission.

In every fold the preprocessor is refitted on that fold's training rows only and shared by all the
candidates of the fold (it is deterministic, so each would fit the same one); the blend's fold score
comes from averaging its members' predictions for the fold, so it costs no extra fit. Everything
chosen here is chosen on the training part: the submission model (the candidate, blend included,
with the lowest CV RMSE). The linear model and the boosting choose their own settings by an inner
CV on the rows they are fitted on, so in the outer CV their search is nested: a fold's held-out
houses choose nothing.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import KFold, train_test_split
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ..engine.loop import fit, predict
from ..engine.runtime import Backend, make_backend
from ..errors import UserError
from ..files import fingerprint
from ..pipeline import runner
from ..pipeline.artifacts import write_summary
from ..pipeline.contract import Paths
from ..pipeline.training import fit_and_save
from .download import ID
from .featurize import LOG_TARGET, preprocessor
from .model import (
    TunedBoosting,
    boosting_model,
    build_mlp,
    forest_model,
    linear_model,
    mlp_config,
    mlp_task,
    predicting_in_one_thread,
    save_estimator,
    tensors,
)
from .project import BLEND, PROJECT, TrainParams

logger = logging.getLogger(__name__)

SUBMISSION = "submission.csv"


def sklearn_candidate(name: str, p: TrainParams):
    """The scikit-learn candidate ``name``, unfitted (``fit_sklearn`` fits it)."""
    builders = {
        "linear": lambda: linear_model(p.train.linear, p.seed),
        "forest": lambda: forest_model(p.train.forest, p.seed),
        "boosting": lambda: boosting_model(p.train.boosting, p.seed),
    }
    return builders[name]()


def fit_sklearn(name: str, p: TrainParams, x: np.ndarray, y: np.ndarray):
    """Candidate ``name`` fitted on every core, predicting in one (the same prices every run)."""
    return predicting_in_one_thread(sklearn_candidate(name, p).fit(x, y))


def fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    p: TrainParams,
    backend: Backend,
    paths: Paths,
    *,
    epochs: int,
    final: bool,
    desc: str,
) -> tuple[Any, dict[str, Any], dict | None]:
    """The MLP through the shared loop. The best epoch is picked on a seeded share of the rows
    given."""
    mean, std = float(y.mean()), float(y.std()) or 1.0
    config = mlp_config(x.shape[1], p.train.mlp, mean, std)
    fit_x, val_x, fit_y, val_y = train_test_split(
        x, (y - mean) / std, test_size=p.train.mlp.val_fraction, random_state=p.seed
    )
    cfg = p.train.mlp.train.model_copy(update={"epochs": epochs}).seeded(p.seed)
    backend.seed(p.seed)  # the initial weights: the same every run
    model = build_mlp(config)
    if final:
        entry = fit_and_save(
            "mlp",
            model,
            tensors(fit_x, fit_y),
            tensors(val_x, val_y),
            mlp_task(),
            cfg,
            backend,
            paths,
            config=config,
            fingerprint=fingerprint(p.model_dump(), x.shape, float(x.sum()), float(y.sum())),
        )
        return model, config, entry
    fit(model, tensors(fit_x, fit_y), tensors(val_x, val_y), mlp_task(), cfg, backend, desc=desc)
    return model, config, None  # fit leaves the best weights in the model


def mlp_log_prices(
    model, config: dict, x: np.ndarray, backend: Backend, batch_size: int
) -> np.ndarray:
    out = predict(model, tensors(x), backend, batch_size, desc="mlp predict").numpy().astype(float)
    return out * config["target_std"] + config["target_mean"]


def train(params: TrainParams, paths: Paths) -> None:
    # The models are small (about a thousand rows): one OpenMP thread per fit loses little, while
    # OpenMP's spin-waiting threads slow boosting and the MLP many times over on a busy CPU.
    # The forest still runs its trees in parallel (joblib threads, n_jobs=-1).
    with threadpool_limits(limits=1, user_api="openmp"):
        _train(params, paths)


def _train(p: TrainParams, paths: Paths) -> None:
    frame = pd.read_parquet(paths.features / "train.parquet")
    y = frame[LOG_TARGET].to_numpy()
    if len(frame) < 2 * p.train.cv_folds:
        raise UserError(
            f"{len(frame)} training houses are too few for cv_folds={p.train.cv_folds}; lower "
            "cv_folds"
        )
    backend = make_backend(p.runtime)
    eval_bs = p.train.mlp.train.eval_batch_size or p.train.mlp.train.batch_size
    cv = cross_validate(frame, y, p, backend, paths, eval_bs)
    prep, entries, final_models = fit_every_candidate(frame, y, p, backend, paths, cv)
    if "mlp" not in p.train.models:  # the live dir is a git-tracked output: never leave it empty
        (paths.live / "README.txt").write_text(
            "housing.train.models has no mlp: no training curves\n"
        )
    best = min(cv, key=lambda name: cv[name]["rmse_log_mean"])
    submission = write_submission(paths, best, p, final_models, prep, backend, eval_bs)
    write_summary(
        paths,
        entries,
        backend.describe(),
        cv=cv,
        cv_folds=p.train.cv_folds,
        blend=p.train.blend,
        headline=p.train.headline,
        inputs=len(prep.get_feature_names_out()),
        feature_names=list(prep.get_feature_names_out()),
        training_rows=len(frame),
        best_by_cv=best,
        submission=submission,
    )


def cross_validate(
    x: pd.DataFrame, y: np.ndarray, p: TrainParams, backend: Backend, paths: Paths, eval_bs: int
) -> dict[str, dict]:
    """Shuffled, seeded K-fold CV of every candidate (and the blend) on the training part: the
    mean, spread and per-fold RMSE(log) of each."""
    folds = KFold(p.train.cv_folds, shuffle=True, random_state=p.seed)
    scores: dict[str, list[float]] = {
        name: [] for name in p.train.models + ([BLEND] if p.train.blend else [])
    }
    for k, (fit_rows, val_rows) in enumerate(
        tqdm(list(folds.split(x)), desc="housing cv", file=sys.stderr)
    ):
        prep = preprocessor().fit(x.iloc[fit_rows])
        fit_x, val_x = prep.transform(x.iloc[fit_rows]), prep.transform(x.iloc[val_rows])
        predicted = {}
        for name in p.train.models:
            if name == "mlp":
                model, config, _ = fit_mlp(
                    fit_x,
                    y[fit_rows],
                    p,
                    backend,
                    paths,
                    epochs=p.train.mlp.cv_epochs,
                    final=False,
                    desc=f"mlp cv{k + 1}",
                )
                predicted[name] = mlp_log_prices(model, config, val_x, backend, eval_bs)
            else:
                predicted[name] = fit_sklearn(name, p, fit_x, y[fit_rows]).predict(val_x)
        if p.train.blend:
            predicted[BLEND] = np.mean([predicted[m] for m in p.train.blend], axis=0)
        for name, values in predicted.items():
            scores[name].append(root_mean_squared_error(y[val_rows], values))
    cv = {
        name: {"rmse_log_mean": float(np.mean(s)), "rmse_log_std": float(np.std(s)), "folds": s}
        for name, s in scores.items()
    }
    for name, c in cv.items():
        logger.info(
            f"housing cv {name}: RMSE(log) {c['rmse_log_mean']:.4f} ± {c['rmse_log_std']:.4f}"
        )
    return cv


def fit_every_candidate(
    x: pd.DataFrame, y: np.ndarray, p: TrainParams, backend: Backend, paths: Paths, cv: dict
) -> tuple[Any, dict[str, dict], dict[str, Any]]:
    """Every candidate fitted on the whole training part and stored; the fitted preprocessor, each
    candidate's summary entry and the fitted models."""
    prep = preprocessor().fit(x)
    train_x = prep.transform(x)
    save_estimator(prep, paths.model, "preprocessor")
    entries: dict[str, dict] = {}
    final_models: dict[str, Any] = {}
    for name in p.train.models:
        if name == "mlp":
            model, config, entry = fit_mlp(
                train_x,
                y,
                p,
                backend,
                paths,
                epochs=p.train.mlp.train.epochs,
                final=True,
                desc="mlp",
            )
            final_models[name] = (model, config)
            entries[name] = {"kind": "torch", **entry, "cv": cv[name]}
        else:
            estimator = fit_sklearn(name, p, train_x, y)
            save_estimator(estimator, paths.model, name)
            final_models[name] = estimator
            entries[name] = {
                "kind": "lightgbm" if isinstance(estimator, TunedBoosting) else "sklearn",
                "estimator": type(estimator).__name__,
                "config": p.train.model_dump()[name],
                "cv": cv[name],
                **_chosen(estimator),
            }
    return prep, entries, final_models


def _chosen(estimator) -> dict[str, Any]:
    """What the inner CV picked: the linear model's penalty, the boosting's settings and trees."""
    if hasattr(estimator, "chosen_"):
        return {"chosen": estimator.chosen_}
    return {"alpha": float(estimator.alpha_)} if hasattr(estimator, "alpha_") else {}


def write_submission(
    paths: Paths, best: str, p: TrainParams, models: dict, prep, backend: Backend, eval_bs: int
) -> str | None:
    """Kaggle's test.csv priced by the best candidate by CV: ``Id,SalePrice`` in dollars."""
    test_file = paths.features / "kaggle_test.parquet"
    if not test_file.exists():
        return None
    houses = pd.read_parquet(test_file)
    x = prep.transform(houses)
    members = p.train.blend if best == BLEND else [best]
    logs = []
    for name in members:
        if name == "mlp":
            model, config = models[name]
            logs.append(mlp_log_prices(model, config, x, backend, eval_bs))
        else:
            logs.append(models[name].predict(x))
    prices = np.expm1(np.mean(logs, axis=0))
    pd.DataFrame({ID: houses[ID].astype(int), "SalePrice": prices.round(2)}).to_csv(
        paths.model / SUBMISSION, index=False
    )
    logger.info(f"housing: {SUBMISSION} prices {len(houses)} houses with {best} (best by CV)")
    return f"{best}: {len(houses)} houses"


if __name__ == "__main__":
    runner.main(train, PROJECT)
