"""Where the projects run and how (docs/install.md, docs/runtime.md): the backend interface is
complete or not built at all; precision resolves to what the device has and a precision it lacks is
one line; without torch_xla (platforms it has no wheels for) `auto` trains on Accelerate, `xla` is
one line, and the suite runs with its XLA tests skipped; a batch that does not split over several
processes is said once, before any is started; a compiled model trains as the eager one does; and
on XLA a re-run looks up every graph the first run compiled in the persistent cache."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from configs import runtime, train_config

from xlalab.engine.loop import fit
from xlalab.engine.runtime import AccelerateBackend, Backend, XlaBackend, make_backend
from xlalab.engine.settings import Runtime, resolve_precision, resolve_xla_precision
from xlalab.engine.task import Task
from xlalab.errors import UserError
from xlalab.pipeline.report import trained_on

TESTS = Path(__file__).parent
ROOT = TESTS.parent
SRC = ROOT / "src"
NO_XLA = TESTS / "no_xla"  # its sitecustomize.py makes torch_xla unimportable
LIMIT = 600  # seconds for a subprocess on a loaded 2-core machine


def env(without_xla: bool = False, **extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    path = [str(NO_XLA)] if without_xla else []
    e.update(PYTHONPATH=os.pathsep.join([*path, str(SRC)]), **extra)
    return e


def params_dir(tmp_path: Path, runtime_values: dict, **sections) -> Path:
    """A folder with the repository's params.yaml, its runtime section and ``sections`` changed."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["runtime"].update(runtime_values)
    for dotted, value in sections.items():
        *path, key = dotted.split(".")
        section = params
        for name in path:
            section = section[name]
        section[key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def stage(cwd: Path, module: str, without_xla: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module],
        cwd=cwd,
        env=env(without_xla),
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )


