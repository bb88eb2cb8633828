"""The text-classification family: compact token files and length buckets, stratified training
splits and a test sample blind to its labels, class balancing, the embedding cache, clear errors
for missing models, hub revisions passed to every load, and the family stages run through the imdb
and reviews contracts on a tiny local model: the whole chain, a retrain that really trains, a
verdict that says when the model loses, nothing chosen on the test labels, and a bounded, flat XLA
compile count with length buckets and the default optimizer settings."""

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from transformers import BertConfig, BertForSequenceClassification

import xlalab  # noqa: F401  first: it opts Accelerate out of torch_xla before transformers imports accelerate
from xlalab.cli import main
from xlalab.engine.batches import LENGTH, Batches
from xlalab.engine.loop import predict
from xlalab.errors import UserError
from xlalab.pipeline.contract import Paths
from xlalab.pipeline.report import METRIC_KEYS
from xlalab.pipeline.runner import run_stage
from xlalab.textclf import baselines, corpus, featurize, tokens
from xlalab.textclf import model as textmodel
from xlalab.textclf.train import balance_training

REPO_PARAMS = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())


@pytest.fixture(scope="module")
def offline_minilm():
    return textmodel.pretrained(textmodel.OFFLINE_MINILM, None)


@pytest.fixture(scope="module")
def tokenizer(offline_minilm):
    return textmodel.load_tokenizer(offline_minilm)


def tiny_bert(num_labels=2, vocab=30522, layers=2):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=num_labels,
        attn_implementation="eager",
    )
    return BertForSequenceClassification(config)


TEXTS = [
    "Great.",
    "An utterly dull, overlong and " + "very " * 200 + "tedious film.",
    "",
    "Fine <br /> film",
    "A warm, funny and clever little film about two sisters",
]


def test_token_files_are_compact_unpadded_and_written_chunk_by_chunk(
    tmp_path, monkeypatch, tokenizer
):
    monkeypatch.setattr(tokens, "CHUNK_ROWS", 2)  # three chunks for five texts
    counts = tokens.write_split(tmp_path, "test", tokenizer, TEXTS, np.arange(5) % 2, 24)
    split = tokens.read_split(tmp_path, "test")
    assert split.ids.dtype == np.uint16 and counts.tolist() == split.lengths.tolist()
    assert len(split.ids) == counts.sum() and counts.max() == 24 and counts.min() == 2
    whole = tokenizer(TEXTS, truncation=True, max_length=24)["input_ids"]
    assert [split.ids[a : a + n].tolist() for a, n in zip(split.starts, counts)] == whole
    assert tokens.id_dtype(30522) == np.uint16 and tokens.id_dtype(250_002) == np.int32


def test_rows_are_padded_to_the_shortest_bucket_that_holds_them(tmp_path, tokenizer):
    tokens.write_split(tmp_path, "test", tokenizer, TEXTS, np.arange(5) % 2, 24)
    rows = tokens.as_tensors(tokens.read_split(tmp_path, "test"), 24, tokenizer.pad_token_id)
    assert rows["input_ids"].dtype == torch.int32 and rows["input_ids"].shape == (5, 24)
    assert rows["attention_mask"].sum(1).tolist() == rows[LENGTH].tolist()
    buckets = tokens.buckets([8, 16, 24])
    shapes = {}
    for batch in Batches(rows, 2, train=False, buckets=buckets):
        assert LENGTH not in batch and batch["input_ids"].shape == batch["attention_mask"].shape
        real = batch["weight"] > 0
        shapes.setdefault(batch["input_ids"].shape[1], []).extend(batch["labels"][real].tolist())
    # "Great." and "" (3 and 2 tokens) share the 8-token bucket; "Fine film" (4) moves up with
    # them no further: leftovers of a bucket join the next, so every batch is whole
    assert set(shapes) <= {8, 16, 24} and sum(len(v) for v in shapes.values()) == 5
    train = Batches(rows, 2, train=True, seed=0, buckets=buckets)
    assert len(train) == 5 // 2 and all(b["input_ids"].shape[0] == 2 for b in train)


def test_bucketed_predictions_come_back_in_row_order_on_both_backends(backend, tmp_path, tokenizer):
    texts = [f"{'a fine film ' * (i % 7)}number {i}" for i in range(37)]
    tokens.write_split(tmp_path, "test", tokenizer, texts, np.zeros(37, int), 32)
    rows = tokens.model_inputs(
        tokens.as_tensors(tokens.read_split(tmp_path, "test"), 32, tokenizer.pad_token_id)
    )
    net = tiny_bert()
    fixed = predict(net, rows, backend, 8, forward=textmodel.logits, desc="fixed")
    bucketed = predict(
        net,
        rows,
        backend,
        8,
        forward=textmodel.logits,
        desc="bucketed",
        buckets=tokens.buckets([8, 16, 32]),
    )
    assert bucketed.shape == (37, 2) and torch.allclose(bucketed, fixed, atol=1e-5)


