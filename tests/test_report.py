"""The Report every evaluate stage returns (pipeline/report.py): the same keys in every project's
metrics/<project>.json, at most 15 numbers, the rest in reports/<project>/details.json, the times
in timing/; and the DVC declarations that keep `dvc metrics diff` clean in a fresh clone."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import yaml

from xlalab.pipeline import dvcyaml
from xlalab.pipeline.contract import Paths, built_projects
from xlalab.pipeline.report import MAX_NUMBERS, METRIC_KEYS, Report, headline
from xlalab.pipeline.runner import run_stage
from xlalab.results import evidence

TESTS = Path(__file__).parent
ROOT = TESTS.parent
JOB = TESTS / "report_job.py"
RUNTIME = {"backend": "xla", "device_type": "tpu", "device_count": 4, "spmd": True}


def numbers_in(tree) -> int:
    if isinstance(tree, dict):
        return sum(numbers_in(v) for v in tree.values())
    if isinstance(tree, list):
        return sum(numbers_in(v) for v in tree)
    return int(isinstance(tree, (int, float)) and not isinstance(tree, bool))


def a_verdict(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    predictions = {
        "model": np.where(rng.random(300) < 0.85, y, 1 - y),
        "majority": np.ones(300, int),
        "coin": rng.integers(0, 2, 300),
    }
    return evidence.compare(
        "model", predictions, y, evidence.accuracy, metric_name="accuracy",
        higher_is_better=True, baselines=["majority", "coin"], seed=seed,
    )  # fmt: skip


def test_the_metrics_are_the_headline_under_fixed_keys_and_few_numbers():
    verdict = a_verdict()
    report = Report.judged(
        verdict, test_rows=300, source="offline", runtime=RUNTIME, warnings=["not settled"],
        details={"per_class": {"0": {"recall": 0.8}}},
    )  # fmt: skip
    metrics = report.metrics()
    assert tuple(metrics) == METRIC_KEYS
    assert numbers_in(metrics) <= MAX_NUMBERS == 15
    assert all(isinstance(v, (str, int, float)) for v in metrics.values())  # DVC drops lists
    assert metrics["score"] == verdict["score"]
    assert (metrics["score_low"], metrics["score_high"]) == tuple(verdict["interval"])
    assert metrics["baseline"] == verdict["best_baseline"] == "majority"
    assert (metrics["diff_low"], metrics["diff_high"]) == tuple(verdict["difference_interval"])
    assert metrics["verdict"] == verdict["verdict"] == "beats" and metrics["better"] == "higher"
    assert metrics["trained_on"] == "xla, 4 tpu (spmd)" and metrics["warnings"] == 1
    details = report.details_record()
    assert details["warnings"] == ["not settled"] and details["verdict"] == verdict
    assert details["per_class"] == {"0": {"recall": 0.8}}
    assert headline(metrics) == metrics
    with pytest.raises(ValueError, match="beats"):
        Report.judged({**verdict, "verdict": "wins"}, test_rows=1, source="s", runtime=None)


def test_the_layout_before_reads_as_the_same_headline():
    verdict = a_verdict(1)
    now = Report.judged(verdict, test_rows=300, source="offline", runtime=RUNTIME).metrics()
    before = {"verdict": verdict, "test_rows": 300, "data": {"source": "offline"}}
    assert headline({**before, "runtime": RUNTIME, "warnings": []}) == now
    assert headline({"seconds": 3}) is None


def test_every_evaluate_stage_returns_a_report():
    for project in built_projects():
        stage = project.stage("evaluate")
        hints = typing.get_type_hints(project.function(stage))
        assert hints["return"] is Report, stage.module


def test_the_runner_writes_metrics_details_and_timing_rounded(tmp_path, monkeypatch):
    sys.path.insert(0, str(TESTS))
    try:
        import report_job
    finally:
        sys.path.remove(str(TESTS))
    monkeypatch.chdir(tmp_path)
    params = {"toy": {"score": 0.912345678}}
    for stage in ("download", "featurize", "train"):
        run_stage(report_job.PROJECT, stage, params, getattr(report_job, stage))
    written = run_stage(report_job.PROJECT, "evaluate", params, report_job.evaluate)
    paths = Paths.of("toy")
    assert written[:4] == [paths.predictions, paths.metrics, paths.details, paths.timing]
    metrics = json.loads(paths.metrics.read_text())
    assert tuple(metrics) == METRIC_KEYS and metrics["score"] == 0.9123  # 4 significant digits
    details = json.loads(paths.details.read_text())
    assert details["verdict"]["score"] == 0.9123 and "predict_seconds" not in details
    assert details["per_class"] == {"a": {"recall": 0.9}} and details["warnings"] == []
    assert json.loads(paths.timing.read_text()) == {"predict_seconds": 0.25}

    def returns_nothing(p, paths):
        paths.predictions.write_text("row\n")

    with pytest.raises(RuntimeError, match="not a pipeline.report.Report"):
        run_stage(report_job.PROJECT, "evaluate", {"toy": {"score": 0.5}}, returns_nothing)
    assert json.loads(paths.metrics.read_text()) == metrics  # the last run's, untouched


def test_dvc_yaml_declares_only_git_tracked_metrics():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for project in built_projects():
        paths = project.paths
        for stage in project.stages:
            declared = stages[f"{project.name}-{stage.name}"]
            metrics = declared.get("metrics", [])
            expected = [{paths.metrics.as_posix(): {"cache": False}}]
            assert metrics == (expected if stage.name == "evaluate" else []), stage.name
            outs = declared["outs"]
            assert paths.cost(stage.name).as_posix() in outs  # cached, not a metric
        evaluate = stages[f"{project.name}-evaluate"]["outs"]
        assert {paths.details.as_posix(): {"cache": False}} in evaluate
        assert paths.timing.as_posix() in evaluate


def git(*argv: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *argv],
        cwd=cwd, check=True, capture_output=True,
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_dvc_metrics_diff_in_a_fresh_clone_loads_every_metric(tmp_path):
    """A toy project's dvc.yaml from the generator: after a run and a commit, a clone without
    DVC's cache (so without timings) diffs its metrics with no "failed to load"."""
    sys.path.insert(0, str(TESTS))
    try:
        import report_job
    finally:
        sys.path.remove(str(TESTS))
    dvc = str(Path(sys.executable).parent / "dvc")
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    env["PYTHONPATH"] = str(ROOT / "src")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(JOB, repo / "report_job.py")
    generated = yaml.safe_load(dvcyaml.render([report_job.PROJECT]))
    for name, stage in generated["stages"].items():  # the toy's commands and code; outs as made
        stage["cmd"] = f"{sys.executable} report_job.py {name.split('-')[1]}"
        stage["deps"] = [d for d in stage["deps"] if not d.startswith("src/")] + ["report_job.py"]
        stage.pop("params", None)
    generated["stages"]["toy-evaluate"]["params"] = ["toy.score"]
    generated.pop("plots")  # the toy declares none
    (repo / "dvc.yaml").write_text(yaml.safe_dump(generated, sort_keys=False))
    (repo / "params.yaml").write_text(yaml.safe_dump({"toy": {"score": 0.9}}))

    def run(*argv: str, cwd: Path = repo, columns: int = 80) -> subprocess.CompletedProcess:
        return subprocess.run(
            [dvc, *argv],
            cwd=cwd,
            env={**env, "COLUMNS": str(columns)},
            capture_output=True,
            text=True,
            timeout=300,
        )

    git("init", "-q", cwd=repo)
    assert run("init", "-q").returncode == 0
    repro = run("repro", "-q")
    assert repro.returncode == 0, repro.stderr
    assert (repo / "timing/toy.json").exists() and (repo / "timing/cost/toy-plot.json").exists()
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "toy", cwd=repo)
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "metrics/toy.json" in tracked and "reports/toy/details.json" in tracked
    timings = [f for f in tracked if f.startswith("timing/")]
    assert all(f.endswith("/.gitignore") for f in timings), timings  # cached, not in git

    clone = tmp_path / "clone"
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    (clone / "params.yaml").write_text(yaml.safe_dump({"toy": {"score": 0.8}}))
    assert run("repro", "-q", "toy-evaluate", cwd=clone).returncode == 0
    diff = run("metrics", "diff", "--json", cwd=clone)
    assert diff.returncode == 0 and "failed to load" not in diff.stderr + diff.stdout, diff.stderr
    changed = json.loads(diff.stdout)["metrics/toy.json"]
    assert changed["score"] == {"old": 0.9, "new": 0.8, "diff": pytest.approx(-0.1)}
    assert set(changed) <= set(METRIC_KEYS)
    shown = json.loads(run("metrics", "show", "--json", cwd=clone).stdout)
    [workspace] = shown.values()
    assert list(workspace["data"]) == ["metrics/toy.json"]  # no timing, no cost file
    assert tuple(workspace["data"]["metrics/toy.json"]["data"]) == METRIC_KEYS

    # `dvc exp show --only-changed` drops the baseline's name and the verdict, which did not
    # change; the summary sentence, which did, says both, first among the metrics.
    table = run("exp", "show", "--no-pager", "--only-changed", "--csv", cwd=clone).stdout
    header, *rows = list(csv.reader(io.StringIO(table)))
    metric_columns = [c for c in header if c in METRIC_KEYS]
    assert metric_columns[0] == "summary" and "baseline" not in header, header
    summary = {row[header.index("rev")]: row[header.index("summary")] for row in rows}
    assert summary["workspace"].startswith("toy 0.8") and "vs majority" in summary["workspace"]
    assert summary["workspace"].endswith(workspace["data"]["metrics/toy.json"]["data"]["verdict"])
    shown_in_200 = run("exp", "show", "--no-pager", "--only-changed", cwd=clone, columns=200)
    assert summary["workspace"] in shown_in_200.stdout, shown_in_200.stdout
