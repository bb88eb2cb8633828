"""The featurize stage: the held-out split and the engineered features every model is fitted on.

, and the preprocessing every model is fitted with.

Two parts, by whether a step learns from data:

* Stateless, row by row (``prepare``, run here on every split): ``NA`` read as "none" where
  data_description.txt says it means none (no alley, no basement, no garage, ...), the matching
  areas and counts set to 0; MSSubClass, MoSold and YrSold made categories (they are codes, not
  quantities); domain features (total square footage, house and remodel age, total bathrooms,
  total porch area).
* Fitted (``preprocessor``: an sklearn ColumnTransformer): imputation, a Yeo-Johnson transform of
  the skewed numeric features, ordinal quality scales as ordinals, one-hot for the other
  categories. It is never fitted here for the models: train fits a fresh copy on the training rows
  of every cross-validation fold and on the whole training part, so no statistic of a validation
  or test row leaks into a model.

The split: a seeded hold-out of train.csv is the test split (Kaggle's test.csv has no prices), drawn
first, from every house. Only then does the outlier rule (GrLivArea above a size with a low price:
De Cock's partial sales) drop matching houses, from the training part alone (``training``) or not
at all (``keep``): the rule reads the price, so applying it to held-out houses would choose test
rows by their targets. The test split holds the same houses whatever the setting. The target is
log1p(SalePrice), Kaggle's metric scale (``log_price``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, PowerTransformer, StandardScaler

from ..errors import UserError
from ..files import read_json, write_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from .download import CATEGORICAL, ID, NUMERIC, TARGET, read_houses
from .project import PROJECT, FeaturizeParams

logger = logging.getLogger(__name__)

LOG_TARGET = "log_price"
# numpy computes log1p with AVX-512 instructions where the processor has them and with the C
# library elsewhere; the two differ in the last bit for 16 of the 1,167 offline training prices, and
# the forest's fully grown trees break ties between equally good splits on that bit (measured:
# RMSE(log) 0.1398 with one, 0.1403 with the other). Rounded to 1e-9 (a billionth of the price),
# the target is the same on every processor, and two prices a dollar apart stay apart (1.3e-6).
LOG_TARGET_DECIMALS = 9
# data_description.txt: NA in these columns means the house has none of the thing.
NA_MEANS_NONE = [
    "Alley",
    "BsmtQual",
    "BsmtCond",
    "BsmtExposure",
    "BsmtFinType1",
    "BsmtFinType2",
    "FireplaceQu",
    "GarageType",
    "GarageFinish",
    "GarageQual",
    "GarageCond",
    "PoolQC",
    "Fence",
    "MiscFeature",
]
# ...and these measure something the house lacks when NA (a missing garage has 0 cars).
ZERO_WHEN_NONE = {
    "BsmtQual": [
        "BsmtFinSF1",
        "BsmtFinSF2",
        "BsmtUnfSF",
        "TotalBsmtSF",
        "BsmtFullBath",
        "BsmtHalfBath",
    ],
    "GarageType": ["GarageCars", "GarageArea"],
}
CODES = ["MSSubClass", "MoSold", "YrSold"]  # numbers that name a category
QUALITY = ["None", "Po", "Fa", "TA", "Gd", "Ex"]
ORDINAL = {
    **{
        c: QUALITY
        for c in [
            "ExterQual",
            "ExterCond",
            "BsmtQual",
            "BsmtCond",
            "HeatingQC",
            "KitchenQual",
            "FireplaceQu",
            "GarageQual",
            "GarageCond",
            "PoolQC",
        ]
    },
    "BsmtExposure": ["None", "No", "Mn", "Av", "Gd"],
    "BsmtFinType1": ["None", "Unf", "LwQ", "Rec", "BLQ", "ALQ", "GLQ"],
    "BsmtFinType2": ["None", "Unf", "LwQ", "Rec", "BLQ", "ALQ", "GLQ"],
    "GarageFinish": ["None", "Unf", "RFn", "Fin"],
    "Functional": ["Sal", "Sev", "Maj2", "Maj1", "Mod", "Min2", "Min1", "Typ"],
    "PavedDrive": ["N", "P", "Y"],
}
DOMAIN = ["TotalSF", "HouseAge", "RemodAge", "TotalBath", "PorchSF"]
NUMERIC_IN = [c for c in NUMERIC if c not in CODES] + DOMAIN
NOMINAL = [c for c in CATEGORICAL if c not in ORDINAL] + CODES


def prepare(houses: pd.DataFrame) -> pd.DataFrame:
    """The stateless cleaning and the domain features (rows are independent; nothing is learned)."""
    out = houses.copy()
    for column, measures in ZERO_WHEN_NONE.items():
        out.loc[out[column].isna(), measures] = out.loc[out[column].isna(), measures].fillna(0.0)
    # object first: a column that is all NA in a small file reads as float
    out[NA_MEANS_NONE] = out[NA_MEANS_NONE].astype(object).fillna("None")
    # A house without a garage: the garage is as old as the house (0 would read as a very old
    # garage).
    out["GarageYrBlt"] = out["GarageYrBlt"].fillna(out["YearBuilt"])
    for column in CODES:
        out[column] = out[column].map(lambda v: "NA" if pd.isna(v) else str(int(v))).astype(object)
    out["TotalSF"] = out["TotalBsmtSF"].fillna(0) + out["1stFlrSF"] + out["2ndFlrSF"]
    out["HouseAge"] = (houses["YrSold"] - out["YearBuilt"]).clip(lower=0)
    out["RemodAge"] = (houses["YrSold"] - out["YearRemodAdd"]).clip(lower=0)
    out["TotalBath"] = (
        out["FullBath"]
        + 0.5 * out["HalfBath"]
        + out["BsmtFullBath"].fillna(0)
        + 0.5 * out["BsmtHalfBath"].fillna(0)
    )
    out["PorchSF"] = out[
        ["WoodDeckSF", "OpenPorchSF", "EnclosedPorch", "3SsnPorch", "ScreenPorch"]
    ].sum(axis=1)
    for column in CATEGORICAL + CODES:
        out[column] = out[column].astype(object)
    return out


def log_price(dollars) -> np.ndarray:
    """The models' target: log1p of the price, the same to the last bit on every processor."""
    return np.round(np.log1p(np.asarray(dollars, dtype=float)), LOG_TARGET_DECIMALS)


