"""`xlalab seeds`: the DVC commands it runs, how it reads `dvc exp show --json` (fixtures are real
outputs of DVC 3.67 for a toy project, trimmed: seeds 1 and 2 succeeded, 13 failed; and the same
queue while seed 1 ran; their metrics rewritten in pipeline/report.py's layout), the statistics
over seeds, and one real queue end to end."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xlalab.errors import UserError
from xlalab.pipeline.params import load_params
from xlalab.results import seed_table, seeds

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests/fixtures"
DONE = json.loads((FIXTURES / "exp_show_seeds_done.json").read_text())
RUNNING = json.loads((FIXTURES / "exp_show_seeds_running.json").read_text())
PLAN = {"toy": [1, 2, 13]}


def test_one_named_experiment_per_seed_of_that_project_alone():
    assert seeds.queue_command("traffic", 1) == [
        *("dvc", "exp", "run", "--queue", "-f", "-n", "seeds-traffic-1"),
        *("-S", "traffic.seed=1", "traffic-plot"),
    ]
    assert seeds.start_command(2) == ["dvc", "queue", "start", "-j", "2"]
    params = load_params(ROOT / "params.yaml")
    assert seeds.seeds_of("cifar10", 3, params) == [42, 43, 44]  # its own seed first
    assert seeds.seeds_of("traffic", 1, params) == [params["traffic"]["seed"]]
    with pytest.raises(UserError, match=r"no integer `toy.seed`"):
        seeds.seeds_of("toy", 3, {"toy": {"seed": "0"}})


def test_every_project_has_its_seed_at_the_top_of_its_section():
    from xlalab import PROJECTS

    params = load_params(ROOT / "params.yaml")
    for project in PROJECTS:
        assert next(iter(params[project])) == "seed", project


def test_a_dry_run_prints_the_commands_and_runs_nothing(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(seeds.subprocess, "call", pytest.fail)
    assert seeds.run_seeds("lstm", 2, 2, dry_run=True, collect_only=False, out=Path("x")) == 0
    assert capsys.readouterr().out.splitlines() == [
        "$ dvc exp run --queue -f -n seeds-lstm-0 -S lstm.seed=0 lstm-plot",
        "$ dvc exp run --queue -f -n seeds-lstm-1 -S lstm.seed=1 lstm-plot",
        "$ dvc queue start -j 2",
        "$ dvc exp show --json",
    ]


def test_the_runs_of_a_project_and_their_states():
    runs = seeds.runs_of(DONE, "toy")
    assert sorted((r.name, r.state) for r in runs) == [
        ("seeds-toy-1", "success"),
        ("seeds-toy-13", "failed"),
        ("seeds-toy-2", "success"),
    ]
    assert seeds.runs_of(DONE, "to") == []  # another project's experiments are not this one's
    failed = next(r for r in runs if r.state == "failed")
    assert failed.log.endswith(".out")
    running = {r.name: r.state for r in seeds.runs_of(RUNNING, "toy")}
    assert running == {"seeds-toy-1": "running", "seeds-toy-2": "queued", "seeds-toy-13": "queued"}


def test_statistics_over_the_seeds_that_succeeded():
    [row] = seeds.collect(DONE, PLAN)
    assert row["seeds"] == [1, 2, 13] and row["succeeded"] == 2
    assert row["headline"]["mean"] == pytest.approx(0.815)
    assert row["headline"]["sd"] == pytest.approx(0.00707107, rel=1e-5)  # sample sd, n - 1
    assert (row["headline"]["min"], row["headline"]["max"]) == pytest.approx((0.81, 0.82))
    assert row["difference"]["mean"] == pytest.approx(0.115)
    assert row["verdicts"] == {"beats": 2} and row["strongest_baselines"] == {"b": 2}
    [failed] = row["failed"]
    assert failed["seed"] == 13 and failed["state"] == "failed" and failed["log"].endswith(".out")
    assert "score" not in failed  # a failed run's metrics are its baseline's: never counted
    table = seeds.markdown([row]).splitlines()
    assert table[0].startswith("| project | seeds | headline model | metric | headline: mean ± sd")
    assert table[2] == (
        "| toy | 2 of 3 (1, 2, 13) | m | acc ↑ | 0.8150 ± 0.0071 [0.8100, 0.8200] | b (2) | "
        "+0.1150 ± 0.0071 [0.1100, 0.1200] | 2 / 0 / 0 |"
    )


def test_experiments_from_before_the_report_read_the_same():
    """Metrics of the layout before pipeline/report.py (a verdict object, its lists dropped by
    DVC) give the same numbers."""
    shown = copy.deepcopy(DONE)
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            for rev in experiment["revs"]:
                metrics = rev["data"]["metrics"]["metrics/toy.json"]
                h = metrics["data"]
                metrics["data"] = {
                    "verdict": {
                        "model": h["model"], "metric": h["metric"], "higher_is_better": True,
                        "score": h["score"], "best_baseline": h["baseline"],
                        "baseline_score": h["baseline_score"], "difference": h["diff"],
                        "verdict": h["verdict"],
                    }
                }  # fmt: skip
    assert seeds.collect(shown, PLAN) == seeds.collect(DONE, PLAN)
    assert seed_table.headline_of({"verdict": {"score": 0.8, "beats_baseline": True}}) is None


def test_only_runs_of_this_call_count_and_pending_ones_come_first():
    [row] = seeds.collect(DONE, PLAN, since="2026-12-03T12:20:00")
    assert [r["state"] for r in row["runs"]] == ["missing", "success", "missing"]
    chosen = seeds.latest(seeds.runs_of(DONE + RUNNING, "toy"), ["seeds-toy-1"])
    assert chosen["seeds-toy-1"].state == "running"  # re-run under the same name: not done yet
    [none] = seeds.collect(RUNNING, {"toy": [1]})
    assert none["succeeded"] == 0
    assert seeds.markdown([none]).splitlines()[2] == "| toy | 0 of 1 (1) | - | - | - | - | - | - |"


QUEUE_RUNNING = (FIXTURES / "queue_status_running.txt").read_text()
QUEUE_DONE = (FIXTURES / "queue_status_done.txt").read_text()  # another project's, all done


def test_the_queue_status_of_each_task():
    statuses, workers = seeds.read_queue_status(QUEUE_RUNNING)
    assert statuses == {
        "seeds-toy-1": ["running"],
        "seeds-toy-2": ["queued"],
        "seeds-toy-13": ["queued"],
    }
    assert workers == 1
    statuses, workers = seeds.read_queue_status(QUEUE_DONE)
    assert all(s == ["success"] for s in statuses.values()) and len(statuses) == 3
    assert workers == 0


def test_waiting_polls_the_queue_until_no_run_is_pending(monkeypatch):
    finished = QUEUE_RUNNING.replace("Running", "Success").replace(
        "seeds-toy-2   12:18 PM   Queued", "seeds-toy-2   12:18 PM   Failed"
    )  # seeds-toy-13 still waits, but it is not one of ours
    polls = [QUEUE_RUNNING, finished, QUEUE_DONE]
    monkeypatch.setattr(seeds, "queue_status", lambda: polls.pop(0))
    monkeypatch.setattr(seeds, "POLL_SECONDS", 0)
    # dvc exp show fails now and then while an experiment's copy is removed: it is tried again
    shows = [UserError("directory '.dvc/tmp/exps/tmpx/.dvc' does not exist"), DONE]

    def run(argv, **kwargs):
        out = shows.pop(0)
        code, text = (1, "") if isinstance(out, Exception) else (0, json.dumps(out))
        return subprocess.CompletedProcess(argv, code, text, str(out))

    monkeypatch.setattr(seeds, "show_command", lambda names: seeds.SHOW_COMMAND)
    monkeypatch.setattr(seeds.subprocess, "run", run)
    assert seeds.wait_for(["seeds-toy-1", "seeds-toy-2"]) == DONE
    assert len(polls) == 1 and shows == []  # stopped once neither was queued or running


def test_waiting_stops_when_dvc_exp_show_keeps_failing(monkeypatch):
    calls = []

    def run(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 1, "", "ERROR: broken")

    monkeypatch.setattr(seeds, "show_command", lambda names: seeds.SHOW_COMMAND)
    monkeypatch.setattr(seeds.subprocess, "run", run)
    monkeypatch.setattr(seeds, "POLL_SECONDS", 0)
    with pytest.raises(UserError, match="`dvc exp show --json` failed: ERROR: broken"):
        seeds.exp_show(["seeds-toy-1"])
    assert len(calls) == seeds.MISSES


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_experiments_are_shown_from_the_commits_they_were_run_from(tmp_path, monkeypatch):
    """After a commit, the experiments queued before it hang off the commit before: `dvc exp show`
    must be asked for that baseline too (DVC keeps them under refs/exps/<2>/<38>/<name>)."""
    monkeypatch.chdir(tmp_path)

    def git(*argv: str) -> str:
        out = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *argv],
                             check=True, capture_output=True, text=True)  # fmt: skip
        return out.stdout.strip()

    git("init", "-q")
    git("commit", "-q", "--allow-empty", "-m", "queued from here")
    old = git("rev-parse", "HEAD")
    for name in ("seeds-toy-1", "seeds-lstm-1"):
        git("update-ref", f"refs/exps/{old[:2]}/{old[2:]}/{name}", old)
    git("update-ref", "refs/exps/celery/failed", old)
    assert seeds.show_command(["seeds-toy-1"]) == [*seeds.SHOW_COMMAND, "--rev", "HEAD"]
    git("commit", "-q", "--allow-empty", "-m", "committed after the experiments")
    assert seeds.show_command(["seeds-toy-1"]) == [
        *(*seeds.SHOW_COMMAND, "--rev", "HEAD"),
        *("--rev", old),
    ]
    assert seeds.show_command(["seeds-toy-2"]) == [*seeds.SHOW_COMMAND, "--rev", "HEAD"]


def test_waiting_stops_when_tasks_wait_and_no_worker_runs_them(monkeypatch):
    stuck = QUEUE_RUNNING.replace("1 active", "0 active").replace("Running", "Queued")
    polls = []
    monkeypatch.setattr(seeds, "queue_status", lambda: polls.append(1) or stuck)
    monkeypatch.setattr(seeds, "POLL_SECONDS", 0)
    with pytest.raises(UserError, match=r"3 seed experiment\(s\) wait in the DVC queue, which has"):
        seeds.wait_for(["seeds-toy-1", "seeds-toy-2", "seeds-toy-13"])
    assert len(polls) == seeds.STALLED


def test_a_running_task_is_waited_for_even_when_the_worker_count_says_0(monkeypatch):
    # seen on a loaded machine: a busy worker misses the status query
    busy = QUEUE_RUNNING.replace("1 active", "0 active")
    polls = [busy] * (seeds.STALLED + 2) + [QUEUE_DONE]
    monkeypatch.setattr(seeds, "queue_status", lambda: polls.pop(0))
    monkeypatch.setattr(seeds, "exp_show", lambda names: DONE)
    monkeypatch.setattr(seeds, "POLL_SECONDS", 0)
    assert seeds.wait_for(["seeds-toy-1"]) == DONE and polls == []


def test_the_json_keeps_other_projects_rows(tmp_path):
    out = tmp_path / "seeds.json"
    out.write_text(json.dumps({"lstm": {"project": "lstm", "seeds": [0]}}))
    [row] = seeds.collect(DONE, PLAN)
    seeds.save([row], out)
    saved = json.loads(out.read_text())
    assert sorted(saved) == ["lstm", "toy"]
    assert saved["toy"]["headline"]["mean"] == pytest.approx(0.815)
    assert [r["seed"] for r in saved["toy"]["runs"]] == [1, 2, 13]


STAGE = """\
import json, os, yaml
seed = yaml.safe_load(open("params.yaml"))["toy"]["seed"]
os.makedirs("metrics", exist_ok=True)
headline = {"model": "m", "metric": "acc", "better": "higher", "score": 0.8 + seed / 100,
            "score_low": 0.7, "score_high": 0.9, "baseline": "b", "baseline_score": 0.75,
            "diff": 0.05 + seed / 100, "verdict": "beats" if seed else "ties"}
