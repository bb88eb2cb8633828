"""cifar10's accuracy against training cost: which recipe is the cheapest that beats the pixel SVM.

Each recipe is a run of cifar10's own train and evaluate stages (``python -m xlalab.cifar10.train
--params <file>``) with params.yaml's cifar10 section and these overrides: the image size the model
resizes to, what trains (the head on a frozen backbone, the head and the backbone's last stages
(``train.unfreeze_blocks``), or everything) and, where stated, fewer epochs. Every recipe scores on
the same 1,000 test digits against the same baselines (evaluate's verdict, 95 % bootstrap
intervals). The measurements are merged into ``docs/cifar10_frontier.json``, which cifar10's plot
stage draws as ``plots/cifar10/figures/frontier.png`` (``xlalab/cifar10/frontier.py``).

The cost is the train stage's CPU seconds (user + system, of the stage's process), at one torch
thread: on a CPU shared with other jobs, wall time says more about the other jobs than about the
recipe, and one thread spends no time waiting for a second one that the scheduler has parked. On an
idle 2-core machine the stage's wall time at the default two threads is at most this. Wall seconds
and the load average are recorded beside it.

    PYTHONPATH=src python -m xlalab.cifar10.download                 # once
    PYTHONPATH=src python -m xlalab.cifar10.featurize                # once
    nice -n 10 python bench/cifar10_frontier.py frozen_32 last2_32   # one recipe after another
    python bench/cifar10_frontier.py --list

It overwrites the worktree's models/cifar10, metrics/cifar10.json and data/cifar10/predictions.csv
(``dvc repro cifar10`` or ``git checkout metrics`` puts them back).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "cifar10_frontier.json"
SIZES = (32, 64, 96)
# What trains: (freeze_backbone, unfreeze_blocks), and how the record names it.
MODES = {
    "frozen": (True, 0, "head only (frozen backbone)"),
    "last2": (True, 2, "head + the backbone's last 2 stages"),
    "last3": (True, 3, "head + the backbone's last 3 stages"),
    "full": (False, 0, "everything (fine-tuned)"),
}
RECIPES = {f"{mode}_{size}": (mode, size) for mode in MODES for size in SIZES}


def cpu_seconds_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_stage(stage: str, params_file: Path) -> tuple[float, float]:
    """Run one cifar10 stage as its own process; its (wall, CPU) seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PJRT_DEVICE": "CPU"}
    cpu, start = cpu_seconds_of_children(), time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", f"xlalab.cifar10.{stage}", "--params", str(params_file), "-q"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return time.perf_counter() - start, cpu_seconds_of_children() - cpu


def repo_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def recipe_params(name: str, epochs: int | None, seed: int | None) -> dict:
    mode, size = RECIPES[name]
    freeze, blocks, _ = MODES[mode]
    params = repo_params()
    if seed is not None:
        params["cifar10"]["seed"] = seed
    train = params["cifar10"]["train"]
    train.update(image_size=size, freeze_backbone=freeze, unfreeze_blocks=blocks)
    if epochs is not None:
        train["epochs"] = epochs
    params["runtime"]["cpu_threads"] = 1
    return params


def measure(name: str, epochs: int | None, seed: int | None) -> dict:
    """One recipe's train and evaluate stages; with another ``seed`` than params.yaml's, download
    and featurize first, as ``xlalab seeds`` does (the seed re-draws the validation and test rows
    too)."""
    params = recipe_params(name, epochs, seed)
    mode, size = RECIPES[name]
    with tempfile.TemporaryDirectory() as tmp:
        params_file = Path(tmp) / "params.yaml"
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        if params["cifar10"]["seed"] != repo_params()["cifar10"]["seed"]:
            run_stage("download", params_file)
            run_stage("featurize", params_file)
        load_before = os.getloadavg()[0]
        train_wall, train_cpu = run_stage("train", params_file)
        load_after = os.getloadavg()[0]
        evaluate_wall, evaluate_cpu = run_stage("evaluate", params_file)
    metrics = json.loads((ROOT / "metrics" / "cifar10.json").read_text())
    verdict, svm = metrics["verdict"], metrics["verdict"]["baselines"]["svm_rbf"]
    train = params["cifar10"]["train"]
    return {
        "recipe": name,
        "seed": params["cifar10"]["seed"],
        "trains": MODES[mode][2],
        "image_size": size,
        "freeze_backbone": train["freeze_backbone"],
        "unfreeze_blocks": train["unfreeze_blocks"],
        "epochs": train["epochs"],
        "epochs_reduced": train["epochs"] < repo_params()["cifar10"]["train"]["epochs"],
        "best_epoch": metrics["train"]["best_epoch"],
        "best_val_accuracy": metrics["train"]["best_val_accuracy"],
        "model": metrics["model_name"],
        "test_accuracy": metrics["accuracy"],
        "interval": metrics["interval"],
        "svm_rbf": {"score": svm["score"], "interval": svm["interval"]},
        "strongest_baseline": verdict["best_baseline"],
        "difference": verdict["difference"],
        "difference_interval": verdict["difference_interval"],
        "verdict": verdict["verdict"],
        "train_cpu_seconds": round(train_cpu, 1),
        "train_wall_seconds": round(train_wall, 1),
        "evaluate_cpu_seconds": round(evaluate_cpu, 1),
        "load_average": [round(load_before, 1), round(load_after, 1)],
        "measured": datetime.date.today().isoformat(),
    }


