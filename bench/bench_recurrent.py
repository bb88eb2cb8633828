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

Host time of a step (bench_xla_host.py's ``host_ms``): on XLA the loop's compiled training step
is called again and again, waiting for the device after each call; per step (medians, ms) the
CPU time of the thread tracing it (``host_cpu``, which the machine's load changes far less than
wall times), the wall time, the graph's run time (``ExecuteTime`` of torch_xla.debug.metrics)
and the wall time minus that. ``--host-variants`` adds the same for torch_xla's scan lowering its
loops at every call (``scan_lowered``) and for the time steps unrolled into the graph
(``unrolled``, the eager ``nn.LSTM`` / ``nn.GRU``; it compiles for minutes on a CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bench_xla_host import host_ms, recurrent  # noqa: E402
from xlalab.core import loop  # noqa: E402
from xlalab.core import recurrent as core_recurrent  # noqa: E402

from xlalab.engine.runtime import make_backend  # noqa: E402
from xlalab.engine.settings import Runtime  # noqa: E402
from xlalab.lstm import model as lstm_model  # noqa: E402


def windows(rows: int, window: int, features: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(rows, window, features, generator=g),
        "y": torch.randn(rows, generator=g),
    }


def steps_per_sec(cell: str, params: dict, data: dict, backend) -> float:
    model, task, cfg, _ = recurrent(cell, params)
    val = {k: v[: cfg.batch_size * 4] for k, v in data.items()}
    return (
        loop.fit(model, data, val, task, cfg, backend).history[-1]["samples_per_sec"]
        / cfg.batch_size
    )


@contextlib.contextmanager
def variant(name: str):
    """The XLA path of ``name``: ``scan`` (the models' own), ``scan_lowered`` (torch_xla's scan
    lowering its While loops at every call, as torch_xla 2.9 does) or ``unrolled`` (the eager
    module, its time steps unrolled into the graph)."""
    from torch_xla.experimental import scan as xla_scan

    saved = lstm_model.loops_in_graph, core_recurrent._replayed
    if name == "unrolled":
        lstm_model.loops_in_graph = lambda x: False
    if name == "scan_lowered":
        core_recurrent._replayed = lambda body, init, xs, reverse: xla_scan._scan_impl_pytree(
            body, init, xs, reverse=reverse
        )
    try:
        yield
    finally:
        lstm_model.loops_in_graph, core_recurrent._replayed = saved


def compare_cell(cell, params, data, backends, args) -> dict:
    rates = {name: [] for name in backends}
    for r in range(args.rounds):
        for name, backend in backends.items():
            rates[name].append(steps_per_sec(cell, params, data, backend))
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
            host[name] = host_ms(*recurrent(cell, params), backends["xla"], steps)
        print(
            f"{cell}: xla step, {name}: "
            + ", ".join(f"{k} {v:.1f}" for k, v in host[name].items())
            + " (ms; graph_nodes: IR nodes)",
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
    runtime = dict(
        precision="no", compile=False, xla_cache=False, cpu_threads=args.cpu_threads, processes=1
    )
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
        report["cells"][cell] = compare_cell(cell, params, data, backends, args)
    report["load_average_end"] = os.getloadavg()[0]
    print(f"load average at the end {report['load_average_end']:.1f}")
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
