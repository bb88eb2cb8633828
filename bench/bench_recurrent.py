"""Training speed of the lstm project's recurrent models on XLA against Accelerate, in one run,
and the host time of an XLA training step.

    PJRT_DEVICE=CPU python bench/bench_recurrent.py
    PJRT_DEVICE=CPU python bench/bench_recurrent.py --host-variants scan_lowered,unrolled

Model and loop settings are params.yaml's (lstm.window, lstm.train: hidden, layers, batch size,
optimizer, clipping); the data are random windows of that shape (speed does not depend on the
values). Both backends use ``--cpu-threads`` torch threads (default 1). For each cell, rounds
alternate Accelerate / XLA so that drift in machine load hits both; each round trains two epochs
through the project's loop (core/loop.py ``fit``) and keeps the second (the first compiles).
Prints the median steps/s of each backend and their ratio.

Host time of a step: on XLA the loop's compiled training step is called again and again, waiting
for the device after each call. Per step (medians): ``call``, the wall time until the call returns
(tracing the step and launching its graph); ``call_cpu``, the CPU time of that (the backward pass
is kept on the same thread), which the machine's load changes far less than wall times;
``execute``, the graph's run time from ``torch_xla.debug.metrics`` (``ExecuteTime``); and
``wall_minus_execute``. ``--host-variants`` adds the same for torch_xla's scan lowering its loops
at every call (``scan_lowered``) and for the time steps unrolled into the graph (``unrolled``, the
eager ``nn.LSTM`` / ``nn.GRU``; it compiles for minutes on a CPU).
"""

from __future__ import annotations

import argparse
import contextlib
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

from xlalab.core import loop, recurrent  # noqa: E402
from xlalab.core.params import Runtime, TrainConfig  # noqa: E402
from xlalab.core.runtime import make_backend  # noqa: E402
from xlalab.lstm import model as lstm_model  # noqa: E402


def windows(rows: int, window: int, features: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(rows, window, features, generator=g),
        "y": torch.randn(rows, generator=g),
    }


def loop_config(train: dict) -> TrainConfig:
    keys = set(TrainConfig.model_fields) - {"seed"}
    return TrainConfig(**{**{k: train[k] for k in keys}, "epochs": 2, "patience": None})