json.dump(headline, open("metrics/toy.json", "w"))
"""


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_real_queue_of_two_seeds(tmp_path, monkeypatch):
    """A toy repository with one stage: queue two seeds, run them, collect them (about 40 s)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(seeds, "POLL_SECONDS", 2)
    Path("stage.py").write_text(STAGE)
    Path("params.yaml").write_text(yaml.safe_dump({"toy": {"seed": 0}}))
    Path("dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "toy-plot": {
                        "cmd": f"{sys.executable} stage.py",
                        "deps": ["stage.py"],
                        "params": ["toy.seed"],
                        "metrics": [{"metrics/toy.json": {"cache": False}}],
                    }
                }
            }
        )
    )
    for argv in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "toy"],
    ):
        subprocess.run(argv, check=True, capture_output=True)
    plan = {"toy": seeds.seeds_of("toy", 2, load_params())}
    shown, since = seeds.run_plan(plan, jobs=1)
    [row] = seeds.collect(shown, plan, since)
    assert [r["state"] for r in row["runs"]] == ["success", "success"]
    assert [r["score"] for r in row["runs"]] == pytest.approx([0.80, 0.81])
    assert row["verdicts"] == {"ties": 1, "beats": 1}
    assert row["difference"]["mean"] == pytest.approx(0.055)
