"""reviews: the 1-5 star mapping, the Hugging Face mirror format, local files, the star map checked
as a param, and bad files stopping the download stage with one line, exit 2 and nothing written."""

import copy
import json
import re
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pandas as pd
import pytest
import yaml

from xlalab.cli import main
from xlalab.errors import UserError
from xlalab.pipeline.params import parse
from xlalab.pipeline.runner import run_stage
from xlalab.reviews.project import DownloadConfig, DownloadParams
from xlalab.reviews.sources import SOURCES
from xlalab.reviews.sources.stars import stars_to_frame
from xlalab.textclf import corpus

REPO_PARAMS = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())


def fetch(config, seed: int = 0):
    """What the configured source reads: its (train and test frames, card fields)."""
    return SOURCES[config.source].read(SimpleNamespace(download=config, seed=seed), None)


STAR_MAP = {1: "negative", 2: "negative", 3: "neutral", 4: "positive", 5: "positive"}


def download_config(**values) -> DownloadConfig:
    """The download params of params.yaml with ``values`` changed."""
    return DownloadConfig(**{**REPO_PARAMS["reviews"]["download"], **values})


def params(**download):
    p = copy.deepcopy(REPO_PARAMS)
    p["reviews"]["download"].update(download)
    return p


def test_stars_map_to_three_classes():
    texts = pd.Series([f"review {i}" for i in range(5)])
    frame = stars_to_frame(texts, pd.Series([1, 2, 3, 4, 5]), 0, STAR_MAP, "x")
    assert frame["label"].tolist() == ["negative", "negative", "neutral", "positive", "positive"]
    zero_based = stars_to_frame(texts, pd.Series([0, 1, 2, 3, 4]), 1, STAR_MAP, "x")
    assert zero_based["label"].tolist() == frame["label"].tolist()
    with pytest.raises(UserError, match=r"star\(s\) \[6\] outside 1-5"):
        stars_to_frame(texts, pd.Series([1, 2, 3, 4, 5]), 1, STAR_MAP, "x")
    with pytest.raises(UserError, match="non-integer rating"):
        stars_to_frame(texts, pd.Series([1, 2, 3.5, 4, 5]), 0, STAR_MAP, "x")


def test_the_star_map_in_params_is_checked():
    p = params(
        star_map={"1": "negative", "2": "neutral", "3": "neutral", "4": "neutral", "5": "positive"}
    )
    assert (
        parse(DownloadParams, p, "reviews").download.star_map[2] == "neutral"
    )  # string keys as from JSON
    with pytest.raises(
        UserError, match=r"`reviews.download.star_map` must have exactly the keys 1-5"
    ):
        parse(DownloadParams, params(star_map={1: "negative", 5: "positive"}), "reviews")
    with pytest.raises(UserError, match=r"`reviews.download.star_map` maps to unknown class"):
        parse(DownloadParams, params(star_map={**STAR_MAP, 3: "meh"}), "reviews")
    with pytest.raises(UserError, match=r"`reviews.download` needs `path`"):
        parse(DownloadParams, params(source="local", path=None), "reviews")


def resolved_as(commit):
    """A stand-in for huggingface_hub.resolve_revision: every revision resolves to ``commit``."""

    def resolve(repo_id, *, repo_type=None, revision=None, **_):
        return huggingface_hub.ResolvedRevision(commit, revision, repo_id, repo_type)

    return resolve


def test_huggingface_mirror_format(tmp_path, monkeypatch):
    import datasets

    # SetFit/amazon_reviews_multi_en: id, text, label (0-4 = 1-5 stars), label_text
    files = {}
    for split, n in (("train", 10), ("test", 5)):
        files[split] = tmp_path / f"{split}.parquet"
        pd.DataFrame(
            {
                "id": [f"en_{i}" for i in range(n)],
                "text": [f"product {i}" for i in range(n)],
                "label": [i % 5 for i in range(n)],
                "label_text": [str(i % 5) for i in range(n)],
            }
        ).to_parquet(files[split])
    real_load_dataset, revisions = datasets.load_dataset, []

    def load_dataset(name, config, split, revision):
        revisions.append(revision)
        return real_load_dataset(
            "parquet",
            data_files={split: str(files[split])},
            split=split,
            cache_dir=str(tmp_path / "cache"),
        )

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(huggingface_hub, "resolve_revision", resolved_as("d0d0cafe"))
    splits, card = fetch(
        download_config(source="huggingface", hf_revision="refs/convert/parquet"), seed=0
    )
    assert revisions == ["refs/convert/parquet"] * 2
    assert card["revision"] == "refs/convert/parquet" and card["commit"] == "d0d0cafe"
    assert splits["train"]["label"].tolist()[:5] == [
        "negative",
        "negative",
        "neutral",
        "positive",
        "positive",
    ]
    assert len(splits["test"]) == 5 and card["rating_offset"] == 1


