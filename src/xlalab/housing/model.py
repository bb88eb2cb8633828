"""The candidates: scikit-learn estimators (fitted after the shared preprocessor) and an MLP for the
shared training loop; how each is stored and predicts.

Storage: the MLP's weights are safetensors (pipeline.artifacts). The fitted scikit-learn objects
(the preprocessor, the linear model and the forest) are skops files: a zip of JSON and numpy arrays
that loads only types on an allow list, so, like safetensors, reading one never runs code from it
(pickle would). The boosting model is LightGBM's own text model, which holds only trees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import torch
from scipy.stats import loguniform
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import ElasticNetCV, LassoCV, RidgeCV
from sklearn.model_selection import KFold, ParameterSampler
from skops import io as skops_io

from ..engine.task import Task
from ..errors import UserError
from .project import Boosting, Forest, Linear, Mlp

LINEAR_ALPHAS = {
    "lasso": (-5.0, -1.0),
    "elasticnet": (-5.0, -0.5),
    "ridge": (-1.0, 3.0),
}  # log10 grid ends


def linear_model(p: Linear, seed: int):
    """A linear model whose penalty is chosen by shuffled, seeded inner K-fold CV."""
    alphas = np.logspace(*LINEAR_ALPHAS[p.kind], p.alphas)
    inner = KFold(5, shuffle=True, random_state=seed)
    if p.kind == "ridge":
        return RidgeCV(alphas=alphas, cv=inner)
    if p.kind == "elasticnet":
        return ElasticNetCV(
            alphas=alphas, l1_ratio=p.l1_ratio, cv=inner, max_iter=20_000, random_state=seed
        )
    return LassoCV(alphas=alphas, cv=inner, max_iter=20_000, random_state=seed)


def forest_model(p: Forest, seed: int) -> RandomForestRegressor:
    return RandomForestRegressor(
        n_estimators=p.n_estimators,
        max_features=p.max_features,
        min_samples_leaf=p.min_samples_leaf,
        n_jobs=-1,
        random_state=seed,
    )


def predicting_in_one_thread(estimator):
    """``estimator``, fitted, set to predict in one thread. A forest predicting in several adds its
    trees' outputs up in the order its threads finish, so a price's last bits changed from run to
    run (measured); its trees are the same whatever the threads (each is seeded up front)."""
    if "n_jobs" in estimator.get_params():
        estimator.set_params(n_jobs=1)
    return estimator


# The settings the boosting search draws from: tree size and leaf size (how much one tree can
# fit), the share of the inputs and of the rows each tree sees (the subsampling that the tuned
# Kaggle kernels lean on with 240-odd one-hot inputs), and the L2 penalty on leaf values. The
# number of trees is searched too, for free: the inner CV scores every count up to max_rounds.
BOOSTING_SPACE = {
    "num_leaves": [4, 6, 8, 12, 16, 24],
    "min_data_in_leaf": [5, 10, 20, 40],
    "feature_fraction": [0.2, 0.3, 0.5, 0.7, 1.0],
    "bagging_fraction": [0.6, 0.75, 0.9, 1.0],
    "lambda_l2": loguniform(1e-3, 10.0),
}


class TunedBoosting(RegressorMixin, BaseEstimator):
    """LightGBM with its settings chosen by an inner K-fold CV on the rows it is fitted on, as
    the Lasso's penalty is: ``p.candidates`` settings drawn from ``BOOSTING_SPACE`` (seeded), each
    scored by ``lightgbm.cv`` at every number of trees up to ``p.max_rounds`` (stopped once the
    mean fold score has not improved for ``p.patience`` trees); the best setting and tree count
    are refitted on all the rows. Inside the outer CV of train this makes the search nested: the
    held-out fold of the outer CV chooses nothing."""

    def __init__(self, p: Boosting, seed: int):
        self.p = p
        self.seed = seed

    def _fixed(self) -> dict[str, Any]:
        return {
            "objective": "regression",
            "learning_rate": self.p.learning_rate,
            "bagging_freq": 1,
            "num_threads": 1,  # small data: one thread, and the same trees every run
            "deterministic": True,
            "force_col_wise": True,
            "seed": self.seed,
            "verbosity": -1,
        }

    def fit(self, x: np.ndarray, y: np.ndarray) -> TunedBoosting:
        fixed = self._fixed()
        # The same inner folds for every setting (listed: lightgbm would hand KFold a groups
        # argument it warns about).
        folds = list(KFold(self.p.inner_folds, shuffle=True, random_state=self.seed).split(x))
        tried = []
        for setting in ParameterSampler(BOOSTING_SPACE, self.p.candidates, random_state=self.seed):
            curve = lightgbm.cv(
                {**fixed, **setting, "metric": "rmse"},
                dataset(x, y),
                num_boost_round=self.p.max_rounds,
                folds=folds,
                stratified=False,
                callbacks=[lightgbm.early_stopping(self.p.patience, verbose=False)],
            )["valid rmse-mean"]
            rounds = int(np.argmin(curve)) + 1
            tried.append((float(curve[rounds - 1]), rounds, setting))
        score, rounds, setting = min(tried, key=lambda t: t[0])
        self.chosen_ = {
            **{k: float(v) if k == "lambda_l2" else v for k, v in setting.items()},
            "trees": rounds,
            "inner_cv_rmse_log": score,
            "settings_tried": len(tried),
        }
        self.booster_ = lightgbm.train({**fixed, **setting}, dataset(x, y), num_boost_round=rounds)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.booster_.predict(x)


def dataset(x: np.ndarray, y: np.ndarray):
    """LightGBM's binned copy of the rows, built anew for each setting: a Dataset keeps the
    features its first leaf size let through, so one shared between settings would carry one
    setting's filtering into the next."""
    return lightgbm.Dataset(x, y, params={"verbosity": -1, "feature_pre_filter": False})