def test_html_line_breaks_are_cleaned():
    assert (
        corpus.clean_text("Great film.<br /><br />Loved it &amp; more<BR>end")
        == "Great film. Loved it & more end"
    )


def test_training_samples_keep_the_class_balance_and_the_test_sample_ignores_labels():
    train = pd.DataFrame(
        {"text": [f"t{i}" for i in range(400)], "label": ["a"] * 300 + ["b"] * 100}
    )
    test = pd.DataFrame({"text": [f"u{i}" for i in range(200)], "label": ["a"] * 150 + ["b"] * 50})
    kwargs = dict(val_fraction=0.1, max_train=100, max_val=None, max_test=40, seed=0)
    splits = featurize.make_splits(train, test, **kwargs)
    assert splits["val"]["label"].value_counts().to_dict() == {"a": 30, "b": 10}
    assert splits["train"]["label"].value_counts().to_dict() == {"a": 75, "b": 25}
    assert len(splits["test"]) == 40 and not set(splits["train"]["text"]) & set(
        splits["val"]["text"]
    )
    shuffled = test.assign(label=test["label"].sample(frac=1, random_state=1).to_numpy())
    again = featurize.make_splits(train, shuffled, **kwargs)
    assert again["test"]["text"].tolist() == splits["test"]["text"].tolist()  # same rows kept


def test_validation_is_grouped_by_movie_where_the_rows_name_movies():
    """Where the rows name their movie, no movie has rows on both sides of the validation split,
    the class balance holds, and featurize's meta says so; without movies the split is as before."""
    rng = np.random.default_rng(0)
    movies = np.repeat([f"movie {m}" for m in range(60)], 10)
    train = pd.DataFrame(
        {
            "text": [f"t{i}" for i in range(600)],
            "label": np.where(rng.random(600) < 0.3, "b", "a"),
            corpus.GROUP: movies,
        }
    )
    test = train.head(50).assign(text=lambda d: "u" + d["text"])
    splits = featurize.make_splits(
        train, test, val_fraction=0.1, max_train=None, max_val=None, max_test=None, seed=0
    )
    assert not set(splits["val"][corpus.GROUP]) & set(splits["train"][corpus.GROUP])
    assert 40 <= len(splits["val"]) <= 80 and len(splits["val"]) + len(splits["train"]) == 600
    shares = {name: (df["label"] == "b").mean() for name, df in splits.items() if name != "test"}
    assert abs(shares["val"] - (train["label"] == "b").mean()) < 0.08
    other_seed = featurize.make_splits(
        train, test, val_fraction=0.1, max_train=None, max_val=None, max_test=None, seed=1
    )
    assert set(other_seed["val"][corpus.GROUP]) != set(splits["val"][corpus.GROUP])
    with pytest.raises(UserError, match=r"only 5 different movie\(s\).*lower `val_fraction`"):
        featurize.make_splits(
            train.assign(**{corpus.GROUP: [f"movie {i % 5}" for i in range(600)]}),
            test,
            val_fraction=0.1,
            max_train=None,
            max_val=None,
            max_test=None,
            seed=0,
        )