def build(cell: str, train: dict, features: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return lstm_model.build_model(
        {
            "cell": cell,
            "n_features": features,
            "hidden": train["hidden"],
            "layers": train["layers"],
            "dropout": train["dropout"],
        }
    )


def steps_per_sec(cell, train, data, backend) -> float:
    cfg = loop_config(train)
    val = {k: v[: cfg.batch_size * 4] for k, v in data.items()}
    task = lstm_model.forecast_task(train["loss"])
    result = loop.fit(build(cell, train, data["x"].shape[2]), data, val, task, cfg, backend)
    return result.history[-1]["samples_per_sec"] / cfg.batch_size


def host_ms(cell, train, data, backend, steps: int) -> dict[str, float]:
    """Median per-step times (ms) of the loop's compiled training step on XLA, each step run to
    completion before the next is traced."""
    import torch_xla.debug.metrics as met

    cfg = loop_config(train)
    model = backend.prepare_model(build(cell, train, data["x"].shape[2]))
    schedule = loop._Schedule(loop.lr_schedule(cfg, 10 * steps), backend)
    optimizer = loop.build_optimizer(model.parameters(), cfg, schedule.holder)
    compiled = loop._Steps(
        model, optimizer, lstm_model.forecast_task(train["loss"]), cfg, backend, "host"
    )
    batch = {k: v[: cfg.batch_size].to(backend.device) for k, v in data.items()}
    loss_sum = torch.zeros((), device=backend.device)
    calls, cpus, walls, executes = [], [], [], []
    # The backward pass runs on this thread, so that its CPU time counts in ``call_cpu``.
    torch.autograd.set_multithreading_enabled(False)
    for i in range(steps + 3):  # three warm-up steps: the first compiles two graphs
        executed = (met.metric_data("ExecuteTime") or (0, 0.0))[1]
        start, cpu = time.perf_counter(), time.thread_time()
        schedule.set(optimizer, i)
        loss_sum = compiled.update(batch, loss_sum)
        returned, cpu = time.perf_counter(), time.thread_time() - cpu
        backend.sync()
        done = time.perf_counter()
        if i >= 3:
            calls.append(returned - start)
            cpus.append(cpu)
            walls.append(done - start)
            executes.append(((met.metric_data("ExecuteTime") or (0, 0.0))[1] - executed) / 1e9)
    torch.autograd.set_multithreading_enabled(True)
    ms = lambda xs: 1e3 * statistics.median(xs)  # noqa: E731
    host = [w - e for w, e in zip(walls, executes)]
    return {
        "call": ms(calls),
        "call_cpu": ms(cpus),
        "wall": ms(walls),
        "execute": ms(executes),
        "wall_minus_execute": ms(host),
    }


@contextlib.contextmanager
def variant(name: str):
    """The XLA path of ``name``: ``scan`` (the models' own), ``scan_lowered`` (torch_xla's scan
    lowering its While loops at every call, as torch_xla 2.9 does) or ``unrolled`` (the eager
    module, its time steps unrolled into the graph)."""
    from torch_xla.experimental import scan as xla_scan

    saved = lstm_model.loops_in_graph, recurrent._replayed
    if name == "unrolled":
        lstm_model.loops_in_graph = lambda x: False
    if name == "scan_lowered":
        recurrent._replayed = lambda body, init, xs, reverse: xla_scan._scan_impl_pytree(
            body, init, xs, reverse=reverse
        )
    try:
        yield
    finally:
        lstm_model.loops_in_graph, recurrent._replayed = saved


def compare_cell(cell, train, data, backends, args) -> dict:
    rates = {name: [] for name in backends}
    for r in range(args.rounds):
        for name, backend in backends.items():
            rates[name].append(steps_per_sec(cell, train, data, backend))
        print(
            f"{cell} round {r + 1}: "
            + ", ".join(f"{n} {v[-1]:.2f} steps/s" for n, v in rates.items()),
            flush=True,
        )
    median = {n: statistics.median(v) for n, v in rates.items()}
    ratio = median["xla"] / median["accelerate"]
    print(
        f"{cell}: accelerate {median['accelerate']:.2f} steps/s, xla {median['xla']:.2f} steps/s, "
        f"ratio xla/accelerate {ratio:.3f} (XLA takes {1 / ratio:.2f}x as long)",
        flush=True,
    )
    host = {}
    for name in ["scan", *args.host_variants.split(",")]:
        if name in host or not name:
            continue
        steps = args.host_steps if name != "unrolled" else max(5, args.host_steps // 4)
        with variant(name):
            host[name] = host_ms(cell, train, data, backends["xla"], steps)
        print(
            f"{cell}: xla step, {name}: "
            + ", ".join(f"{k} {v:.1f} ms" for k, v in host[name].items()),
            flush=True,
        )
    return {
        "steps_per_sec": rates,
        "median": median,
        "ratio_xla_over_accelerate": ratio,
        "xla_host_ms": host,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", default="lstm,gru")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-rows", type=int, default=1600, help="rows per epoch")
    parser.add_argument("--host-steps", type=int, default=20)
    parser.add_argument("--cpu-threads", type=int, default=1, help="torch threads, both backends")
    parser.add_argument(
        "--host-variants",
        default="scan_lowered",
        help="host time also of: scan_lowered, unrolled (compiles for minutes), comma-separated",
    )
    parser.add_argument("--out", default="bench/results/bench_recurrent.json")
    args = parser.parse_args()
    os.environ.setdefault("PJRT_DEVICE", "CPU")

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    train, window = params["lstm"]["train"], params["lstm"]["window"]
    features = 9  # the default featurize.features: eight indicators, macd with its signal
    data = windows(args.train_rows, window, features, seed=0)
    runtime = dict(bf16=False, cpu_threads=args.cpu_threads, processes=1)
    backends = {
        name: make_backend(Runtime(backend=name, **runtime)) for name in ("accelerate", "xla")
    }
    print(
        f"window {window}, {features} features, hidden {train['hidden']} x {train['layers']}, "
        f"batch {train['batch_size']}, {args.train_rows} rows/epoch, {args.cpu_threads} thread(s); "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    report = {"window": window, "batch_size": train["batch_size"], "cells": {}}
    report["load_average_start"] = os.getloadavg()[0]
    for cell in args.cells.split(","):
        report["cells"][cell] = compare_cell(cell, train, data, backends, args)
    report["load_average_end"] = os.getloadavg()[0]
    print(f"load average at the end {report['load_average_end']:.1f}")
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