def preprocessor() -> ColumnTransformer:
    """The fitted part, unfitted: a fresh one for every fit."""
    ordinal_columns = list(ORDINAL)
    return ColumnTransformer(
        [
            (
                "numeric",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median")),
                        # Yeo-Johnson per column: fixes the right skew of areas and counts and
                        # standardizes, with its power fitted on the training rows.
                        ("skew", PowerTransformer(method="yeo-johnson", standardize=True)),
                    ]
                ),
                NUMERIC_IN,
            ),
            (
                "ordinal",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        (
                            "encode",
                            OrdinalEncoder(
                                categories=[ORDINAL[c] for c in ordinal_columns],
                                handle_unknown="use_encoded_value",
                                unknown_value=-1,
                            ),
                        ),
                        ("scale", StandardScaler()),
                    ]
                ),
                ordinal_columns,
            ),
            (
                "nominal",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="infrequent_if_exist",
                                min_frequency=5,
                                sparse_output=False,
                            ),
                        ),
                    ]
                ),
                NOMINAL,
            ),
        ],
        verbose_feature_names_out=False,
    )


def featurize(params: FeaturizeParams, paths: Paths) -> None:
    card = read_json(paths.card)
    houses = read_houses((paths.raw / "train.csv").read_bytes(), "train.csv", with_price=True)
    f = params.featurize
    if len(houses) < 20:
        raise UserError(
            f"train.csv has {len(houses)} houses; the split and cross-validation need at least 20"
        )
    train, test = train_test_split(
        houses, test_size=f.test_fraction, random_state=params.seed, shuffle=True
    )
    # The rule reads SalePrice: it is applied after the split, to training houses only.
    outlier = (train["GrLivArea"] > f.outlier_area) & (train[TARGET] < f.outlier_price)
    outlier_ids = sorted(train.loc[outlier, ID].astype(int).tolist())
    if f.outliers == "training":
        train = train[~outlier]
    dropped = len(outlier_ids) if f.outliers == "training" else 0
    splits = {"train": prepare(train), "test": prepare(test)}
    if (paths.raw / "test.csv").exists():
        splits["kaggle_test"] = prepare(
            read_houses((paths.raw / "test.csv").read_bytes(), "test.csv", False)
        )
    for name in ("train", "test"):
        splits[name][LOG_TARGET] = log_price(splits[name][TARGET])
    for name, frame in splits.items():
        frame.sort_values(ID).to_parquet(paths.features / f"{name}.parquet", index=False)
    width = preprocessor().fit(splits["train"]).get_feature_names_out()
    write_json(
        paths.features / "card.json",
        {
            **{f"{name}_rows": len(frame) for name, frame in splits.items()},
            "test_fraction": f.test_fraction,
            "outlier_rule": f"GrLivArea > {f.outlier_area:g} and SalePrice < {f.outlier_price:g}",
            "outliers": f.outliers,
            "outliers_dropped": dropped,
            "training_outlier_ids": outlier_ids,  # matched among training houses (never test)
            "model_inputs": len(width),
            "source": card["source"],
        },
    )
    logger.info(
        f"housing: {len(splits['train'])} training and {len(splits['test'])} held-out houses, "
        f"{dropped} outlier(s) dropped ({f.outliers}), {len(width)} model inputs"
    )


if __name__ == "__main__":
    runner.main(featurize, PROJECT)
