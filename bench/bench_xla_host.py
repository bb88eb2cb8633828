"""Host time of one XLA training step of each project's model, beside the time its graph runs.

    PJRT_DEVICE=CPU python bench/bench_xla_host.py                  # every model
    PJRT_DEVICE=CPU python bench/bench_xla_host.py --models lstm,text

With lazy tensors every step traces its model again on the host (each layer, each time step),
then runs the cached graph; when tracing takes longer than the graph runs, the device waits on the
host. Each model is built as its train stage builds it from params.yaml (the text model: imdb's
MiniLM with its lower layers frozen; cifar10: the frozen backbone and its head; traffic: the
autoencoder), batches are random data of the stage's shapes, and the loop's own compiled
training step (core/loop.py) is called again and again, waiting for the device after each call.
Per step (medians, ms): ``host_cpu``, the CPU time of the thread that traces the step (the
backward pass is kept on it) until the call returns, which the machine's load changes far less
than wall times (on XLA:CPU the call also waits for the graph, but the graph runs on XLA's own
threads); ``wall``, call plus wait; ``execute``, the graph's run (``ExecuteTime`` from
torch_xla.debug.metrics); ``wall_minus_execute``; and ``graph_nodes``, the IR nodes of the step's
graph (``TensorsGraphSize``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from xlalab.engine import loop  # noqa: E402
from xlalab.engine.optimizer import Schedule, build_optimizer, lr_schedule  # noqa: E402
from xlalab.engine.runtime import make_backend  # noqa: E402
from xlalab.engine.settings import Runtime, TrainConfig  # noqa: E402

MODELS = ("lstm", "gru", "text", "traffic", "cifar10")


def loop_config(train: dict, **override) -> TrainConfig:
    keys = set(TrainConfig.model_fields) - {"seed"}
    return TrainConfig(**{**{k: train[k] for k in keys}, "epochs": 2, "patience": None, **override})


def recurrent(cell: str, params: dict, rows: int | None = None):
    from xlalab.lstm import model as lstm_model

    train, window, features = params["lstm"]["train"], params["lstm"]["window"], 9
    torch.manual_seed(0)
    model = lstm_model.build_model(
        {
            "cell": cell,
            "n_features": features,
            "hidden": train["hidden"],
            "layers": train["layers"],
            "dropout": train["dropout"],
        }
    )
    n = rows or train["batch_size"]
    batch = {"x": torch.randn(n, window, features), "y": torch.randn(n)}
    return model, lstm_model.forecast_task(train["loss"]), loop_config(train), batch


def text(params: dict):
    from xlalab.textclf import model as textmodel

    section = params["imdb"]
    train, length = section["train"], 48  # featurize.max_length auto picks 48 on the snippets
    torch.manual_seed(0)
    model = textmodel.pretrained(section["model"], section["revision"])
    net = textmodel.load_classifier(model, ["negative", "positive"])
    textmodel.freeze_lower_layers(net, train["freeze_layers"])
    n = train["batch_size"]
    batch = {
        "input_ids": torch.randint(1000, 20000, (n, length)),
        "attention_mask": torch.ones(n, length, dtype=torch.long),
        "labels": torch.arange(n) % 2,
        "class_weight": torch.ones(n),
    }
    return net, textmodel.classification_task(None), loop_config(train), batch


def traffic(params: dict):
    from xlalab.traffic.model import Autoencoder, autoencoder_task

    train, inputs = params["traffic"]["train"], 120  # NSL-KDD, feature_set all, one-hot encoded
    torch.manual_seed(0)
    model = Autoencoder(inputs, train["hidden_choices"][0], train["dropout"])  # the first candidate
    return (
        model,
        autoencoder_task(),
        loop_config(train),
        {"x": torch.randn(train["batch_size"], inputs)},
    )


def cifar10(params: dict):
    from xlalab.cifar10.model import TransferClassifier, task

    section = params["cifar10"]
    train = section["train"]
    size = train["image_size"]  # batches arrive at the model's size: no resize in the step
    torch.manual_seed(0)
    model = TransferClassifier(
        section["backbone"],
        10,
        image_size=size,
        pretrained=train["pretrained"],
        freeze_backbone=train["freeze_backbone"],
        unfreeze_blocks=train["unfreeze_blocks"],
    )
    n = train["batch_size"]
    batch = {
        "x": torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8),
        "y": torch.arange(n) % 10,
    }
    return model, task(crop=False, flip=False), loop_config(train), batch


def build(name: str, params: dict):
    if name in ("lstm", "gru"):
        return recurrent(name, params)
    return {"text": text, "traffic": traffic, "cifar10": cifar10}[name](params)


def host_ms(model, task, cfg: TrainConfig, batch: dict, backend, steps: int) -> dict[str, float]:
    """Median per-step times (ms) of the loop's compiled training step on XLA, each step run to
    completion before the next is traced; see the module docstring."""
    import torch_xla.debug.metrics as met

    model = backend.prepare_model(model)
    schedule = Schedule(lr_schedule(cfg, 10 * steps), backend)
    optimizer = build_optimizer(model.parameters(), cfg, schedule.holder)
    compiled = loop._Steps(model, optimizer, task, cfg, backend, "host")
    batch = {k: v.to(backend.device) for k, v in batch.items()}
    loss_sum = torch.zeros((), device=backend.device)
    samples = {"host_cpu": [], "wall": [], "execute": []}
    model.train()
    torch.autograd.set_multithreading_enabled(False)  # the backward pass on this thread
    try:
        for i in range(steps + 3):  # three warm-up steps: the first compiles two graphs
            executed = (met.metric_data("ExecuteTime") or (0, 0.0))[1]
            start, cpu = time.perf_counter(), time.thread_time()
            schedule.set(optimizer, i)
            loss_sum = compiled.update(batch, loss_sum)
            cpu = time.thread_time() - cpu
            backend.sync()
            if i >= 3:
                samples["host_cpu"].append(cpu)
                samples["wall"].append(time.perf_counter() - start)
                run = (met.metric_data("ExecuteTime") or (0, 0.0))[1] - executed
                samples["execute"].append(run / 1e9)
    finally:
        torch.autograd.set_multithreading_enabled(True)
    samples["wall_minus_execute"] = [w - e for w, e in zip(samples["wall"], samples["execute"])]
    result = {k: 1e3 * statistics.median(v) for k, v in samples.items()}
    result["graph_nodes"] = met.metric_data("TensorsGraphSize")[2][-1][1]
    return result


def xla_backend(cpu_threads: int):
    os.environ.setdefault("PJRT_DEVICE", "CPU")
    return make_backend(
        Runtime(
            backend="xla",
            precision="no",
            compile=False,
            xla_cache=False,
            cpu_threads=cpu_threads,
            processes=1,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(MODELS), help=", ".join(MODELS))
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--cpu-threads", type=int, default=1)
    parser.add_argument("--out", default="bench/results/bench_xla_host.json")
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    backend = xla_backend(args.cpu_threads)
    print(f"{args.cpu_threads} thread(s); load average {os.getloadavg()[0]:.1f}", flush=True)
    report = {"load_average_start": os.getloadavg()[0], "models": {}}
    for name in args.models.split(","):
        model, task, cfg, batch = build(name, params)
        report["models"][name] = r = host_ms(model, task, cfg, batch, backend, args.steps)
        print(f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in r.items()), flush=True)
    report["load_average_end"] = os.getloadavg()[0]
    print(f"load average at the end {report['load_average_end']:.1f}")
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
