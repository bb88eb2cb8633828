"""The shared text-classification module: fixed shapes, a flat XLA compile count, balancing,
the embedding cache, clear errors for missing models, and one whole stage chain on a tiny model."""
import json

import xlalab  # noqa: F401  first: it opts Accelerate out of torch_xla before transformers imports accelerate
import pandas as pd
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from xlalab.core.data import Batches
from xlalab.core.errors import UserError
from xlalab.core.loop import TrainConfig, fit
from xlalab.textclf import baselines, features
from xlalab.textclf import model as textmodel
from xlalab.textclf.corpus import clean_text, write_raw
from xlalab.textclf.stages import TextProject, make_stages


@pytest.fixture(scope="module")
def tokenizer():
    return textmodel.load_tokenizer(textmodel.OFFLINE_MINILM)


def tiny_bert(num_labels=2, vocab=30522):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=num_labels,
                        attn_implementation="eager")
    return BertForSequenceClassification(config)


def token_data(n, length=16, vocab=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (n, length), generator=g)
    lengths = torch.randint(3, length + 1, (n,), generator=g)
    mask = (torch.arange(length)[None] < lengths[:, None]).long()
    labels = (ids[:, 0] % 2).long()  # learnable from the first token
    return {"input_ids": ids * mask, "attention_mask": mask, "labels": labels, "class_weight": torch.ones(n)}


def test_tokenised_batches_have_one_fixed_shape(tokenizer):
    texts = ["Great.", "An utterly dull, overlong and " + "very " * 200 + "tedious film.", "", "Fine <br /> film"]
    tensors = features.tokenize(tokenizer, texts, max_length=24)
    assert tensors["input_ids"].shape == tensors["attention_mask"].shape == (4, 24)
    assert tensors["attention_mask"][1].all() and not tensors["attention_mask"][0].all()
    data = {**tensors, "labels": torch.tensor([1, 0, 0, 1])}
    shapes = {tuple(b["input_ids"].shape) for b in Batches(data, 3, train=False)}
    assert shapes == {(3, 24)}  # the ragged last batch is padded, not shortened


def test_html_line_breaks_are_cleaned():
    assert clean_text("Great film.<br /><br />Loved it &amp; more<BR>end") == "Great film. Loved it & more end"


def test_xla_compile_count_stays_flat_with_a_tiny_bert(xla_backend):
    cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-3, warmup_fraction=0.1, max_grad_norm=1.0, seed=0)
    result = fit(tiny_bert(vocab=200), token_data(96), token_data(40, seed=1), textmodel.classification_task(),
                 cfg, xla_backend)
    counts = result.compile_counts
    assert counts[0] > 0
    assert counts[1:] == [counts[0]] * 2, f"XLA recompiled after the first epoch: {counts}"


def test_class_weights_and_oversampling_apply_only_when_skewed():
    train = {"labels": torch.tensor([0] * 8 + [1] * 2), "input_ids": torch.arange(10)[:, None]}
    val = {"labels": torch.tensor([0, 1])}
    t, v, info = features.balance_training(train, val, 2, "class_weights", threshold=1.5, seed=0)
    assert info["method"] == "class_weights" and info["imbalance_ratio"] == 4.0
    assert torch.allclose(t["class_weight"][t["labels"] == 1].sum(), t["class_weight"][t["labels"] == 0].sum())
    assert v["class_weight"].tolist() == pytest.approx([10 / 16, 10 / 4])
    t, _, info = features.balance_training(train, val, 2, "oversample", threshold=1.5, seed=0)
    assert torch.bincount(t["labels"]).tolist() == [8, 8] and (t["class_weight"] == 1).all()
    _, _, info = features.balance_training(train, val, 2, "class_weights", threshold=5.0, seed=0)
    assert info["method"] == "none"  # below the threshold nothing changes


