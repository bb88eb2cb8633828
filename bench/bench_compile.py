"""`runtime.compile` measured: each project's model trained through the loop on the accelerate
backend, eager and then compiled (torch.compile with inductor, as Accelerate applies it), in one
run on this machine's CPU. Every model is the one its train stage builds from params.yaml, at the
batch size params.yaml gives it; the data are random tensors of the stage's shapes, small enough
that each fit takes seconds (sizes below).

Printed per project: the steady training speed (samples/s, mean of the epochs after the first)
eager and compiled and their ratio; the compile overhead in seconds (the compiled fit's wall time
less the eager fit's, less what the steady speeds account for: tracing and compiling the train and
eval graphs and any recompile); and the training samples after which compiling pays back its
overhead ("never" when compiled is not faster). Inductor's caches are emptied first, so every
compile is cold, as in a fresh stage process.

    nice python bench/bench_compile.py                  # every project, 3 epochs each, 1 thread
    nice python bench/bench_compile.py --projects lstm housing --epochs 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# a cold inductor cache: set before torch is imported
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="bench-compile-"))
os.environ.setdefault("USE_TORCH_XLA", "0")

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from xlalab.engine.batches import LENGTH
from xlalab.engine.loop import fit
from xlalab.engine.runtime import AccelerateBackend
from xlalab.engine.settings import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
# rows per fit: enough batches for a steady speed, few enough for a quick run
ROWS = {
    "cifar10": 512,
    "imdb": 512,
    "reviews": 512,
    "lstm": 2048,
    "housing": 1024,
    "traffic": 16384,
}


def loop(section: dict, epochs: int) -> TrainConfig:
    """The project's loop params, with ``epochs`` and without early stopping."""
    keys = TrainConfig.model_fields.keys() - {"seed"}
    return TrainConfig(**{k: section[k] for k in keys} | {"epochs": epochs, "patience": None})


def cifar10(epochs: int):
    from xlalab.cifar10.model import TransferClassifier, task

    p = PARAMS["cifar10"]
    t, n = p["train"], ROWS["cifar10"]
    data = {  # the offline digits as stored: uint8, 28 px, three channels
        "x": torch.randint(0, 256, (n, 3, 28, 28), dtype=torch.uint8),
        "y": torch.randint(0, 10, (n,)),
    }

    def model():
        return TransferClassifier(
            p["backbone"],
            10,
            t["image_size"],
            pretrained=t["pretrained"],
            freeze_backbone=t["freeze_backbone"],
            revision=p["revision"],
            unfreeze_blocks=t["unfreeze_blocks"],
        )

    return model, data, task(t["augment_crop"], t["augment_flip"]), loop(t, epochs)


def text(project: str, epochs: int):
    from xlalab.textclf import model as textmodel
    from xlalab.textclf import tokens

    p = PARAMS[project]
    t, n = p["train"], ROWS[project]
    classes = 2 if project == "imdb" else 3
    sizes = [24, 32, 40, 48]  # buckets: auto on the offline snippets (max_length 48)
    lengths = torch.randint(6, 49, (n,))
    positions = torch.arange(48)
    data = {
        "input_ids": torch.randint(1000, 20000, (n, 48), dtype=torch.int32),
        "attention_mask": positions[None, :] < lengths[:, None],
        "labels": torch.randint(0, classes, (n,)),
        "class_weight": torch.ones(n),
        LENGTH: lengths,
    }
    pretrained = textmodel.pretrained(p["model"], p["revision"])

    def model():
        net = textmodel.load_classifier(pretrained, [str(c) for c in range(classes)])
        textmodel.freeze_lower_layers(net, t["freeze_layers"])
        return net

    return model, data, textmodel.classification_task(tokens.buckets(sizes)), loop(t, epochs)


def lstm(epochs: int):
    from xlalab.lstm.model import build_model, forecast_task

    p = PARAMS["lstm"]
    t, n = p["train"], ROWS["lstm"]
    features = 9  # the default features: eight indicators, macd with its signal
    data = {"x": torch.randn(n, p["window"], features), "y": torch.randn(n)}
    config = {
        "cell": t["cell"],
        "n_features": features,
        "hidden": t["hidden"],
        "layers": t["layers"],
        "dropout": t["dropout"],
    }
    return (lambda: build_model(config)), data, forecast_task(t["loss"]), loop(t, epochs)