def boosting_model(p: Boosting, seed: int) -> TunedBoosting:
    return TunedBoosting(p, seed)


# --- the MLP
# ---------------------------------------------------------------------------------------
class PriceMlp(torch.nn.Module):
    """Preprocessed features -> standardized log price."""

    def __init__(self, inputs: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        blocks: list[torch.nn.Module] = []
        width = inputs
        for _ in range(layers):
            blocks += [torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
            width = hidden
        self.net = torch.nn.Sequential(*blocks, torch.nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def mlp_config(inputs: int, p: Mlp, target_mean: float, target_std: float) -> dict[str, Any]:
    """What rebuilds the MLP and maps its output back to log price (stored in summary.json)."""
    return {
        "inputs": inputs,
        "hidden": p.hidden,
        "layers": p.layers,
        "dropout": p.dropout,
        "target_mean": target_mean,
        "target_std": target_std,
    }


def build_mlp(config: dict[str, Any]) -> PriceMlp:
    return PriceMlp(config["inputs"], config["hidden"], config["layers"], config["dropout"])


def mlp_task() -> Task:
    """Squared error on the standardized log price (the loop averages it per epoch); absolute error
    as a metric."""

    def squared_error(outputs: torch.Tensor, batch: dict) -> torch.Tensor:
        return (outputs - batch["y"]) ** 2

    def absolute_error(outputs: torch.Tensor, batch: dict) -> torch.Tensor:
        return (outputs - batch["y"]).abs()

    return Task(loss=squared_error, metrics={"mae": absolute_error})


def tensors(x: np.ndarray, y: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    data = {"x": torch.as_tensor(np.asarray(x, np.float32))}
    if y is not None:
        data["y"] = torch.as_tensor(np.asarray(y, np.float32))
    return data


def mlp_log_price(model: PriceMlp, x: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    """Log prices from the MLP on the host CPU (for explanations, which call it many times on small
    batches)."""
    model.eval()
    with torch.no_grad():
        out = model(torch.as_tensor(np.asarray(x, np.float32))).numpy().astype(float)
    return out * config["target_std"] + config["target_mean"]


# --- storage
# ---------------------------------------------------------------------------------------
def estimator_file(model_dir: Path, name: str) -> Path:
    return model_dir / f"{name}.skops"


def booster_file(model_dir: Path, name: str) -> Path:
    return model_dir / f"{name}.lightgbm.txt"


def save_estimator(estimator: Any, model_dir: Path, name: str) -> Path:
    """A scikit-learn object as skops; tuned boosting as LightGBM's own text model (its trees and
    nothing else), which loads without running code, as skops and safetensors do."""
    if isinstance(estimator, TunedBoosting):
        path = booster_file(model_dir, name)
        estimator.booster_.save_model(str(path))
        return path
    path = estimator_file(model_dir, name)
    skops_io.dump(estimator, path)
    return path


def load_estimator(model_dir: Path, name: str) -> Any:
    """A LightGBM booster from its text model, or a scikit-learn object loaded with only
    scikit-learn and numpy types (skops' allow list plus the sklearn classes it names). Either
    has ``predict``."""
    if booster_file(model_dir, name).exists():
        return load_booster(booster_file(model_dir, name))
    path = estimator_file(model_dir, name)
    if not path.exists():
        raise UserError(f"{path} is missing; run the train stage (dvc repro) first")
    try:
        untrusted = skops_io.get_untrusted_types(file=path)
        foreign = [t for t in untrusted if not t.startswith(("sklearn.", "numpy."))]
        if foreign:
            raise UserError(
                f"{path} holds types outside scikit-learn ({', '.join(foreign)}); re-run train"
            )
        return skops_io.load(path, trusted=untrusted)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(
            f"{path} is not a readable skops file ({e}); re-run the train stage"
        ) from None


def load_booster(path: Path) -> lightgbm.Booster:
    try:
        return lightgbm.Booster(model_file=str(path))
    except lightgbm.basic.LightGBMError as e:
        raise UserError(
            f"{path} is not a readable LightGBM model ({str(e).splitlines()[0]}); re-run train"
        ) from None
