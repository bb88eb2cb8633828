"""cifar10's contract: the params each stage reads (the `cifar10:` section of params.yaml) and its
DVC plots. Every check of a param lives here, once, in its field."""

from __future__ import annotations

from typing import Annotated, Literal

from ..engine.settings import Params, Runtime, TrainConfig
from ..pipeline.contract import Paths, Project
from ..pipeline.params import Field, Seed, Unique, model_validator

NAME = "cifar10"
Backbone = Literal["efficientnet_lite0", "resnet18", "resnet50"]
# A hub revision (commit hash, tag or branch) of the pretrained weights; null: the hub's default
# branch for resnet18/resnet50 (the commit it resolves to is recorded), and the only value for
# efficientnet_lite0, whose weights ship in a package.
Revision = Annotated[str, Field(min_length=1, pattern=r"^[\w.\-/]+$")] | None
PATHS = Paths.of(NAME)
PROB_PREFIX = "prob_"  # the predictions CSV has one probability column per class: prob_<class>
# The measured accuracy and training cost of each recipe (bench/cifar10_frontier.py), git-tracked;
# the plot stage draws it (frontier.py)
FRONTIER = "docs/cifar10_frontier.json"


class Download(Params):
    source: Literal["offline", "torchvision", "kaggle", "local", "folder"]
    # torchvision: an already-downloaded archive or a folder to download into (optional);
    # kaggle/local/folder: the folder or archive to read
    path: str | None
    # Pixels per side of the stored images; null: the source's own (32 for CIFAR-10, 28 for the
    # offline digits; a folder of images of several sizes needs a number). The model resizes to
    # train.image_size on the device, so this only sets what is stored and moved.
    storage_size: int | None = Field(ge=8, le=512)


class Featurize(Params):
    val_fraction: float = Field(ge=0.01, le=0.5)
    max_train: int | None = Field(ge=10)  # at least one image per class; null: all


class Train(TrainConfig):
    image_size: int = Field(ge=8, le=512)  # pixels per side the model resizes each batch to
    pretrained: bool
    freeze_backbone: bool
    # with freeze_backbone: the backbone's last stages that train with the head (0: none)
    unfreeze_blocks: int = Field(ge=0, le=7)
    augment_crop: bool
    augment_flip: bool

    @model_validator(mode="after")
    def _unfreeze_only_a_frozen_backbone(self) -> Train:
        if self.unfreeze_blocks and not self.freeze_backbone:
            raise ValueError(
                f"unfreeze_blocks is {self.unfreeze_blocks} but freeze_backbone is false (every "
                "stage trains already); set unfreeze_blocks: 0 or freeze_backbone: true"
            )
        return self


class Baselines(Params):
    """The candidate hyperparameters of each baseline; each is chosen by validation accuracy."""

    svm_c: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1), Unique]
    knn_k: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1), Unique]
    logreg_c: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1), Unique]
    probe_c: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1), Unique]
    # the kernel SVM and k-NN fit at most this many training rows (a stratified subset); null: all
    max_train: int | None = Field(ge=10)


class Evaluate(Params):
    batch_size: int = Field(ge=1)
    top_confused_pairs: int = Field(ge=1)
    top_confident_mistakes: int = Field(ge=1)
    baselines: Baselines


class Plot(Params):
    samples: int = Field(ge=1, le=100)


class DownloadParams(Params):
    seed: Seed
    download: Download


class FeaturizeParams(Params):
    seed: Seed
    featurize: Featurize


class TrainParams(Params):
    seed: Seed
    backbone: Backbone
    revision: Revision
    train: Train
    runtime: Runtime


class EvaluateParams(Params):
    seed: Seed
    evaluate: Evaluate
    runtime: Runtime


class PlotParams(Params):
    seed: Seed
    plot: Plot
    evaluate: Evaluate  # how many confident mistakes and confused pairs to show, as the metrics


PROJECT = Project(
    NAME,
    params={
        "download": DownloadParams,
        "featurize": FeaturizeParams,
        "train": TrainParams,
        "evaluate": EvaluateParams,
        "plot": PlotParams,
    },
    inputs={"evaluate": ("features", "model", "raw"), "plot": ("predictions", "live", "features")},
    key_figures=("confident_mistakes.png", "confused_pairs.png", "confusion.png"),
    files={"plot": (FRONTIER,)},
    plots=(
        {
            "cifar10_confusion": {
                "title": "cifar10: test confusion matrix",
                "template": "confusion",
                "x": "predicted",
                "y": {PATHS.figure("confusion.json"): "actual"},
            }
        },
        {
            "cifar10_loss": {
                "title": "cifar10: loss per epoch",
                "template": "linear",
                "x": "step",
                "x_label": "epoch",
                "y": {PATHS.series("train/loss"): "loss", PATHS.series("val/loss"): "loss"},
            }
        },
        {
            "cifar10_val_accuracy": {
                "title": "cifar10: validation accuracy per epoch",
                "template": "linear",
                "x": "step",
                "x_label": "epoch",
                "y": {PATHS.series("val/accuracy"): "accuracy"},
            }
        },
        # Images: DVC renders an image only from a plain path entry (an id with `y: x.png` is
        # refused as "only JSON, YAML, CSV and TSV"), so these are paths, each under plots/cifar10/.
        *(
            PATHS.figure(f"{name}.png")
            for name in (
                "confident_mistakes",
                "confused_pairs",
                "confusion",
                "training_curves",
                "sample_predictions",
            )
        ),
        PATHS.figure("frontier.png"),  # drawn from FRONTIER
    ),
)
