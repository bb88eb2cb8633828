"""The text-classification family: fixed token shapes, stratified splits, class balancing, the
embedding cache, clear errors for missing models, and the family stages run through the imdb and
reviews contracts on a tiny local model: the whole chain, a retrain that really trains, a verdict
that says when the model loses, and a flat XLA compile count with the default optimizer settings."""

import contextlib
import copy
import io
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from transformers import BertConfig, BertForSequenceClassification

import xlalab  # noqa: F401  first: it opts Accelerate out of torch_xla before transformers imports accelerate
from xlalab.cli import main
from xlalab.core.data import Batches
from xlalab.core.errors import UserError
from xlalab.core.project import Paths
from xlalab.core.runner import run_stage
from xlalab.textclf import baselines, corpus, features
from xlalab.textclf import model as textmodel
from xlalab.textclf.train import balance_training

REPO_PARAMS = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())


@pytest.fixture(scope="module")
def tokenizer():
    return textmodel.load_tokenizer(textmodel.OFFLINE_MINILM)


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


def test_tokenised_batches_have_one_fixed_shape(tokenizer):
    texts = [
        "Great.",
        "An utterly dull, overlong and " + "very " * 200 + "tedious film.",
        "",
        "Fine <br /> film",
    ]
    tensors = features.tokenize(tokenizer, texts, max_length=24)
    assert tensors["input_ids"].shape == tensors["attention_mask"].shape == (4, 24)
    assert tensors["attention_mask"][1].all() and not tensors["attention_mask"][0].all()
    data = {**tensors, "labels": torch.tensor([1, 0, 0, 1])}
    shapes = {tuple(b["input_ids"].shape) for b in Batches(data, 3, train=False)}
    assert shapes == {(3, 24)}  # the ragged last batch is padded, not shortened


def test_html_line_breaks_are_cleaned():
    assert (
        corpus.clean_text("Great film.<br /><br />Loved it &amp; more<BR>end")
        == "Great film. Loved it & more end"
    )


def test_validation_and_subsamples_keep_the_class_balance():
    train = pd.DataFrame(
        {"text": [f"t{i}" for i in range(400)], "label": ["a"] * 300 + ["b"] * 100}
    )
    test = pd.DataFrame({"text": [f"u{i}" for i in range(200)], "label": ["a"] * 150 + ["b"] * 50})
    splits = features.make_splits(
        train, test, val_fraction=0.1, max_train=100, max_val=None, max_test=40, seed=0
    )
    assert splits["val"]["label"].value_counts().to_dict() == {"a": 30, "b": 10}
    assert splits["train"]["label"].value_counts().to_dict() == {"a": 75, "b": 25}
    assert splits["test"]["label"].value_counts().to_dict() == {"a": 30, "b": 10}
    assert not set(splits["train"]["text"]) & set(splits["val"]["text"])


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
    assert features.data_warnings(fine, labels, "reviews") == []
    tiny_test = {**fine, "test": labelled(negative=90, neutral=19, positive=90)}
    few_rows, few_neutral = features.data_warnings(tiny_test, labels, "reviews")
    assert few_rows.startswith("the test split has only 199 rows (< 200)")
    assert "`reviews.featurize.max_test`" in few_rows
    assert few_neutral.startswith("the test split has fewer than 20 rows of 'neutral' (19)")
    rare = {**fine, "train": labelled(negative=400, neutral=19, positive=600)}
    (warning,) = features.data_warnings(rare, labels, "reviews")
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
        UserError, match="cannot load the tokenizer of model 'no-such-org/no-model'"
    ):
        textmodel.load_tokenizer("no-such-org/no-model")
    with pytest.raises(UserError, match="cannot load the weights"):
        textmodel.load_classifier(str(tmp_path / "empty-dir-name"), ["a", "b"])


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
    own = textmodel.load_tokenizer(textmodel.OFFLINE_MINILM)
    own.model_max_length = 64  # the tiny model's positions
    own.save_pretrained(path)
    return path


