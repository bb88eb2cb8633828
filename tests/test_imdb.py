"""imdb: connectors on fixtures in the sources' exact formats (the network is never reached;
Stanford's aclImdb folder and archive from tests/fixtures/aclImdb), the contract's params checks,
and bad files stopping the download stage with one line, exit 2 and nothing written."""

import copy
import json
import re
import shutil
import tarfile
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pandas as pd
import pytest
import yaml

from xlalab.cli import main
from xlalab.errors import UserError
from xlalab.imdb.project import DownloadConfig
from xlalab.imdb.sources import SOURCES
from xlalab.pipeline.runner import run_stage
from xlalab.textclf import corpus

REPO_PARAMS = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())


def fetch(config, seed: int = 0):
    """What the configured source reads: its (train and test frames, card fields)."""
    return SOURCES[config.source].read(SimpleNamespace(download=config, seed=seed), None)


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

    def fake_load_dataset(name, split, revision):
        calls.append((name, split, revision))
        return real_load_dataset(
            "parquet",
            data_files={split: str(files[split])},
            split=split,
            cache_dir=str(tmp_path / "cache"),
        )

    def resolve(repo_id, *, repo_type=None, revision=None, **_):
        assert (repo_id, repo_type) == ("stanfordnlp/imdb", "dataset")
        return huggingface_hub.ResolvedRevision("e6281661ce1c", revision, repo_id, repo_type)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(huggingface_hub, "resolve_revision", resolve)
    splits, card = fetch(download_config(source="huggingface"), seed=0)
    assert calls == [("stanfordnlp/imdb", "train", "main"), ("stanfordnlp/imdb", "test", "main")]
    assert card["revision"] is None and card["commit"] == "e6281661ce1c"  # null: default branch
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
    splits, card = fetch(download_config(source="local", path=str(pq)), seed=0)
    assert (
        card["format"].startswith("huggingface")
        and len(splits["train"]) + len(splits["test"]) == 20
    )
    csv = write_kaggle(tmp_path / "k.csv")
    _, card = fetch(download_config(source="local", path=str(csv)), seed=0)
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
    splits, card = fetch(download_config(), seed=0)
    assert card["source"] == "offline:rotten_tomatoes" and "NOT IMDb" in card["what"]
    assert set(splits["train"]["label"]) == {"negative", "positive"}
    assert 9000 < len(splits["train"]) < 11000 and not set(splits["train"]["text"]) & set(
        splits["test"]["text"]
    )
    # each row names its movie, kept for the grouped validation split and the baselines' folds
    movies = {name: set(split[corpus.GROUP]) for name, split in splits.items()}
    assert len(movies["train"]) > 300 and not movies["train"] & movies["test"]


