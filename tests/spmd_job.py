"""One small training run on the XLA backend, shared by tests/test_scale.py: in the test process
(one XLA device) and as ``python spmd_job.py`` in a fresh process with ``CPU_NUM_DEVICES=4``, where
XlaBackend runs SPMD over the four devices (SPMD must be on before XLA computes anything, which the
test process has already done). Prints the result as JSON."""

from __future__ import annotations

import json
import sys

import torch
from configs import train_config

from xlalab.engine.batches import Batches
from xlalab.engine.loop import fit, predict
from xlalab.engine.task import Task


def sharding_of(t: torch.Tensor) -> str:
    import torch_xla

    return torch_xla._XLAC._get_xla_sharding_spec(t)  # "" when the tensor is not sharded


def blobs(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(3, 8, generator=torch.Generator().manual_seed(0)) * 2
    y = torch.arange(n) % 3
    return {"x": centers[y] + torch.randn(n, 8, generator=g), "y": y}


TASK = Task(
    loss=lambda out, b: torch.nn.functional.cross_entropy(out, b["y"], reduction="none"),
    metrics={"acc": lambda out, b: (out.argmax(-1) == b["y"]).float()},
    monitor="acc",
    mode="max",
)


def run(backend) -> dict:
    torch.manual_seed(0)
    # No dropout: its random masks are drawn differently when the batch is split over devices.
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    cfg = train_config(
        epochs=4,
        batch_size=32,
        lr=0.01,
        warmup_fraction=0.1,
        weight_decay=1e-4,
        max_grad_norm=1.0,
        eval_batch_size=24,
        seed=1,
    )
    result = fit(
        model, blobs(256, 1), blobs(101, 2), TASK, cfg, backend
    )  # model: now its best weights
    # 101 rows, batches of 40: a padded last batch; every row must come back once, in order
    outputs = predict(model, blobs(101, 2), backend, batch_size=40)
    first = next(iter(backend.device_loader(Batches(blobs(101, 2), 8, train=False))))
    return {
        "input_sharding": sharding_of(first["x"]),
        "history": [{k: v for k, v in r.items() if k != "samples_per_sec"} for r in result.history],
        "compile_counts": result.compile_counts,
        "runtime": backend.describe(),
        "outputs": outputs.tolist(),
    }


if __name__ == "__main__":
    from xlalab.engine.runtime import XlaBackend

    json.dump(run(XlaBackend()), sys.stdout)
