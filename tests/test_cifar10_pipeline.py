"""The cifar10 stages end to end on a small slice of the offline data, the CLI's handling of bad
params and bad model files (one line, exit status 2, nothing written), and training on XLA."""

from __future__ import annotations

import copy
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from xlalab.cli import main
from xlalab.core.runner import run_stage

SMALL = {
    "runtime": {"backend": "accelerate", "bf16": False, "cpu_threads": None, "processes": 1},
    "cifar10": {
        "seed": 3,
        "backbone": "efficientnet_lite0",
        "download": {"source": "offline", "path": None},
        "featurize": {"image_size": 32, "val_fraction": 0.2, "max_train": 400},
        "train": {
            "pretrained": True,
            "freeze_backbone": True,
            "augment_crop": True,
            "augment_flip": False,
            "epochs": 2,
            "batch_size": 32,
            "lr": 0.005,
            "weight_decay": 0.0,
            "optimizer": "adamw",
            "scheduler": "cosine",
            "warmup_fraction": 0.0,
            "grad_accum_steps": 1,
            "max_grad_norm": None,
            "patience": None,
            "eval_batch_size": None,
        },
        "evaluate": {"batch_size": 64, "top_confused_pairs": 3, "top_confident_mistakes": 5},
        "plot": {"samples": 12},
    },
}
STAGES = ("download", "featurize", "train", "evaluate", "plot")
REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
SRC = REPO_PARAMS.parent / "src"


def run_cli(tmp_path: Path, params: dict, stage: str, capsys) -> tuple[int, str]:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    capsys.readouterr()
    code = main(["cifar10", stage])
    return code, capsys.readouterr().err


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "params.yaml")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """download -> featurize -> train -> evaluate -> plot, as `python -m xlalab cifar10 <stage>`
    runs them."""
    root = tmp_path_factory.mktemp("cifar10")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for name in STAGES:
            run_stage("cifar10", name, copy.deepcopy(SMALL))
    return root


def test_offline_chain_beats_the_majority_baseline(chain):
    metrics = json.loads((chain / "metrics/cifar10.json").read_text())
    majority = metrics["baselines"]["majority_class"]["accuracy"]
    assert majority == pytest.approx(0.1)  # the offline test split is balanced
    assert metrics["accuracy"] > majority + 0.3, metrics
    verdict = metrics["verdict"]
    assert verdict["beats_baseline"] and verdict["best_baseline"] == "majority_class"
    assert verdict["score"] == metrics["accuracy"] and "beats it" in verdict["line"]
    assert metrics["data"]["source"] == "offline"
    assert (
        metrics["runtime"]["backend"] == "accelerate" and metrics["runtime"]["device_type"] == "cpu"
    )
    assert set(metrics["per_class"]) == {str(d) for d in range(10)}
    pairs = metrics["most_confused_pairs"]
    assert all(p["actual"] != p["predicted"] for p in pairs)
    assert [p["count"] for p in pairs] == sorted((p["count"] for p in pairs), reverse=True)
    mistakes = metrics["most_confident_mistakes"]
    assert [m["confidence"] for m in mistakes] == sorted(
        (m["confidence"] for m in mistakes), reverse=True
    )


def test_predictions_have_one_row_per_test_image(chain):
    table = pd.read_csv(
        chain / "data/cifar10/predictions.csv", dtype={"actual": str, "predicted": str}
    )
    metrics = json.loads((chain / "metrics/cifar10.json").read_text())
    classes = [str(d) for d in range(10)]
    assert list(table.columns) == [
        "test_index",
        "actual",
        "predicted",
        "confidence",
        *(f"prob_{c}" for c in classes),
    ]
    assert len(table) == metrics["test_examples"] == 1000
    probs = table[[f"prob_{c}" for c in classes]]
    assert probs.sum(axis=1).to_numpy() == pytest.approx(1, abs=1e-4)
    assert (probs.idxmax(axis=1).str.removeprefix("prob_") == table["predicted"]).all()
    assert table["confidence"].to_numpy() == pytest.approx(probs.max(axis=1).to_numpy())
    assert (table["actual"] == table["predicted"]).mean() == pytest.approx(metrics["accuracy"])


