"""imdb: connectors on fixtures in the sources' exact formats (the network is never reached), the
contract's params checks, and bad files stopping the download stage with one line, exit 2 and
nothing written."""

import copy
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from xlalab.cli import main
from xlalab.core.errors import UserError
from xlalab.core.runner import run_stage
from xlalab.imdb import data as imdb
from xlalab.imdb.project import DownloadConfig

REPO_PARAMS = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())

KAGGLE_ROWS = [  # "IMDB Dataset.csv": review,sentiment with the HTML breaks the real file has
    row
    for i in range(10)
    for row in (
        (
            f"One of the other reviewers has mentioned that after watching just {i} Oz episode "
            "you'll be hooked."
            "<br /><br />They are right, as this is exactly what happened with me.",
            "positive",
        ),
        (
            f"Basically there's a family where a little boy ({i}) thinks there's a zombie in his "
            "closet.<br /><br />"
            "Awful.",
            "negative",
        ),
    )
]


def download_config(**values) -> DownloadConfig:
    """The download params of params.yaml with ``values`` changed."""
    return DownloadConfig(**{**REPO_PARAMS["imdb"]["download"], **values})


def params(**download):
    p = copy.deepcopy(REPO_PARAMS)
    p["imdb"]["download"].update(download)
    return p


def write_kaggle(path, rows=KAGGLE_ROWS, columns=("review", "sentiment")):
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


def test_kaggle_csv_is_read_cleaned_and_split_and_the_card_records_the_classes(
    tmp_path, monkeypatch
):
    csv = write_kaggle(tmp_path / "IMDB Dataset.csv")
    monkeypatch.chdir(tmp_path)
    run_stage("imdb", "download", params(source="kaggle", path=str(csv)))
    train = pd.read_parquet("data/imdb/raw/train.parquet")
    test = pd.read_parquet("data/imdb/raw/test.parquet")
    both = pd.concat([train, test])
    assert len(both) == 20 and len(test) > 0 and set(train["label"]) == {"positive", "negative"}
    assert not both["text"].str.contains("<br").any()
    assert "hooked. They are right" in " ".join(both["text"])
    card = yaml.safe_load(Path("data/imdb/raw/card.json").read_text())
    assert card["classes"] == [
        "negative",
        "positive",
    ]  # the order later stages go by: positive is second
    assert card["counts"]["train"]["rows"] == len(train)