def housing(epochs: int):
    from xlalab.housing.model import PriceMlp, mlp_task

    m, n = PARAMS["housing"]["train"]["mlp"], ROWS["housing"]
    inputs = 300  # about what Kaggle's 79 columns become once one-hot encoded
    data = {"x": torch.randn(n, inputs), "y": torch.randn(n)}

    def model():
        return PriceMlp(inputs, m["hidden"], m["layers"], m["dropout"])

    return model, data, mlp_task(), loop(m["train"], epochs)


def traffic(epochs: int):
    from xlalab.traffic.model import Autoencoder, autoencoder_task

    t, n = PARAMS["traffic"]["train"], ROWS["traffic"]
    inputs = 122  # NSL-KDD's 41 columns with the categorical ones one-hot encoded
    data = {"x": torch.randn(n, inputs)}

    def model():
        return Autoencoder(inputs, t["hidden"], t["dropout"])

    return model, data, autoencoder_task(), loop(t, epochs)


PROJECTS = {
    "cifar10": cifar10,
    "imdb": lambda epochs: text("imdb", epochs),
    "reviews": lambda epochs: text("reviews", epochs),
    "lstm": lstm,
    "housing": housing,
    "traffic": traffic,
}


def timed_fit(build, data, task, cfg: TrainConfig, compile: bool) -> tuple[float, float]:
    """(wall seconds of the whole fit, steady samples/s over the epochs after the first)."""
    torch._dynamo.reset()
    backend = AccelerateBackend(compile=compile, cpu=True)
    backend.seed(0)
    model = build()
    start = time.perf_counter()
    result = fit(model, data, data, task, cfg, backend)
    wall = time.perf_counter() - start
    rates = [row["samples_per_sec"] for row in result.history[1:]]
    return wall, sum(rates) / len(rates)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--projects", nargs="*", default=list(PROJECTS), choices=list(PROJECTS))
    parser.add_argument("--epochs", type=int, default=3, help="per fit; at least 2")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared machine two threads' OpenMP barriers stall "
        "whenever another job holds a core, which swamps what compiling changes)",
    )
    parser.add_argument("--out", default="bench/results/bench_compile.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU", flush=True)
    rows = []
    for name in args.projects:
        build, data, task, cfg = PROJECTS[name](args.epochs)
        eager_wall, eager_rate = timed_fit(build, data, task, cfg, compile=False)
        compiled_wall, compiled_rate = timed_fit(build, data, task, cfg, compile=True)
        samples = args.epochs * len(next(iter(data.values())))
        steady_gain = samples / eager_rate - samples / compiled_rate  # seconds saved at speed
        overhead = compiled_wall - eager_wall + steady_gain
        saving = 1 / eager_rate - 1 / compiled_rate  # seconds saved per training sample
        row = {
            "project": name,
            "batch_size": cfg.batch_size,
            "rows": samples // args.epochs,
            "eager_samples_per_sec": round(eager_rate, 1),
            "compiled_samples_per_sec": round(compiled_rate, 1),
            "speed_ratio": round(compiled_rate / eager_rate, 3),
            "compile_overhead_seconds": round(overhead, 1),
            "eager_fit_seconds": round(eager_wall, 1),
            "compiled_fit_seconds": round(compiled_wall, 1),
            "break_even_samples": round(overhead / saving) if saving > 0 else None,
        }
        rows.append(row)
        print(
            f"{name}: eager {eager_rate:,.0f} samples/s, compiled {compiled_rate:,.0f} samples/s "
            f"(x{row['speed_ratio']:.2f}); compile overhead {overhead:.1f} s; pays back after "
            + (
                f"{row['break_even_samples']:,} training samples"
                if row["break_even_samples"]
                else "never"
            ),
            flush=True,
        )
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