def toy_corpus(rows=80, movies=16):
    """Short opinions and a movie each, five rows a movie. Each row has a made-up word of its
    own, and shares another with one row of another movie, so which words and character n-grams a
    vectorizer keeps (min_df=2 included) depends on the rows its fit sees."""
    good, bad = ["great", "moving", "superb", "warm"], ["dull", "awful", "boring", "lazy"]
    letters = np.random.default_rng(0).choice(list("bcdfghjklmnpqrstvwxz"), size=(rows * 3 // 2, 6))
    made_up = ["".join(row) for row in letters]
    own, shared = made_up[:rows], made_up[rows:]
    words = [good if i % 2 else bad for i in range(rows)]
    texts = [
        f"a {w[i % 4]} film, {own[i]} and {shared[i // 2]} in it, {w[i // 2 % 4]}"
        for i, w in enumerate(words)
    ]
    return texts, np.arange(rows) % 2, np.array([f"movie {i % movies}" for i in range(rows)])


@pytest.mark.parametrize("name", ["tfidf_logreg", "nbsvm", "embedding_logreg"])
@pytest.mark.parametrize("grouped", [False, True])
def test_every_text_baseline_learns_its_features_inside_each_fold(monkeypatch, name, grouped):
    """Vocabulary, IDF, naive-Bayes ratios and the scaler are fitted on each fold's training rows
    (so they differ between folds and never see the fold's held-out rows), once per fold however
    many values of C are tried, and once more on all rows for the final model. With movies, a
    fold holds out whole movies."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import StandardScaler

    texts, y, movies = toy_corpus()
    groups = movies if grouped else None
    fits = []  # (what was fitted, the rows it saw, what it learned)
    count_fit, scaler_fit = CountVectorizer.fit_transform, StandardScaler.fit

    def spy_counts(self, docs, y=None):
        out = count_fit(self, docs, y)
        kind = f"{type(self).__name__} {self.analyzer}"
        fits.append((kind, tuple(docs), frozenset(self.vocabulary_)))
        return out

    def spy_scaler(self, x, y=None, sample_weight=None):
        out = scaler_fit(self, x, y, sample_weight)
        fits.append(("StandardScaler", tuple(map(tuple, np.round(x, 6))), tuple(self.mean_)))
        return out

    monkeypatch.setattr(CountVectorizer, "fit_transform", spy_counts)
    monkeypatch.setattr(StandardScaler, "fit", spy_scaler)
    kwargs = dict(groups=groups, balanced=False, scoring="accuracy", seed=0)
    if name == "embedding_logreg":
        rows = np.random.default_rng(0).normal(size=(len(y), 6)) + y[:, None]
        pred, chosen = baselines.embedding_logreg(rows, y, rows[:5], **kwargs)
        keys = list(map(tuple, np.round(rows, 6)))  # how the spy saw each row
    else:
        pred, chosen = getattr(baselines, name)(texts, y, texts[:5], **kwargs)
        keys = texts
    every_row, row_movie = set(keys), dict(zip(keys, movies))
    assert len(pred) == 5 and chosen["C"] in baselines.C_GRID
    assert ("grouped by movie" in chosen["cv"]) == grouped
    assert "features refitted in every fold" in chosen["cv"]
    for kind in {k for k, _, _ in fits}:
        mine = [(set(rows_seen), learned) for k, rows_seen, learned in fits if k == kind]
        assert len(mine) == baselines.FOLDS + 1, kind  # one per fold, one final
        folds, final = mine[:-1], mine[-1]
        assert final[0] == every_row
        assert all(seen < every_row for seen, _ in folds)  # each fold left rows out
        assert len({learned for _, learned in folds}) == baselines.FOLDS  # each learned its own
        held_out = [every_row - seen for seen, _ in folds]
        assert set().union(*held_out) == every_row  # every row was held out once
        if grouped:
            for seen, out in zip([s for s, _ in folds], held_out):
                assert not {row_movie[r] for r in seen} & {row_movie[r] for r in out}


def test_reviews_gets_a_two_class_sentiment_verdict_beside_macro_f1():
    """A model that wins macro-F1 only by recognising the neutral class is told so by the
    sentiment verdict (macro-F1 of negative and positive on the same rows)."""
    from sklearn.metrics import f1_score

    from xlalab.textclf import evaluate

    labels = ["negative", "neutral", "positive"]
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=800, p=[0.4, 0.1, 0.5])

    def opinions(right_share):  # a wrong opinion is the other one; neutral rows stay neutral
        return np.where(rng.random(len(y)) < right_share, y, 2 - y)

    model = opinions(0.8)  # every plot summary right, 80 % of the opinions
    baseline = opinions(0.92)  # better on opinions, but calls every plot summary an opinion
    baseline[y == 1] = rng.choice([0, 2], size=int((y == 1).sum()))
    verdicts = evaluate.judge({"finetuned": model, "plain": baseline}, y, labels, seed=0)
    assert verdicts["verdict"]["verdict"] == "beats"
    sentiment = verdicts["verdict_sentiment"]
    assert sentiment["metric"] == "macro-F1 of negative and positive"
    assert sentiment["score"] == pytest.approx(f1_score(y, model, labels=[0, 2], average="macro"))
    assert sentiment["verdict"] == "loses" and sentiment["best_baseline"] == "plain"
    binary = evaluate.judge({"finetuned": y % 2, "plain": y % 2}, y % 2, labels[::2], seed=0)
    assert "verdict_sentiment" not in binary and "verdict_f1_positive" in binary


def labelled(**counts):
    return pd.DataFrame(
        [(f"{name} text {i}", name) for name, n in counts.items() for i in range(n)],
        columns=["text", "label"],
    )


def test_tiny_splits_and_nearly_absent_classes_are_warned_about():
    labels = ["negative", "neutral", "positive"]
    fine = {
        "train": labelled(negative=400, neutral=100, positive=500),
        "test": labelled(negative=90, neutral=20, positive=90),
    }
    assert featurize.data_warnings(fine, labels, "reviews") == []
    tiny_test = {**fine, "test": labelled(negative=90, neutral=19, positive=90)}
    few_rows, few_neutral = featurize.data_warnings(tiny_test, labels, "reviews")
    assert few_rows.startswith("the test split has only 199 rows (< 200)")
    assert "`reviews.featurize.max_test`" in few_rows
    assert few_neutral.startswith("the test split has fewer than 20 rows of 'neutral' (19)")
    rare = {**fine, "train": labelled(negative=400, neutral=19, positive=600)}
    (warning,) = featurize.data_warnings(rare, labels, "reviews")
    assert warning.startswith("nearly absent from the training rows (< 2%): 'neutral' (1.9%)")
    assert "`reviews.train.balance`" in warning


def test_class_weights_and_oversampling_apply_only_when_skewed():
    train = {"labels": torch.tensor([0] * 8 + [1] * 2), "input_ids": torch.arange(10)[:, None]}
    val = {"labels": torch.tensor([0, 1])}
    t, v, info = balance_training(train, val, 2, "class_weights", threshold=1.5, seed=0)
    assert info["method"] == "class_weights" and info["imbalance_ratio"] == 4.0
    assert torch.allclose(
        t["class_weight"][t["labels"] == 1].sum(), t["class_weight"][t["labels"] == 0].sum()
    )
    assert v["class_weight"].tolist() == pytest.approx([10 / 16, 10 / 4])
    t, _, info = balance_training(train, val, 2, "oversample", threshold=1.5, seed=0)
    assert torch.bincount(t["labels"]).tolist() == [8, 8] and (t["class_weight"] == 1).all()
    _, _, info = balance_training(train, val, 2, "class_weights", threshold=5.0, seed=0)
    assert info["method"] == "none"  # below the threshold nothing changes
    with pytest.raises(UserError, match=r"class id\(s\) \[2\] have no training rows"):
        balance_training(train, val, 3, "class_weights", threshold=1.5, seed=0)


def test_a_missing_model_offline_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        UserError,
        match=r"cannot resolve revision main of Hugging Face model 'no-such-org/no-model': "
        "HF_HUB_OFFLINE is set",
    ):
        textmodel.pretrained("no-such-org/no-model", None)
    with pytest.raises(UserError, match="has no hub revisions; set its `revision` to null"):
        textmodel.pretrained(textmodel.OFFLINE_MINILM, "v1.0")
    broken = textmodel.Pretrained("mine", str(tmp_path), None, "local directory")
    with pytest.raises(UserError, match="cannot load the weights of model 'mine'"):
        textmodel.load_classifier(broken, ["a", "b"])


def test_freezing_lower_layers_leaves_the_top_trainable():
    model = tiny_bert()
    total = sum(p.numel() for p in model.parameters())
    trainable = textmodel.freeze_lower_layers(model, 1)
    assert 0 < trainable < total
    assert not any(p.requires_grad for p in model.bert.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in model.bert.encoder.layer[1].parameters())
    with pytest.raises(UserError, match="has 2 layers"):
        textmodel.freeze_lower_layers(tiny_bert(), 3)


def test_embedding_cache_is_computed_once(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"train": torch.ones(2, 3)}

    a = baselines.cached_embeddings(tmp_path / "embeddings-a.safetensors", compute)
    b = baselines.cached_embeddings(tmp_path / "embeddings-a.safetensors", compute)
    baselines.cached_embeddings(tmp_path / "embeddings-b.safetensors", compute)
    assert len(calls) == 2 and torch.equal(a["train"], b["train"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "embeddings-b.safetensors"
    ]  # the stale one is gone


# --- the family stages through the projects' contracts, on a tiny local model
# ---------------------------
POSITIVE = [
    "a wonderful, moving film",
    "brilliant acting and a great story",
    "funny, warm and delightful",
    "a superb and beautiful movie",
    "great fun from start to end",
    "an excellent, gripping thriller",
]
NEGATIVE = [
    "a dull, boring mess",
    "terrible acting and an awful plot",
    "tedious, slow and painful",
    "a stupid and lazy movie",
    "bad from start to end",
    "an awful, pointless sequel",
]
NEUTRAL = [
    "the film follows a detective in paris",
    "a family moves to a farm in the summer",
    "two brothers travel across the country",
    "a teacher arrives at a small school",
]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A 5-layer BERT small enough for the CPU, deep enough for the default freeze_layers (4)."""
    path = tmp_path_factory.mktemp("tiny-bert")
    tiny_bert(layers=5).save_pretrained(path)
    own = textmodel.load_tokenizer(textmodel.pretrained(textmodel.OFFLINE_MINILM, None))
    own.model_max_length = 64  # the tiny model's positions
    own.save_pretrained(path)
    return path


def toy_params(project, model_dir, data_file, **train):
    """The project's params.yaml section with a local toy file, the tiny model and small slices; the
    train section keeps params.yaml's optimizer settings unless ``train`` overrides them."""
    p = copy.deepcopy(REPO_PARAMS)
    p["runtime"] = {
        "backend": "accelerate",
        "precision": "no",
        "compile": False,
        "xla_cache": False,
        "cpu_threads": None,
        "processes": 1,
    }
    section = p[project]
    section["model"] = str(model_dir)
    section["download"].update(source="local", path=str(data_file), test_fraction=0.3)
    section["featurize"].update(
        max_length=16, buckets=[8], val_fraction=0.2, max_train=None, max_val=None, max_test=None
    )
    section["train"].update({"epochs": 2, "batch_size": 16, "eval_batch_size": 32, **train})
    section["evaluate"].update(batch_size=32)
    section["plot"].update(top_terms=10)
    return p


def write_toy_data(path, with_neutral=False):
    rows = [
        (t + f" {i}", lab)
        for i in range(12)
        for lab, ts in (("positive", POSITIVE), ("negative", NEGATIVE))
        + ((("neutral", NEUTRAL),) if with_neutral else ())
        for t in ts
    ]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


def prepared(project, tmp_path, monkeypatch, tiny_model_dir, **train):
    """Download and featurize a toy local file for ``project`` inside tmp_path; returns the
    params."""
    data = write_toy_data(tmp_path / "toy.csv", with_neutral=project == "reviews")
    monkeypatch.chdir(tmp_path)
    p = toy_params(project, tiny_model_dir, data, **train)
    run_stage(project, "download", p)
    run_stage(project, "featurize", p)
    return p


def test_imdb_chain_on_a_tiny_model(tmp_path, monkeypatch, tiny_model_dir):
    p = prepared("imdb", tmp_path, monkeypatch, tiny_model_dir, lr=1e-3)
    paths = Paths.of("imdb")
    splits, _, meta = tokens.read_features(paths.features)
    assert meta["buckets"] == [8, 16] and {s.ids.dtype for s in splits.values()} == {
        np.dtype(np.uint16)
    }
    assert max(int(s.lengths.max()) for s in splits.values()) <= 16
    assert meta["padding"]["bucketed_per_real_token"] < meta["padding"]["fixed_per_real_token"]
    assert meta["labels"] == ["negative", "positive"] and sum(meta["rows"].values()) == 144
    assert meta["pretrained"]["commit"] == f"local directory {tiny_model_dir.name}"
    run_stage("imdb", "train", p)
    assert (paths.model / "model.safetensors").exists() and not list(paths.checkpoints.glob("*"))
    run_stage("imdb", "evaluate", p)
    result = json.loads(paths.details.read_text())
    assert result["headline"] == "accuracy"  # binary: accuracy, with the positive F1 beside it
    assert result["finetuned"]["f1"] == result["finetuned"]["per_class"]["positive"]["f1"]
    assert set(result["baselines"]) == {"majority", "tfidf_logreg", "nbsvm", "embedding_logreg"}
    assert result["baselines"]["tfidf_logreg"]["accuracy"] > 0.9  # the toy words are separable
    assert result["baselines"]["nbsvm"]["accuracy"] > 0.9
    assert "verdict_sentiment" not in result  # binary: no neutral class to set aside
    verdict = result["verdict"]
    assert verdict["metric"] == "accuracy" and verdict["score"] == result["finetuned"]["accuracy"]
    assert set(verdict["baselines"]) == set(result["baselines"]) and verdict["line"]
    for name, judged in verdict["baselines"].items():
        assert judged["score"] == result["baselines"][name]["accuracy"]
        assert judged["interval"][0] <= judged["score"] <= judged["interval"][1]
    assert result["verdict_f1_positive"]["metric"] == "F1 of 'positive'"
    for name in ("tfidf_logreg", "nbsvm", "embedding_logreg"):
        assert result["baseline_notes"][name]["C"] in baselines.C_GRID
        assert "features refitted in every fold" in result["baseline_notes"][name]["cv"]
    assert (
        sum(sum(r.values()) for r in result["finetuned"]["confusion_matrix"].values())
        == meta["rows"]["test"]
    )
    # the toy test split is far too small to trust, and the details say so
    assert result["warnings"][0].startswith(f"the test split has only {meta['rows']['test']} rows")
    assert result["warnings"][: len(meta["warnings"])] == meta["warnings"]
    published = json.loads(paths.metrics.read_text())  # the headline, every project's keys
    assert tuple(published) == METRIC_KEYS and published["warnings"] == len(result["warnings"])
    assert published["score"] == verdict["score"] and published["source"] == meta["source"]
    predictions = pd.read_csv(paths.predictions)
    assert list(predictions.columns) == ["actual", "predicted", "confidence"]
    assert (
        len(predictions) == meta["rows"]["test"] and predictions["confidence"].between(0.5, 1).all()
    )
    assert (predictions["actual"] == [meta["labels"][y] for y in splits["test"].labels]).all()
    run_stage("imdb", "plot", p)
    written = {f.name for f in paths.figures.iterdir()}
    assert written == {
        "label_distribution.json",
        "label_distribution.png",
        "predictions.png",
        "confusion.json",
        "confusion.png",
        "training_curves.png",
        "top_terms.json",
        "top_terms.png",
    }  # word clouds are off for imdb; the separating terms are drawn as bars
    assert len(json.loads((paths.figures / "confusion.json").read_text())) == meta["rows"]["test"]
    # the same params give the same details
    first = paths.details.read_text()
    run_stage("imdb", "evaluate", p)
    again = json.loads(paths.details.read_text())
    assert (
        again["finetuned"] == json.loads(first)["finetuned"]
        and again["verdict"] == result["verdict"]
    )


def test_reviews_is_judged_by_macro_f1_and_plots_word_clouds(tmp_path, monkeypatch, tiny_model_dir):
    p = prepared("reviews", tmp_path, monkeypatch, tiny_model_dir, epochs=1)
    p["reviews"]["evaluate"]["embedding_baseline"] = False
    for stage in ("train", "evaluate", "plot"):
        run_stage("reviews", stage, p)
    paths = Paths.of("reviews")
    result = json.loads(paths.details.read_text())
    assert result["headline"] == "macro_f1" and result["verdict"]["metric"] == "macro-F1"
    assert "verdict_f1_positive" not in result
    assert set(result["finetuned"]["per_class"]) == {"negative", "neutral", "positive"}
    assert set(result["baselines"]) == {"majority", "tfidf_logreg", "nbsvm"}
    sentiment = result["verdict_sentiment"]  # the opinions alone, beside macro-F1
    assert sentiment["metric"] == "macro-F1 of negative and positive"
    assert set(sentiment["baselines"]) == set(result["baselines"])
    per_class = result["finetuned"]["per_class"]
    assert sentiment["score"] == pytest.approx(
        (per_class["negative"]["f1"] + per_class["positive"]["f1"]) / 2, abs=1e-3
    )
    terms = json.loads((paths.figures / "top_terms.json").read_text())
    assert {r["label"] for r in terms} == {"negative", "neutral", "positive"}
    for label in ("negative", "neutral", "positive"):  # ranked by z, most separating first
        ranked = [r for r in terms if r["label"] == label]
        assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
        assert [r["z"] for r in ranked] == sorted((r["z"] for r in ranked), reverse=True)
    assert (paths.figures / "word_clouds.png").stat().st_size > 1000


def test_training_again_trains_again(tmp_path, monkeypatch, tiny_model_dir):
    """A finished run leaves no checkpoint behind, so a second run is a real run, not a 'resume'."""
    p = prepared("imdb", tmp_path, monkeypatch, tiny_model_dir, epochs=2)
    paths = Paths.of("imdb")
    summaries = []
    for _ in range(2):
        run_stage("imdb", "train", p)
        summaries.append(json.loads(paths.summary.read_text())["models"][textmodel.WEIGHTS])
        assert not list(paths.checkpoints.glob("*"))
    second = summaries[1]
    assert second["epochs_trained_now"] == 2 and second["resumed_after_epoch"] is None
    assert second["train_seconds"] > 0 and second["samples_per_sec"] > 0
    assert (
        second["best"]["val/loss"] == summaries[0]["best"]["val/loss"]
    )  # the same run again (CPU is deterministic)


def test_a_model_that_loses_to_a_baseline_is_told_so(tmp_path, monkeypatch, tiny_model_dir, capsys):
    p = prepared(
        "imdb", tmp_path, monkeypatch, tiny_model_dir, epochs=1, lr=1e-12, warmup_fraction=0.0
    )
    p["imdb"]["evaluate"]["embedding_baseline"] = False
    run_stage("imdb", "train", p)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    log = io.StringIO()  # stdout and stderr in the order a terminal shows them
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        assert main(["imdb", "evaluate"]) == 0
    verdict = json.loads(Paths.of("imdb").details.read_text())["verdict"]
    assert verdict["verdict"] == "loses" and verdict["best_baseline"] == "tfidf_logreg"
    assert verdict["difference_interval"][1] < 0 and verdict["line"].endswith(": loses")
    err = log.getvalue().strip().splitlines()
    assert f"wrote {Paths.of('imdb').metrics}" in err
    assert (
        err[-1] == f"verdict: {verdict['line']}"
    )  # after the warnings and the outputs: the log ends with it
    # one epoch cannot show that training settled: the training's warning is carried into the
    # details
    warnings = json.loads(Paths.of("imdb").details.read_text())["warnings"]
    assert any(w.startswith("training ran one epoch") for w in warnings)
    assert f"warning: imdb evaluate: {warnings[-1]}" in err


def xla_train(p, featurize) -> tuple[list[int], int]:
    """Featurize with ``featurize`` changed, train on XLA: (cumulative compile counts after each
    epoch, graphs this run compiled)."""
    import torch_xla.debug.metrics as met

    p["imdb"]["featurize"].update(featurize)
    run_stage("imdb", "featurize", p)
    before = int(met.counter_value("UncachedCompile") or 0)
    run_stage("imdb", "train", p)
    counts = json.loads(Paths.of("imdb").summary.read_text())["models"][textmodel.WEIGHTS][
        "compile_counts"
    ]
    return counts, counts[-1] - before


@pytest.mark.xla
def test_xla_compiles_a_bounded_number_of_graphs_per_bucket_and_then_nothing(
    tmp_path, monkeypatch, tiny_model_dir
):
    """The imdb train stage on XLA with params.yaml's optimizer, scheduler, warmup, clipping and
    freezing (only epochs, rows and batch sizes are smaller), once with every text at one length and
    once in two length buckets (at lengths no other test compiles, so no graph of a batch shape
    comes from the cache)."""
    defaults = REPO_PARAMS["imdb"]["train"]
    p = prepared(
        "imdb", tmp_path, monkeypatch, tiny_model_dir, epochs=2, batch_size=8, eval_batch_size=8
    )
    p["runtime"] = {
        "backend": "xla",
        "precision": "no",
        "compile": False,
        "xla_cache": False,
        "cpu_threads": None,
        "processes": 1,
    }
    for key in (
        "lr",
        "weight_decay",
        "optimizer",
        "scheduler",
        "warmup_fraction",
        "max_grad_norm",
        "freeze_layers",
    ):
        assert p["imdb"]["train"][key] == defaults[key]
    one_counts, one_length = xla_train(p, {"max_length": 20, "buckets": []})
    two_counts, two_buckets = xla_train(p, {"max_length": 17, "buckets": [8]})
    rows = json.loads(Paths.of("imdb").features.joinpath("meta.json").read_text())[
        "rows_per_bucket"
    ]
    assert min(rows["train"]) >= 8 and min(rows["val"]) >= 1  # both buckets train and validate
    for counts in (one_counts, two_counts):
        assert len(counts) == 2 and counts[1] == counts[0], f"recompiled: {counts}"
    # Per batch shape: one training step and one evaluation, plus the first optimizer step (which
    # creates the optimizer state) once. The first run may also compile the graphs that do not
    # depend on the batch shape (moving the model and the learning rate to the device, ...),
    # unless an earlier test in this process already did; the second finds them cached.
    assert one_length >= 2 * 1 + 1 and two_buckets <= 2 * 2 + 1, (one_length, two_buckets)


# --- max_length: auto
# --------------------------------------------------------------------------------
def test_auto_max_length_covers_most_texts_and_warns_when_most_are_cut(
    tmp_path, monkeypatch, capsys, tiny_model_dir
):
    words = [
        "the",
        "plot",
        "meanders",
        "from",
        "one",
        "long",
        "scene",
        "to",
        "another",
        "while",
        "the",
        "actors",
        "wait",
    ]

    def review(n_words, i):
        return " ".join(words[(i + k) % len(words)] for k in range(n_words)) + f" {i}"

    # mostly short texts with a long tail: auto covers 95% of the training texts, not the longest
    rows = [(review(10 + (i % 20), i), "positive" if i % 2 else "negative") for i in range(194)]
    rows += [(review(300, i), "positive" if i % 2 else "negative") for i in range(194, 200)]
    data = tmp_path / "mixed.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(data, index=False)
    monkeypatch.chdir(tmp_path)
    p = toy_params("imdb", tiny_model_dir, data)
    p["imdb"]["featurize"]["max_length"] = "auto"
    run_stage("imdb", "download", p)
    run_stage("imdb", "featurize", p)
    features = Paths.of("imdb").features
    first = {f.name: f.read_bytes() for f in features.iterdir()}
    run_stage(
        "imdb", "featurize", p
    )  # the same inputs give the same bytes (no timings in the features)
    assert {f.name: f.read_bytes() for f in features.iterdir()} == first
    meta = json.loads(features.joinpath("meta.json").read_text())
    assert (
        meta["max_length_param"] == "auto"
        and meta["max_length"] % 8 == 0
        and 16 <= meta["max_length"] < 64
    )
    assert 0 < meta["share_truncated"]["train"] <= 0.1
    assert (
        "texts are cut" not in capsys.readouterr().err
    )  # (the toy split is tiny: that warning is expected)

    # long reviews: capped by the model's maximum (64 positions in the tiny model), and most are cut
    long_rows = [(review(120 + i, i), "positive" if i % 2 else "negative") for i in range(60)]
    pd.DataFrame(long_rows, columns=["text", "label"]).to_csv(data, index=False)
    run_stage("imdb", "download", p)
    run_stage("imdb", "featurize", p)
    meta = json.loads(Paths.of("imdb").features.joinpath("meta.json").read_text())
    assert meta["max_length"] == 64  # the tiny model's model_max_length
    assert meta["share_truncated"]["train"] == 1.0
    err = capsys.readouterr().err
    assert "warning: imdb featurize: 100% of the training texts are cut" in err


@pytest.mark.parametrize(
    "value,ok",
    [("auto", True), (48, True), (7, False), (600, False), ("long", False), (48.0, False)],
)
def test_max_length_is_auto_or_a_token_count(value, ok):
    from xlalab.pipeline.params import parse
    from xlalab.textclf import FeaturizeParams

    p = copy.deepcopy(REPO_PARAMS)
    p["imdb"]["featurize"]["max_length"] = value
    if ok:
        assert parse(FeaturizeParams, p, "imdb").featurize.max_length == value
    else:
        with pytest.raises(
            UserError, match=r"`imdb.featurize.max_length` must be auto or a whole number"
        ):
            parse(FeaturizeParams, p, "imdb")


@pytest.mark.parametrize(
    "buckets,ok", [([], True), ([8, 24], True), ([24, 8], False), ([4], False), ([48], False)]
)
def test_buckets_are_increasing_lengths_below_max_length(buckets, ok):
    from xlalab.pipeline.params import parse
    from xlalab.textclf import FeaturizeParams

    p = copy.deepcopy(REPO_PARAMS)
    p["imdb"]["featurize"].update(max_length=48, buckets=buckets)
    if ok:
        assert parse(FeaturizeParams, p, "imdb").featurize.buckets == buckets
    else:
        with pytest.raises(UserError, match=r"`imdb.featurize(.buckets)?` "):
            parse(FeaturizeParams, p, "imdb")
    # with max_length: auto a bucket at or above the chosen length is dropped, not an error
    assert featurize.bucket_sizes([8, 24, 64], 48) == [8, 24, 48]


# --- nothing is chosen on the test labels
# ---------------------------------------------------------------------------------
def test_shuffled_test_labels_change_the_scores_and_nothing_that_is_chosen(
    tmp_path, monkeypatch, tiny_model_dir
):
    """Best epoch, validation history, the baselines' C, the rows kept and max_length come from
    the training rows alone: shuffling the test labels moves only the test scores."""
    p = prepared("imdb", tmp_path, monkeypatch, tiny_model_dir, epochs=2, lr=1e-3)
    p["imdb"]["featurize"].update(max_length="auto", max_test=30)
    paths = Paths.of("imdb")

    def chain():
        for stage in ("featurize", "train", "evaluate"):
            run_stage("imdb", stage, p)
        texts, meta = corpus.read_texts(paths.features)
        entry = json.loads(paths.summary.read_text())["models"][textmodel.WEIGHTS]
        metrics = json.loads(paths.details.read_text())
        chosen = {
            "max_length": meta["max_length"],
            "rows": meta["rows"],
            "texts": texts["text"].tolist(),
            "best_epoch": entry["best_epoch"],
            "validation": [row["val/acc"] for row in entry["history"]],
            "C": {name: note.get("C") for name, note in metrics["baseline_notes"].items()},
        }
        scores = {name: v["score"] for name, v in metrics["verdict"]["baselines"].items()}
        return chosen, {**scores, "finetuned": metrics["verdict"]["score"]}

    chosen, scores = chain()
    raw = paths.raw / "test.parquet"
    test = pd.read_parquet(raw)
    test["label"] = np.random.default_rng(0).permutation(test["label"].to_numpy())
    test.to_parquet(raw, index=False)
    chosen_again, scores_again = chain()
    assert chosen_again == chosen and chosen["C"]["tfidf_logreg"] is not None
    assert chosen["C"]["nbsvm"] is not None
    assert scores_again != scores


# --- hub revisions
# ---------------------------------------------------------------------------------
def test_every_hub_load_passes_the_revision_and_the_commit_is_recorded(
    tmp_path, monkeypatch, tiny_model_dir
):
    """The imdb chain from a hub dataset and a hub model, the hub mocked: every load_dataset and
    from_pretrained call gets the revision of params, and the commit it resolved to is recorded."""
    import datasets
    import huggingface_hub
    import transformers
    from huggingface_hub import ResolvedRevision

    calls = []

    def resolve(repo_id, *, repo_type=None, revision=None, **_):
        calls.append(("resolve", repo_id, revision))
        return ResolvedRevision(f"{repo_type}-commit-0123", revision, repo_id, repo_type)

    rows = pd.read_csv(write_toy_data(tmp_path / "toy.csv"))
    rows["label"] = (rows["label"] == "positive").astype(int)  # stanfordnlp/imdb's 0/1

    class Table:
        def __init__(self, split):
            self.split = split

        def to_pandas(self):
            return rows.iloc[:100] if self.split == "train" else rows.iloc[100:]

    def load_dataset(name, split, revision):
        calls.append(("load_dataset", name, revision))
        return Table(split)

    monkeypatch.setattr(huggingface_hub, "resolve_revision", resolve)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    for cls in (
        transformers.AutoTokenizer,
        transformers.AutoModelForSequenceClassification,
        transformers.AutoModel,
    ):

        def from_pretrained(source, *args, real=cls.from_pretrained, name=cls.__name__, **kw):
            if source == "some-org/tiny-bert":  # a hub load: recorded, served from the tiny model
                calls.append((name, source, kw.pop("revision")))
                source = str(tiny_model_dir)
            return real(source, *args, **kw)

        monkeypatch.setattr(cls, "from_pretrained", from_pretrained)
    monkeypatch.chdir(tmp_path)
    p = toy_params("imdb", tiny_model_dir, tmp_path / "toy.csv", epochs=1)
    p["imdb"].update(model="some-org/tiny-bert", revision="v1.0")
    p["imdb"]["download"].update(source="huggingface", hf_revision="v2")
    for stage in ("download", "featurize", "train", "evaluate"):
        run_stage("imdb", stage, p)

    loads = {call[0] for call in calls}
    assert loads == {
        "resolve",
        "load_dataset",
        "AutoTokenizer",
        "AutoModelForSequenceClassification",
        "AutoModel",
    }
    for kind, name, revision in calls:
        expected = "v2" if name == "stanfordnlp/imdb" else "v1.0"
        assert revision == expected, (kind, name, revision)
    paths = Paths.of("imdb")
    assert json.loads(paths.card.read_text())["commit"] == "dataset-commit-0123"
    recorded = [
        json.loads((paths.features / "meta.json").read_text())["pretrained"],
        json.loads(paths.summary.read_text())["pretrained"],
        json.loads(paths.details.read_text())["model"]["pretrained"],
    ]
    assert (
        recorded
        == [{"name": "some-org/tiny-bert", "revision": "v1.0", "commit": "model-commit-0123"}] * 3
    )
