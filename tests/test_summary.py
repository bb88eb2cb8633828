"""`python -m xlalab summary`: one row per built project, read from metrics/<project>.json."""

import json
from pathlib import Path

from xlalab.core import summary


def test_a_row_per_project_with_its_verdict_and_what_trained_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("metrics").mkdir()
    Path("metrics/lstm.json").write_text(
        json.dumps(
            {
                "data": {"source": "offline"},
                "verdict": {
                    "model": "lstm",
                    "metric": "mae",
                    "score": 0.442,
                    "best_baseline": "arima",
                    "baseline_score": 0.4349,
                    "beats_baseline": False,
                },
                "runtime": {
                    "backend": "accelerate",
                    "device_type": "cpu",
                    "device_count": 2,
                    "processes": 2,
                },
            }
        )
    )
    Path("metrics/cifar10.json").write_text(
        json.dumps(
            {
                "data": {"source": "offline"},
                "verdict": {
                    "model": "efficientnet_lite0",
                    "metric": "accuracy",
                    "score": 0.908,
                    "best_baseline": "majority_class",
                    "baseline_score": 0.1,
                    "beats_baseline": True,
                },
                "runtime": {
                    "backend": "xla",
                    "device_type": "cpu",
                    "device_count": 4,
                    "processes": 1,
                    "spmd": True,
                },
            }
        )
    )
    rows = {r["project"]: r for r in summary.rows()}
    assert rows["lstm"]["verdict"] == "does NOT beat its best baseline"
    assert rows["lstm"]["trained_on"] == "accelerate, 2 cpu, 2 processes"
    assert rows["cifar10"]["verdict"] == "beats its best baseline"
    assert rows["cifar10"]["trained_on"] == "xla, 4 cpu (spmd)"
    assert rows["traffic"]["verdict"] == "not evaluated yet (dvc repro)"
    table = summary.markdown().splitlines()
    assert table[0].endswith("| trained on |")
    assert (
        "| lstm | offline | lstm | mae | 0.442 | arima | 0.4349 | does NOT beat its best baseline "
        "| accelerate, 2 cpu, 2 processes |" in table
    )


def test_the_readme_shows_the_table_of_the_committed_metrics(monkeypatch):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    assert summary.markdown() in (root / "README.md").read_text(), (
        "README's results table is stale: paste the output of `python -m xlalab summary`"
    )
