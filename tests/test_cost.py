"""What a stage cost: every stage's command writes its wall time and peak memory to its cost file
(a DVC metric beside its outputs) and says them in its log; a failed stage writes none."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from xlalab.errors import UserError
from xlalab.pipeline import cost
from xlalab.pipeline.contract import Paths, built_projects
from xlalab.pipeline.runner import run_stage

TESTS = Path(__file__).parent
ROOT = TESTS.parent
JOB = TESTS / "cost_job.py"
COST = Path("timing/cost/toy-download.json")


def run_job(cwd: Path, megabytes: int = 0, sleep: float = 0.0, fail: bool = False):
    """The toy download stage as a command, timed from outside; returns (process, seconds)."""
    toy = {"megabytes": megabytes, "sleep": sleep, "fail": fail}
    (cwd / "params.yaml").write_text(yaml.safe_dump({"toy": toy}))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("WORLD_SIZE", None)
    begin = time.time()
    proc = subprocess.run(
        [sys.executable, str(JOB)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    return proc, time.time() - begin


def test_a_stage_command_records_its_time_and_peak_memory(tmp_path):
    small, _ = run_job(tmp_path)
    assert small.returncode == 0, small.stderr
    baseline = json.loads((tmp_path / COST).read_text())

    proc, outside = run_job(tmp_path, megabytes=200, sleep=0.3)
    assert proc.returncode == 0, proc.stderr
    spent = json.loads((tmp_path / COST).read_text())
    assert set(spent) == {"seconds", "peak_memory_mb", "processes"}
    assert 0.3 <= spent["seconds"] <= outside + 0.1  # from the command's start, within its run
    assert spent["peak_memory_mb"] >= 200
    assert spent["peak_memory_mb"] - baseline["peak_memory_mb"] >= 190  # the 200 MB held
    assert spent["processes"] == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-2:] == [
        f"wrote {COST}",
        f"toy download: {spent['seconds']:.1f} s, peak {spent['peak_memory_mb']:,} MB",
    ]


def test_a_failed_stage_writes_no_cost_and_keeps_the_last_one(tmp_path):
    proc, _ = run_job(tmp_path, fail=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: toy download: the source went away half-way; try again"
    assert not (tmp_path / "metrics").exists()  # no cost file, no folder made for it

    assert run_job(tmp_path)[0].returncode == 0
    before = (tmp_path / COST).read_text()
    assert run_job(tmp_path, megabytes=50, fail=True)[0].returncode == 2
    assert (tmp_path / COST).read_text() == before
    assert sorted(p.name for p in (tmp_path / COST).parent.iterdir()) == [COST.name]


def test_in_process_a_stage_costs_from_the_call(tmp_path, monkeypatch):
    sys.path.insert(0, str(TESTS))
    try:
        from cost_job import PROJECT, download
    finally:
        sys.path.remove(str(TESTS))
    monkeypatch.chdir(tmp_path)
    params = {"toy": {"megabytes": 0, "sleep": 0.3, "fail": False}}
    begin = time.time()
    written = run_stage(PROJECT, "download", params, download)
    outside = time.time() - begin
    assert written == [Paths.of("toy").raw, COST]  # the cost file last, once every output is in
    spent = json.loads(COST.read_text())
    assert 0.3 <= spent["seconds"] <= outside + 0.1
    with pytest.raises(UserError):
        run_stage(PROJECT, "download", {"toy": {**params["toy"], "fail": True}}, download)
    assert json.loads(COST.read_text()) == spent


def test_the_cost_line_says_seconds_memory_and_processes():
    assert cost.describe("cifar10", "train", {"seconds": 54.23, "peak_memory_mb": 1234,
                                              "processes": 1}) == (
        "cifar10 train: 54.2 s, peak 1,234 MB"
    )  # fmt: skip
    assert cost.describe("imdb", "train", {"seconds": 3600.0, "peak_memory_mb": 20480,
                                           "processes": 2}) == (
        "imdb train: 3,600.0 s, peak 20,480 MB over 2 processes"
    )  # fmt: skip
    spent = cost.measure(time.time() - 2.0, [100.4, 200.2])
    assert spent["peak_memory_mb"] == 301 and spent["processes"] == 2
    assert 2.0 <= spent["seconds"] < 60


def test_every_stage_declares_its_cost_file_as_a_metric_kept_out_of_git():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for project in built_projects():
        for stage in project.stages:
            metrics = stages[f"{project.name}-{stage.name}"]["metrics"]
            path = f"timing/cost/{project.name}-{stage.name}.json"
            assert path in metrics, path  # DVC-cached: a re-run leaves git status clean


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_dvc_metrics_show_lists_the_cost_of_a_stage(tmp_path):
    dvc = str(Path(sys.executable).parent / "dvc")
    shutil.copy(JOB, tmp_path / "cost_job.py")
    (tmp_path / "dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "toy-download": {
                        "cmd": f"PYTHONPATH={ROOT / 'src'} {sys.executable} cost_job.py",
                        "deps": ["cost_job.py"],
                        "params": ["toy"],
                        "outs": ["data/toy/raw"],
                        "metrics": [{str(COST): {"cache": False}}],
                    }
                }
            }
        )
    )
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"toy": {"megabytes": 0, "sleep": 0.0, "fail": False}})
    )
    env = {k: v for k, v in os.environ.items() if k != "WORLD_SIZE"}
    for argv in (["init", "--no-scm", "-q"], ["repro", "-q"]):
        subprocess.run([dvc, *argv], cwd=tmp_path, env=env, check=True, capture_output=True)
    shown = subprocess.run(
        [dvc, "metrics", "show", "--json"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data = json.loads(shown)
    [workspace] = data.values()
    recorded = workspace["data"][str(COST)]["data"]
    assert recorded == json.loads((tmp_path / COST).read_text())
    assert recorded["seconds"] > 0 and recorded["peak_memory_mb"] > 0