def toy_params(project, model_dir, data_file, **train):
    """The project's params.yaml section with a local toy file, the tiny model and small slices; the
    train section keeps params.yaml's optimizer settings unless ``train`` overrides them."""
    p = copy.deepcopy(REPO_PARAMS)
    p["runtime"] = {"backend": "accelerate", "bf16": False, "cpu_threads": None, "processes": 1}
    section = p[project]
    section["model"] = str(model_dir)
    section["download"].update(source="local", path=str(data_file), test_fraction=0.3)
    section["featurize"].update(
        max_length=16, val_fraction=0.2, max_train=None, max_val=None, max_test=None
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
    tensors, _, meta = corpus.read_features(paths.features)
    assert {t["input_ids"].shape[1] for t in tensors.values()} == {16}
    assert meta["labels"] == ["negative", "positive"] and sum(meta["rows"].values()) == 144
    run_stage("imdb", "train", p)
    assert (paths.model / "model.safetensors").exists() and not list(paths.checkpoints.glob("*"))
    run_stage("imdb", "evaluate", p)
    result = json.loads(paths.metrics.read_text())
    assert result["headline"] == "f1"  # binary: F1 of the second class, "positive"
    assert result["finetuned"]["f1"] == result["finetuned"]["per_class"]["positive"]["f1"]
    assert set(result["baselines"]) == {"majority", "tfidf_logreg", "embedding_logreg"}
    assert result["baselines"]["tfidf_logreg"]["accuracy"] > 0.9  # the toy words are separable
    assert result["verdict"]["metric"] == "F1 of 'positive'" and result["verdict"]["line"]
    assert (
        sum(sum(r.values()) for r in result["finetuned"]["confusion_matrix"].values())
        == meta["rows"]["test"]
    )
    # the toy test split is far too small to trust, and the metrics say so
    assert result["warnings"][0].startswith(f"the test split has only {meta['rows']['test']} rows")
    assert result["warnings"][: len(meta["warnings"])] == meta["warnings"]
    predictions = pd.read_csv(paths.predictions)
    assert list(predictions.columns) == ["actual", "predicted", "confidence"]
    assert (
        len(predictions) == meta["rows"]["test"] and predictions["confidence"].between(0.5, 1).all()
    )
    run_stage("imdb", "plot", p)
    written = {f.name for f in paths.figures.iterdir()}
    assert written == {
        "label_distribution.json",
        "label_distribution.png",
        "predictions.png",
        "confusion.json",
        "confusion.png",
        "training_curves.png",
    }  # word clouds are off for imdb
    assert len(json.loads((paths.figures / "confusion.json").read_text())) == meta["rows"]["test"]
    # the same params give the same metrics
    first = paths.metrics.read_text()
    run_stage("imdb", "evaluate", p)
    again = json.loads(paths.metrics.read_text())
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
    result = json.loads(paths.metrics.read_text())
    assert result["headline"] == "macro_f1" and result["verdict"]["metric"] == "macro-F1"
    assert set(result["finetuned"]["per_class"]) == {"negative", "neutral", "positive"}
    assert set(result["baselines"]) == {"majority", "tfidf_logreg"}
    terms = json.loads((paths.figures / "top_terms.json").read_text())
    assert {r["label"] for r in terms} == {"negative", "neutral", "positive"}
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
    verdict = json.loads(Paths.of("imdb").metrics.read_text())["verdict"]
    assert verdict["beats_baseline"] is False and verdict["best_baseline"] == "tfidf_logreg"
    assert "does NOT beat it" in verdict["line"]
    err = log.getvalue().strip().splitlines()
    assert f"wrote {Paths.of('imdb').metrics}" in err
    assert (
        err[-1] == f"verdict: {verdict['line']}"
    )  # after the warnings and the outputs: the log ends with it
    # one epoch cannot show that training settled: the training's warning is carried into the
    # metrics
    warnings = json.loads(Paths.of("imdb").metrics.read_text())["warnings"]
    assert any(w.startswith("training ran one epoch") for w in warnings)
    assert f"warning: imdb evaluate: {warnings[-1]}" in err


def test_xla_compile_count_stays_flat_with_the_default_optimizer_settings(
    tmp_path, monkeypatch, tiny_model_dir
):
    """The imdb train stage on XLA with params.yaml's optimizer, scheduler, warmup, clipping and
    freezing; only epochs, rows and batch sizes are smaller."""
    defaults = REPO_PARAMS["imdb"]["train"]
    p = prepared(
        "imdb", tmp_path, monkeypatch, tiny_model_dir, epochs=3, batch_size=8, eval_batch_size=8
    )
    p["runtime"] = {"backend": "xla", "bf16": False, "cpu_threads": None, "processes": 1}
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
    run_stage("imdb", "train", p)
    entry = json.loads(Paths.of("imdb").summary.read_text())["models"][textmodel.WEIGHTS]
    counts = entry["compile_counts"]
    assert len(counts) == 3 and counts[0] > 0
    assert counts[1:] == [counts[0]] * 2, f"XLA recompiled after the first epoch: {counts}"


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
    assert meta["max_length"] == textmodel.load_tokenizer(str(tiny_model_dir)).model_max_length
    assert meta["share_truncated"]["train"] == 1.0
    err = capsys.readouterr().err
    assert "warning: imdb featurize: 100% of the training texts are cut" in err


@pytest.mark.parametrize(
    "value,ok",
    [("auto", True), (48, True), (7, False), (600, False), ("long", False), (48.0, False)],
)
def test_max_length_is_auto_or_a_token_count(value, ok):
    from xlalab.core.params import parse
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