@pytest.mark.parametrize(
    "download,message",
    [
        ({"source": "kaggle", "path": None}, r"`imdb.download` needs `path`"),
        (
            {"source": "imdb.com"},
            r"`imdb.download.source` must be 'offline', 'huggingface', 'kaggle', 'aclimdb' "
            r"or 'local'",
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
        fetch(download_config(source="kaggle", path=str(tmp_path / "nope.csv")), seed=0)


@pytest.mark.parametrize("source", ["kaggle", "local"])
def test_file_columns_are_named_by_params(tmp_path, source):
    csv = write_kaggle(
        tmp_path / "renamed.csv",
        [(t, 1 if s == "positive" else 0) for t, s in KAGGLE_ROWS],
        ("Review Text", "Polarity"),
    )
    splits, card = fetch(
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
        fetch(download_config(source="kaggle", path=str(csv)), seed=0)
    with pytest.raises(
        UserError, match=r"has no column '(sentiment|label)' .*`imdb.download.label_column`"
    ):
        fetch(download_config(source=source, path=str(csv), text_column="Review Text"), seed=0)


# --- Stanford's aclImdb, folder and archive
# ---------------------------------------------------------------------------------
ACLIMDB = Path(__file__).parent / "fixtures" / "aclImdb"


def acl_copy(tmp_path) -> Path:
    """A writable copy of the fixture (the published layout, a few reviews per class)."""
    target = tmp_path / "aclImdb"
    shutil.copytree(ACLIMDB, target)
    return target


def acl_archive(folder: Path, path: Path) -> Path:
    """aclImdb_v1.tar.gz as published: one top folder, its directories listed before their files."""
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="aclImdb")
    return path


def test_aclimdb_folder_keeps_the_published_split_the_labels_and_the_stars(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_stage("imdb", "download", params(source="aclimdb", path=str(ACLIMDB)))
    train = pd.read_parquet("data/imdb/raw/train.parquet")
    test = pd.read_parquet("data/imdb/raw/test.parquet")
    assert (len(train), len(test)) == (10, 8)  # as published; unsup/ is not read
    assert list(train.columns) == ["text", "label", "stars", "id", "file"]
    assert set(train.loc[train["label"] == "positive", "stars"]) <= set(range(7, 11))
    assert set(train.loc[train["label"] == "negative", "stars"]) <= set(range(1, 5))
    assert train["file"].iloc[0] == "train/neg/0_3.txt"  # negative first, then by id
    assert not pd.concat([train, test])["text"].str.contains("<br|&amp;|unlabelled").any()
    card = json.loads(Path("data/imdb/raw/card.json").read_text())
    assert card["source"] == "aclimdb:aclImdb" and card["stars"]["test"] == {
        str(s): 1 for s in (1, 2, 3, 4, 7, 8, 9, 10)
    }


def test_aclimdb_archive_is_read_without_unpacking_and_gives_the_same_rows(tmp_path):
    archive = acl_archive(ACLIMDB, tmp_path / "aclImdb_v1.tar.gz")
    from_archive, card = fetch(download_config(source="aclimdb", path=str(archive)), seed=0)
    from_folder, _ = fetch(download_config(source="aclimdb", path=str(ACLIMDB.parent)), 0)
    for split in ("train", "test"):
        pd.testing.assert_frame_equal(from_archive[split], from_folder[split])
    assert card["format"] == "aclImdb_v1.tar.gz archive" and len(card["checksum_sha256"]) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aclImdb_v1.tar.gz"]  # nothing unpacked


def break_folder(folder: Path, how: str) -> str:
    """Damage a copy of the fixture; returns what the error must say."""
    if how == "missing":
        shutil.rmtree(folder / "test" / "neg")
        return r"aclImdb/test/neg is missing"
    if how == "empty":
        for f in (folder / "train" / "pos").iterdir():
            f.unlink()
        return r"class folder aclImdb/train/pos is empty"
    if how == "unreadable":
        (folder / "test" / "pos" / "1_7.txt").write_bytes(b"caf\xe9 au lait, \xff\xfe")
        return r"cannot read test/pos/1_7.txt \(UnicodeDecodeError"
    if how == "unparsable":
        (folder / "train" / "neg" / "review-5.txt").write_text("Awful.")
        return r"train/neg/review-5.txt does not parse as <id>_<stars>.txt"
    (folder / "train" / "pos" / "9_3.txt").write_text("Meh.")  # 3 stars is a negative rating
    return r"train/pos/9_3.txt has 3 stars, outside pos's 7-10"


@pytest.mark.parametrize("how", ["missing", "empty", "unreadable", "unparsable", "stars"])
@pytest.mark.parametrize("packed", [False, True])
def test_a_damaged_aclimdb_is_one_line_exit_2_and_no_output(
    tmp_path, monkeypatch, capsys, how, packed
):
    folder = acl_copy(tmp_path / "src")
    message = break_folder(folder, how)
    path = acl_archive(folder, tmp_path / "aclImdb_v1.tar.gz") if packed else folder
    if packed and how == "missing":
        message = r"class folder aclImdb/test/neg is missing"
    code, err = run_cli(tmp_path, monkeypatch, capsys, params(source="aclimdb", path=str(path)))
    assert code == 2 and len(err) == 1 and err[0].startswith("error: imdb download:")
    assert re.search(message, err[0]), err[0]
    assert not (tmp_path / "data").exists()


def test_a_corrupt_archive_and_hidden_files(tmp_path, monkeypatch, capsys):
    folder = acl_copy(tmp_path / "src")
    (folder / "train" / "pos" / ".DS_Store").write_bytes(b"\x00\x01")  # ignored, as is unsup/
    splits, _ = fetch(download_config(source="aclimdb", path=str(folder)), seed=0)
    assert len(splits["train"]) == 10
    archive = acl_archive(folder, tmp_path / "aclImdb_v1.tar.gz")
    archive.write_bytes(archive.read_bytes()[:600])  # a download cut short
    code, err = run_cli(tmp_path, monkeypatch, capsys, params(source="aclimdb", path=str(archive)))
    assert code == 2 and len(err) == 1 and "aclImdb_v1.tar.gz" in err[0], err
    code, err = run_cli(tmp_path, monkeypatch, capsys, params(source="aclimdb", path=None))
    assert code == 2 and "`imdb.download` needs `path`" in err[0]
