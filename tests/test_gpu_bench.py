"""bench/gpu.py (the loop against hand-written PyTorch on a GPU) runs end to end on the CPU at its
tiny size, so that it cannot rot before a GPU runs it."""

import functools
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from xlalab.engine.settings import Params

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


@functools.cache
def bench_module():
    spec = importlib.util.spec_from_file_location("gpu_bench", BENCH / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def fake_features(folder: Path) -> Path:
    """cifar10's features as featurize stores them (uint8 28-px images, int64 labels)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("val", 6)):
        images = rng.integers(0, 256, (n, 3, 28, 28), dtype=np.uint8)
        save_file(
            {"x": images, "y": np.arange(n, dtype=np.int64) % 10}, folder / f"{split}.safetensors"
        )
    return folder


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu_bench")
    out = tmp / "gpu.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "gpu.py"),
            "--tiny",
            "--compile-backend",
            "eager",
            "--features",
            str(fake_features(tmp / "features")),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "comparison" in done.stdout  # the table
    return json.loads(out.read_text())


def test_the_loop_tests_run_and_pass_without_torch_xla(report):
    tests = report["loop_tests"]
    assert tests["status"] == "passed" and tests["passed"] >= 2 and not tests["failed"]
    assert tests["devices"] == ["cpu"]
    assert tests["torch_xla_imported"] is False
    assert report["torch_xla_imported"] is False  # the bench itself never imports it either


def test_every_comparison_is_a_positive_ratio_or_says_why_not(report):
    rows = report["measurements"]
    expected = {
        f"{name}/{loop}" for name in ("minilm_l6", "bert_base") for loop in ("project", "hand")
    } | {
        f"efficientnet/{run}"
        for run in (
            "bf16/project",
            "bf16/hand",
            "bf16/hand_compiled",
            "fp16/project",
            "fp16/hand",
            "bf16/project_compiled",
        )
    }
    assert set(rows) == expected
    for key, row in rows.items():
        if row["status"] == "measured":
            assert row["per_sec"] > 0 and row["epoch_seconds"] > 0, key
        else:
            assert row["status"] == "not offered" and row["why"], key
    ratios = [c for c in report["comparisons"] if "of" in c and "over" in c]
    assert len(ratios) == 6
    for c in ratios:
        if c["status"] == "measured":
            assert math.isfinite(c["ratio"]) and c["ratio"] > 0, c
            assert (
                c["met"] is None if c["target"] is None else c["met"] == (c["ratio"] >= c["target"])
            )
        else:
            assert c["status"] == "not offered", c
    measured = {c["name"] for c in ratios if c["status"] == "measured"}
    assert {
        "minilm_l6: project / hand-written",
        "bert_base: project / hand-written",
        "efficientnet bf16: project / hand-written",
    } <= measured
    epoch = next(c for c in report["comparisons"] if "target_seconds" in c)
    assert epoch["seconds"] > 0 and epoch["met"] == (epoch["seconds"] <= 10)


def test_fp16_and_compile_rows_follow_what_the_runtime_offers(report):
    rows = report["measurements"]
    project_runtime = bench_module().project_runtime
    fp16, compiled = rows["efficientnet/fp16/project"], rows["efficientnet/bf16/project_compiled"]
    if project_runtime("fp16", compile=False)[0] is None:
        assert fp16["status"] == "not offered"
    else:  # offered, but its loss scaling needs CUDA: on this CPU the project refuses it
        assert fp16["status"] == "not offered" and fp16["why"].startswith("refused here")
    assert rows["efficientnet/fp16/hand"]["status"] == "not offered"  # only beside the project's
    if project_runtime("bf16", compile=True)[0] is None:
        assert compiled["status"] == "not offered"
    else:
        assert compiled["status"] == "measured" and compiled["backend"]["compile"] is True
        assert compiled["compile_backend"] == "eager"


class RuntimeBf16Only(Params):
    """The runtime section with a bf16 switch and no compile switch."""

    backend: Literal["auto", "xla", "accelerate"]
    bf16: bool
    cpu_threads: int | None
    processes: int


class RuntimeWithPrecision(RuntimeBf16Only):
    """The runtime section with a precision and a compile switch."""

    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    compile: bool = False


def test_the_project_runtime_is_read_off_the_runtime_class():
    project_runtime = bench_module().project_runtime
    base = {"backend": "auto", "bf16": False, "cpu_threads": 2, "processes": 1}
    runtime, why_not = project_runtime(
        "fp16", compile=True, runtime_class=RuntimeWithPrecision, base=base
    )
    assert why_not is None
    assert (runtime.precision, runtime.compile, runtime.bf16) == ("fp16", True, False)
    assert (runtime.backend, runtime.cpu_threads) == ("accelerate", None)
    runtime, _ = project_runtime(
        "bf16", compile=False, runtime_class=RuntimeWithPrecision, base=base
    )
    assert (runtime.precision, runtime.compile, runtime.bf16) == ("bf16", False, True)
    only = RuntimeBf16Only
    runtime, why_not = project_runtime("bf16", compile=False, runtime_class=only, base=base)
    assert runtime.bf16 is True and why_not is None
    assert project_runtime("fp16", compile=False, runtime_class=only, base=base)[0] is None
    assert "compile" in project_runtime("bf16", compile=True, runtime_class=only, base=base)[1]


def test_the_hand_written_crop_cuts_a_window_of_the_padded_image():
    crop = bench_module().crop_on_device
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    out = crop(x, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))  # an eighth of 8 px

    def windows(i):
        return [
            padded[i, :, top : top + 8, left : left + 8] for top in range(3) for left in range(3)
        ]

    assert out.shape == x.shape
    assert all(any(torch.equal(out[i], w) for w in windows(i)) for i in range(16))
    assert not all(torch.equal(out[i], x[i]) for i in range(16))  # some image did move


def test_the_plugin_skips_a_test_that_needs_a_package_the_gpu_machine_lacks(tmp_path):
    test = tmp_path / "test_needs_dvclive.py"
    test.write_text(
        "def test_logs():\n    raise ModuleNotFoundError('no dvclive', name='dvclive')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(BENCH)])}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(test),
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "--noconftest",
            "-p",
            "gpu_loop_plugin",
            "--rootdir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 skipped" in done.stdout and "needs dvclive, not installed" in done.stdout
