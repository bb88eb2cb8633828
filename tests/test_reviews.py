"""reviews connectors: the 1-5 star mapping, the Hugging Face mirror format, local files, and clear
errors for bad input."""
import pandas as pd
import pytest

from xlalab.core.errors import UserError
from xlalab.reviews import data as reviews
from xlalab.reviews.stages import STAGES

STAR_MAP = {1: "negative", 2: "negative", 3: "neutral", 4: "positive", 5: "positive"}


def download_params(**kw):
    return {"source": "offline", "path": None, "hf_dataset": "SetFit/amazon_reviews_multi_en", "hf_config": None,
            "text_column": "text", "rating_column": "label", "rating_offset": 1, "star_map": dict(STAR_MAP),
            "test_fraction": 0.2, **kw}


def test_stars_map_to_three_classes():
    texts = pd.Series([f"review {i}" for i in range(5)])
    frame = reviews.stars_to_frame(texts, pd.Series([1, 2, 3, 4, 5]), 0, STAR_MAP, "x")
    assert frame["label"].tolist() == ["negative", "negative", "neutral", "positive", "positive"]
    zero_based = reviews.stars_to_frame(texts, pd.Series([0, 1, 2, 3, 4]), 1, STAR_MAP, "x")
    assert zero_based["label"].tolist() == frame["label"].tolist()
    with pytest.raises(UserError, match="unknown label.*6"):
        reviews.stars_to_frame(texts, pd.Series([1, 2, 3, 4, 5]), 1, STAR_MAP, "x")
    with pytest.raises(UserError, match="non-integer rating"):
        reviews.stars_to_frame(texts, pd.Series([1, 2, 3.5, 4, 5]), 0, STAR_MAP, "x")


def test_the_star_map_in_params_is_checked():
    assert reviews.check_star_map({"1": "negative", "2": "neutral", "3": "neutral", "4": "neutral",
                                   "5": "positive"})[2] == "neutral"
    with pytest.raises(UserError, match="exactly the keys 1-5"):
        reviews.check_star_map({1: "negative", 5: "positive"})
    with pytest.raises(UserError, match="unknown class"):
        reviews.check_star_map({**STAR_MAP, 3: "meh"})


def test_huggingface_mirror_format(tmp_path, monkeypatch):
    import datasets

    # SetFit/amazon_reviews_multi_en: id, text, label (0-4 = 1-5 stars), label_text
    files = {}
    for split, n in (("train", 10), ("test", 5)):
        files[split] = tmp_path / f"{split}.parquet"
        pd.DataFrame({"id": [f"en_{i}" for i in range(n)], "text": [f"product {i}" for i in range(n)],
                      "label": [i % 5 for i in range(n)], "label_text": [str(i % 5) for i in range(n)]}) \
            .to_parquet(files[split])
    real_load_dataset = datasets.load_dataset
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config, split: real_load_dataset(
        "parquet", data_files={split: str(files[split])}, split=split, cache_dir=str(tmp_path / "cache")))
    splits, card = reviews.download(download_params(source="huggingface"), seed=0)
    assert splits["train"]["label"].tolist()[:5] == ["negative", "negative", "neutral", "positive", "positive"]
    assert len(splits["test"]) == 5 and card["rating_offset"] == 1


def test_local_parquet_with_stars_or_labels(tmp_path):
    stars = tmp_path / "stars.parquet"
    pd.DataFrame({"text": [f"t{i}" for i in range(50)], "stars": [1 + i % 5 for i in range(50)]}).to_parquet(stars)
    splits, _ = reviews.download(download_params(source="local", path=str(stars)), seed=0)
    both = pd.concat(splits.values())
    assert both["label"].value_counts().to_dict() == {"negative": 20, "positive": 20, "neutral": 10}
    named = tmp_path / "named.csv"
    pd.DataFrame({"text": [f"t{i}" for i in range(30)], "label": ["negative", "neutral", "positive"] * 10}) \
        .to_csv(named, index=False)
    splits, _ = reviews.download(download_params(source="local", path=str(named)), seed=0)
    assert set(splits["train"]["label"]) == {"negative", "neutral", "positive"}


@pytest.mark.parametrize("frame,message", [
    (pd.DataFrame({"body": ["a"] * 20, "stars": [1] * 20}), "has no column 'text'"),
    (pd.DataFrame({"text": [], "stars": []}), "is empty"),
    (pd.DataFrame({"text": [f"t{i}" for i in range(20)], "label": ["negative", "great"] * 10}), "unknown label"),
])
def test_bad_local_csv_is_one_clear_error_and_no_output(tmp_path, frame, message):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    params = {"reviews": {"seed": 0, "download": download_params(source="local", path=str(path))}}
    with pytest.raises(UserError, match=message):
        STAGES["download"](params, raw_dir=tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_offline_default_is_three_real_classes():
    splits, card = reviews.download(download_params(), seed=0)
    counts = splits["train"]["label"].value_counts()
    assert set(counts.index) == {"negative", "neutral", "positive"} and counts["neutral"] < counts["negative"]
    assert "objective plot description" in card["what"]
