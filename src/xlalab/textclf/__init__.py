"""Shared text classification: fine-tune a pretrained encoder with a classification head.

The ``imdb`` (binary) and ``reviews`` (3-class) projects each bring their own download connectors
(``<project>/data.py``) and contract (``<project>/project.py``); featurize, train, evaluate and plot
are this family's stages, which each project's own stage modules (``imdb/train.py``, ...) run. The
family stages know nothing
about a project but its params and its data: the class names and their order are recorded by
download in the data card and by featurize in the features meta; a binary project's "positive"
class is the second one.

The Params classes of the family stages live here, beside nothing but core's params, so that a
project's contract can import them without making every stage depend on every stage module.

Modules:
- ``corpus``: checked tables of (text, label), the offline Rotten Tomatoes corpus, the raw folder
  and the texts and meta of the features folder.
- ``tokens``: the token files (compact, written chunk by chunk) and the padded tensors with their
  length buckets.
- ``features``: the featurize stage (stratified training samples, a label-blind test sample,
  tokens).
- ``hub``: hub revisions resolved to commits.
- ``model``: resolving the model name or path at its revision, loading it, freezing layers, the
  loop's Task.
- ``train``: the train stage (class balancing, fit with early stopping, save).
- ``baselines``: TF-IDF (words and characters) + logistic regression, frozen embeddings + logistic
  regression, each with C chosen by cross-validation on the training rows.
- ``evaluate``: the evaluate stage (predictions, baselines, report, verdicts with intervals).
- ``plot``: the plot stage.
"""

from __future__ import annotations

from typing import Any, Literal

from ..engine.settings import Params, Runtime, TrainConfig
from ..pipeline.contract import Paths, Project
from ..pipeline.params import Field, field_validator, model_validator


class FeaturizeConfig(Params):
    # the most tokens per text (longer texts are cut); auto: the length that covers 95% of the
    # training texts, capped by the model's maximum
    max_length: int | Literal["auto"]
    # shorter fixed lengths below max_length: each text is padded only to the shortest that holds
    # it, so XLA compiles one graph per length; []: every text padded to max_length; auto: the
    # (at most three) lengths that pad the training texts least, chosen as max_length: auto is
    buckets: list[int] | Literal["auto"]
    val_fraction: float = Field(
        ge=0.01, le=0.5
    )  # stratified share of train held out for validation
    max_train: int | None = Field(ge=1)  # rows used (stratified sample); None: all
    max_val: int | None = Field(ge=1)
    max_test: int | None = Field(ge=1)

    @field_validator("max_length", mode="before")
    @classmethod
    def _auto_or_a_length(cls, value: Any) -> Any:
        if value == "auto" or (
            isinstance(value, int) and not isinstance(value, bool) and 8 <= value <= 512
        ):
            return value
        raise ValueError("must be auto or a whole number of tokens from 8 to 512")

    @field_validator("buckets")
    @classmethod
    def _increasing_lengths(cls, value: list[int] | str) -> list[int] | str:
        if value == "auto":
            return value
        if any(not 8 <= n <= 512 for n in value) or value != sorted(set(value)):
            raise ValueError(
                "must be auto or increasing token lengths from 8 to 512, e.g. [128, 256]"
            )
        return value

    @model_validator(mode="after")
    def _buckets_below_max_length(self) -> FeaturizeConfig:
        if (
            isinstance(self.max_length, int)
            and isinstance(self.buckets, list)
            and any(n >= self.max_length for n in self.buckets)
        ):
            raise ValueError(
                f"`buckets` {self.buckets} must be below `max_length` ({self.max_length}), "
                "which is the longest bucket"
            )
        return self


class FeaturizeParams(Params):
    seed: int = Field(ge=0)
    model: str  # offline-minilm, a hub id or a local directory: its tokenizer is used
    revision: str | None  # the hub model's branch, tag or commit; null: its default branch
    featurize: FeaturizeConfig


class TextTrainConfig(TrainConfig):
    freeze_layers: int = Field(ge=0)  # embeddings + the lowest N layers stay pretrained
    balance: Literal["none", "class_weights", "oversample"]
    imbalance_threshold: float = Field(ge=1.0)  # balance only when largest/smallest >= this


class TrainParams(Params):
    seed: int = Field(ge=0)
    model: str
    revision: str | None
    train: TextTrainConfig
    runtime: Runtime


class EvaluateConfig(Params):
    batch_size: int = Field(ge=1)
    embedding_baseline: (
        bool  # frozen-embedding + logistic regression baseline (a forward pass per row)
    )


class EvaluateParams(Params):
    seed: int = Field(ge=0)
    model: str  # the pretrained model, for the frozen-embedding baseline
    revision: str | None
    evaluate: EvaluateConfig
    runtime: Runtime


class PlotConfig(Params):
    # terms per class in top_terms.json (the words that separate the classes: log-odds with an
    # informative Dirichlet prior)
    top_terms: int = Field(ge=5)
    word_clouds: bool  # those terms as word clouds too (top_terms.png always shows them as bars)


class PlotParams(Params):
    seed: int = Field(ge=0)
    plot: PlotConfig


def text_project(name: str, download_params: type[Params], word_clouds: bool) -> Project:
    """The contract of a text project: its own download (``xlalab/<name>/download.py``), this
    family's other stages (``python -m xlalab.textclf.train <name>``), and its DVC plots."""
    return Project(
        name,
        params={
            "download": download_params,
            "featurize": FeaturizeParams,
            "train": TrainParams,
            "evaluate": EvaluateParams,
            "plot": PlotParams,
        },
        inputs={"plot": ("raw", "features", "predictions", "live")},
        plots=dvc_plots(name, word_clouds),
        shared="textclf",
        key_figures=("confusion.png", "top_terms.png"),
    )


def dvc_plots(project: str, word_clouds: bool) -> tuple:
    """The dvc.yaml plots of a text project: data plots by id, images by their path (DVC's id for
    an image), all under plots/<project>/."""
    paths = Paths.of(project)
    images = ["label_distribution", "predictions", "confusion", "training_curves", "top_terms"] + (
        ["word_clouds"] if word_clouds else []
    )
    return (
        {
            f"{project}_confusion": {
                "template": "confusion",
                "x": "actual",
                "y": {paths.figure("confusion.json"): "predicted"},
                "title": f"{project}: fine-tuned model on the test split",
            }
        },
        {
            f"{project}_loss": {
                "x": "step",
                "y": {paths.series("train/loss"): "loss", paths.series("val/loss"): "loss"},
                "x_label": "epoch",
                "title": f"{project}: training and validation loss",
            }
        },
        {
            f"{project}_val_accuracy": {
                "x": "step",
                "y": {paths.series("val/acc"): "acc"},
                "x_label": "epoch",
                "title": f"{project}: validation accuracy",
            }
        },
        {
            f"{project}_top_terms": {
                "template": "bar_horizontal",
                "x": "z",
                "y": {paths.figure("top_terms.json"): "term"},
                "title": f"{project}: the terms that separate each class (z of the log-odds)",
            }
        },
        {
            f"{project}_label_distribution": {
                "template": "bar_horizontal",
                "x": "count",
                "y": {paths.figure("label_distribution.json"): "label"},
                "title": f"{project}: rows per class and split",
            }
        },
        *[paths.figure(f"{image}.png") for image in images],
    )