def test_huggingface_connector_reads_the_published_parquet_format(tmp_path, monkeypatch):
    import datasets

    # stanfordnlp/imdb ships plain_text/{train,test}-00000-of-00001.parquet: text, label (0 neg, 1
    # pos)
    files = {}
    for split, rows in {
        "train": [("I loved it.<br />Great.", 1), ("Dreadful.", 0)] * 3,
        "test": [("Superb cast.", 1), ("Boring and long.", 0)],
    }.items():
        files[split] = tmp_path / f"{split}-00000-of-00001.parquet"
        pd.DataFrame(rows, columns=["text", "label"]).to_parquet(files[split])
    calls, real_load_dataset = [], datasets.load_dataset

    def fake_load_dataset(name, split):
        calls.append((name, split))
        return real_load_dataset(
            "parquet",
            data_files={split: str(files[split])},
            split=split,
            cache_dir=str(tmp_path / "cache"),
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    splits, card = imdb.fetch(download_config(source="huggingface"), seed=0)
    assert calls == [("stanfordnlp/imdb", "train"), ("stanfordnlp/imdb", "test")]
    assert splits["train"]["label"].tolist()[:2] == ["positive", "negative"]
    assert (
        splits["train"]["text"][0] == "I loved it. Great."
        and card["source"] == "huggingface:stanfordnlp/imdb"
    )


def test_local_accepts_either_format(tmp_path):
    pq = tmp_path / "reviews.parquet"
    pd.DataFrame(
        {
            "text": [f"good {i}" for i in range(10)] + [f"bad {i}" for i in range(10)],
            "label": [1] * 10 + [0] * 10,
        }
    ).to_parquet(pq)
    splits, card = imdb.fetch(download_config(source="local", path=str(pq)), seed=0)
    assert (
        card["format"].startswith("huggingface")
        and len(splits["train"]) + len(splits["test"]) == 20
    )
    csv = write_kaggle(tmp_path / "k.csv")
    _, card = imdb.fetch(download_config(source="local", path=str(csv)), seed=0)
    assert card["format"].startswith("kaggle")


def run_cli(tmp_path, monkeypatch, capsys, p, stage="download"):
    """The CLI on a params file in tmp_path: (exit code, stderr lines)."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    monkeypatch.chdir(tmp_path)
    code = main(["imdb", stage])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    "rows,columns,message",
    [
        (KAGGLE_ROWS, ("review", "label"), "has no column 'sentiment'"),
        ([], ("review", "sentiment"), "is empty"),
        (KAGGLE_ROWS + [("Meh.", "mixed")], ("review", "sentiment"), "unknown label.*'mixed'"),
        (KAGGLE_ROWS[:2], ("review", "sentiment"), "split is empty"),  # 5% of two rows: no test row
        ([r for r in KAGGLE_ROWS if r[1] == "positive"], ("review", "sentiment"), "only the class"),
    ],
)
def test_a_bad_kaggle_csv_is_one_line_exit_2_and_no_output(
    tmp_path, monkeypatch, capsys, rows, columns, message
):
    csv = write_kaggle(tmp_path / "IMDB Dataset.csv", rows, columns)
    code, err = run_cli(
        tmp_path, monkeypatch, capsys, params(source="kaggle", path=str(csv), test_fraction=0.05)
    )
    assert code == 2 and len(err) == 1 and err[0].startswith("error: imdb download:")
    assert re.search(message, err[0]), err[0]
    assert not [
        f for f in tmp_path.glob("data/**/*") if f.is_file()
    ]  # nothing, not even a temporary


def test_offline_default_is_rotten_tomatoes_split_by_movie():
    splits, card = imdb.fetch(download_config(), seed=0)
    assert card["source"] == "offline:rotten_tomatoes" and "NOT IMDb" in card["what"]
    assert set(splits["train"]["label"]) == {"negative", "positive"}
    assert 9000 < len(splits["train"]) < 11000 and not set(splits["train"]["text"]) & set(
        splits["test"]["text"]
    )


@pytest.mark.parametrize(
    "download,message",
    [
        ({"source": "kaggle", "path": None}, r"`imdb.download` needs `path`"),
        (
            {"source": "imdb.com"},
            r"`imdb.download.source` must be 'offline', 'huggingface', 'kaggle' or 'local'",
        ),
        ({"test_fraction": 0.9}, r"`imdb.download.test_fraction`"),
        ({"typo": 1}, r"`imdb.download.typo`, which no stage reads"),
    ],
)
def test_bad_download_params_are_one_line_naming_the_key(
    tmp_path, monkeypatch, capsys, download, message
):
    code, err = run_cli(tmp_path, monkeypatch, capsys, params(**download))
    assert code == 2 and len(err) == 1
    assert re.search(message, err[0]), err[0]
    assert not (tmp_path / "data").exists()


def test_a_missing_file_is_clear(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        imdb.fetch(download_config(source="kaggle", path=str(tmp_path / "nope.csv")), seed=0)


@pytest.mark.parametrize("source", ["kaggle", "local"])
def test_file_columns_are_named_by_params(tmp_path, source):
    csv = write_kaggle(
        tmp_path / "renamed.csv",
        [(t, 1 if s == "positive" else 0) for t, s in KAGGLE_ROWS],
        ("Review Text", "Polarity"),
    )
    splits, card = imdb.fetch(
        download_config(
            source=source, path=str(csv), text_column="Review Text", label_column="Polarity"
        ),
        seed=0,
    )
    both = pd.concat(splits.values())
    assert both["label"].value_counts().to_dict() == {"positive": 10, "negative": 10}
    assert card["columns"] == ["Review Text", "Polarity"] and card["format"] == "from params"
    with pytest.raises(
        UserError,
        match=r"has no column 'review' \(columns found: Review Text, Polarity\); "
        r"name the right column with `imdb.download.text_column`",
    ):
        imdb.fetch(download_config(source="kaggle", path=str(csv)), seed=0)
    with pytest.raises(
        UserError, match=r"has no column '(sentiment|label)' .*`imdb.download.label_column`"
    ):
        imdb.fetch(download_config(source=source, path=str(csv), text_column="Review Text"), seed=0)