def test_local_parquet_with_stars_or_labels(tmp_path, monkeypatch):
    stars = tmp_path / "stars.parquet"
    pd.DataFrame(
        {"text": [f"t{i}" for i in range(50)], "stars": [1 + i % 5 for i in range(50)]}
    ).to_parquet(stars)
    splits, _ = fetch(download_config(source="local", path=str(stars)), seed=0)
    both = pd.concat(splits.values())
    assert both["label"].value_counts().to_dict() == {"negative": 20, "positive": 20, "neutral": 10}
    named = tmp_path / "named.csv"
    pd.DataFrame(
        {"text": [f"t{i}" for i in range(30)], "label": ["negative", "neutral", "positive"] * 10}
    ).to_csv(named, index=False)
    monkeypatch.chdir(tmp_path)
    run_stage("reviews", "download", params(source="local", path=str(named)))
    card = json.loads(Path("data/reviews/raw/card.json").read_text())
    assert card["classes"] == ["negative", "neutral", "positive"]
    assert set(pd.read_parquet("data/reviews/raw/train.parquet")["label"]) == {
        "negative",
        "neutral",
        "positive",
    }


@pytest.mark.parametrize(
    "frame,message",
    [
        (pd.DataFrame({"body": ["a"] * 20, "stars": [1] * 20}), "has no column 'text'"),
        (pd.DataFrame({"text": [], "stars": []}), "is empty"),
        (
            pd.DataFrame(
                {"text": [f"t{i}" for i in range(20)], "label": ["negative", "great"] * 10}
            ),
            "unknown label",
        ),
    ],
)
def test_a_bad_local_csv_is_one_line_exit_2_and_no_output(
    tmp_path, monkeypatch, capsys, frame, message
):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params(source="local", path=str(path))))
    monkeypatch.chdir(tmp_path)
    assert main(["reviews", "download"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and err[0].startswith("error: reviews download:")
        and re.search(message, err[0])
    ), err
    assert not [f for f in tmp_path.glob("data/**/*") if f.is_file()]


def test_offline_default_is_three_real_classes():
    splits, card = fetch(download_config(), seed=0)
    counts = splits["train"]["label"].value_counts()
    assert (
        set(counts.index) == {"negative", "neutral", "positive"}
        and counts["neutral"] < counts["negative"]
    )
    assert "objective plot description" in card["what"]
    # the movie of every row (plot summaries and reviews alike) goes with it, on one side only
    movies = {name: set(split[corpus.GROUP]) for name, split in splits.items()}
    assert not movies["train"] & movies["test"]
    train = splits["train"]
    plots = set(train.loc[train["label"] == "neutral", corpus.GROUP])
    assert plots & set(train.loc[train["label"] != "neutral", corpus.GROUP])


FINE_FOOD = Path(__file__).parent / "fixtures" / "amazon_fine_food_reviews.csv"
FINE_FOOD_COLUMNS = dict(
    source="local", path=str(FINE_FOOD), text_column="Text", rating_column="Score", rating_offset=0
)


def test_a_kaggle_amazon_fine_food_file_is_read_through_the_column_params(tmp_path, monkeypatch):
    """Reviews.csv as Kaggle ships it: Id,...,Score (1-5),Time,Summary,Text with quoted commas,
    doubled quotes and HTML line breaks."""
    raw = pd.read_csv(FINE_FOOD)
    assert list(raw.columns) == [
        "Id",
        "ProductId",
        "UserId",
        "ProfileName",
        "HelpfulnessNumerator",
        "HelpfulnessDenominator",
        "Score",
        "Time",
        "Summary",
        "Text",
    ]
    splits, card = fetch(download_config(**FINE_FOOD_COLUMNS, test_fraction=0.3), seed=0)
    both = pd.concat(splits.values())
    expected = raw["Score"].map(STAR_MAP).value_counts().to_dict()
    assert both["label"].value_counts().to_dict() == expected and len(both) == len(raw)
    assert not both["text"].str.contains("<br").any()
    assert any(
        t.startswith('The listing says "Extra Large Roasted Almonds" but the bag held small, pale,')
        for t in both["text"]
    )
    assert (
        card["columns"] == {"text": "Text", "rating": "Score", "rating_is": "stars"}
        and card["rating_offset"] == 0
    )
    monkeypatch.chdir(tmp_path)
    run_stage("reviews", "download", params(**FINE_FOOD_COLUMNS, test_fraction=0.3))
    counts = json.loads(Path("data/reviews/raw/card.json").read_text())["counts"]
    assert counts["train"]["rows"] + counts["test"]["rows"] == len(raw)


@pytest.mark.parametrize(
    "columns,message",
    [
        (
            {},
            r"has no column 'text' \(columns found: Id, ProductId, .*, Summary, Text\); name the "
            r"right column "
            r"with `reviews.download.text_column`",
        ),
        (
            {"text_column": "Text", "rating_column": "Stars"},
            r"has no column 'Stars' \(columns found: Id, .*\); name the right column with "
            r"`reviews.download.rating_column`",
        ),
        (
            {"text_column": "Text"},
            r"neither a 'stars' nor a 'label' column \(columns found: Id, .*\); name its "
            r"rating column with `reviews.download.rating_column`",
        ),
        (
            {"text_column": "Text", "rating_column": "Score", "rating_offset": 1},
            r"gives star\(s\) \[6\] outside 1-5; set `reviews.download.rating_offset`",
        ),
    ],
)
def test_a_missing_column_lists_the_columns_found_and_the_param_to_set(
    tmp_path, monkeypatch, capsys, columns, message
):
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(params(source="local", path=str(FINE_FOOD), **columns))
    )
    monkeypatch.chdir(tmp_path)
    assert main(["reviews", "download"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err
