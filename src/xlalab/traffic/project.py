"""The traffic project: anomaly detection on labelled network traffic. Detectors learn what normal
traffic looks like (Isolation Forest, an autoencoder trained by the shared loop, PyOD's ECOD and
COPOD, the distance to the nearest normal rows), raise alarms above a threshold taken from normal
validation traffic, and are judged on the test traffic's labels: the headline detector, named in
params before the run, against the strongest of the others and of random scores and
flag-everything.

Every params check of the project lives here, in the ``Params`` classes of its stages.
"""

from __future__ import annotations

from typing import Annotated, Literal

from ..engine.settings import Params, Runtime, TrainConfig
from ..pipeline.contract import Paths, Project
from ..pipeline.params import Field, Seed, Unique, field_validator, model_validator

Source = Literal["offline", "nsl_kdd", "kdd99", "unsw_nb15", "cic_ids2017", "local"]
# KDD's published feature groups (kddcup.names, Stolfo et al.); "traffic" is time + host.
FeatureSet = Literal["basic", "content", "time", "host", "traffic", "all"]
Detector = Literal["isolation_forest", "autoencoder", "ecod", "copod", "knn"]
DETECTORS = Detector.__args__
StudyDetector = Literal["isolation_forest", "ecod", "copod", "knn"]  # the fast, untrained ones
Kdd99Subset = Literal["full", "SA", "SF", "http", "smtp"]


# --- download ---------------------------------------------------------------------------------
class Download(Params):
    source: Source
    path: str | None  # nsl_kdd/unsw_nb15/cic_ids2017: a folder; kdd99/local: a file
    kdd99_subset: Kdd99Subset  # kdd99 without a path: sklearn.datasets.fetch_kddcup99(subset=...)
    test_fraction: float = Field(gt=0.0, lt=1.0)  # sources without a published test file
    label_column: str  # local
    normal_value: str  # local: the label value of normal traffic
    time_column: str | None  # local: a timestamp column (optional)
    chunk_rows: int = Field(ge=1)

    @model_validator(mode="after")
    def _path_when_needed(self) -> Download:
        needs_path = self.source in ("nsl_kdd", "unsw_nb15", "cic_ids2017", "local")
        if needs_path and not self.path:
            raise ValueError(f"source {self.source} reads local files; set traffic.download.path")
        return self


class DownloadParams(Params):
    seed: Seed
    download: Download


# --- featurize --------------------------------------------------------------------------------
class Featurize(Params):
    feature_set: FeatureSet  # the columns the detectors see
    fit_on: Literal["normal", "all"]  # normal: novelty detection; all: fully unsupervised
    val_fraction: float = Field(gt=0.0, lt=1.0)  # of normal training traffic: thresholds
    # Of each attack category's training types, held out whole (every row) for validation.
    val_attack_types: float = Field(gt=0.0, lt=1.0)
    max_fit_rows: int = Field(ge=100)  # training rows kept (a seeded sample beyond it)
    min_category_count: int = Field(ge=1)  # rarer training categories fold into "other"
    chunk_rows: int = Field(ge=1)


class FeaturizeParams(Params):
    seed: Seed
    featurize: Featurize


# --- train ------------------------------------------------------------------------------------
class Train(TrainConfig):
    # Encoder widths of each candidate (the decoder mirrors them); the one with the best ROC-AUC
    # on labelled validation traffic is kept.
    hidden_choices: list[Annotated[list[int], Field(min_length=1)]] = Field(min_length=1)
    dropout: float = Field(ge=0.0, lt=1.0)

    @field_validator("hidden_choices")
    @classmethod
    def _positive(cls, value: list[list[int]]) -> list[list[int]]:
        if any(h < 1 for hidden in value for h in hidden):
            raise ValueError("has a layer width below 1; use positive widths such as [[64, 16]]")
        if len({tuple(hidden) for hidden in value}) < len(value):
            raise ValueError("names a candidate twice; list each one once")
        return value


class TrainParams(Params):
    seed: Seed
    train: Train
    runtime: Runtime


# --- evaluate ---------------------------------------------------------------------------------


Choices = Annotated[list[Annotated[int, Field(ge=1)]], Unique, Field(min_length=1)]


class IsolationForestParams(Params):
    n_estimators: int = Field(ge=1)
    # Rows per tree of each candidate; the best ROC-AUC on labelled validation traffic is kept.
    max_samples_choices: Choices

    @field_validator("max_samples_choices")
    @classmethod
    def _at_least_two(cls, value: list[int]) -> list[int]:
        if min(value) < 2:
            raise ValueError("has a tree of fewer than 2 rows; use 2 or more, such as [256]")
        return value


class KnnParams(Params):
    """The mean distance to the ``neighbours`` nearest training rows (each of
    ``neighbours_choices`` a candidate; the best ROC-AUC on labelled validation traffic is kept),
    searched in a faiss inverted-file index of ``lists`` k-means cells of which the ``probes``
    nearest are scanned (``lists: 0``: exact search over every training row)."""

    neighbours_choices: Choices
    lists: int = Field(ge=0)
    probes: int = Field(ge=1)

    @model_validator(mode="after")
    def _probes_within_lists(self) -> KnnParams:
        if self.lists and self.probes > self.lists:
            raise ValueError(f"probes ({self.probes}) exceeds lists ({self.lists}); lower it")
        return self


