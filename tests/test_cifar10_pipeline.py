"""The cifar10 stages end to end on a small slice of the offline data, and the CLI's handling of
bad params: one line, exit status 2, no outputs."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from xlalab.__main__ import main
from xlalab.cifar10 import stages

SMALL = {
    "runtime": {"backend": "accelerate", "bf16": False},
    "cifar10": {
        "seed": 3,
        "backbone": "efficientnet_lite0",
        "download": {"source": "offline", "path": None},
        "featurize": {"image_size": 32, "val_fraction": 0.2, "max_train": 400},
        "train": {"pretrained": True, "freeze_backbone": True,
                  "augment_crop": True, "augment_flip": False, "epochs": 2, "batch_size": 32, "lr": 0.005,
                  "weight_decay": 0.0, "optimizer": "adamw", "scheduler": "cosine", "warmup_fraction": 0.0,
                  "grad_accum_steps": 1, "max_grad_norm": None, "patience": None},
        "evaluate": {"batch_size": 64, "top_confused_pairs": 3, "top_confident_mistakes": 5},
        "plot": {"samples": 12},
    },
}


def run_cli(tmp_path: Path, params: dict, stage: str, capsys) -> tuple[int, str]:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    code = main(["cifar10", stage])
    return code, capsys.readouterr().err


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "params.yaml")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """download -> featurize -> train -> evaluate -> plot, run through the stage functions."""
    root = tmp_path_factory.mktemp("cifar10")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for name in ("download", "featurize", "train", "evaluate", "plot"):
            stages.STAGES[name](copy.deepcopy(SMALL))
    return root


def test_offline_chain_beats_the_majority_baseline(chain):
    metrics = json.loads((chain / "metrics/cifar10.json").read_text())
    majority = metrics["baseline"]["majority_class"]["accuracy"]
    assert metrics["accuracy"] > majority + 0.3, metrics
    assert metrics["data"]["source"] == "offline"
    assert metrics["runtime"]["backend"] == "accelerate" and metrics["runtime"]["device_type"] == "cpu"
    assert set(metrics["per_class_accuracy"]) == {str(d) for d in range(10)}
    pairs = metrics["most_confused_pairs"]
    assert all(p["actual"] != p["predicted"] for p in pairs)
    assert [p["count"] for p in pairs] == sorted((p["count"] for p in pairs), reverse=True)
    mistakes = metrics["most_confident_mistakes"]
    assert [m["confidence"] for m in mistakes] == sorted((m["confidence"] for m in mistakes), reverse=True)


def test_confusion_plot_data_has_one_row_per_test_image(chain):
    rows = json.loads((chain / "plots/cifar10/confusion.json").read_text())
    metrics = json.loads((chain / "metrics/cifar10.json").read_text())
    assert len(rows) == metrics["test_examples"]
    assert sum(r["actual"] == r["predicted"] for r in rows) / len(rows) == pytest.approx(metrics["accuracy"])


def test_plot_stage_draws_readable_images(chain):
    for name in ("confusion.png", "training_curves.png", "sample_predictions.png"):
        with Image.open(chain / "plots/cifar10/images" / name) as im:
            assert im.format == "PNG" and min(im.size) > 200


def test_training_logged_every_epoch_and_finished_checkpoint_is_removed(chain):
    loss = (chain / "plots/cifar10/train/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert len(loss) == 1 + SMALL["cifar10"]["train"]["epochs"]
    assert not (chain / "checkpoints/cifar10/last.pt").exists()


def test_same_params_give_the_same_metrics(chain, tmp_path):
    again = tmp_path / "again"
    stages.train(copy.deepcopy(SMALL), features=chain / "data/cifar10/features", out=again / "model",
                 live_dir=again / "live", checkpoint=again / "ckpt.pt")
    stages.evaluate(copy.deepcopy(SMALL), features=chain / "data/cifar10/features", model_dir=again / "model",
                    raw=chain / "data/cifar10/raw", metrics=again / "m.json", predictions=again / "p.npz",
                    confusion_data=again / "c.json")
    first = json.loads((chain / "metrics/cifar10.json").read_text())
    second = json.loads((again / "m.json").read_text())
    for m in (first, second):
        m["train"].pop("samples_per_sec")
    assert first == second


@pytest.mark.parametrize("stage, key, value, message", [
    ("train", "backbone", "resnet9000", "`cifar10.backbone` is 'resnet9000'; choose one of"),
    ("featurize", "image_size", -32, "`cifar10.featurize.image_size` is -32; it must be at least 8"),
    ("train", "epochs", 0, "`cifar10.train.epochs` is 0; it must be at least 1"),
    ("download", "source", "ftp", "`cifar10.download.source` is 'ftp'; choose one of"),
])
def test_nonsense_params_give_one_line_and_no_outputs(tmp_path, monkeypatch, capsys, stage, key, value, message):
    monkeypatch.chdir(tmp_path)
    params = copy.deepcopy(SMALL)
    target = params["cifar10"] if key == "backbone" else params["cifar10"][stage]
    target[key] = value
    code, err = run_cli(tmp_path, params, stage, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: cifar10 {stage}: ") and message in err
    assert files_under(tmp_path) == []


def test_missing_input_names_the_stage_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(tmp_path, SMALL, "train", capsys)
    assert code == 2 and "run `python -m xlalab cifar10 featurize`" in err
    assert files_under(tmp_path) == []
