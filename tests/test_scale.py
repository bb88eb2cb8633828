"""Scaling out, proven on CPU: several processes through Accelerate's launcher (one machine, and two
"machines" on localhost), a killed multi-process run that resumes to the same result, and torch_xla
SPMD over four CPU devices. The multi-process runs are small: a few seconds of training each, most
of
the time is starting Python."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from configs import runtime
from safetensors.torch import load_file

from xlalab.engine.batches import WEIGHT, Batches
from xlalab.engine.runtime import Runtime, make_backend
from xlalab.engine.settings import Params
from xlalab.errors import UserError
from xlalab.pipeline.contract import Project
from xlalab.pipeline.launch import launcher_args, start_processes_if_asked
from xlalab.pipeline.runner import run_stage

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"
JOB = TESTS / "scale_job.py"
PARAMS = """runtime: {backend: accelerate, precision: "no", compile: false, xla_cache: false,
          cpu_threads: null, processes: %d}
toy: {seed: 3, train: {epochs: 3, batch_size: 32, lr: 0.01, eval_batch_size: 20, weight_decay: 0.0,
      optimizer: adamw, scheduler: cosine, warmup_fraction: 0.0, grad_accum_steps: 1,
      max_grad_norm: null, patience: null}}
"""
LIMIT = 240  # seconds; a launch normally takes 15-30 s on a loaded 2-core machine


def env(**extra: str) -> dict[str, str]:
    e = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "CPU_NUM_DEVICES")
    }
    e.update(PYTHONPATH=f"{SRC}{os.pathsep}{e.get('PYTHONPATH', '')}", USE_TORCH_XLA="0", **extra)
    return e


def job_dir(path: Path, processes: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "params.yaml").write_text(PARAMS % processes)
    return path


def run_job(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(JOB)],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )


def summary(cwd: Path) -> dict:
    return json.loads((cwd / "models/toy/summary.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_machines(tmp_path_factory) -> list[Path]:
    """One stage trained by two launchers, as on two machines (ranks 0 and 1, one process each),
    each in its own directory as on its own disk. Returns both directories."""
    port = free_port()
    dirs = [job_dir(tmp_path_factory.mktemp(f"machine{rank}"), 1) for rank in (0, 1)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "accelerate.commands.launch",
                "--multi_gpu",
                "--num_machines",
                "2",
                "--machine_rank",
                str(rank),
                "--main_process_ip",
                "127.0.0.1",
                "--main_process_port",
                str(port),
                "--num_processes",
                "2",
                "--mixed_precision",
                "no",
                "--dynamo_backend",
                "no",
                str(JOB),
            ],
            cwd=d,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank, d in enumerate(dirs)
    ]
    try:
        logs = [p.communicate(timeout=LIMIT)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for rank, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"machine {rank} failed:\n{log[-3000:]}"
    return dirs


def test_two_machines_on_localhost_train_one_stage(two_machines):
    main, other = two_machines
    s = summary(main)
    assert s["runtime"] == {
        "backend": "accelerate",
        "device_type": "cpu",
        "device_count": 2,
        "processes": 2,
        "precision": "no",
        "compile": False,
    }
    toy = s["models"]["toy"]
    # 389 rows in global batches of 32: 12 steps an epoch whatever the number of processes
    assert toy["epochs_run"] == 3 and toy["best"]["val/acc"] > 0.9
    assert s["predictions_in_order"] is True  # every validation row gathered once, in order
    # only rank 0 writes: the other machine is left with its inputs only (the job makes its features
    # dir)
    assert sorted(
        str(p.relative_to(other)) for p in other.rglob("*") if p.is_file() or not any(p.iterdir())
    ) == ["data/toy/features", "params.yaml"]
    assert not list(main.glob("**/.tmp-*"))
    # the first process writes what both cost: each measured its own peak memory
    spent = json.loads((main / "timing/cost/toy-train.json").read_text())
    assert spent["processes"] == 2 and spent["peak_memory_mb"] > 2 * 100 and spent["seconds"] > 0


def test_killed_two_process_run_resumes_to_the_same_result(two_machines, tmp_path):
    cwd = job_dir(tmp_path, 2)
    (cwd / "kill-after-epoch-1").touch()
    killed = run_job(cwd)
    assert killed.returncode != 0, killed.stdout + killed.stderr
    assert (cwd / "checkpoints/toy/toy.ckpt").exists()
    assert not (
        cwd / "models/toy"
    ).exists()  # a killed stage leaves no output, not even a partial one
    (cwd / "kill-after-epoch-1").unlink()

    resumed = run_job(cwd)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from checkpoints/toy/toy.ckpt after epoch 1" in resumed.stderr
    s, reference = summary(cwd), summary(two_machines[0])
    assert s["models"]["toy"]["resumed_after_epoch"] == 1 and s["runtime"]["processes"] == 2
    strip = lambda h: [{k: v for k, v in r.items() if k != "samples_per_sec"} for r in h]  # noqa: E731
    assert strip(s["models"]["toy"]["history"]) == strip(reference["models"]["toy"]["history"])
    a, b = (
        load_file(cwd / "models/toy/toy.safetensors"),
        load_file(two_machines[0] / "models/toy/toy.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (cwd / "checkpoints/toy/toy.ckpt").exists()  # finished: nothing left to resume
    assert not list(cwd.glob("**/.tmp-*"))  # the killed run's temporary outputs are cleared


def test_spmd_over_four_xla_devices_matches_one_device(xla_backend):
    from spmd_job import run

    proc = subprocess.run(
        [sys.executable, str(TESTS / "spmd_job.py")],
        env=env(PJRT_DEVICE="CPU", CPU_NUM_DEVICES="4"),
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    spmd = json.loads(proc.stdout)
    assert spmd["runtime"] == {
        "backend": "xla",
        "device_type": "cpu",
        "device_count": 4,
        "processes": 1,
        "precision": "no",
        "spmd": True,
    }
    assert "devices=[4,1]" in spmd["input_sharding"]  # batches split along their first dimension
    counts = spmd["compile_counts"]
    assert counts[1:] == [counts[0]] * (len(counts) - 1), (
        f"SPMD recompiled after the first epoch: {counts}"
    )

    one = run(xla_backend)  # the same run on one XLA device, in this process
    assert one["input_sharding"] == ""
    for a, b in zip(spmd["history"], one["history"]):
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-4), (key, a, b)
    assert torch.allclose(torch.tensor(spmd["outputs"]), torch.tensor(one["outputs"]), atol=1e-3)
    assert len(spmd["outputs"]) == 101


# --- fast checks, in this process ---------------------------------------------------------------


def test_processes_split_every_global_batch_and_eval_rows_come_once():
    data = {"x": torch.arange(103).float()}
    one = list(Batches(data, 8, train=True, seed=5, epoch=2))
    halves = [
        list(Batches(data, 4, train=True, seed=5, epoch=2, rank=r, num_replicas=2)) for r in (0, 1)
    ]
    assert len(one) == len(halves[0]) == len(halves[1]) == 12
    for whole, a, b in zip(
        one, *halves
    ):  # each optimizer step sees the same rows as one process would
        assert torch.equal(whole["x"], torch.cat([a["x"], b["x"]]))
    evals = [list(Batches(data, 5, train=False, rank=r, num_replicas=2)) for r in (0, 1)]
    rows = torch.cat([b["x"][b[WEIGHT] > 0] for part in evals for b in part])
    assert sorted(rows.tolist()) == list(range(103))  # every row once; padding weighs nothing
    assert {len(b["x"]) for part in evals for b in part} == {5}


def test_the_global_batch_must_split_evenly(accelerate_backend):
    backend = accelerate_backend
    backend.num_replicas, backend.device_count = 2, 4
    assert backend.local_batch_size(32, "batch_size") == 16
    assert (
        backend.local_batch_size(30, "eval", exact=False) == 16
    )  # rounded up; padding weighs nothing
    with pytest.raises(UserError, match="batch_size 30 does not split evenly over 4 devices"):
        backend.local_batch_size(30, "batch_size")


def test_several_processes_need_the_launcher():
    with pytest.raises(UserError, match="not started by a launcher"):
        make_backend(runtime(backend="accelerate", processes=2))


def test_launcher_arguments():
    args = launcher_args(3, ["-m", "xlalab", "cifar10", "train"], cpu_threads=1)
    assert args[:3] == ["--multi_gpu", "--num_processes", "3"]
    assert (
        args[args.index("--main_process_port") + 1] == "0"
    )  # a free port: parallel runs do not collide
    assert args[args.index("--num_cpu_threads_per_process") + 1] == "1"
    assert args[-4:] == ["-m", "xlalab", "cifar10", "train"]
    # only what params set: the user's accelerate config keeps its mixed precision and dynamo
    assert not {"--mixed_precision", "--dynamo_backend"} & set(args)


def test_describe_records_processes_and_devices(accelerate_backend):
    assert accelerate_backend.describe() == {
        "backend": "accelerate",
        "device_type": "cpu",
        "device_count": 1,
        "processes": 1,
        "precision": "no",
        "compile": False,
    }


class _Out(Params):
    pass


def test_a_process_other_than_the_first_writes_no_output(tmp_path, monkeypatch):
    seen = []

    def write(p, paths):
        (paths.model / "weights").write_text("x")
        paths.live.mkdir(exist_ok=True)
        seen.append(paths.model)

    class One(Project):
        def function(self, stage):
            return write

    project = One(
        "toy", params=dict.fromkeys(("download", "featurize", "train", "evaluate", "plot"), _Out)
    )
    monkeypatch.chdir(tmp_path)
    Path("data/toy/features").mkdir(parents=True)
    monkeypatch.setenv("RANK", "1")
    assert run_stage(project, "train", {"toy": {}}) == []
    assert seen and not seen[0].exists()  # it wrote to a scratch directory, now gone
    assert not any(Path(d).exists() for d in ("models", "plots", "metrics"))  # nor a cost file
    monkeypatch.setenv("RANK", "0")
    assert run_stage(project, "train", {"toy": {}}) == [
        Path("models/toy"),
        Path("plots/toy/train"),
        Path("timing/cost/toy-train.json"),
    ]
    assert Path("models/toy/weights").read_text() == "x"


def test_which_stages_launch_several_processes(tmp_path, monkeypatch):
    class NoRuntime(Params):
        pass

    class WithRuntime(Params):
        runtime: Runtime

    project = Project(
        "toy",
        params={
            n: WithRuntime if n == "train" else NoRuntime
            for n in ("download", "featurize", "train", "evaluate", "plot")
        },
    )
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    params = tmp_path / "params.yaml"

    def status(stage, values):
        params.write_text(json.dumps({"runtime": runtime(**values).model_dump(), "toy": {}}))
        return start_processes_if_asked(project.stage(stage), str(params), [])

    assert status("train", {"processes": 1}) is None  # runs here, in this process
    assert (
        status("download", {"processes": 2, "backend": "accelerate"}) is None
    )  # reads no runtime: runs once
    with pytest.raises(UserError, match="already uses every device of the host in one process"):
        status("train", {"processes": 2, "backend": "xla"})
    params.write_text(json.dumps({"runtime": {**runtime().model_dump(), "processes": 0}}))
    with pytest.raises(UserError, match="`runtime.processes` must be greater than or equal to 1"):
        start_processes_if_asked(project.stage("train"), str(params), [])
    monkeypatch.setenv("WORLD_SIZE", "2")  # one of the launched processes: never launches again
    assert status("train", {"processes": 2, "backend": "accelerate"}) is None