def one_line(proc: subprocess.CompletedProcess) -> str:
    """The one line a stage stopped with (exit status 2, no traceback)."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


# --- the backend interface ---------------------------------------------------------------------


def test_a_backend_missing_a_method_fails_when_built():
    def stand_in(*args, **kwargs):
        return None

    methods = sorted(Backend.__abstractmethods__)
    assert {"backward", "optimizer_step", "autocast", "compile_step", "gather"} <= set(methods)
    complete = type("Complete", (Backend,), dict.fromkeys(methods, stand_in))
    assert isinstance(complete(), Backend)
    partial = type("Partial", (Backend,), dict.fromkeys(set(methods) - {"backward"}, stand_in))
    with pytest.raises(TypeError, match="backward"):
        partial()
    # the two real backends implement every method
    assert not AccelerateBackend.__abstractmethods__ and not XlaBackend.__abstractmethods__


# --- precision ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "device", "native_bf16", "configured", "resolved"),
    [
        ("auto", "cpu", False, "", "no"),
        ("auto", "cuda", True, "", "bf16"),  # A100, L4, RTX 30xx and later
        ("auto", "cuda", False, "", "fp16"),  # T4, P100, V100: loss-scaled fp16
        ("auto", "tpu", True, "", "bf16"),
        ("auto", "cuda", True, "fp16", "fp16"),  # the user's accelerate config, under auto
        ("auto", "cuda", True, "no", "bf16"),  # accelerate's default "no" does not count
        ("no", "cuda", True, "bf16", "no"),  # params that name one win over the config
        ("bf16", "cpu", False, "", "bf16"),
        ("fp16", "cuda", False, "", "fp16"),
    ],
)
def test_precision_resolves_to_what_the_device_has(
    asked, device, native_bf16, configured, resolved
):
    assert resolve_precision(asked, device, native_bf16=native_bf16, configured=configured) == (
        resolved
    )


@pytest.mark.parametrize(
    ("asked", "device", "native_bf16", "configured", "message"),
    [
        ("fp16", "cpu", False, "", "fp16, which needs a CUDA GPU"),
        ("fp16", "tpu", True, "", "fp16, which needs a CUDA GPU"),
        ("auto", "cpu", False, "fp16", "fp16, which needs a CUDA GPU"),
        ("bf16", "cuda", False, "", "this GPU has no bf16 arithmetic"),
    ],
)
def test_a_precision_the_device_cannot_run_is_one_line(
    asked, device, native_bf16, configured, message
):
    with pytest.raises(UserError, match=message) as e:
        resolve_precision(asked, device, native_bf16=native_bf16, configured=configured)
    assert "\n" not in str(e.value) and "runtime.precision: " in str(e.value)  # names the fix
    with pytest.raises(UserError, match="runs on the accelerate backend"):
        resolve_xla_precision("fp16", "tpu")
    assert resolve_xla_precision("auto", "tpu") == "bf16"
    assert resolve_xla_precision("auto", "cpu") == "no"


def test_auto_precision_is_recorded_with_the_device():
    backend = make_backend(runtime(backend="accelerate", precision="auto"))
    expected = "bf16" if torch.cuda.is_available() else "no"  # this machine: no CUDA, float32
    assert backend.describe()["precision"] == expected
    assert trained_on(backend.describe()) == f"accelerate, 1 {backend.device_type}" + (
        f", {expected}" if expected != "no" else ""
    )
    assert trained_on({**backend.describe(), "precision": "fp16"}).endswith(", fp16")


def test_an_unquoted_no_in_yaml_is_no():
    # PyYAML reads `precision: no` as false; `dvc exp run -S runtime.precision=no` may write it so
    values = runtime().model_dump() | {"precision": yaml.safe_load("p: no")["p"]}
    assert Runtime.model_validate(values).precision == "no"


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 runs where CUDA is")
def test_fp16_without_cuda_stops_a_stage_with_one_line(tmp_path):
    line = one_line(stage(params_dir(tmp_path, {"precision": "fp16"}), "xlalab.lstm.train"))
    assert line.startswith("error: lstm train: runtime.precision is fp16, which needs a CUDA GPU")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing written


# --- without torch_xla -------------------------------------------------------------------------


def test_without_torch_xla_auto_picks_accelerate_and_xla_is_one_line(tmp_path):
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from xlalab.engine.settings import resolve_backend, xla_installed;"
            "print(xla_installed(), resolve_backend('auto'))",
        ],
        env=env(without_xla=True, PJRT_DEVICE="TPU"),  # even where a TPU host is announced
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["False", "accelerate"]
    assert "`make venv EXTRAS=tpu` installs torch_xla" in probe.stderr  # said on a TPU host
    cwd = params_dir(tmp_path, {"backend": "xla"})
    line = one_line(stage(cwd, "xlalab.lstm.train", without_xla=True))
    assert "runtime.backend is xla but torch_xla is not installed" in line
    assert "set runtime.backend: auto or accelerate" in line


def test_one_training_step_on_each_backend(backend):
    """The test ``test_the_suite_runs_without_torch_xla`` runs without torch_xla: it passes on
    accelerate and is skipped on xla."""
    model = torch.nn.Linear(3, 2)
    data = {"x": torch.randn(16, 3), "y": torch.randint(0, 2, (16,))}
    task = Task(
        loss=lambda out, b: torch.nn.functional.cross_entropy(out, b["y"], reduction="none")
    )
    result = fit(model, data, data, task, train_config(epochs=1, batch_size=8, lr=0.1), backend)
    assert len(result.history) == 1


def test_the_suite_runs_without_torch_xla_with_its_xla_tests_skipped():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         f"{Path(__file__).name}::test_one_training_step_on_each_backend"],
        cwd=TESTS, env=env(without_xla=True), capture_output=True, text=True, timeout=LIMIT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed, 1 skipped" in proc.stdout
    assert "torch_xla is not installed here" in proc.stdout


# --- two bad inputs: one line, exit 2, said once -------------------------------------------------


def test_a_truncated_kdd_cup_gz_is_one_line(tmp_path):
    """KDD Cup 1999 (42 fields a line) cut short in the middle of its gzip stream, as an
    interrupted download leaves it."""
    shipped = SRC / "xlalab/traffic/nsl_kdd/KDDTrain+_20Percent.txt.gz"
    with gzip.open(shipped, "rt") as f:  # NSL-KDD lines without their difficulty: KDD Cup's
        lines = [line.rsplit(",", 1)[0] + "\n" for _, line in zip(range(20_000), f)]
    whole = gzip.compress("".join(lines).encode())
    archive = tmp_path / "kddcup.data_10_percent.gz"
    archive.write_bytes(whole[: len(whole) // 2])
    cwd = params_dir(
        tmp_path, {}, **{"traffic.download.source": "kdd99", "traffic.download.path": str(archive)}
    )
    line = one_line(stage(cwd, "xlalab.traffic.download"))
    assert line.startswith(f"error: traffic download: {archive}")
    assert "truncated" in line and "download it again" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name, "params.yaml"]


def test_a_batch_that_does_not_split_over_the_processes_is_said_once(tmp_path):
    cwd = params_dir(
        tmp_path, {"backend": "accelerate", "processes": 3}, **{"cifar10.train.batch_size": 128}
    )
    line = one_line(stage(cwd, "xlalab.cifar10.train"))
    assert line == (
        "error: cifar10 train: cifar10.train.batch_size 128 does not split evenly over 3 devices "
        "(3 processes); make it a multiple of 3"
    )


# --- torch.compile -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_compiled_model_trains_as_the_eager_one_and_saves_the_same_weights():
    """runtime.compile: Accelerate compiles the model (inductor on the CPU); the losses follow the
    eager run's and the best weights come back under the module's own names."""
    torch.manual_seed(0)
    data = {"x": torch.randn(64, 6), "y": torch.randint(0, 3, (64,))}
    task = Task(
        loss=lambda out, b: torch.nn.functional.cross_entropy(out, b["y"], reduction="none")
    )
    cfg = train_config(epochs=2, batch_size=16, lr=0.05)
    results, names = {}, {}
    for compile in (False, True):
        backend = AccelerateBackend(compile=compile, cpu=True)
        assert backend.describe()["compile"] is compile
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
        names[compile] = set(model.state_dict())
        results[compile] = fit(model, data, data, task, cfg, backend)
        assert set(results[compile].best_state) == names[compile]
    eager, compiled = results[False], results[True]
    for a, b in zip(eager.history, compiled.history):
        assert a["train/loss"] == pytest.approx(b["train/loss"], rel=1e-4)
        assert a["val/loss"] == pytest.approx(b["val/loss"], rel=1e-4)


# --- XLA's persistent compilation cache --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xla
def test_a_second_xla_run_looks_every_graph_up_in_the_cache(tmp_path):
    """lstm's train stage on XLA:CPU twice with runtime.xla_cache (tiny params): the second run
    finds on disk every graph the first compiled, and compiles only those torch_xla could not load
    back. (torch_xla 2.9 cannot load a serialized executable on the CPU, nor on TPU or GPU: see
    docs/runtime.md, so there it compiles them all again.)"""
    from xlalab.pipeline.runner import run_stage

    cwd = params_dir(
        tmp_path,
        {"backend": "xla", "xla_cache": True, "cpu_threads": 1},
        **{
            "lstm.window": 10,
            "lstm.train.cell": "gru",
            "lstm.train.compare_cells": [],
            "lstm.train.hidden": 8,
            "lstm.train.epochs": 1,
            "lstm.train.batch_size": 256,
        },
    )
    os.chdir(cwd)
    try:
        params = yaml.safe_load(Path("params.yaml").read_text())
        for name in ("download", "featurize"):
            run_stage("lstm", name, params)
    finally:
        os.chdir(ROOT)
    runs = []
    for _ in range(2):
        proc = stage(cwd, "xlalab.lstm.train", without_xla=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append((json.loads((cwd / "timing/cost/lstm-train.json").read_text())["xla"], proc))
    (first, _), (second, proc) = runs
    print(proc.stderr)  # what a user sees on the second run
    assert first["graphs_compiled"] > 0 and first["graphs_from_cache"] == 0
    assert len(list((cwd / ".xla_cache").iterdir())) >= first["graphs_compiled"]
    # every graph of the first run is found again (a miss would be a graph that changed)
    assert second["graphs_from_cache"] + second["graphs_not_loadable"] == first["graphs_compiled"]
    assert second["graphs_compiled"] == second["graphs_not_loadable"]  # only what it could not load
    for cost, proc in runs:
        said = proc.stderr.strip().splitlines()[-1]  # the cost line, the stage's last
        assert said.startswith("lstm train: ")
        assert f"XLA: {cost['graphs_compiled']} graphs compiled in" in said
        assert f"{cost['graphs_from_cache']} from the cache" in said
