"""What lands in git-tracked files is what a re-run reproduces (docs/sharing.md): times and speeds
move from an evaluate stage's details to timing/<project>.json, and numbers in metrics, details,
plot data and DVCLive logs keep REPORTED_DIGITS significant digits, so float32 noise from another
thread count or CPU does not show."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from configs import train_config

from xlalab.engine.loop import fit
from xlalab.engine.task import Task
from xlalab.files import REPORTED_DIGITS, significant, split_timing
from xlalab.pipeline.params import load_params
from xlalab.pipeline.report import Report
from xlalab.pipeline.runner import run_stage
from xlalab.results.plots import write_rows

ROOT = Path(__file__).resolve().parents[1]

# The timing fields of the projects' details today, in their places.
METRICS = {
    "verdict": {"score": 0.8156183, "interval": [0.79123456, 0.8412345], "verdict": "beats"},
    "train": {"best_epoch": 6, "samples_per_sec": 440.041594, "runtime": {"backend": "xla"}},
    "speed": {"train_samples_per_sec": 55.75, "train_seconds": 43.6, "predict_samples_per_sec": 9},
    "detectors": {"ecod": {"f1": 0.798, "seconds": 0.72}, "copod": {"f1": 0.783, "seconds": 0.68}},
    "models": {"mlp": {"rmse_dollars": 20420.168016}},
    "warnings": [],
    "empty": {},
}


def test_timing_keys_leave_with_their_nesting_and_nothing_else_moves():
    kept, timing = split_timing(METRICS)
    assert timing == {
        "train": {"samples_per_sec": 440.041594},
        "speed": METRICS["speed"],
        "detectors": {"ecod": {"seconds": 0.72}, "copod": {"seconds": 0.68}},
    }
    assert "speed" not in kept  # emptied by the split
    assert kept["train"] == {"best_epoch": 6, "runtime": {"backend": "xla"}}
    assert kept["detectors"] == {"ecod": {"f1": 0.798}, "copod": {"f1": 0.783}}
    assert kept["empty"] == {} and kept["warnings"] == [] and kept["verdict"] == METRICS["verdict"]


def test_significant_digits():
    assert REPORTED_DIGITS == 4
    assert significant(20420.168016) == 20420.0 and significant(20246.489727) == 20250.0
    assert significant(0.6364465951919556) == significant(0.6364465355873108) == 0.6364
    assert significant(1.2184647302626584e-08) == 1.218e-08 and significant(0.0) == 0.0


def test_a_stage_publishes_its_metrics_rounded_and_its_timing_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for folder in ("data/housing/features", "models/housing"):
        Path(folder).mkdir(parents=True)
    verdict = {
        "model": "blend", "metric": "RMSE(log)", "higher_is_better": False, "score": 0.14926481,
        "interval": [0.0932711, 0.21564], "best_baseline": "linear", "baseline_score": 0.160512,
        "baseline_interval": [0.094343, 0.2371234], "difference": -0.011234567,
        "difference_interval": [-0.02356789, 0.0016951234], "verdict": "ties",
    }  # fmt: skip
    details = {k: v for k, v in METRICS.items() if k != "verdict"}

    def evaluate(p, paths):
        paths.predictions.write_text("id,price\n1,2\n")
        return Report.judged(
            verdict, test_rows=292, source="offline", runtime=None, details=details
        )

    params = load_params(ROOT / "params.yaml")
    written = run_stage("housing", "evaluate", params, function=evaluate)
    assert Path("timing/housing.json") in written
    metrics = json.loads(Path("metrics/housing.json").read_text())
    details = json.loads(Path("reports/housing/details.json").read_text())
    timing = json.loads(Path("timing/housing.json").read_text())
    assert (metrics["score"], metrics["diff"], metrics["diff_high"]) == (0.1493, -0.01123, 0.001695)
    assert details["verdict"]["interval"] == [0.09327, 0.2156]
    assert details["models"]["mlp"]["rmse_dollars"] == 20420.0
    assert "speed" not in details and "seconds" not in details["detectors"]["ecod"]
    assert timing["train"]["samples_per_sec"] == 440.0 and timing["speed"]["train_seconds"] == 43.6


def test_plot_data_keeps_the_reported_digits(tmp_path):
    write_rows(tmp_path / "rows.json", [{"epoch": 1, "loss": 0.6364465951919556, "x": 62.1948}])
    assert json.loads((tmp_path / "rows.json").read_text()) == [
        {"epoch": 1, "loss": 0.6364, "x": 62.19}
    ]


def test_dvclive_logs_rounded_values_and_no_speeds(tmp_path, accelerate_backend):
    torch.manual_seed(0)
    x = torch.randn(256, 4)
    rows = {"x": x, "y": (x.sum(1) > 0).long()}
    model = torch.nn.Linear(4, 2)
    task = Task(
        loss=lambda out, b: torch.nn.functional.cross_entropy(out, b["y"], reduction="none")
    )
    result = fit(
        model,
        rows,
        rows,
        task,
        train_config(epochs=2, batch_size=64, lr=0.01, scheduler="constant", seed=0),
        accelerate_backend,
        live_dir=tmp_path / "live",
    )
    assert result.history[0]["samples_per_sec"] > 0  # still measured, for summary.json
    series = tmp_path / "live/plots/metrics"
    assert not (series / "samples_per_sec.tsv").exists()
    logged = (series / "train/loss.tsv").read_text().split()
    assert logged[:2] == ["step", "loss"]
    assert [float(v) for v in logged[3::2]] == [
        significant(r["train/loss"]) for r in result.history
    ]
    summary = json.loads((tmp_path / "live/metrics.json").read_text())
    assert "samples_per_sec" not in summary