def commit() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return head or "unknown"


def merge(record: dict) -> None:
    """Add or replace the recipe's record in OUT, keeping the others: under ``recipes`` at
    params.yaml's seed, under ``other_seeds`` at any other."""
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    main_seed = record["seed"] == repo_params()["cifar10"]["seed"]
    part = "recipes" if main_seed else "other_seeds"
    how = {
        "command": "nice -n 10 python bench/cifar10_frontier.py <recipe> ...",
        "what": (
            "each recipe is one run of cifar10's train and evaluate stages on the offline digits "
            "(3,600 train, 400 validation, 1,000 test), params.yaml's cifar10 section with the "
            "recipe's image_size, freeze_backbone, unfreeze_blocks and epochs, at its seed; "
            "accuracy and intervals from evaluate's verdict (1,000 bootstrap resamples of the test "
            "rows, paired difference against the strongest baseline); other_seeds: the same at "
            "other seeds (download and featurize re-run at that seed, as xlalab seeds does)"
        ),
        "cost": (
            "train_cpu_seconds: user + system CPU seconds of the train stage's process at one "
            "torch thread (runtime.cpu_threads: 1), on a 2-core machine shared with other jobs; "
            "wall seconds and the 1-minute load average before and after training beside it"
        ),
        "code": commit(),
    }
    key = (record["recipe"], record["seed"])
    records = [r for r in data.get(part, []) if (r["recipe"], r["seed"]) != key]
    order = {name: i for i, name in enumerate(RECIPES)}
    records = sorted([*records, record], key=lambda r: (order[r["recipe"]], r["seed"]))
    data = {"how": how, "recipes": [], "other_seeds": [], **data}  # other keys kept as they are
    data["how"], data[part] = how, records
    OUT.write_text(json.dumps(data, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", metavar="RECIPE", help="e.g. frozen_32 (see --list)")
    parser.add_argument("--epochs", type=int, help="fewer epochs than params.yaml (say so)")
    parser.add_argument("--seed", type=int, help="another seed than params.yaml's cifar10.seed")
    parser.add_argument("--list", action="store_true", help="the recipes and stop")
    args = parser.parse_args()
    if args.list or not args.recipes:
        print("recipes:", " ".join(RECIPES))
        return 0
    unknown = [name for name in args.recipes if name not in RECIPES]
    if unknown:
        print(f"error: unknown recipe {unknown[0]!r}; recipes: {' '.join(RECIPES)}")
        return 2
    if not (ROOT / "data" / "cifar10" / "features" / "meta.json").exists():
        print("error: no cifar10 features; run cifar10's download and featurize stages first")
        return 2
    for name in args.recipes:
        record = measure(name, args.epochs, args.seed)
        merge(record)
        print(
            f"{name}: accuracy {record['test_accuracy']} {record['interval']}, "
            f"vs svm_rbf {record['difference']:+} {record['difference_interval']} "
            f"({record['verdict']}), train {record['train_cpu_seconds']} CPU s "
            f"({record['train_wall_seconds']} s wall)",
            flush=True,
        )
    if args.seed is not None and args.seed != repo_params()["cifar10"]["seed"]:
        for stage in ("download", "featurize"):  # the worktree's data back at params.yaml's seed
            run_stage(stage, ROOT / "params.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
