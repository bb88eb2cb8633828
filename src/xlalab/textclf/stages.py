"""The five stages of a text-classification project, written once for every ``TextProject``.

download   source -> data/<p>/raw/{train,test}.parquet + card.json
featurize  raw -> data/<p>/features/ (tokens at a fixed length, the texts, meta)
train      features -> models/<p>/ (weights, tokenizer, training.json), DVCLive in plots/<p>/train
evaluate   model + features -> metrics/<p>.json (model beside the baselines), plots/<p>/test_predictions.json
plot       everything -> plots/<p>/*.json and *.png
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from ..core import metrics as core_metrics
from ..core import plots as core_plots
from ..core.errors import UserError
from ..core.io import atomic_path, fingerprint, read_json, write_json
from ..core.loop import TrainConfig, fit, predict
from ..core.params import get, section
from ..core.runtime import make_backend
from . import baselines, corpus, features, figures
from . import model as textmodel

# (download params, seed) -> ({"train": df, "test": df} with text and label columns, card fields)
Downloader = Callable[[dict[str, Any], int], tuple[dict[str, pd.DataFrame], dict[str, Any]]]


@dataclass(frozen=True)
class TextProject:
    name: str
    labels: tuple[str, ...]  # class names in id order
    download: Downloader
    positive: str | None = None  # binary projects also report F1 of this class
    word_clouds: bool = False


def _seed(p: dict[str, Any], where: str) -> int:
    return get(p, "seed", int, where, min=0)


def _limit(p: dict[str, Any], key: str, where: str) -> int | None:
    return get(p, key, int, where, min=1, allow_none=True)


# --- download -------------------------------------------------------------------------------------------
def run_download(project: TextProject, params: dict, raw_dir: Path) -> list[Path]:
    p = section(params, project.name)
    splits, card = project.download(section(p, "download"), _seed(p, project.name))
    return corpus.write_raw(raw_dir, splits, project.labels, card)


# --- featurize ------------------------------------------------------------------------------------------
def run_featurize(project: TextProject, params: dict, raw_dir: Path, features_dir: Path) -> list[Path]:
    where = f"{project.name}.featurize"
    p = section(params, project.name)
    seed, model_name = _seed(p, project.name), get(p, "model", str, project.name)
    f = section(p, "featurize")
    max_length = get(f, "max_length", int, where, min=8, max=512)
    val_fraction = get(f, "val_fraction", float, where, min=0.01, max=0.5)
    limits = {k: _limit(f, k, where) for k in ("max_train", "max_val", "max_test")}
    raw, card = corpus.read_raw(raw_dir, project.labels)
    tokenizer = textmodel.load_tokenizer(model_name)
    splits = features.make_splits(raw["train"], raw["test"], val_fraction=val_fraction, seed=seed, **limits)
    start = time.perf_counter()
    tensors = features.build_features(tokenizer, splits, project.labels, max_length)
    truncated = {name: float((t["attention_mask"][:, -1] == 1).float().mean()) for name, t in tensors.items()}
    meta = {"model": model_name, "max_length": max_length, "labels": list(project.labels),
            "source": card.get("source"),
            "rows": {name: len(df) for name, df in splits.items()},
            "class_counts": {name: corpus.class_counts(df, project.labels) for name, df in splits.items()},
            "share_truncated": truncated, "tokenize_seconds": time.perf_counter() - start}
    return features.write_features(features_dir, tensors, splits, meta)


# --- train ----------------------------------------------------------------------------------------------
def run_train(project: TextProject, params: dict, features_dir: Path, model_dir: Path, live_dir: Path,
              checkpoint: Path) -> list[Path]:
    where = f"{project.name}.train"
    p = section(params, project.name)
    seed, model_name = _seed(p, project.name), get(p, "model", str, project.name)
    t = section(p, "train")
    cfg = TrainConfig.from_params(t, where, seed)
    cfg.eval_batch_size = get(t, "eval_batch_size", int, where, min=1)
    freeze = get(t, "freeze_layers", int, where, min=0)
    balance = get(t, "balance", str, where, choices=features.BALANCING)
    threshold = get(t, "imbalance_threshold", float, where, min=1.0)
    backend = make_backend(section(params, "runtime"))

    tensors, _, meta = features.read_features(features_dir)
    if meta.get("model") != model_name:
        raise UserError(f"{features_dir} was tokenised for model {meta.get('model')!r}, not {model_name!r}; "
                        "re-run the featurize stage")
    train, val, balance_info = features.balance_training(tensors["train"], tensors["val"], len(project.labels),
                                                         balance, threshold, seed)
    net = textmodel.load_classifier(model_name, project.labels, seed)
    trainable = textmodel.freeze_lower_layers(net, freeze)
    if backend.is_main:
        print(f"{project.name} train: {textmodel.describe(net)['parameters']:,} parameters, "
              f"{trainable or textmodel.describe(net)['parameters']:,} trainable; balance: {balance_info['method']} "
              f"(largest/smallest class {balance_info['imbalance_ratio']:.2f})", file=sys.stderr)
    stamp = fingerprint(t, model_name, seed, files=(features_dir / features.TOKENS_FILE,))
    start = time.perf_counter()
    result = fit(net, train, val, textmodel.classification_task(), cfg, backend, live_dir=live_dir,
                 checkpoint=checkpoint, fingerprint=stamp, desc=f"{project.name} train")
    seconds = time.perf_counter() - start
    if not backend.is_main:
        return []
    model = backend.unwrap(net)
    model.load_state_dict(result.best_state)
    tokenizer = textmodel.load_tokenizer(model_name)
    summary = {"model": model_name, **textmodel.describe(model), "frozen_layers": freeze,
               "balance": balance_info, "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
               "best": result.best, "history": result.history, "seconds": seconds,
               "samples_per_sec": float(np.mean([r["samples_per_sec"] for r in result.history])),
               "compile_counts": result.compile_counts, "runtime": backend.describe()}
    with atomic_path(model_dir, is_dir=True) as tmp:
        model.to("cpu").save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "training.json", summary)
    return [model_dir, live_dir]


# --- evaluate -------------------------------------------------------------------------------------------
def report(project: TextProject, y_true: np.ndarray, y_pred: np.ndarray, with_confusion: bool = False) -> dict:
    labels = list(project.labels)
    out = core_metrics.classification_report(y_true, y_pred, labels)
    if project.positive is not None:  # binary: F1 of the positive class is the headline
        out = {"f1": out["per_class"][project.positive]["f1"], **out}
    if with_confusion:
        cm = core_metrics.confusion(y_true, y_pred, len(labels))
        out["confusion_matrix"] = {a: {p: int(cm[i, j]) for j, p in enumerate(labels)} for i, a in enumerate(labels)}
    else:
        out.pop("per_class")
    return out


def frozen_embeddings(project: TextProject, model_name: str, tensors: dict, features_dir: Path, cache_dir: Path,
                      backend, batch_size: int) -> dict[str, torch.Tensor]:
    stamp = fingerprint(model_name, textmodel.resolve_model(model_name),
                        files=(features_dir / features.TOKENS_FILE,))

    def compute() -> dict[str, torch.Tensor]:
        encoder = textmodel.load_encoder(model_name)
        return {split: predict(encoder, {k: tensors[split][k] for k in textmodel.TOKEN_KEYS}, backend, batch_size,
                               forward=textmodel.mean_pooled, desc=f"{project.name} embeddings {split}")
                for split in ("train", "test")}

    return baselines.cached_embeddings(cache_dir / f"embeddings-{stamp}.pt", compute)


def run_evaluate(project: TextProject, params: dict, features_dir: Path, model_dir: Path, metrics_file: Path,
                 predictions_file: Path, cache_dir: Path) -> list[Path]:
    where = f"{project.name}.evaluate"
    p = section(params, project.name)
    seed, model_name = _seed(p, project.name), get(p, "model", str, project.name)
    e = section(p, "evaluate")
    batch_size = get(e, "batch_size", int, where, min=1)
    with_embeddings = get(e, "embedding_baseline", bool, where)
    backend = make_backend(section(params, "runtime"))
    tensors, texts, meta = features.read_features(features_dir)
    training = read_json(model_dir / "training.json")
    net = textmodel.load_trained(model_dir)

    test_inputs = {k: tensors["test"][k] for k in textmodel.TOKEN_KEYS}
    start = time.perf_counter()
    logits = predict(net, test_inputs, backend, batch_size, forward=textmodel.logits, desc=f"{project.name} test")
    predict_seconds = time.perf_counter() - start
    probs = torch.softmax(logits, -1).numpy()
    y_test, y_train = tensors["test"]["labels"].numpy(), tensors["train"]["labels"].numpy()
    y_pred = probs.argmax(-1)

    # Baselines see the same training rows as the model; balanced when the model was.
    balanced = training["balance"]["method"] != "none"
    n = len(project.labels)
    text_of = {s: texts.loc[texts["split"] == s, "text"].tolist() for s in ("train", "test")}
    scored = {"majority": baselines.majority(y_train, len(y_test), n)}
    scored["tfidf_logreg"], tfidf_info = baselines.tfidf_logreg(text_of["train"], y_train, text_of["test"],
                                                                balanced=balanced, seed=seed)
    if with_embeddings:
        emb = frozen_embeddings(project, model_name, tensors, features_dir, cache_dir, backend, batch_size)
        scored["embedding_logreg"] = baselines.embedding_logreg(emb["train"].numpy(), y_train, emb["test"].numpy(),
                                                                balanced=balanced, seed=seed)
    labels = list(project.labels)
    result = {
        "finetuned": report(project, y_test, y_pred, with_confusion=True),
        "baselines": {name: report(project, y_test, pred) for name, pred in scored.items()},
        "test_rows": len(y_test),
        "data": {"source": meta.get("source"), "rows": meta["rows"], "class_counts": meta["class_counts"],
                 "max_length": meta["max_length"], "share_truncated": meta["share_truncated"]},
        "model": {"name": model_name, "architecture": training["architecture"],
                  "parameters": training["parameters"], "trainable_parameters": training["trainable_parameters"],
                  "best_epoch": training["best_epoch"], "balance": training["balance"]["method"]},
        "speed": {"train_samples_per_sec": training["samples_per_sec"], "train_seconds": training["seconds"],
                  "predict_samples_per_sec": len(y_test) / predict_seconds},
        "baseline_notes": {"tfidf_logreg": f"uni+bigrams, English stop words removed, "
                                           f"{tfidf_info['vocabulary']} terms",
                           "embedding_logreg": f"mean-pooled frozen {model_name} embeddings"},
        "runtime": backend.describe(),
    }
    if not with_embeddings:
        result["baseline_notes"].pop("embedding_logreg")
    rows = [{"actual": labels[int(a)], "predicted": labels[int(b)], "confidence": float(probs[i, b])}
            for i, (a, b) in enumerate(zip(y_test, y_pred))]
    write_json(predictions_file, rows)
    write_json(metrics_file, result)
    return [metrics_file, predictions_file]


# --- plot -----------------------------------------------------------------------------------------------
def run_plot(project: TextProject, params: dict, raw_dir: Path, features_dir: Path, predictions_file: Path,
             live_dir: Path, plots_dir: Path) -> list[Path]:
    p = section(params, project.name)
    seed = _seed(p, project.name)
    top_k = get(section(p, "plot"), "top_terms", int, f"{project.name}.plot", min=5)
    labels, name = list(project.labels), project.name
    card = read_json(raw_dir / "card.json")
    _, texts, meta = features.read_features(features_dir)
    rows = read_json(predictions_file)
    if not rows:
        raise UserError(f"{predictions_file} holds no predictions; re-run the evaluate stage")

    dist = [{"split": f"source {s}", "label": lab, "count": card["counts"][s][lab]}
            for s in corpus.SPLITS for lab in labels]
    dist += [{"split": f"used {s}", "label": lab, "count": meta["class_counts"][s][lab]}
             for s in features.FEATURE_SPLITS for lab in labels]
    ids = {lab: i for i, lab in enumerate(labels)}
    y_true = np.array([ids[r["actual"]] for r in rows])
    y_pred = np.array([ids[r["predicted"]] for r in rows])
    confidence = np.array([r["confidence"] for r in rows])
    source = card.get("source", "")
    out = [core_plots.write_rows(plots_dir / "label_distribution.json", dist),
           core_plots.save_figure(figures.label_distribution_figure(dist, labels, f"{name}: classes ({source})"),
                                  plots_dir / "label_distribution.png"),
           core_plots.save_figure(figures.predictions_figure(y_true, y_pred, confidence, labels,
                                                             f"{name}: test predictions"),
                                  plots_dir / "predictions.png"),
           core_plots.save_figure(core_plots.confusion_figure(core_metrics.confusion(y_true, y_pred, len(labels)),
                                                              labels, f"{name}: fine-tuned model, test split"),
                                  plots_dir / "confusion.png")]
    history = core_plots.read_live_history(live_dir)
    if history:
        out.append(core_plots.save_figure(core_plots.training_curves_figure(history, f"{name}: training"),
                                          plots_dir / "training_curves.png"))
    if project.word_clouds:
        train = texts[texts["split"] == "train"]
        terms = figures.top_terms(train["text"].tolist(), train["label"].map(ids).to_numpy(), labels, top_k)
        out.append(core_plots.write_rows(plots_dir / "top_terms.json",
                                         [{"label": lab, "term": t, "tfidf": w} for lab, ts in terms.items()
                                          for t, w in ts]))
        out.append(core_plots.save_figure(figures.word_cloud_figure(terms, f"{name}: words by class (train)", seed),
                                          plots_dir / "word_clouds.png"))
    return out


def make_stages(project: TextProject) -> dict[str, Callable[..., list[Path]]]:
    """The STAGES table of a project, with its own paths as keyword defaults."""
    n = project.name
    raw, feats, models = Path(f"data/{n}/raw"), Path(f"data/{n}/features"), Path(f"models/{n}")
    plots, live = Path(f"plots/{n}"), Path(f"plots/{n}/train")
    preds, metrics_file = Path(f"plots/{n}/test_predictions.json"), Path(f"metrics/{n}.json")

    def download(params: dict, *, raw_dir: Path = raw) -> list[Path]:
        return run_download(project, params, raw_dir)

    def featurize(params: dict, *, raw_dir: Path = raw, features_dir: Path = feats) -> list[Path]:
        return run_featurize(project, params, raw_dir, features_dir)

    def train(params: dict, *, features_dir: Path = feats, model_dir: Path = models, live_dir: Path = live,
              checkpoint: Path = Path(f"checkpoints/{n}/last.pt")) -> list[Path]:
        return run_train(project, params, features_dir, model_dir, live_dir, checkpoint)

    def evaluate(params: dict, *, features_dir: Path = feats, model_dir: Path = models,
                 metrics_file: Path = metrics_file, predictions_file: Path = preds,
                 cache_dir: Path = Path(f"data/{n}/cache")) -> list[Path]:
        return run_evaluate(project, params, features_dir, model_dir, metrics_file, predictions_file, cache_dir)

    def plot(params: dict, *, raw_dir: Path = raw, features_dir: Path = feats, predictions_file: Path = preds,
             live_dir: Path = live, plots_dir: Path = plots) -> list[Path]:
        return run_plot(project, params, raw_dir, features_dir, predictions_file, live_dir, plots_dir)

    return {"download": download, "featurize": featurize, "train": train, "evaluate": evaluate, "plot": plot}
