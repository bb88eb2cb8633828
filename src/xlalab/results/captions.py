"""What each figure of the plot stages shows, in a sentence: the captions of the results page.

Keyed by project and by a pattern of the image's name (``plots/<project>/figures/<name>.png``);
``{0}``, ``{1}`` take the pattern's groups (the model a SHAP figure explains). A figure with no
caption here gets its name as words, and tests/test_results_page.py checks that every committed
figure has one.
"""

from __future__ import annotations

import re

TRAINING = (
    "Training curves per epoch, from the DVCLive logs: training and validation loss (left) and the "
    "validation metrics (right)."
)
CONFUSION = (
    "Confusion matrix of the headline model on the test split: rows are the actual classes, "
    "columns the predicted ones; each cell counts test rows, its shade is the share of its row."
)
CAPTIONS: dict[str, dict[str, str]] = {
    "cifar10": {
        "confusion": CONFUSION,
        "training_curves": TRAINING,
        "sample_predictions": (
            "A seeded sample of test images with the model's predicted class and its probability, "
            "about a third of them mistakes (red, with the true class)."
        ),
    },
    "imdb": {
        "label_distribution": (
            "Rows per class in each split of the source and in the samples the pipeline uses."
        ),
        "predictions": (
            "The fine-tuned model's test predictions: rows per class, actual beside predicted "
            "(left), and the confidence of its right and of its wrong predictions (right)."
        ),
        "confusion": CONFUSION,
        "training_curves": TRAINING,
        "word_clouds": "The words with the highest mean TF-IDF in each class's training texts.",
    },
    "lstm": {
        "forecast": (
            "Every model's forecast of the adjusted close beside the actual close, over the test "
            "days."
        ),
        "residuals": (
            "Each model's forecast minus the actual close over the test days, one panel a model."
        ),
        "training": (
            "Loss (scaled log return) and validation MAE per epoch of every recurrent cell; early "
            "stopping watches the validation MAE."
        ),
    },
    "housing": {
        "predicted_vs_actual": (
            "The headline model's predicted against actual log price of every held-out house; "
            "on the diagonal a prediction is exact."
        ),
        "residuals": (
            "The headline model's residual (actual - predicted log price) against its prediction, "
            "per held-out house."
        ),
        "cv_scores": (
            "Cross-validation RMSE of log price of every candidate on the training rows (mean ± "
            "standard deviation over the folds, dots: single folds): what chose the models."
        ),
        "mlp_training": (
            "The MLP's training and validation loss per epoch (standardized log price), from the "
            "DVCLive logs."
        ),
        r"shap_(\w+)_importance": (
            "Mean absolute SHAP value of each feature for the {0} model on the held-out houses: "
            "how much it moves the predicted log price, on average."
        ),
        r"shap_(\w+)_beeswarm": (
            "SHAP value of each feature for every held-out house ({0} model), coloured by the "
            "feature's value: which way and how far each feature moves a prediction."
        ),
        r"lime_(best|median|worst)": (
            "LIME's local explanation of the headline model's {0} prediction among the held-out "
            "houses (by absolute error): the feature conditions that push its price up or down."
        ),
    },
    "traffic": {
        "anomalies_over_time": (
            "Share of the test traffic that is an attack (black) and that the headline detector "
            "flags (red), over time or, without timestamps, over the order of the records."
        ),
        "score_distributions": (
            "Each detector's anomaly scores on normal and on attack test traffic (log scale), "
            "with its threshold, set on normal validation traffic."
        ),
        "recall_per_category": (
            "Recall of each detector at its threshold per attack category of the test traffic."
        ),
        "feature_sets": (
            "ROC-AUC on the test traffic of the study detectors on each feature set: what each "
            "group of features is worth."
        ),
        "autoencoder_training": (
            "The autoencoder's reconstruction loss per epoch on training and validation traffic, "
            "from the DVCLive logs."
        ),
    },
}
CAPTIONS["reviews"] = CAPTIONS["imdb"]


def caption(project: str, name: str) -> str | None:
    """The caption of figure ``name`` (its file name without ``.png``) of ``project``; None when
    there is none."""
    for pattern, text in CAPTIONS.get(project, {}).items():
        match = re.fullmatch(pattern, name)
        if match:
            return text.format(*match.groups())
    return None


def caption_or_name(project: str, name: str) -> str:
    return caption(project, name) or name.replace("_", " ")


# The figures that answer each project's question (their plot stages' key figures).
CAPTIONS["cifar10"].update(
    confident_mistakes="The test images the model got wrong with the highest confidence, each "
    "with its true class, the class read and the confidence.",
    confused_pairs="The most frequent (true, read) class pairs among the mistakes, with counts "
    "and one image of each.",
    frontier="Test accuracy against the train stage's CPU seconds for each measured recipe "
    "(frozen, last stages, everything; three image sizes) beside the RBF SVM on pixels.",
)
CAPTIONS["imdb"]["top_terms"] = (
    "The terms that separate each class from the others: log-odds with an informative "
    "Dirichlet prior, as z-scores, on the training texts."
)
CAPTIONS["lstm"]["error_vs_naive"] = (
    "Each model's absolute error minus the naive forecast's, summed over the test days, with "
    "the band a no-edge model would stay in (block bootstrap)."
)
CAPTIONS["traffic"]["roc_pr"] = (
    "ROC and precision-recall curves of every detector on the test traffic, a dot where its "
    "alarms operate."
)
