"""What a stage cost: every stage's command writes its wall time and peak memory to its cost file
(a DVC-cached output beside its outputs, not a metric) and says them in its log; a failed stage
writes none; `xlalab costs` shows them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from xlalab import cli
from xlalab.errors import UserError
from xlalab.pipeline import cost
from xlalab.pipeline.contract import Paths, built_projects
from xlalab.pipeline.runner import run_stage
from xlalab.results import costs

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


def test_every_stage_declares_its_cost_file_as_a_cached_output_not_a_metric():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for project in built_projects():
        for stage in project.stages:
            declared = stages[f"{project.name}-{stage.name}"]
            path = f"timing/cost/{project.name}-{stage.name}.json"
            assert path in declared["outs"], path  # DVC-cached: a re-run leaves git status clean
            # a metric only the cache holds: `dvc metrics diff` in a fresh clone fails to load it
            assert path not in str(declared.get("metrics", [])), path


def test_xlalab_costs_prints_every_stage_that_ran_and_its_total(tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(TESTS))
    try:
        from cost_job import PROJECT, download
    finally:
        sys.path.remove(str(TESTS))
    monkeypatch.chdir(tmp_path)
    assert costs.markdown([PROJECT]) == costs.NOT_RUN + "\n"
    run_stage(PROJECT, "download", {"toy": {"megabytes": 0, "sleep": 0.0, "fail": False}}, download)
    spent = json.loads(COST.read_text())
    Path("timing/toy.json").write_text(json.dumps({"speed": {"rows_per_sec": 12345}}))
    lines = costs.markdown([PROJECT]).splitlines()
    assert lines[0] == "| project | stage | seconds | peak memory (MB) | processes |"
    assert lines[2] == (
        f"| toy | download | {spent['seconds']:,.1f} | {spent['peak_memory_mb']:,} | 1 |"
    )
    assert lines[3] == f"| all | 1 stages | {spent['seconds']:,.1f} | | |"
    assert lines[-1] == "- toy: speed.rows_per_sec 12,345"
    monkeypatch.chdir(ROOT)  # every built project, whatever this clone has run
    assert cli.main(["costs"]) == 0 and capsys.readouterr().out
