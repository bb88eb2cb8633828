"""The candidates: scikit-learn estimators (fitted after the shared preprocessor) and an MLP for the
shared training loop; how each is stored and predicts.

Storage: the MLP's weights are safetensors (core.artifacts). The fitted scikit-learn objects (the
preprocessor and the tree/linear models) are skops files: a zip of JSON and numpy arrays that loads
only types on an allow list, so, like safetensors, reading one never runs code from it (pickle
would).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import ElasticNetCV, LassoCV, RidgeCV
from sklearn.model_selection import KFold
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


def boosting_model(p: Boosting, seed: int) -> HistGradientBoostingRegressor:
    # early_stopping off: the number of trees is a param, and its own validation split would hide
    # rows.
    return HistGradientBoostingRegressor(
        max_iter=p.max_iter,
        learning_rate=p.learning_rate,
        max_leaf_nodes=p.max_leaf_nodes,
        min_samples_leaf=p.min_samples_leaf,
        l2_regularization=p.l2_regularization,
        early_stopping=False,
        random_state=seed,
    )


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


def save_estimator(estimator: Any, model_dir: Path, name: str) -> Path:
    path = estimator_file(model_dir, name)
    skops_io.dump(estimator, path)
    return path


def load_estimator(model_dir: Path, name: str) -> Any:
    """Loads only scikit-learn and numpy types (skops' allow list plus the sklearn classes it
    names)."""
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