def test_confusion_plot_data_has_one_row_per_test_image(chain):
    rows = json.loads((chain / "plots/cifar10/figures/confusion.json").read_text())
    metrics = json.loads((chain / "metrics/cifar10.json").read_text())
    assert len(rows) == metrics["test_examples"]
    assert sum(r["actual"] == r["predicted"] for r in rows) / len(rows) == pytest.approx(
        metrics["accuracy"]
    )


def test_plot_stage_draws_readable_images(chain):
    for name in ("confusion.png", "training_curves.png", "sample_predictions.png"):
        with Image.open(chain / "plots/cifar10/figures" / name) as im:
            assert im.format == "PNG" and min(im.size) > 200


def test_summary_rebuilds_the_model_and_checkpoint_is_removed(chain):
    summary = json.loads((chain / "models/cifar10/summary.json").read_text())
    entry = summary["models"]["cifar10"]
    assert entry["config"]["options"] == {
        "backbone": "efficientnet_lite0",
        "pretrained": True,
        "freeze_backbone": True,
    }
    assert entry["config"]["classes"] == [str(d) for d in range(10)]
    assert entry["epochs_run"] == len(entry["history"]) == SMALL["cifar10"]["train"]["epochs"]
    assert (chain / "models/cifar10/cifar10.safetensors").read_bytes()[
        8:9
    ] == b"{"  # a safetensors header
    loss = (chain / "plots/cifar10/train/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert len(loss) == 1 + SMALL["cifar10"]["train"]["epochs"]
    assert not list((chain / "checkpoints").rglob("*.ckpt"))


def test_same_params_give_the_same_metrics(chain, tmp_path, monkeypatch):
    shutil.copytree(chain / "data/cifar10/raw", tmp_path / "data/cifar10/raw")
    shutil.copytree(chain / "data/cifar10/features", tmp_path / "data/cifar10/features")
    monkeypatch.chdir(tmp_path)
    for name in ("train", "evaluate"):
        run_stage("cifar10", name, copy.deepcopy(SMALL))
    first = json.loads((chain / "metrics/cifar10.json").read_text())
    second = json.loads((tmp_path / "metrics/cifar10.json").read_text())
    assert "samples_per_sec" not in first["train"]  # a speed: in timing/cifar10.json
    assert first == second


@pytest.mark.parametrize(
    "stage, key, value, message",
    [
        (
            "train",
            "backbone",
            "resnet9000",
            "`cifar10.backbone` must be 'efficientnet_lite0', 'resnet18' or 'resnet50'",
        ),
        (
            "featurize",
            "image_size",
            -32,
            "`cifar10.featurize.image_size` must be greater than or equal to 8",
        ),
        (
            "featurize",
            "image_size",
            4096,
            "`cifar10.featurize.image_size` must be less than or equal to 512",
        ),
        (
            "featurize",
            "max_train",
            5,
            "`cifar10.featurize.max_train` must be greater than or equal to 10",
        ),
        (
            "featurize",
            "val_fraction",
            1.0,
            "`cifar10.featurize.val_fraction` must be less than or equal to 0.5",
        ),
        ("train", "epochs", 0, "`cifar10.train.epochs` must be greater than or equal to 1"),
        ("train", "epoch", 3, "`cifar10.train.epoch`, which no stage reads"),
        (
            "download",
            "source",
            "ftp",
            "`cifar10.download.source` must be 'offline', 'torchvision', 'kaggle' or 'local'",
        ),
        ("plot", "samples", 0, "`cifar10.plot.samples` must be greater than or equal to 1"),
    ],
)
def test_nonsense_params_give_one_line_and_no_outputs(
    tmp_path, monkeypatch, capsys, stage, key, value, message
):
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
    assert code == 2 and "run `dvc repro cifar10-featurize`" in err
    assert files_under(tmp_path) == []


class _Exploit:
    """Unpickling this writes a marker file: what a planted weights file would do to torch.load."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def test_a_planted_pickle_in_place_of_the_weights_never_runs(chain, tmp_path, monkeypatch, capsys):
    for part in ("data/cifar10/raw", "data/cifar10/features", "models/cifar10"):
        shutil.copytree(chain / part, tmp_path / part)
    marker = tmp_path / "pwned"
    weights = tmp_path / "models/cifar10/cifar10.safetensors"
    weights.write_bytes(pickle.dumps({"state_dict": _Exploit(marker)}))
    pickle.loads(weights.read_bytes())  # the planted file does run code when unpickled...
    assert marker.exists()
    marker.unlink()
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(tmp_path, SMALL, "evaluate", capsys)
    assert code == 2  # ...but evaluate only reads safetensors
    assert err.count("\n") == 1 and "cifar10.safetensors is not a readable safetensors file" in err
    assert not marker.exists()
    written = [
        p
        for p in files_under(tmp_path)
        if not p.is_relative_to(tmp_path / "data/cifar10/raw")
        and not p.is_relative_to(tmp_path / "data/cifar10/features")
        and not p.is_relative_to(tmp_path / "models")
    ]
    assert written == []  # no metrics, no predictions, no temporary siblings


@pytest.fixture(scope="module")
def xla_run(chain, tmp_path_factory):
    """The repo's own cifar10.train settings (weight decay, schedule, warm-up, ...) on one XLA
    device,
    only the epochs, batch size and data reduced: a tiny slice of 100 training and 20 validation
    images."""
    repo = yaml.safe_load(REPO_PARAMS.read_text())
    params = copy.deepcopy(SMALL)
    params["runtime"] = {"backend": "xla", "bf16": False, "cpu_threads": None, "processes": 1}
    params["cifar10"]["backbone"] = repo["cifar10"]["backbone"]
    params["cifar10"]["train"] = {**repo["cifar10"]["train"], "epochs": 3, "batch_size": 32}
    params["cifar10"]["featurize"] = {
        **SMALL["cifar10"]["featurize"],
        "max_train": 120,
        "val_fraction": 1 / 6,
    }
    root = tmp_path_factory.mktemp("cifar10-xla")
    shutil.copytree(chain / "data/cifar10/raw", root / "data/cifar10/raw")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        run_stage("cifar10", "featurize", params)
        run_stage("cifar10", "train", params)
    return root, params, json.loads((root / "models/cifar10/summary.json").read_text())


def test_xla_training_with_the_default_optimizer_compiles_only_in_the_first_epoch(xla_run):
    _, _, summary = xla_run
    assert summary["runtime"]["backend"] == "xla"
    counts = summary["models"]["cifar10"]["compile_counts"]
    assert len(counts) == 3 and counts[0] > 0
    assert counts[1:] == [counts[0]] * 2, counts


@pytest.mark.slow
def test_spmd_over_four_xla_devices_trains_like_one_device(xla_run, tmp_path):
    """The same run through the CLI with four XLA CPU devices: XlaBackend shards every batch over a
    1-D SPMD mesh (it must start in a fresh process, before XLA computes anything)."""
    one_root, params, one = xla_run
    shutil.copytree(one_root / "data", tmp_path / "data")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(PJRT_DEVICE="CPU", CPU_NUM_DEVICES="4", PYTHONPATH=str(SRC), USE_TORCH_XLA="0")
    proc = subprocess.run(
        [sys.executable, "-m", "xlalab", "cifar10", "train"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    spmd = json.loads((tmp_path / "models/cifar10/summary.json").read_text())
    assert spmd["runtime"]["device_count"] == 4 and spmd["runtime"]["spmd"] is True
    counts = spmd["models"]["cifar10"]["compile_counts"]
    assert counts[1:] == [counts[0]] * 2, f"SPMD recompiled after the first epoch: {counts}"
    for a, b in zip(spmd["models"]["cifar10"]["history"], one["models"]["cifar10"]["history"]):
        for key in ("train/loss", "val/loss", "val/accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-3), (key, a, b)


def test_a_failed_resnet_download_names_the_key_to_change(monkeypatch):
    import urllib.error

    import torchvision

    from xlalab.cifar10.model import TransferClassifier
    from xlalab.core.errors import UserError

    def offline(weights=None):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision.models, "resnet18", offline)
    with pytest.raises(UserError, match="could not download the resnet18 ImageNet weights") as err:
        TransferClassifier("resnet18", num_classes=10, pretrained=True)
    assert "set cifar10.backbone: efficientnet_lite0" in str(err.value)
    yaml.safe_load(REPO_PARAMS.read_text())["cifar10"]["backbone"]  # the key it names exists
