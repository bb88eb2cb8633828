"""housing: the contract. Kaggle House Prices (Ames) -> log-price regression with a cross-validated
linear model, a random forest, gradient boosting, an MLP on the shared loop and a blend, explained
with SHAP and LIME."""

from __future__ import annotations

from typing import Literal

from ..engine.settings import Params, Runtime, TrainConfig
from ..pipeline.contract import Paths, Project
from ..pipeline.params import Field, Seed, model_validator

MODELS = ("linear", "forest", "boosting", "mlp")
BLEND = "blend"  # the mean of housing.train.blend's models in log space
Model = Literal["linear", "forest", "boosting", "mlp"]


class Download(Params):
    source: Literal["offline", "kaggle", "local"]
    path: (
        str | None
    )  # kaggle: Kaggle's folder or zip; local: a CSV in train.csv's layout or a folder

    @model_validator(mode="after")
    def _path_for_files(self):
        if self.source != "offline" and not self.path:
            raise ValueError(f"download.source {self.source} reads files: set download.path")
        return self


class Featurize(Params):
    test_fraction: float = Field(gt=0.0, lt=0.5)
    # The known outlier rule (De Cock: partial sales, not the market being modelled) reads the
    # price, so it drops matching houses from the training part only ("training"), after the split;
    # "keep" drops none. The test split holds the same houses either way.
    outliers: Literal["training", "keep"]
    outlier_area: float = Field(gt=0)  # GrLivArea above this ...
    outlier_price: float = Field(gt=0)  # ... with SalePrice below this


class Linear(Params):
    kind: Literal["lasso", "ridge", "elasticnet"]
    alphas: int = Field(ge=5)  # penalties tried by the inner CV (a log grid)
    l1_ratio: float = Field(gt=0.0, le=1.0)  # elasticnet only


class Forest(Params):
    n_estimators: int = Field(ge=1)
    max_features: float = Field(gt=0.0, le=1.0)  # share of the inputs tried per split
    min_samples_leaf: int = Field(ge=1)


class Boosting(Params):  # LightGBM, its settings chosen by an inner CV (model.TunedBoosting)
    learning_rate: float = Field(gt=0.0, le=1.0)
    max_rounds: int = Field(ge=1)  # the most trees; the inner CV picks the count below it
    patience: int = Field(ge=1)  # trees without a better inner CV score before it stops adding
    candidates: int = Field(ge=1)  # settings drawn and scored by the inner CV
    inner_folds: int = Field(ge=2, le=20)


class Mlp(Params):
    hidden: int = Field(ge=1)
    layers: int = Field(ge=1, le=6)
    dropout: float = Field(ge=0.0, lt=1.0)
    val_fraction: float = Field(gt=0.0, lt=0.5)  # of the training rows, picks the best epoch
    cv_epochs: int = Field(
        ge=1
    )  # epochs of each cross-validation fit (the final fit runs train.epochs)
    train: TrainConfig


class Train(Params):
    models: list[Model] = Field(min_length=1)
    blend: list[Model]  # averaged in log space; [] for no blend
    # The model the verdict is about; it is judged against the best other single model by CV.
    headline: Literal["blend", "linear", "forest", "boosting", "mlp"]
    cv_folds: int = Field(ge=2, le=20)
    linear: Linear
    forest: Forest
    boosting: Boosting
    mlp: Mlp

    @model_validator(mode="after")
    def _consistent(self):
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models lists a model twice ({self.models}); list each once")
        outside = [m for m in self.blend if m not in self.models]
        if outside:
            raise ValueError(
                f"blend names {outside}, which are not in models; add them to models or drop them"
            )
        if len(self.blend) == 1 or len(set(self.blend)) != len(self.blend):
            raise ValueError("blend needs two or more different models, or [] for none")
        if self.headline == BLEND and not self.blend:
            raise ValueError("headline is blend but blend is []; name the blend's models")
        if self.headline != BLEND and self.headline not in self.models:
            raise ValueError(f"headline {self.headline} is not in models; add it or change it")
        if not [m for m in self.models if m != self.headline]:
            raise ValueError(
                f"headline {self.headline} needs another model in models to be judged against"
            )
        return self


class TrainParams(Params):
    seed: Seed
    train: Train
    runtime: Runtime


class DownloadParams(Params):
    download: Download


class FeaturizeParams(Params):
    seed: Seed
    featurize: Featurize


class EvaluateParams(Params):  # seed: bootstrap
    seed: Seed
    runtime: Runtime


class Plot(Params):
    tree_model: Literal["boosting", "forest"]  # SHAP's tree model (when trained)
    shap_background: int = Field(ge=10)  # training rows the linear explainer integrates over
    lime_features: int = Field(ge=1)
    lime_samples: int = Field(ge=100)


class PlotParams(Params):
    seed: Seed
    plot: Plot


PATHS = Paths.of("housing")
PROJECT = Project(
    "housing",
    params={
        "download": DownloadParams,
        "featurize": FeaturizeParams,
        "train": TrainParams,
        "evaluate": EvaluateParams,
        "plot": PlotParams,
    },
    inputs={"plot": ("predictions", "live", "model", "features")},
    # SHAP's tree model is plot.tree_model's: the page shows whichever was drawn
    key_figures=(
        "predicted_vs_actual.png",
        "shap_boosting_importance.png",
        "shap_forest_importance.png",
        "lime_worst.png",
    ),
    plots=(
        {
            "housing_predicted_vs_actual": {
                "title": "housing: held-out houses, predicted vs actual log price (best model)",
                "template": "scatter",
                "x": "actual_log_price",
                "y": {PATHS.figure("predicted_vs_actual.json"): "predicted_log_price"},
            }
        },
        {
            "housing_cv_scores": {
                "title": "housing: cross-validated RMSE of log price per model (mean over folds)",
                "template": "bar_horizontal",
                "x": "cv_rmse_log",
                "y": {PATHS.figure("cv_scores.json"): "model"},
            }
        },
        {
            "housing_mlp_loss": {
                "title": "housing: MLP loss per epoch (standardized log price)",
                "template": "linear",
                "x": "step",
                "x_label": "epoch",
                "y": {
                    PATHS.series("train/loss"): "loss",
                    PATHS.series("val/loss"): "loss",
                },
            }
        },
    ),
)