class Evaluate(Params):
    detectors: Annotated[list[Detector], Unique] = Field(min_length=1)
    # The detector the verdict is about, named before the run (never picked on test labels).
    headline: Detector
    isolation_forest: IsolationForestParams
    knn: KnnParams
    # The alarm threshold: this percentile of the scores of NORMAL validation traffic, so
    # 100 - threshold_percentile is the expected false-alarm rate in percent.
    threshold_percentile: float = Field(gt=0.0, lt=100.0)
    # Recall is also reported at this false-alarm rate: its threshold is the (1 - rate) quantile
    # of the scores of normal validation traffic.
    fixed_false_alarm_rate: float = Field(gt=0.0, lt=1.0)
    # The verdict's paired bootstrap of ROC-AUC resamples at most this many test rows (a seeded
    # sample of them beyond it: a wider interval, at a cost that stays flat with the test size).
    bootstrap_rows: int = Field(ge=100)
    study_sets: Annotated[list[FeatureSet], Unique]  # the feature-set study: detectors per set
    study_detectors: Annotated[list[StudyDetector], Unique] = Field(min_length=1)
    top_false_alarms: int = Field(ge=1)
    batch_size: int = Field(ge=1)  # rows per batch when the autoencoder scores traffic
    chunk_rows: int = Field(ge=1)  # test rows read and scored at a time (a multiple of batch_size)

    @model_validator(mode="after")
    def _headline_is_run(self) -> Evaluate:
        if self.headline not in self.detectors:
            raise ValueError(
                f"headline {self.headline!r} is not among the detectors run "
                f"({', '.join(self.detectors)}); set traffic.evaluate.headline to one of them"
            )
        return self


class EvaluateParams(Params):
    seed: Seed
    evaluate: Evaluate
    runtime: Runtime


# --- plot -------------------------------------------------------------------------------------
class Plot(Params):
    window: int = Field(ge=1)  # records (or seconds of traffic) per point of the time plot
    curve_points: int = Field(ge=10)  # points kept per ROC/PR curve in the DVC plot data


class PlotParams(Params):
    plot: Plot


PATHS = Paths.of("traffic")
# The plot stage's files (under ``paths.figures``), named once for the stage and for dvc.yaml.
ROC, PR, RECALL_PER_CATEGORY, FEATURE_SETS = (
    "roc.json",
    "pr.json",
    "recall_per_category.json",
    "feature_sets.json",
)
ANOMALIES, DISTRIBUTIONS = "anomalies_over_time.png", "score_distributions.png"
CATEGORY_CHART, FEATURE_SET_CHART = "recall_per_category.png", "feature_sets.png"
TRAINING_CHART, REPORT = "autoencoder_training.png", "report.md"
ROC_PR_CHART = "roc_pr.png"
PROJECT = Project(
    "traffic",
    params={
        "download": DownloadParams,
        "featurize": FeaturizeParams,
        "train": TrainParams,
        "evaluate": EvaluateParams,
        "plot": PlotParams,
    },
    inputs={"evaluate": ("features", "model"), "plot": ("predictions", "details", "live")},
    key_figures=(ROC_PR_CHART, CATEGORY_CHART, DISTRIBUTIONS),
    plots=(
        {
            "traffic_roc": {
                "title": "traffic: ROC curves on the test traffic",
                "template": "simple",
                "x": "fpr",
                "y": {PATHS.figure(ROC): list(DETECTORS)},
                "x_label": "false positive rate",
                "y_label": "true positive rate",
            }
        },
        {
            "traffic_pr": {
                "title": "traffic: precision-recall curves on the test traffic",
                "template": "simple",
                "x": "recall",
                "y": {PATHS.figure(PR): list(DETECTORS)},
                "y_label": "precision",
            }
        },
        {
            "traffic_recall_per_category": {
                "title": "traffic: recall per attack category",
                "template": "bar_horizontal",
                "x": "recall",
                "y": {PATHS.figure(RECALL_PER_CATEGORY): "category"},
            }
        },
        {
            "traffic_feature_sets": {
                "title": "traffic: ROC-AUC per feature set",
                "template": "bar_horizontal",
                "x": "roc_auc",
                "y": {PATHS.figure(FEATURE_SETS): "run"},
            }
        },
        {
            "traffic_ae_loss": {
                "title": "traffic: autoencoder reconstruction loss per epoch",
                "template": "linear",
                "x": "step",
                "x_label": "epoch",
                "y": {
                    PATHS.series("train/loss"): "loss",
                    PATHS.series("val/loss"): "loss",
                },
            }
        },
        PATHS.figure(ROC_PR_CHART),
        PATHS.figure(CATEGORY_CHART),
        PATHS.figure(ANOMALIES),
        PATHS.figure(DISTRIBUTIONS),
    ),
)
