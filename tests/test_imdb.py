"""imdb connectors on fixtures in the sources' exact formats (the network is never reached), and the
clear errors for bad files."""
import pandas as pd
import pytest

from xlalab.core.errors import UserError
from xlalab.imdb import data as imdb
from xlalab.imdb.stages import STAGES

KAGGLE_ROWS = [  # "IMDB Dataset.csv": review,sentiment with the HTML breaks the real file has
    row for i in range(10) for row in (
        (f"One of the other reviewers has mentioned that after watching just {i} Oz episode you'll be hooked."
         "<br /><br />They are right, as this is exactly what happened with me.", "positive"),
        (f"Basically there's a family where a little boy ({i}) thinks there's a zombie in his closet.<br /><br />"
         "Awful.", "negative"))]


def params(**download):
    return {"imdb": {"seed": 0, "download": {"source": "offline", "path": None, "hf_dataset": "stanfordnlp/imdb",
                                             "test_fraction": 0.2, **download}}}


def write_kaggle(path, rows=KAGGLE_ROWS, columns=("review", "sentiment")):
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


def test_kaggle_csv_is_read_cleaned_and_split(tmp_path):
    csv = write_kaggle(tmp_path / "IMDB Dataset.csv")
    STAGES["download"](params(source="kaggle", path=str(csv)), raw_dir=tmp_path / "raw")
    train = pd.read_parquet(tmp_path / "raw" / "train.parquet")
    test = pd.read_parquet(tmp_path / "raw" / "test.parquet")
    both = pd.concat([train, test])
    assert len(both) == 20 and len(test) > 0 and set(train["label"]) == {"positive", "negative"}
    assert not both["text"].str.contains("<br").any()
    assert "hooked. They are right" in " ".join(both["text"])


def test_huggingface_connector_reads_the_published_parquet_format(tmp_path, monkeypatch):
    import datasets

    # stanfordnlp/imdb ships plain_text/{train,test}-00000-of-00001.parquet: text, label (0 neg, 1 pos)
    files = {}
    for split, rows in {"train": [("I loved it.<br />Great.", 1), ("Dreadful.", 0)] * 3,
                        "test": [("Superb cast.", 1), ("Boring and long.", 0)]}.items():
        files[split] = tmp_path / f"{split}-00000-of-00001.parquet"
        pd.DataFrame(rows, columns=["text", "label"]).to_parquet(files[split])
    calls, real_load_dataset = [], datasets.load_dataset

    def fake_load_dataset(name, split):
        calls.append((name, split))
        return real_load_dataset("parquet", data_files={split: str(files[split])}, split=split,
                                     cache_dir=str(tmp_path / "cache"))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    splits, card = imdb.download(params(source="huggingface")["imdb"]["download"], seed=0)
    assert calls == [("stanfordnlp/imdb", "train"), ("stanfordnlp/imdb", "test")]
    assert splits["train"]["label"].tolist()[:2] == ["positive", "negative"]
    assert splits["train"]["text"][0] == "I loved it. Great." and card["source"] == "huggingface:stanfordnlp/imdb"


def test_local_accepts_either_format(tmp_path):
    pq = tmp_path / "reviews.parquet"
    pd.DataFrame({"text": [f"good {i}" for i in range(10)] + [f"bad {i}" for i in range(10)],
                  "label": [1] * 10 + [0] * 10}).to_parquet(pq)
    splits, card = imdb.download(params(source="local", path=str(pq))["imdb"]["download"], seed=0)
    assert card["format"].startswith("huggingface") and len(splits["train"]) + len(splits["test"]) == 20
    csv = write_kaggle(tmp_path / "k.csv")
    _, card = imdb.download(params(source="local", path=str(csv))["imdb"]["download"], seed=0)
    assert card["format"].startswith("kaggle")


@pytest.mark.parametrize("rows,columns,message", [
    (KAGGLE_ROWS, ("review", "label"), "has no column 'sentiment'"),
    ([], ("review", "sentiment"), "is empty"),
    (KAGGLE_ROWS + [("Meh.", "mixed")], ("review", "sentiment"), "unknown label.*'mixed'"),
])
def test_bad_kaggle_csv_is_one_clear_error_and_no_output(tmp_path, rows, columns, message):
    csv = write_kaggle(tmp_path / "IMDB Dataset.csv", rows, columns)
    with pytest.raises(UserError, match=message):
        STAGES["download"](params(source="kaggle", path=str(csv)), raw_dir=tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_an_empty_test_split_is_an_error(tmp_path):
    csv = write_kaggle(tmp_path / "one.csv", KAGGLE_ROWS[:2])
    with pytest.raises(UserError, match="split is empty"):
        STAGES["download"](params(source="kaggle", path=str(csv), test_fraction=0.05), raw_dir=tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_offline_default_is_rotten_tomatoes_split_by_movie():
    splits, card = imdb.download(params()["imdb"]["download"], seed=0)
    assert card["source"] == "offline:rotten_tomatoes" and "NOT IMDb" in card["what"]
    assert set(splits["train"]["label"]) == {"negative", "positive"}
    assert 9000 < len(splits["train"]) < 11000 and not set(splits["train"]["text"]) & set(splits["test"]["text"])


def test_missing_path_and_bad_source_are_clear(tmp_path):
    with pytest.raises(UserError, match="imdb.download.path"):
        imdb.download(params(source="kaggle")["imdb"]["download"], seed=0)
    with pytest.raises(UserError, match="does not exist"):
        imdb.download(params(source="kaggle", path=str(tmp_path / "nope.csv"))["imdb"]["download"], seed=0)
    with pytest.raises(UserError, match="choose one of"):
        imdb.download(params(source="imdb.com")["imdb"]["download"], seed=0)
