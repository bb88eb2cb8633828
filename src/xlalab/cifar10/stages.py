"""cifar10 stages: download -> featurize -> train -> evaluate -> plot.

Each stage is a plain function of (params, input paths) -> output paths; dvc.yaml runs them
through ``python -m xlalab cifar10 <stage>`` with the default paths below.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core import plots as P
from ..core.errors import UserError
from ..core.io import atomic_path, fingerprint, read_json, require_file, write_json
from ..core.loop import Task, TrainConfig, fit, predict
from ..core.metrics import classification_report, confusion, confusion_rows, majority_baseline
from ..core.params import get, section
from ..core.runtime import make_backend
from . import data
from .figures import sample_grid
from .model import BACKBONES, NORMALISATION, TransferClassifier, augment

RAW = Path("data/cifar10/raw")
FEATURES = Path("data/cifar10/features")
MODEL = Path("models/cifar10")
LIVE = Path("plots/cifar10/train")
CHECKPOINT = Path("checkpoints/cifar10/last.pt")
METRICS = Path("metrics/cifar10.json")
PREDICTIONS = Path("data/cifar10/predictions.npz")
CONFUSION = Path("plots/cifar10/confusion.json")
IMAGES = Path("plots/cifar10/images")


def _seed(params: dict) -> int:
    return get(section(params, "cifar10"), "seed", int, "cifar10", min=0)


def _backbone(params: dict) -> str:
    return get(section(params, "cifar10"), "backbone", str, "cifar10", choices=BACKBONES)


def download(params: dict, *, out: Path = RAW) -> list[Path]:
    p = section(params, "cifar10", "download")
    source = get(p, "source", str, "cifar10.download", choices=data.SOURCES)
    path = get(p, "path", str, "cifar10.download", allow_none=True)
    return [data.download(source, path, out, seed=_seed(params))]


def featurize(params: dict, *, raw: Path = RAW, out: Path = FEATURES) -> list[Path]:
    p = section(params, "cifar10", "featurize")
    where = "cifar10.featurize"
    mean, std = NORMALISATION[_backbone(params)]
    options = dict(image_size=get(p, "image_size", int, where, min=8, max=512),
                   val_fraction=get(p, "val_fraction", float, where, min=0.01, max=0.5),
                   max_train=get(p, "max_train", int, where, min=10, allow_none=True),
                   mean=mean, std=std, seed=_seed(params))
    return [data.featurize(require_file(raw, "python -m xlalab cifar10 download"), out, **options)]


def _load_split(features: Path, split: str) -> dict[str, torch.Tensor]:
    path = require_file(features / f"{split}.pt", "python -m xlalab cifar10 featurize")
    return torch.load(path, map_location="cpu", weights_only=True)


def _task(crop: bool, flip: bool) -> Task:
    return Task(loss=lambda out, b: torch.nn.functional.cross_entropy(out, b["y"], reduction="none"),
                metrics={"accuracy": lambda out, b: (out.argmax(-1) == b["y"]).float()},
                monitor="accuracy", mode="max", transform=augment(crop, flip))


def _model_options(params: dict, t: dict) -> dict:
    where = "cifar10.train"
    return {"backbone": _backbone(params),
            "pretrained": get(t, "pretrained", bool, where),
            "freeze_backbone": get(t, "freeze_backbone", bool, where)}


def train(params: dict, *, features: Path = FEATURES, out: Path = MODEL, live_dir: Path = LIVE,
          checkpoint: Path = CHECKPOINT) -> list[Path]:
    t = section(params, "cifar10", "train")
    where = "cifar10.train"
    options = _model_options(params, t)
    crop, flip = get(t, "augment_crop", bool, where), get(t, "augment_flip", bool, where)
    cfg = TrainConfig.from_params(t, where, seed=_seed(params))
    cfg.eval_batch_size = cfg.batch_size
    meta = read_json(require_file(features / "meta.json", "python -m xlalab cifar10 featurize"))
    train_split, val_split = _load_split(features, "train"), _load_split(features, "val")
    backend = make_backend(section(params, "runtime"))

    backend.seed(cfg.seed)  # the new head's initial weights
    model = TransferClassifier(num_classes=len(meta["classes"]), **options)
    result = fit(model, train_split, val_split, _task(crop, flip), cfg, backend, live_dir=live_dir,
                 checkpoint=checkpoint, desc="cifar10",
                 fingerprint=fingerprint(t, options, _seed(params), files=(features / "train.pt", features / "val.pt")))
    if backend.is_main:
        with atomic_path(out, is_dir=True) as tmp:
            torch.save({"state_dict": result.best_state, "options": options, "classes": meta["classes"]},
                       tmp / "model.pt")
            write_json(tmp / "train.json", {"best_epoch": result.best_epoch, "epochs_run": len(result.history),
                                            "stopped_early": result.stopped_early, "best": result.best,
                                            "history": result.history, "runtime": backend.describe()})
        checkpoint.unlink(missing_ok=True)  # finished: nothing left to resume
    return [out, live_dir]


def _load_model(model_dir: Path) -> tuple[TransferClassifier, dict, dict]:
    saved = torch.load(require_file(model_dir / "model.pt", "python -m xlalab cifar10 train"),
                       map_location="cpu", weights_only=False)
    # pretrained=False: the trained weights replace whatever the backbone started from.
    model = TransferClassifier(num_classes=len(saved["classes"]),
                               **{**saved["options"], "pretrained": False})
    model.load_state_dict(saved["state_dict"])
    return model, saved, read_json(model_dir / "train.json")


def evaluate(params: dict, *, features: Path = FEATURES, model_dir: Path = MODEL, raw: Path = RAW,
             metrics: Path = METRICS, predictions: Path = PREDICTIONS, confusion_data: Path = CONFUSION) -> list[Path]:
    e = section(params, "cifar10", "evaluate")
    where = "cifar10.evaluate"
    batch_size = get(e, "batch_size", int, where, min=1)
    top_pairs = get(e, "top_confused_pairs", int, where, min=1)
    top_mistakes = get(e, "top_confident_mistakes", int, where, min=1)
    test, train_y = _load_split(features, "test"), _load_split(features, "train")["y"]
    model, saved, train_summary = _load_model(model_dir)
    classes = saved["classes"]
    backend = make_backend(section(params, "runtime"))

    logits = predict(model, test, backend, batch_size, desc="cifar10 evaluate")
    probs = torch.softmax(logits, -1).numpy()
    y_true, y_pred = test["y"].numpy(), probs.argmax(-1)
    report = classification_report(y_true, y_pred, classes)
    cm = confusion(y_true, y_pred, len(classes))
    card = read_json(raw / "card.json")

    off_diagonal = [(int(cm[i, j]), i, j) for i in range(len(classes)) for j in range(len(classes)) if i != j]
    pairs = [{"actual": classes[i], "predicted": classes[j], "count": n, "share_of_actual": n / max(1, cm[i].sum())}
             for n, i, j in sorted(off_diagonal, reverse=True)[:top_pairs] if n > 0]
    wrong = np.flatnonzero(y_pred != y_true)
    confident = wrong[np.argsort(-probs[wrong, y_pred[wrong]], kind="stable")][:top_mistakes]
    mistakes = [{"test_index": int(i), "actual": classes[y_true[i]], "predicted": classes[y_pred[i]],
                 "confidence": float(probs[i, y_pred[i]])} for i in confident]

    summary = {
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "test_examples": int(len(y_true)),
        "baseline": {"majority_class": majority_baseline(train_y.numpy(), y_true, classes)},
        "per_class_accuracy": {c: v["recall"] for c, v in report["per_class"].items()},
        "most_confused_pairs": pairs,
        "most_confident_mistakes": mistakes,
        "train": {k: train_summary[k] for k in ("best_epoch", "epochs_run", "stopped_early")}
        | {"best_val_accuracy": train_summary["best"]["val/accuracy"],
           "samples_per_sec": float(np.mean([h["samples_per_sec"] for h in train_summary["history"]]))},
        "model": saved["options"],
        "data": {k: card.get(k) for k in ("source", "description", "note")},
        "runtime": backend.describe(),
    }
    with atomic_path(predictions) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, probs=probs.astype(np.float32), y_true=y_true, classes=np.array(classes))
    P.write_rows(confusion_data, confusion_rows(y_true, y_pred, classes))
    write_json(metrics, summary)
    return [metrics, confusion_data, predictions]


def plot(params: dict, *, features: Path = FEATURES, predictions: Path = PREDICTIONS, live_dir: Path = LIVE,
         out: Path = IMAGES) -> list[Path]:
    p = section(params, "cifar10", "plot")
    n_samples = get(p, "samples", int, "cifar10.plot", min=1, max=100)
    saved = np.load(require_file(predictions, "python -m xlalab cifar10 evaluate"))
    probs, y_true, classes = saved["probs"], saved["y_true"], [str(c) for c in saved["classes"]]
    y_pred = probs.argmax(-1)
    images = _load_split(features, "test")["x"]
    if len(images) != len(y_true):
        raise UserError(f"{predictions} has {len(y_true)} rows but the test split has {len(images)}; "
                        "re-run evaluate (dvc repro)")
    with atomic_path(out, is_dir=True) as tmp:
        cm = confusion(y_true, y_pred, len(classes))
        P.save_figure(P.confusion_figure(cm, classes, "cifar10: test confusion matrix"), tmp / "confusion.png")
        P.save_figure(P.training_curves_figure(P.read_live_history(live_dir), "cifar10 training"),
                      tmp / "training_curves.png")
        P.save_figure(sample_grid(images, y_true, probs, classes, n_samples, _seed(params)),
                      tmp / "sample_predictions.png")
    return [out]


STAGES = {"download": download, "featurize": featurize, "train": train, "evaluate": evaluate, "plot": plot}