def test_a_missing_model_offline_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="cannot load the tokenizer of model 'no-such-org/no-model'"):
        textmodel.load_tokenizer("no-such-org/no-model")
    with pytest.raises(UserError, match="cannot load the weights"):
        textmodel.load_classifier(str(tmp_path / "empty-dir-name"), ["a", "b"], seed=0)


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

    a = baselines.cached_embeddings(tmp_path / "embeddings-a.pt", compute)
    b = baselines.cached_embeddings(tmp_path / "embeddings-a.pt", compute)
    baselines.cached_embeddings(tmp_path / "embeddings-b.pt", compute)
    assert len(calls) == 2 and torch.equal(a["train"], b["train"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embeddings-b.pt"]  # the stale one is gone


# --- one whole chain on a tiny local model -------------------------------------------------------------
POSITIVE = ["a wonderful, moving film", "brilliant acting and a great story", "funny, warm and delightful",
            "a superb and beautiful movie", "great fun from start to end", "an excellent, gripping thriller"]
NEGATIVE = ["a dull, boring mess", "terrible acting and an awful plot", "tedious, slow and painful",
            "a stupid and lazy movie", "bad from start to end", "an awful, pointless sequel"]


def toy_download(p, seed):
    rows = [(t + f" {i}", lab) for i in range(12) for lab, ts in (("positive", POSITIVE), ("negative", NEGATIVE))
            for t in ts]
    df = pd.DataFrame(rows, columns=["text", "label"])
    return {"train": df.iloc[:100].reset_index(drop=True), "test": df.iloc[100:].reset_index(drop=True)}, \
        {"source": "toy"}


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tokenizer):
    path = tmp_path_factory.mktemp("tiny-bert")
    tiny_bert().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def chain_params(model_dir):
    return {"runtime": {"backend": "accelerate", "bf16": False},
            "toy": {"seed": 0, "model": str(model_dir), "download": {},
                    "featurize": {"max_length": 16, "val_fraction": 0.2, "max_train": None, "max_val": None,
                                  "max_test": 40},
                    "train": {"epochs": 2, "batch_size": 16, "eval_batch_size": 32, "lr": 1e-3, "weight_decay": 0.0,
                              "optimizer": "adamw", "scheduler": "linear", "warmup_fraction": 0.0,
                              "grad_accum_steps": 1, "max_grad_norm": 1.0, "patience": None, "freeze_layers": 1,
                              "balance": "class_weights", "imbalance_threshold": 1.5},
                    "evaluate": {"batch_size": 32, "embedding_baseline": True}, "plot": {"top_terms": 10}}}


def test_stage_chain_on_a_tiny_model(tmp_path, tiny_model_dir):
    project = TextProject(name="toy", labels=("negative", "positive"), download=toy_download,
                          positive="positive", word_clouds=True)
    stages = make_stages(project)
    params = chain_params(tiny_model_dir)
    raw, feats, models = tmp_path / "raw", tmp_path / "features", tmp_path / "model"
    metrics, preds, live = tmp_path / "metrics.json", tmp_path / "plots" / "pred.json", tmp_path / "plots" / "train"
    stages["download"](params, raw_dir=raw)
    stages["featurize"](params, raw_dir=raw, features_dir=feats)
    tensors, _, meta = features.read_features(feats)
    assert {t["input_ids"].shape[1] for t in tensors.values()} == {16}
    assert meta["rows"] == {"train": 80, "val": 20, "test": 40}
    stages["train"](params, features_dir=feats, model_dir=models, live_dir=live, checkpoint=tmp_path / "ck.pt")
    stages["evaluate"](params, features_dir=feats, model_dir=models, metrics_file=metrics, predictions_file=preds,
                       cache_dir=tmp_path / "cache")
    result = json.loads(metrics.read_text())
    assert set(result["baselines"]) == {"majority", "tfidf_logreg", "embedding_logreg"}
    assert result["baselines"]["majority"]["macro_f1"] < 0.5 and "f1" in result["finetuned"]
    assert result["baselines"]["tfidf_logreg"]["accuracy"] > 0.9  # the toy words are separable
    assert sum(sum(r.values()) for r in result["finetuned"]["confusion_matrix"].values()) == 40
    assert len(json.loads(preds.read_text())) == 40
    written = stages["plot"](params, raw_dir=raw, features_dir=feats, predictions_file=preds, live_dir=live,
                             plots_dir=tmp_path / "plots")
    assert {p.name for p in written} >= {"confusion.png", "predictions.png", "label_distribution.json",
                                         "word_clouds.png", "training_curves.png"}
    # the same params give the same metrics
    stages["evaluate"](params, features_dir=feats, model_dir=models, metrics_file=tmp_path / "again.json",
                       predictions_file=preds, cache_dir=tmp_path / "cache")
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["finetuned"] == result["finetuned"] and again["baselines"] == result["baselines"]


def test_a_split_with_a_missing_class_or_unknown_label_writes_nothing(tmp_path):
    one_class = {"train": pd.DataFrame({"text": ["a", "b"], "label": ["positive"] * 2}),
                 "test": pd.DataFrame({"text": ["c"], "label": ["negative"]})}
    with pytest.raises(UserError, match="only the class"):
        write_raw(tmp_path / "raw", one_class, ("negative", "positive"), {"source": "x"})
    odd = {"train": pd.DataFrame({"text": ["a", "b"], "label": ["positive", "meh"]}), "test": one_class["test"]}
    with pytest.raises(UserError, match="unknown label"):
        write_raw(tmp_path / "raw", odd, ("negative", "positive"), {"source": "x"})
    assert not any(tmp_path.iterdir())
