"""The fits whose published digits once depended on the machine, run by tests/test_same_digits.py
in a scratch directory under the thread count and BLAS/numpy kernels the test sets in the
environment (``python digits_job.py housing|cifar10``). It prints their scores as JSON, rounded
as metrics/ rounds them.

- housing: the featurize stage (the log-price target is computed there), then the forest fitted
  and scored as train and evaluate do, with params.yaml's settings;
- cifar10: the logistic regression on raw pixels, every ``C`` of params.yaml, chosen on the
  validation split as evaluate does (features made by the test: featurize does no arithmetic).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import yaml

from xlalab.files import significant
from xlalab.pipeline.runner import run_stage

PARAMS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())


def housing() -> dict[str, float]:
    import pandas as pd

    from xlalab.housing.download import TARGET
    from xlalab.housing.evaluate import score
    from xlalab.housing.featurize import LOG_TARGET, preprocessor
    from xlalab.housing.project import TrainParams
    from xlalab.housing.train import fit_sklearn
    from xlalab.pipeline.params import parse

    run_stage("housing", "featurize", {"housing": PARAMS["housing"]})
    train = pd.read_parquet("data/housing/features/train.parquet")
    test = pd.read_parquet("data/housing/features/test.parquet")
    prep = preprocessor().fit(train)
    p = parse(TrainParams, PARAMS, "housing")
    forest = fit_sklearn("forest", p, prep.transform(train), train[LOG_TARGET].to_numpy())
    return score(test[TARGET].to_numpy(float), forest.predict(prep.transform(test)))


def cifar10() -> dict[str, float]:
    from safetensors.torch import load_file

    from xlalab.cifar10.baselines import is_grey, pixel_logreg, pixels, select_on_validation
    from xlalab.cifar10.featurize import SPLITS, split_path

    splits = {s: load_file(str(split_path(Path("data/cifar10/features"), s))) for s in SPLITS}
    grey = is_grey(splits["train"]["x"])
    x = {s: pixels(splits[s]["x"], grey) for s in SPLITS}
    seed = PARAMS["cifar10"]["seed"]
    chosen = select_on_validation(
        lambda c: pixel_logreg(c, seed),
        "C",
        PARAMS["cifar10"]["evaluate"]["baselines"]["logreg_c"],
        (x["train"], splits["train"]["y"].numpy()),
        (x["val"], splits["val"]["y"].numpy()),
        x["test"],
        note="",
    )
    test_accuracy = float(np.mean(chosen.predictions == splits["test"]["y"].numpy()))
    return {**chosen.validation_accuracy, "test_accuracy": test_accuracy}


if __name__ == "__main__":
    scores = {"housing": housing, "cifar10": cifar10}[sys.argv[1]]()
    print(json.dumps({name: significant(float(value)) for name, value in scores.items()}))
